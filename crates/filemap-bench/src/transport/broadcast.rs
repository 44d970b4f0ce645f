//! filemap broadcast (one sender, one receiver here), busy-polling
//! ([`TransportKind::Broadcast`]) or blocking ([`TransportKind::BroadcastBlocking`]).
//! Round trips: the parent creates `ping`, the child creates `pong`.
//! Streaming: the parent creates `pong` as its receiver (so that it sees the
//! first message), the child sends on it as fast as it can; its sender never
//! waits, so a receiver that falls a ring behind misses messages, and the row
//! reports how many ([`ParentSide::lost`]) and the rate of those delivered.

use std::io::Read;
use std::process::Child;

use filemap::channel::broadcast::{Received, Receiver, Sender};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};
use crate::TransportKind;

pub(crate) struct Broadcast;

/// Slots of each channel.
const SLOTS: u64 = 64;

pub(crate) struct Parent {
    /// Round trips only.
    tx: Option<Sender>,
    rx: Option<Receiver>,
    got: Received,
    buf: Vec<u8>,
    peer: TransportKind,
    /// Streaming: the number of the next message expected, and how many
    /// were missed so far.
    next: u64,
    lost: u64,
}

impl Transport for Broadcast {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let mut got = Received::default();
        got.data.reserve(case.size);
        let (tx, rx) = match case.latency() {
            true => (
                Some(Sender::create(
                    &case.object("ping"),
                    SLOTS,
                    case.size as u64,
                )?),
                None,
            ),
            false => (
                None,
                Some(Receiver::create(
                    &case.object("pong"),
                    SLOTS,
                    case.size as u64,
                )?),
            ),
        };
        Ok(Parent {
            tx,
            rx,
            got,
            buf: vec![0; case.size],
            peer: case.kind,
            next: 0,
            lost: 0,
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        if case.latency() {
            let mut rx = Receiver::open(&case.object("ping"))?;
            let mut tx = Sender::create(&case.object("pong"), SLOTS, case.size as u64)?;
            ready();
            let mut got = Received::default();
            got.data.reserve(case.size);
            for _ in 0..case.total {
                recv(&mut rx, case.kind, &mut got)?;
                tx.send(&got.data)?;
            }
        } else {
            let mut tx = Sender::open(&case.object("pong"))?;
            ready();
            let buf = vec![0u8; case.size];
            for _ in 0..case.total {
                tx.send(&buf)?;
            }
        }
        // Stay until the parent has read the last reply: closing first
        // would be reported to it as the sender going away.
        let _ = std::io::stdin().read(&mut [0u8; 1]);
        Ok(())
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, _child: &mut Child, case: &Case) -> Result<()> {
        // For round trips the pong channel is the child's; it exists once the
        // child is ready.
        if self.rx.is_none() {
            self.rx = Some(Receiver::open(&case.object("pong"))?);
        }
        Ok(())
    }

    #[inline]
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        let rx = self.rx.as_mut().ok_or_else(not_attached)?;
        self.tx.as_mut().ok_or_else(not_attached)?.send(&self.buf)?;
        recv(rx, self.peer, &mut self.got)
    }

    /// Message `i` is delivered, or known lost: a later one came first.
    #[inline]
    fn receive(&mut self, i: u64) -> Result<()> {
        if self.next > i {
            return Ok(());
        }
        let rx = self.rx.as_mut().ok_or_else(not_attached)?;
        recv(rx, self.peer, &mut self.got)?;
        self.lost += self.got.missed;
        self.next = self.got.seq + 1;
        Ok(())
    }

    fn lost(&self) -> Option<u64> {
        Some(self.lost)
    }

    fn handled(&self) -> Option<u64> {
        Some(self.next)
    }
}

#[cold]
fn not_attached() -> BenchError {
    BenchError::Unsupported("the pong channel is not open".into())
}

/// Receives one message into `got`, busy-polling or blocking (without
/// allocating: its buffer already has the message's size).
#[inline]
fn recv(rx: &mut Receiver, peer: TransportKind, got: &mut Received) -> Result<()> {
    if peer == TransportKind::BroadcastBlocking {
        return Ok(rx.recv_into(got)?);
    }
    Ok(super::spin(|| rx.try_recv_into(got))?)
}
