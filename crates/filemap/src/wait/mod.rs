//! Waiting on many sources at once (`WaitForMultipleObjects`): a
//! [`WaitSet`] sleeps until any of several channels or events is ready and
//! says which, without a thread per source and without burning CPU.
//!
//! ```
//! use filemap::channel::spsc::{Receiver, Sender};
//! use filemap::sync::Event;
//! use filemap::wait::WaitSet;
//! use std::time::Duration;
//!
//! let mut data = Receiver::create("filemap-doc-ws-data", 4096)?;
//! let mut control = Event::create("filemap-doc-ws-ctl")?;
//! // Another process would do this:
//! let mut tx = Sender::open("filemap-doc-ws-data")?;
//! tx.send(b"hello")?;
//!
//! let mut set = WaitSet::new();
//! let ready = set.wait_timeout(&mut [&mut data, &mut control], Duration::from_secs(1))?;
//! assert_eq!(ready.len(), 1);
//! assert_eq!(ready[0].index, 0); // the data channel, not the event
//! assert_eq!(data.try_recv()?.unwrap().to_vec(), b"hello");
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # Cancel safety, and `select!`
//!
//! Every future of the crate (`recv_async`, `send_async`, `reserve_async`,
//! `wait_async`) is cancel-safe: dropped before it completes, it has taken
//! no message, sent nothing, reserved nothing and taken no permit, and it
//! leaves nothing registered. So each may be a branch of `tokio::select!`
//! that loses the race:
//!
//! ```no_run
//! # async fn f() -> filemap::Result<()> {
//! use filemap::{channel::spsc::Receiver, sync::Event};
//!
//! let mut data = Receiver::open("data")?;
//! let stop = Event::open("stop")?;
//! loop {
//!     tokio::select! {
//!         msg = data.recv_async() => println!("{} bytes", msg?.len()),
//!         done = stop.wait_async() => { done?; break; }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # What "ready" means
//!
//! - spsc, mpmc and broadcast **receivers**: a message is there to receive
//!   (the next `try_recv` returns it, unless another receiver of an mpmc
//!   queue takes it first), or the sender's end is closed or its process
//!   died (the next call reports [`Error::PeerGone`]).
//! - spsc **senders** ([`Sender::space_for`](crate::channel::spsc::Sender::space_for)):
//!   a message of the given size fits, or
//!   the receiver is gone.
//! - [`Event`](crate::sync::Event)s: notified. Like `WaitForMultipleObjects`
//!   on an auto-reset event, the wait *consumes* the notification (a permit
//!   from `notify_one`; a pulse from `notify_all` is seen by every waiter).
//! - Any source whose segment another process shrank or damaged is reported
//!   ready, so that its own next call reports the error instead of the set
//!   hanging.
//!
//! Several sources can be ready at once; all of them are returned, in the
//! order given.
//!
//! # How it sleeps
//!
//! Each source keeps the wake-up words its single blocking calls use. The
//! set applies the same protocol to every source at once (announce, fence,
//! re-check: a message sent at any moment is seen), then sleeps on all the
//! words with one system call:
//!
//! - **Linux**: `futex_waitv` (Linux 5.16+), up to 127 sources per call and
//!   a thread per further 127 while the set sleeps. On older kernels (or
//!   with `FILEMAP_NO_WAITV` set) it polls with sleeps of at most 1 ms:
//!   correct, but a little CPU per idle set.
//! - **Windows**: `WaitForMultipleObjects` over the per-word semaphores, 64
//!   per call and a thread per further 63. Unnamed segments have no
//!   semaphore and are polled every millisecond.
//! - **macOS**: polling with sleeps of at most 1 ms, as single waits do there.
//!
//! A dead peer cannot wake anyone: the set looks at its sources' peers
//! every [`LIVENESS`] while it sleeps (one lookup per distinct process).

pub(crate) mod reactor;
pub use reactor::ASYNC_LIVENESS;

use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::park::{deadline_after, Park, Side};
use crate::segment::Segment;
use crate::sys;

/// Whether this system sleeps on many words with one call (`futex_waitv`,
/// `WaitForMultipleObjects`) rather than polling (macOS; Linux before 5.16
/// or with `FILEMAP_NO_WAITV` set): see the [module docs](self). One name
/// for this everywhere: the `sys` layer's function is called the same.
pub fn waits_natively() -> bool {
    sys::waits_natively()
}

/// The former name of [`waits_natively`].
#[deprecated(note = "renamed to `waits_natively`")]
pub fn is_native() -> bool {
    waits_natively()
}

/// How often a sleeping set looks at its sources' peers (a dead process
/// wakes nobody), and wakes to re-check at the latest.
pub const LIVENESS: Duration = Duration::from_millis(250);
/// Polls before sleeping, shared by all sources: as long as a single
/// blocking call spins.
const SPIN_ROUNDS: u32 = 2_000;

/// How a source sleeps: on a [`Park`] (a `waiting` counter the other side
/// reads before it wakes anyone), or on a generation word every notify bumps
/// and wakes (events).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sleep {
    Park(Park),
    Gen(usize),
}

/// What a channel end or event tells a [`WaitSet`]. Implemented by the
/// types listed on [`Waitable`].
pub(crate) trait Source {
    /// The segment, how to sleep on it, and the peer whose death makes the
    /// source ready.
    fn sleep_on(&self) -> (&Segment, Sleep, Option<Side>);
    /// Called once when a wait starts: anything this end owes its peer
    /// before sleeping (an spsc receiver publishes what it consumed, so that
    /// a sender waiting for space goes on). Returns the source's baseline
    /// (for an event: its pulse count).
    fn begin(&mut self) -> u64 {
        0
    }
    /// Whether the source is ready now. `Err` counts as ready (the source's
    /// own next call reports it).
    fn ready(&mut self, baseline: u64) -> Result<bool>;
    /// Called every [`LIVENESS`] while the set sleeps: repairs a single
    /// blocking call would make (an mpmc queue frees slots crashed
    /// processes claimed).
    fn maintain(&mut self) {}
}

mod sealed {
    /// The handle a [`super::WaitSet`] gets of a source; not nameable
    /// outside the crate.
    pub struct SourceRef<'a>(pub(crate) &'a mut dyn super::Source);

    pub trait Sealed {
        fn source(&mut self) -> SourceRef<'_>;
    }
}

/// What a [`WaitSet`] can wait on: spsc, mpmc and broadcast
/// [`Receiver`](crate::channel::spsc::Receiver)s, spsc senders through
/// [`Sender::space_for`](crate::channel::spsc::Sender::space_for), and
/// [`Event`](crate::sync::Event)s. Sealed: the set relies
/// on each type's wake-up protocol.
pub trait Waitable: sealed::Sealed {}

impl<T: sealed::Sealed> Waitable for T {}

pub(crate) use sealed::{Sealed, SourceRef};

/// A source a wait found ready.
#[derive(Debug)]
pub struct Ready {
    /// Its index in the list given to the wait.
    pub index: usize,
    /// Set when the source's peer died ([`Error::PeerGone`] naming it): its
    /// messages still there can be received, and it will not make any more
    /// progress. (A peer that *closed* its end is reported by the source's
    /// own calls once drained, as usual.)
    pub gone: Option<Error>,
}

/// Waits on many sources at once: see the [module docs](self). It keeps
/// its buffers between waits; the sources are given to each call, so they
/// stay free to use (with `&mut`) between waits.
#[derive(Debug, Default)]
pub struct WaitSet {
    ready: Vec<Ready>,
    baselines: Vec<u64>,
    seqs: Vec<u32>,
    alive: HashMap<u64, bool>,
}

impl WaitSet {
    /// An empty set of buffers.
    pub fn new() -> WaitSet {
        WaitSet::default()
    }

    /// The sources ready now; never sleeps (may be empty). A dead peer is
    /// not looked for here (that takes a look at the process table): the
    /// sleeping waits do it.
    ///
    /// # Errors
    /// None at present: a source in error is reported ready.
    pub fn try_wait(&mut self, sources: &mut [&mut dyn Waitable]) -> Result<&[Ready]> {
        let mut srcs: Vec<&mut dyn Source> = sources.iter_mut().map(|s| s.source().0).collect();
        self.baselines.clear();
        self.baselines.extend(srcs.iter_mut().map(|s| s.begin()));
        self.collect(&mut srcs, true);
        Ok(&self.ready)
    }

    /// Waits as long as it takes for at least one source to be ready, and
    /// returns all that are, in the order given. (An empty list, which
    /// would wait for ever, is refused.)
    ///
    /// # Errors
    /// [`Error::InvalidSize`] for an empty list.
    pub fn wait(&mut self, sources: &mut [&mut dyn Waitable]) -> Result<&[Ready]> {
        self.wait_opt(sources, None)
    }

    /// As [`WaitSet::wait`], for at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when no source became ready in time;
    /// [`Error::InvalidSize`] for an empty list.
    pub fn wait_timeout(
        &mut self,
        sources: &mut [&mut dyn Waitable],
        timeout: Duration,
    ) -> Result<&[Ready]> {
        self.wait_opt(sources, deadline_after(timeout))
    }

    /// As [`WaitSet::wait`], until `deadline` at most.
    ///
    /// # Errors
    /// [`Error::Timeout`] when no source became ready in time;
    /// [`Error::InvalidSize`] for an empty list.
    pub fn wait_deadline(
        &mut self,
        sources: &mut [&mut dyn Waitable],
        deadline: Instant,
    ) -> Result<&[Ready]> {
        self.wait_opt(sources, Some(deadline))
    }

    fn wait_opt(
        &mut self,
        sources: &mut [&mut dyn Waitable],
        deadline: Option<Instant>,
    ) -> Result<&[Ready]> {
        if sources.is_empty() {
            return Err(Error::InvalidSize {
                object: "a wait set".into(),
                reason: "it has no sources to wait on".into(),
            });
        }
        let started = Instant::now();
        let mut srcs: Vec<&mut dyn Source> = sources.iter_mut().map(|s| s.source().0).collect();
        self.baselines.clear();
        self.baselines.extend(srcs.iter_mut().map(|s| s.begin()));
        // Spin first, as a single blocking call does, shared by all.
        let rounds = (SPIN_ROUNDS / srcs.len() as u32).max(8);
        for _ in 0..rounds {
            if self.collect(&mut srcs, false) {
                return Ok(&self.ready);
            }
            std::hint::spin_loop();
        }
        let mut next_liveness = Instant::now();
        loop {
            // Announce: read each word, count ourselves as waiting.
            self.seqs.clear();
            for s in srcs.iter() {
                let (seg, sleep, _) = s.sleep_on();
                match sleep {
                    Sleep::Park(p) => {
                        self.seqs.push(seg.a32(p.seq).load(Ordering::Acquire));
                        seg.a32(p.waiting).fetch_add(1, Ordering::Relaxed);
                    }
                    Sleep::Gen(off) => self.seqs.push(seg.a32(off).load(Ordering::Acquire)),
                }
            }
            // Then the other half of Dekker's pattern, as `Park::wait` does
            // for one source (see `Park::notify`).
            fence(Ordering::SeqCst);
            if srcs.iter().any(|s| s.sleep_on().0.barriers_work()) && !sys::heavy_barrier() {
                for s in srcs.iter() {
                    s.sleep_on().0.need_fences();
                }
            }
            let check_peers = Instant::now() >= next_liveness;
            if check_peers {
                self.alive.clear();
                next_liveness = Instant::now() + LIVENESS;
                for s in srcs.iter_mut() {
                    s.maintain();
                }
            }
            let found = self.collect(&mut srcs, true) || (check_peers && self.collect_gone(&srcs));
            let outcome = if found {
                Some(Ok(()))
            } else {
                match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                    Some(left) if left.is_zero() => Some(Err(Error::Timeout {
                        object: describe(&srcs),
                        what: "any of its sources",
                        waited: started.elapsed(),
                    })),
                    left => {
                        let slice = left.map_or(LIVENESS, |l| l.min(LIVENESS));
                        let words: Vec<sys::WaitWord<'_>> = srcs
                            .iter()
                            .zip(&self.seqs)
                            .map(|(s, &expected)| {
                                let (seg, sleep, _) = s.sleep_on();
                                let off = match sleep {
                                    Sleep::Park(p) => p.seq,
                                    Sleep::Gen(off) => off,
                                };
                                seg.wait_word(off, expected)
                            })
                            .collect();
                        sys::wait_any(&words, slice);
                        None
                    }
                }
            };
            for s in srcs.iter() {
                let (seg, sleep, _) = s.sleep_on();
                if let Sleep::Park(p) = sleep {
                    seg.a32(p.waiting).fetch_sub(1, Ordering::Relaxed);
                }
            }
            match outcome {
                Some(Ok(())) => return Ok(&self.ready),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }

    /// Fills `ready` with the sources ready now; true if any.
    /// With `backed`, a source whose segment was shrunk counts as ready too
    /// (its own call reports it); the spin phase leaves that look to the
    /// sleeping phase, which always makes it before it sleeps.
    fn collect(&mut self, srcs: &mut [&mut dyn Source], backed: bool) -> bool {
        self.ready.clear();
        for (i, s) in srcs.iter_mut().enumerate() {
            let shrunk = backed && s.sleep_on().0.check_backed().is_err();
            if shrunk || s.ready(self.baselines[i]).unwrap_or(true) {
                self.ready.push(Ready {
                    index: i,
                    gone: None,
                });
            }
        }
        !self.ready.is_empty()
    }

    /// Fills `ready` with the sources whose peer closed its end or died
    /// (each distinct process looked up once per round); true if any.
    fn collect_gone(&mut self, srcs: &[&mut dyn Source]) -> bool {
        self.ready.clear();
        for (i, s) in srcs.iter().enumerate() {
            let (seg, _, peer) = s.sleep_on();
            if let Some(gone) = peer_gone(seg, peer, &mut self.alive) {
                self.ready.push(Ready {
                    index: i,
                    gone: Some(gone),
                });
            }
        }
        !self.ready.is_empty()
    }
}

/// `Some(PeerGone)` when the process holding `peer`'s role in `seg` died;
/// each distinct process is looked up once per round (`alive` caches it).
/// For the WaitSet's rounds and the reactor's alike.
pub(crate) fn peer_gone(
    seg: &Segment,
    peer: Option<Side>,
    alive: &mut HashMap<u64, bool>,
) -> Option<Error> {
    let side = peer?;
    let owner = seg.a64(side.owner).load(Ordering::Acquire);
    let ok = *alive
        .entry(owner)
        .or_insert_with(|| sys::owner_alive(owner) != Some(false));
    (!ok).then(|| Error::PeerGone {
        object: seg.label().to_owned(),
        reason: format!("the {} (process {}) died", side.role, owner as u32),
    })
}

/// The sources' names, for a timeout message.
fn describe(srcs: &[&mut dyn Source]) -> String {
    let names: Vec<&str> = srcs
        .iter()
        .take(3)
        .map(|s| s.sleep_on().0.label())
        .collect();
    let more = srcs.len().saturating_sub(3);
    if more > 0 {
        format!("a wait set ({} and {more} more)", names.join(", "))
    } else {
        format!("a wait set ({})", names.join(", "))
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! The protocol between a set sleeping on two sources and a notifier on
    //! each (the same steps as `Park::notify` and `WaitSet::wait_opt`, on
    //! loom's atomics): a set that decides to sleep always finds a word that
    //! moved from what it read, so the system call returns at once or is
    //! woken. No missed wake-up, whatever the interleaving.
    use loom::sync::atomic::{fence, AtomicU32, Ordering};
    use loom::sync::Arc;

    struct Src {
        progress: AtomicU32,
        seq: AtomicU32,
        waiting: AtomicU32,
    }

    fn notify(s: &Src) {
        s.progress.store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        if s.waiting.load(Ordering::Relaxed) != 0 {
            s.seq.fetch_add(1, Ordering::Release);
        }
    }

    #[test]
    fn a_set_never_sleeps_through_a_notification() {
        loom::model(|| {
            let srcs: Arc<[Src; 2]> = Arc::new([0, 1].map(|_| Src {
                progress: AtomicU32::new(0),
                seq: AtomicU32::new(0),
                waiting: AtomicU32::new(0),
            }));
            let notifiers: Vec<_> = (0..2)
                .map(|i| {
                    let srcs = srcs.clone();
                    loom::thread::spawn(move || notify(&srcs[i]))
                })
                .collect();
            // The set: announce on both, fence, re-check.
            let seqs: Vec<u32> = srcs
                .iter()
                .map(|s| {
                    let v = s.seq.load(Ordering::Acquire);
                    s.waiting.fetch_add(1, Ordering::Relaxed);
                    v
                })
                .collect();
            fence(Ordering::SeqCst);
            let seen = srcs.iter().any(|s| s.progress.load(Ordering::Acquire) == 1);
            for n in notifiers {
                n.join().unwrap();
            }
            if !seen {
                // It would sleep on both words: at least one must have moved
                // (every notifier has run by now, and one ran after our
                // announcement was visible to it).
                assert!(
                    srcs.iter()
                        .zip(&seqs)
                        .any(|(s, &v)| s.seq.load(Ordering::Acquire) != v),
                    "the set would sleep through a notification"
                );
            }
        });
    }
}
