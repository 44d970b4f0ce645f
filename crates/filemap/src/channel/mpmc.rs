//! A multi-producer multi-consumer channel of byte messages in fixed-size
//! slots: any number of senders and receivers, in any processes.
//!
//! ```
//! use filemap::channel::mpmc::Channel;
//!
//! let a = Channel::create("filemap-doc-mpmc", 8, 32)?; // 8 slots of up to 32 bytes
//! let b = Channel::open("filemap-doc-mpmc")?;           // in another process
//! assert!(a.try_send(b"one")?);
//! assert!(b.try_send(b"two")?);
//! assert_eq!(a.try_recv()?.as_deref(), Some(&b"one"[..]));
//! assert_eq!(a.try_recv()?.as_deref(), Some(&b"two"[..]));
//! assert_eq!(b.try_recv()?, None);
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # Design
//!
//! Dmitry Vyukov's bounded MPMC queue. Each slot has a sequence number;
//! `enq` and `deq` count positions ever claimed. A sender claims position `p`
//! when slot `p % slots` has sequence `p` (free for that lap) by a
//! compare-and-swap on `enq`, writes the message, and stores sequence `p + 1`
//! with release. A receiver claims `p` when the sequence is `p + 1` by a
//! compare-and-swap on `deq`, copies the message out, and stores `p + slots`
//! (free for the next lap) with release. Sequences are stored minus the slot's
//! index, so the zeroed segment is a valid empty queue.
//!
//! A process that claims a slot records itself in it. If it dies before
//! finishing (a sender before publishing, a receiver before freeing), the
//! others would wait at that slot for ever; instead, a blocked sender or
//! receiver checks every 10 ms whether the slot's claimer still runs, and if
//! not, retires the slot: a half-written message is skipped (never delivered)
//! and a slot a dead receiver was reading is freed (that message is lost with
//! its receiver). A process killed in the two instructions between claiming
//! and recording itself is not seen this way; the queue then stalls at that
//! slot (the known limit of this design).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Park;
use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::segment::{fingerprint, Kind, Segment, Spec, HEADER_LEN};
use crate::sys;

const ENQ: usize = HEADER_LEN;
const DEQ: usize = HEADER_LEN + 64;
const DATA_PARK: Park = Park {
    seq: HEADER_LEN + 128,
    waiting: HEADER_LEN + 132,
};
const SPACE_PARK: Park = Park {
    seq: HEADER_LEN + 192,
    waiting: HEADER_LEN + 196,
};
const SLOTS: usize = HEADER_LEN + 256;
/// Per slot: sequence (u64), claimer (u64), length (u64), then the bytes.
const SLOT_HEADER: usize = 24;
/// The length of a slot retired after its sender died: skipped, not delivered.
const SKIP: u64 = u64::MAX;
/// How often a blocked sender or receiver looks at a stuck slot's claimer.
const CHECK_EVERY: Duration = Duration::from_millis(10);

fn spec() -> Spec {
    Spec {
        kind: Kind::Mpmc,
        fingerprint: fingerprint(
            Kind::Mpmc,
            &[
                ENQ as u64,
                DEQ as u64,
                DATA_PARK.seq as u64,
                SPACE_PARK.seq as u64,
                SLOTS as u64,
                SLOT_HEADER as u64,
            ],
        ),
    }
}

fn stride(size: u64) -> u64 {
    SLOT_HEADER as u64 + ((size + 7) & !7)
}

/// A handle on the channel: sends and receives, from any thread of its process.
#[derive(Debug)]
pub struct Channel {
    seg: Segment,
    slots: u64,
    size: u64,
    me: u64,
}

impl Channel {
    /// Creates the channel `name` with `slots` slots (rounded up to a power of
    /// two) for messages of up to `max_message` bytes.
    ///
    /// # Errors
    /// As [`Options::create`]; [`Error::InvalidSize`] for 0 slots or bytes.
    pub fn create(name: &str, slots: u64, max_message: u64) -> Result<Channel> {
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
        Self::wrap(Segment::create(
            name,
            &Options::new(),
            spec(),
            slots,
            max_message,
            total,
        )?)
    }

    /// Opens the existing channel `name`.
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`].
    pub fn open(name: &str) -> Result<Channel> {
        Self::wrap(Segment::open(name, &Options::new(), spec())?)
    }

    fn wrap(seg: Segment) -> Result<Channel> {
        let h = seg.header();
        let (slots, size) = (h.capacity, h.param);
        let fits = slots
            .checked_mul(stride(size))
            .and_then(|b| b.checked_add(SLOTS as u64))
            .is_some_and(|need| need <= h.total_len);
        if !slots.is_power_of_two() || size == 0 || size > u64::from(u32::MAX) || !fits {
            return Err(Error::Corrupt {
                object: seg.label().to_owned(),
                reason: format!(
                    "its geometry ({slots} slots of {size} bytes in {} bytes) is invalid",
                    h.total_len
                ),
            });
        }
        Ok(Channel {
            seg,
            slots,
            size,
            me: sys::owner_word(std::process::id()),
        })
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.size as usize
    }

    fn at(&self, pos: u64) -> usize {
        SLOTS + ((pos % self.slots) * stride(self.size)) as usize
    }

    /// Sequence of the slot for `pos` (stored minus the slot's index).
    fn seq(&self, pos: u64) -> u64 {
        self.seg
            .a64(self.at(pos))
            .load(Ordering::Acquire)
            .wrapping_add(pos % self.slots)
    }

    fn set_seq(&self, pos: u64, seq: u64) {
        self.seg
            .a64(self.at(pos))
            .store(seq.wrapping_sub(pos % self.slots), Ordering::Release);
    }

    fn claimer(&self, pos: u64) -> &AtomicU64 {
        self.seg.a64(self.at(pos) + 8)
    }

    fn write_len(&self, pos: u64, len: u64) {
        self.seg
            .view()
            .write_at(self.at(pos) + 16, &len.to_ne_bytes())
            .expect("slots lie in the segment (checked at open)");
    }

    /// Sends `msg` if a slot is free now; `Ok(false)` when the channel is full.
    ///
    /// # Errors
    /// [`Error::InvalidSize`] over [`Channel::max_message`].
    pub fn try_send(&self, msg: &[u8]) -> Result<bool> {
        if msg.len() as u64 > self.size {
            return Err(Error::InvalidSize {
                object: self.seg.label().to_owned(),
                reason: format!(
                    "a message of {} bytes is larger than this channel's slots ({} bytes)",
                    msg.len(),
                    self.size
                ),
            });
        }
        let enq = self.seg.a64(ENQ);
        let mut pos = enq.load(Ordering::Relaxed);
        loop {
            let dif = self.seq(pos) as i64 - pos as i64;
            if dif == 0 {
                match enq.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(now) => pos = now,
                }
            } else if dif < 0 {
                return Ok(false);
            } else {
                pos = enq.load(Ordering::Relaxed);
            }
        }
        self.claimer(pos).store(self.me, Ordering::Relaxed);
        let at = self.at(pos);
        self.write_len(pos, msg.len() as u64);
        self.seg
            .view()
            .write_at(at + SLOT_HEADER, msg)
            .expect("slots lie in the segment (checked at open)");
        self.set_seq(pos, pos + 1);
        DATA_PARK.notify(&self.seg);
        Ok(true)
    }

    /// The next message if one is there.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a slot whose length is over the slot size.
    pub fn try_recv(&self) -> Result<Option<Vec<u8>>> {
        let deq = self.seg.a64(DEQ);
        let mut pos = deq.load(Ordering::Relaxed);
        loop {
            let dif = self.seq(pos) as i64 - (pos + 1) as i64;
            if dif == 0 {
                match deq.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => {}
                    Err(now) => {
                        pos = now;
                        continue;
                    }
                }
                self.claimer(pos).store(self.me, Ordering::Relaxed);
                let at = self.at(pos);
                let v = self.seg.view();
                let mut len = [0u8; 8];
                v.read_at(at + 16, &mut len)?;
                let len = u64::from_ne_bytes(len);
                let msg = if len == SKIP {
                    None
                } else if len > self.size {
                    self.set_seq(pos, pos + self.slots);
                    return Err(Error::Corrupt {
                        object: self.seg.label().to_owned(),
                        reason: format!(
                            "a message says it is {len} bytes, over the slot size {}",
                            self.size
                        ),
                    });
                } else {
                    let mut data = vec![0u8; len as usize];
                    v.read_at(at + SLOT_HEADER, &mut data)?;
                    Some(data)
                };
                self.set_seq(pos, pos + self.slots);
                SPACE_PARK.notify(&self.seg);
                match msg {
                    Some(m) => return Ok(Some(m)),
                    // A retired slot (its sender died): go on to the next.
                    None => pos = deq.load(Ordering::Relaxed),
                }
            } else if dif < 0 {
                return Ok(None);
            } else {
                pos = deq.load(Ordering::Relaxed);
            }
        }
    }

    /// Retires the slot at the head of the queue if a dead sender left it
    /// claimed and unpublished, or a dead receiver left it unfreed.
    fn recover(&self) {
        // A sender claimed `deq`'s slot but never published it.
        let deq = self.seg.a64(DEQ).load(Ordering::Acquire);
        let enq = self.seg.a64(ENQ).load(Ordering::Acquire);
        if enq > deq
            && self.seq(deq) == deq
            && sys::owner_alive(self.claimer(deq).load(Ordering::Acquire)) == Some(false)
        {
            let at = self.at(deq);
            let stamp = self.seg.a64(at);
            let claimed = deq.wrapping_sub(deq % self.slots);
            // Mark the slot "skip", then publish it as if its sender had.
            self.write_len(deq, SKIP);
            if stamp
                .compare_exchange(claimed, claimed + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                DATA_PARK.notify(&self.seg);
            }
        }
        // A receiver claimed the slot `enq` needs (one lap back) and never freed it.
        let pos = enq;
        let back = pos.wrapping_sub(self.slots);
        if pos >= self.slots && deq > back && self.seq(pos) == back + 1 {
            let owner = self.claimer(pos).load(Ordering::Acquire);
            if sys::owner_alive(owner) == Some(false) {
                let stamp = self.seg.a64(self.at(pos));
                let idx = pos % self.slots;
                if stamp
                    .compare_exchange(
                        (back + 1).wrapping_sub(idx),
                        pos.wrapping_sub(idx),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    SPACE_PARK.notify(&self.seg);
                }
            }
        }
    }

    /// Sends `msg`, waiting at most `timeout` (`None`: without limit) for a slot.
    ///
    /// # Errors
    /// As [`Channel::try_send`], and [`Error::Timeout`].
    pub fn send(&self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut checked = Instant::now();
        loop {
            if self.try_send(msg)? {
                return Ok(());
            }
            let seg = &self.seg;
            SPACE_PARK.wait(seg, None, deadline, "a free slot", || {
                if checked.elapsed() >= CHECK_EVERY {
                    checked = Instant::now();
                    self.recover();
                }
                let (enq, pos) = (
                    seg.a64(ENQ).load(Ordering::SeqCst),
                    seg.a64(DEQ).load(Ordering::SeqCst),
                );
                Ok(enq.wrapping_sub(pos) < self.slots)
            })?;
        }
    }

    /// Waits at most `timeout` (`None`: without limit) for a message.
    ///
    /// # Errors
    /// As [`Channel::try_recv`], and [`Error::Timeout`].
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut checked = Instant::now();
        loop {
            if let Some(m) = self.try_recv()? {
                return Ok(m);
            }
            let seg = &self.seg;
            DATA_PARK.wait(seg, None, deadline, "a message", || {
                if checked.elapsed() >= CHECK_EVERY {
                    checked = Instant::now();
                    self.recover();
                }
                let pos = seg.a64(DEQ).load(Ordering::SeqCst);
                Ok(self.seq(pos) == pos + 1)
            })?;
        }
    }
}
