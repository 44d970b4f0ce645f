//! The async side of waiting: futures that never block the runtime's
//! threads. A future whose channel is not ready first keeps trying for a
//! short budget (`Options::async_spin`, 20 µs by default), a microsecond at a
//! time, waking itself in between so that the runtime runs its other tasks:
//! back-to-back traffic is caught that way without a thread hop. Then it
//! announces itself on the channel's wake-up words (the same protocol as a
//! blocking call), and hands the word to a *reactor*: a few threads of
//! filemap's own, each sleeping on up to 126 words at once
//! (`sys::wait_any`), which wake the futures' wakers when their words move.
//! Runtime-agnostic: any executor that polls futures and honours wakers
//! works (tokio, async-std, smol, `futures::executor`).
//!
//! Threads: one per 126 futures waiting at the same moment (10,000 idle
//! receivers: 80 sleeping threads), made as needed and kept, and one more,
//! the *ticker*, that looks every [`ASYNC_LIVENESS`] at what no word move
//! announces, for all of them in one pass:
//! - a dead peer cannot wake anyone, so it looks at the peers of the
//!   sleeping futures (once per distinct process);
//! - a wake-up that never comes (a bug, or another process that wrote over
//!   the channel's `waiting` count, so that the sender did not move the
//!   word) must not leave a future asleep for ever, so it reads one word
//!   per future that moves with what the future waits for ([`Recheck`]: the
//!   header where a receiver's next message goes, the receiver's index a
//!   sender waits on) and wakes the futures whose word moved. A lost
//!   wake-up costs at most that long (a blocking wait re-checks every
//!   10 ms).
//!
//! That look reads a word or two per future (10,000 idle receivers: about
//! 0.85 ms of CPU a second in a release build), and the threads sleeping on
//! words are not woken for it. (Before the ticker, each of them woke every
//! second to look at its own futures' peers, and re-entered its sleep on
//! all its words: 5,000 receivers with live senders cost 11.5 ms of CPU
//! every 2 s; now 1.4 ms.) With nothing to watch (only events, whose word
//! is their state, with no peer), the ticker sleeps.
//!
//! While it sleeps, a reactor thread holds the segments of the futures it
//! waits for (so that the words stay mapped). A future dropped while
//! pending wakes it to let go at once; a process that exits in that
//! instant leaves the name behind as a crashed holder would (stale, and
//! removed by the next filemap call that meets it).

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use super::Sleep;
use crate::error::{Error, Result};
use crate::park::Side;
use crate::segment::Segment;
use crate::sys;

/// How often the async reactor looks at the peers of its sleeping futures
/// (a dead one surfaces as [`Error::PeerGone`]), and at whether a future's
/// wake-up was lost (its channel moved, yet nobody woke it).
pub const ASYNC_LIVENESS: Duration = Duration::from_secs(1);
/// Futures per reactor thread: one `futex_waitv` takes 128 words, two of
/// which are the thread's own (its kick word, and the call's cancel word).
const PER_SHARD: usize = 126;

/// What the ticker looks at every [`ASYNC_LIVENESS`] besides a future's
/// peer, in case its wake-up was lost.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Recheck {
    /// Nothing: the word the future sleeps on is itself the state it waits
    /// for (an event's generation), so no wake-up can be lost.
    None,
    /// Wake it every time (an mpmc future: its next poll frees slots that
    /// crashed processes claimed, and finds a message whose wake-up was lost).
    Poke,
    /// Wake it when the `u64` at this offset of its segment no longer holds
    /// what it held when the future went to sleep (read before its last
    /// re-check): the word that changes when what it waits for comes.
    Word(usize),
}

/// One future waiting.
struct Entry {
    seg: Segment,
    off: usize,
    expected: u32,
    waker: Waker,
    peer: Option<Side>,
    recheck: Recheck,
    /// For [`Recheck::Word`]: the word's value when the future went to sleep.
    seen: u64,
    /// Its word moved (or its peer died): the waker was woken.
    fired: bool,
    gone: Option<Error>,
}

/// Whether the ticker has anything to look at for a future: a word to
/// re-check, or a peer process that could die.
fn watched(seg: &Segment, peer: Option<Side>, recheck: Recheck) -> bool {
    !matches!(recheck, Recheck::None)
        || peer.is_some_and(|p| seg.a64(p.owner).load(Ordering::Relaxed) != 0)
}

impl Entry {
    fn watched(&self) -> bool {
        watched(&self.seg, self.peer, self.recheck)
    }
}

/// A reactor thread and the futures it waits for.
struct Shard {
    state: Mutex<Vec<Option<Entry>>>,
    /// How many slots of `state` are taken (read without its lock).
    used: std::sync::atomic::AtomicUsize,
    /// Bumped (and woken) when the entries change, so that the thread
    /// sleeps on the new set.
    kick: AtomicU32,
    parker: sys::Parker,
}

impl Shard {
    /// Tells the thread its futures changed, so that it sleeps on the new
    /// set: bumps the kick word, which the thread's sleep includes.
    fn wake_thread(&self) {
        self.kick.fetch_add(1, Ordering::Release);
        self.parker.wake(0, &self.kick, 1);
    }
}

/// Every shard; new futures go to the first with room.
fn shards() -> &'static Mutex<Vec<Arc<Shard>>> {
    static SHARDS: OnceLock<Mutex<Vec<Arc<Shard>>>> = OnceLock::new();
    SHARDS.get_or_init(|| Mutex::new(Vec::new()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A future's place in a shard.
struct Key {
    shard: Arc<Shard>,
    slot: usize,
}

/// Registers an entry: in a shard with room, or a new one with its thread.
fn register(entry: Entry) -> Result<Key> {
    let mut all = lock(shards());
    for shard in all.iter() {
        // Taken only under the registry's lock, so it cannot pass
        // PER_SHARD between this look and the insert.
        if shard.used.load(Ordering::Acquire) >= PER_SHARD {
            continue;
        }
        let mut st = lock(&shard.state);
        {
            shard.used.fetch_add(1, Ordering::AcqRel);
            let slot = match st.iter().position(Option::is_none) {
                Some(i) => {
                    st[i] = Some(entry);
                    i
                }
                None => {
                    st.push(Some(entry));
                    st.len() - 1
                }
            };
            drop(st);
            shard.wake_thread();
            return Ok(Key {
                shard: Arc::clone(shard),
                slot,
            });
        }
    }
    let n = all.len();
    let shard = Arc::new(Shard {
        state: Mutex::new(vec![Some(entry)]),
        used: std::sync::atomic::AtomicUsize::new(1),
        kick: AtomicU32::new(0),
        parker: sys::Parker::new(Some(&format!("filemap-reactor-{}-{n}", std::process::id()))),
    });
    let for_thread = Arc::clone(&shard);
    std::thread::Builder::new()
        .name(format!("filemap-async-{n}"))
        .spawn(move || run(&for_thread))
        .map_err(|e| Error::os("the async reactor", "spawn a thread", e))?;
    all.push(Arc::clone(&shard));
    Ok(Key { shard, slot: 0 })
}

/// A reactor thread: sleeps on its entries' words and its kick word, and
/// wakes the futures whose words moved. (What is looked at now and then,
/// peers and re-checks, is the ticker's: [`tick`].)
fn run(shard: &Shard) {
    let mut held: Vec<(usize, Segment, usize, u32)> = Vec::new();
    let mut to_wake: Vec<Waker> = Vec::new();
    loop {
        let kick = shard.kick.load(Ordering::Acquire);
        held.clear();
        {
            let st = lock(&shard.state);
            for (i, e) in st.iter().enumerate() {
                if let Some(e) = e.as_ref().filter(|e| !e.fired) {
                    held.push((i, e.seg.clone(), e.off, e.expected));
                }
            }
        }
        let mut words: Vec<sys::WaitWord<'_>> = held
            .iter()
            .map(|(_, seg, off, expected)| seg.wait_word(*off, *expected))
            .collect();
        words.push(sys::WaitWord {
            parker: &shard.parker,
            off: 0,
            word: &shard.kick,
            expected: kick,
        });
        // No timeout to speak of: the ticker wakes this thread (its kick
        // word) when it fires one of its futures. No spinning here before
        // sleeping: measured on two cores, it took the CPU the runtime's
        // threads needed (p50 of a back-to-back async round trip 16.5 µs
        // without, 19.9 µs with 50 µs of it).
        sys::wait_any(&words, IDLE_SLEEP);
        drop(words);
        // Let go of the segments at once: a future dropped meanwhile (its
        // channel too) must not have its name outlive it for long.
        held.clear();
        {
            let mut st = lock(&shard.state);
            for e in st.iter_mut().flatten().filter(|e| !e.fired) {
                // A segment shrunk under it is not read (it would fault):
                // the future's next poll reports it.
                let backed = e.seg.check_backed().is_ok();
                if !backed || e.seg.a32(e.off).load(Ordering::Acquire) != e.expected {
                    e.fired = true;
                    to_wake.push(e.waker.clone());
                }
            }
        }
        // Outside the lock: a waker may run the future at once.
        for w in to_wake.drain(..) {
            w.wake();
        }
    }
}

/// The longest a thread of the reactor sleeps with nothing to do.
const IDLE_SLEEP: Duration = Duration::from_secs(60);

/// The thread that looks, every [`ASYNC_LIVENESS`], at what no word move
/// announces: every sleeping future's peer (each distinct process once)
/// and its [`Recheck`]. One thread for all shards, so that the shards'
/// threads sleep undisturbed (each of their sleeps takes every word anew:
/// about 70 µs for 126 of them here) and a look costs one pass over the
/// entries. Started with the first future that has something to watch.
fn ticker() -> Result<&'static std::thread::Thread> {
    static TICKER: OnceLock<std::thread::Thread> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(t) = TICKER.get() {
        return Ok(t);
    }
    let _starting = lock(&STARTING);
    if let Some(t) = TICKER.get() {
        return Ok(t);
    }
    let h = std::thread::Builder::new()
        .name("filemap-async-tick".into())
        .spawn(tick)
        .map_err(|e| Error::os("the async reactor", "spawn a thread", e))?;
    Ok(TICKER.get_or_init(|| h.thread().clone()))
}

/// Set while the ticker sleeps with nothing to watch (for up to
/// [`IDLE_SLEEP`]).
static TICKER_IDLE: AtomicBool = AtomicBool::new(false);

/// Makes sure the ticker looks within [`ASYNC_LIVENESS`], for a future
/// that has something to watch.
fn watch_soon() -> Result<()> {
    let t = ticker()?;
    if TICKER_IDLE.swap(false, Ordering::AcqRel) {
        t.unpark();
    }
    Ok(())
}

/// The ticker's loop: see [`ticker`].
fn tick() {
    let mut alive: HashMap<u64, bool> = HashMap::new();
    let mut to_wake: Vec<Waker> = Vec::new();
    loop {
        // Idle unless this look finds something to watch, said before the
        // look: a future that pends after it unparks this thread (an
        // unpark that comes before the park counts too).
        TICKER_IDLE.store(true, Ordering::Release);
        let mut watch = false;
        let shards: Vec<Arc<Shard>> = lock(shards()).clone();
        alive.clear();
        for shard in &shards {
            let mut fired = false;
            {
                let mut st = lock(&shard.state);
                for e in st.iter_mut().flatten() {
                    // A fired future is about to pend again.
                    watch |= e.watched();
                    if e.fired {
                        continue;
                    }
                    // A segment shrunk under it: woken, its next poll
                    // reports it (and nothing of it is read here).
                    let truncated = e.seg.check_backed().is_err();
                    let gone = if truncated {
                        None
                    } else {
                        super::peer_gone(&e.seg, e.peer, &mut alive)
                    };
                    let rechecked = !truncated
                        && match e.recheck {
                            Recheck::None => false,
                            Recheck::Poke => true,
                            Recheck::Word(off) => e.seg.a64(off).load(Ordering::Acquire) != e.seen,
                        };
                    if truncated || rechecked || gone.is_some() {
                        e.fired = true;
                        e.gone = gone;
                        to_wake.push(e.waker.clone());
                        fired = true;
                    }
                }
            }
            for w in to_wake.drain(..) {
                w.wake();
            }
            if fired {
                // Its thread sleeps holding the fired futures' segments:
                // let it sleep on the rest instead.
                shard.wake_thread();
            }
        }
        if watch {
            TICKER_IDLE.store(false, Ordering::Release);
            std::thread::park_timeout(ASYNC_LIVENESS);
        } else {
            std::thread::park_timeout(IDLE_SLEEP);
        }
    }
}

/// What a future keeps while it waits: its announcement on the channel's
/// words and its place in the reactor. Dropping it withdraws both, so a
/// future dropped while pending leaves nothing behind.
#[derive(Default)]
pub(crate) struct Waiter {
    armed: Option<Armed>,
    /// Until when this wait keeps trying before it sleeps
    /// (`Options::async_spin`): set when it first finds its channel not ready.
    spin_until: Option<Instant>,
    /// Tries in a row within one poll (see `keep_trying`).
    tries: u32,
}

/// Tries a future makes in a row, within one poll, before it yields to the
/// runtime while it spins (`Options::async_spin`): about a microsecond. A
/// yield costs a pass through the runtime (on tokio's `block_on`, a system
/// call to wake its driver): measured, 64-byte async round trips on a
/// current-thread runtime took 771 ns yielding after every try.
const INLINE_TRIES: u32 = 32;

struct Armed {
    seg: Segment,
    sleep: Sleep,
    key: Option<Key>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("armed", &self.armed.is_some())
            .finish()
    }
}

/// What [`Waiter::pend`] decided.
pub(crate) enum Step {
    /// Not ready, registered: return `Poll::Pending`.
    Pending,
    /// Ready after all (seen on the re-check): try the operation again.
    Retry,
}

impl Waiter {
    /// Called after the operation found the channel not ready: announce on
    /// its words (once), re-check, and register with the reactor (or, if
    /// already registered and not fired, just keep the newest waker).
    /// `recheck` is what the reactor looks at now and then in case the
    /// wake-up is lost ([`Recheck`]).
    pub(crate) fn pend(
        &mut self,
        cx: &mut Context<'_>,
        seg: &Segment,
        sleep: Sleep,
        peer: Option<Side>,
        recheck: Recheck,
        ready: &mut dyn FnMut() -> bool,
    ) -> Result<Step> {
        if self.armed.is_none() {
            if let Some(step) = self.keep_trying(cx, seg) {
                return Ok(step);
            }
        }
        if let Some(a) = &mut self.armed {
            if let Some(k) = &a.key {
                let mut st = lock(&k.shard.state);
                if let Some(e) = st[k.slot].as_mut() {
                    if let Some(err) = e.gone.take() {
                        return Err(err);
                    }
                    if !e.fired {
                        if !e.waker.will_wake(cx.waker()) {
                            e.waker = cx.waker().clone();
                        }
                        return Ok(Step::Pending);
                    }
                }
            }
        } else {
            if let Sleep::Park(p) = sleep {
                seg.a32(p.waiting).fetch_add(1, Ordering::Relaxed);
            }
            self.armed = Some(Armed {
                seg: seg.clone(),
                sleep,
                key: None,
            });
        }
        let off = match sleep {
            Sleep::Park(p) => p.seq,
            Sleep::Gen(off) => off,
        };
        let expected = seg.a32(off).load(Ordering::Acquire);
        // The other half of Dekker's pattern, as `Park::wait` does.
        fence(Ordering::SeqCst);
        // Read before the re-check: if what it waits for comes after the
        // re-check missed it, this word has moved since.
        let seen = match recheck {
            Recheck::Word(w) => seg.a64(w).load(Ordering::Acquire),
            Recheck::None | Recheck::Poke => 0,
        };
        if ready() {
            return Ok(Step::Retry);
        }
        seg.check_backed()?;
        let armed = self.armed.as_mut().expect("armed above");
        match &armed.key {
            Some(k) => {
                let mut st = lock(&k.shard.state);
                if let Some(e) = st[k.slot].as_mut() {
                    e.expected = expected;
                    e.recheck = recheck;
                    e.seen = seen;
                    e.fired = false;
                    e.gone = None;
                    e.waker = cx.waker().clone();
                }
                drop(st);
                k.shard.wake_thread();
            }
            None => {
                armed.key = Some(register(Entry {
                    seg: seg.clone(),
                    off,
                    expected,
                    waker: cx.waker().clone(),
                    peer,
                    recheck,
                    seen,
                    fired: false,
                    gone: None,
                })?);
            }
        }
        if watched(seg, peer, recheck) {
            watch_soon()?;
        }
        Ok(Step::Pending)
    }

    /// Before a wait first sleeps, within its spin budget (the segment's
    /// `Options::async_spin`, counted from when it first found the channel
    /// not ready): `Retry` (try again at once) [`INLINE_TRIES`] times in a
    /// row, then `Pending` after waking the task, so that the runtime runs
    /// its other tasks before it polls this one again. A back-to-back answer
    /// is then caught without the reactor's two thread hops; an idle wait
    /// polls for the budget, then sleeps. `None` once the budget is spent.
    fn keep_trying(&mut self, cx: &mut Context<'_>, seg: &Segment) -> Option<Step> {
        let budget = seg.async_spin();
        if budget.is_zero() {
            return None;
        }
        let until = *self
            .spin_until
            .get_or_insert_with(|| Instant::now() + budget);
        if self.tries < INLINE_TRIES {
            self.tries += 1;
            std::hint::spin_loop();
            return Some(Step::Retry);
        }
        self.tries = 0;
        if Instant::now() >= until {
            return None;
        }
        cx.waker().wake_by_ref();
        Some(Step::Pending)
    }

    /// The loop every future of the crate runs, in one place: `attempt` the
    /// operation on `chan`; when it is not ready (`Ok(None)`), `pend`
    /// (announce on the channel's word, re-check, register with the
    /// reactor: [`Waiter::pend`]) and return `Pending`, or attempt again
    /// when the re-check found it ready. A result, value or error, withdraws
    /// the waiter. Each future is then its `attempt` and its `pend`.
    pub(crate) fn poll_op<C: ?Sized, T>(
        &mut self,
        cx: &mut Context<'_>,
        chan: &mut C,
        mut attempt: impl FnMut(&mut C) -> Result<Option<T>>,
        mut pend: impl FnMut(&mut Waiter, &mut Context<'_>, &mut C) -> Result<Step>,
    ) -> std::task::Poll<Result<T>> {
        use std::task::Poll;
        loop {
            match attempt(chan) {
                Ok(Some(v)) => {
                    self.done();
                    return Poll::Ready(Ok(v));
                }
                Ok(None) => {}
                Err(e) => {
                    self.done();
                    return Poll::Ready(Err(e));
                }
            }
            match pend(self, cx, chan) {
                Ok(Step::Pending) => return Poll::Pending,
                Ok(Step::Retry) => {}
                Err(e) => {
                    self.done();
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// Withdraws the announcement and the registration (done; or dropped).
    pub(crate) fn done(&mut self) {
        self.spin_until = None;
        self.tries = 0;
        if let Some(a) = self.armed.take() {
            if let Sleep::Park(p) = a.sleep {
                a.seg.a32(p.waiting).fetch_sub(1, Ordering::Relaxed);
            }
            if let Some(k) = a.key {
                let mut st = lock(&k.shard.state);
                if let Some(e) = st[k.slot].take() {
                    k.shard.used.fetch_sub(1, Ordering::AcqRel);
                    if !e.fired {
                        // Its thread sleeps holding this segment: wake it
                        // so that it lets go now (see `run`).
                        drop(st);
                        k.shard.wake_thread();
                    }
                }
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.done();
    }
}
