//! What channels and cells share to coordinate the processes using one
//! segment: [`Side`], a role only one process may hold (a channel's sender,
//! a cell's writer) and how others see it closed or dead; and [`Park`], the
//! wake-up protocol by which one side sleeps until the other makes progress.
//!
//! Below both `channel` and `sync`, so that neither reaches into the other.

pub(crate) mod bell;

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::segment::{End, EndState, Segment};
use crate::sys;

/// How long a parked waiter sleeps before it looks at its peer again.
const PARK_SLICE: Duration = Duration::from_millis(10);
/// Polls before parking: long enough to catch a peer that answers at once.
/// The most a wait polls; a thread whose waits keep ending parked polls
/// less ([`Spin`]).
const SPINS: u32 = 2_000;
/// The fewest polls a wait makes before parking, however its thread's
/// earlier waits went: a peer that answers within a few microseconds is
/// still caught without a sleep.
const MIN_SPINS: u32 = 64;
/// A thread whose polling was cut polls in full once per this many waits,
/// to learn whether its peer has become quick again.
const PROBE_EVERY: u32 = 16;
/// Parked waits in a row after which a thread's polling is cut (by 4 each time).
const MISSES_TO_CUT: u32 = 2;

/// How many polls this thread's next wait makes before it parks, learnt from
/// how its earlier waits ended. Polling pays when the peer answers within it;
/// when the answer comes later (a peer across a network bridge, one that
/// works for a while, one that sleeps), every poll is CPU taken from the
/// processes that are about to answer, and on a machine with few cores that
/// delays the answer itself. So: a wait that ends while polling restores
/// the full budget; parked waits in a row cut it, down to [`MIN_SPINS`]; and
/// while it is cut, one wait in [`PROBE_EVERY`] polls in full, so that a peer
/// that has become quick again is noticed.
///
/// Kept per thread: a thread is what burns a CPU while it polls, and the
/// pattern of its waits (a request-answer loop, a route relaying a network)
/// is what predicts the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spin {
    /// The polls a wait makes when it does not probe.
    budget: u32,
    /// Waits in a row that ended parked.
    misses: u32,
    /// Waits since the budget was last cut or restored (for probing).
    waits: u32,
}

impl Spin {
    pub(crate) const FULL: Spin = Spin {
        budget: SPINS,
        misses: 0,
        waits: 0,
    };

    /// The polls for the next wait, counting it.
    pub(crate) fn polls(&mut self) -> u32 {
        self.waits = self.waits.wrapping_add(1);
        if self.budget < SPINS && self.waits % PROBE_EVERY == 0 {
            SPINS
        } else {
            self.budget
        }
    }

    /// The extra polling a wait that polls `polls` times gets for a large
    /// message (`full`: [`extra_spin`]), cut in the same proportion as the
    /// polls: a thread whose waits keep ending parked, such as a route
    /// relaying a network whose answers come long after any copy would
    /// have ended, stops burning up to [`MAX_EXTRA_SPIN`] per wait, while a
    /// probe, or a thread whose peer answers within the polling, keeps it
    /// whole.
    pub(crate) fn extra(polls: u32, full: Duration) -> Duration {
        if polls >= SPINS {
            return full;
        }
        let nanos = full.as_nanos() * u128::from(polls) / u128::from(SPINS);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The wait ended while it polled (the extra polling for a large
    /// message included).
    pub(crate) fn hit(&mut self) {
        if self.budget != SPINS || self.misses != 0 {
            *self = Spin::FULL;
        }
    }

    /// The wait had to park.
    pub(crate) fn miss(&mut self) {
        self.misses = self.misses.saturating_add(1);
        if self.misses >= MISSES_TO_CUT {
            self.misses = 0;
            self.budget = (self.budget / 4).max(MIN_SPINS);
        }
    }
}

thread_local! {
    static SPIN: std::cell::Cell<Spin> = const { std::cell::Cell::new(Spin::FULL) };
}
/// For a wait that follows a large message ([`Park::wait`]'s `in_flight`), how
/// many bytes are worth one more nanosecond of polling before parking: 4 bytes
/// per ns is a copy at 4 GB/s, well below what one core copies (15–45 GB/s
/// measured here), so the spin outlasts the peer's copy of a message that
/// size, and of its answer, even on a loaded machine.
const SPIN_BYTES_PER_NS: u64 = 4;
/// The longest such extra polling, whatever the size.
const MAX_EXTRA_SPIN: Duration = Duration::from_millis(1);

/// The extra polling a wait gets when `in_flight` bytes are on their way
/// ([`Park::wait`]): zero for small messages, so that an idle waiter parks
/// after the usual polls.
pub(crate) fn extra_spin(in_flight: usize) -> Duration {
    Duration::from_nanos(in_flight as u64 / SPIN_BYTES_PER_NS).min(MAX_EXTRA_SPIN)
}

/// Where one endpoint (a role only one process may hold) keeps its state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side {
    /// `AtomicU64`: the holder's owner word ([`sys::owner_word`]), 0 if none.
    pub owner: usize,
    /// `AtomicU32`: 1 once the holder closed its end cleanly.
    pub closed: usize,
    /// Name of the role in messages ("sender").
    pub role: &'static str,
    /// A table of owner words (offset, entries) of processes that share the
    /// role (a broadcast channel's shared senders): while any of them runs,
    /// the role is not gone.
    pub shared: Option<(usize, usize)>,
}

impl Side {
    /// Takes the role for this process: free, closed, or held by a dead process.
    pub(crate) fn claim(self, seg: &Segment) -> Result<()> {
        let me = sys::owner_word(std::process::id());
        let owner = seg.a64(self.owner);
        let mut cur = owner.load(Ordering::Acquire);
        loop {
            let closed = seg.a32(self.closed).load(Ordering::Acquire) == 1;
            if cur != 0 && !closed && sys::owner_alive(cur) != Some(false) {
                return Err(Error::Busy {
                    object: seg.label().to_owned(),
                    reason: format!("process {} already holds its {} end", cur as u32, self.role),
                });
            }
            match owner.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        seg.a32(self.closed).store(0, Ordering::Release);
        Ok(())
    }

    /// Who holds the role, as the segment records it, for an observer.
    pub(crate) fn observe(self, seg: &Segment) -> End {
        let word = seg.a64(self.owner).load(Ordering::Acquire);
        let closed = seg.a32(self.closed).load(Ordering::Acquire) == 1;
        let pid = (word as u32 != 0).then_some(word as u32);
        let state = match (pid, closed, sys::owner_alive(word)) {
            (None, ..) => EndState::Vacant,
            (Some(_), true, _) => EndState::Closed,
            (Some(_), false, Some(false)) => EndState::Dead,
            (Some(_), false, _) => EndState::Live,
        };
        End {
            role: self.role,
            pid,
            state,
        }
    }

    /// Marks the role closed cleanly (the holder is dropping its end).
    pub(crate) fn close(self, seg: &Segment) {
        seg.a32(self.closed).store(1, Ordering::Release);
    }

    /// `Err(PeerGone)` if the holder of this role closed its end or died.
    /// `check_alive` looks the process up (a system call or two); without it
    /// only the closed flag is read.
    pub(crate) fn check_peer(self, seg: &Segment, check_alive: bool) -> Result<()> {
        let gone = |reason: String| {
            Err(Error::PeerGone {
                object: seg.label().to_owned(),
                reason,
            })
        };
        if let Some((table, n)) = self.shared {
            let live = (0..n).any(|i| {
                let o = seg.a64(table + 8 * i).load(Ordering::Acquire);
                o != 0 && (!check_alive || sys::owner_alive(o) != Some(false))
            });
            if live {
                return Ok(());
            }
        }
        if seg.a32(self.closed).load(Ordering::Acquire) == 1 {
            return gone(format!("the {} closed its end", self.role));
        }
        if check_alive {
            let owner = seg.a64(self.owner).load(Ordering::Acquire);
            if sys::owner_alive(owner) == Some(false) {
                return gone(format!("the {} (process {}) died", self.role, owner as u32));
            }
        }
        Ok(())
    }
}

/// Version of the wake-up protocol ([`Park`]), part of every channel's layout
/// fingerprint: processes that disagree on it could miss each other's
/// wake-ups, so they refuse each other's channels instead. 2: asymmetric
/// barriers (`membarrier`) where available; 3: the doorbell word
/// ([`Park::bell`]). Still 3 since every process fences again (see
/// [`Park::notify`]): a process of this version sets each segment's fence
/// flag when it attaches, which makes older ones fence too, so both can share
/// a channel.
pub(crate) const PARK_PROTOCOL: u64 = 3;

/// A pair of words waiters park on: `seq` changes on every wake-up, and
/// `waiting` counts those (about to be) parked, so that the other side makes
/// the wake-up system call only when someone waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Park {
    pub seq: usize,
    pub waiting: usize,
    /// `AtomicU64` on the same line as `waiting`, or 0 for none: where a
    /// [`WaitSet`](crate::wait::WaitSet) of many sources registers its
    /// doorbell ([`bell`]), which [`Park::notify`] then rings.
    pub bell: usize,
}

impl Park {
    /// Called by the side that made progress, right after the store that
    /// published it (release is enough). With the waiter's increment of
    /// `waiting` and its re-check of the progress, this is Dekker's pattern:
    /// either the waiter sees the progress, or we see it waiting and wake it.
    /// Both sides need a full barrier between their store and their load.
    ///
    /// Until protocol 3 the barrier here was asymmetric on Linux: a process
    /// registered for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` had only a compiler
    /// fence, and the waiter, before it slept, made every running thread of
    /// registered processes execute one. That was given up because the
    /// kernel does not keep its side of it: a process that registers while
    /// one of its CPUs is idle with the process's memory map still loaded
    /// (lazily, after one of its threads ran there) is not sent the barrier
    /// on that CPU once its threads run there again, until that CPU has run
    /// another process (Linux 6.18 here; see
    /// `crates/filemap-bench/experiments/membarrier_lazy_mm.c`). A sender on
    /// that CPU then missed a receiver's announcement, and a future, which
    /// has no timed re-check, waited for ever. Measured side by side on a
    /// 2-vCPU VM, the fence here costs nothing visible: 64-byte round trips
    /// and streams were within run-to-run noise either way.
    #[inline(always)]
    pub(crate) fn notify(self, seg: &Segment) {
        fence(Ordering::SeqCst);
        notify_tail(&SegWords::park(seg, self));
    }

    /// Waits until `ready()` is true, the `peer` (if there is one to watch)
    /// is gone (an error), or the deadline passes (`Error::Timeout`).
    ///
    /// It polls `ready()` first, then parks. `in_flight` is the size of the
    /// message the wait is for, as far as the caller can tell (the one it
    /// wants room for, or the last it received): a peer takes longer to copy
    /// a large one, so the polling goes on for [`extra_spin`] of it too, and
    /// a large transfer does not pay a sleep and a wake-up per message (cut
    /// with the thread's polls, [`Spin::extra`]). Small messages add nothing:
    /// an idle waiter still parks after the usual polls.
    pub(crate) fn wait(
        self,
        seg: &Segment,
        peer: Option<Side>,
        deadline: Option<Instant>,
        what: &'static str,
        in_flight: usize,
        mut ready: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let mut spin = SPIN.with(std::cell::Cell::get);
        let polls = spin.polls();
        for _ in 0..polls {
            if ready()? {
                spin.hit();
                SPIN.with(|s| s.set(spin));
                return Ok(());
            }
            std::hint::spin_loop();
        }
        // Unless the extra polling below catches it, the polling did not
        // pay (an error and a timeout count as misses too).
        spin.miss();
        SPIN.with(|s| s.set(spin));
        let started = Instant::now();
        let extra = Spin::extra(polls, extra_spin(in_flight));
        if !extra.is_zero() {
            let until = started + extra;
            let until = deadline.map_or(until, |d| d.min(until));
            // The clock is read once every 64 polls (a poll is tens of ns).
            'spin: loop {
                for _ in 0..64 {
                    if ready()? {
                        spin.hit();
                        SPIN.with(|s| s.set(spin));
                        return Ok(());
                    }
                    std::hint::spin_loop();
                }
                if Instant::now() >= until {
                    break 'spin;
                }
            }
        }
        let waiting = seg.a32(self.waiting);
        loop {
            // A segment another process shrank will never make progress.
            seg.check_backed()?;
            let seq = seg.a32(self.seq).load(Ordering::Acquire);
            waiting.fetch_add(1, Ordering::Relaxed);
            // Pairs with the fence in `notify`; `ready` then re-checks.
            fence(Ordering::SeqCst);
            let outcome = if ready()? {
                Some(Ok(()))
            } else if let Some(Err(e)) = peer.map(|p| p.check_peer(seg, true)) {
                // The peer may have made its last progress just before it
                // closed or died: look once more, now that its end is seen gone.
                Some(if ready()? { Ok(()) } else { Err(e) })
            } else {
                match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                    Some(left) if left.is_zero() => Some(Err(Error::Timeout {
                        object: seg.label().to_owned(),
                        what,
                        waited: started.elapsed(),
                    })),
                    left => {
                        seg.wait_on(
                            self.seq,
                            seq,
                            left.map_or(PARK_SLICE, |l| l.min(PARK_SLICE)),
                        );
                        None
                    }
                }
            };
            waiting.fetch_sub(1, Ordering::Relaxed);
            if let Some(r) = outcome {
                return r;
            }
        }
    }
}

/// The words one waiter sleeps on, as the wake-up protocol uses them: std
/// atomics over a segment here ([`SegWords`]), loom atomics in the models
/// (`wait::loom_model`), so that the models run the protocol's own
/// functions ([`notify_tail`], [`announce_all`]).
pub(crate) trait ParkMem {
    /// The word sleepers sleep on (acquire).
    fn load_seq(&self) -> u32;
    /// Counts one more (`up`) or one fewer waiter; nothing for a word
    /// without a waiting count (an event's generation word).
    fn count_waiting(&self, up: bool);
    /// The waiting count (relaxed; 0 without one).
    fn load_waiting(&self) -> u32;
    /// The doorbell registration beside it (relaxed; 0 for none).
    fn load_reg(&self) -> u64;
    /// Moves the word on and wakes up to `n` sleepers.
    fn wake(&self, n: u32);
    /// Sets this source's bit in the doorbell `reg` names ([`bell`]).
    fn ring(&self, reg: u64);
    /// A full barrier (loom's own in the models).
    fn full_fence() {
        fence(Ordering::SeqCst);
    }
}

/// The notifier's side, after its progress and the full barrier behind it
/// ([`Park::notify`]): wakes whoever counted itself waiting, then rings
/// the doorbell of the set registered (both words on one line).
#[inline(always)]
pub(crate) fn notify_tail<M: ParkMem>(m: &M) {
    let waiting = m.load_waiting();
    if waiting != 0 {
        m.wake(waiting);
    }
    let reg = m.load_reg();
    if reg != 0 {
        m.ring(reg);
    }
}

/// A waiter's side on many words at once (a [`WaitSet`](crate::wait::WaitSet)
/// about to sleep): reads each word, counts itself waiting on each, then the
/// full barrier. The caller then looks at every source again, and sleeps on
/// the words (expecting `seqs`) only if none is ready: a notifier either
/// sees the count (and moves the word) or its progress is seen.
pub(crate) fn announce_all<M: ParkMem>(words: impl Iterator<Item = M>, seqs: &mut Vec<u32>) {
    for w in words {
        seqs.push(w.load_seq());
        w.count_waiting(true);
    }
    M::full_fence();
}

/// A [`Park`]'s words in a segment (or an event's generation word: no
/// waiting count, no doorbell).
#[derive(Clone, Copy)]
pub(crate) struct SegWords<'a> {
    seg: &'a Segment,
    seq: usize,
    /// 0: none.
    waiting: usize,
    /// 0: none.
    bell: usize,
}

impl<'a> SegWords<'a> {
    #[inline(always)]
    pub(crate) fn park(seg: &'a Segment, p: Park) -> Self {
        SegWords {
            seg,
            seq: p.seq,
            waiting: p.waiting,
            bell: p.bell,
        }
    }

    /// A generation word every notify moves and wakes.
    pub(crate) fn generation(seg: &'a Segment, off: usize) -> Self {
        SegWords {
            seg,
            seq: off,
            waiting: 0,
            bell: 0,
        }
    }
}

impl ParkMem for SegWords<'_> {
    #[inline(always)]
    fn load_seq(&self) -> u32 {
        self.seg.a32(self.seq).load(Ordering::Acquire)
    }
    #[inline(always)]
    fn count_waiting(&self, up: bool) {
        if self.waiting != 0 {
            let w = self.seg.a32(self.waiting);
            if up {
                w.fetch_add(1, Ordering::Relaxed);
            } else {
                w.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    #[inline(always)]
    fn load_waiting(&self) -> u32 {
        if self.waiting == 0 {
            return 0;
        }
        self.seg.a32(self.waiting).load(Ordering::Relaxed)
    }
    #[inline(always)]
    fn load_reg(&self) -> u64 {
        if self.bell == 0 {
            return 0;
        }
        self.seg.a64(self.bell).load(Ordering::Relaxed)
    }
    /// Out of line, as is [`ParkMem::ring`]: the common case stays small
    /// enough to inline into every send.
    #[cold]
    #[inline(never)]
    fn wake(&self, n: u32) {
        self.seg.a32(self.seq).fetch_add(1, Ordering::Release);
        self.seg.wake(self.seq, n);
    }
    fn ring(&self, reg: u64) {
        bell::ring_from(self.seg.ring_cache(), reg);
    }
}

/// The deadline `timeout` from now; `None` (no limit) when that instant is
/// past what the clock can represent (for example `Duration::MAX`), as
/// crossbeam-channel does.
#[inline]
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// `Err(Timeout)` once `deadline` has passed. For the retry loops around
/// [`Park::wait`]: its spinning phase returns as soon as `ready()` says so,
/// and a hostile writer can make every try after that fail, so each round of
/// such a loop looks at the deadline itself. `started` (for the error's
/// `waited`) is [`started_if`]'s: read only when there is a deadline.
#[inline]
pub(crate) fn past_deadline(
    seg: &Segment,
    deadline: Option<Instant>,
    started: Option<Instant>,
    what: &'static str,
) -> Result<()> {
    match deadline {
        Some(d) if Instant::now() >= d => Err(Error::Timeout {
            object: seg.label().to_owned(),
            what,
            waited: started.map_or(Duration::ZERO, |s| s.elapsed()),
        }),
        _ => Ok(()),
    }
}

/// When a wait with this `deadline` started: the clock, read only when
/// there is a deadline (a timeout's error says how long it waited). A wait
/// without one reads no clock until it parks, which matters when a stream
/// catches up with its sender at every message: a read of the clock costs
/// about 30 ns on the bench's VM, as much as a message.
#[inline]
pub(crate) fn started_if(deadline: Option<Instant>) -> Option<Instant> {
    deadline.map(|_| Instant::now())
}

/// How often a retry loop's `ready()` may read the clock while
/// [`Park::wait`] polls (see [`Throttle`]).
const CLOCK_EVERY_POLLS: u32 = 64;

/// Rations the clock reads of a `ready()` closure that does something now
/// and then (an mpmc wait repairs slots every 10 ms): while [`Park::wait`]
/// polls, a poll takes tens of nanoseconds and a clock read 30, so the
/// clock is read once per [`CLOCK_EVERY_POLLS`] polls; after the most the
/// polling can last, once a poll (the polls are then a park slice apart).
#[derive(Default)]
pub(crate) struct Throttle {
    polls: u32,
}

impl Throttle {
    /// Whether this poll may read the clock.
    #[inline]
    pub(crate) fn clock_now(&mut self) -> bool {
        self.polls = self.polls.saturating_add(1);
        self.polls > SPINS || self.polls % CLOCK_EVERY_POLLS == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // While `Park::wait` polls, a `ready()` closure may read the clock once
    // per 64 polls; past the most it polls, at every call (a park slice
    // apart), so that an mpmc wait still repairs slots every 10 ms.
    #[test]
    fn a_throttle_rations_the_clock_while_polling_and_not_after() {
        let mut t = Throttle::default();
        let reads: Vec<u32> = (1..=SPINS).filter(|_| t.clock_now()).collect();
        let expected: Vec<u32> = (1..=SPINS).filter(|p| p % CLOCK_EVERY_POLLS == 0).collect();
        assert_eq!(reads, expected);
        assert!(
            (0..10).all(|_| t.clock_now()),
            "every call after the polling"
        );
        let mut long = Throttle {
            polls: u32::MAX - 1,
        };
        assert!(
            long.clock_now() && long.clock_now(),
            "no wrap back to rationing"
        );
    }

    #[test]
    fn polling_is_cut_for_a_thread_whose_waits_park_and_restored_by_a_catch() {
        let mut s = Spin::FULL;
        assert_eq!(s.polls(), SPINS);
        s.hit();
        assert_eq!(
            s,
            Spin {
                waits: 1,
                ..Spin::FULL
            },
            "a catch changes nothing"
        );
        // One parked wait is noise: the budget stays.
        s.miss();
        assert_eq!(s.polls(), SPINS);
        // Parked waits in a row cut it, by 4 each time, to the floor.
        s.miss();
        assert_eq!(s.polls(), SPINS / 4);
        let mut seen = vec![];
        for _ in 0..20 {
            s.miss();
            seen.push(s.budget);
        }
        assert_eq!(s.budget, MIN_SPINS, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[1] <= w[0]), "{seen:?}");
        // One wait caught while polling restores the whole budget.
        s.hit();
        assert_eq!(s, Spin::FULL);
    }

    #[test]
    fn the_extra_polling_for_a_large_message_is_cut_with_the_polls() {
        let full = extra_spin(64 << 10);
        assert_eq!(full, Duration::from_nanos(16_384));
        let mut s = Spin::FULL;
        assert_eq!(Spin::extra(s.polls(), full), full, "a full budget");
        let mut seen = vec![];
        while s.budget > MIN_SPINS {
            s.miss();
            seen.push(Spin::extra(s.budget, full));
        }
        // Cut as the polls are (2,000, then 500, 125 and the floor of 64;
        // each after two parked waits in a row).
        seen.dedup();
        assert_eq!(
            seen,
            [
                full,
                Duration::from_nanos(4_096),
                Duration::from_nanos(1_024),
                Duration::from_nanos(524),
            ],
            "{seen:?}"
        );
        // A probe polls in full, and so gets the whole extra polling.
        let probe = (0..PROBE_EVERY).map(|_| s.polls()).max().unwrap();
        assert_eq!(Spin::extra(probe, full), full);
        // The longest extra polling, scaled, cannot overflow.
        assert_eq!(
            Spin::extra(SPINS - 1, Duration::MAX),
            Duration::from_nanos(u64::MAX)
        );
        assert!(Spin::extra(0, full).is_zero());
    }

    // A wait for a large message that the extra polling catches is a wait
    // the polling paid for: the thread keeps its whole budget, and so its
    // whole extra polling (a blocking 1 MiB transfer keeps up with a
    // spinning one). Before, such waits counted as misses and only the
    // extra polling's independence from the cut kept the transfer fast.
    #[test]
    fn a_wait_the_extra_polling_catches_keeps_the_full_budget() {
        use crate::mapping::Options;
        use crate::segment::{fingerprint, Kind, Spec, HEADER_LEN};
        let name = format!("fm-park-extra-{}", std::process::id());
        let spec = Spec {
            kind: Kind::Event,
            fingerprint: fingerprint(Kind::Event, &[u64::MAX]),
        };
        let total = (HEADER_LEN + 64) as u64;
        let seg = Segment::create(&name, &Options::default(), spec, 0, 0, total).unwrap();
        let park = Park {
            seq: HEADER_LEN,
            waiting: HEADER_LEN + 4,
            bell: 0,
        };
        SPIN.with(|c| c.set(Spin::FULL));
        for round in 0..4 * MISSES_TO_CUT {
            // What this wait polls before its extra polling.
            let polls = SPIN.with(|c| c.get().polls());
            let mut calls = 0u32;
            park.wait(&seg, None, None, "a test", 1 << 20, || {
                calls += 1;
                // Within the extra polling's first 64 polls, which come
                // before it reads the clock: no timing involved.
                Ok(calls > polls + 10)
            })
            .unwrap();
            assert_eq!(calls, polls + 11, "round {round}");
            assert_eq!(
                SPIN.with(|c| c.get().budget),
                SPINS,
                "round {round}: the budget was cut"
            );
        }
        drop(seg);
    }

    #[test]
    fn a_cut_budget_probes_in_full_once_every_so_many_waits() {
        let mut s = Spin::FULL;
        while s.budget > MIN_SPINS {
            s.miss();
        }
        let polls: Vec<u32> = (0..3 * PROBE_EVERY).map(|_| s.polls()).collect();
        let full = polls.iter().filter(|&&p| p == SPINS).count();
        assert_eq!(full, 3, "{polls:?}");
        assert!(polls.iter().all(|&p| p == SPINS || p == MIN_SPINS));
        // A probe that catches the peer ends the cut.
        s.hit();
        assert!((0..PROBE_EVERY).all(|_| s.polls() == SPINS));
    }

    #[test]
    fn the_budget_is_kept_per_thread() {
        SPIN.with(|c| {
            c.set(Spin {
                budget: MIN_SPINS,
                ..Spin::FULL
            })
        });
        let other = std::thread::spawn(|| SPIN.with(std::cell::Cell::get))
            .join()
            .unwrap();
        assert_eq!(other, Spin::FULL);
        assert_eq!(SPIN.with(std::cell::Cell::get).budget, MIN_SPINS);
    }
}
