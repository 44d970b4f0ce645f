//! Waiting on many sources at once (`crate::wait`): a receiver, and a
//! sender's room for a message ([`SpaceFor`]).

use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::park::Side;
use crate::segment::Segment;

use super::*;

impl crate::wait::Source for Receiver {
    fn segment(&self) -> &Segment {
        &self.seg
    }

    fn sleep_on(&self) -> (&Segment, crate::wait::Sleep, Option<Side>) {
        (&self.seg, crate::wait::Sleep::Park(DATA_PARK), Some(TX))
    }

    fn begin(&mut self) -> u64 {
        // A sender waiting for space must see what was consumed.
        self.publish();
        0
    }

    fn ready(&mut self, _baseline: u64) -> Result<bool> {
        Ok(self.ring.ready(&self.seg) || TX.check_peer(&self.seg, false).is_err())
    }
}

impl crate::wait::Sealed for Receiver {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::SourceRef(self)
    }
}

/// An spsc [`Sender`] as a [`WaitSet`](crate::wait::WaitSet) source: ready
/// when a message of its length fits (or the receiver is gone). Made by
/// [`Sender::space_for`].
#[derive(Debug)]
pub struct SpaceFor<'a> {
    tx: &'a mut Sender,
    len: usize,
}

impl Sender {
    /// This sender as a [`WaitSet`](crate::wait::WaitSet) source that is
    /// ready when a message of `len` bytes fits in the ring (or the receiver
    /// is gone).
    ///
    /// # Errors
    /// [`Error::InvalidSize`] for a message larger than the ring can ever hold.
    pub fn space_for(&mut self, len: usize) -> Result<SpaceFor<'_>> {
        self.check_len(len)?;
        Ok(SpaceFor { tx: self, len })
    }

    /// Whether a message of `len` bytes fits now (a corrupt index counts as
    /// yes: `try_reserve_slot` then reports it).
    pub(crate) fn fits(&self, len: usize) -> bool {
        let head = self.seg.a64(HEAD).load(Ordering::Acquire);
        let (tail, cap) = (self.ring.tail, self.ring.cap);
        head > tail || tail - head > cap || cap - (tail - head) >= self.ring.need(len as u64)
    }
}

impl crate::wait::Source for SpaceFor<'_> {
    fn sleep_on(&self) -> (&Segment, crate::wait::Sleep, Option<Side>) {
        (&self.tx.seg, crate::wait::Sleep::Park(SPACE_PARK), Some(RX))
    }

    fn ready(&mut self, _baseline: u64) -> Result<bool> {
        Ok(self.tx.fits(self.len) || RX.check_peer(&self.tx.seg, false).is_err())
    }
}

impl crate::wait::Sealed for SpaceFor<'_> {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::SourceRef(self)
    }
}

// async/await (`crate::wait::reactor`): never blocks the caller's thread.
