//! A single-producer single-consumer channel of byte messages between two
//! processes, in a ring inside one named segment.
//!
//! ```
//! use filemap::channel::spsc::{Receiver, Sender};
//!
//! // In one process:
//! let mut tx = Sender::create("filemap-doc-spsc", 4096)?;
//! // In another (here the same, for brevity):
//! let mut rx = Receiver::open("filemap-doc-spsc")?;
//!
//! tx.send(b"hello")?;
//! let msg = rx.recv()?;
//! assert_eq!(msg.to_vec(), b"hello");
//! drop(msg); // frees its space in the ring
//!
//! // Zero-copy: write in place, then publish.
//! let mut slot = tx.try_reserve(3)?.expect("room");
//! slot.write_at(0, b"abc")?;
//! slot.commit();
//! assert_eq!(rx.try_recv()?.expect("a message").to_vec(), b"abc");
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # Design
//!
//! The segment is the [header](crate::segment), a control area and a ring of
//! `capacity` bytes (a power of two). `tail` counts bytes ever published by the
//! sender, `head` bytes ever released by the receiver; each sits on its own
//! cache line and has one writer. A message is an 8-byte record header (length,
//! flags) and its bytes, padded to 8; a message that would wrap is preceded by a
//! padding record to the end of the ring, so every message is contiguous. A
//! message can be at most `capacity / 2 - 8` bytes, so it always fits.
//!
//! Orderings: the sender writes the record, then stores `tail` with release;
//! the receiver loads `tail` with acquire before reading records below it, so
//! it reads whole records only: a message is delivered once committed, and a
//! sender that dies mid-write never publishes the half-written one. The
//! receiver stores `head` with release after it is done with a record; the
//! sender loads it with acquire before reusing the space.
//!
//! Every index and length read from shared memory is checked (`head <= tail <=
//! head + capacity`, record lengths within the ring and the limit): a corrupt
//! segment gives [`Error::Corrupt`], never an out-of-bounds access.
//!
//! # Choosing a capacity
//!
//! The examples use small rings; a stream wants room for many messages, so
//! that the sender seldom finds the ring full and the receiver seldom finds
//! it empty (each costs a round of waiting, and, once the wait is long, a
//! sleep and a wake-up). For streaming, take 1 MiB, or four times the largest
//! message if that is more:
//!
//! ```
//! # use filemap::channel::spsc::Sender;
//! let largest = 64 * 1024;
//! let mut tx = Sender::create("filemap-doc-spsc-cap", (4 * largest).max(1 << 20))?;
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! The ring's memory is reserved when the channel is made. On the development
//! machine (a 2-vCPU VM), 64-byte messages sent with `send` and received with
//! `recv` by two unpinned programs (`filemap-bench --only spsc-client`, which
//! runs `fm-stream-client`, a client written this way) streamed at 17–25 M
//! messages per second through a 1 MiB ring and at 7–20 M through a 4 KiB one.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::channel::ring::{Consumer, Found, Producer, RingMem, Slot, MAX_INDEX, REC};
use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::park::{deadline_after, past_deadline, started_if};
use crate::segment::Segment;

mod future;
mod layout;
mod wait;
#[cfg(test)]
mod wait_tests;

#[allow(deprecated)]
pub use future::{Recv, Reserve};
pub use future::{RecvFuture, ReserveFuture, SendFuture};
pub(crate) use layout::observe;
use layout::*;
pub use layout::{MAX_CAPACITY, MIN_CAPACITY};
pub use wait::SpaceFor;

/// The sending end.
#[derive(Debug)]
pub struct Sender {
    seg: Segment,
    ring: Producer,
    /// Messages sent since the channel was made (stored at `SENT`).
    sent: u64,
}

/// Space reserved in the ring for one message: write it in place, then
/// [`commit`](Reservation::commit). Dropping it without committing abandons it.
#[derive(Debug)]
pub struct Reservation<'a> {
    tx: &'a mut Sender,
    slot: Slot,
}

impl Sender {
    /// Creates the channel `name` with a ring of at least `capacity` bytes
    /// (rounded up to a power of two, at least [`MIN_CAPACITY`]) and becomes its sender.
    ///
    /// # Errors
    /// As [`Options::create`], and [`Error::InvalidSize`] for a capacity over [`MAX_CAPACITY`].
    pub fn create(name: &str, capacity: u64) -> Result<Sender> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`Sender::create`] with options (mode, lifetime, ready timeout).
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(name: &str, capacity: u64, opts: &Options) -> Result<Sender> {
        Self::attach(create_segment(name, capacity, opts)?)
    }

    /// Opens the existing channel `name` as its sender. A previous sender that
    /// closed or died is replaced; a live one makes this fail with [`Error::Busy`].
    ///
    /// # Errors
    /// As [`Options::open`]; [`Error::Corrupt`] / [`Error::Incompatible`] for a
    /// segment that is not an intact SPSC channel of this format; [`Error::Busy`].
    pub fn open(name: &str) -> Result<Sender> {
        Self::open_with(name, &Options::new())
    }

    /// [`Sender::open`] with options.
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Sender> {
        Self::attach(open_segment(name, opts)?)
    }

    fn attach((seg, cap): (Segment, u64)) -> Result<Sender> {
        TX.claim(&seg)?;
        let tail = seg.a64(TAIL).load(Ordering::Acquire);
        if tail % REC != 0 || tail > MAX_INDEX {
            return Err(corrupt(
                &seg,
                format!("the sender's index {tail} is not a multiple of {REC} below 2^62"),
            ));
        }
        let mut ring = Producer { cap, tail, head: 0 };
        // A sender that died may have published records after its last index
        // update: skip them rather than overwrite them (and count them).
        let skipped = ring.resume(&seg).map_err(|reason| corrupt(&seg, reason))?;
        let sent = seg.a64(SENT).load(Ordering::Relaxed).wrapping_add(skipped);
        seg.a64(SENT).store(sent, Ordering::Relaxed);
        Ok(Sender { seg, ring, sent })
    }

    /// The largest message: `capacity / 2 - 8` bytes.
    pub fn max_message(&self) -> usize {
        self.ring.max_message() as usize
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.ring.cap
    }

    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.seg.label()
    }

    #[inline(always)]
    fn check_len(&self, n: usize) -> Result<()> {
        if n > self.max_message() {
            return Err(self.too_long(n));
        }
        Ok(())
    }

    // Errors are built out of line, so that the hot paths stay small enough to
    // inline into the caller: a `Result` passed back through memory between
    // layers cost more than the rest of a send (store-forwarding stalls).
    #[cold]
    #[inline(never)]
    fn too_long(&self, n: usize) -> Error {
        Error::InvalidSize {
            object: self.seg.label().to_owned(),
            reason: format!(
                "a message of {n} bytes is larger than this channel's limit of {} (half the ring less 8)",
                self.max_message()
            ),
        }
    }

    /// A slot of `n` bytes if the ring has room now, `None` if not (never
    /// waits; not a Future-style poll, hence not `poll_*`).
    #[inline(always)]
    fn try_reserve_slot(&mut self, n: usize) -> Result<Option<Slot>> {
        self.ring
            .reserve(&self.seg, n as u64)
            .map_err(|reason| corrupt(&self.seg, reason))
    }

    /// Reserves room for an `n`-byte message if there is some now.
    ///
    /// # Errors
    /// [`Error::InvalidSize`] over [`Sender::max_message`], [`Error::Corrupt`].
    #[inline(always)]
    pub fn try_reserve(&mut self, n: usize) -> Result<Option<Reservation<'_>>> {
        self.check_len(n)?;
        match self.try_reserve_slot(n)? {
            Some(slot) => Ok(Some(Reservation { tx: self, slot })),
            None => self.found_full(),
        }
    }

    /// The ring is full: a receiver whose segment was shrunk never frees space.
    #[cold]
    #[inline(never)]
    fn found_full(&self) -> Result<Option<Reservation<'_>>> {
        self.seg.check_backed()?;
        Ok(None)
    }

    /// Reserves room for an `n`-byte message, waiting as long as it takes for
    /// the receiver to free some.
    ///
    /// # Errors
    /// As [`Sender::try_reserve`], and [`Error::PeerGone`] when the receiver
    /// closed or died while the ring was full.
    pub fn reserve(&mut self, n: usize) -> Result<Reservation<'_>> {
        self.reserve_opt(n, None)
    }

    /// Reserves room for an `n`-byte message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::reserve`], and [`Error::Timeout`].
    pub fn reserve_timeout(&mut self, n: usize, timeout: Duration) -> Result<Reservation<'_>> {
        self.reserve_opt(n, deadline_after(timeout))
    }

    /// Reserves room for an `n`-byte message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Sender::reserve`], and [`Error::Timeout`].
    pub fn reserve_deadline(&mut self, n: usize, deadline: Instant) -> Result<Reservation<'_>> {
        self.reserve_opt(n, Some(deadline))
    }

    fn reserve_opt(&mut self, n: usize, deadline: Option<Instant>) -> Result<Reservation<'_>> {
        self.check_len(n)?;
        if let Some(slot) = self.try_reserve_slot(n)? {
            return Ok(Reservation { tx: self, slot });
        }
        let (seg, ring) = (&self.seg, &self.ring);
        let need = ring.need(n as u64);
        SPACE_PARK.wait(seg, Some(RX), deadline, "space in the ring", n, || {
            // After the waiter's fence (see `Park`); acquire: the receiver
            // is done with the bytes below `head`.
            let head = seg.a64(HEAD).load(Ordering::Acquire);
            let tail = ring.tail;
            // A corrupt index counts as "ready": try_reserve_slot reports it.
            Ok(head > tail || tail - head > ring.cap || ring.cap - (tail - head) >= need)
        })?;
        match self.try_reserve_slot(n)? {
            Some(slot) => Ok(Reservation { tx: self, slot }),
            None => Err(corrupt(
                &self.seg,
                "the ring had room and then had none, with only this sender writing".into(),
            )),
        }
    }

    /// Sends `msg` if there is room now; `Ok(false)` when the ring is full.
    ///
    /// # Errors
    /// As [`Sender::try_reserve`].
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<bool> {
        match self.try_reserve(msg.len())? {
            Some(r) => {
                r.fill_and_commit(msg);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Sends `msg`, waiting as long as it takes for room.
    ///
    /// # Errors
    /// As [`Sender::reserve`].
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_opt(msg, None)
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Sender::reserve_timeout`].
    #[inline]
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_opt(msg, deadline_after(timeout))
    }

    /// Sends `msg`, waiting until `deadline` at most for room.
    ///
    /// # Errors
    /// As [`Sender::reserve_deadline`].
    #[inline]
    pub fn send_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        self.send_opt(msg, Some(deadline))
    }

    /// The common case, room now, inline; waiting out of line.
    #[inline(always)]
    fn send_opt(&mut self, msg: &[u8], deadline: Option<Instant>) -> Result<()> {
        if self.try_send(msg)? {
            return Ok(());
        }
        self.send_waiting(msg, deadline)
    }

    #[inline(never)]
    fn send_waiting(&mut self, msg: &[u8], deadline: Option<Instant>) -> Result<()> {
        self.reserve_opt(msg.len(), deadline)?.fill_and_commit(msg);
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        TX.close(&self.seg);
        DATA_PARK.notify(&self.seg);
    }
}

#[cold]
#[inline(never)]
fn corrupt(seg: &Segment, reason: String) -> Error {
    Error::Corrupt {
        object: seg.label().to_owned(),
        reason,
    }
}

impl Reservation<'_> {
    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.tx.seg.label()
    }

    /// The reserved length.
    pub fn len(&self) -> usize {
        self.slot.len
    }

    /// True for a reservation of 0 bytes.
    pub fn is_empty(&self) -> bool {
        self.slot.len == 0
    }

    /// Copies `data` into the message at `offset`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] if it does not fit in the reserved length.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        if offset
            .checked_add(data.len())
            .is_none_or(|e| e > self.slot.len)
        {
            return Err(Error::OutOfRange {
                object: format!("{} (reserved message)", self.tx.seg.label()),
                offset: offset as u64,
                len: data.len() as u64,
                size: self.slot.len as u64,
            });
        }
        self.tx
            .seg
            .write(self.slot.rec + REC as usize + offset, data);
        Ok(())
    }

    /// Writes the whole message (`msg.len()` is the reserved length) and
    /// commits it.
    #[inline]
    fn fill_and_commit(self, msg: &[u8]) {
        debug_assert_eq!(msg.len(), self.slot.len);
        self.tx.seg.write(self.slot.rec + REC as usize, msg);
        self.commit();
    }

    /// The reserved bytes, to fill in place.
    ///
    /// # Safety
    /// The receiver does not touch unpublished bytes, but the slice is shared
    /// memory: no other process may write this range while the slice lives
    /// (none that follows the channel protocol does).
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        let p = self.tx.seg.view().as_ptr();
        // SAFETY: `off + 8 .. + len` lies inside the ring (try_reserve_slot), which
        // lies inside the view; `&mut self` makes this the only slice made
        // through this reservation; the caller rules out other writers.
        unsafe {
            std::slice::from_raw_parts_mut(
                p.add(DATA + self.slot.rec + REC as usize),
                self.slot.len,
            )
        }
    }

    /// Publishes the message: the receiver can see it from now on.
    #[inline(always)]
    pub fn commit(self) {
        let tx = self.tx;
        // The count for observers, on the sender's own line, before the
        // message is published: a count of received messages an observer
        // sees is then never above the sent one it reads after it.
        tx.sent = tx.sent.wrapping_add(1);
        tx.seg.a64(SENT).store(tx.sent, Ordering::Relaxed);
        tx.ring.commit(&tx.seg, self.slot);
        // Only for a sender that takes over after this one (see `resume`).
        tx.seg.a64(TAIL).store(tx.ring.tail, Ordering::Relaxed);
        DATA_PARK.notify(&tx.seg);
    }
}

/// The receiving end.
#[derive(Debug)]
pub struct Receiver {
    seg: Segment,
    ring: Consumer,
    /// The length of the last message received: the next is likely alike,
    /// and a wait for a large one polls longer before parking (`Park::wait`).
    last_len: usize,
}

/// A received message, borrowed in place from the ring. Its space is freed
/// for the sender when it is dropped.
#[derive(Debug)]
pub struct Message<'a> {
    rx: &'a mut Receiver,
    found: Found,
}

impl Receiver {
    /// Creates the channel `name` (see [`Sender::create`]) and becomes its receiver.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create(name: &str, capacity: u64) -> Result<Receiver> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// [`Receiver::create`] with options.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(name: &str, capacity: u64, opts: &Options) -> Result<Receiver> {
        Self::attach(create_segment(name, capacity, opts)?)
    }

    /// Opens the existing channel `name` as its receiver (see [`Sender::open`]).
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open(name: &str) -> Result<Receiver> {
        Self::open_with(name, &Options::new())
    }

    /// [`Receiver::open`] with options.
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Receiver> {
        Self::attach(open_segment(name, opts)?)
    }

    fn attach((seg, cap): (Segment, u64)) -> Result<Receiver> {
        RX.claim(&seg)?;
        let head = seg.a64(HEAD).load(Ordering::Acquire);
        if head % REC != 0 || head > MAX_INDEX {
            return Err(corrupt(
                &seg,
                format!("the receiver's index {head} is not a multiple of {REC} below 2^62"),
            ));
        }
        let received = seg.a64(RECEIVED).load(Ordering::Acquire);
        Ok(Receiver {
            seg,
            ring: Consumer::new(cap, head, received),
            last_len: 0,
        })
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.ring.cap
    }

    #[inline(always)]
    fn poll(&mut self) -> Result<Option<Found>> {
        self.ring
            .poll(&self.seg)
            .map_err(|reason| corrupt(&self.seg, reason))
    }

    /// Frees, now, the space of every message received and dropped so far.
    ///
    /// The receiver otherwise tells the sender in batches, every quarter of
    /// the ring and before it waits, which is cheaper. The batches matter
    /// when this receiver dies. A process that takes its end over
    /// ([`Receiver::open`] once the holder died) starts after the last space
    /// freed, so it receives again what the dead one had received since.
    /// Call this after a message whose handling must not be repeated. (The
    /// Zenoh bridge calls it before it publishes each message: a bridge
    /// killed in between loses that message instead of sending it twice.)
    ///
    /// ```
    /// use filemap::channel::spsc::{Receiver, Sender};
    ///
    /// let mut tx = Sender::create("filemap-doc-spsc-release", 4096)?;
    /// let mut rx = Receiver::open("filemap-doc-spsc-release")?;
    /// tx.send(b"job 1")?;
    /// let job = rx.recv()?.to_vec();
    /// // ... handle `job` ...
    /// rx.release(); // a receiver taking over from here never gets job 1 again
    /// # assert_eq!(job, b"job 1");
    /// # Ok::<(), filemap::Error>(())
    /// ```
    pub fn release(&mut self) {
        self.publish();
    }

    /// Publishes what was consumed (the ring is empty, or we are about to wait)
    /// and wakes a sender waiting for space.
    #[inline]
    fn publish(&mut self) {
        if self.ring.publish(&self.seg) {
            SPACE_PARK.notify(&self.seg);
        }
    }

    #[inline]
    fn message(&mut self, found: Found) -> Message<'_> {
        self.last_len = found.len;
        Message { rx: self, found }
    }

    /// The next message if one is there. Reports a sender that closed its end
    /// once the ring is empty (a sender that died is noticed by the blocking calls).
    ///
    /// # Errors
    /// [`Error::Corrupt`], [`Error::PeerGone`].
    #[inline(always)]
    pub fn try_recv(&mut self) -> Result<Option<Message<'_>>> {
        match self.poll()? {
            Some(m) => Ok(Some(self.message(m))),
            None => self.found_empty(),
        }
    }

    /// `try_recv` on an empty ring: publish what was consumed, and see
    /// whether the sender is still there.
    #[inline(never)]
    fn found_empty(&mut self) -> Result<Option<Message<'_>>> {
        self.seg.check_backed()?;
        self.publish();
        if let Err(gone) = TX.check_peer(&self.seg, false) {
            // The sender's last message may have landed just before it
            // closed: look once more now that its end is seen closed.
            return match self.poll()? {
                Some(m) => Ok(Some(self.message(m))),
                None => Err(gone),
            };
        }
        Ok(None)
    }

    /// Waits for the next message as long as it takes.
    ///
    /// # Errors
    /// [`Error::PeerGone`] once the ring is empty and the sender closed its end
    /// or died; [`Error::Corrupt`].
    #[inline]
    pub fn recv(&mut self) -> Result<Message<'_>> {
        self.recv_opt(None)
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`Error::Timeout`].
    #[inline]
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>> {
        self.recv_opt(deadline_after(timeout))
    }

    /// Waits until `deadline` at most for the next message.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`Error::Timeout`].
    #[inline]
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Message<'_>> {
        self.recv_opt(Some(deadline))
    }

    /// The common case, a message there now, inline; waiting out of line.
    #[inline(always)]
    fn recv_opt(&mut self, deadline: Option<Instant>) -> Result<Message<'_>> {
        match self.poll()? {
            Some(m) => Ok(self.message(m)),
            None => self.recv_waiting(deadline),
        }
    }

    /// `recv_opt` found the ring empty: publish what was consumed, then wait
    /// (again, while only padding arrives), within the one deadline.
    #[inline(never)]
    fn recv_waiting(&mut self, deadline: Option<Instant>) -> Result<Message<'_>> {
        let started = started_if(deadline);
        loop {
            // Each round: a hostile writer can keep publishing padding, which
            // wakes us with nothing to deliver; the deadline still holds.
            past_deadline(&self.seg, deadline, started, "a message")?;
            self.publish();
            let (seg, ring) = (&self.seg, &self.ring);
            DATA_PARK.wait(seg, Some(TX), deadline, "a message", self.last_len, || {
                Ok(ring.ready(seg))
            })?;
            if let Some(m) = self.poll()? {
                return Ok(self.message(m));
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.ring.publish(&self.seg);
        RX.close(&self.seg);
        SPACE_PARK.notify(&self.seg);
    }
}

impl Message<'_> {
    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.rx.seg.label()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.found.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.found.len == 0
    }

    /// Copies bytes of the message from `offset` into `buf`.
    ///
    /// (If another process shrank the segment since the message was found,
    /// the copy reads zeros, never crashes; the receiver's next call that
    /// finds the ring empty reports [`Error::Truncated`]. The check is kept
    /// off this hot path: it cost 64-byte round trips about 10 %.)
    ///
    /// # Errors
    /// [`Error::OutOfRange`] if the range is not inside the message.
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        if offset
            .checked_add(buf.len())
            .is_none_or(|e| e > self.found.len)
        {
            return Err(Error::OutOfRange {
                object: format!("{} (message)", self.rx.seg.label()),
                offset: offset as u64,
                len: buf.len() as u64,
                size: self.found.len as u64,
            });
        }
        self.rx
            .seg
            .view()
            .read_at_raw(DATA + self.found.off + offset, buf)
    }

    /// A copy of the message.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.found.len];
        self.rx.seg.read(self.found.off, &mut v);
        v
    }

    /// The message's bytes in place.
    ///
    /// # Safety
    /// A sender that follows the channel protocol never writes a published
    /// message before the receiver frees it; the caller must be sure no other
    /// process writes this range while the slice lives.
    pub unsafe fn as_slice(&self) -> &[u8] {
        let p = self.rx.seg.view().as_ptr();
        // SAFETY: `off .. off + len` was checked to lie inside the ring, inside
        // the view; the caller rules out concurrent writers.
        unsafe { std::slice::from_raw_parts(p.add(DATA + self.found.off), self.found.len) }
    }
}

impl<'a> Message<'a> {
    /// The message without the borrow, left unconsumed (for
    /// [`OwnedMessage`]).
    fn into_found(self) -> Found {
        let found = self.found;
        // Not consumed: the message stays in the ring for the owned form.
        std::mem::forget(self);
        found
    }
}

/// A received message that owns its receiver instead of borrowing it:
/// what a binding needs to keep a message in a struct beside nothing else
/// (tokio's `lock_owned` shape). Made by [`Receiver::try_recv_owned`] and the
/// other `recv_owned` forms; [`OwnedMessage::into_receiver`] frees the
/// message and gives the receiver back (dropping it frees the message and
/// drops the receiver).
#[derive(Debug)]
pub struct OwnedMessage {
    rx: Option<Receiver>,
    found: Found,
}

/// A receiver given back by a failed `recv_owned` form, with why.
pub type RecvOwnedError = (Receiver, Error);

impl Receiver {
    /// [`Receiver::try_recv`], owning: `Ok(Ok(message))`, `Ok(Err(receiver))`
    /// when there is none yet.
    ///
    /// # Errors
    /// As [`Receiver::try_recv`], with the receiver given back.
    pub fn try_recv_owned(
        mut self,
    ) -> std::result::Result<std::result::Result<OwnedMessage, Receiver>, RecvOwnedError> {
        match self.try_recv().map(|m| m.map(Message::into_found)) {
            Ok(Some(found)) => Ok(Ok(OwnedMessage {
                rx: Some(self),
                found,
            })),
            Ok(None) => Ok(Err(self)),
            Err(e) => Err((self, e)),
        }
    }

    /// [`Receiver::recv`], owning.
    ///
    /// # Errors
    /// As [`Receiver::recv`], with the receiver given back.
    pub fn recv_owned(self) -> std::result::Result<OwnedMessage, RecvOwnedError> {
        self.recv_owned_opt(None)
    }

    /// [`Receiver::recv_timeout`], owning.
    ///
    /// ```
    /// use filemap::channel::spsc::{Receiver, Sender};
    /// use std::time::Duration;
    /// let mut tx = Sender::create("filemap-doc-owned-msg", 4096)?;
    /// let rx = Receiver::open("filemap-doc-owned-msg")?;
    /// tx.send(b"kept")?;
    /// let m = rx.recv_owned_timeout(Duration::from_secs(5)).map_err(|(_, e)| e)?;
    /// assert_eq!(m.to_vec(), b"kept");
    /// let rx = m.into_receiver(); // the message is freed, the receiver back
    /// # drop(rx);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Receiver::recv_timeout`], with the receiver given back.
    pub fn recv_owned_timeout(
        self,
        timeout: Duration,
    ) -> std::result::Result<OwnedMessage, RecvOwnedError> {
        self.recv_owned_opt(deadline_after(timeout))
    }

    /// [`Receiver::recv_deadline`], owning.
    ///
    /// # Errors
    /// As [`Receiver::recv_deadline`], with the receiver given back.
    pub fn recv_owned_deadline(
        self,
        deadline: Instant,
    ) -> std::result::Result<OwnedMessage, RecvOwnedError> {
        self.recv_owned_opt(Some(deadline))
    }

    fn recv_owned_opt(
        mut self,
        deadline: Option<Instant>,
    ) -> std::result::Result<OwnedMessage, RecvOwnedError> {
        match self.recv_opt(deadline).map(Message::into_found) {
            Ok(found) => Ok(OwnedMessage {
                rx: Some(self),
                found,
            }),
            Err(e) => Err((self, e)),
        }
    }
}

impl OwnedMessage {
    /// The receiver (there until `into_receiver` or drop take it).
    fn rx(&self) -> &Receiver {
        self.rx
            .as_ref()
            .expect("present until into_receiver or drop")
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.found.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.found.len == 0
    }

    /// A copy of the message.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.found.len];
        self.rx().seg.read(self.found.off, &mut v);
        v
    }

    /// The message's bytes in place.
    ///
    /// # Safety
    /// As [`Message::as_slice`].
    pub unsafe fn as_slice(&self) -> &[u8] {
        let p = self.rx().seg.view().as_ptr();
        // SAFETY: `off .. off + len` was checked to lie inside the ring, inside
        // the view; the caller rules out concurrent writers.
        unsafe { std::slice::from_raw_parts(p.add(DATA + self.found.off), self.found.len) }
    }

    /// Frees the message for the sender and gives the receiver back.
    pub fn into_receiver(mut self) -> Receiver {
        let mut rx = self.rx.take().expect("present until into_receiver or drop");
        drop(rx.message(self.found));
        rx
    }
}

impl Drop for OwnedMessage {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            // Frees the message, as a borrowed one does when dropped.
            drop(rx.message(self.found));
        }
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        let rx = &mut *self.rx;
        if rx.ring.release(&rx.seg, self.found.next_head) {
            SPACE_PARK.notify(&rx.seg);
        }
    }
}

// Waiting on many sources at once (`crate::wait`).
