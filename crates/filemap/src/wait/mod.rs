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
//!
//! # Many sources: the doorbell
//!
//! Before it sleeps, a set polls its sources for as long as a single
//! blocking call would. A set of 8 sources or more does not read every
//! source on every round: it makes a *doorbell*, a small segment of its own
//! (kind `doorbell`, named `filemap-bell-PID-TOKEN`, gone with the set and
//! the senders that rang it), and registers it in each receiver's segment,
//! beside the words a sender reads after every message anyway. A sender
//! that finds it there sets its source's bit; the set reads the doorbell's
//! few words and looks only at the sources whose bits are set, the sources
//! it could not register (spsc senders' room, events, and a source another
//! live set of another process registered first, such as a second receiver
//! of an mpmc queue: those are polled as before) and the ones the last wait
//! returned. A set takes its registrations back when it is given other
//! sources or dropped (a process that died leaves its registrations to the
//! next set, which finds it gone). So a back-to-back round trip costs about
//! the same whatever the set's size, apart from reading the list it is given
//! (given the same objects as last time, the set compares their addresses).
//!
//! The bits are hints. A set about to sleep announces itself on every source
//! and looks at every one, as without a doorbell, so a sender that cannot
//! open the doorbell (another user's, say), or a registration word a hostile
//! process overwrote, costs at most the rest of the polling, never a wake-up;
//! a registration naming something other than a doorbell is ignored, and a
//! bit past its end wraps around it. The protocol's functions run in loom
//! models (`park::notify_tail`, `park::announce_all`, `bell::claim`,
//! `bell::ring`, `bell::take`).

pub(crate) mod reactor;
pub use reactor::ASYNC_LIVENESS;

use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::park::bell;
use crate::park::{announce_all, deadline_after, Park, ParkMem, SegWords, Side};
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
    /// The segment (what [`Source::sleep_on`] gives first; cheaper, for
    /// telling sources apart on every wait).
    fn segment(&self) -> &Segment {
        self.sleep_on().0
    }
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
    /// The doorbell, for a set of [`BELL_MIN`] sources or more.
    bell: Option<bell::Bell>,
    /// The serials of the sources the doorbell's registrations are for.
    serials: Vec<u64>,
    /// Sources not registered with the doorbell: polled every round.
    polled: Vec<usize>,
    /// The sources the last wait returned (looked at first by the next,
    /// since their bits were taken).
    last_ready: Vec<usize>,
    /// Look at every source in the next round (after registering).
    look_all: bool,
    /// Which sources a round looks at.
    look: Vec<usize>,
    /// Where this set registered its doorbell, to take it back when the
    /// set moves to other sources or is dropped.
    registered: Vec<Registration>,
    /// The addresses of the sources the registrations are for.
    ptrs: Vec<usize>,
}

/// A registration a set made in a source's segment: a handle that does not
/// keep the segment mapped, the word, and what the set wrote there.
#[derive(Debug)]
struct Registration {
    seg: std::sync::Weak<crate::segment::SegmentInner>,
    word: usize,
    reg: u64,
}

impl Drop for WaitSet {
    fn drop(&mut self) {
        self.deregister();
    }
}

/// The fewest sources for which a set uses a doorbell (below, reading each
/// source costs about what reading the doorbell does).
const BELL_MIN: usize = 8;

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
        Ok(self.returned())
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
        // Spin first, as a single blocking call does, shared by all. A set
        // with a doorbell, waiting on the same sources as last time, reads
        // the doorbell's bits and the sources not registered, and looks at
        // no other source: a round trip costs the same for 8 sources or
        // 1,000. (The same objects by address; `ring_ready` below checks
        // their segments before the set sleeps.)
        let fast = self.bell.is_some()
            && sources.len() >= BELL_MIN
            && self.ptrs.len() == sources.len()
            && sources
                .iter()
                .zip(&self.ptrs)
                .all(|(s, &p)| addr(&**s) == p);
        if fast {
            // Registered sources (receivers: their baseline is 0) are begun
            // only before the set sleeps; an spsc sender waiting for space
            // that the receiver has not yet published waits out this spin
            // at most.
            let mut baselines = std::mem::take(&mut self.baselines);
            baselines.resize(sources.len(), 0);
            for &i in &self.polled {
                baselines[i] = sources[i].source().0.begin();
            }
            let found = self.spin_rung(sources.len(), &mut |i| {
                sources[i].source().0.ready(baselines[i]).unwrap_or(true)
            });
            self.baselines = baselines;
            if found {
                return Ok(self.returned());
            }
        }
        self.ptrs.clear();
        self.ptrs.extend(sources.iter().map(|s| addr(&**s)));
        let mut srcs: Vec<&mut dyn Source> = sources.iter_mut().map(|s| s.source().0).collect();
        self.baselines.clear();
        self.baselines.extend(srcs.iter_mut().map(|s| s.begin()));
        let belled = self.ring_ready(&mut srcs);
        if belled && !fast {
            let baselines = std::mem::take(&mut self.baselines);
            let found = self.spin_rung(srcs.len(), &mut |i| {
                srcs[i].ready(baselines[i]).unwrap_or(true)
            });
            self.baselines = baselines;
            if found {
                return Ok(self.returned());
            }
        } else if !belled {
            let rounds = (SPIN_ROUNDS / srcs.len() as u32).max(8);
            for _ in 0..rounds {
                if self.collect(&mut srcs, false) {
                    return Ok(self.returned());
                }
                std::hint::spin_loop();
            }
        }
        let mut next_liveness = Instant::now();
        loop {
            // Announce: read each word, count ourselves as waiting.
            // Dekker's pattern on every source, as `Park::wait` does for one
            // (see `Park::notify`).
            self.seqs.clear();
            announce_all(srcs.iter().map(|s| words_of(&**s)), &mut self.seqs);
            let check_peers = Instant::now() >= next_liveness;
            if check_peers {
                self.alive.clear();
                next_liveness = Instant::now() + LIVENESS;
                for s in srcs.iter_mut() {
                    s.maintain();
                }
            }
            if let Some(b) = &self.bell {
                // Every source is looked at below: the bits so far say nothing more.
                b.take(|_| {});
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
                words_of(&**s).count_waiting(false);
            }
            match outcome {
                Some(Ok(())) => return Ok(self.returned()),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
    }

    /// The doorbell, for tests.
    #[cfg(test)]
    pub(crate) fn doorbell(&self) -> Option<&bell::Bell> {
        self.bell.as_ref()
    }

    /// The sources polled every round, for tests.
    #[cfg(test)]
    pub(crate) fn polled(&self) -> &[usize] {
        &self.polled
    }

    /// What a wait returns; remembered for the next wait's first look.
    fn returned(&mut self) -> &[Ready] {
        self.last_ready.clear();
        self.last_ready.extend(self.ready.iter().map(|r| r.index));
        &self.ready
    }

    /// Makes sure a set of [`BELL_MIN`] sources or more has a doorbell and
    /// is registered with these sources (again when the list changed);
    /// false when it polls every source instead (a small set, or no
    /// doorbell could be made).
    fn ring_ready(&mut self, srcs: &mut [&mut dyn Source]) -> bool {
        let n = srcs.len();
        if n < BELL_MIN {
            return false;
        }
        let same = self.serials.len() == n
            && srcs
                .iter()
                .zip(&self.serials)
                .all(|(s, &k)| s.segment().serial() == k);
        if same {
            return self.bell.is_some();
        }
        self.serials.clear();
        self.serials
            .extend(srcs.iter().map(|s| s.segment().serial()));
        self.last_ready.clear();
        self.deregister();
        if self.bell.as_ref().is_none_or(|b| b.bits() < n) {
            self.bell = None;
            self.bell = bell::Bell::create(n);
        }
        let Some(b) = &self.bell else {
            return false;
        };
        self.polled.clear();
        let mut mine = vec![false; n];
        for (i, s) in srcs.iter().enumerate() {
            let (seg, sleep, _) = s.sleep_on();
            let reg = b.reg_for(i);
            let registered = match sleep {
                Sleep::Park(p) if p.bell != 0 && seg.view().is_writable() => {
                    let word = seg.a64(p.bell);
                    let cur = word.load(Ordering::Acquire);
                    // The same queue twice in this list (two receivers of
                    // one mpmc queue): one registration, the other polled.
                    let twice = cur >> 16 == reg >> 16
                        && cur != reg
                        && mine.get((cur & 0xffff) as usize) == Some(&true);
                    (!twice && bell::claim(&bell::SegReg(word), reg, bell::is_stale))
                        .then_some(p.bell)
                }
                _ => None,
            };
            mine[i] = registered.is_some();
            match registered {
                Some(word) => self.registered.push(Registration {
                    seg: seg.downgrade(),
                    word,
                    reg,
                }),
                None => self.polled.push(i),
            }
        }
        // Registered before the first look at everything: a message sent
        // before a sender saw the registration is found by that look.
        fence(Ordering::SeqCst);
        self.look_all = true;
        true
    }

    /// Takes this set's registrations back from the sources that still hold
    /// them (and are still mapped here), so that another set, of any
    /// process, may register there.
    fn deregister(&mut self) {
        for r in self.registered.drain(..) {
            if let Some(seg) = Segment::upgrade(&r.seg) {
                let _ =
                    seg.a64(r.word)
                        .compare_exchange(r.reg, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }

    /// The polling phase of a set with a doorbell: rounds of
    /// [`collect_rung`] over `n` sources (`ready` looks at one), as many as
    /// a single blocking call polls; true once a round found some.
    fn spin_rung(&mut self, n: usize, ready: &mut dyn FnMut(usize) -> bool) -> bool {
        let rounds = (SPIN_ROUNDS / (1 + self.polled.len()) as u32).max(8);
        for _ in 0..rounds {
            let found = collect_rung(
                &mut self.look,
                (&mut self.look_all, &mut self.last_ready, &self.polled),
                self.bell.as_ref(),
                &mut self.ready,
                n,
                ready,
            );
            if found {
                return true;
            }
            std::hint::spin_loop();
        }
        false
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

/// The words a source sleeps on.
fn words_of(s: &dyn Source) -> SegWords<'_> {
    let (seg, sleep, _) = s.sleep_on();
    match sleep {
        Sleep::Park(p) => SegWords::park(seg, p),
        Sleep::Gen(off) => SegWords::generation(seg, off),
    }
}

/// A source's address, to tell whether a wait is given the same objects
/// as the last.
fn addr(s: &dyn Waitable) -> usize {
    s as *const dyn Waitable as *const u8 as usize
}

/// One round of a set with a doorbell: looks at the sources whose bits were
/// set, the polled ones, and (first) those the last wait returned, or at
/// every one right after registering (`look_all`); fills `out` with those
/// `ready` says are, in order; true if any.
fn collect_rung(
    look: &mut Vec<usize>,
    (look_all, last_ready, polled): (&mut bool, &mut Vec<usize>, &[usize]),
    bell: Option<&bell::Bell>,
    out: &mut Vec<Ready>,
    n: usize,
    ready: &mut dyn FnMut(usize) -> bool,
) -> bool {
    look.clear();
    if std::mem::take(look_all) {
        look.extend(0..n);
    } else {
        look.append(last_ready);
        look.extend_from_slice(polled);
        if let Some(b) = bell {
            let bits = b.bits();
            b.take(|bit| look.extend((bit..n).step_by(bits)));
        }
        look.sort_unstable();
        look.dedup();
    }
    out.clear();
    for &i in look.iter().filter(|&&i| i < n) {
        if ready(i) {
            out.push(Ready {
                index: i,
                gone: None,
            });
        }
    }
    !out.is_empty()
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
    if owner as u32 == 0 {
        return None; // no process holds the role (`sys::owner_alive`)
    }
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
    //! A set and notifiers, on loom's atomics, running the library's own
    //! protocol functions: `park::notify_tail` and `park::announce_all`
    //! (what `Park::notify` and `WaitSet::wait_opt` call), and the doorbell's
    //! `bell::claim`, `bell::ring` and `bell::take`. The steps around them
    //! (the progress store and the fences) are those of `Park::notify` and
    //! `WaitSet::wait_opt`.
    use crate::park::bell::{self, BellMem, RegMem};
    use crate::park::{announce_all, notify_tail, ParkMem};
    use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
    use loom::sync::Arc;

    /// One source: its progress, park words and registration word.
    struct Src {
        progress: AtomicU32,
        seq: AtomicU32,
        waiting: AtomicU32,
        reg: AtomicU64,
    }

    /// A doorbell of one word.
    struct Bell(AtomicU64);

    impl BellMem for Bell {
        fn words(&self) -> usize {
            1
        }
        fn or_word(&self, _w: usize, mask: u64) {
            self.0.fetch_or(mask, Ordering::Release);
        }
        fn load_word(&self, _w: usize) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
        fn swap_word(&self, _w: usize) -> u64 {
            self.0.swap(0, Ordering::Acquire)
        }
    }

    struct Words<'a>(&'a Src, &'a Bell);

    impl ParkMem for Words<'_> {
        fn load_seq(&self) -> u32 {
            self.0.seq.load(Ordering::Acquire)
        }
        fn count_waiting(&self, up: bool) {
            if up {
                self.0.waiting.fetch_add(1, Ordering::Relaxed);
            } else {
                self.0.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
        fn load_waiting(&self) -> u32 {
            self.0.waiting.load(Ordering::Relaxed)
        }
        fn load_reg(&self) -> u64 {
            self.0.reg.load(Ordering::Relaxed)
        }
        fn wake(&self, _n: u32) {
            self.0.seq.fetch_add(1, Ordering::Release);
        }
        fn ring(&self, reg: u64) {
            bell::ring(self.1, reg);
        }
        fn full_fence() {
            fence(Ordering::SeqCst);
        }
    }

    impl RegMem for Src {
        fn load_reg(&self) -> u64 {
            self.reg.load(Ordering::Acquire)
        }
        fn cas_reg(&self, cur: u64, new: u64) -> bool {
            self.reg
                .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }
    }

    fn srcs(reg: [u64; 2]) -> Arc<([Src; 2], Bell)> {
        Arc::new((
            reg.map(|r| Src {
                progress: AtomicU32::new(0),
                seq: AtomicU32::new(0),
                waiting: AtomicU32::new(0),
                reg: AtomicU64::new(r),
            }),
            Bell(AtomicU64::new(0)),
        ))
    }

    /// What `Park::notify` does after a message: publish, full barrier,
    /// then the protocol's tail.
    fn notify(s: &Src, b: &Bell) {
        s.progress.store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        notify_tail(&Words(s, b));
    }

    /// A thread per source, each sending one message ([`notify`]).
    fn notifiers(st: &Arc<([Src; 2], Bell)>) -> Vec<loom::thread::JoinHandle<()>> {
        (0..2)
            .map(|i| {
                let st = st.clone();
                loom::thread::spawn(move || notify(&st.0[i], &st.1))
            })
            .collect()
    }

    // A set about to sleep on two sources (registered with its doorbell or
    // not) and a notifier on each: a set that decides to sleep always finds
    // a word that moved from what it read, so the system call returns at
    // once or is woken. No missed wake-up, whatever the interleaving.
    #[test]
    fn a_set_never_sleeps_through_a_notification() {
        for reg in [[0, 0], [bell::reg_word(7, 1, 0), bell::reg_word(7, 1, 1)]] {
            loom::model(move || {
                let st = srcs(reg);
                let notifiers = notifiers(&st);
                let (src, bell) = (&st.0, &st.1);
                let mut seqs = Vec::new();
                announce_all(src.iter().map(|s| Words(s, bell)), &mut seqs);
                let seen = src.iter().any(|s| s.progress.load(Ordering::Acquire) == 1);
                for n in notifiers {
                    n.join().unwrap();
                }
                if !seen {
                    // It would sleep on both words: at least one must have
                    // moved (every notifier has run by now, and one ran
                    // after our announcement was visible to it).
                    assert!(
                        src.iter()
                            .zip(&seqs)
                            .any(|(s, &v)| s.seq.load(Ordering::Acquire) != v),
                        "the set would sleep through a notification"
                    );
                }
            });
        }
    }

    // A set registering with two sources while each gets a message: every
    // message is found by the look at every source that follows the
    // registration, or its sender saw the registration and rang the bit the
    // set then takes; so, after registering, the set's polling reads only
    // the doorbell and still misses nothing. A source another live set holds
    // is not taken.
    #[test]
    fn a_registered_set_learns_of_every_message_from_the_doorbell() {
        loom::model(|| {
            let other = bell::reg_word(9, 3, 0);
            let st = srcs([0, other]);
            let notifiers = notifiers(&st);
            let (src, bell) = (&st.0, &st.1);
            // As `WaitSet::ring_ready`: claim, full barrier, look at all.
            let claimed: Vec<bool> = src
                .iter()
                .enumerate()
                .map(|(i, s)| bell::claim(s, bell::reg_word(7, 1, i as u32), |_| false))
                .collect();
            assert_eq!(claimed, [true, false], "only the free word is claimed");
            fence(Ordering::SeqCst);
            let seen_first = src[0].progress.load(Ordering::Acquire) == 1;
            for n in notifiers {
                n.join().unwrap();
            }
            let mut rung = Vec::new();
            bell::take(bell, |b| rung.push(b));
            assert!(
                seen_first || rung == [0],
                "a message after registration rang no bit (rung {rung:?})"
            );
            // The other set's source rings the other set's doorbell (here
            // the same word, bit 0 too: its bit), never this set's bit 1.
            assert!(!rung.contains(&1));
        });
    }
}
