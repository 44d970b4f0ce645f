//! A typed single-producer single-consumer channel: [`crate::channel::spsc`]
//! carrying values of `T` (see [the module above](super)).

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::{slice_bytes, typed_options, value_of, values_of, Pod};
use crate::channel::spsc;
use crate::error::{Error, Result};
use crate::mapping::Options;
use zerocopy::IntoBytes;

/// The record header and padding a message of `T` takes in the ring.
fn ring_bytes_per<T>() -> u64 {
    8 + ((std::mem::size_of::<T>() as u64 + 7) & !7)
}

/// The sending end of a typed spsc channel.
#[derive(Debug)]
pub struct Sender<T> {
    inner: spsc::Sender,
    _t: PhantomData<fn(T)>,
}

/// The receiving end of a typed spsc channel.
#[derive(Debug)]
pub struct Receiver<T> {
    inner: spsc::Receiver,
    _t: PhantomData<fn() -> T>,
}

/// Room for one message of values of `T`, written in place in the ring
/// (see [`super::Loan`]).
pub type Loan<'a, T> = super::Loan<T, spsc::Reservation<'a>>;

/// A received message borrowed in place from the ring (see [`super::Sample`]).
pub type Sample<'a, T> = super::Sample<T, spsc::Message<'a>>;

fn ring_capacity<T>(name: &str, values: u64) -> Result<u64> {
    values
        .checked_mul(ring_bytes_per::<T>())
        .and_then(|b| b.checked_mul(2))
        .ok_or_else(|| Error::InvalidSize {
            object: name.to_owned(),
            reason: format!(
                "room for {values} values of `{}` overflows",
                std::any::type_name::<T>()
            ),
        })
}

impl<T: Pod> Sender<T> {
    /// Creates the channel `name` with room for at least `values` messages
    /// of one value each (a ring of twice that, rounded up to a power of two,
    /// since a message may take at most half the ring) and becomes its sender.
    ///
    /// # Errors
    /// As [`spsc::Sender::create`]; [`Error::InvalidSize`] for a zero-sized `T`.
    pub fn create(name: &str, values: u64) -> Result<Sender<T>> {
        Self::create_with(name, values, &Options::new())
    }

    /// [`Sender::create`] with options; a message type set in them (to
    /// choose the identity) must have `T`'s size and alignment.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(name: &str, values: u64, opts: &Options) -> Result<Sender<T>> {
        let opts = typed_options::<T>(name, opts)?;
        let inner = spsc::Sender::create_with(name, ring_capacity::<T>(name, values)?, &opts)?;
        Ok(Self::wrap(inner))
    }

    /// Opens the existing channel `name` as its sender.
    ///
    /// # Errors
    /// As [`spsc::Sender::open`]; [`Error::Incompatible`] naming both types
    /// when the channel carries another type, or bytes.
    pub fn open(name: &str) -> Result<Sender<T>> {
        Self::open_with(name, &Options::new())
    }

    /// [`Sender::open`] with options.
    ///
    /// # Errors
    /// As [`Sender::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Sender<T>> {
        let opts = typed_options::<T>(name, opts)?;
        Ok(Self::wrap(spsc::Sender::open_with(name, &opts)?))
    }

    fn wrap(inner: spsc::Sender) -> Sender<T> {
        Sender {
            inner,
            _t: PhantomData,
        }
    }

    /// The most values one message can hold.
    pub fn max_values(&self) -> usize {
        self.inner.max_message() / std::mem::size_of::<T>()
    }

    /// The byte channel underneath (for its other calls).
    pub fn as_bytes(&mut self) -> &mut spsc::Sender {
        &mut self.inner
    }

    /// Sends `value` if there is room now; `Ok(false)` when the ring is full.
    ///
    /// # Errors
    /// As [`spsc::Sender::try_send`].
    pub fn try_send(&mut self, value: &T) -> Result<bool> {
        self.inner.try_send(value.as_bytes())
    }

    /// Sends `value`, waiting as long as it takes for room.
    ///
    /// # Errors
    /// As [`spsc::Sender::send`].
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(value.as_bytes())
    }

    /// Sends `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`spsc::Sender::send_timeout`].
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
        self.inner.send_timeout(value.as_bytes(), timeout)
    }

    /// Sends `value`, waiting until `deadline` at most for room.
    ///
    /// # Errors
    /// As [`spsc::Sender::send_deadline`].
    pub fn send_deadline(&mut self, value: &T, deadline: Instant) -> Result<()> {
        self.inner.send_deadline(value.as_bytes(), deadline)
    }

    /// Sends `values` as one message if there is room now.
    ///
    /// # Errors
    /// As [`spsc::Sender::try_send`]; [`Error::InvalidSize`] over [`Sender::max_values`].
    pub fn try_send_slice(&mut self, values: &[T]) -> Result<bool> {
        self.inner.try_send(values.as_bytes())
    }

    /// Sends `values` as one message, waiting as long as it takes for room.
    ///
    /// # Errors
    /// As [`Sender::try_send_slice`], and [`Error::PeerGone`].
    pub fn send_slice(&mut self, values: &[T]) -> Result<()> {
        self.inner.send(values.as_bytes())
    }

    /// Sends `values` as one message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::send_slice`], and [`Error::Timeout`].
    pub fn send_slice_timeout(&mut self, values: &[T], timeout: Duration) -> Result<()> {
        self.inner.send_timeout(values.as_bytes(), timeout)
    }

    /// Sends `values` as one message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Sender::send_slice`], and [`Error::Timeout`].
    pub fn send_slice_deadline(&mut self, values: &[T], deadline: Instant) -> Result<()> {
        self.inner.send_deadline(values.as_bytes(), deadline)
    }

    /// Sends `value` asynchronously (see [`spsc::Sender::send_async`]).
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub async fn send_async(&mut self, value: &T) -> Result<()> {
        self.inner.send_async(value.as_bytes()).await
    }

    /// Room for one value in place, if there is some now.
    ///
    /// # Errors
    /// As [`spsc::Sender::try_reserve`].
    pub fn try_loan(&mut self) -> Result<Option<Loan<'_, T>>> {
        Ok(self
            .inner
            .try_reserve(std::mem::size_of::<T>())?
            .map(Loan::new))
    }

    /// Room for one value in place, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`spsc::Sender::reserve`].
    pub fn loan(&mut self) -> Result<Loan<'_, T>> {
        self.inner.reserve(std::mem::size_of::<T>()).map(Loan::new)
    }

    /// Room for one value in place, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`spsc::Sender::reserve_timeout`].
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<Loan<'_, T>> {
        self.inner
            .reserve_timeout(std::mem::size_of::<T>(), timeout)
            .map(Loan::new)
    }

    /// Room for one value in place, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`spsc::Sender::reserve_deadline`].
    pub fn loan_deadline(&mut self, deadline: Instant) -> Result<Loan<'_, T>> {
        self.inner
            .reserve_deadline(std::mem::size_of::<T>(), deadline)
            .map(Loan::new)
    }

    /// Room for `n` values in place (one message), waiting as long as it takes.
    ///
    /// # Errors
    /// As [`spsc::Sender::reserve`]; [`Error::InvalidSize`] over [`Sender::max_values`].
    pub fn loan_slice(&mut self, n: usize) -> Result<Loan<'_, T>> {
        let bytes = slice_bytes::<T>(self.inner_label(), n)?;
        self.inner.reserve(bytes).map(Loan::new)
    }

    /// Room for `n` values in place, if there is some now.
    ///
    /// # Errors
    /// As [`Sender::loan_slice`].
    pub fn try_loan_slice(&mut self, n: usize) -> Result<Option<Loan<'_, T>>> {
        let bytes = slice_bytes::<T>(self.inner_label(), n)?;
        Ok(self.inner.try_reserve(bytes)?.map(Loan::new))
    }

    fn inner_label(&self) -> &str {
        self.inner.label()
    }
}

impl<T: Pod> Receiver<T> {
    /// Creates the channel `name` (see [`Sender::create`]) and becomes its receiver.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create(name: &str, values: u64) -> Result<Receiver<T>> {
        Self::create_with(name, values, &Options::new())
    }

    /// [`Receiver::create`] with options.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create_with(name: &str, values: u64, opts: &Options) -> Result<Receiver<T>> {
        let opts = typed_options::<T>(name, opts)?;
        let inner = spsc::Receiver::create_with(name, ring_capacity::<T>(name, values)?, &opts)?;
        Ok(Self::wrap(inner))
    }

    /// Opens the existing channel `name` as its receiver.
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
        Ok(Self::wrap(spsc::Receiver::open_with(name, &opts)?))
    }

    fn wrap(inner: spsc::Receiver) -> Receiver<T> {
        Receiver {
            inner,
            _t: PhantomData,
        }
    }

    /// The byte channel underneath (for its other calls, and for a
    /// [`crate::wait::WaitSet`]).
    pub fn as_bytes(&mut self) -> &mut spsc::Receiver {
        &mut self.inner
    }

    /// The next value, if a message is there now.
    ///
    /// # Errors
    /// As [`spsc::Receiver::try_recv`]; [`Error::Malformed`] for a message
    /// that is not exactly one value (it is dropped).
    pub fn try_recv(&mut self) -> Result<Option<T>> {
        match self.inner.try_recv()? {
            Some(m) => value_of(&m).map(Some),
            None => Ok(None),
        }
    }

    /// The next value, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`spsc::Receiver::recv`], and [`Error::Malformed`].
    pub fn recv(&mut self) -> Result<T> {
        value_of(&self.inner.recv()?)
    }

    /// The next value, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`Error::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T> {
        value_of(&self.inner.recv_timeout(timeout)?)
    }

    /// The next value, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv`], and [`Error::Timeout`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T> {
        value_of(&self.inner.recv_deadline(deadline)?)
    }

    /// The next value, asynchronously (see [`spsc::Receiver::recv_async`]).
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub async fn recv_async(&mut self) -> Result<T> {
        value_of(&self.inner.recv_async().await?)
    }

    /// The values of the next message, if one is there now.
    ///
    /// # Errors
    /// As [`spsc::Receiver::try_recv`]; [`Error::Malformed`] for a message
    /// that is not a whole number of values (it is dropped).
    pub fn try_recv_slice(&mut self) -> Result<Option<Vec<T>>> {
        match self.inner.try_recv()? {
            Some(m) => values_of(&m).map(Some),
            None => Ok(None),
        }
    }

    /// The values of the next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::try_recv_slice`], and [`Error::PeerGone`].
    pub fn recv_slice(&mut self) -> Result<Vec<T>> {
        values_of(&self.inner.recv()?)
    }

    /// The values of the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`], and [`Error::Timeout`].
    pub fn recv_slice_timeout(&mut self, timeout: Duration) -> Result<Vec<T>> {
        values_of(&self.inner.recv_timeout(timeout)?)
    }

    /// The values of the next message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`], and [`Error::Timeout`].
    pub fn recv_slice_deadline(&mut self, deadline: Instant) -> Result<Vec<T>> {
        values_of(&self.inner.recv_deadline(deadline)?)
    }

    /// The next message in place, if one is there now.
    ///
    /// # Errors
    /// As [`Receiver::try_recv_slice`].
    pub fn try_sample(&mut self) -> Result<Option<Sample<'_, T>>> {
        match self.inner.try_recv()? {
            Some(m) => Sample::new(m).map(Some),
            None => Ok(None),
        }
    }

    /// The next message in place, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice`].
    pub fn sample(&mut self) -> Result<Sample<'_, T>> {
        Sample::new(self.inner.recv()?)
    }

    /// The next message in place, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice_timeout`].
    pub fn sample_timeout(&mut self, timeout: Duration) -> Result<Sample<'_, T>> {
        Sample::new(self.inner.recv_timeout(timeout)?)
    }

    /// The next message in place, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Receiver::recv_slice_deadline`].
    pub fn sample_deadline(&mut self, deadline: Instant) -> Result<Sample<'_, T>> {
        Sample::new(self.inner.recv_deadline(deadline)?)
    }
}
