//! A cross-process event: processes wait on it, others wake one or all.
//!
//! ```
//! use filemap::sync::Event;
//! use std::time::Duration;
//!
//! let e = Event::create("filemap-doc-event")?;
//! let other = Event::open("filemap-doc-event")?; // in another process
//! e.notify_one(); // a permit: the next wait returns at once
//! other.wait_timeout(Duration::from_secs(1))?;
//! assert!(matches!(
//!     other.wait_timeout(Duration::from_millis(10)), // no permit left
//!     Err(filemap::Error::Timeout { .. })
//! ));
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # Semantics
//!
//! - [`Event::notify_one`] leaves one *permit*: one waiter, present or
//!   future, takes it and returns (like a Win32 auto-reset event, or a
//!   semaphore's release).
//! - [`Event::notify_all`] wakes every process waiting at that moment and
//!   leaves nothing behind (a pulse).
//!
//! # Design
//!
//! Three words after the segment header: `gen`, changed by every notify (the
//! futex word waiters sleep on), `permits`, and `pulses`, counted by
//! `notify_all`. A waiter reads `gen`, checks for a permit (taken with a
//! compare-and-swap) or a new pulse, and only then sleeps while `gen` is
//! unchanged, so a notify between the check and the sleep is never missed.
//! On Linux the sleep is a futex wait on the shared word, and the wake a
//! futex wake; on Windows a wait on a named semaphore kept for that word (see
//! `sys::Parker`); on macOS, for now, waiting polls with short sleeps.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::park::deadline_after;
use crate::segment::{fingerprint, Detail, Kind, Observation, Segment, Spec, HEADER_LEN};

const GEN: usize = HEADER_LEN;
const PERMITS: usize = HEADER_LEN + 4;
const PULSES: usize = HEADER_LEN + 8;
const TOTAL: u64 = HEADER_LEN as u64 + 64;
/// Longest single sleep; a waiter then looks again (bounds the cost of a
/// missed wake-up on platforms without a cross-process futex).
const SLICE: Duration = Duration::from_millis(50);

fn spec() -> Spec {
    Spec {
        kind: Kind::Event,
        fingerprint: fingerprint(
            Kind::Event,
            &[GEN as u64, PERMITS as u64, PULSES as u64, TOTAL],
        ),
    }
}

/// A named cross-process event.
#[derive(Debug)]
pub struct Event {
    seg: Segment,
}

impl Event {
    /// Creates the event `name`, with no permit.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create(name: &str) -> Result<Event> {
        Self::create_with(name, &Options::new())
    }

    /// [`Event::create`] with options.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create_with(name: &str, opts: &Options) -> Result<Event> {
        Ok(Event {
            seg: Segment::create(name, opts, spec(), 0, 0, TOTAL)?,
        })
    }

    /// Opens the existing event `name`.
    ///
    /// # Errors
    /// As [`Options::open`], [`Error::Corrupt`], [`Error::Incompatible`].
    pub fn open(name: &str) -> Result<Event> {
        Self::open_with(name, &Options::new())
    }

    /// [`Event::open`] with options.
    ///
    /// # Errors
    /// As [`Event::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Event> {
        let seg = Segment::open(name, opts, spec())?;
        if seg.header().total_len < TOTAL {
            return Err(Error::Corrupt {
                object: seg.label().to_owned(),
                reason: format!(
                    "it is {} bytes, an event needs {TOTAL}",
                    seg.header().total_len
                ),
            });
        }
        Ok(Event { seg })
    }

    /// Leaves one permit and wakes one waiter to take it.
    pub fn notify_one(&self) {
        self.seg.a32(PERMITS).fetch_add(1, Ordering::AcqRel);
        self.bump(1);
    }

    /// Wakes every process waiting now.
    pub fn notify_all(&self) {
        self.seg.a32(PULSES).fetch_add(1, Ordering::AcqRel);
        self.bump(u32::MAX);
    }

    fn bump(&self, n: u32) {
        self.seg.a32(GEN).fetch_add(1, Ordering::AcqRel);
        self.seg.wake(GEN, n);
    }

    /// Takes a permit if there is one.
    fn take_permit(&self) -> bool {
        let permits = self.seg.a32(PERMITS);
        let mut p = permits.load(Ordering::Acquire);
        while p > 0 {
            match permits.compare_exchange_weak(p, p - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => p = now,
            }
        }
        false
    }

    /// Takes a permit if there is one now; never waits. (A pulse is only
    /// for those waiting when it happens, so this never sees one.)
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for a segment found corrupt.
    pub fn try_wait(&self) -> Result<bool> {
        Ok(self.take_permit())
    }

    /// Waits as long as it takes for a permit or a pulse.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for a segment found corrupt.
    pub fn wait(&self) -> Result<()> {
        self.wait_opt(None)
    }

    /// Waits at most `timeout` for a permit or a pulse.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the time runs out.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        self.wait_opt(deadline_after(timeout))
    }

    /// Waits until `deadline` at most for a permit or a pulse.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the deadline passes.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<()> {
        self.wait_opt(Some(deadline))
    }

    fn wait_opt(&self, deadline: Option<Instant>) -> Result<()> {
        let started = crate::park::started_if(deadline);
        let pulses = self.seg.a32(PULSES).load(Ordering::Acquire);
        loop {
            let gen = self.seg.a32(GEN).load(Ordering::Acquire);
            if self.take_permit() || self.seg.a32(PULSES).load(Ordering::Acquire) != pulses {
                return Ok(());
            }
            let slice = match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(left) if left.is_zero() => {
                    return Err(Error::Timeout {
                        object: self.seg.label().to_owned(),
                        what: "a notification",
                        waited: started.map_or(Duration::ZERO, |s| s.elapsed()),
                    })
                }
                Some(left) => left.min(SLICE),
                None => SLICE,
            };
            self.seg.check_backed()?;
            // Returns at once if `gen` moved since we read it.
            self.seg.wait_on(GEN, gen, slice);
        }
    }
}

// Waiting on many sources at once (`crate::wait`): ready when notified; the
// wait takes the permit (or sees the pulse), as `wait` does.

impl crate::wait::Source for Event {
    fn sleep_on(&self) -> (&Segment, crate::wait::Sleep, Option<crate::park::Side>) {
        (&self.seg, crate::wait::Sleep::Gen(GEN), None)
    }

    fn begin(&mut self) -> u64 {
        u64::from(self.seg.a32(PULSES).load(Ordering::Acquire))
    }

    fn ready(&mut self, baseline: u64) -> Result<bool> {
        Ok(self.take_permit()
            || u64::from(self.seg.a32(PULSES).load(Ordering::Acquire)) != baseline)
    }
}

impl crate::wait::Sealed for Event {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::SourceRef(self)
    }
}

// async/await (`crate::wait::reactor`).

impl Event {
    /// Waits asynchronously for a permit or a pulse (`ev.wait_async().await`),
    /// as [`Event::wait`] does: the task sleeps, no thread blocked nor
    /// spinning.
    ///
    /// # Cancel safety
    /// A permit is taken only when the future completes; dropping it before
    /// leaves the permit for others.
    pub fn wait_async(&self) -> WaitFuture<'_> {
        WaitFuture {
            ev: self,
            pulses: self.seg.a32(PULSES).load(Ordering::Acquire),
            waiter: crate::wait::reactor::Waiter::default(),
        }
    }
}

/// The future of [`Event::wait_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct WaitFuture<'a> {
    ev: &'a Event,
    pulses: u32,
    waiter: crate::wait::reactor::Waiter,
}

impl std::future::Future for WaitFuture<'_> {
    type Output = Result<()>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        let this = self.get_mut();
        let (mut ev, pulses) = (this.ev, this.pulses);
        this.waiter.poll_op(
            cx,
            &mut ev,
            |ev| {
                let pulsed = ev.seg.a32(PULSES).load(Ordering::Acquire) != pulses;
                Ok((ev.take_permit() || pulsed).then_some(()))
            },
            |w, cx, ev| {
                let seg = &ev.seg;
                w.pend(
                    cx,
                    seg,
                    crate::wait::Sleep::Gen(GEN),
                    None,
                    crate::wait::reactor::Recheck::None,
                    &mut || {
                        seg.a32(PERMITS).load(Ordering::Acquire) > 0
                            || seg.a32(PULSES).load(Ordering::Acquire) != pulses
                    },
                )
            },
        )
    }
}

/// What the event's words say now (see [`crate::inspect::observe`]).
pub(crate) fn observe(seg: Segment) -> Result<Observation> {
    seg.expect(spec())?;
    let permits = seg.a32(PERMITS).load(Ordering::Acquire);
    Ok(Observation {
        ends: Vec::new(),
        detail: Detail::Event { permits },
    })
}
