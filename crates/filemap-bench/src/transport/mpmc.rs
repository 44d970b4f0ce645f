//! filemap MPMC (one sender and one receiver here), busy-polling
//! ([`TransportKind::Mpmc`]) or blocking ([`TransportKind::MpmcBlocking`]), receiving into a
//! reused buffer. Channels as for SPSC: `ping` and `pong`, or `pong` only.

use filemap::channel::mpmc::{Receiver, Sender};

use super::{Case, ParentSide, Transport};
use crate::error::Result;
use crate::TransportKind;

pub(crate) struct Mpmc;

pub(crate) struct Parent {
    ping: Option<Sender>,
    pong: Receiver,
    peer: TransportKind,
    buf: Vec<u8>,
}

fn slots(case: &Case) -> u64 {
    (case.ring_capacity() / case.size.max(64) as u64).clamp(4, 1024)
}

impl Transport for Mpmc {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let (slots, size) = (slots(case), case.size as u64);
        let ping = match case.latency() {
            true => Some(Sender::create(&case.object("ping"), slots, size)?),
            false => None,
        };
        Ok(Parent {
            ping,
            pong: Receiver::create(&case.object("pong"), slots, size)?,
            peer: case.kind,
            buf: vec![0; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut buf = vec![0u8; case.size];
        let pong = Sender::open(&case.object("pong"))?;
        let ping = match case.latency() {
            true => Some(Receiver::open(&case.object("ping"))?),
            false => None,
        };
        ready();
        for _ in 0..case.total {
            if let Some(p) = &ping {
                recv(p, case.kind, &mut buf)?;
            }
            send(&pong, case.kind, &buf)?;
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    #[inline]
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        if let Some(p) = &self.ping {
            send(p, self.peer, &self.buf)?;
        }
        recv(&self.pong, self.peer, &mut self.buf)
    }

    #[inline]
    fn receive(&mut self, _i: u64) -> Result<()> {
        recv(&self.pong, self.peer, &mut self.buf)
    }
}

/// Receives one message into `buf`, busy-polling or blocking as `peer`
/// does (without allocating: `buf` already has the message's size).
#[inline]
fn recv(rx: &Receiver, peer: TransportKind, buf: &mut Vec<u8>) -> Result<()> {
    if peer == TransportKind::MpmcBlocking {
        return Ok(rx.recv_into(buf)?);
    }
    Ok(super::spin(|| rx.try_recv_into(buf))?)
}

/// Sends one message, busy-polling or blocking as `peer` does.
#[inline]
fn send(tx: &Sender, peer: TransportKind, buf: &[u8]) -> Result<()> {
    if peer == TransportKind::MpmcBlocking {
        return Ok(tx.send(buf)?);
    }
    Ok(super::spin(|| tx.try_send(buf))?)
}
