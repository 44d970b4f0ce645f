//! Waiting on many sources at once (`crate::wait`): a receiver.

use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::segment::Segment;

use super::*;

impl crate::wait::Source for Receiver {
    fn segment(&self) -> &Segment {
        &self.q.seg
    }

    fn sleep_on(&self) -> (&Segment, crate::wait::Sleep, Option<crate::park::Side>) {
        (&self.q.seg, crate::wait::Sleep::Park(DATA_PARK), None)
    }

    fn ready(&mut self, _baseline: u64) -> Result<bool> {
        let pos = self.q.seg.a64(DEQ).load(Ordering::Acquire);
        Ok(self.q.seq(pos) == pos.wrapping_add(1))
    }

    fn maintain(&mut self) {
        self.q.recover();
    }
}

impl crate::wait::Sealed for Receiver {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::SourceRef(self)
    }
}

// async/await (`crate::wait::reactor`).
