//! The SPSC ring's algorithm, apart from where its memory lives: the channel
//! runs it over a segment, the loom model (below) over loom atomics, so the
//! model checks the very code the channel runs.
//!
//! # Records
//!
//! A message is an 8-byte record header and its bytes, padded to 8. The
//! header is one atomic `u64`: the length (low 32 bits), a *stamp* (bits
//! 32..63) and a padding flag (bit 63). The stamp is derived from the lap, the
//! number of times the ring has been gone round at that point
//! ([`stamp`]), and is never 0. A message that would wrap is preceded by a
//! padding record that fills the ring to its end, so every message is
//! contiguous; a message is at most `capacity / 2 - 8` bytes.
//!
//! # Publishing
//!
//! The receiver does not read the sender's index on its hot path: it reads
//! the header where the next record must start, and a header is valid when its
//! stamp is the one expected for that lap. So for a small message it waits on
//! one cache line, the one the message is in. For that to be sound:
//!
//! - The sender writes the message's bytes, then stores its header with
//!   release (a caller then checks for a sleeping receiver, see `Park`); the
//!   receiver loads the header with acquire before it reads the bytes.
//! - Before publishing a header, the sender zeroes the word where the *next*
//!   record will start. Zero is never a valid header, and the zeroing
//!   happens-before the publishing store; so when the receiver goes on to that
//!   word it finds zero, or a header published later, never stale bytes of an
//!   old message that happen to look like a header. (The sender keeps 8 bytes
//!   free past its records for this.)
//! - A padding record is published after the message that follows it.
//!
//! The receiver frees space by storing its index (`head`) with release; it
//! does so in batches of a quarter of the ring, and whenever the ring is empty
//! or it is about to wait, so that the sender always gets space eventually.
//! The sender loads `head` with acquire, only when its cached copy says the
//! ring is full.
//!
//! Whatever is read from shared memory is checked: lengths against the limit
//! and the ring's end, indices against each other. A corrupt segment gives an
//! error, never an out-of-bounds access.

use std::sync::atomic::Ordering;

/// Bytes of a record header.
pub(crate) const REC: u64 = 8;
/// The largest index (`head`, `tail`) a channel accepts from its segment:
/// 2^62 bytes is centuries of traffic, so a larger one is corrupt; below it,
/// index arithmetic cannot overflow.
pub(crate) const MAX_INDEX: u64 = 1 << 62;
const PAD_BIT: u64 = 1 << 63;
const STAMP_MASK: u64 = 0x7fff_ffff;

#[inline]
pub(crate) fn round8(n: u64) -> u64 {
    (n + 7) & !7
}

/// The stamp of records in lap `lap`: in `1..2^31`, never 0.
#[inline]
pub(crate) fn stamp(lap: u64) -> u64 {
    lap % STAMP_MASK + 1
}

/// `abs % cap` for a power-of-two `cap` (every ring's: checked at open),
/// without a division: a 64-bit `div` takes tens of cycles, and a send and a
/// receive did six of them (the compiler cannot know `cap` is a power of two).
#[inline(always)]
fn offset_in(abs: u64, cap: u64) -> u64 {
    debug_assert!(cap.is_power_of_two());
    abs & (cap - 1)
}

/// `abs / cap` (the lap) for a power-of-two `cap`.
#[inline(always)]
fn lap_of(abs: u64, cap: u64) -> u64 {
    debug_assert!(cap.is_power_of_two());
    abs >> cap.trailing_zeros()
}

#[inline]
fn header(len: u64, lap: u64, pad: bool) -> u64 {
    len | (stamp(lap) << 32) | if pad { PAD_BIT } else { 0 }
}

/// The memory a ring works on: the receiver's index and the ring's bytes,
/// whose 8-byte-aligned words can also be accessed atomically.
pub(crate) trait RingMem {
    fn load_head(&self, o: Ordering) -> u64;
    fn store_head(&self, v: u64, o: Ordering);
    /// The record header word at ring offset `off` (8-aligned, in range).
    fn load_word(&self, off: usize, o: Ordering) -> u64;
    fn store_word(&self, off: usize, v: u64, o: Ordering);
    /// Copies `data` to ring offset `off` (in range: the callers check).
    fn write(&self, off: usize, data: &[u8]);
    /// Copies ring offset `off..` into `buf` (in range: the callers check).
    fn read(&self, off: usize, buf: &mut [u8]);
    /// Hints the CPU to fetch the cache line at ring offset `off` (in range).
    fn prefetch(&self, _off: usize) {}
    /// Publishes how many messages the receiver has taken (with `head`, for
    /// observers such as `filemap info`; the ring itself never reads it).
    fn store_received(&self, _count: u64) {}
}

/// The sender's side: its own `tail`, and the last `head` it saw.
#[derive(Debug)]
pub(crate) struct Producer {
    pub cap: u64,
    pub tail: u64,
    pub head: u64,
}

/// Space found for one message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// Offset of the message's record header; its bytes follow.
    pub rec: usize,
    pub len: usize,
    /// Where the padding record goes, if the message wraps.
    pad: Option<usize>,
    pub new_tail: u64,
}

impl Producer {
    /// Largest message.
    pub(crate) fn max_message(&self) -> u64 {
        self.cap / 2 - REC
    }

    /// Bytes needed beyond `tail` for a message of `n` bytes: padding, the
    /// record, and the next record's header word that commit zeroes.
    #[inline]
    pub(crate) fn need(&self, n: u64) -> u64 {
        let rec = REC + round8(n);
        let to_end = self.cap - offset_in(self.tail, self.cap);
        let pad = if to_end < rec { to_end } else { 0 };
        pad + rec + REC
    }

    /// Reads `head` (acquire: the receiver is done with the bytes below it) and checks it.
    #[inline(never)]
    pub(crate) fn refresh<M: RingMem>(&mut self, m: &M) -> Result<(), String> {
        let head = m.load_head(Ordering::Acquire);
        if head > self.tail || self.tail - head > self.cap {
            return Err(format!(
                "the receiver's index {head} is outside {}..={}",
                self.tail.saturating_sub(self.cap),
                self.tail
            ));
        }
        self.head = head;
        Ok(())
    }

    /// Finds room for a message of `n` bytes (`n <= max_message`). `None` when
    /// the ring is full.
    #[inline(always)]
    pub(crate) fn reserve<M: RingMem>(&mut self, m: &M, n: u64) -> Result<Option<Slot>, String> {
        let need = self.need(n);
        if self.cap - (self.tail - self.head) < need {
            self.refresh(m)?;
            if self.cap - (self.tail - self.head) < need {
                return Ok(None);
            }
        }
        let rec = REC + round8(n);
        let pos = offset_in(self.tail, self.cap);
        let to_end = self.cap - pos;
        let (pad, at) = if to_end < rec {
            (Some(pos as usize), self.tail + to_end)
        } else {
            (None, self.tail)
        };
        Ok(Some(Slot {
            rec: offset_in(at, self.cap) as usize,
            len: n as usize,
            pad,
            new_tail: at + rec,
        }))
    }

    /// Publishes the message in `slot`, whose bytes are written (module docs),
    /// with release stores; a caller that then checks whether the receiver
    /// sleeps goes through `Park::notify`, which orders the two.
    #[inline(always)]
    pub(crate) fn commit<M: RingMem>(&mut self, m: &M, slot: Slot) {
        // The next record's header word: zero until that record is published.
        m.store_word(
            offset_in(slot.new_tail, self.cap) as usize,
            0,
            Ordering::Relaxed,
        );
        let lap = |abs: u64| lap_of(abs, self.cap);
        let msg_abs = slot.new_tail - REC - round8(slot.len as u64);
        let msg = header(slot.len as u64, lap(msg_abs), false);
        match slot.pad {
            None => m.store_word(slot.rec, msg, Ordering::Release),
            Some(p) => {
                m.store_word(slot.rec, msg, Ordering::Release);
                let pad = header(self.cap - p as u64 - REC, lap(self.tail), true);
                m.store_word(p, pad, Ordering::Release);
            }
        }
        self.tail = slot.new_tail;
    }

    /// After a sender died: starting from `tail`, skips the records it may have
    /// published without updating its index, so that none is overwritten.
    /// Returns how many messages it skipped (they were sent).
    pub(crate) fn resume<M: RingMem>(&mut self, m: &M) -> Result<u64, String> {
        let mut c = Consumer::new(self.cap, self.tail, 0);
        let mut skipped = 0u64;
        while let Some(found) = c.poll(m)? {
            skipped += 1;
            // A dead sender published at most a ring's worth past its index.
            if found.next_head - self.tail > self.cap {
                return Err(format!(
                    "records go on for more than the ring's {} bytes past the sender's index {}",
                    self.cap, self.tail
                ));
            }
            c.head = found.next_head;
        }
        self.tail = c.head;
        self.refresh(m)?;
        Ok(skipped)
    }
}

/// The receiver's side: its own `head`, and how much of it is published.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub cap: u64,
    pub head: u64,
    published: u64,
    /// Messages taken since the channel was made (published with `head`).
    received: u64,
}

/// A message found in the ring.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    /// Offset of the message's first byte.
    pub off: usize,
    pub len: usize,
    pub next_head: u64,
}

impl Consumer {
    pub(crate) fn new(cap: u64, head: u64, received: u64) -> Consumer {
        Consumer {
            cap,
            head,
            published: head,
            received,
        }
    }

    /// Where the header of the next record goes, from the start of the
    /// ring: the word that changes when it is written.
    pub(crate) fn head_offset(&self) -> usize {
        offset_in(self.head, self.cap) as usize
    }

    /// Whether the record at `head` is published: something to read, padding
    /// or message.
    #[inline]
    pub(crate) fn ready<M: RingMem>(&self, m: &M) -> bool {
        let word = m.load_word(offset_in(self.head, self.cap) as usize, Ordering::Acquire);
        (word >> 32) & STAMP_MASK == stamp(lap_of(self.head, self.cap))
    }

    /// The next message, skipping padding; `None` when there is none yet.
    #[inline(always)]
    pub(crate) fn poll<M: RingMem>(&mut self, m: &M) -> Result<Option<Found>, String> {
        loop {
            let pos = offset_in(self.head, self.cap);
            let to_end = self.cap - pos;
            // A message longer than what is left of this line goes on in the
            // next one. Asking for that line before loading the header puts
            // both fetches in flight together when the message lands, rather
            // than the second only after the header is seen (ring offsets are
            // line-aligned: DATA is). Measured, 64-byte round trips, p50 of
            // three same-machine runs each: 210 ns with the hint here, 231–251
            // with it after a header found not ready, as it was, and about 10 %
            // more without it; small messages unchanged.
            m.prefetch(offset_in((pos | 63) + 1, self.cap) as usize);
            // Acquire: the record's bytes are whole once its header is seen.
            let word = m.load_word(pos as usize, Ordering::Acquire);
            if (word >> 32) & STAMP_MASK != stamp(lap_of(self.head, self.cap)) {
                return Ok(None);
            }
            let len = word & 0xffff_ffff;
            if word & PAD_BIT != 0 {
                // Padding fills the ring's end when a message would not fit
                // there, so it is shorter than the longest record (half the
                // ring): one at the start of a lap, or longer, is not the
                // sender's. That also bounds this loop to one padding record.
                if len + REC != to_end || to_end >= self.cap / 2 {
                    return Err(format!(
                        "a padding record at {pos} has length {len}, which is not \
                         the {} bytes to the ring's end, or is longer than any message",
                        to_end - REC
                    ));
                }
                self.head += to_end;
                continue;
            }
            let rec = REC + round8(len);
            if len > self.cap / 2 - REC || rec > to_end {
                return Err(format!(
                    "a record at {pos} has length {len}, which does not fit"
                ));
            }
            return Ok(Some(Found {
                off: (pos + REC) as usize,
                len: len as usize,
                next_head: self.head + rec,
            }));
        }
    }

    /// Done with everything below `next_head`. Returns whether the index was
    /// published (the caller may then check whether the sender sleeps); it
    /// is, every quarter of the ring.
    #[inline]
    pub(crate) fn release<M: RingMem>(&mut self, m: &M, next_head: u64) -> bool {
        self.head = next_head;
        self.received = self.received.wrapping_add(1);
        if self.head - self.published >= self.cap / 4 {
            self.publish(m);
            return true;
        }
        false
    }

    /// Publishes `head` if it moved (before waiting, or when the ring is empty).
    #[inline]
    pub(crate) fn publish<M: RingMem>(&mut self, m: &M) -> bool {
        if self.published == self.head {
            return false;
        }
        self.published = self.head;
        // Release: our reads of the freed bytes happen-before the sender reuses them.
        m.store_head(self.head, Ordering::Release);
        m.store_received(self.received);
        true
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::atomic::AtomicU64;
    use loom::sync::Arc;

    /// The ring as loom atomic words. Message bytes are written and read with
    /// relaxed word accesses, so loom explores every value a read may see; the
    /// receiver checks each message's bytes, so a message delivered before it
    /// is whole, or a stale header taken for a new one, fails the model.
    struct Mem {
        head: AtomicU64,
        words: Vec<AtomicU64>,
    }

    impl RingMem for Mem {
        fn load_head(&self, o: Ordering) -> u64 {
            self.head.load(o)
        }
        fn store_head(&self, v: u64, o: Ordering) {
            self.head.store(v, o)
        }
        fn load_word(&self, off: usize, o: Ordering) -> u64 {
            self.words[off / 8].load(o)
        }
        fn store_word(&self, off: usize, v: u64, o: Ordering) {
            self.words[off / 8].store(v, o)
        }
        fn write(&self, off: usize, data: &[u8]) {
            // Only the sender writes: a read-modify-write of its own words.
            for (i, b) in data.iter().enumerate() {
                let w = &self.words[(off + i) / 8];
                let shift = 8 * ((off + i) % 8);
                let old = w.load(Ordering::Relaxed);
                w.store(
                    (old & !(0xff << shift)) | (u64::from(*b) << shift),
                    Ordering::Relaxed,
                );
            }
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            for (i, b) in buf.iter_mut().enumerate() {
                let w = self.words[(off + i) / 8].load(Ordering::Relaxed);
                *b = (w >> (8 * ((off + i) % 8))) as u8;
            }
        }
    }

    fn message(i: usize) -> Vec<u8> {
        // In a 64-byte ring (limit 24), the third message wraps.
        let len = [5, 20, 13][i];
        (0..len).map(|j| (i * 16 + j + 1) as u8).collect()
    }

    #[test]
    fn spsc_ring_delivers_whole_messages_in_order() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            const CAP: u64 = 64;
            let mem = Arc::new(Mem {
                head: AtomicU64::new(0),
                words: (0..CAP / 8).map(|_| AtomicU64::new(0)).collect(),
            });
            let m2 = mem.clone();
            let producer = loom::thread::spawn(move || {
                let mut p = Producer {
                    cap: CAP,
                    tail: 0,
                    head: 0,
                };
                for i in 0..3 {
                    let msg = message(i);
                    let slot = loop {
                        if let Some(s) = p.reserve(&*m2, msg.len() as u64).unwrap() {
                            break s;
                        }
                        loom::thread::yield_now();
                    };
                    m2.write(slot.rec + REC as usize, &msg);
                    p.commit(&*m2, slot);
                }
            });
            let mut c = Consumer::new(CAP, 0, 0);
            for i in 0..3 {
                let f = loop {
                    if let Some(f) = c.poll(&*mem).unwrap() {
                        break f;
                    }
                    // An empty ring: publish what was consumed, as the channel does.
                    c.publish(&*mem);
                    loom::thread::yield_now();
                };
                let mut got = vec![0; f.len];
                mem.read(f.off, &mut got);
                assert_eq!(got, message(i));
                c.release(&*mem, f.next_head);
            }
            producer.join().unwrap();
        });
    }
}
