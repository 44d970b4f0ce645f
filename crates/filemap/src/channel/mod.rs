//! Channels between processes, built on [`crate::segment`].
//!
//! - [`spsc`]: one sender, one receiver, variable-length byte messages in a
//!   ring, with copying and zero-copy (reserve/commit, borrowed receive) APIs.
//! - [`mpmc`]: any number of senders and receivers, fixed-size slots.
//! - [`broadcast`]: one sender that never waits, any number of receivers each
//!   at its own pace; a receiver that falls behind learns how many it missed.
//!
//! Blocking operations spin briefly, then park: on Linux on a futex word in
//! the segment, on Windows on a named semaphore kept for that word (so a
//! sleeping peer costs no CPU, and an awake peer costs no system call); on
//! macOS, for now, by polling with short sleeps. While parked
//! they check every 10 ms whether the peer process still runs, so a peer killed
//! with SIGKILL gives [`crate::Error::PeerGone`], not a hang.
//!
//! Making progress (a send, a receive that frees space) costs no fence on
//! Linux: the side about to sleep issues a cross-process barrier instead
//! (`membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`), once per park. Each
//! process registers for it on a short-lived background thread when it first
//! opens a channel, and fences until that is done. A process that cannot use
//! it (an old kernel, a seccomp filter, or `FILEMAP_NO_MEMBARRIER` set in its
//! environment) marks the segment, and from then on every process using that
//! channel fences; elsewhere every process always fences. The hot paths
//! allocate nothing: receive into a buffer you keep ([`spsc::Receiver::try_recv`]
//! borrows in place; [`mpmc::Channel::try_recv_into`],
//! [`broadcast::Receiver::try_recv_into`]).

pub mod broadcast;
pub mod mpmc;
mod ring;
pub mod spsc;

use std::sync::atomic::{compiler_fence, fence, Ordering};
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

/// Version of the slot layout of MPMC and broadcast channels ([`SlotArray`]),
/// part of their fingerprints. 2: slots over half a line take whole lines.
pub(crate) const SLOT_FORMAT: u64 = 2;

/// Version of the wake-up protocol ([`Park`]), part of every channel's layout
/// fingerprint: processes that disagree on it could miss each other's
/// wake-ups, so they refuse each other's channels instead. 2: asymmetric
/// barriers (`membarrier`) where available.
pub(crate) const PARK_PROTOCOL: u64 = 2;

/// A pair of words waiters park on: `seq` changes on every wake-up, and
/// `waiting` counts those (about to be) parked, so that the other side makes
/// the wake-up system call only when someone waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Park {
    pub seq: usize,
    pub waiting: usize,
}

impl Park {
    /// Called by the side that made progress, right after the store that
    /// published it (release is enough). With the waiter's increment of
    /// `waiting` and its re-check of the progress, this is Dekker's pattern:
    /// either the waiter sees the progress, or we see it waiting and wake it.
    ///
    /// Dekker's pattern needs a full barrier on both sides, between the store
    /// and the load. Here it is asymmetric where the system allows: on Linux,
    /// a process registered for cross-process barriers
    /// (`sys::barrier_registered`) has only a compiler fence on this hot path,
    /// as long as every process attached can issue such barriers
    /// (`Segment::barriers_work`); the waiter, on its slow path, makes every
    /// running thread of the registered processes execute a barrier
    /// (`membarrier`, see `wait`). Either our load of `waiting` comes after
    /// that barrier (and sees the increment the waiter made before it), or our
    /// store came before it (and the waiter's re-check sees it). The same
    /// argument is behind liburcu's and folly's asymmetric fences. Unregistered
    /// processes (elsewhere: all) fence.
    ///
    /// Measured on a 2-vCPU VM, one fence per message held streaming of 64-byte
    /// messages to about 15 M msg/s (the sender waited for each line it had
    /// written to reach it); a sequentially consistent *store* of the progress
    /// instead of a fence was worse still for round trips (a locked exchange on
    /// the very line the other side polls).
    #[inline]
    pub(crate) fn notify(self, seg: &Segment) {
        if sys::barrier_registered() && seg.barriers_work() {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        let waiting = seg.a32(self.waiting).load(Ordering::Relaxed);
        if waiting != 0 {
            seg.a32(self.seq).fetch_add(1, Ordering::Release);
            seg.wake(self.seq, waiting);
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
            waiting.fetch_add(1, Ordering::Relaxed);
            // Pairs with the fence in `notify`, or stands in for it (see
            // there); `ready` then re-checks.
            fence(Ordering::SeqCst);
            if seg.barriers_work() && !sys::heavy_barrier() {
                // Refused after all (e.g. by a seccomp filter): from now on
                // everyone fences. A notifier that skipped its fence just
                // before this is caught by the re-check after PARK_SLICE.
                seg.need_fences();
            }
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
                        seg.wait_on(
                            self.seq,
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

/// The layout of a channel made of fixed-size slots (broadcast, MPMC): slot
/// `i` starts at `start + i * stride`, a `header` of bookkeeping then up to
/// `size` bytes of message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotArray {
    pub start: usize,
    pub header: usize,
    pub slots: u64,
    pub size: u64,
}

impl SlotArray {
    /// Bytes from one slot to the next: the header, then the bytes rounded up
    /// to 8; a slot of more than half a cache line is rounded up to whole
    /// lines ([`SLOT_FORMAT`] 2).
    ///
    /// Slots that share a line make a receiver reading one slot and a sender
    /// filling the next fight over that line; whole lines cut that out
    /// (`filemap bench --only mpmc --sizes 64`, streaming: 7.2 -> 9.0 M msg/s,
    /// three runs each). Small slots stay packed: with two 32-byte slots in a
    /// line, 8-byte round trips were faster (1.3x against 1.5x the floor), as
    /// the next slot's line is already at hand.
    #[inline]
    pub(crate) fn stride(&self) -> u64 {
        let packed = self.header as u64 + ((self.size + 7) & !7);
        if packed > 32 {
            (packed + 63) & !63
        } else {
            packed
        }
    }

    /// Where the slot of message/position `n` starts.
    pub(crate) fn slot(&self, n: u64) -> usize {
        self.start + ((n % self.slots) * self.stride()) as usize
    }

    /// Bytes the segment needs, or `None` if that overflows.
    fn total(&self) -> Option<u64> {
        self.slots
            .checked_mul(self.stride())?
            .checked_add(self.start as u64)
    }

    /// The layout for a new channel `name` of at least `slots` slots (rounded up
    /// to a power of two) of `size` bytes, and the segment size it needs.
    pub(crate) fn new(
        name: &str,
        start: usize,
        header: usize,
        slots: u64,
        size: u64,
    ) -> Result<(SlotArray, u64)> {
        let bad = |reason: String| Error::InvalidSize {
            object: name.to_owned(),
            reason,
        };
        if slots == 0 || size == 0 || size > u64::from(u32::MAX) {
            return Err(bad(format!(
                "{slots} slots of {size} bytes: both must be at least 1, bytes at most 4 GiB"
            )));
        }
        let slots = slots
            .checked_next_power_of_two()
            .ok_or_else(|| bad(format!("{slots} slots is too many")))?;
        let a = SlotArray {
            start,
            header,
            slots,
            size,
        };
        let total = a
            .total()
            .ok_or_else(|| bad(format!("{slots} slots of {size} bytes overflow")))?;
        Ok((a, total))
    }

    /// The layout an existing segment's header describes, checked against its size.
    pub(crate) fn of(seg: &Segment, start: usize, header: usize) -> Result<SlotArray> {
        let h = seg.header();
        let a = SlotArray {
            start,
            header,
            slots: h.capacity,
            size: h.param,
        };
        let fits = a.total().is_some_and(|need| need <= h.total_len);
        if !a.slots.is_power_of_two() || a.size == 0 || a.size > u64::from(u32::MAX) || !fits {
            return Err(Error::Corrupt {
                object: seg.label().to_owned(),
                reason: format!(
                    "its geometry ({} slots of {} bytes in {} bytes) is invalid",
                    a.slots, a.size, h.total_len
                ),
            });
        }
        Ok(a)
    }
}
