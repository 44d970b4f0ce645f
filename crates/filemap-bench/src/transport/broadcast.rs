//! filemap broadcast (one sender, one receiver here), busy-polling
//! ([`TransportKind::Broadcast`]) or blocking ([`TransportKind::BroadcastBlocking`]); round
//! trips only (its sender never waits, so streaming would measure how much
//! a receiver misses). The parent creates `ping`, the child creates `pong`.

use std::io::Read;
use std::process::Child;

use filemap::channel::broadcast::{Received, Receiver, Sender};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};
use crate::TransportKind;

pub(crate) struct Broadcast;

pub(crate) struct Parent {
    tx: Sender,
    rx: Option<Receiver>,
    got: Received,
    buf: Vec<u8>,
    peer: TransportKind,
}

impl Transport for Broadcast {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let mut got = Received::default();
        got.data.reserve(case.size);
        Ok(Parent {
            tx: Sender::create(&case.object("ping"), 64, case.size as u64)?,
            rx: None,
            got,
            buf: vec![0; case.size],
            peer: case.kind,
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut rx = Receiver::open(&case.object("ping"))?;
        let mut tx = Sender::create(&case.object("pong"), 64, case.size as u64)?;
        ready();
        let mut got = Received::default();
        got.data.reserve(case.size);
        for _ in 0..case.total {
            recv(&mut rx, case.kind, &mut got)?;
            tx.send(&got.data)?;
        }
        // Stay until the parent has read the last reply: closing first
        // would be reported to it as the sender going away.
        let _ = std::io::stdin().read(&mut [0u8; 1]);
        Ok(())
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, _child: &mut Child, case: &Case) -> Result<()> {
        // The pong channel is the child's; it exists once the child is ready.
        self.rx = Some(Receiver::open(&case.object("pong"))?);
        Ok(())
    }

    #[inline]
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        let rx = self.rx.as_mut().ok_or_else(not_attached)?;
        self.tx.send(&self.buf)?;
        recv(rx, self.peer, &mut self.got)
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        Err(BenchError::Unsupported(
            "broadcast has round trips only".into(),
        ))
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
