//! Channels between processes, built on [`crate::segment`].
//!
//! - [`spsc`]: one sender, one receiver, variable-length byte messages in a
//!   ring, with copying and zero-copy (reserve/commit, borrowed receive) APIs.
//! - [`mpmc`]: any number of senders and receivers, fixed-size slots.
//! - [`broadcast`]: one sender that never waits, any number of receivers each
//!   at its own pace; a receiver that falls behind learns how many it missed.
//!
//! Blocking operations spin briefly, then park: on Linux on a futex word in
//! the segment (so a sleeping peer costs no CPU, and an awake peer costs no
//! system call); elsewhere, for now, by polling with short sleeps. While parked
//! they check every 10 ms whether the peer process still runs, so a peer killed
//! with SIGKILL gives [`crate::Error::PeerGone`], not a hang.

pub mod broadcast;
pub mod mpmc;
mod ring;
pub mod spsc;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::sys;

/// How long a parked waiter sleeps before it looks at its peer again.
const PARK_SLICE: Duration = Duration::from_millis(10);
/// Polls before parking: long enough to catch a peer that answers at once.
const SPINS: u32 = 2_000;

/// Where one endpoint (a role only one process may hold) keeps its state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side {
    /// `AtomicU64`: the holder's owner word ([`sys::owner_word`]), 0 if none.
    pub owner: usize,
    /// `AtomicU32`: 1 once the holder closed its end cleanly.
    pub closed: usize,
    /// Name of the role in messages ("sender").
    pub role: &'static str,
}

impl Side {
    /// Takes the role for this process: free, closed, or held by a dead process.
    pub(crate) fn claim(self, seg: &Segment) -> Result<()> {
        let me = sys::owner_word(std::process::id());
        let owner = seg.a64(self.owner);
        let mut cur = owner.load(Ordering::Acquire);
        loop {
            let closed = seg.a32(self.closed).load(Ordering::Acquire) == 1;
            if cur != 0 && !closed && sys::owner_alive(cur) != Some(false) {
                return Err(Error::Busy {
                    object: seg.label().to_owned(),
                    reason: format!("process {} already holds its {} end", cur as u32, self.role),
                });
            }
            match owner.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        seg.a32(self.closed).store(0, Ordering::Release);
        Ok(())
    }

    /// Marks the role closed cleanly (the holder is dropping its end).
    pub(crate) fn close(self, seg: &Segment) {
        seg.a32(self.closed).store(1, Ordering::Release);
    }

    /// `Err(PeerGone)` if the holder of this role closed its end or died.
    /// `check_alive` looks the process up (a system call or two); without it
    /// only the closed flag is read.
    pub(crate) fn check_peer(self, seg: &Segment, check_alive: bool) -> Result<()> {
        let gone = |reason: String| {
            Err(Error::PeerGone {
                object: seg.label().to_owned(),
                reason,
            })
        };
        if seg.a32(self.closed).load(Ordering::Acquire) == 1 {
            return gone(format!("the {} closed its end", self.role));
        }
        if check_alive {
            let owner = seg.a64(self.owner).load(Ordering::Acquire);
            if sys::owner_alive(owner) == Some(false) {
                return gone(format!("the {} (process {}) died", self.role, owner as u32));
            }
        }
        Ok(())
    }
}

/// A pair of words waiters park on: `seq` changes on every wake-up, and
/// `waiting` counts those (about to be) parked, so that the other side makes
/// the wake-up system call only when someone waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Park {
    pub seq: usize,
    pub waiting: usize,
}

impl Park {
    /// Called by the side that made progress, right after the sequentially
    /// consistent store that published it. With the waiter's sequentially
    /// consistent store of `waiting` and re-check of the progress, this is
    /// Dekker's pattern: either the waiter sees the progress, or we see it
    /// waiting and wake it. No fence is needed on this hot path.
    pub(crate) fn notify(self, seg: &Segment) {
        if seg.a32(self.waiting).load(Ordering::SeqCst) != 0 {
            let seq = seg.a32(self.seq);
            seq.fetch_add(1, Ordering::Release);
            sys::wake(seq, u32::MAX);
        }
    }

    /// Waits until `ready()` is true, the `peer` (if there is one to watch)
    /// is gone (an error), or the deadline passes (`Error::Timeout`).
    pub(crate) fn wait(
        self,
        seg: &Segment,
        peer: Option<Side>,
        deadline: Option<Instant>,
        what: &'static str,
        mut ready: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        for _ in 0..SPINS {
            if ready()? {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        let started = Instant::now();
        let waiting = seg.a32(self.waiting);
        loop {
            let seq = seg.a32(self.seq).load(Ordering::Acquire);
            waiting.fetch_add(1, Ordering::SeqCst);
            // `ready` re-checks with sequentially consistent loads (see `notify`).
            let outcome = if ready()? {
                Some(Ok(()))
            } else if let Some(Err(e)) = peer.map(|p| p.check_peer(seg, true)) {
                // The peer may have made its last progress just before it
                // closed or died: look once more, now that its end is seen gone.
                Some(if ready()? { Ok(()) } else { Err(e) })
            } else {
                match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                    Some(left) if left.is_zero() => Some(Err(Error::Timeout {
                        object: seg.label().to_owned(),
                        what,
                        waited: started.elapsed(),
                    })),
                    left => {
                        sys::wait_on(
                            seg.a32(self.seq),
                            seq,
                            left.map_or(PARK_SLICE, |l| l.min(PARK_SLICE)),
                        );
                        None
                    }
                }
            };
            waiting.fetch_sub(1, Ordering::Relaxed);
            if let Some(r) = outcome {
                return r;
            }
        }
    }
}
