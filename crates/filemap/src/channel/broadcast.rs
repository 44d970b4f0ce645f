//! A broadcast channel: one sender (or several [`SharedSender`]s), any
//! number of receivers in any processes, each at its own pace. The sender
//! never waits; a receiver that falls more than a ring behind skips to the
//! oldest message still there and learns how many it missed.
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
//!
//! Several senders take turns through the *send lock*, a word naming who
//! writes now: the exclusive [`Sender`] takes it once for its whole life
//! (so its path has no atomic read-modify-write, as before shared senders
//! existed); a [`SharedSender`] takes it (compare-and-swap) around each
//! message, reading `tail` under it. A lock whose holder died is taken
//! over: the dead sender's half-written message has an odd stamp and
//! `tail` still at its number, so the next sender writes that number
//! again and no receiver ever sees the torn one. Shared senders register
//! in a table of owner words; receivers count the role gone only when no
//! registered one runs (`park::Side::shared`). Each message's length word
//! carries its sender (0: the exclusive one; shared sender `i`: `i + 1`).

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use super::{SlotArray, SLOT_FORMAT};
use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::park::{deadline_after, past_deadline, started_if, Park, Side, PARK_PROTOCOL};
use crate::segment::{fingerprint, Detail, Kind, Observation, Segment, Spec, HEADER_LEN};

const TAIL: usize = HEADER_LEN;
/// The sender role. With shared senders ([`SharedSender`]) the owner word
/// is the last one to attach, and the role lives while any of them does
/// (the table at `SENDERS`).
const TX: Side = Side {
    owner: HEADER_LEN + 8,
    closed: HEADER_LEN + 16,
    role: "sender",
    shared: Some((SENDERS, MAX_SHARED)),
};
/// u64: who may write the next message: 0 nobody, [`EXCLUSIVE`] the
/// [`Sender`] (held for its whole life), `i + 1` shared sender `i`.
const SEND_LOCK: usize = HEADER_LEN + 24;
const PARK: Park = Park {
    seq: HEADER_LEN + 64,
    waiting: HEADER_LEN + 68,
    bell: HEADER_LEN + 72,
};
/// [`MAX_SHARED`] owner words, one per shared sender (0: free).
const SENDERS: usize = HEADER_LEN + 128;
const SLOTS: usize = HEADER_LEN + 256;
/// Per slot: stamp (u64), length (low 32 bits) and sender (high 32 bits:
/// 0 for a [`Sender`], `i + 1` for shared sender `i`), then the bytes.
const SLOT_HEADER: usize = 16;
/// Shared senders at once.
pub const MAX_SHARED: usize = 16;
/// The send lock's value while a [`Sender`] holds it.
const EXCLUSIVE: u64 = u64::MAX;
/// Version of the broadcast protocol, part of the fingerprint. 2: shared
/// senders (the send lock, the sender table, the sender in the length word).
const BROADCAST_FORMAT: u64 = 2;

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
                PARK_PROTOCOL,
                SLOT_FORMAT,
                SEND_LOCK as u64,
                SENDERS as u64,
                MAX_SHARED as u64,
                BROADCAST_FORMAT,
            ],
        ),
    }
}

/// The memory the broadcast protocol works on (std atomics over a segment in
/// the channel, loom atomics in the model below: the same code runs in both).
pub(crate) trait SlotMem {
    /// Number of slots (a power of two).
    fn slots(&self) -> u64;
    /// Largest message.
    fn size(&self) -> u64;
    fn load_tail(&self, o: Ordering) -> u64;
    fn store_tail(&self, v: u64, o: Ordering);
    fn load_stamp(&self, n: u64, o: Ordering) -> u64;
    fn store_stamp(&self, n: u64, v: u64, o: Ordering);
    fn fence(&self, o: Ordering);
    /// Writes message `n`'s length word (length, sender) and bytes into its slot.
    fn write_msg(&self, n: u64, data: &[u8], sender: u32);
    /// Reads the length word in message `n`'s slot.
    fn read_len(&self, n: u64) -> u64;
    /// Reads the bytes in message `n`'s slot.
    fn read_data(&self, n: u64, buf: &mut [u8]);
    /// A hint before message `n` of `len` bytes is written: nothing shared
    /// changes (the channel fetches the slot's lines for writing; nothing in
    /// the loom model).
    #[inline(always)]
    fn about_to_write(&self, n: u64, len: usize) {
        let _ = (n, len);
    }
}

/// Publishes message `n` (see the module docs); `msg` fits the slot.
#[inline]
pub(crate) fn publish<M: SlotMem>(m: &M, n: u64, msg: &[u8], sender: u32) {
    m.about_to_write(n, msg.len());
    // Release (not relaxed): a receiver that loads it must see the previous
    // message of this slot whole (see the seqlock in `sync::latest`).
    m.store_stamp(n, 2 * n + 1, Ordering::Release);
    // Orders the odd stamp before the bytes for a receiver that sees the bytes.
    m.fence(Ordering::Release);
    m.write_msg(n, msg, sender);
    m.store_stamp(n, 2 * n + 2, Ordering::Release);
    m.store_tail(n + 1, Ordering::Release);
}

/// How many times one look goes round before it gives up for now: each
/// round either moves `*next` on or finds message `*next` overwritten while
/// it copied, so only a sender lapping a slow copier again and again, or a
/// hostile writer, makes it go round this often. The caller's wait, bounded
/// by its deadline, takes over.
const LOOK_ROUNDS: u32 = 64;

/// The largest message number the protocol accepts: stamps are `2n + 2`, and
/// a number this large (2^62 messages: centuries at any speed) only comes
/// from a corrupt segment.
const MAX_SEQ: u64 = 1 << 62;

/// One look for message `*next`: `Ok(None)` if nothing new (or nothing whole
/// after [`LOOK_ROUNDS`] tries), else the message's `(seq, missed, sender)`, its
/// bytes in `buf` (cleared first; it grows only to the largest message), and
/// `*next` moves past it. `Err` for a corrupt ring. Whatever the segment
/// holds, this neither panics nor loops without bound.
#[inline]
pub(crate) fn look<M: SlotMem>(
    m: &M,
    next: &mut u64,
    buf: &mut Vec<u8>,
) -> std::result::Result<Option<(u64, u64, u32)>, String> {
    let mut missed = 0u64;
    for _ in 0..LOOK_ROUNDS {
        let tail = m.load_tail(Ordering::Acquire);
        if tail <= *next {
            return Ok(None);
        }
        if tail > MAX_SEQ {
            return Err(format!("its message count {tail} is past 2^62"));
        }
        if tail - *next > m.slots() {
            // Lapped: skip to the oldest message the ring still holds.
            let oldest = tail - m.slots();
            missed = missed.saturating_add(oldest - *next);
            *next = oldest;
        }
        // n < tail <= MAX_SEQ, so 2n + 2 cannot overflow.
        let n = *next;
        let whole = 2 * n + 2;
        let s1 = m.load_stamp(n, Ordering::Acquire);
        if s1 > whole {
            // The slot holds (or is being given) a later message k: the sender
            // lapped us. Messages after k - slots are intact.
            let k = (s1 - 1) / 2;
            let oldest = (k + 1).saturating_sub(m.slots()).max(n + 1);
            missed = missed.saturating_add(oldest - n);
            *next = oldest;
            continue;
        }
        if s1 < whole {
            // `tail` says message n was sent, and the sender stores the
            // stamp before `tail` (release; we acquired `tail`): an older
            // stamp is not one the protocol leaves.
            return Err(format!(
                "message {n} is counted as sent, but its slot's stamp is {s1}, not {whole}"
            ));
        }
        let word = m.read_len(n);
        let (len, sender) = (word & 0xffff_ffff, (word >> 32) as u32);
        let fits = len <= m.size();
        if fits {
            buf.clear();
            buf.resize(len as usize, 0);
            m.read_data(n, buf);
        }
        m.fence(Ordering::Acquire);
        if m.load_stamp(n, Ordering::Relaxed) == s1 {
            if !fits {
                return Err(format!(
                    "message {n} says it is {len} bytes, over the slot size {}",
                    m.size()
                ));
            }
            *next = n + 1;
            return Ok(Some((n, missed, sender)));
        }
        // Overwritten while we copied: the next round skips it.
    }
    Ok(None)
}

/// The protocol over a segment.
struct SegSlots<'a> {
    seg: &'a Segment,
    geo: SlotArray,
}

impl SlotMem for SegSlots<'_> {
    #[inline]
    fn slots(&self) -> u64 {
        self.geo.slots
    }
    #[inline]
    fn size(&self) -> u64 {
        self.geo.size
    }
    #[inline]
    fn load_tail(&self, o: Ordering) -> u64 {
        self.seg.a64(TAIL).load(o)
    }
    #[inline]
    fn store_tail(&self, v: u64, o: Ordering) {
        self.seg.a64(TAIL).store(v, o)
    }
    #[inline]
    fn load_stamp(&self, n: u64, o: Ordering) -> u64 {
        self.seg.a64(self.geo.slot(n)).load(o)
    }
    #[inline]
    fn store_stamp(&self, n: u64, v: u64, o: Ordering) {
        self.seg.a64(self.geo.slot(n)).store(v, o)
    }
    #[inline]
    fn fence(&self, o: Ordering) {
        fence(o)
    }
    #[inline]
    fn write_msg(&self, n: u64, data: &[u8], sender: u32) {
        let (v, at) = (self.seg.view(), self.geo.slot(n));
        let word = data.len() as u64 | u64::from(sender) << 32;
        v.write_at_raw(at + 8, &word.to_ne_bytes())
            .and_then(|()| v.write_at_raw(at + SLOT_HEADER, data))
            .expect("slots lie in the segment (checked at open)");
    }
    #[inline]
    fn read_len(&self, n: u64) -> u64 {
        let mut len = [0u8; 8];
        self.seg
            .view()
            .read_at_raw(self.geo.slot(n) + 8, &mut len)
            .expect("slots lie in the segment (checked at open)");
        u64::from_ne_bytes(len)
    }
    /// The slot's lines after the first (whose stamp is stored first, at
    /// once) are fetched for writing, so that the message's stores do not
    /// each wait for receivers' copies to be invalidated
    /// ([`SlotArray::lines_to_fetch`]). Measured, three runs of each build
    /// alternated, `filemap-bench --only floor-spin,spsc-spin,broadcast,broadcast-blocking
    /// --sizes 8,64,1K --rounds 3`: 64-byte round trips 928, 1,060, 1,080 ->
    /// 882, 844, 834 ns spinning, 935, 1,070, 966 -> 834, 775, 845 ns
    /// blocking; 1 KiB streams 1.5-2.1 -> 3.4-4.3 M msg/s. Fetching the first
    /// line too was no better (842-945 ns).
    #[inline(always)]
    fn about_to_write(&self, n: u64, len: usize) {
        let view = self.seg.view();
        for line in self.geo.lines_to_fetch(n, SLOT_HEADER + len, 1) {
            view.prefetch_write(line);
        }
    }
    #[inline]
    fn read_data(&self, n: u64, buf: &mut [u8]) {
        self.seg
            .view()
            .read_at_raw(self.geo.slot(n) + SLOT_HEADER, buf)
            .expect("slots lie in the segment (checked at open)");
    }
}

/// The sending end (one process at a time).
#[derive(Debug)]
pub struct Sender {
    seg: Segment,
    geo: SlotArray,
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
        let (geo, total) = SlotArray::new(name, SLOTS, SLOT_HEADER, slots, max_message)?;
        let seg = Segment::create(name, opts, spec(), geo.slots, max_message, total)?;
        Self::attach(seg)
    }

    /// Opens the existing channel `name` as its sender (after the previous
    /// sender closed or died; [`Error::Busy`] while it lives).
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`], [`Error::Busy`].
    pub fn open(name: &str) -> Result<Sender> {
        Self::open_with(name, &Options::new())
    }

    /// [`Sender::open`] with options (ready timeout).
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Sender> {
        Self::attach(Segment::open(name, opts, spec())?)
    }

    fn attach(seg: Segment) -> Result<Sender> {
        let geo = SlotArray::of(&seg, SLOTS, SLOT_HEADER)?;
        TX.claim(&seg)?;
        if let Err(e) = take_lock_for_life(&seg) {
            TX.close(&seg);
            return Err(e);
        }
        let mut tail = seg.a64(TAIL).load(Ordering::Acquire);
        if tail > MAX_SEQ {
            return Err(Error::Corrupt {
                object: seg.label().to_owned(),
                reason: format!("its message count {tail} is past 2^62"),
            });
        }
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

    /// The channel's name, for messages.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn label(&self) -> &str {
        self.seg.label()
    }

    /// Sends `msg` to every receiver. Never waits (a receiver that falls a
    /// ring behind loses the oldest messages and is told how many), so this
    /// is the only form: there is no `try_send` or `send_timeout`.
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
        publish(
            &SegSlots {
                seg: &self.seg,
                geo: self.geo,
            },
            self.tail,
            msg,
            0,
        );
        self.tail += 1;
        PARK.notify(&self.seg);
        Ok(())
    }
}

/// A message written in place in its slot, then
/// [`commit`](Reservation::commit)ted. While it is held, receivers a ring
/// behind lose the message that slot held (as a send would make them).
/// Dropping it sends nothing: the next message takes its number.
#[derive(Debug)]
pub struct Reservation<'a> {
    tx: &'a mut Sender,
    len: usize,
}

impl Sender {
    /// A slot for an `n`-byte message, written in place (never waits, as
    /// [`Sender::send`]). A receiver never reads it before
    /// [`Reservation::commit`].
    ///
    /// ```
    /// # use filemap::channel::broadcast::{Receiver, Sender};
    /// let mut tx = Sender::create("filemap-doc-bcast-reserve", 4, 64)?;
    /// let mut rx = Receiver::open("filemap-doc-bcast-reserve")?;
    /// let mut r = tx.reserve(5)?;
    /// r.write_at(0, b"hello")?;
    /// r.commit();
    /// assert_eq!(rx.try_recv()?.unwrap().data, b"hello");
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidSize`] over [`Sender::max_message`].
    pub fn reserve(&mut self, n: usize) -> Result<Reservation<'_>> {
        if n as u64 > self.geo.size {
            return Err(Error::InvalidSize {
                object: self.seg.label().to_owned(),
                reason: format!(
                    "a message of {n} bytes is larger than this channel's slots ({} bytes)",
                    self.geo.size
                ),
            });
        }
        let mem = SegSlots {
            seg: &self.seg,
            geo: self.geo,
        };
        // As `publish` begins: the odd stamp, then the bytes may change.
        mem.about_to_write(self.tail, n);
        mem.store_stamp(self.tail, 2 * self.tail + 1, Ordering::Release);
        fence(Ordering::Release);
        Ok(Reservation { tx: self, len: n })
    }
}

impl Reservation<'_> {
    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.tx.seg.label()
    }

    /// The reserved length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a reservation of 0 bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` into the message at `offset`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past the reserved length.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        if offset.checked_add(data.len()).is_none_or(|e| e > self.len) {
            return Err(Error::OutOfRange {
                object: format!("{} (reserved message)", self.tx.seg.label()),
                offset: offset as u64,
                len: data.len() as u64,
                size: self.len as u64,
            });
        }
        let at = self.tx.geo.slot(self.tx.tail) + SLOT_HEADER + offset;
        self.tx.seg.view().write_at_raw(at, data)
    }

    /// The reserved bytes, to fill in place (what a C caller gets from
    /// `fm_broadcast_reserve`).
    ///
    /// # Safety
    /// The slot is marked as being written until the commit, so receivers
    /// that follow the protocol never take its bytes; the caller must be
    /// sure no other process writes this range while the slice lives.
    #[allow(unsafe_code)]
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        let at = self.tx.geo.slot(self.tx.tail) + SLOT_HEADER;
        let p = self.tx.seg.view().as_ptr().wrapping_add(at);
        // SAFETY: `len` is at most the slot size (checked by `reserve`), and
        // slots lie inside the view (checked at open); `&mut self` makes this
        // the only slice made through this reservation.
        unsafe { std::slice::from_raw_parts_mut(p, self.len) }
    }

    /// Publishes the message to every receiver.
    pub fn commit(self) {
        let tx = self.tx;
        let n = tx.tail;
        let (v, at) = (tx.seg.view(), tx.geo.slot(n));
        // The length word (sender 0: the exclusive one), then as `publish` ends.
        v.write_at_raw(at + 8, &(self.len as u64).to_ne_bytes())
            .expect("slots lie in the segment (checked at open)");
        tx.seg.a64(at).store(2 * n + 2, Ordering::Release);
        tx.seg.a64(TAIL).store(n + 1, Ordering::Release);
        tx.tail += 1;
        PARK.notify(&tx.seg);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.seg.a64(SEND_LOCK).store(0, Ordering::Release);
        TX.close(&self.seg);
        PARK.notify(&self.seg);
    }
}

/// Whether the holder of send-lock value `v` runs (`v` not 0).
fn lock_holder_alive(seg: &Segment, v: u64) -> bool {
    let owner = match v {
        EXCLUSIVE => {
            if seg.a32(TX.closed).load(Ordering::Acquire) == 1 {
                return false;
            }
            seg.a64(TX.owner).load(Ordering::Acquire)
        }
        i if (1..=MAX_SHARED as u64).contains(&i) => seg
            .a64(SENDERS + 8 * (i as usize - 1))
            .load(Ordering::Acquire),
        // Not a value the protocol writes: nobody holds it.
        _ => return false,
    };
    owner != 0 && crate::sys::owner_alive(owner) != Some(false)
}

/// The live shared senders' table entries (index, owner word).
fn live_shared(seg: &Segment) -> impl Iterator<Item = (usize, u64)> + '_ {
    (0..MAX_SHARED)
        .map(move |i| (i, seg.a64(SENDERS + 8 * i).load(Ordering::SeqCst)))
        .filter(|&(_, o)| o != 0 && crate::sys::owner_alive(o) != Some(false))
}

/// The exclusive [`Sender`] takes the send lock for its whole life:
/// refused while shared senders live.
fn take_lock_for_life(seg: &Segment) -> Result<()> {
    let lock = seg.a64(SEND_LOCK);
    let busy = |why: String| Error::Busy {
        object: seg.label().to_owned(),
        reason: why,
    };
    loop {
        let cur = lock.load(Ordering::SeqCst);
        if cur != 0 && cur != EXCLUSIVE && lock_holder_alive(seg, cur) {
            return Err(busy(format!("shared sender {} is sending on it", cur - 1)));
        }
        if lock
            .compare_exchange(cur, EXCLUSIVE, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            break;
        }
    }
    // A shared sender that registered meanwhile sees the lock and leaves;
    // one registered before is seen here.
    if let Some((i, o)) = live_shared(seg).next() {
        lock.store(0, Ordering::SeqCst);
        return Err(busy(format!(
            "shared sender {i} (process {}) is attached: use SharedSender",
            o as u32
        )));
    }
    Ok(())
}

/// One of several senders of a broadcast channel, in any processes (up to
/// [`MAX_SHARED`] at once): each message is written under the channel's
/// send lock, so messages of different senders never mix, and receivers
/// tell them apart ([`Received::sender`]). A shared sender killed while it
/// writes leaves a message nobody ever receives; the next sender takes the
/// lock over and writes in its place. Shared senders and an exclusive
/// [`Sender`] exclude each other (the exclusive one keeps its lock-free
/// path; each shared send takes and gives back the lock: two atomic
/// operations more).
///
/// ```
/// use filemap::channel::broadcast::{Receiver, SharedSender};
/// let mut a = SharedSender::create("filemap-doc-bcast-shared", 8, 64)?;
/// let mut b = SharedSender::open("filemap-doc-bcast-shared")?; // another process
/// let mut rx = Receiver::open("filemap-doc-bcast-shared")?;
/// a.send(b"from a")?;
/// b.send(b"from b")?;
/// let (m1, m2) = (rx.try_recv()?.unwrap(), rx.try_recv()?.unwrap());
/// assert_eq!((m1.data.as_slice(), m1.sender), (&b"from a"[..], a.id()));
/// assert_eq!((m2.data.as_slice(), m2.sender), (&b"from b"[..], b.id()));
/// # Ok::<(), filemap::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedSender {
    seg: Segment,
    geo: SlotArray,
    /// Its entry in the sender table.
    index: usize,
}

/// How many times a shared send polls a lock held by a live sender before
/// it looks at the clock (its deadline) and the holder again.
const LOCK_SPINS: u32 = 1 << 10;

impl SharedSender {
    /// Creates the channel `name` (see [`Sender::create`]) and becomes a
    /// shared sender of it.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create(name: &str, slots: u64, max_message: u64) -> Result<SharedSender> {
        Self::create_with(name, slots, max_message, &Options::new())
    }

    /// [`SharedSender::create`] with options.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(
        name: &str,
        slots: u64,
        max_message: u64,
        opts: &Options,
    ) -> Result<SharedSender> {
        let (geo, total) = SlotArray::new(name, SLOTS, SLOT_HEADER, slots, max_message)?;
        Self::attach(Segment::create(
            name,
            opts,
            spec(),
            geo.slots,
            max_message,
            total,
        )?)
    }

    /// Opens the channel `name` as one more shared sender.
    ///
    /// # Errors
    /// As [`Sender::open`]; [`Error::Busy`] while an exclusive [`Sender`]
    /// lives, or when [`MAX_SHARED`] shared senders do.
    pub fn open(name: &str) -> Result<SharedSender> {
        Self::open_with(name, &Options::new())
    }

    /// [`SharedSender::open`] with options.
    ///
    /// # Errors
    /// As [`SharedSender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<SharedSender> {
        Self::attach(Segment::open(name, opts, spec())?)
    }

    fn attach(seg: Segment) -> Result<SharedSender> {
        let geo = SlotArray::of(&seg, SLOTS, SLOT_HEADER)?;
        let me = crate::sys::owner_word(std::process::id());
        let busy = |why: String| Error::Busy {
            object: seg.label().to_owned(),
            reason: why,
        };
        let mut index = None;
        for i in 0..MAX_SHARED {
            let w = seg.a64(SENDERS + 8 * i);
            let cur = w.load(Ordering::SeqCst);
            let free = cur == 0 || crate::sys::owner_alive(cur) == Some(false);
            if free
                && w.compare_exchange(cur, me, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                index = Some(i);
                break;
            }
        }
        let Some(index) = index else {
            return Err(busy(format!(
                "all its {MAX_SHARED} shared sender slots are taken"
            )));
        };
        let lock = seg.a64(SEND_LOCK).load(Ordering::SeqCst);
        if lock == EXCLUSIVE && lock_holder_alive(&seg, lock) {
            seg.a64(SENDERS + 8 * index).store(0, Ordering::SeqCst);
            let owner = seg.a64(TX.owner).load(Ordering::Acquire);
            return Err(busy(format!(
                "process {} holds its exclusive sender end",
                owner as u32
            )));
        }
        // The role's owner word, for receivers' liveness checks (see `TX`).
        seg.a64(TX.owner).store(me, Ordering::Release);
        seg.a32(TX.closed).store(0, Ordering::Release);
        Ok(SharedSender { seg, geo, index })
    }

    /// This sender's id, as receivers see it in [`Received::sender`].
    pub fn id(&self) -> u32 {
        self.index as u32 + 1
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.geo.size as usize
    }

    /// Sends `msg` to every receiver, waiting only while another sender
    /// writes a message (a few hundred nanoseconds; a sender that died
    /// holding the lock is taken over at once).
    ///
    /// # Errors
    /// [`Error::InvalidSize`] over [`SharedSender::max_message`];
    /// [`Error::Busy`] if an exclusive [`Sender`] took the channel.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_opt(msg, None).map(|_| ())
    }

    /// Sends `msg` if no other sender is writing one now; `Ok(false)` if one is.
    ///
    /// # Errors
    /// As [`SharedSender::send`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<bool> {
        self.send_opt(msg, Some(Instant::now()))
    }

    /// [`SharedSender::send`], waiting at most `timeout` for the lock (a
    /// sender stopped while writing, as by `SIGSTOP`, holds it).
    ///
    /// # Errors
    /// As [`SharedSender::send`], and [`Error::Timeout`].
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_deadline_opt(msg, deadline_after(timeout))
    }

    /// [`SharedSender::send`], waiting until `deadline` at most for the lock.
    ///
    /// # Errors
    /// As [`SharedSender::send_timeout`].
    pub fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        self.send_deadline_opt(msg, Some(deadline))
    }

    fn send_deadline_opt(&mut self, msg: &[u8], deadline: Option<Instant>) -> Result<()> {
        let started = Instant::now();
        if self.send_opt(msg, deadline)? {
            return Ok(());
        }
        Err(Error::Timeout {
            object: self.seg.label().to_owned(),
            what: "the send lock",
            waited: started.elapsed(),
        })
    }

    /// Sends under the lock; `Ok(false)` when the deadline passed first.
    fn send_opt(&mut self, msg: &[u8], deadline: Option<Instant>) -> Result<bool> {
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
        if !self.lock(deadline)? {
            return Ok(false);
        }
        let mem = SegSlots {
            seg: &self.seg,
            geo: self.geo,
        };
        let mut n = self.seg.a64(TAIL).load(Ordering::Acquire);
        let result = if n > MAX_SEQ {
            Err(Error::Corrupt {
                object: self.seg.label().to_owned(),
                reason: format!("its message count {n} is past 2^62"),
            })
        } else {
            // A sender that died after the even stamp but before `tail`
            // published that message: go past it (as `Sender` does on attach).
            if mem.load_stamp(n, Ordering::Acquire) == 2 * n + 2 {
                n += 1;
            }
            publish(&mem, n, msg, self.id());
            Ok(true)
        };
        self.seg.a64(SEND_LOCK).store(0, Ordering::Release);
        PARK.notify(&self.seg);
        result
    }

    /// Takes the send lock (from nobody, or from a sender that died);
    /// `Ok(false)` when `deadline` passes first.
    fn lock(&self, deadline: Option<Instant>) -> Result<bool> {
        let lock = self.seg.a64(SEND_LOCK);
        let mine = self.index as u64 + 1;
        loop {
            for _ in 0..LOCK_SPINS {
                // Acquire: the previous holder's message and `tail` are seen.
                if lock
                    .compare_exchange_weak(0, mine, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(true);
                }
                std::hint::spin_loop();
            }
            let cur = lock.load(Ordering::Acquire);
            if cur == EXCLUSIVE && lock_holder_alive(&self.seg, cur) {
                return Err(Error::Busy {
                    object: self.seg.label().to_owned(),
                    reason: "an exclusive sender holds it".into(),
                });
            }
            if cur != 0
                && !lock_holder_alive(&self.seg, cur)
                && lock
                    .compare_exchange(cur, mine, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Its holder died (maybe mid-message: that message's stamp
                // stays odd and `tail` did not move, so it is written over).
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            self.seg.check_backed()?;
            std::thread::yield_now();
        }
    }
}

impl Drop for SharedSender {
    fn drop(&mut self) {
        let me = self
            .seg
            .a64(SENDERS + 8 * self.index)
            .swap(0, Ordering::SeqCst);
        match live_shared(&self.seg).next() {
            // Others remain: the role's owner word names one of them.
            Some((_, other)) => {
                let _ = self.seg.a64(TX.owner).compare_exchange(
                    me,
                    other,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            None => TX.close(&self.seg),
        }
        PARK.notify(&self.seg);
    }
}

/// A message as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// The message's number: messages are numbered from 0 in the order sent.
    pub seq: u64,
    /// The message's bytes.
    pub data: Vec<u8>,
    /// How many messages this receiver missed just before this one (it fell
    /// more than a ring behind the sender).
    pub missed: u64,
    /// Who sent it: 0 for a [`Sender`], [`SharedSender::id`] for a shared one.
    pub sender: u32,
}

/// A receiving end; any number may exist, in any processes.
#[derive(Debug)]
pub struct Receiver {
    seg: Segment,
    geo: SlotArray,
    next: u64,
    /// What [`Receiver::poll_recv`] keeps between polls.
    polled: crate::wait::reactor::Waiter,
}

impl Receiver {
    /// Creates the channel `name` (see [`Sender::create`]) and becomes a
    /// receiver of it; a sender opens it later with [`Sender::open`].
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create(name: &str, slots: u64, max_message: u64) -> Result<Receiver> {
        Self::create_with(name, slots, max_message, &Options::new())
    }

    /// [`Receiver::create`] with options.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(
        name: &str,
        slots: u64,
        max_message: u64,
        opts: &Options,
    ) -> Result<Receiver> {
        let (geo, total) = SlotArray::new(name, SLOTS, SLOT_HEADER, slots, max_message)?;
        Self::attach(Segment::create(
            name,
            opts,
            spec(),
            geo.slots,
            max_message,
            total,
        )?)
    }

    /// Opens the channel `name`; the receiver gets the messages sent from now on.
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`].
    pub fn open(name: &str) -> Result<Receiver> {
        Self::open_with(name, &Options::new())
    }

    /// [`Receiver::open`] with options (ready timeout).
    ///
    /// # Errors
    /// As [`Receiver::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Receiver> {
        Self::attach(Segment::open(name, opts, spec())?)
    }

    fn attach(seg: Segment) -> Result<Receiver> {
        let geo = SlotArray::of(&seg, SLOTS, SLOT_HEADER)?;
        let next = seg.a64(TAIL).load(Ordering::Acquire);
        Ok(Receiver {
            seg,
            geo,
            next,
            polled: crate::wait::reactor::Waiter::default(),
        })
    }

    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.seg.label()
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            object: self.seg.label().to_owned(),
            reason,
        }
    }

    /// One look; fills `into` and says true when there was a message.
    fn look(&mut self, into: &mut Received) -> Result<bool> {
        let mem = SegSlots {
            seg: &self.seg,
            geo: self.geo,
        };
        match look(&mem, &mut self.next, &mut into.data) {
            Ok(Some((seq, missed, sender))) => {
                into.seq = seq;
                into.missed = missed;
                into.sender = sender;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(reason) => Err(self.corrupt(reason)),
        }
    }

    /// The next message if there is one. Reports a sender that closed its end
    /// once nothing is left (one that died is noticed by the blocking calls).
    ///
    /// # Errors
    /// [`Error::PeerGone`], [`Error::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Option<Received>> {
        let mut r = Received::default();
        Ok(self.try_recv_into(&mut r)?.then_some(r))
    }

    /// [`Receiver::try_recv`] into `into`, reusing its buffer: once that has
    /// grown to the largest message, receiving allocates nothing. `Ok(false)`
    /// when there is no message (then `into` is unspecified).
    ///
    /// ```
    /// # use filemap::channel::broadcast::{Received, Receiver, Sender};
    /// let mut tx = Sender::create("filemap-doc-bcast-into", 8, 64)?;
    /// let mut rx = Receiver::open("filemap-doc-bcast-into")?;
    /// let mut got = Received::default();
    /// tx.send(b"tick")?;
    /// assert!(rx.try_recv_into(&mut got)?);
    /// assert_eq!((got.seq, got.data.as_slice(), got.missed), (0, &b"tick"[..], 0));
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Receiver::try_recv`].
    pub fn try_recv_into(&mut self, into: &mut Received) -> Result<bool> {
        if self.look(into)? {
            return Ok(true);
        }
        self.seg.check_backed()?;
        if let Err(gone) = TX.check_peer(&self.seg, false) {
            // Its last message may have landed just before it closed.
            return if self.look(into)? {
                Ok(true)
            } else {
                Err(gone)
            };
        }
        Ok(false)
    }

    /// Waits as long as it takes for the next message.
    ///
    /// # Errors
    /// [`Error::PeerGone`] once nothing is left and the sender closed or
    /// died, [`Error::Corrupt`].
    pub fn recv(&mut self) -> Result<Received> {
        self.recv_opt(None)
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Received> {
        self.recv_opt(deadline_after(timeout))
    }

    /// Waits until `deadline` at most for the next message.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`Error::Timeout`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Received> {
        self.recv_opt(Some(deadline))
    }

    fn recv_opt(&mut self, deadline: Option<Instant>) -> Result<Received> {
        let mut r = Received::default();
        self.recv_into_opt(&mut r, deadline)?;
        Ok(r)
    }

    /// [`Receiver::recv`] into `into`, as [`Receiver::try_recv_into`].
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub fn recv_into(&mut self, into: &mut Received) -> Result<()> {
        self.recv_into_opt(into, None)
    }

    /// [`Receiver::recv_timeout`] into `into`.
    ///
    /// # Errors
    /// As [`Receiver::recv_timeout`].
    pub fn recv_into_timeout(&mut self, into: &mut Received, timeout: Duration) -> Result<()> {
        self.recv_into_opt(into, deadline_after(timeout))
    }

    /// [`Receiver::recv_deadline`] into `into`.
    ///
    /// # Errors
    /// As [`Receiver::recv_deadline`].
    pub fn recv_into_deadline(&mut self, into: &mut Received, deadline: Instant) -> Result<()> {
        self.recv_into_opt(into, Some(deadline))
    }

    fn recv_into_opt(&mut self, into: &mut Received, deadline: Option<Instant>) -> Result<()> {
        let started = started_if(deadline);
        loop {
            if self.look(into)? {
                return Ok(());
            }
            past_deadline(&self.seg, deadline, started, "a message")?;
            let (seg, next) = (&self.seg, self.next);
            PARK.wait(
                seg,
                Some(TX),
                deadline,
                "a message",
                into.data.len(),
                || Ok(seg.a64(TAIL).load(Ordering::Acquire) > next),
            )?;
        }
    }
}

// Waiting on many sources at once (`crate::wait`).

impl crate::wait::Source for Receiver {
    fn segment(&self) -> &Segment {
        &self.seg
    }

    fn sleep_on(&self) -> (&Segment, crate::wait::Sleep, Option<Side>) {
        (&self.seg, crate::wait::Sleep::Park(PARK), Some(TX))
    }

    fn ready(&mut self, _baseline: u64) -> Result<bool> {
        Ok(self.seg.a64(TAIL).load(Ordering::Acquire) > self.next
            || TX.check_peer(&self.seg, false).is_err())
    }
}

impl crate::wait::Sealed for Receiver {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::SourceRef(self)
    }
}

// async/await (`crate::wait::reactor`).

impl Receiver {
    /// Receives the next message asynchronously (`rx.recv_async().await`),
    /// with how many were missed before it, as [`Receiver::recv`]: no thread
    /// blocked; the task tries for a moment (`Options::async_spin`), then sleeps.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no message.
    pub fn recv_async(&mut self) -> RecvFuture<'_> {
        RecvFuture {
            rx: self,
            waiter: crate::wait::reactor::Waiter::default(),
        }
    }
}

/// The future of [`Receiver::recv_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a> {
    rx: &'a mut Receiver,
    waiter: crate::wait::reactor::Waiter,
}

impl std::future::Future for RecvFuture<'_> {
    type Output = Result<Received>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Received>> {
        let this = self.get_mut();
        this.waiter
            .poll_op(cx, &mut *this.rx, recv_attempt, recv_pend)
    }
}

impl Receiver {
    /// Polls for the next message, as a `Future` would (tokio's
    /// `poll_recv` shape): `Ready` with it (and how many were missed), or
    /// `Pending` with `cx`'s waker registered. What a `Stream` is built from:
    /// `futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(Some))`.
    ///
    /// # Cancel safety
    /// A message is taken only by a `Ready` result.
    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Received>> {
        let mut polled = std::mem::take(&mut self.polled);
        let r = polled.poll_op(cx, self, recv_attempt, recv_pend);
        self.polled = polled;
        r
    }
}

#[cfg(feature = "stream")]
impl Receiver {
    /// The messages as a `Stream` (feature `stream`): each item is what
    /// [`Receiver::poll_recv`] gives; it ends when the sender has closed its
    /// end or died ([`Error::PeerGone`]), after every message it sent.
    ///
    /// # Cancel safety
    /// As [`Receiver::poll_recv`]: a message is taken only when yielded.
    pub fn stream(&mut self) -> RecvStream<'_> {
        RecvStream { rx: self }
    }
}

/// The stream of [`Receiver::stream`] (feature `stream`).
#[cfg(feature = "stream")]
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct RecvStream<'a> {
    rx: &'a mut Receiver,
}

#[cfg(feature = "stream")]
impl futures_core::Stream for RecvStream<'_> {
    type Item = Result<Received>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_recv(cx).map(|r| match r {
            Err(Error::PeerGone { .. }) => None,
            r => Some(r),
        })
    }
}

/// A receive's attempt, for the future and `poll_recv`.
fn recv_attempt(rx: &mut Receiver) -> Result<Option<Received>> {
    let mut r = Received::default();
    Ok(rx.try_recv_into(&mut r)?.then_some(r))
}

/// A receive's wait, for the future and `poll_recv`.
fn recv_pend(
    w: &mut crate::wait::reactor::Waiter,
    cx: &mut std::task::Context<'_>,
    rx: &mut Receiver,
) -> Result<crate::wait::reactor::Step> {
    let (seg, next) = (&rx.seg, rx.next);
    // Re-checked now and then: the sender's index.
    w.pend(
        cx,
        seg,
        crate::wait::Sleep::Park(PARK),
        Some(TX),
        crate::wait::reactor::Recheck::Word(TAIL),
        &mut || seg.a64(TAIL).load(Ordering::Acquire) > next,
    )
}

#[cfg(all(test, not(loom), unix))]
mod tests {
    use super::*;

    /// The owner word of a process that has exited.
    fn dead_owner() -> u64 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        crate::sys::owner_word(pid)
    }

    #[test]
    fn a_shared_sender_takes_over_the_lock_of_one_that_died_mid_message() {
        let name = format!("fm-bcast-takeover-{}", std::process::id());
        let mut rx = Receiver::create(&name, 4, 16).unwrap();
        let mut a = SharedSender::open(&name).unwrap();
        a.send(b"first").unwrap();
        // Shared sender slot 5 was a process that died inside a send: it
        // holds the lock, and message 1's stamp is odd over torn bytes.
        let seg = a.seg.clone();
        seg.a64(SENDERS + 8 * 5)
            .store(dead_owner(), Ordering::SeqCst);
        seg.a64(SEND_LOCK).store(6, Ordering::SeqCst);
        seg.a64(a.geo.slot(1)).store(3, Ordering::SeqCst); // 2n + 1: being written
        seg.view()
            .write_at(a.geo.slot(1) + SLOT_HEADER, b"TORN")
            .unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap().data, b"first");
        assert_eq!(
            rx.try_recv().unwrap(),
            None,
            "the torn message is not delivered"
        );
        a.send_timeout(b"second", Duration::from_secs(5)).unwrap();
        let m = rx.try_recv().unwrap().unwrap();
        assert_eq!(
            (m.seq, m.data.as_slice(), m.sender),
            (1, &b"second"[..], a.id())
        );
        assert_eq!(seg.a64(SEND_LOCK).load(Ordering::SeqCst), 0, "given back");
    }

    #[test]
    fn a_stopped_lock_holder_gives_a_timeout_not_a_hang() {
        let name = format!("fm-bcast-held-{}", std::process::id());
        let _rx = Receiver::create(&name, 4, 16).unwrap();
        let mut a = SharedSender::open(&name).unwrap();
        let b = SharedSender::open(&name).unwrap();
        // `b` (this live process) holds the lock, as a stopped sender would.
        a.seg
            .a64(SEND_LOCK)
            .store(u64::from(b.id()), Ordering::SeqCst);
        assert!(!a.try_send(b"x").unwrap());
        let e = a.send_timeout(b"x", Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        a.seg.a64(SEND_LOCK).store(0, Ordering::SeqCst);
        assert!(a.try_send(b"x").unwrap());
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::atomic::{AtomicU64, AtomicU8};
    use loom::sync::Arc;

    const SLOTS: u64 = 2;

    /// Two one-byte slots of loom atomics (bytes relaxed, so loom explores
    /// every value a torn read could see).
    struct Mem {
        tail: AtomicU64,
        stamps: [AtomicU64; 2],
        lens: [AtomicU64; 2],
        bytes: [AtomicU8; 2],
    }

    impl SlotMem for Mem {
        #[inline]
        fn slots(&self) -> u64 {
            SLOTS
        }
        #[inline]
        fn size(&self) -> u64 {
            1
        }
        #[inline]
        fn load_tail(&self, o: Ordering) -> u64 {
            self.tail.load(o)
        }
        #[inline]
        fn store_tail(&self, v: u64, o: Ordering) {
            self.tail.store(v, o)
        }
        #[inline]
        fn load_stamp(&self, n: u64, o: Ordering) -> u64 {
            self.stamps[(n % SLOTS) as usize].load(o)
        }
        #[inline]
        fn store_stamp(&self, n: u64, v: u64, o: Ordering) {
            self.stamps[(n % SLOTS) as usize].store(v, o)
        }
        #[inline]
        fn fence(&self, o: Ordering) {
            loom::sync::atomic::fence(o)
        }
        #[inline]
        fn write_msg(&self, n: u64, data: &[u8], sender: u32) {
            let i = (n % SLOTS) as usize;
            self.lens[i].store(
                data.len() as u64 | u64::from(sender) << 32,
                Ordering::Relaxed,
            );
            self.bytes[i].store(data[0], Ordering::Relaxed);
        }
        #[inline]
        fn read_len(&self, n: u64) -> u64 {
            self.lens[(n % SLOTS) as usize].load(Ordering::Relaxed)
        }
        #[inline]
        fn read_data(&self, n: u64, buf: &mut [u8]) {
            if let Some(b) = buf.first_mut() {
                *b = self.bytes[(n % SLOTS) as usize].load(Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn broadcast_receivers_get_whole_messages_and_count_what_they_miss() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let mem = Arc::new(Mem {
                tail: AtomicU64::new(0),
                stamps: [AtomicU64::new(0), AtomicU64::new(0)],
                lens: [AtomicU64::new(0), AtomicU64::new(0)],
                bytes: [AtomicU8::new(0), AtomicU8::new(0)],
            });
            let m2 = mem.clone();
            // Three messages into two slots: a slow receiver gets lapped.
            let sender = loom::thread::spawn(move || {
                for n in 0..3u64 {
                    publish(&*m2, n, &[n as u8 + 10], 3);
                }
            });
            let (mut next, mut accounted) = (0u64, 0u64);
            let mut data = Vec::new();
            while accounted < 3 {
                match look(&*mem, &mut next, &mut data).unwrap() {
                    Some((seq, missed, sender)) => {
                        assert_eq!(sender, 3, "the sender's id travels with the message");
                        assert_eq!(seq, accounted + missed, "numbered in order, gaps counted");
                        assert_eq!(data, [seq as u8 + 10], "a whole message, the right one");
                        accounted = seq + 1;
                    }
                    None => loom::thread::yield_now(),
                }
            }
            sender.join().unwrap();
        });
    }
}

/// What the channel's words say now (see [`crate::inspect::observe`]).
pub(crate) fn observe(seg: Segment) -> Result<Observation> {
    seg.expect(spec())?;
    let geo = SlotArray::of(&seg, SLOTS, SLOT_HEADER)?;
    let sent = seg.a64(TAIL).load(Ordering::Acquire);
    if sent > MAX_SEQ {
        return Err(Error::Corrupt {
            object: seg.label().to_owned(),
            reason: format!("its message count {sent} is over 2^62"),
        });
    }
    Ok(Observation {
        ends: vec![TX.observe(&seg)],
        detail: Detail::Broadcast {
            slots: geo.slots,
            max_message: geo.size,
            sent,
        },
    })
}
