//! A typed multi-producer multi-consumer channel: [`crate::channel::mpmc`]
//! carrying values of `T` (see [the module above](super)).
//!
//! ```
//! use filemap::typed::mpmc::{Receiver, Sender};
//! let tx = Sender::<[u32; 4]>::create("filemap-doc-typed-mpmc", 8)?;
//! let mut rx = Receiver::<[u32; 4]>::open("filemap-doc-typed-mpmc")?;
//! tx.send(&[1, 2, 3, 4])?;
//! assert_eq!(rx.recv()?, [1, 2, 3, 4]);
//! # Ok::<(), filemap::Error>(())
//! ```

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use zerocopy::IntoBytes;

use super::{make_slotted, many, one, typed_options, Pod};
use crate::channel::mpmc;
use crate::error::Result;
use crate::mapping::Options;

/// Room for one message of values of `T` in an mpmc slot, written in place
/// (see [`super::Loan`]).
pub type Loan<'a, T> = super::Loan<T, mpmc::Reservation<'a>>;

/// A received message in place in its mpmc slot (see [`super::Sample`]).
pub type Sample<'a, T> = super::Sample<T, mpmc::MessageRef<'a>>;

/// A sending end of a typed mpmc channel (any number, in any processes).
#[derive(Debug)]
pub struct Sender<T> {
    inner: mpmc::Sender,
    _t: PhantomData<fn(T)>,
}

/// A receiving end of a typed mpmc channel (any number, in any processes).
#[derive(Debug)]
pub struct Receiver<T> {
    inner: mpmc::Receiver,
    buf: Vec<u8>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Pod> Sender<T> {
    /// Creates the channel `name` with `slots` slots (rounded up to a power
    /// of two) of one value each, and becomes a sender.
    ///
    /// # Errors
    /// As [`mpmc::Sender::create`]; [`crate::Error::InvalidSize`] for a zero-sized `T`.
    pub fn create(name: &str, slots: u64) -> Result<Sender<T>> {
        Self::create_with(name, slots, 1, &Options::new())
    }

    /// Creates the channel `name` with `slots` slots of up to `max_values`
    /// values each (messages sent with [`Sender::send_slice`]), with options.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(
        name: &str,
        slots: u64,
        max_values: u64,
        opts: &Options,
    ) -> Result<Sender<T>> {
        make_slotted::<T, _>(name, slots, max_values, opts, mpmc::Sender::create_with)
            .map(Self::wrap)
    }

    /// Opens the existing channel `name` as a sender.
    ///
    /// # Errors
    /// As [`mpmc::Sender::open`]; [`crate::Error::Incompatible`] naming both
    /// types when it carries another type, or bytes.
    pub fn open(name: &str) -> Result<Sender<T>> {
        Self::open_with(name, &Options::new())
    }

    /// [`Sender::open`] with options.
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Sender<T>> {
        let opts = typed_options::<T>(name, opts)?;
        mpmc::Sender::open_with(name, &opts).map(Self::wrap)
    }

    fn wrap(inner: mpmc::Sender) -> Sender<T> {
        Sender {
            inner,
            _t: PhantomData,
        }
    }

    /// The most values one message can hold.
    pub fn max_values(&self) -> usize {
        self.inner.max_message() / std::mem::size_of::<T>()
    }

    /// The byte channel underneath.
    pub fn as_bytes(&self) -> &mpmc::Sender {
        &self.inner
    }

    /// Sends `value` if a slot is free now; `Ok(false)` when all are full.
    ///
    /// # Errors
    /// As [`mpmc::Sender::try_send`].
    pub fn try_send(&self, value: &T) -> Result<bool> {
        self.inner.try_send(value.as_bytes())
    }

    /// Sends `value`, waiting as long as it takes for a free slot.
    ///
    /// # Errors
    /// As [`mpmc::Sender::send`].
    pub fn send(&self, value: &T) -> Result<()> {
        self.inner.send(value.as_bytes())
    }

    /// Sends `value`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`mpmc::Sender::send_timeout`].
    pub fn send_timeout(&self, value: &T, timeout: Duration) -> Result<()> {
        self.inner.send_timeout(value.as_bytes(), timeout)
    }

    /// Sends `value`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`mpmc::Sender::send_deadline`].
    pub fn send_deadline(&self, value: &T, deadline: Instant) -> Result<()> {
        self.inner.send_deadline(value.as_bytes(), deadline)
    }

    /// Sends `values` as one message if a slot is free now.
    ///
    /// # Errors
    /// As [`mpmc::Sender::try_send`]; [`crate::Error::InvalidSize`] over [`Sender::max_values`].
    pub fn try_send_slice(&self, values: &[T]) -> Result<bool> {
        self.inner.try_send(values.as_bytes())
    }

    /// Sends `values` as one message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Sender::try_send_slice`].
    pub fn send_slice(&self, values: &[T]) -> Result<()> {
        self.inner.send(values.as_bytes())
    }

    /// Sends `values` as one message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::send_slice`], and [`crate::Error::Timeout`].
    pub fn send_slice_timeout(&self, values: &[T], timeout: Duration) -> Result<()> {
        self.inner.send_timeout(values.as_bytes(), timeout)
    }

    /// Sends `values` as one message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Sender::send_slice`], and [`crate::Error::Timeout`].
    pub fn send_slice_deadline(&self, values: &[T], deadline: Instant) -> Result<()> {
        self.inner.send_deadline(values.as_bytes(), deadline)
    }

    /// Room for one value in place, if a slot is free now.
    ///
    /// ```
    /// use filemap::typed::mpmc::{Receiver, Sender};
    /// let tx = Sender::<[u32; 2]>::create("filemap-doc-typed-mpmc-loan", 4)?;
    /// let rx = Receiver::<[u32; 2]>::open("filemap-doc-typed-mpmc-loan")?;
    /// let mut loan = tx.try_loan()?.expect("a free slot");
    /// loan.write_field(4, &7u32)?; // the second element
    /// loan.write_field(0, &6u32)?;
    /// loan.commit();
    /// let s = rx.try_sample()?.expect("a message");
    /// assert_eq!(s.get(0)?, [6, 7]);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`mpmc::Sender::try_reserve`].
    pub fn try_loan(&self) -> Result<Option<Loan<'_, T>>> {
        Ok(self
            .inner
            .try_reserve(std::mem::size_of::<T>())?
            .map(Loan::new))
    }

    /// Room for one value in place, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`mpmc::Sender::reserve`].
    pub fn loan(&self) -> Result<Loan<'_, T>> {
        self.inner.reserve(std::mem::size_of::<T>()).map(Loan::new)
    }

    /// Room for one value in place, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`mpmc::Sender::reserve_timeout`].
    pub fn loan_timeout(&self, timeout: Duration) -> Result<Loan<'_, T>> {
        self.inner
            .reserve_timeout(std::mem::size_of::<T>(), timeout)
            .map(Loan::new)
    }

    /// Room for one value in place, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`mpmc::Sender::reserve_deadline`].
    pub fn loan_deadline(&self, deadline: Instant) -> Result<Loan<'_, T>> {
        self.inner
            .reserve_deadline(std::mem::size_of::<T>(), deadline)
            .map(Loan::new)
    }

    /// Sends `value` asynchronously (see [`mpmc::Sender::send_async`]).
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub async fn send_async(&self, value: &T) -> Result<()> {
        self.inner.send_async(value.as_bytes()).await
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
        make_slotted::<T, _>(name, slots, max_values, opts, mpmc::Receiver::create_with)
            .map(Self::wrap)
    }

    /// Opens the existing channel `name` as a receiver.
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
        mpmc::Receiver::open_with(name, &opts).map(Self::wrap)
    }

    fn wrap(inner: mpmc::Receiver) -> Receiver<T> {
        let buf = Vec::with_capacity(inner.max_message());
        Receiver {
            inner,
            buf,
            _t: PhantomData,
        }
    }

    /// The byte channel underneath (and what a [`crate::wait::WaitSet`] waits on).
    pub fn as_bytes(&mut self) -> &mut mpmc::Receiver {
        &mut self.inner
    }

    fn got_one(&self) -> Result<T> {
        one(self.inner.label(), &self.buf)
    }

    fn got_many(&self) -> Result<Vec<T>> {
        many(self.inner.label(), &self.buf)
    }

    /// The next value if one is there now.
    ///
    /// # Errors
    /// As [`mpmc::Receiver::try_recv`]; [`crate::Error::Malformed`] for a
    /// message that is not exactly one value (it is dropped).
    pub fn try_recv(&mut self) -> Result<Option<T>> {
        if self.inner.try_recv_into(&mut self.buf)? {
            return self.got_one().map(Some);
        }
        Ok(None)
    }

    /// The next value, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::try_recv`].
    pub fn recv(&mut self) -> Result<T> {
        self.inner.recv_into(&mut self.buf)?;
        self.got_one()
    }

    /// The next value, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`crate::Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T> {
        self.inner.recv_into_timeout(&mut self.buf, timeout)?;
        self.got_one()
    }

    /// The next value, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`crate::Error::Timeout`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T> {
        self.inner.recv_into_deadline(&mut self.buf, deadline)?;
        self.got_one()
    }

    /// The values of the next message, if one is there now.
    ///
    /// # Errors
    /// As [`mpmc::Receiver::try_recv`]; [`crate::Error::Malformed`] for a
    /// message that is not a whole number of values (it is dropped).
    pub fn try_recv_slice(&mut self) -> Result<Option<Vec<T>>> {
        if self.inner.try_recv_into(&mut self.buf)? {
            return self.got_many().map(Some);
        }
        Ok(None)
    }

    /// The values of the next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::try_recv_slice`].
    pub fn recv_slice(&mut self) -> Result<Vec<T>> {
        self.inner.recv_into(&mut self.buf)?;
        self.got_many()
    }

    /// The values of the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`], and [`crate::Error::Timeout`].
    pub fn recv_slice_timeout(&mut self, timeout: Duration) -> Result<Vec<T>> {
        self.inner.recv_into_timeout(&mut self.buf, timeout)?;
        self.got_many()
    }

    /// The values of the next message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`], and [`crate::Error::Timeout`].
    pub fn recv_slice_deadline(&mut self, deadline: Instant) -> Result<Vec<T>> {
        self.inner.recv_into_deadline(&mut self.buf, deadline)?;
        self.got_many()
    }

    /// The next message in place, if one is there now.
    ///
    /// # Errors
    /// As [`mpmc::Receiver::try_recv_ref`]; [`crate::Error::Malformed`] for
    /// a message that is not a whole number of values (it is dropped).
    pub fn try_sample(&self) -> Result<Option<Sample<'_, T>>> {
        match self.inner.try_recv_ref()? {
            Some(m) => Sample::new(m).map(Some),
            None => Ok(None),
        }
    }

    /// The next message in place, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::try_sample`].
    pub fn sample(&self) -> Result<Sample<'_, T>> {
        Sample::new(self.inner.recv_ref()?)
    }

    /// The next message in place, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::sample`], and [`crate::Error::Timeout`].
    pub fn sample_timeout(&self, timeout: Duration) -> Result<Sample<'_, T>> {
        Sample::new(self.inner.recv_ref_timeout(timeout)?)
    }

    /// The next message in place, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::sample`], and [`crate::Error::Timeout`].
    pub fn sample_deadline(&self, deadline: Instant) -> Result<Sample<'_, T>> {
        Sample::new(self.inner.recv_ref_deadline(deadline)?)
    }

    /// The next value, asynchronously (see [`mpmc::Receiver::recv_async`]).
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub async fn recv_async(&mut self) -> Result<T> {
        let bytes = self.inner.recv_async().await?;
        one(self.inner.label(), &bytes)
    }
}
