//! filemap SPSC: busy-polling copies ([`TransportKind::SpscSpin`]; on large pages,
//! [`TransportKind::SpscLarge`]), busy-polling in
//! place ([`TransportKind::SpscZeroCopy`]: reserve/commit, borrowed receive), and
//! blocking ([`TransportKind::SpscBlocking`], [`TransportKind::SpscIdle`]). Round trips use a
//! `ping` channel (parent to child) and a `pong` one back; streaming uses
//! `pong` only.

use filemap::channel::spsc::{Receiver, Sender};

use super::{Case, ParentSide, Transport};
use crate::error::Result;
use crate::TransportKind;

pub(crate) struct Spsc;

pub(crate) struct Parent {
    tx: Option<Sender>,
    rx: Receiver,
    peer: TransportKind,
    buf: Vec<u8>,
}

impl Transport for Spsc {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let cap = case.ring_capacity();
        let opts = filemap::Options::new().large_pages(case.kind == TransportKind::SpscLarge);
        let tx = match case.latency() {
            true => Some(Sender::create_with(&case.object("ping"), cap, &opts)?),
            false => None,
        };
        Ok(Parent {
            tx,
            rx: Receiver::create_with(&case.object("pong"), cap, &opts)?,
            peer: case.kind,
            buf: vec![0; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut buf = vec![0u8; case.size];
        let mut tx = Sender::open(&case.object("pong"))?;
        if case.latency() {
            let mut rx = Receiver::open(&case.object("ping"))?;
            ready();
            for i in 0..case.total {
                recv(&mut rx, case.kind, &mut buf)?;
                send(&mut tx, case.kind, &buf, i)?;
            }
        } else {
            ready();
            for i in 0..case.total {
                send(&mut tx, case.kind, &buf, i)?;
            }
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    #[inline]
    fn round_trip(&mut self, i: u64) -> Result<()> {
        if let Some(tx) = &mut self.tx {
            send(tx, self.peer, &self.buf, i)?;
        }
        recv(&mut self.rx, self.peer, &mut self.buf)
    }

    #[inline]
    fn receive(&mut self, _i: u64) -> Result<()> {
        recv(&mut self.rx, self.peer, &mut self.buf)
    }
}

/// Sends one message the way `peer` does.
#[inline]
fn send(tx: &mut Sender, peer: TransportKind, buf: &[u8], i: u64) -> Result<()> {
    match peer {
        TransportKind::SpscBlocking | TransportKind::SpscIdle => tx.send(buf)?,
        TransportKind::SpscZeroCopy => loop {
            if let Some(mut slot) = tx.try_reserve(buf.len())? {
                // SAFETY: a filemap receiver never writes unpublished bytes.
                unsafe { slot.as_mut_slice() }.fill(i as u8);
                slot.commit();
                break;
            }
            std::hint::spin_loop();
        },
        _ => super::spin(|| tx.try_send(buf))?,
    }
    Ok(())
}

/// Receives one message, reading every byte (into `buf`, or in place).
#[inline]
fn recv(rx: &mut Receiver, peer: TransportKind, buf: &mut [u8]) -> Result<()> {
    if matches!(peer, TransportKind::SpscBlocking | TransportKind::SpscIdle) {
        return Ok(rx.recv()?.read_at(0, buf)?);
    }
    loop {
        if let Some(m) = rx.try_recv()? {
            if peer == TransportKind::SpscZeroCopy {
                // SAFETY: a filemap sender never writes a published message.
                let bytes = unsafe { m.as_slice() };
                // Read every byte in place (what a consumer of the data does).
                let sum = bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b));
                std::hint::black_box(sum);
            } else {
                m.read_at(0, buf)?;
            }
            return Ok(());
        }
        std::hint::spin_loop();
    }
}
