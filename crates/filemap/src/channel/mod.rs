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

/// The most lines of its slot a sender fetches for writing before it writes
/// a message ([`SlotArray::lines_to_fetch`]): 1 KiB, past which the copy
/// itself streams.
const FETCH_LINES: usize = 16;

impl SlotArray {
    /// The offsets of the lines of the slot of message/position `n` that a
    /// sender about to write its first `reach` bytes (its header included)
    /// fetches for writing: from the slot's line `from` (0: its first) as far
    /// as `reach` goes inside the slot, at most [`FETCH_LINES`]. None in
    /// packed slots (half a line or less), whose lines hold other slots that
    /// a receiver may be reading.
    ///
    /// Why: a slot's lines were last read by a receiver, so each store to
    /// them waits for the receiver's copy to be invalidated, and stores drain
    /// in order, one wait after the other. Fetching the lines first puts those
    /// waits in flight together (`RawView::prefetch_write`; the figures are at
    /// the callers).
    #[inline(always)]
    pub(crate) fn lines_to_fetch(
        &self,
        n: u64,
        reach: usize,
        from: usize,
    ) -> impl Iterator<Item = usize> {
        fetch_lines(self.slot(n), self.stride() as usize, reach, from)
    }

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

/// [`SlotArray::lines_to_fetch`] for the slot at `at`, `stride` bytes long.
/// Saturating: no offset overflows, whatever the arguments.
#[inline(always)]
fn fetch_lines(at: usize, stride: usize, reach: usize, from: usize) -> impl Iterator<Item = usize> {
    let first = (at & !63).saturating_add(from.saturating_mul(64));
    let end = match stride < 64 {
        true => first,
        false => at.saturating_add(reach.min(stride)),
    };
    (first..end).step_by(64).take(FETCH_LINES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An mpmc slot's header (sequence, claim word, length).
    const MPMC: usize = 24;

    fn fetched(at: usize, stride: usize, reach: usize, from: usize) -> Vec<usize> {
        fetch_lines(at, stride, reach, from).collect()
    }

    #[test]
    fn a_sender_fetches_the_lines_its_message_reaches() {
        let at = 4096 + 5 * 128;
        // A 64-byte message in 128-byte slots: the header and 40 bytes in the
        // first line, 24 bytes in the second. The mpmc and broadcast senders
        // skip the first line (from 1); from 0 includes it.
        assert_eq!(fetched(at, 128, MPMC + 64, 1), [at + 64]);
        assert_eq!(fetched(at, 128, MPMC + 64, 0), [at, at + 64]);
        // Up to 40 bytes stay in the first line.
        assert_eq!(fetched(at, 128, MPMC + 40, 1), Vec::<usize>::new());
        assert_eq!(fetched(at, 128, MPMC + 41, 1), [at + 64]);
        assert_eq!(fetched(at, 128, MPMC, 1), Vec::<usize>::new());
        assert_eq!(fetched(at, 128, MPMC, 0), [at]);
        // 1 KiB (1,048 bytes with the header): lines 1 to 16 of the slot.
        let lines: Vec<usize> = (1..=16).map(|i| at + 64 * i).collect();
        assert_eq!(fetched(at, 1088, MPMC + 1024, 1), lines);
        // 64 KiB: 16 lines, no more.
        assert_eq!(fetched(at, 65_600, MPMC + 65_536, 1), lines);
        assert_eq!(fetched(at, 65_600, MPMC + 65_536, 0).len(), 16);
    }

    #[test]
    fn a_sender_fetches_nothing_outside_its_slot() {
        // The lines stop at the slot's end whatever the reach.
        let at = 4096 + 3 * 128;
        assert_eq!(fetched(at, 128, usize::MAX, 1), [at + 64]);
        assert_eq!(fetched(at, 128, usize::MAX, 2), Vec::<usize>::new());
        assert_eq!(
            fetched(at, 128, usize::MAX, usize::MAX),
            Vec::<usize>::new()
        );
        // Offsets at the top of the address space do not overflow.
        assert_eq!(
            fetched(usize::MAX - 100, 128, usize::MAX, 1),
            [usize::MAX - 63]
        );
        assert_eq!(
            fetched(usize::MAX - 10, 128, MPMC + 64, 1),
            Vec::<usize>::new()
        );
        // Packed slots (several to a line): the lines hold other slots too, so
        // nothing is fetched.
        for size in [1, 8] {
            let geo = SlotArray {
                start: 4096,
                header: MPMC,
                slots: 16,
                size,
            };
            assert!(geo.stride() < 64, "{size} bytes: stride {}", geo.stride());
            for n in 0..16 {
                for from in [0, 1] {
                    let reach = MPMC + size as usize;
                    assert_eq!(geo.lines_to_fetch(n, reach, from).count(), 0);
                }
            }
        }
        // Whole-line slots: every line fetched lies in the slot.
        for header in [16, MPMC] {
            for size in [33, 64, 100, 1000, 5000] {
                let geo = SlotArray {
                    start: 4096,
                    header,
                    slots: 16,
                    size,
                };
                let stride = geo.stride() as usize;
                for n in 0..16 {
                    let at = geo.slot(n);
                    let reach = header + size as usize;
                    for from in [0, 1] {
                        for line in geo.lines_to_fetch(n, reach, from) {
                            assert_eq!(line % 64, 0);
                            assert!(line >= at + 64 * from && line < at + stride);
                            assert!(line < at + reach, "{size}: {line} of {at}");
                        }
                    }
                }
            }
        }
    }
}
