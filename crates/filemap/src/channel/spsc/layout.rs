//! The spsc channel's protocol: its segment's layout (module docs), the
//! ring over it (`super::super::ring`), making and checking the segment.

use std::sync::atomic::Ordering;

use crate::channel::ring::{RingMem, REC};
use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::park::{Park, Side, PARK_PROTOCOL};
use crate::segment::{fingerprint, Detail, Kind, Observation, Segment, Spec, HEADER_LEN};

// Each line is written by one side only, and the words a side polls on its
// hot path are on lines the other side does not write on its own: the
// sender's index line (written every commit) must not hold words the
// receiver reads while it waits, or each poll would pull that line away.
pub(super) const TAIL: usize = HEADER_LEN; // u64, the sender's line, written every commit
/// u64: messages sent since the channel was made, on the sender's line
/// (stored with `TAIL`; read by observers such as `filemap info`).
pub(super) const SENT: usize = HEADER_LEN + 8;
pub(super) const HEAD: usize = HEADER_LEN + 64; // u64, the receiver's line
/// u64: messages the receiver has taken, published with `HEAD` (so in the
/// same batches).
pub(super) const RECEIVED: usize = HEADER_LEN + 72;
/// The receiver parks here waiting for data.
pub(super) const DATA_PARK: Park = Park {
    seq: HEADER_LEN + 128,
    waiting: HEADER_LEN + 132,
    bell: HEADER_LEN + 136,
};
/// The sender parks here waiting for space.
pub(super) const SPACE_PARK: Park = Park {
    seq: HEADER_LEN + 192,
    waiting: HEADER_LEN + 196,
    bell: 0,
};
// Owners and closed flags: written on attach and close only, read often.
pub(super) const TX: Side = Side {
    owner: HEADER_LEN + 256,
    closed: HEADER_LEN + 264,
    role: "sender",
    shared: None,
};
pub(super) const RX: Side = Side {
    owner: HEADER_LEN + 272,
    closed: HEADER_LEN + 280,
    role: "receiver",
    shared: None,
};
pub(super) const DATA: usize = HEADER_LEN + 320;
/// Version of the record format (2: stamped headers, see `ring`; 3: side
/// words on their own line; 4: message counts beside the indices).
pub(super) const RING_FORMAT: u64 = 4;

/// The smallest ring.
pub const MIN_CAPACITY: u64 = 64;
/// The largest ring (4 GiB: a message's length fits the record header's 32 bits).
pub const MAX_CAPACITY: u64 = 1 << 32;

pub(super) fn spec() -> Spec {
    Spec {
        kind: Kind::Spsc,
        fingerprint: fingerprint(
            Kind::Spsc,
            &[
                TAIL as u64,
                HEAD as u64,
                SENT as u64,
                RECEIVED as u64,
                TX.owner as u64,
                RX.owner as u64,
                DATA_PARK.seq as u64,
                SPACE_PARK.seq as u64,
                DATA as u64,
                REC,
                RING_FORMAT,
                PARK_PROTOCOL,
            ],
        ),
    }
}

/// The ring's memory in a segment.
impl RingMem for Segment {
    #[inline(always)]
    fn load_head(&self, o: Ordering) -> u64 {
        self.a64(HEAD).load(o)
    }
    #[inline(always)]
    fn store_received(&self, count: u64) {
        // Release: an observer that sees this count sees the sender's count
        // of these messages too (it was stored before their headers).
        self.a64(RECEIVED).store(count, Ordering::Release)
    }
    #[inline(always)]
    fn store_head(&self, v: u64, o: Ordering) {
        self.a64(HEAD).store(v, o)
    }
    #[inline(always)]
    fn load_word(&self, off: usize, o: Ordering) -> u64 {
        self.a64(DATA + off).load(o)
    }
    #[inline(always)]
    fn store_word(&self, off: usize, v: u64, o: Ordering) {
        self.a64(DATA + off).store(v, o)
    }
    #[inline(always)]
    fn write(&self, off: usize, data: &[u8]) {
        self.view()
            .write_at_raw(DATA + off, data)
            .expect("ring offsets lie in the segment (checked at open)")
    }
    #[inline(always)]
    fn read(&self, off: usize, buf: &mut [u8]) {
        self.view()
            .read_at_raw(DATA + off, buf)
            .expect("ring offsets lie in the segment (checked at open)")
    }
    #[inline(always)]
    fn prefetch(&self, off: usize) {
        self.view().prefetch(DATA + off);
    }
}

/// Opens or creates the segment and checks the ring's geometry.
pub(super) fn ring(seg: Segment) -> Result<(Segment, u64)> {
    let cap = seg.header().capacity;
    let corrupt = |reason: String| Error::Corrupt {
        object: seg.label().to_owned(),
        reason,
    };
    if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
        return Err(corrupt(format!(
            "its ring capacity {cap} is not a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}"
        )));
    }
    if seg.header().total_len < DATA as u64 + cap {
        return Err(corrupt(format!(
            "it is {} bytes, too small for a ring of {cap}",
            seg.header().total_len
        )));
    }
    Ok((seg, cap))
}

pub(super) fn create_segment(name: &str, capacity: u64, opts: &Options) -> Result<(Segment, u64)> {
    let cap = capacity
        .max(MIN_CAPACITY)
        .checked_next_power_of_two()
        .filter(|c| *c <= MAX_CAPACITY);
    let Some(cap) = cap else {
        return Err(Error::InvalidSize {
            object: name.to_owned(),
            reason: format!(
                "a ring of {capacity} bytes is larger than the maximum, {MAX_CAPACITY}"
            ),
        });
    };
    ring(Segment::create(
        name,
        opts,
        spec(),
        cap,
        0,
        DATA as u64 + cap,
    )?)
}

pub(super) fn open_segment(name: &str, opts: &Options) -> Result<(Segment, u64)> {
    ring(Segment::open(name, opts, spec())?)
}

/// What the channel's words say now (see [`crate::inspect::observe`]).
pub(crate) fn observe(seg: Segment) -> Result<Observation> {
    seg.expect(spec())?;
    let (seg, cap) = ring(seg)?;
    let corrupt = |reason: String| Error::Corrupt {
        object: seg.label().to_owned(),
        reason,
    };
    // The receiver's words first (acquire): the sender's, read after, are
    // then at least as far along (their stores precede the messages).
    let received = seg.a64(RECEIVED).load(Ordering::Acquire);
    let head = seg.a64(HEAD).load(Ordering::Acquire);
    let sent = seg.a64(SENT).load(Ordering::Relaxed);
    let tail = seg.a64(TAIL).load(Ordering::Relaxed);
    for (what, i) in [("receiver's", head), ("sender's", tail)] {
        if i % REC != 0 || i > crate::channel::ring::MAX_INDEX {
            return Err(corrupt(format!(
                "the {what} index {i} is not a multiple of {REC} below 2^62"
            )));
        }
    }
    if received > sent {
        return Err(corrupt(format!(
            "its receiver counts {received} messages taken of {sent} sent"
        )));
    }
    Ok(Observation {
        ends: vec![TX.observe(&seg), RX.observe(&seg)],
        detail: Detail::Spsc {
            capacity: cap,
            max_message: cap / 2 - REC,
            queued: sent - received,
            // The sender stores its index just after publishing, so the
            // receiver's may pass it for an instant.
            queued_bytes: tail.saturating_sub(head).min(cap),
            sent,
            received,
            sent_bytes: tail,
        },
    })
}
