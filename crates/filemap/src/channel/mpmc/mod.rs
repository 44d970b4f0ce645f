//! A multi-producer multi-consumer channel of byte messages in fixed-size
//! slots: any number of senders and receivers, in any processes.
//!
//! ```
//! use filemap::channel::mpmc::{Receiver, Sender};
//!
//! let a = Sender::create("filemap-doc-mpmc", 8, 32)?; // 8 slots of up to 32 bytes
//! let b = Sender::open("filemap-doc-mpmc")?;           // in other processes
//! let rx = Receiver::open("filemap-doc-mpmc")?;
//! assert!(a.try_send(b"one")?);
//! b.send(b"two")?; // waits for a free slot if there is none
//! assert_eq!(rx.try_recv()?.as_deref(), Some(&b"one"[..]));
//! assert_eq!(rx.recv()?, b"two");
//! assert_eq!(rx.try_recv()?, None);
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
//! Whoever works on a slot records itself *before* it takes the position,
//! and keeps the record until it has finished, so that at every moment a
//! position taken and not finished names the process working on it. There
//! are two ways to record:
//!
//! - *Lanes* (claim protocol 3, the fast path). The queue has 32 lanes, a
//!   cache line each; a handle takes one when it opens the queue (owner word:
//!   pid and start time) and gives it back when dropped. Before taking
//!   position `p`, a claimer stores `p + 1` in its lane's send or receive
//!   word (a plain store on a line nobody else writes), then takes `p` with a
//!   compare-and-swap that releases it. The word keeps naming `p` after
//!   the finish (a finished position is never stuck: clearing it would cost
//!   a quarter of the round trip) until the next claim replaces it; a claimer
//!   that lost the race clears it at once. One read-modify-write per message
//!   and side, on the index.
//! - *Claim words*, for a handle that got no lane (32 others hold them) or
//!   whose lane another thread of its process is using: each slot has a
//!   claim word, which the claimer takes (compare-and-swap from 0) before the
//!   position and gives back after (two more read-modify-writes, on the line
//!   the other side is reading: the old protocol 2, which cost a 64-byte
//!   round trip 390 ns against 210 ns with lanes).
//!
//! If a claimer dies, the others would wait at its slot for ever; instead, a
//! blocked sender or receiver checks every 10 ms the slot it waits at. A
//! position taken and not finished is repaired when every record of it (the
//! slot's claim word, the lanes naming it) names a process that no longer
//! runs, according to how far the dead process got: a position taken without
//! publishing is retired (the half-written message is skipped, never
//! delivered); a slot a dead receiver was reading is freed (that message is
//! lost with its receiver); a claim word not given back is given back. A
//! live process among the records may be the one working on it (a loser of
//! the race clears its record at once), so nothing is repaired while one
//! runs. A lane whose owner died is taken over by the next handle that opens
//! the queue and finds no free one, once what it names is repaired. The
//! model in `queue.rs` runs this code under loom with a process killed after
//! each of its operations in turn, through a lane and through claim words,
//! beside live claimers and repairers.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::mapping::Options;
use crate::park::deadline_after;
use crate::wait::reactor::Waiter;

mod future;
mod queue;
pub(crate) use queue::observe;
mod wait;

#[cfg(feature = "stream")]
pub use future::RecvStream;
pub use future::{RecvFuture, SendFuture};

use queue::*;

/// A sending end: any number, in any processes; usable from any thread of
/// its process (`&self`).
#[derive(Debug)]
pub struct Sender {
    q: Queue,
}

/// A receiving end: any number, in any processes; usable from any thread of
/// its process (`&self`). Each message goes to exactly one receiver.
#[derive(Debug)]
pub struct Receiver {
    q: Queue,
    /// What [`Receiver::poll_recv`] keeps between polls.
    polled: Waiter,
}

impl Sender {
    /// Creates the channel `name` with `slots` slots (rounded up to a power of
    /// two, at least 2) for messages of up to `max_message` bytes, and becomes a sender.
    ///
    /// # Errors
    /// As [`Options::create`]; [`Error::InvalidSize`](crate::Error::InvalidSize) for 0 slots or bytes, or
    /// a total that overflows.
    pub fn create(name: &str, slots: u64, max_message: u64) -> Result<Sender> {
        Self::create_with(name, slots, max_message, &Options::new())
    }

    /// [`Sender::create`] with options (mode, lifetime, ready timeout).
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(name: &str, slots: u64, max_message: u64, opts: &Options) -> Result<Sender> {
        Queue::create(name, slots, max_message, opts).map(|q| Sender {
            q: q.tell(Role::Send),
        })
    }

    /// Opens the existing channel `name` as a sender.
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`](crate::Error::Corrupt), [`Error::Incompatible`](crate::Error::Incompatible).
    pub fn open(name: &str) -> Result<Sender> {
        Self::open_with(name, &Options::new())
    }

    /// [`Sender::open`] with options (ready timeout).
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Sender> {
        Queue::open(name, opts).map(|q| Sender {
            q: q.tell(Role::Send),
        })
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.q.max_message()
    }

    /// The channel's name, for messages.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn label(&self) -> &str {
        self.q.seg.label()
    }

    /// Sends `msg` if a slot is free now; `Ok(false)` when the channel is full.
    ///
    /// # Errors
    /// [`Error::InvalidSize`](crate::Error::InvalidSize) over [`Sender::max_message`].
    pub fn try_send(&self, msg: &[u8]) -> Result<bool> {
        self.q.try_send(msg)
    }

    /// Sends `msg`, waiting as long as it takes for a free slot.
    ///
    /// # Errors
    /// As [`Sender::try_send`].
    pub fn send(&self, msg: &[u8]) -> Result<()> {
        self.q.send_opt(msg, None)
    }

    /// Sends `msg`, waiting at most `timeout` for a free slot.
    ///
    /// # Errors
    /// As [`Sender::try_send`], and [`Error::Timeout`](crate::Error::Timeout).
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.q.send_opt(msg, deadline_after(timeout))
    }

    /// Sends `msg`, waiting until `deadline` at most for a free slot.
    ///
    /// # Errors
    /// As [`Sender::try_send`], and [`Error::Timeout`](crate::Error::Timeout).
    pub fn send_deadline(&self, msg: &[u8], deadline: Instant) -> Result<()> {
        self.q.send_opt(msg, Some(deadline))
    }
}

impl Receiver {
    /// Creates the channel `name` (see [`Sender::create`]) and becomes a receiver.
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
        Queue::create(name, slots, max_message, opts).map(|q| Receiver {
            q: q.tell(Role::Recv),
            polled: Waiter::default(),
        })
    }

    /// Opens the existing channel `name` as a receiver.
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
        Queue::open(name, opts).map(|q| Receiver {
            q: q.tell(Role::Recv),
            polled: Waiter::default(),
        })
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.q.max_message()
    }

    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.q.seg.label()
    }

    /// The next message if one is there.
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) for a slot whose length is over the slot size.
    pub fn try_recv(&self) -> Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        Ok(self.q.try_recv_into(&mut buf)?.then_some(buf))
    }

    /// Waits as long as it takes for a message.
    ///
    /// # Errors
    /// As [`Receiver::try_recv`].
    pub fn recv(&self) -> Result<Vec<u8>> {
        self.recv_opt(None)
    }

    /// Waits at most `timeout` for a message.
    ///
    /// # Errors
    /// As [`Receiver::try_recv`], and [`Error::Timeout`](crate::Error::Timeout).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        self.recv_opt(deadline_after(timeout))
    }

    /// Waits until `deadline` at most for a message.
    ///
    /// # Errors
    /// As [`Receiver::try_recv`], and [`Error::Timeout`](crate::Error::Timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Vec<u8>> {
        self.recv_opt(Some(deadline))
    }

    fn recv_opt(&self, deadline: Option<Instant>) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.q.recv_into_opt(&mut buf, deadline)?;
        Ok(buf)
    }

    /// The next message if one is there, into `buf` (cleared, then holding
    /// exactly the message): `Ok(false)` if there is none. Once `buf` has
    /// grown to [`Receiver::max_message`] it never allocates again.
    ///
    /// ```
    /// # use filemap::channel::mpmc::{Receiver, Sender};
    /// let rx = Receiver::create("filemap-doc-mpmc-into", 8, 64)?;
    /// let tx = Sender::open("filemap-doc-mpmc-into")?;
    /// let mut buf = Vec::with_capacity(rx.max_message());
    /// tx.try_send(b"hello")?;
    /// assert!(rx.try_recv_into(&mut buf)?);
    /// assert_eq!(buf, b"hello");
    /// assert!(!rx.try_recv_into(&mut buf)?);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Receiver::try_recv`].
    pub fn try_recv_into(&self, buf: &mut Vec<u8>) -> Result<bool> {
        self.q.try_recv_into(buf)
    }

    /// [`Receiver::recv`] into `buf`, as [`Receiver::try_recv_into`]: no
    /// allocation once `buf` has grown to the largest message.
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.q.recv_into_opt(buf, None)
    }

    /// [`Receiver::recv_timeout`] into `buf`.
    ///
    /// # Errors
    /// As [`Receiver::recv_timeout`].
    pub fn recv_into_timeout(&self, buf: &mut Vec<u8>, timeout: Duration) -> Result<()> {
        self.q.recv_into_opt(buf, deadline_after(timeout))
    }

    /// [`Receiver::recv_deadline`] into `buf`.
    ///
    /// # Errors
    /// As [`Receiver::recv_deadline`].
    pub fn recv_into_deadline(&self, buf: &mut Vec<u8>, deadline: Instant) -> Result<()> {
        self.q.recv_into_opt(buf, Some(deadline))
    }
}

// In place: reservations and borrowed receives.

/// A slot taken for one message, written in place, then
/// [`commit`](Reservation::commit)ted. Dropping it unsent retires the slot
/// (receivers skip it). Other senders go on meanwhile; a sender a whole
/// ring behind waits for it.
#[derive(Debug)]
pub struct Reservation<'a> {
    q: &'a Queue,
    claim: Claim,
    len: usize,
    done: bool,
}

/// A message received in place: its slot stays the receiver's until this
/// is dropped (other receivers take the next ones; a sender a whole ring
/// ahead waits for it).
#[derive(Debug)]
pub struct MessageRef<'a> {
    q: &'a Queue,
    claim: Claim,
    len: usize,
}

impl Sender {
    /// A slot for an `n`-byte message if one is free now (see [`Reservation`]).
    ///
    /// ```
    /// # use filemap::channel::mpmc::{Receiver, Sender};
    /// let tx = Sender::create("filemap-doc-mpmc-reserve", 8, 64)?;
    /// let rx = Receiver::open("filemap-doc-mpmc-reserve")?;
    /// let mut r = tx.try_reserve(5)?.expect("a free slot");
    /// r.write_at(0, b"hel")?;
    /// r.write_at(3, b"lo")?;
    /// r.commit();
    /// let m = rx.try_recv_ref()?.expect("a message");
    /// assert_eq!(m.to_vec(), b"hello");
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Sender::try_send`].
    pub fn try_reserve(&self, n: usize) -> Result<Option<Reservation<'_>>> {
        Ok(self.q.try_claim_send(n)?.map(|claim| Reservation {
            q: &self.q,
            claim,
            len: n,
            done: false,
        }))
    }

    /// A slot for an `n`-byte message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub fn reserve(&self, n: usize) -> Result<Reservation<'_>> {
        self.reserve_opt(n, None)
    }

    /// A slot for an `n`-byte message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::send_timeout`].
    pub fn reserve_timeout(&self, n: usize, timeout: Duration) -> Result<Reservation<'_>> {
        self.reserve_opt(n, deadline_after(timeout))
    }

    /// A slot for an `n`-byte message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Sender::send_deadline`].
    pub fn reserve_deadline(&self, n: usize, deadline: Instant) -> Result<Reservation<'_>> {
        self.reserve_opt(n, Some(deadline))
    }

    fn reserve_opt(&self, n: usize, deadline: Option<Instant>) -> Result<Reservation<'_>> {
        let (started, mut checked) = (crate::park::started_if(deadline), None);
        loop {
            if let Some(claim) = self.q.try_claim_send(n)? {
                return Ok(Reservation {
                    q: &self.q,
                    claim,
                    len: n,
                    done: false,
                });
            }
            self.q.wait_for_space(n, deadline, started, &mut checked)?;
        }
    }
}

impl Reservation<'_> {
    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.q.seg.label()
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
    /// [`crate::Error::OutOfRange`] past the reserved length.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        if offset.checked_add(data.len()).is_none_or(|e| e > self.len) {
            return Err(crate::Error::OutOfRange {
                object: format!("{} (reserved message)", self.q.seg.label()),
                offset: offset as u64,
                len: data.len() as u64,
                size: self.len as u64,
            });
        }
        self.q.write_at(self.claim.pos, offset, data);
        Ok(())
    }

    /// The reserved bytes, to fill in place (what a C caller gets from
    /// `fm_mpmc_reserve`).
    ///
    /// # Safety
    /// The slot is this reservation's until it is committed or dropped, and
    /// no process that follows the channel protocol touches it meanwhile;
    /// the caller must be sure no other process writes this range while
    /// the slice lives.
    #[allow(unsafe_code)]
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the slot's payload (`len` <= the slot size, checked when
        // reserved) lies inside the view; `&mut self` makes this the only
        // slice made through this reservation; the caller rules out other
        // writers.
        unsafe { std::slice::from_raw_parts_mut(self.q.payload_ptr(self.claim.pos), self.len) }
    }

    /// Publishes the message: one receiver gets it from now on.
    pub fn commit(mut self) {
        self.done = true;
        self.q.publish(self.claim);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.q.retire(self.claim);
        }
    }
}

impl Receiver {
    /// Whether a message (or a retired slot) waits at the receive index:
    /// two loads, for callers that poll before they receive.
    #[inline]
    pub(crate) fn looks_ready(&self) -> bool {
        use std::sync::atomic::Ordering;
        let pos = self.q.seg.a64(queue::DEQ).load(Ordering::Acquire);
        self.q.seq(pos) == pos.wrapping_add(1)
    }

    /// The next message in place, if one is there now (see [`MessageRef`]).
    ///
    /// # Errors
    /// As [`Receiver::try_recv`].
    pub fn try_recv_ref(&self) -> Result<Option<MessageRef<'_>>> {
        Ok(self.q.try_claim_recv()?.map(|(claim, len)| MessageRef {
            q: &self.q,
            claim,
            len,
        }))
    }

    /// The next message in place, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub fn recv_ref(&self) -> Result<MessageRef<'_>> {
        self.recv_ref_opt(None)
    }

    /// The next message in place, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_timeout`].
    pub fn recv_ref_timeout(&self, timeout: Duration) -> Result<MessageRef<'_>> {
        self.recv_ref_opt(deadline_after(timeout))
    }

    /// The next message in place, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv_deadline`].
    pub fn recv_ref_deadline(&self, deadline: Instant) -> Result<MessageRef<'_>> {
        self.recv_ref_opt(Some(deadline))
    }

    fn recv_ref_opt(&self, deadline: Option<Instant>) -> Result<MessageRef<'_>> {
        let (started, mut checked) = (crate::park::started_if(deadline), None);
        loop {
            if let Some((claim, len)) = self.q.try_claim_recv()? {
                return Ok(MessageRef {
                    q: &self.q,
                    claim,
                    len,
                });
            }
            self.q.wait_for_data(deadline, started, &mut checked)?;
        }
    }
}

impl MessageRef<'_> {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The channel's name, for messages.
    pub(crate) fn label(&self) -> &str {
        self.q.seg.label()
    }

    /// Copies bytes of the message from `offset` into `buf`.
    ///
    /// # Errors
    /// [`crate::Error::OutOfRange`] if the range is not inside the message.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        if offset.checked_add(buf.len()).is_none_or(|e| e > self.len) {
            return Err(crate::Error::OutOfRange {
                object: format!("{} (message)", self.q.seg.label()),
                offset: offset as u64,
                len: buf.len() as u64,
                size: self.len as u64,
            });
        }
        self.q.read_at(self.claim.pos, offset, buf)
    }

    /// The message's bytes in place.
    ///
    /// # Safety
    /// The slot stays this receiver's until the `MessageRef` is dropped, and
    /// no sender that follows the channel protocol writes it meanwhile; the
    /// caller must be sure no other process writes this range while the
    /// slice lives.
    #[allow(unsafe_code)]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the length was checked against the slot size when the
        // message was taken, so the range lies inside the view; the caller
        // rules out concurrent writers.
        unsafe { std::slice::from_raw_parts(self.q.payload_ptr(self.claim.pos), self.len) }
    }

    /// A copy of the message.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        // In range by construction; a failed read (a segment shrunk under
        // us) leaves zeros, as the copying receives do.
        let _ = self.q.read_at(self.claim.pos, 0, &mut v);
        v
    }
}

impl Drop for MessageRef<'_> {
    fn drop(&mut self) {
        self.q.free(self.claim);
    }
}
