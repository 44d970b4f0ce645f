//! The SPSC ring's algorithm, apart from where its memory lives: the channel
//! runs it over a segment, the loom model (below) over loom's atomics and
//! cells, so the model checks the very code the channel runs.
//!
//! Offsets handed out are relative to the start of the ring's data.

use std::sync::atomic::Ordering;

/// Bytes of a record header: length (u32) and flags (u32).
pub(crate) const REC: u64 = 8;
/// Flag of a padding record (skip to the end of the ring).
pub(crate) const PAD: u32 = 1;

pub(crate) fn round8(n: u64) -> u64 {
    (n + 7) & !7
}

/// The memory a ring works on: two indices and the data bytes.
pub(crate) trait RingMem {
    fn load_tail(&self, o: Ordering) -> u64;
    fn store_tail(&self, v: u64, o: Ordering);
    fn load_head(&self, o: Ordering) -> u64;
    fn store_head(&self, v: u64, o: Ordering);
    /// Copies `data` to ring offset `off` (in range: the callers check).
    fn write(&self, off: usize, data: &[u8]);
    /// Copies ring offset `off..` into `buf` (in range: the callers check).
    fn read(&self, off: usize, buf: &mut [u8]);
}

fn header(len: u32, flags: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&len.to_ne_bytes());
    h[4..].copy_from_slice(&flags.to_ne_bytes());
    h
}

/// The sender's side: its own `tail`, and the last `head` it saw.
#[derive(Debug)]
pub(crate) struct Producer {
    pub cap: u64,
    pub tail: u64,
    pub head: u64,
}

/// Space found for one record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// Offset of the record header; the message follows it.
    pub rec: usize,
    pub len: usize,
    pub new_tail: u64,
}

impl Producer {
    /// Largest message.
    pub(crate) fn max_message(&self) -> u64 {
        self.cap / 2 - REC
    }

    /// Bytes needed from `tail` for a message of `n` bytes (padding included).
    pub(crate) fn need(&self, n: u64) -> u64 {
        let rec = REC + round8(n);
        let to_end = self.cap - self.tail % self.cap;
        if to_end < rec {
            to_end + rec
        } else {
            rec
        }
    }

    /// Reads `head` (acquire: the receiver is done with the bytes below it) and checks it.
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

    /// Finds room for a message of `n` bytes (`n <= max_message`), writing a
    /// padding record first if it would wrap. `None` when the ring is full.
    pub(crate) fn reserve<M: RingMem>(&mut self, m: &M, n: u64) -> Result<Option<Slot>, String> {
        let need = self.need(n);
        if self.cap - (self.tail - self.head) < need {
            self.refresh(m)?;
            if self.cap - (self.tail - self.head) < need {
                return Ok(None);
            }
        }
        let rec = REC + round8(n);
        let pos = self.tail % self.cap;
        let to_end = self.cap - pos;
        let mut at = self.tail;
        if to_end < rec {
            // Published together with the message by commit's tail store.
            m.write(pos as usize, &header((to_end - REC) as u32, PAD));
            at += to_end;
        }
        Ok(Some(Slot {
            rec: (at % self.cap) as usize,
            len: n as usize,
            new_tail: at + rec,
        }))
    }

    /// Publishes the record in `slot`, whose message bytes are written.
    pub(crate) fn commit<M: RingMem>(&mut self, m: &M, slot: Slot) {
        m.write(slot.rec, &header(slot.len as u32, 0));
        self.tail = slot.new_tail;
        // Release: the record's bytes happen-before the receiver's acquire load.
        m.store_tail(self.tail, Ordering::Release);
    }
}

/// The receiver's side: its own `head`.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub cap: u64,
    pub head: u64,
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
    /// The next message, skipping padding; `None` when the ring is empty.
    /// Everything read from shared memory is checked.
    pub(crate) fn poll<M: RingMem>(&mut self, m: &M) -> Result<Option<Found>, String> {
        loop {
            // Acquire: the records below `tail` are whole.
            let tail = m.load_tail(Ordering::Acquire);
            if tail < self.head || tail - self.head > self.cap {
                return Err(format!(
                    "the sender's index {tail} is outside {}..={}",
                    self.head,
                    self.head + self.cap
                ));
            }
            if tail == self.head {
                return Ok(None);
            }
            let pos = self.head % self.cap;
            let to_end = self.cap - pos;
            let avail = tail - self.head;
            let mut h = [0u8; 8];
            m.read(pos as usize, &mut h);
            let len = u64::from(u32::from_ne_bytes([h[0], h[1], h[2], h[3]]));
            let flags = u32::from_ne_bytes([h[4], h[5], h[6], h[7]]);
            if flags == PAD {
                if len + REC != to_end || to_end > avail {
                    return Err(format!("a padding record at {pos} has length {len}"));
                }
                self.head += to_end;
                continue;
            }
            let rec = REC + round8(len);
            if flags != 0 || len > self.cap / 2 - REC || rec > to_end || rec > avail {
                return Err(format!(
                    "a record at {pos} has length {len} and flags {flags:#x}, which do not fit"
                ));
            }
            return Ok(Some(Found {
                off: (pos + REC) as usize,
                len: len as usize,
                next_head: self.head + rec,
            }));
        }
    }

    /// Frees everything up to `next_head` for the sender.
    pub(crate) fn release<M: RingMem>(&mut self, m: &M, next_head: u64) {
        self.head = next_head;
        // Release: our reads of the freed bytes happen-before the sender reuses them.
        m.store_head(self.head, Ordering::Release);
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicU64;
    use loom::sync::Arc;

    /// Ring memory made of loom atomics and loom cells, so that loom checks
    /// both the orderings and that no byte is read while it is being written.
    struct Mem {
        tail: AtomicU64,
        head: AtomicU64,
        data: Vec<UnsafeCell<u8>>,
    }

    impl RingMem for Mem {
        fn load_tail(&self, o: Ordering) -> u64 {
            self.tail.load(o)
        }
        fn store_tail(&self, v: u64, o: Ordering) {
            self.tail.store(v, o)
        }
        fn load_head(&self, o: Ordering) -> u64 {
            self.head.load(o)
        }
        fn store_head(&self, v: u64, o: Ordering) {
            self.head.store(v, o)
        }
        fn write(&self, off: usize, data: &[u8]) {
            for (i, b) in data.iter().enumerate() {
                // SAFETY: loom tracks this access and fails the model if it
                // races with another; the pointer is to a live cell.
                self.data[off + i].with_mut(|p| unsafe { *p = *b });
            }
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            for (i, b) in buf.iter_mut().enumerate() {
                // SAFETY: as in `write`.
                *b = self.data[off + i].with(|p| unsafe { *p });
            }
        }
    }

    fn message(i: usize) -> Vec<u8> {
        // Lengths chosen so that the third message wraps a 64-byte ring.
        let len = [5, 20, 13][i];
        (0..len).map(|j| (i * 16 + j) as u8).collect()
    }

    #[test]
    fn spsc_ring_delivers_whole_messages_in_order() {
        loom::model(|| {
            const CAP: u64 = 64;
            let mem = Arc::new(Mem {
                tail: AtomicU64::new(0),
                head: AtomicU64::new(0),
                data: (0..CAP).map(|_| UnsafeCell::new(0)).collect(),
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
            let mut c = Consumer { cap: CAP, head: 0 };
            for i in 0..3 {
                let f = loop {
                    if let Some(f) = c.poll(&*mem).unwrap() {
                        break f;
                    }
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
