//! Typed channels: values of a plain-old-data type `T` instead of bytes,
//! over the [`spsc`], [`mpmc`] and [`broadcast`] channels, with the type
//! recorded in the channel's segment and checked by every opener.
//!
//! ```
//! use filemap::typed::spsc::{Receiver, Sender};
//! use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! #[derive(Debug, PartialEq, FromBytes, IntoBytes, KnownLayout, Immutable)]
//! #[repr(C)]
//! struct Reading {
//!     sensor: u32,
//!     flags: u32,
//!     value: f64,
//! }
//!
//! let mut tx = Sender::<Reading>::create("filemap-doc-typed", 64)?; // room for 64
//! let mut rx = Receiver::<Reading>::open("filemap-doc-typed")?;      // another process
//! tx.send(&Reading { sensor: 7, flags: 0, value: 21.5 })?;
//! assert_eq!(rx.recv()?, Reading { sensor: 7, flags: 0, value: 21.5 });
//!
//! // In place: write the fields in the ring, then publish.
//! let mut loan = tx.loan()?;
//! loan.write_field(std::mem::offset_of!(Reading, sensor), &8u32)?;
//! loan.write_field(std::mem::offset_of!(Reading, flags), &0u32)?;
//! loan.write_field(std::mem::offset_of!(Reading, value), &22.0f64)?;
//! loan.commit();
//! let sample = rx.sample()?; // borrowed in place until dropped
//! assert_eq!(sample.read_field::<f64>(0, std::mem::offset_of!(Reading, value))?, 22.0);
//! drop(sample);
//!
//! // Another type on the same name is refused, naming both:
//! let e = Receiver::<u64>::open("filemap-doc-typed").unwrap_err();
//! assert!(e.to_string().contains("Reading"), "{e}");
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # What `T` may be
//!
//! `T` implements zerocopy's [`IntoBytes`], [`FromBytes`], [`KnownLayout`]
//! and [`Immutable`] (derive them): a type with no padding, no pointers, and
//! every bit pattern a valid value. So whatever bytes another process
//! writes, even a hostile one, read back as *some* `T`: the copies and
//! field writes here are safe, and no user code needs `unsafe`. Zero-sized
//! types are refused ([`Error::InvalidSize`]).
//!
//! # The type check
//!
//! Creating a typed channel records `T`'s [`MessageType`] (its identity,
//! by default [`std::any::type_name`], its size and alignment) in the
//! segment's header. Opening it as another type, or opening a byte channel
//! as a typed one, fails with [`Error::Incompatible`] naming both types. To
//! choose the identity (programs built apart, other languages), pass
//! `Options::new().message_type(MessageType::named::<T>("app.Reading/v1"))`
//! to the `_with` constructors; its size and alignment must be `T`'s. The
//! byte API still opens a typed channel (bytes are bytes), and a message
//! whose length is not a whole number of `T` is refused on receipt with
//! [`Error::Malformed`] and dropped, never read as garbage.
//!
//! # Slices
//!
//! Every message is a slice of `T`: `send(&t)` sends one value,
//! `send_slice(&[t, u, ..])` several at once (up to the channel's limit);
//! `recv` takes a message of exactly one value, `recv_slice` any number.
//!
//! # Serialized values
//!
//! With the `serde` feature, any `serde` type travels over the byte
//! channels as `postcard` bytes: `send_serialized(&value)`,
//! `recv_deserialized::<V>()` (see `serde.rs`); bytes that do not decode
//! give [`Error::Malformed`].

pub mod broadcast;
pub mod mpmc;
#[cfg(feature = "serde")]
mod serde;
pub mod spsc;

pub use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{Error, Result};
use crate::mapping::{MessageType, Options};

/// What a typed channel carries: plain old data, as zerocopy's derives
/// establish it (implemented for every such type).
pub trait Pod: IntoBytes + FromBytes + KnownLayout + Immutable + Sized {}
impl<T: IntoBytes + FromBytes + KnownLayout + Immutable> Pod for T {}

/// `opts` with `T`'s message type set (or the caller's, checked against `T`).
pub(crate) fn typed_options<T: Pod>(name: &str, opts: &Options) -> Result<Options> {
    let size = std::mem::size_of::<T>() as u64;
    let align = std::mem::align_of::<T>() as u64;
    let bad = |reason: String| Error::InvalidSize {
        object: name.to_owned(),
        reason,
    };
    if size == 0 {
        return Err(bad(format!(
            "`{}` is zero-sized: a typed channel carries values with bytes",
            std::any::type_name::<T>()
        )));
    }
    let t = match opts.message_type_value() {
        Some(t) if t.size() == size && t.align() == align => t.clone(),
        Some(t) => {
            return Err(bad(format!(
            "the message type given, {t}, does not describe `{}` ({size} bytes, alignment {align})",
            std::any::type_name::<T>()
        )))
        }
        None => MessageType::of::<T>(),
    };
    Ok(opts.clone().message_type(t))
}

/// The one value in `bytes`, or `Malformed` naming the channel and type.
pub(crate) fn one<T: Pod>(object: &str, bytes: &[u8]) -> Result<T> {
    T::read_from_bytes(bytes).map_err(|_| {
        malformed::<T>(
            object,
            format!(
                "it is {} bytes, and a value of the type is {}",
                bytes.len(),
                std::mem::size_of::<T>()
            ),
        )
    })
}

/// The values in `bytes`, or `Malformed` for a length that is not a whole
/// number of them.
pub(crate) fn many<T: Pod>(object: &str, bytes: &[u8]) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    if bytes.len() % size != 0 {
        return Err(malformed::<T>(
            object,
            format!(
                "it is {} bytes, not a whole number of values of {size} bytes",
                bytes.len()
            ),
        ));
    }
    let mut v: Vec<T> = std::iter::repeat_with(T::new_zeroed)
        .take(bytes.len() / size)
        .collect();
    v.as_mut_slice().as_mut_bytes().copy_from_slice(bytes);
    Ok(v)
}

#[cold]
pub(crate) fn malformed<T>(object: &str, why: String) -> Error {
    Error::Malformed {
        object: object.to_owned(),
        reason: format!("a message of `{}`: {why}", std::any::type_name::<T>()),
    }
}

/// Makes a slotted channel (mpmc, broadcast) for `T`: `slots` slots of
/// `max_values` values each, `T`'s message type recorded.
pub(crate) fn make_slotted<T: Pod, C>(
    name: &str,
    slots: u64,
    max_values: u64,
    opts: &Options,
    create: impl FnOnce(&str, u64, u64, &Options) -> Result<C>,
) -> Result<C> {
    let opts = typed_options::<T>(name, opts)?;
    let bytes = slice_bytes::<T>(name, max_values as usize)? as u64;
    create(name, slots, bytes, &opts)
}

/// Bytes of a message of `n` values of `T`, or `InvalidSize` on overflow.
pub(crate) fn slice_bytes<T>(object: &str, n: usize) -> Result<usize> {
    n.checked_mul(std::mem::size_of::<T>())
        .ok_or_else(|| Error::InvalidSize {
            object: object.to_owned(),
            reason: format!("{n} values of `{}` overflow", std::any::type_name::<T>()),
        })
}

mod sealed {
    /// Room for a message in a channel, written in place.
    pub trait Slot {
        fn slot_len(&self) -> usize;
        fn slot_label(&self) -> String;
        fn write(&mut self, offset: usize, data: &[u8]) -> crate::Result<()>;
        fn publish(self);
    }

    /// A received message, in place.
    pub trait Place {
        fn place_len(&self) -> usize;
        fn place_label(&self) -> String;
        fn read(&self, offset: usize, buf: &mut [u8]) -> crate::Result<()>;
    }
}

/// What a [`Loan`] writes into: an spsc, mpmc or broadcast reservation (sealed).
pub trait Slot: sealed::Slot {}
impl<S: sealed::Slot> Slot for S {}

/// What a [`Sample`] reads from: an spsc or mpmc message in place (sealed).
pub trait Place: sealed::Place {}
impl<P: sealed::Place> Place for P {}

/// The channels' reservations and in-place messages all offer `len`,
/// `label`, `write_at`/`read_at` and `commit`: one impl each, here.
macro_rules! slot {
    ($($t:ty),*) => {$(
        impl sealed::Slot for $t {
            fn slot_len(&self) -> usize {
                self.len()
            }
            fn slot_label(&self) -> String {
                self.label().to_owned()
            }
            fn write(&mut self, offset: usize, data: &[u8]) -> Result<()> {
                self.write_at(offset, data)
            }
            fn publish(self) {
                self.commit();
            }
        }
    )*};
}

macro_rules! place {
    ($($t:ty),*) => {$(
        impl sealed::Place for $t {
            fn place_len(&self) -> usize {
                self.len()
            }
            fn place_label(&self) -> String {
                self.label().to_owned()
            }
            fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
                self.read_at(offset, buf)
            }
        }
    )*};
}

slot!(
    crate::channel::spsc::Reservation<'_>,
    crate::channel::mpmc::Reservation<'_>,
    crate::channel::broadcast::Reservation<'_>
);
place!(
    crate::channel::spsc::Message<'_>,
    crate::channel::mpmc::MessageRef<'_>
);

/// Room for one message of values of `T` in a channel (spsc or mpmc),
/// written in place, then [`commit`](Loan::commit)ted. Dropping it sends
/// nothing (an mpmc slot is retired: receivers skip it).
///
/// Bytes not written keep what the slot held before (stale bytes of
/// earlier messages of the same channel, still a valid `T`): write every
/// field.
#[derive(Debug)]
pub struct Loan<T, S: Slot> {
    r: S,
    _t: std::marker::PhantomData<fn(T)>,
}

/// A received message in place (spsc or mpmc): one or more values of `T`,
/// read by copying them (or fields of them) out. Its space is freed when
/// it is dropped.
#[derive(Debug)]
pub struct Sample<T, P: Place> {
    m: P,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: Pod, S: Slot> Loan<T, S> {
    pub(crate) fn new(r: S) -> Loan<T, S> {
        Loan {
            r,
            _t: std::marker::PhantomData,
        }
    }

    /// How many values the loan holds.
    pub fn len(&self) -> usize {
        self.r.slot_len() / std::mem::size_of::<T>()
    }

    /// True for a loan of no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the whole value at `index`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past the loan's length.
    pub fn write(&mut self, index: usize, value: &T) -> Result<()> {
        let at = index.saturating_mul(std::mem::size_of::<T>());
        self.r.write(at, value.as_bytes())
    }

    /// Writes one field (or any bytes) of the first value: `offset` is the
    /// field's offset in `T` (`std::mem::offset_of!(T, field)`), `field` its
    /// new value. Any bytes make a valid `T`, so a wrong offset or type
    /// gives a wrong value, never undefined behaviour; bytes past the value
    /// are refused.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a field that does not fit in `T`.
    pub fn write_field<F: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        field: &F,
    ) -> Result<()> {
        self.write_field_of(0, offset, field)
    }

    /// [`Loan::write_field`] in the value at `index` of a slice loan.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a field that does not fit in the value, or
    /// an index past the loan's length.
    pub fn write_field_of<F: IntoBytes + Immutable>(
        &mut self,
        index: usize,
        offset: usize,
        field: &F,
    ) -> Result<()> {
        let size = std::mem::size_of::<T>();
        if offset.saturating_add(std::mem::size_of::<F>()) > size || index >= self.len() {
            return Err(Error::OutOfRange {
                object: format!(
                    "{} (a loan of `{}`)",
                    self.r.slot_label(),
                    std::any::type_name::<T>()
                ),
                offset: (index.saturating_mul(size)).saturating_add(offset) as u64,
                len: std::mem::size_of::<F>() as u64,
                size: self.r.slot_len() as u64,
            });
        }
        self.r.write(index * size + offset, field.as_bytes())
    }

    /// Publishes the message: receivers can see it from now on.
    pub fn commit(self) {
        self.r.publish();
    }
}

/// The one value in place `m`, or `Malformed`.
pub(crate) fn value_of<T: Pod, P: Place>(m: &P) -> Result<T> {
    let mut v = T::new_zeroed();
    if m.place_len() != std::mem::size_of::<T>() {
        return Err(malformed::<T>(
            &m.place_label(),
            format!(
                "it is {} bytes, and a value of the type is {}",
                m.place_len(),
                std::mem::size_of::<T>()
            ),
        ));
    }
    m.read(0, v.as_mut_bytes())?;
    Ok(v)
}

/// The values in place `m`, or `Malformed`.
pub(crate) fn values_of<T: Pod, P: Place>(m: &P) -> Result<Vec<T>> {
    if m.place_len() % std::mem::size_of::<T>() != 0 {
        return Err(whole_number_error::<T, P>(m));
    }
    let mut v: Vec<T> = std::iter::repeat_with(T::new_zeroed)
        .take(m.place_len() / std::mem::size_of::<T>())
        .collect();
    m.read(0, v.as_mut_slice().as_mut_bytes())?;
    Ok(v)
}

#[cold]
fn whole_number_error<T, P: Place>(m: &P) -> Error {
    malformed::<T>(
        &m.place_label(),
        format!(
            "it is {} bytes, not a whole number of values of {} bytes",
            m.place_len(),
            std::mem::size_of::<T>()
        ),
    )
}

impl<T: Pod, P: Place> Sample<T, P> {
    pub(crate) fn new(m: P) -> Result<Sample<T, P>> {
        if m.place_len() % std::mem::size_of::<T>() != 0 {
            return Err(whole_number_error::<T, P>(&m));
        }
        Ok(Sample {
            m,
            _t: std::marker::PhantomData,
        })
    }

    /// How many values the message holds.
    pub fn len(&self) -> usize {
        self.m.place_len() / std::mem::size_of::<T>()
    }

    /// True for a message of no values.
    pub fn is_empty(&self) -> bool {
        self.m.place_len() == 0
    }

    /// A copy of the value at `index`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past the message's length.
    pub fn get(&self, index: usize) -> Result<T> {
        let mut v = T::new_zeroed();
        let at = index.saturating_mul(std::mem::size_of::<T>());
        self.m.read(at, v.as_mut_bytes())?;
        Ok(v)
    }

    /// A copy of one field of the value at `index` (`offset` as in
    /// [`Loan::write_field`]).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a field that does not fit in `T`, or an
    /// index past the message's length.
    pub fn read_field<F: FromBytes + IntoBytes>(&self, index: usize, offset: usize) -> Result<F> {
        let size = std::mem::size_of::<T>();
        if offset.saturating_add(std::mem::size_of::<F>()) > size || index >= self.len() {
            return Err(Error::OutOfRange {
                object: format!(
                    "{} (a message of `{}`)",
                    self.m.place_label(),
                    std::any::type_name::<T>()
                ),
                offset: (index.saturating_mul(size)).saturating_add(offset) as u64,
                len: std::mem::size_of::<F>() as u64,
                size: self.m.place_len() as u64,
            });
        }
        let mut f = F::new_zeroed();
        self.m.read(index * size + offset, f.as_mut_bytes())?;
        Ok(f)
    }

    /// Copies of every value.
    pub fn to_vec(&self) -> Vec<T> {
        values_of(&self.m).expect("checked to be a whole number of values")
    }
}
