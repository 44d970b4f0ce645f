//! Channels between processes, built on [`crate::segment`].
//!
//! - [`spsc`]: one sender, one receiver, variable-length byte messages in a
//!   ring, with copying and zero-copy (reserve/commit, borrowed receive) APIs.
//! - [`mpmc`]: any number of senders and receivers, fixed-size slots.
//! - [`broadcast`]: one sender that never waits (or several shared ones),
//!   any number of receivers each at its own pace; a receiver that falls
//!   behind learns how many it missed.
//!
//! Blocking operations spin briefly, then park: on Linux on a futex word in
//! the segment, on Windows on a named semaphore kept for that word (so a
//! sleeping peer costs no CPU, and an awake peer costs no system call); on
//! macOS, for now, by polling with short sleeps. While parked
//! they check every 10 ms whether the peer process still runs, so a peer killed
//! with SIGKILL gives [`crate::Error::PeerGone`], not a hang.
//!
//! Making progress (a send, a receive that frees space) costs one fence, and
//! a system call only when the other side sleeps; the side about to sleep
//! fences too (Dekker's pattern, see `park::Park::notify`, where the
//! `membarrier` scheme this replaced, and why, is described). The hot paths
//! allocate nothing: receive into a buffer you keep ([`spsc::Receiver::try_recv`]
//! borrows in place; [`mpmc::Receiver::try_recv_into`],
//! [`broadcast::Receiver::try_recv_into`]).

pub mod broadcast;
pub mod mpmc;
mod ring;
#[allow(unsafe_code)]
pub mod spsc;

use crate::error::{Error, Result};
use crate::segment::Segment;

/// Version of the slot layout of MPMC and broadcast channels ([`SlotArray`]),
/// part of their fingerprints. 2: slots over half a line take whole lines.
pub(crate) const SLOT_FORMAT: u64 = 2;

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
    /// (`filemap-bench --only mpmc --sizes 64`, streaming: 7.2 -> 9.0 M msg/s,
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

    /// The index of the slot of message/position `n`: `n % slots`, by mask
    /// (`slots` is a power of two, checked at open; a division would cost
    /// tens of cycles on every access).
    #[inline(always)]
    pub(crate) fn index(&self, n: u64) -> u64 {
        debug_assert!(self.slots.is_power_of_two());
        n & (self.slots - 1)
    }

    /// Where the slot of message/position `n` starts.
    #[inline(always)]
    pub(crate) fn slot(&self, n: u64) -> usize {
        self.start + (self.index(n) * self.stride()) as usize
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
