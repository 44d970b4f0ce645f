//! A broadcast channel: one sender, any number of receivers in any processes,
//! each at its own pace. The sender never waits; a receiver that falls more
//! than a ring behind skips to the oldest message still there and learns how
//! many it missed.
//!
//! ```
//! use filemap::channel::broadcast::{Receiver, Sender};
//!
//! let mut tx = Sender::create("filemap-doc-bcast", 4, 64)?; // 4 slots of 64 bytes
//! let mut rx = Receiver::open("filemap-doc-bcast")?; // sees what is sent from now on
//! for i in 0..6u8 {
//!     tx.send(&[i; 3])?;
//! }
//! // Six sent into four slots: the first two are gone.
//! let m = rx.try_recv()?.expect("a message");
//! assert_eq!((m.seq, m.data, m.missed), (2, vec![2; 3], 2));
//! assert_eq!(rx.try_recv()?.expect("a message").data, vec![3; 3]);
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # Design
//!
//! `slots` fixed-size slots (a power of two), and `tail`, the number of
//! messages ever sent. Message `n` goes to slot `n % slots`, guarded by that
//! slot's stamp, a per-slot seqlock: `2n + 1` while it is written, `2n + 2`
//! once whole. The sender stores the odd stamp (release, then a release
//! fence), the length and bytes, the even stamp (release), then `tail`. A
//! receiver that wants message `n` loads the stamp (acquire), copies, issues
//! an acquire fence and loads the stamp again: `2n + 2` both times means the
//! copy is whole. Anything else means the sender has lapped it: it reloads
//! `tail` and skips to the oldest message still in the ring, counting the
//! skipped ones. The sender writes nothing a receiver owns, so receivers never
//! slow it down, and a dead receiver costs nothing. A sender that dies
//! mid-write leaves an odd stamp: that message is never delivered.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use super::{Park, Side};
use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::segment::{fingerprint, Kind, Segment, Spec, HEADER_LEN};

const TAIL: usize = HEADER_LEN;
const TX: Side = Side {
    owner: HEADER_LEN + 8,
    closed: HEADER_LEN + 16,
    role: "sender",
};
const PARK: Park = Park {
    seq: HEADER_LEN + 64,
    waiting: HEADER_LEN + 68,
};
const SLOTS: usize = HEADER_LEN + 128;
/// Per slot: stamp (u64), length (u64), then the bytes.
const SLOT_HEADER: usize = 16;
/// How long a slot may contradict `tail` before the receiver reports the
/// segment as corrupt.
const STUCK: Duration = Duration::from_secs(2);

fn spec() -> Spec {
    Spec {
        kind: Kind::Broadcast,
        fingerprint: fingerprint(
            Kind::Broadcast,
            &[
                TAIL as u64,
                TX.owner as u64,
                PARK.seq as u64,
                SLOTS as u64,
                SLOT_HEADER as u64,
            ],
        ),
    }
}

/// Bytes per slot for messages of up to `size` bytes: header, then the bytes
/// rounded up to 8.
fn stride(size: u64) -> u64 {
    SLOT_HEADER as u64 + ((size + 7) & !7)
}

/// The geometry, checked against the segment's size.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    slots: u64,
    size: u64,
}

impl Geometry {
    fn of(seg: &Segment) -> Result<Geometry> {
        let h = seg.header();
        let (slots, size) = (h.capacity, h.param);
        let corrupt = |reason: String| Error::Corrupt {
            object: seg.label().to_owned(),
            reason,
        };
        if !slots.is_power_of_two() || size == 0 || size > u64::from(u32::MAX) {
            return Err(corrupt(format!(
                "its geometry ({slots} slots of {size} bytes) is invalid"
            )));
        }
        let need = slots
            .checked_mul(stride(size))
            .and_then(|b| b.checked_add(SLOTS as u64));
        if need.is_none_or(|n| n > h.total_len) {
            return Err(corrupt(format!(
                "{slots} slots of {size} bytes do not fit in {} bytes",
                h.total_len
            )));
        }
        Ok(Geometry { slots, size })
    }

    fn slot(&self, n: u64) -> usize {
        SLOTS + ((n % self.slots) * stride(self.size)) as usize
    }
}

/// The sending end (one process at a time).
#[derive(Debug)]
pub struct Sender {
    seg: Segment,
    geo: Geometry,
    tail: u64,
}

impl Sender {
    /// Creates the channel `name` with `slots` slots (rounded up to a power of
    /// two) for messages of up to `max_message` bytes, and becomes its sender.
    ///
    /// # Errors
    /// As [`Options::create`]; [`Error::InvalidSize`] for 0 slots or bytes, or
    /// a total that overflows.
    pub fn create(name: &str, slots: u64, max_message: u64) -> Result<Sender> {
        Self::create_with(name, slots, max_message, &Options::new())
    }

    /// [`Sender::create`] with options.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(name: &str, slots: u64, max_message: u64, opts: &Options) -> Result<Sender> {
        let bad = |reason: String| Error::InvalidSize {
            object: name.to_owned(),
            reason,
        };
        if slots == 0 || max_message == 0 || max_message > u64::from(u32::MAX) {
            return Err(bad(format!("{slots} slots of {max_message} bytes: both must be at least 1, bytes at most 4 GiB")));
        }
        let slots = slots
            .checked_next_power_of_two()
            .ok_or_else(|| bad(format!("{slots} slots is too many")))?;
        let total = slots
            .checked_mul(stride(max_message))
            .and_then(|b| b.checked_add(SLOTS as u64))
            .ok_or_else(|| bad(format!("{slots} slots of {max_message} bytes overflow")))?;
        let seg = Segment::create(name, opts, spec(), slots, max_message, total)?;
        Self::attach(seg)
    }

    /// Opens the existing channel `name` as its sender (after the previous
    /// sender closed or died; [`Error::Busy`] while it lives).
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`], [`Error::Busy`].
    pub fn open(name: &str) -> Result<Sender> {
        Self::attach(Segment::open(name, &Options::new(), spec())?)
    }

    fn attach(seg: Segment) -> Result<Sender> {
        let geo = Geometry::of(&seg)?;
        TX.claim(&seg)?;
        let mut tail = seg.a64(TAIL).load(Ordering::Acquire);
        // A sender that died after writing a message's even stamp but before
        // storing `tail` published that message: go past it.
        let stamp = seg.a64(geo.slot(tail)).load(Ordering::Acquire);
        if stamp == 2 * tail + 2 {
            tail += 1;
        }
        Ok(Sender { seg, geo, tail })
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.geo.size as usize
    }

    /// Sends `msg` to every receiver. Never waits.
    ///
    /// # Errors
    /// [`Error::InvalidSize`] when `msg` is longer than [`Sender::max_message`].
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if msg.len() as u64 > self.geo.size {
            return Err(Error::InvalidSize {
                object: self.seg.label().to_owned(),
                reason: format!(
                    "a message of {} bytes is larger than this channel's slots ({} bytes)",
                    msg.len(),
                    self.geo.size
                ),
            });
        }
        let n = self.tail;
        let at = self.geo.slot(n);
        let stamp = self.seg.a64(at);
        // Release (not relaxed): a receiver that loads it must see the previous
        // message of this slot whole (see the seqlock in `sync::latest`).
        stamp.store(2 * n + 1, Ordering::Release);
        // Orders the odd stamp before the bytes for a receiver that sees the bytes.
        fence(Ordering::Release);
        let v = self.seg.view();
        v.write_at(at + 8, &(msg.len() as u64).to_ne_bytes())?;
        v.write_at(at + SLOT_HEADER, msg)?;
        stamp.store(2 * n + 2, Ordering::Release);
        self.tail = n + 1;
        self.seg.a64(TAIL).store(self.tail, Ordering::SeqCst);
        PARK.notify(&self.seg);
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        TX.close(&self.seg);
        PARK.notify(&self.seg);
    }
}

/// A message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message's number: messages are numbered from 0 in the order sent.
    pub seq: u64,
    /// The message's bytes.
    pub data: Vec<u8>,
    /// How many messages this receiver missed just before this one (it fell
    /// more than a ring behind the sender).
    pub missed: u64,
}

/// A receiving end; any number may exist, in any processes.
#[derive(Debug)]
pub struct Receiver {
    seg: Segment,
    geo: Geometry,
    next: u64,
}

/// What one look at the ring found.
enum Look {
    Empty,
    Got(Received),
}

impl Receiver {
    /// Opens the channel `name`; the receiver gets the messages sent from now on.
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`].
    pub fn open(name: &str) -> Result<Receiver> {
        let seg = Segment::open(name, &Options::new(), spec())?;
        let geo = Geometry::of(&seg)?;
        let next = seg.a64(TAIL).load(Ordering::Acquire);
        Ok(Receiver { seg, geo, next })
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            object: self.seg.label().to_owned(),
            reason,
        }
    }

    fn look(&mut self) -> Result<Look> {
        let mut missed = 0;
        let started = Instant::now();
        let mut tries = 0u32;
        loop {
            let tail = self.seg.a64(TAIL).load(Ordering::Acquire);
            if tail <= self.next {
                return Ok(Look::Empty);
            }
            if tail - self.next > self.geo.slots {
                // Lapped: skip to the oldest message the ring still holds.
                let oldest = tail - self.geo.slots;
                missed += oldest - self.next;
                self.next = oldest;
            }
            let n = self.next;
            let at = self.geo.slot(n);
            let stamp = self.seg.a64(at);
            let s1 = stamp.load(Ordering::Acquire);
            if s1 > 2 * n + 2 {
                // The slot holds (or is being given) a later message m: the
                // sender lapped us. Messages after m - slots are intact.
                let m = (s1 - 1) / 2;
                let oldest = (m + 1).saturating_sub(self.geo.slots).max(n + 1);
                missed += oldest - n;
                self.next = oldest;
                continue;
            }
            if s1 == 2 * n + 2 {
                let v = self.seg.view();
                let mut len = [0u8; 8];
                v.read_at(at + 8, &mut len)?;
                let len = u64::from_ne_bytes(len);
                let data = if len <= self.geo.size {
                    let mut data = vec![0u8; len as usize];
                    v.read_at(at + SLOT_HEADER, &mut data)?;
                    Some(data)
                } else {
                    None
                };
                fence(Ordering::Acquire);
                if stamp.load(Ordering::Relaxed) == s1 {
                    let Some(data) = data else {
                        return Err(self.corrupt(format!(
                            "message {n} says it is {len} bytes, over the slot size {}",
                            self.geo.size
                        )));
                    };
                    self.next = n + 1;
                    return Ok(Look::Got(Received {
                        seq: n,
                        data,
                        missed,
                    }));
                }
                continue; // overwritten while we copied: the next look skips it
            }
            // An older stamp although `tail` says message n was sent: only a
            // corrupt segment does that for long.
            tries += 1;
            if tries % 1024 == 0 {
                if started.elapsed() > STUCK {
                    return Err(self.corrupt(format!(
                        "message {n} is counted as sent, but its slot's stamp is {s1}, not {}",
                        2 * n + 2
                    )));
                }
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
    }

    /// The next message if there is one. Reports a sender that closed its end
    /// once nothing is left (one that died is noticed by the blocking calls).
    ///
    /// # Errors
    /// [`Error::PeerGone`], [`Error::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Option<Received>> {
        match self.look()? {
            Look::Got(r) => Ok(Some(r)),
            Look::Empty => {
                if let Err(gone) = TX.check_peer(&self.seg, false) {
                    // Its last message may have landed just before it closed.
                    return match self.look()? {
                        Look::Got(r) => Ok(Some(r)),
                        Look::Empty => Err(gone),
                    };
                }
                Ok(None)
            }
        }
    }

    /// Waits for the next message, at most `timeout` (`None`: without limit).
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::PeerGone`] once nothing is left and the
    /// sender closed or died, [`Error::Corrupt`].
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Received> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Look::Got(r) = self.look()? {
                return Ok(r);
            }
            let (seg, next) = (&self.seg, self.next);
            PARK.wait(seg, TX, deadline, "a message", || {
                Ok(seg.a64(TAIL).load(Ordering::SeqCst) > next)
            })?;
        }
    }
}
