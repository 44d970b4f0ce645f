//! Round trips through a `filemap::wait::WaitSet`: each side receives by
//! waiting on a set of `n` spsc receivers (its data channel and `n - 1`
//! idle ones), then taking the message ([`TransportKind::WaitSet1`],
//! [`TransportKind::WaitSet64`], [`TransportKind::WaitSet1000`];
//! [`TransportKind::WaitSetIdle`] with the idle gap). Compare
//! with the blocking spsc rows, whose receivers wait on one channel.

use filemap::channel::spsc::{Receiver, Sender};
use filemap::wait::{WaitSet, Waitable};

use super::{Case, ParentSide, Transport};
use crate::error::Result;
use crate::TransportKind;

pub(crate) struct WaitSetRt;

/// How many receivers each side's set holds.
fn width(peer: TransportKind) -> usize {
    match peer {
        TransportKind::WaitSet64 | TransportKind::WaitSet64Idle => 64,
        TransportKind::WaitSet1000 => 1000,
        _ => 1,
    }
}

/// One side's receiving end: the data channel first, then idle ones.
struct Side {
    rxs: Vec<Receiver>,
    set: WaitSet,
}

impl Side {
    fn new(data: Receiver, case: &Case, who: &str) -> Result<Side> {
        let mut rxs = vec![data];
        for i in 1..width(case.kind) {
            rxs.push(Receiver::create(&case.object(&format!("{who}{i}")), 4096)?);
        }
        Ok(Side {
            rxs,
            set: WaitSet::new(),
        })
    }

    /// Waits on the whole set, then takes the data channel's message.
    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        loop {
            let mut refs: Vec<&mut dyn Waitable> = self
                .rxs
                .iter_mut()
                .map(|r| r as &mut dyn Waitable)
                .collect();
            let ready = self.set.wait(&mut refs)?;
            if ready.iter().any(|r| r.index == 0) {
                if let Some(m) = self.rxs[0].try_recv()? {
                    m.read_at(0, buf)?;
                    return Ok(());
                }
            }
        }
    }
}

pub(crate) struct Parent {
    tx: Sender,
    side: Side,
    buf: Vec<u8>,
}

impl Transport for WaitSetRt {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let cap = case.ring_capacity();
        let tx = Sender::create(&case.object("ping"), cap)?;
        let rx = Receiver::create(&case.object("pong"), cap)?;
        Ok(Parent {
            tx,
            side: Side::new(rx, case, "p")?,
            buf: vec![0; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut buf = vec![0u8; case.size];
        let mut tx = Sender::open(&case.object("pong"))?;
        let mut side = Side::new(Receiver::open(&case.object("ping"))?, case, "c")?;
        ready();
        for _ in 0..case.total {
            side.recv(&mut buf)?;
            tx.send(&buf)?;
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        self.tx.send(&self.buf)?;
        self.side.recv(&mut self.buf)
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        unreachable!("WaitSet rows are round trips only")
    }
}
