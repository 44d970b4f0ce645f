//! A typed broadcast channel: [`crate::channel::broadcast`] carrying values
//! of `T` (see [the module above](super)). Every receiver gets every value
//! sent after it opened, unless it falls a ring behind.
//!
//! ```
//! use filemap::typed::broadcast::{Receiver, Sender};
//! let mut tx = Sender::<u64>::create("filemap-doc-typed-bcast", 8)?;
//! let mut a = Receiver::<u64>::open("filemap-doc-typed-bcast")?;
//! let mut b = Receiver::<u64>::open("filemap-doc-typed-bcast")?;
//! tx.send(&42)?;
//! assert_eq!(a.recv()?.value, 42);
//! assert_eq!(b.recv()?.value, 42);
//!
//! // Several senders (each in its own process) on another channel:
//! let mut s1 = filemap::typed::broadcast::SharedSender::<u64>::create("filemap-doc-typed-bcast2", 8)?;
//! let mut s2 = filemap::typed::broadcast::SharedSender::<u64>::open("filemap-doc-typed-bcast2")?;
//! let mut r = Receiver::<u64>::open("filemap-doc-typed-bcast2")?;
//! s1.send(&1)?;
//! s2.send(&2)?;
//! assert_eq!((r.recv()?.sender, r.recv()?.sender), (s1.id(), s2.id()));
//! # Ok::<(), filemap::Error>(())
//! ```

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use zerocopy::IntoBytes;

use super::{make_slotted, many, one, typed_options, Pod};
use crate::channel::broadcast;
use crate::error::Result;
use crate::mapping::Options;

/// Room for one message of values of `T` in a broadcast slot, written in
/// place (see [`super::Loan`]). Receivers copy each message out (the
/// sender never waits for them, so a slot may be written again while a
/// slow one reads it): there is no borrowed receive on broadcast; the
/// receive forms reuse one buffer and allocate nothing.
pub type Loan<'a, T> = super::Loan<T, broadcast::Reservation<'a>>;

/// The sending end of a typed broadcast channel (one at a time).
#[derive(Debug)]
pub struct Sender<T> {
    inner: broadcast::Sender,
    _t: PhantomData<fn(T)>,
}

/// A receiving end of a typed broadcast channel (any number).
#[derive(Debug)]
pub struct Receiver<T> {
    inner: broadcast::Receiver,
    got: broadcast::Received,
    _t: PhantomData<fn() -> T>,
}

/// A value as received, with its place in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<V> {
    /// The message's number (from 0, in the order sent).
    pub seq: u64,
    /// The value (or values, for the slice forms).
    pub value: V,
    /// How many messages this receiver missed just before this one.
    pub missed: u64,
    /// Who sent it: 0 for a [`Sender`], [`SharedSender::id`] for a shared one.
    pub sender: u32,
}

/// One of several senders of a typed broadcast channel (see
/// [`broadcast::SharedSender`]).
#[derive(Debug)]
pub struct SharedSender<T> {
    inner: broadcast::SharedSender,
    _t: PhantomData<fn(T)>,
}

impl<T: Pod> SharedSender<T> {
    /// Creates the channel `name` (see [`Sender::create`]) and becomes a shared sender.
    ///
    /// # Errors
    /// As [`broadcast::SharedSender::create`].
    pub fn create(name: &str, slots: u64) -> Result<Self> {
        Self::create_with(name, slots, 1, &Options::new())
    }

    /// [`SharedSender::create`] with slots of up to `max_values` values, with options.
    ///
    /// # Errors
    /// As [`SharedSender::create`].
    pub fn create_with(name: &str, slots: u64, max_values: u64, opts: &Options) -> Result<Self> {
        make_slotted::<T, _>(
            name,
            slots,
            max_values,
            opts,
            broadcast::SharedSender::create_with,
        )
        .map(Self::wrap)
    }

    /// Opens the channel `name` as one more shared sender.
    ///
    /// # Errors
    /// As [`broadcast::SharedSender::open`], and [`crate::Error::Incompatible`].
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`SharedSender::open`] with options.
    ///
    /// # Errors
    /// As [`SharedSender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let opts = typed_options::<T>(name, opts)?;
        broadcast::SharedSender::open_with(name, &opts).map(Self::wrap)
    }

    fn wrap(inner: broadcast::SharedSender) -> Self {
        SharedSender {
            inner,
            _t: PhantomData,
        }
    }

    /// This sender's id, as receivers see it.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `value` to every receiver (see [`broadcast::SharedSender::send`]).
    ///
    /// # Errors
    /// As [`broadcast::SharedSender::send`].
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(value.as_bytes())
    }

    /// Sends `values` as one message.
    ///
    /// # Errors
    /// As [`broadcast::SharedSender::send`].
    pub fn send_slice(&mut self, values: &[T]) -> Result<()> {
        self.inner.send(values.as_bytes())
    }
}

impl<T: Pod> Sender<T> {
    /// Creates the channel `name` with `slots` slots (rounded up to a power
    /// of two) of one value each, and becomes its sender.
    ///
    /// # Errors
    /// As [`broadcast::Sender::create`]; [`crate::Error::InvalidSize`] for a zero-sized `T`.
    pub fn create(name: &str, slots: u64) -> Result<Sender<T>> {
        Self::create_with(name, slots, 1, &Options::new())
    }

    /// Creates the channel with slots of up to `max_values` values each, with options.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(
        name: &str,
        slots: u64,
        max_values: u64,
        opts: &Options,
    ) -> Result<Sender<T>> {
        make_slotted::<T, _>(
            name,
            slots,
            max_values,
            opts,
            broadcast::Sender::create_with,
        )
        .map(Self::wrap)
    }

    /// Opens the existing channel `name` as its sender.
    ///
    /// # Errors
    /// As [`broadcast::Sender::open`]; [`crate::Error::Incompatible`] naming
    /// both types when it carries another type, or bytes.
    pub fn open(name: &str) -> Result<Sender<T>> {
        Self::open_with(name, &Options::new())
    }

    /// [`Sender::open`] with options.
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Sender<T>> {
        let opts = typed_options::<T>(name, opts)?;
        broadcast::Sender::open_with(name, &opts).map(Self::wrap)
    }

    fn wrap(inner: broadcast::Sender) -> Sender<T> {
        Sender {
            inner,
            _t: PhantomData,
        }
    }

    /// The most values one message can hold.
    pub fn max_values(&self) -> usize {
        self.inner.max_message() / std::mem::size_of::<T>()
    }

    /// Sends `value` to every receiver (never waits).
    ///
    /// # Errors
    /// As [`broadcast::Sender::send`].
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(value.as_bytes())
    }

    /// Sends `values` as one message to every receiver (never waits).
    ///
    /// # Errors
    /// As [`broadcast::Sender::send`]; [`crate::Error::InvalidSize`] over [`Sender::max_values`].
    pub fn send_slice(&mut self, values: &[T]) -> Result<()> {
        self.inner.send(values.as_bytes())
    }

    /// Room for one value in place (never waits; see [`broadcast::Sender::reserve`]).
    ///
    /// ```
    /// use filemap::typed::broadcast::{Receiver, Sender};
    /// let mut tx = Sender::<[u16; 4]>::create("filemap-doc-typed-bcast-loan", 4)?;
    /// let mut rx = Receiver::<[u16; 4]>::open("filemap-doc-typed-bcast-loan")?;
    /// let mut loan = tx.loan()?;
    /// loan.write(0, &[1, 2, 3, 4])?;
    /// loan.commit();
    /// assert_eq!(rx.recv()?.value, [1, 2, 3, 4]);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`broadcast::Sender::reserve`].
    pub fn loan(&mut self) -> Result<Loan<'_, T>> {
        self.inner.reserve(std::mem::size_of::<T>()).map(Loan::new)
    }
}

impl<T: Pod> Receiver<T> {
    /// Creates the channel `name` (see [`Sender::create`]) and becomes a receiver.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create(name: &str, slots: u64) -> Result<Receiver<T>> {
        Self::create_with(name, slots, 1, &Options::new())
    }

    /// [`Sender::create_with`], becoming a receiver.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(
        name: &str,
        slots: u64,
        max_values: u64,
        opts: &Options,
    ) -> Result<Receiver<T>> {
        make_slotted::<T, _>(
            name,
            slots,
            max_values,
            opts,
            broadcast::Receiver::create_with,
        )
        .map(Self::wrap)
    }

    /// Opens the channel `name`: this receiver gets what is sent from now on.
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open(name: &str) -> Result<Receiver<T>> {
        Self::open_with(name, &Options::new())
    }

    /// [`Receiver::open`] with options.
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Receiver<T>> {
        let opts = typed_options::<T>(name, opts)?;
        broadcast::Receiver::open_with(name, &opts).map(Self::wrap)
    }

    fn wrap(inner: broadcast::Receiver) -> Receiver<T> {
        Receiver {
            inner,
            got: broadcast::Received::default(),
            _t: PhantomData,
        }
    }

    /// The byte channel underneath (and what a [`crate::wait::WaitSet`] waits on).
    pub fn as_bytes(&mut self) -> &mut broadcast::Receiver {
        &mut self.inner
    }

    fn one(&self) -> Result<Received<T>> {
        Ok(Received {
            seq: self.got.seq,
            value: one(self.inner.label(), &self.got.data)?,
            missed: self.got.missed,
            sender: self.got.sender,
        })
    }

    fn many(&self) -> Result<Received<Vec<T>>> {
        Ok(Received {
            seq: self.got.seq,
            value: many(self.inner.label(), &self.got.data)?,
            missed: self.got.missed,
            sender: self.got.sender,
        })
    }

    /// The next value if one is there now.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::try_recv`]; [`crate::Error::Malformed`] for
    /// a message that is not exactly one value (it is skipped).
    pub fn try_recv(&mut self) -> Result<Option<Received<T>>> {
        if self.inner.try_recv_into(&mut self.got)? {
            return self.one().map(Some);
        }
        Ok(None)
    }

    /// The next value, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::try_recv`].
    pub fn recv(&mut self) -> Result<Received<T>> {
        self.inner.recv_into(&mut self.got)?;
        self.one()
    }

    /// The next value, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`crate::Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Received<T>> {
        self.inner.recv_into_timeout(&mut self.got, timeout)?;
        self.one()
    }

    /// The next value, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`crate::Error::Timeout`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Received<T>> {
        self.inner.recv_into_deadline(&mut self.got, deadline)?;
        self.one()
    }

    /// The values of the next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::recv`]; [`crate::Error::Malformed`] for a message that
    /// is not a whole number of values.
    pub fn recv_slice(&mut self) -> Result<Received<Vec<T>>> {
        self.inner.recv_into(&mut self.got)?;
        self.many()
    }

    /// The values of the next message, if one is there now.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`].
    pub fn try_recv_slice(&mut self) -> Result<Option<Received<Vec<T>>>> {
        if self.inner.try_recv_into(&mut self.got)? {
            return self.many().map(Some);
        }
        Ok(None)
    }

    /// The values of the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`], and [`crate::Error::Timeout`].
    pub fn recv_slice_timeout(&mut self, timeout: Duration) -> Result<Received<Vec<T>>> {
        self.inner.recv_into_timeout(&mut self.got, timeout)?;
        self.many()
    }

    /// The values of the next message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`], and [`crate::Error::Timeout`].
    pub fn recv_slice_deadline(&mut self, deadline: Instant) -> Result<Received<Vec<T>>> {
        self.inner.recv_into_deadline(&mut self.got, deadline)?;
        self.many()
    }

    /// The next value, asynchronously (see [`broadcast::Receiver::recv_async`]).
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub async fn recv_async(&mut self) -> Result<Received<T>> {
        self.got = self.inner.recv_async().await?;
        self.one()
    }
}
