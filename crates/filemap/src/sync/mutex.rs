//! A robust cross-process mutex over a plain-old-data value: when the holder
//! dies, the next locker gets the lock and learns that the previous owner died,
//! and decides whether the value is usable. Nobody hangs on a dead holder.
//!
//! ```
//! use filemap::sync::Mutex;
//!
//! let m = Mutex::<u64>::create("filemap-doc-mutex", &0)?;
//! let other = Mutex::<u64>::open("filemap-doc-mutex")?; // in another process
//! {
//!     let mut g = other.lock()?;
//!     assert!(!g.previous_owner_died());
//!     let v = g.get();
//!     g.set(&(v + 1));
//! } // unlocked here
//! assert_eq!(m.lock()?.get(), 1);
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # Design
//!
//! The lock word holds the owner: its pid and start time packed in one
//! `u64` (so a reused pid is not mistaken for the owner), or 0 when free. A
//! locker takes it with a compare-and-swap from 0. When it is taken, the
//! locker spins briefly, then sleeps on a second word (a futex on Linux; a
//! polling sleep elsewhere) that every unlock changes, and every 10 ms checks
//! whether the owner still runs. If it does not, the locker replaces the dead
//! owner's word with its own (a compare-and-swap, so two lockers cannot both
//! win) and its guard reports [`MutexGuard::previous_owner_died`].
//!
//! This is not the kernel's robust futex (which hands over the lock at the
//! holder's death without a look-up): a dead holder is noticed within 10 ms
//! of a waiter looking, which is what "never hangs" needs, and it works the
//! same on every OS.

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::park::deadline_after;
use crate::segment::{fingerprint, Detail, Kind, Observation, Segment, Spec, HEADER_LEN};
use crate::sys;

const LOCK: usize = HEADER_LEN;
const SEQ: usize = HEADER_LEN + 8;
const WAITERS: usize = HEADER_LEN + 12;
const VALUE: usize = HEADER_LEN + 64;
const SPINS: u32 = 1_000;
const SLICE: Duration = Duration::from_millis(10);

fn total<T>() -> u64 {
    (VALUE + std::mem::size_of::<T>()) as u64
}

fn spec<T>() -> Spec {
    let (size, align) = (
        std::mem::size_of::<T>() as u64,
        std::mem::align_of::<T>() as u64,
    );
    Spec {
        kind: Kind::Mutex,
        fingerprint: fingerprint(
            Kind::Mutex,
            &[
                LOCK as u64,
                SEQ as u64,
                WAITERS as u64,
                VALUE as u64,
                size,
                align,
            ],
        ),
    }
}

/// A named robust mutex over a value of type `T`.
#[derive(Debug)]
pub struct Mutex<T> {
    seg: Segment,
    me: u64,
    _t: PhantomData<fn(T) -> T>,
}

/// Holds the lock; unlocks when dropped.
#[derive(Debug)]
pub struct MutexGuard<'a, T> {
    m: &'a Mutex<T>,
    owner_died: bool,
}

impl<T: FromBytes + IntoBytes + Immutable> Mutex<T> {
    /// Creates the mutex `name` holding `initial`, unlocked.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create(name: &str, initial: &T) -> Result<Self> {
        Self::create_with(name, initial, &Options::new())
    }

    /// [`Mutex::create`] with options.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create_with(name: &str, initial: &T, opts: &Options) -> Result<Self> {
        let size = std::mem::size_of::<T>() as u64;
        let seg = Segment::create(name, opts, spec::<T>(), 1, size, total::<T>())?;
        seg.view().write_at(VALUE, initial.as_bytes())?;
        Ok(Self::wrap(seg))
    }

    /// Opens the existing mutex `name`.
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`] (for
    /// example another `T`).
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`Mutex::open`] with options (ready timeout).
    ///
    /// # Errors
    /// As [`Mutex::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let seg = Segment::open(name, opts, spec::<T>())?;
        let h = seg.header();
        if h.param != std::mem::size_of::<T>() as u64 || h.total_len < total::<T>() {
            return Err(Error::Corrupt {
                object: seg.label().to_owned(),
                reason: format!(
                    "its value is {} bytes in {}, not what {} needs",
                    h.param,
                    h.total_len,
                    total::<T>()
                ),
            });
        }
        Ok(Self::wrap(seg))
    }

    fn wrap(seg: Segment) -> Self {
        Mutex {
            seg,
            me: sys::owner_word(std::process::id()),
            _t: PhantomData,
        }
    }

    /// Takes the lock if it is free, or held by a process that died.
    fn try_take(&self) -> Option<MutexGuard<'_, T>> {
        let lock = self.seg.a64(LOCK);
        let cur = lock.load(Ordering::Relaxed);
        if cur == 0 {
            return lock
                .compare_exchange(0, self.me, Ordering::Acquire, Ordering::Relaxed)
                .ok()
                .map(|_| MutexGuard {
                    m: self,
                    owner_died: false,
                });
        }
        None
    }

    /// Takes the lock from its owner if that process is gone.
    fn take_from_dead(&self) -> Option<MutexGuard<'_, T>> {
        let lock = self.seg.a64(LOCK);
        let cur = lock.load(Ordering::Acquire);
        if cur != 0 && cur != self.me && sys::owner_alive(cur) == Some(false) {
            return lock
                .compare_exchange(cur, self.me, Ordering::Acquire, Ordering::Relaxed)
                .ok()
                .map(|_| MutexGuard {
                    m: self,
                    owner_died: true,
                });
        }
        None
    }

    /// Takes the lock if it is free now (or its holder died).
    ///
    /// # Errors
    /// None at present (the `Result` leaves room for a corrupt segment).
    pub fn try_lock(&self) -> Result<Option<MutexGuard<'_, T>>> {
        Ok(self.try_take().or_else(|| self.take_from_dead()))
    }

    /// Waits as long as it takes for the lock.
    ///
    /// # Errors
    /// [`Error::Busy`] if this process already holds it through this handle's
    /// segment (a second lock would deadlock).
    pub fn lock(&self) -> Result<MutexGuard<'_, T>> {
        self.lock_opt(None)
    }

    /// Waits at most `timeout` for the lock.
    ///
    /// # Errors
    /// [`Error::Timeout`], and as [`Mutex::lock`].
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>> {
        self.lock_opt(deadline_after(timeout))
    }

    /// Waits until `deadline` at most for the lock.
    ///
    /// # Errors
    /// [`Error::Timeout`], and as [`Mutex::lock`].
    pub fn lock_deadline(&self, deadline: Instant) -> Result<MutexGuard<'_, T>> {
        self.lock_opt(Some(deadline))
    }

    fn lock_opt(&self, deadline: Option<Instant>) -> Result<MutexGuard<'_, T>> {
        for _ in 0..SPINS {
            if let Some(g) = self.try_take() {
                return Ok(g);
            }
            std::hint::spin_loop();
        }
        let started = Instant::now();
        let lock = self.seg.a64(LOCK);
        if lock.load(Ordering::Relaxed) == self.me {
            return Err(Error::Busy {
                object: self.seg.label().to_owned(),
                reason: "this process already holds the lock (a second lock would never return)"
                    .into(),
            });
        }
        let (seq, waiters) = (self.seg.a32(SEQ), self.seg.a32(WAITERS));
        loop {
            let s = seq.load(Ordering::SeqCst);
            waiters.fetch_add(1, Ordering::SeqCst);
            let got = self.try_take().or_else(|| self.take_from_dead());
            if got.is_none() {
                let slice = match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                    Some(left) if left.is_zero() => {
                        waiters.fetch_sub(1, Ordering::SeqCst);
                        return Err(Error::Timeout {
                            object: self.seg.label().to_owned(),
                            what: "the lock",
                            waited: started.elapsed(),
                        });
                    }
                    Some(left) => left.min(SLICE),
                    None => SLICE,
                };
                if let Err(e) = self.seg.check_backed() {
                    waiters.fetch_sub(1, Ordering::SeqCst);
                    return Err(e);
                }
                self.seg.wait_on(SEQ, s, slice);
            }
            waiters.fetch_sub(1, Ordering::SeqCst);
            if let Some(g) = got {
                return Ok(g);
            }
        }
    }
}

/// Holds the lock through an `Arc` of the mutex, so that it can be kept
/// beside the mutex (in a struct, across calls: what a binding needs)
/// without borrowing it; unlocks when dropped. See [`Mutex::lock_owned`]
/// (tokio's `lock_owned` shape).
#[derive(Debug)]
pub struct OwnedMutexGuard<T> {
    m: std::sync::Arc<Mutex<T>>,
    owner_died: bool,
}

impl<T: FromBytes + IntoBytes + Immutable> Mutex<T> {
    /// [`Mutex::try_lock`], with a guard that owns an `Arc` of the mutex.
    ///
    /// # Errors
    /// As [`Mutex::try_lock`].
    pub fn try_lock_owned(self: &std::sync::Arc<Self>) -> Result<Option<OwnedMutexGuard<T>>> {
        Ok(self.try_lock()?.map(|g| g.into_owned(self)))
    }

    /// [`Mutex::lock`], with a guard that owns an `Arc` of the mutex.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let m = Arc::new(filemap::sync::Mutex::create("filemap-doc-owned", &0u64)?);
    /// let g = m.lock_owned()?; // no borrow of `m`: `g` may live beside it
    /// assert_eq!(g.get(), 0);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub fn lock_owned(self: &std::sync::Arc<Self>) -> Result<OwnedMutexGuard<T>> {
        Ok(self.lock()?.into_owned(self))
    }

    /// [`Mutex::lock_timeout`], with a guard that owns an `Arc` of the mutex.
    ///
    /// # Errors
    /// As [`Mutex::lock_timeout`].
    pub fn lock_owned_timeout(
        self: &std::sync::Arc<Self>,
        timeout: Duration,
    ) -> Result<OwnedMutexGuard<T>> {
        Ok(self.lock_timeout(timeout)?.into_owned(self))
    }

    /// [`Mutex::lock_deadline`], with a guard that owns an `Arc` of the mutex.
    ///
    /// # Errors
    /// As [`Mutex::lock_deadline`].
    pub fn lock_owned_deadline(
        self: &std::sync::Arc<Self>,
        deadline: Instant,
    ) -> Result<OwnedMutexGuard<T>> {
        Ok(self.lock_deadline(deadline)?.into_owned(self))
    }
}

impl<'a, T> MutexGuard<'a, T> {
    /// The same hold, owned: `m` is the `Arc` this guard's mutex lives in.
    fn into_owned(self, m: &std::sync::Arc<Mutex<T>>) -> OwnedMutexGuard<T> {
        let owner_died = self.owner_died;
        // The lock passes to the owned guard: not unlocked here.
        std::mem::forget(self);
        OwnedMutexGuard {
            m: m.clone(),
            owner_died,
        }
    }
}

impl<T: FromBytes + IntoBytes + Immutable> OwnedMutexGuard<T> {
    /// As [`MutexGuard::previous_owner_died`].
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// As [`MutexGuard::get`].
    pub fn get(&self) -> T {
        read_value(&self.m)
    }

    /// As [`MutexGuard::set`].
    pub fn set(&mut self, value: &T) {
        write_value(&self.m, value);
    }
}

impl<T> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        unlock(&self.m.seg);
    }
}

/// A copy of the value (the caller holds the lock).
fn read_value<T: FromBytes + IntoBytes + Immutable>(m: &Mutex<T>) -> T {
    let mut v = T::new_zeroed();
    m.seg
        .view()
        .read_at_raw(VALUE, v.as_mut_bytes())
        .expect("the value lies in the segment (checked at open)");
    v
}

/// Replaces the value (the caller holds the lock).
fn write_value<T: FromBytes + IntoBytes + Immutable>(m: &Mutex<T>, value: &T) {
    m.seg
        .view()
        .write_at_raw(VALUE, value.as_bytes())
        .expect("the value lies in the segment (checked at open)");
}

/// Lets go of the lock and wakes a waiter.
fn unlock(seg: &Segment) {
    // Release: our writes to the value happen-before the next locker's acquire.
    seg.a64(LOCK).store(0, Ordering::SeqCst);
    if seg.a32(WAITERS).load(Ordering::SeqCst) != 0 {
        seg.a32(SEQ).fetch_add(1, Ordering::SeqCst);
        seg.wake(SEQ, 1);
    }
}

impl<T: FromBytes + IntoBytes + Immutable> MutexGuard<'_, T> {
    /// True when the previous holder died holding the lock: the value may be
    /// half-updated. Check it (or reset it with [`MutexGuard::set`]) before trusting it.
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        read_value(self.m)
    }

    /// Replaces the value.
    pub fn set(&mut self, value: &T) {
        write_value(self.m, value);
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        unlock(&self.m.seg);
    }
}

/// What the lock word says now (see [`crate::inspect::observe`]).
pub(crate) fn observe(seg: Segment) -> Result<Observation> {
    seg.expect_kind(Kind::Mutex)?;
    let word = seg.a64(LOCK).load(Ordering::Acquire);
    Ok(Observation {
        ends: Vec::new(),
        detail: Detail::Mutex {
            holder: (word as u32 != 0).then_some(word as u32),
            holder_alive: sys::owner_alive(word),
        },
    })
}
