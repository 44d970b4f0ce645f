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
use crate::segment::{fingerprint, Detail, Kind, Observation, Segment, Spec, HEADER_LEN};

const SEQ: usize = HEADER_LEN;
const WRITER: Side = Side {
    owner: HEADER_LEN + 8,
    closed: HEADER_LEN + 16,
    role: "writer",
    shared: None,
};
const VALUE: usize = HEADER_LEN + 64;
const SLOTS: u64 = 8;

/// The value's layout: its size in bytes and its alignment. A cell of
/// `T` and a byte cell ([`LatestBytesWriter`]) of the same size interoperate
/// when `T`'s alignment is 1 (`[u8; N]`).
#[derive(Debug, Clone, Copy)]
struct Layout {
    size: usize,
    align: usize,
}

impl Layout {
    fn of<T>() -> Layout {
        Layout {
            size: std::mem::size_of::<T>(),
            align: std::mem::align_of::<T>(),
        }
    }

    fn bytes(size: usize) -> Layout {
        Layout { size, align: 1 }
    }
}

/// Bytes from one value slot to the next: the value's size rounded up to a cache line.
fn stride(l: Layout) -> usize {
    (l.size + 63) & !63
}

/// Offset of slot `i % SLOTS`.
fn slot(l: Layout, i: u64) -> usize {
    VALUE + (i % SLOTS) as usize * stride(l)
}

fn total(l: Layout) -> u64 {
    (VALUE + SLOTS as usize * stride(l)) as u64
}

fn spec(l: Layout) -> Spec {
    let (size, align) = (l.size as u64, l.align as u64);
    Spec {
        kind: Kind::Latest,
        fingerprint: fingerprint(
            Kind::Latest,
            &[
                SEQ as u64,
                WRITER.owner as u64,
                VALUE as u64,
                SLOTS,
                stride(l) as u64,
                size,
                align,
            ],
        ),
    }
}

fn checked(seg: Segment, l: Layout) -> Result<Segment> {
    let size = l.size as u64;
    let h = seg.header();
    if h.param != size || h.total_len < total(l) {
        return Err(Error::Corrupt {
            object: seg.label().to_owned(),
            reason: format!(
                "it says its value is {} bytes in {} bytes, expected {size} in at least {}",
                h.param,
                h.total_len,
                total(l)
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

/// One read of the protocol: fills `buf` with the last whole value and
/// returns its version (the number of writes completed when it was written;
/// 0 for the initial value).
pub(crate) fn seq_read<M: SeqMem>(m: &M, buf: &mut [u8]) -> Result<u64, ReadError> {
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
            return Ok(k);
        }
        std::hint::spin_loop();
    }
    Err(ReadError::Starved)
}

/// The seqlock's memory in a segment for values of layout `l`.
struct SegSeq<'a>(&'a Segment, Layout);

impl SeqMem for SegSeq<'_> {
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
            .write_at_raw(slot(self.1, i), value)
            .expect("the slots lie in the segment (checked at open)")
    }
    fn read_slot(&self, i: u64, buf: &mut [u8]) {
        self.0
            .view()
            .read_at_raw(slot(self.1, i), buf)
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
        let seg = create_cell(name, initial.as_bytes(), Layout::of::<T>(), opts)?;
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
        let l = Layout::of::<T>();
        let seg = checked(Segment::open(name, opts, spec(l))?, l)?;
        WRITER.claim(&seg)?;
        Ok(LatestWriter {
            seg,
            _t: PhantomData,
        })
    }

    /// Publishes `value`. Never waits for readers.
    pub fn write(&mut self, value: &T) {
        seq_write(&SegSeq(&self.seg, Layout::of::<T>()), value.as_bytes());
    }
}

/// Creates the cell `name` holding `initial` (of layout `l`), with no writer yet.
fn create_cell(name: &str, initial: &[u8], l: Layout, opts: &Options) -> Result<Segment> {
    let seg = Segment::create(name, opts, spec(l), 1, l.size as u64, total(l))?;
    // s = 0: slot 0 is current.
    seg.view().write_at(slot(l, 0), initial)?;
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
            seg: create_cell(name, initial.as_bytes(), Layout::of::<T>(), opts)?,
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
        let l = Layout::of::<T>();
        let seg = checked(Segment::open(name, opts, spec(l))?, l)?;
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
        read_cell(&self.seg, Layout::of::<T>(), buf.as_mut_bytes())?;
        Ok(buf)
    }
}

/// Copies the latest whole value of the cell in `seg` into `buf`; returns
/// its version.
fn read_cell(seg: &Segment, l: Layout, buf: &mut [u8]) -> Result<u64> {
    match seq_read(&SegSeq(seg, l), buf) {
        Ok(version) => seg.check_backed().map(|()| version),
        Err(ReadError::Corrupt(s)) => Err(Error::Corrupt {
            object: seg.label().to_owned(),
            reason: format!("its sequence number {s} is past any a writer reaches"),
        }),
        Err(ReadError::Starved) => Err(Error::Busy {
            object: seg.label().to_owned(),
            reason: format!(
                "the writer overwrote the value during each of {READ_TRIES} copies in a row"
            ),
        }),
    }
}

/// The writing end of a seqlock cell of `size` bytes chosen at run time
/// (not a Rust type): for bindings (Python) and byte payloads. It
/// interoperates with `LatestWriter<[u8; N]>`/`LatestReader<[u8; N]>` of
/// the same size.
///
/// ```
/// use filemap::sync::{LatestBytesReader, LatestBytesWriter, LatestReader};
///
/// let mut w = LatestBytesWriter::create("filemap-doc-latest-bytes", &[0u8; 16])?;
/// let typed = LatestReader::<[u8; 16]>::open("filemap-doc-latest-bytes")?;
/// let bytes = LatestBytesReader::open("filemap-doc-latest-bytes")?;
/// w.write(&[7; 16])?;
/// assert_eq!(typed.read()?, [7; 16]);
/// assert_eq!(bytes.read()?, vec![7; 16]);
/// assert!(w.write(&[1; 3]).is_err()); // the cell holds 16 bytes
/// # Ok::<(), filemap::Error>(())
/// ```
#[derive(Debug)]
pub struct LatestBytesWriter {
    seg: Segment,
    size: usize,
}

/// A reading end of a byte seqlock cell (see [`LatestBytesWriter`]).
#[derive(Debug)]
pub struct LatestBytesReader {
    seg: Segment,
    size: usize,
}

/// Opens the byte cell `name` at the size its header records.
fn open_bytes(name: &str, opts: &Options) -> Result<(Segment, usize)> {
    let m = opts.open(name)?;
    let header = crate::segment::read_header(&m.view(.., crate::mapping::ViewAccess::Read)?)?;
    let size = header
        .filter(|h| h.kind == Kind::Latest)
        .map(|h| h.param)
        .ok_or_else(|| Error::Incompatible {
            object: name.to_owned(),
            reason: "it is not a Latest cell".into(),
        })?;
    let size = usize::try_from(size).map_err(|_| Error::Corrupt {
        object: name.to_owned(),
        reason: format!("its value size {size} does not fit this process"),
    })?;
    drop(m);
    let l = Layout::bytes(size);
    Ok((checked(Segment::open(name, opts, spec(l))?, l)?, size))
}

fn wrong_size(seg: &Segment, size: usize, got: usize) -> Error {
    Error::InvalidSize {
        object: seg.label().to_owned(),
        reason: format!("the cell holds {size} bytes, the value has {got}"),
    }
}

impl LatestBytesWriter {
    /// Creates the cell `name` holding `initial` (its size is the cell's),
    /// and becomes its writer.
    ///
    /// # Errors
    /// As [`Options::create`]; [`Error::InvalidSize`] for an empty value.
    pub fn create(name: &str, initial: &[u8]) -> Result<Self> {
        Self::create_with(name, initial, &Options::new())
    }

    /// [`LatestBytesWriter::create`] with options.
    ///
    /// # Errors
    /// As [`LatestBytesWriter::create`].
    pub fn create_with(name: &str, initial: &[u8], opts: &Options) -> Result<Self> {
        if initial.is_empty() {
            return Err(Error::InvalidSize {
                object: name.to_owned(),
                reason: "a Latest cell needs a value of at least 1 byte".into(),
            });
        }
        let seg = create_cell(name, initial, Layout::bytes(initial.len()), opts)?;
        WRITER.claim(&seg)?;
        Ok(LatestBytesWriter {
            seg,
            size: initial.len(),
        })
    }

    /// Opens an existing byte cell as its writer, at its recorded size.
    ///
    /// # Errors
    /// As [`LatestWriter::open`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`LatestBytesWriter::open`] with options.
    ///
    /// # Errors
    /// As [`LatestWriter::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let (seg, size) = open_bytes(name, opts)?;
        WRITER.claim(&seg)?;
        Ok(LatestBytesWriter { seg, size })
    }

    /// The value's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Publishes `value`, which must be [`size`](Self::size) bytes. Never
    /// waits for readers.
    ///
    /// # Errors
    /// [`Error::InvalidSize`] for a value of another size.
    pub fn write(&mut self, value: &[u8]) -> Result<()> {
        if value.len() != self.size {
            return Err(wrong_size(&self.seg, self.size, value.len()));
        }
        seq_write(&SegSeq(&self.seg, Layout::bytes(self.size)), value);
        Ok(())
    }
}

impl Drop for LatestBytesWriter {
    fn drop(&mut self) {
        WRITER.close(&self.seg);
    }
}

impl LatestBytesReader {
    /// Creates the cell `name` holding `initial` and reads it.
    ///
    /// # Errors
    /// As [`LatestBytesWriter::create`].
    pub fn create(name: &str, initial: &[u8]) -> Result<Self> {
        if initial.is_empty() {
            return Err(Error::InvalidSize {
                object: name.to_owned(),
                reason: "a Latest cell needs a value of at least 1 byte".into(),
            });
        }
        Ok(LatestBytesReader {
            seg: create_cell(name, initial, Layout::bytes(initial.len()), &Options::new())?,
            size: initial.len(),
        })
    }

    /// Opens the byte cell `name` for reading, at its recorded size.
    ///
    /// # Errors
    /// As [`LatestReader::open`].
    pub fn open(name: &str) -> Result<Self> {
        let (seg, size) = open_bytes(name, &Options::new())?;
        Ok(LatestBytesReader { seg, size })
    }

    /// The value's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The latest whole value, as [`LatestReader::read`].
    ///
    /// # Errors
    /// As [`LatestReader::read`].
    pub fn read(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0; self.size];
        self.read_into(&mut buf)?;
        Ok(buf)
    }

    /// [`LatestBytesReader::read`] into `buf` (exactly `size` bytes).
    ///
    /// # Errors
    /// As [`LatestReader::read`]; [`Error::InvalidSize`] for a buffer of
    /// another size.
    pub fn read_into(&self, buf: &mut [u8]) -> Result<()> {
        self.read_versioned(buf).map(drop)
    }

    /// [`LatestBytesReader::read_into`], returning the value's *version*:
    /// how many writes the cell had had when this value was written (0 for
    /// the value it was created with). Versions grow by one per write, so a
    /// reader that polls learns how many values it skipped.
    ///
    /// ```
    /// use filemap::sync::{LatestBytesReader, LatestBytesWriter};
    ///
    /// let mut w = LatestBytesWriter::create("filemap-doc-latest-version", &[0u8; 4])?;
    /// let r = LatestBytesReader::open("filemap-doc-latest-version")?;
    /// let mut buf = [0u8; 4];
    /// assert_eq!((r.version(), r.read_versioned(&mut buf)?), (0, 0));
    /// w.write(&[1; 4])?;
    /// w.write(&[2; 4])?;
    /// assert_eq!(r.version(), 2);
    /// assert_eq!(r.read_versioned(&mut buf)?, 2);
    /// assert_eq!(buf, [2; 4]);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`LatestBytesReader::read_into`].
    pub fn read_versioned(&self, buf: &mut [u8]) -> Result<u64> {
        if buf.len() != self.size {
            return Err(wrong_size(&self.seg, self.size, buf.len()));
        }
        read_cell(&self.seg, Layout::bytes(self.size), buf)
    }

    /// The version of the latest value (see
    /// [`read_versioned`](Self::read_versioned)), without copying it: a
    /// cheap test for "has it changed?". A write in progress counts as not
    /// yet done.
    pub fn version(&self) -> u64 {
        self.seg.a64(SEQ).load(Ordering::Acquire) / 2
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

/// What the cell's words say now (see [`crate::inspect::observe`]).
pub(crate) fn observe(seg: Segment) -> Result<Observation> {
    seg.expect_kind(Kind::Latest)?;
    let seq = seg.a64(SEQ).load(Ordering::Acquire);
    Ok(Observation {
        ends: vec![WRITER.observe(&seg)],
        detail: Detail::Latest {
            size: seg.header().param,
            version: seq / 2,
            writing: seq % 2 == 1,
        },
    })
}
