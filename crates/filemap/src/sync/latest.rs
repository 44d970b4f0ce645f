//! `Latest<T>`: one writer publishes values of a plain-old-data type; any
//! number of readers in other processes read the latest whole value, never a
//! torn one, without ever blocking the writer.
//!
//! ```
//! use filemap::sync::{LatestReader, LatestWriter};
//!
//! let mut w = LatestWriter::<[u64; 4]>::create("filemap-doc-latest", &[0; 4])?;
//! let r = LatestReader::<[u64; 4]>::open("filemap-doc-latest")?;
//! w.write(&[1, 2, 3, 4]);
//! assert_eq!(r.read()?, [1, 2, 3, 4]);
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # Design
//!
//! A seqlock over a ring of `N` value slots (`N` = 8 here). A sequence number
//! `s` precedes the slots. When `s = 2k` is even, slot `k % N` holds the
//! latest value. A write makes `s` odd (release store, then a release fence),
//! copies the new value into the *next* slot, and makes `s` even again with a
//! release store, which makes that slot the current one.
//!
//! A reader loads `s` with acquire and copies the slot holding the latest
//! *complete* value: slot `k % N` for `s = 2k`, and for an odd `s = 2k + 1`
//! (a write in progress) the slot before the one being written, `k % N` as
//! well. It then issues an acquire fence and loads `s` again. The slot it
//! copied is next overwritten by the write that makes `s` reach `2k + 2N - 1`,
//! so the copy is whole if `s` is still below that; otherwise the reader tries
//! again. Readers write nothing, so any number of them never slow the writer.
//!
//! Readers are lock-free, not strictly wait-free: a reader retries only if
//! the writer starts `N - 1` writes during one copy. A copy pulls the slot's
//! lines from the writer's cache (a few hundred ns) while a write takes about
//! ten, so against a writer storing back to back in a loop the classic double
//! buffer (`N` = 2) retried often: on the 2-vCPU test machine a 128-byte read
//! averaged 620-960 ns with two slots and 310-365 ns with eight (one million
//! reads against `fm-helper latest-write`, each process pinned to a CPU).
//!
//! A writer that dies in the middle of a write leaves `s` odd and its slot
//! torn, but readers never read that slot: they keep getting the last whole
//! value. The next writer to open the cell finishes the interrupted write with
//! its first one.

use std::marker::PhantomData;
use std::sync::atomic::{fence, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::park::Side;
use crate::segment::{fingerprint, Kind, Segment, Spec, HEADER_LEN};

const SEQ: usize = HEADER_LEN;
const WRITER: Side = Side {
    owner: HEADER_LEN + 8,
    closed: HEADER_LEN + 16,
    role: "writer",
};
const VALUE: usize = HEADER_LEN + 64;
const SLOTS: u64 = 8;

/// Bytes from one value slot to the next: the value's size rounded up to a cache line.
fn stride<T>() -> usize {
    (std::mem::size_of::<T>() + 63) & !63
}

/// Offset of slot `i % SLOTS`.
fn slot<T>(i: u64) -> usize {
    VALUE + (i % SLOTS) as usize * stride::<T>()
}

fn total<T>() -> u64 {
    (VALUE + SLOTS as usize * stride::<T>()) as u64
}

fn spec<T>() -> Spec {
    let (size, align) = (
        std::mem::size_of::<T>() as u64,
        std::mem::align_of::<T>() as u64,
    );
    Spec {
        kind: Kind::Latest,
        fingerprint: fingerprint(
            Kind::Latest,
            &[
                SEQ as u64,
                WRITER.owner as u64,
                VALUE as u64,
                SLOTS,
                stride::<T>() as u64,
                size,
                align,
            ],
        ),
    }
}

fn checked<T>(seg: Segment) -> Result<Segment> {
    let size = std::mem::size_of::<T>() as u64;
    let h = seg.header();
    if h.param != size || h.total_len < total::<T>() {
        return Err(Error::Corrupt {
            object: seg.label().to_owned(),
            reason: format!(
                "it says its value is {} bytes in {} bytes, expected {size} in at least {}",
                h.param,
                h.total_len,
                total::<T>()
            ),
        });
    }
    Ok(seg)
}

/// The memory the seqlock works on: the sequence number, the value slots, and
/// the fences (std's or loom's). The cell runs the protocol over a segment;
/// the loom model below runs the very same functions over loom's atomics.
pub(crate) trait SeqMem {
    fn load_seq(&self, o: Ordering) -> u64;
    fn store_seq(&self, v: u64, o: Ordering);
    fn fence(&self, o: Ordering);
    /// How many value slots there are (at least 2).
    fn slots(&self) -> u64;
    /// Copies `value` into slot `i % slots`.
    fn write_slot(&self, i: u64, value: &[u8]);
    /// Copies slot `i % slots` into `buf`.
    fn read_slot(&self, i: u64, buf: &mut [u8]);
}

/// One write of the protocol (see the module docs). The sequence number is
/// advanced with wrapping arithmetic: a writer never panics on what another
/// process stored there (readers report such a number as corrupt).
pub(crate) fn seq_write<M: SeqMem>(m: &M, value: &[u8]) {
    let mut s = m.load_seq(Ordering::Relaxed);
    // An odd number was left by a writer that died mid-write: this write
    // finishes its slot instead of starting a new one.
    if s % 2 == 0 {
        // Release, not relaxed: a reader that loads this odd number reads the
        // previous value's slot and must see that value whole, so this store
        // must carry the previous write's bytes with it (a relaxed store after
        // a release store does not; the loom model below found it).
        m.store_seq(s.wrapping_add(1), Ordering::Release);
        // Orders the odd store before the new slot's bytes for any reader that
        // sees those bytes (pairs with the reader's acquire fence).
        m.fence(Ordering::Release);
        s = s.wrapping_add(1);
    }
    m.write_slot(s.div_ceil(2), value);
    m.store_seq(s.wrapping_add(1), Ordering::Release);
}

/// How many copies a read tries before it gives up. A copy is retried only
/// when the writer completed `slots - 1` writes during it, which an honest
/// writer (whose writes are as long as the copy) cannot do this many times
/// in a row; a hostile one can, and must not hang the reader.
pub(crate) const READ_TRIES: u32 = 10_000;

/// Why a read failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The sequence number is past anything the protocol reaches.
    Corrupt(u64),
    /// Every one of [`READ_TRIES`] copies was overwritten while it was made.
    Starved,
}

/// One read of the protocol: fills `buf` with the last whole value.
pub(crate) fn seq_read<M: SeqMem>(m: &M, buf: &mut [u8]) -> Result<(), ReadError> {
    for _ in 0..READ_TRIES {
        let s1 = m.load_seq(Ordering::Acquire);
        // Slot k % n holds the last complete value for s1 = 2k and 2k + 1.
        let k = s1 / 2;
        // That slot is rewritten from s = 2k + 2n - 1 on (with n = 2: 2k + 3).
        // Checked: a number this large is not one a writer reached.
        let rewritten = k
            .checked_mul(2)
            .and_then(|x| x.checked_add(2 * m.slots() - 1))
            .ok_or(ReadError::Corrupt(s1))?;
        m.read_slot(k, buf);
        m.fence(Ordering::Acquire);
        if m.load_seq(Ordering::Relaxed) < rewritten {
            return Ok(());
        }
        std::hint::spin_loop();
    }
    Err(ReadError::Starved)
}

/// The seqlock's memory in a segment for values of type `T`.
struct SegSeq<'a, T>(&'a Segment, PhantomData<T>);

impl<T> SeqMem for SegSeq<'_, T> {
    fn load_seq(&self, o: Ordering) -> u64 {
        self.0.a64(SEQ).load(o)
    }
    fn store_seq(&self, v: u64, o: Ordering) {
        self.0.a64(SEQ).store(v, o)
    }
    fn fence(&self, o: Ordering) {
        fence(o)
    }
    fn slots(&self) -> u64 {
        SLOTS
    }
    fn write_slot(&self, i: u64, value: &[u8]) {
        self.0
            .view()
            .write_at_raw(slot::<T>(i), value)
            .expect("the slots lie in the segment (checked at open)")
    }
    fn read_slot(&self, i: u64, buf: &mut [u8]) {
        self.0
            .view()
            .read_at_raw(slot::<T>(i), buf)
            .expect("the slots lie in the segment (checked at open)")
    }
}

/// The writing end of a seqlock cell: only one process at a time.
#[derive(Debug)]
pub struct LatestWriter<T> {
    seg: Segment,
    _t: PhantomData<fn(T) -> T>,
}

/// A reading end of a seqlock cell: any number, in any processes.
#[derive(Debug)]
pub struct LatestReader<T> {
    seg: Segment,
    _t: PhantomData<fn() -> T>,
}

impl<T: FromBytes + IntoBytes + Immutable> LatestWriter<T> {
    /// Creates the cell `name` holding `initial`, and becomes its writer.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create(name: &str, initial: &T) -> Result<Self> {
        Self::create_with(name, initial, &Options::new())
    }

    /// [`LatestWriter::create`] with options.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create_with(name: &str, initial: &T, opts: &Options) -> Result<Self> {
        let seg = create_cell(name, initial, opts)?;
        WRITER.claim(&seg)?;
        Ok(LatestWriter {
            seg,
            _t: PhantomData,
        })
    }

    /// Opens an existing cell as its writer (after the previous writer closed or died).
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`] (for
    /// example another `T`), [`Error::Busy`] while another writer lives.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`LatestWriter::open`] with options (ready timeout).
    ///
    /// # Errors
    /// As [`LatestWriter::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let seg = checked::<T>(Segment::open(name, opts, spec::<T>())?)?;
        WRITER.claim(&seg)?;
        Ok(LatestWriter {
            seg,
            _t: PhantomData,
        })
    }

    /// Publishes `value`. Never waits for readers.
    pub fn write(&mut self, value: &T) {
        seq_write(&SegSeq::<T>(&self.seg, PhantomData), value.as_bytes());
    }
}

/// Creates the cell `name` holding `initial`, with no writer yet.
fn create_cell<T: IntoBytes + Immutable>(
    name: &str,
    initial: &T,
    opts: &Options,
) -> Result<Segment> {
    let size = std::mem::size_of::<T>() as u64;
    let seg = Segment::create(name, opts, spec::<T>(), 1, size, total::<T>())?;
    // s = 0: slot 0 is current.
    seg.view().write_at(slot::<T>(0), initial.as_bytes())?;
    Ok(seg)
}

impl<T> Drop for LatestWriter<T> {
    fn drop(&mut self) {
        WRITER.close(&self.seg);
    }
}

impl<T: FromBytes + IntoBytes + Immutable> LatestReader<T> {
    /// Creates the cell `name` holding `initial` and reads it; a writer
    /// opens it later with [`LatestWriter::open`].
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create(name: &str, initial: &T) -> Result<Self> {
        Self::create_with(name, initial, &Options::new())
    }

    /// [`LatestReader::create`] with options.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create_with(name: &str, initial: &T, opts: &Options) -> Result<Self> {
        Ok(LatestReader {
            seg: create_cell(name, initial, opts)?,
            _t: PhantomData,
        })
    }

    /// Opens the cell `name` for reading.
    ///
    /// # Errors
    /// As [`LatestWriter::open`], without [`Error::Busy`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`LatestReader::open`] with options (ready timeout).
    ///
    /// # Errors
    /// As [`LatestReader::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let seg = checked::<T>(Segment::open(name, opts, spec::<T>())?)?;
        Ok(LatestReader {
            seg,
            _t: PhantomData,
        })
    }

    /// The latest whole value: the last one a write completed. Never waits
    /// for the writer; a copy the writer overwrote is made again, a bounded
    /// number of times.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a sequence number no writer reaches (another
    /// process wrote it); [`Error::Busy`] when every one of 10,000 copies in a
    /// row was overwritten while it was made (no honest writer can do that).
    pub fn read(&self) -> Result<T> {
        let mut buf = T::new_zeroed();
        match seq_read(&SegSeq::<T>(&self.seg, PhantomData), buf.as_mut_bytes()) {
            Ok(()) => {
                self.seg.check_backed()?;
                Ok(buf)
            }
            Err(ReadError::Corrupt(s)) => Err(Error::Corrupt {
                object: self.seg.label().to_owned(),
                reason: format!("its sequence number {s} is past any a writer reaches"),
            }),
            Err(ReadError::Starved) => Err(Error::Busy {
                object: self.seg.label().to_owned(),
                reason: format!(
                    "the writer overwrote the value during each of {READ_TRIES} copies in a row"
                ),
            }),
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::atomic::{AtomicU64, AtomicU8};
    use loom::sync::Arc;

    /// Slots of relaxed loom atomics: loom then explores every interleaving
    /// and every value a relaxed load may return, torn ones included.
    struct Mem {
        seq: AtomicU64,
        slots: [[AtomicU8; 2]; 2],
    }

    impl SeqMem for Mem {
        fn load_seq(&self, o: Ordering) -> u64 {
            self.seq.load(o)
        }
        fn store_seq(&self, v: u64, o: Ordering) {
            self.seq.store(v, o)
        }
        fn fence(&self, o: Ordering) {
            loom::sync::atomic::fence(o)
        }
        fn slots(&self) -> u64 {
            // Two: the fewest, so that the writer laps readers within the
            // few writes loom can explore and the retry path is checked.
            2
        }
        fn write_slot(&self, i: u64, value: &[u8]) {
            for (b, v) in self.slots[(i % 2) as usize].iter().zip(value) {
                b.store(*v, Ordering::Relaxed);
            }
        }
        fn read_slot(&self, i: u64, buf: &mut [u8]) {
            for (b, v) in self.slots[(i % 2) as usize].iter().zip(buf) {
                *v = b.load(Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn seqlock_readers_never_see_a_torn_value() {
        // Three writes reuse both slots (the third reuses slot 1 while a reader
        // may be on slot 0); a preemption bound keeps the search to minutes.
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let mem = Arc::new(Mem {
                seq: AtomicU64::new(0),
                slots: [
                    [AtomicU8::new(0), AtomicU8::new(0)],
                    [AtomicU8::new(0), AtomicU8::new(0)],
                ],
            });
            let w = mem.clone();
            let writer = loom::thread::spawn(move || {
                for v in 1..=3u8 {
                    seq_write(&*w, &[v, v]);
                }
            });
            let mut last = 0;
            for _ in 0..2 {
                let mut buf = [0u8; 2];
                seq_read(&*mem, &mut buf).expect("an honest writer");
                assert_eq!(buf[0], buf[1], "torn value {buf:?}");
                assert!(buf[0] >= last, "went back from {last} to {}", buf[0]);
                last = buf[0];
            }
            writer.join().unwrap();
        });
    }
}
