//! The mpmc channel's protocol: its segment's layout, the claim protocol
//! over its slots (module docs), the queue over a segment, and the loom
//! model that runs the very same claim functions.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::channel::{SlotArray, SLOT_FORMAT};
use crate::error::{Error, Result};
use crate::mapping::Options;
use crate::park::{past_deadline, Park, PARK_PROTOCOL};
use crate::segment::{fingerprint, Detail, Kind, Observation, Segment, Spec, HEADER_LEN};
use crate::sys;

pub(super) const ENQ: usize = HEADER_LEN;
pub(super) const DEQ: usize = HEADER_LEN + 64;
pub(super) const DATA_PARK: Park = Park {
    seq: HEADER_LEN + 128,
    waiting: HEADER_LEN + 132,
    bell: HEADER_LEN + 136,
};
pub(super) const SPACE_PARK: Park = Park {
    seq: HEADER_LEN + 192,
    waiting: HEADER_LEN + 196,
    bell: 0,
};
pub(super) const SLOTS: usize = HEADER_LEN + 256;
/// Per slot: sequence (u64), claimer (u64), length (u64), then the bytes.
pub(super) const SLOT_HEADER: usize = 24;
/// The length of a slot retired after its sender died: skipped, not delivered.
pub(super) const SKIP: u64 = u64::MAX;
/// How often a blocked sender or receiver looks at a stuck slot's claimer.
pub(super) const CHECK_EVERY: Duration = Duration::from_millis(10);
/// Version of the claiming protocol, part of the fingerprint. 2: the slot's
/// claim word is taken before the position (module docs).
pub(super) const CLAIM_PROTOCOL: u64 = 2;

pub(super) fn spec() -> Spec {
    Spec {
        kind: Kind::Mpmc,
        fingerprint: fingerprint(
            Kind::Mpmc,
            &[
                ENQ as u64,
                DEQ as u64,
                DATA_PARK.seq as u64,
                SPACE_PARK.seq as u64,
                SLOTS as u64,
                SLOT_HEADER as u64,
                PARK_PROTOCOL,
                SLOT_FORMAT,
                CLAIM_PROTOCOL,
            ],
        ),
    }
}

/// The memory Vyukov's algorithm works on (std atomics over a segment in the
/// channel, loom atomics in the model below: the same code runs in both).
pub(crate) trait QueueMem {
    fn slots(&self) -> u64;
    fn load_enq(&self) -> u64;
    fn cas_enq(&self, cur: u64, new: u64) -> std::result::Result<u64, u64>;
    fn load_deq(&self) -> u64;
    fn cas_deq(&self, cur: u64, new: u64) -> std::result::Result<u64, u64>;
    /// The sequence of the slot for `pos`.
    fn load_seq(&self, pos: u64, o: Ordering) -> u64;
    /// Sets the sequence of the slot for `pos`.
    fn store_seq(&self, pos: u64, seq: u64, o: Ordering);
    /// Takes the claim word of the slot for `pos`: `cur` (0) to `new`.
    fn cas_claim(&self, pos: u64, cur: u64, new: u64) -> std::result::Result<u64, u64>;
    /// Gives the claim word of the slot for `pos` back (stores 0, release).
    fn release_claim(&self, pos: u64);
    /// A pause while another process holds a claim word it is about to give
    /// back or move past (a spin hint; a yield in the loom model).
    fn pause(&self) {
        std::hint::spin_loop();
    }
}

/// How many times a claim retries a compare-and-swap it lost, or an index
/// that moved, before it gives up for now (`Ok(None)`). Others winning that
/// often in a row means others progress (or a hostile writer churns the
/// index): the caller's wait, bounded by its deadline, takes over.
#[cfg(not(loom))]
const CLAIM_TRIES: u32 = 1 << 16;
#[cfg(loom)]
const CLAIM_TRIES: u32 = 2;

/// Claims a position to send into; `Ok(None)` when the queue is full (or the
/// claim kept losing, see [`CLAIM_TRIES`]); `Err` when a slot's sequence is
/// ahead of the send index, which only a corrupt segment shows.
///
/// Every value read is used with wrapping arithmetic: whatever another
/// process wrote, this neither panics nor loops without bound.
#[inline]
pub(crate) fn claim_send<M: QueueMem>(m: &M, me: u64) -> std::result::Result<Option<u64>, String> {
    let mut pos = m.load_enq();
    for _ in 0..CLAIM_TRIES {
        // Acquire: a free slot's previous message has been read out.
        let dif = m.load_seq(pos, Ordering::Acquire).wrapping_sub(pos) as i64;
        if dif == 0 {
            if m.cas_claim(pos, 0, me).is_err() {
                // Another process is working on this slot: it takes the
                // position or gives the word back in a moment. Look again at
                // `enq` with a compare-and-swap, which reads its latest value
                // (a load may lag behind it).
                m.pause();
                pos = m.cas_enq(pos, pos).unwrap_or_else(|now| now);
                continue;
            }
            match m.cas_enq(pos, pos.wrapping_add(1)) {
                Ok(_) => return Ok(Some(pos)),
                Err(now) => {
                    m.release_claim(pos);
                    pos = now;
                }
            }
        } else if dif < 0 {
            return Ok(None);
        } else {
            // Another sender claimed `pos` and published it, so `enq` has
            // moved past it (its claim happens-before the sequence we
            // acquired). If it has not, the sequence is not one filemap wrote.
            let now = m.load_enq();
            if now == pos {
                return Err(format!(
                    "the slot for position {pos} has sequence {} although nothing was sent there",
                    pos.wrapping_add(dif as u64)
                ));
            }
            pos = now;
        }
    }
    Ok(None)
}

/// Publishes the message written at `pos` (release).
#[inline]
pub(crate) fn finish_send<M: QueueMem>(m: &M, pos: u64) {
    m.store_seq(pos, pos.wrapping_add(1), Ordering::Release);
    m.release_claim(pos);
}

/// Claims the next position to receive from; `Ok(None)` when nothing is
/// there (or the claim kept losing); `Err` for a slot whose sequence says it
/// was received although the receive index has not passed it.
#[inline]
pub(crate) fn claim_recv<M: QueueMem>(m: &M, me: u64) -> std::result::Result<Option<u64>, String> {
    let mut pos = m.load_deq();
    for _ in 0..CLAIM_TRIES {
        // Acquire: a published slot's message is whole.
        let dif = m
            .load_seq(pos, Ordering::Acquire)
            .wrapping_sub(pos.wrapping_add(1)) as i64;
        if dif == 0 {
            if m.cas_claim(pos, 0, me).is_err() {
                m.pause();
                pos = m.cas_deq(pos, pos).unwrap_or_else(|now| now);
                continue;
            }
            match m.cas_deq(pos, pos.wrapping_add(1)) {
                Ok(_) => return Ok(Some(pos)),
                Err(now) => {
                    m.release_claim(pos);
                    pos = now;
                }
            }
        } else if dif < 0 {
            return Ok(None);
        } else {
            let now = m.load_deq();
            if now == pos {
                return Err(format!(
                    "the slot for position {pos} has sequence {} although it was not received",
                    pos.wrapping_add(1).wrapping_add(dif as u64)
                ));
            }
            pos = now;
        }
    }
    Ok(None)
}

/// Frees the slot read at `pos` for the next lap (release).
#[inline]
pub(crate) fn finish_recv<M: QueueMem>(m: &M, pos: u64) {
    m.store_seq(pos, pos.wrapping_add(m.slots()), Ordering::Release);
    m.release_claim(pos);
}

impl QueueMem for Queue {
    #[inline]
    fn slots(&self) -> u64 {
        self.geo.slots
    }
    #[inline]
    fn load_enq(&self) -> u64 {
        self.seg.a64(ENQ).load(Ordering::Relaxed)
    }
    #[inline]
    fn cas_enq(&self, cur: u64, new: u64) -> std::result::Result<u64, u64> {
        self.seg
            .a64(ENQ)
            .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
    }
    #[inline]
    fn load_deq(&self) -> u64 {
        self.seg.a64(DEQ).load(Ordering::Relaxed)
    }
    #[inline]
    fn cas_deq(&self, cur: u64, new: u64) -> std::result::Result<u64, u64> {
        self.seg
            .a64(DEQ)
            .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
    }
    #[inline]
    fn load_seq(&self, pos: u64, o: Ordering) -> u64 {
        self.seg
            .a64(self.at(pos))
            .load(o)
            .wrapping_add(self.geo.index(pos))
    }
    #[inline]
    fn store_seq(&self, pos: u64, seq: u64, o: Ordering) {
        self.seg
            .a64(self.at(pos))
            .store(seq.wrapping_sub(self.geo.index(pos)), o)
    }
    #[inline]
    fn cas_claim(&self, pos: u64, cur: u64, new: u64) -> std::result::Result<u64, u64> {
        self.claimer(pos)
            .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
    }
    #[inline]
    fn release_claim(&self, pos: u64) {
        self.claimer(pos).store(0, Ordering::Release);
    }
}

/// One process's attachment to the queue; [`Sender`] and [`Receiver`] wrap it.
#[derive(Debug)]
pub(super) struct Queue {
    pub(super) seg: Segment,
    pub(super) geo: SlotArray,
    pub(super) me: u64,
    /// The length of the last message this handle received: a wait for data
    /// after a large one polls longer before parking (`Park::wait`).
    last_len: AtomicUsize,
}

impl Queue {
    pub(super) fn create(
        name: &str,
        slots: u64,
        max_message: u64,
        opts: &Options,
    ) -> Result<Queue> {
        // Two slots at least: with one, the sequence a published slot gets
        // (`p + 1`) is the one a free slot has for the next position, and a
        // second send would overwrite the first message.
        let slots = if slots == 1 { 2 } else { slots };
        let (geo, total) = SlotArray::new(name, SLOTS, SLOT_HEADER, slots, max_message)?;
        Self::wrap(Segment::create(
            name,
            opts,
            spec(),
            geo.slots,
            max_message,
            total,
        )?)
    }

    pub(super) fn open(name: &str, opts: &Options) -> Result<Queue> {
        Self::wrap(Segment::open(name, opts, spec())?)
    }

    pub(super) fn wrap(seg: Segment) -> Result<Queue> {
        let geo = SlotArray::of(&seg, SLOTS, SLOT_HEADER)?;
        if geo.slots < 2 {
            return Err(Error::Incompatible {
                object: seg.label().to_owned(),
                reason: "it has one slot, which cannot tell a full slot from a free one \
                         (made by an older build): create it again"
                    .into(),
            });
        }
        Ok(Queue {
            seg,
            geo,
            me: sys::owner_word(std::process::id()),
            last_len: AtomicUsize::new(0),
        })
    }

    pub(super) fn max_message(&self) -> usize {
        self.geo.size as usize
    }

    #[inline]
    pub(super) fn at(&self, pos: u64) -> usize {
        self.geo.slot(pos)
    }

    /// Sequence of the slot for `pos` (stored minus the slot's index).
    #[inline]
    pub(super) fn seq(&self, pos: u64) -> u64 {
        self.load_seq(pos, Ordering::Acquire)
    }

    #[inline]
    pub(super) fn claimer(&self, pos: u64) -> &AtomicU64 {
        self.seg.a64(self.at(pos) + 8)
    }

    #[inline]
    pub(super) fn write_len(&self, pos: u64, len: u64) {
        self.seg
            .view()
            .write_at_raw(self.at(pos) + 16, &len.to_ne_bytes())
            .expect("slots lie in the segment (checked at open)");
    }

    pub(super) fn try_send(&self, msg: &[u8]) -> Result<bool> {
        let Some(pos) = self.try_claim_send(msg.len())? else {
            return Ok(false);
        };
        self.write_at(pos, 0, msg);
        self.publish(pos);
        Ok(true)
    }

    /// Takes a position to send `len` bytes at (its length written), if a
    /// slot is free now.
    #[inline]
    pub(super) fn try_claim_send(&self, len: usize) -> Result<Option<u64>> {
        if len as u64 > self.geo.size {
            return Err(Error::InvalidSize {
                object: self.seg.label().to_owned(),
                reason: format!(
                    "a message of {len} bytes is larger than this channel's slots ({} bytes)",
                    self.geo.size
                ),
            });
        }
        let Some(pos) = claim_send(self, self.me).map_err(|r| self.corrupt(r))? else {
            self.seg.check_backed()?;
            return Ok(None);
        };
        self.write_len(pos, len as u64);
        Ok(Some(pos))
    }

    /// Writes `data` at `offset` in the message of position `pos` (in range:
    /// checked by the callers).
    #[inline]
    pub(super) fn write_at(&self, pos: u64, offset: usize, data: &[u8]) {
        self.seg
            .view()
            .write_at_raw(self.at(pos) + SLOT_HEADER + offset, data)
            .expect("slots lie in the segment (checked at open)");
    }

    /// The address of the first payload byte of the slot for `pos` (inside
    /// the view: slots lie in the segment, checked at open).
    pub(super) fn payload_ptr(&self, pos: u64) -> *mut u8 {
        let at = self.at(pos) + SLOT_HEADER;
        debug_assert!(at <= self.seg.view().len());
        self.seg.view().as_ptr().wrapping_add(at)
    }

    /// Publishes the message at `pos` and wakes a receiver.
    #[inline]
    pub(super) fn publish(&self, pos: u64) {
        finish_send(self, pos);
        DATA_PARK.notify(&self.seg);
    }

    /// Retires position `pos` unsent (a reservation dropped): receivers skip it.
    pub(super) fn retire(&self, pos: u64) {
        self.write_len(pos, SKIP);
        self.publish(pos);
    }

    /// Takes the next message's position and length, if one is there now
    /// (retired slots skipped and freed); the caller frees it with
    /// [`Queue::free`] once done with its bytes.
    pub(super) fn try_claim_recv(&self) -> Result<Option<(u64, usize)>> {
        for _ in 0..=self.geo.slots {
            let Some(pos) = claim_recv(self, self.me).map_err(|r| self.corrupt(r))? else {
                self.seg.check_backed()?;
                return Ok(None);
            };
            let mut len = [0u8; 8];
            self.seg.view().read_at_raw(self.at(pos) + 16, &mut len)?;
            let len = u64::from_ne_bytes(len);
            if len == SKIP {
                self.free(pos);
                continue;
            }
            if len > self.geo.size {
                self.free(pos);
                return Err(self.corrupt(format!(
                    "a message says it is {len} bytes, over the slot size {}",
                    self.geo.size
                )));
            }
            let len = len as usize;
            if self.last_len.load(Ordering::Relaxed) != len {
                self.last_len.store(len, Ordering::Relaxed);
            }
            return Ok(Some((pos, len)));
        }
        Ok(None)
    }

    /// Reads bytes of the message at `pos` from `offset` (in range: checked
    /// by the callers).
    #[inline]
    pub(super) fn read_at(&self, pos: u64, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.seg
            .view()
            .read_at_raw(self.at(pos) + SLOT_HEADER + offset, buf)
    }

    /// Frees the slot of position `pos` for the next lap and wakes a sender.
    #[inline]
    pub(super) fn free(&self, pos: u64) {
        finish_recv(self, pos);
        SPACE_PARK.notify(&self.seg);
    }

    /// Waits (bounded by `deadline`) until the slot at the send index may be
    /// free for this lap, repairing slots of dead processes meanwhile.
    ///
    /// `checked` is when the slots were last repaired, kept by the caller
    /// across its rounds: a round can end at once (a slot whose claimer died
    /// looks free but cannot be claimed), so a timer started afresh each
    /// round would never reach [`CHECK_EVERY`] and the repair never run.
    /// `len` is the length of the message to send (a receiver takes longer
    /// to copy a large one out: `Park::wait`).
    pub(super) fn wait_for_space(
        &self,
        len: usize,
        deadline: Option<Instant>,
        started: Instant,
        checked: &mut Instant,
    ) -> Result<()> {
        past_deadline(&self.seg, deadline, started, "a free slot")?;
        let seg = &self.seg;
        SPACE_PARK.wait(seg, None, deadline, "a free slot", len, || {
            if checked.elapsed() >= CHECK_EVERY {
                *checked = Instant::now();
                self.recover();
            }
            let enq = seg.a64(ENQ).load(Ordering::Acquire);
            Ok(self.seq(enq) == enq)
        })
    }

    /// Waits (bounded by `deadline`) until the slot at the receive index
    /// may hold a message, repairing slots of dead processes meanwhile.
    ///
    /// `checked` is when the slots were last repaired, kept by the caller
    /// across its rounds: a round can end at once (a slot whose claimer died
    /// looks free but cannot be claimed), so a timer started afresh each
    /// round would never reach [`CHECK_EVERY`] and the repair never run.
    pub(super) fn wait_for_data(
        &self,
        deadline: Option<Instant>,
        started: Instant,
        checked: &mut Instant,
    ) -> Result<()> {
        past_deadline(&self.seg, deadline, started, "a message")?;
        let seg = &self.seg;
        let last_len = self.last_len.load(Ordering::Relaxed);
        DATA_PARK.wait(seg, None, deadline, "a message", last_len, || {
            if checked.elapsed() >= CHECK_EVERY {
                *checked = Instant::now();
                self.recover();
            }
            let pos = seg.a64(DEQ).load(Ordering::Acquire);
            Ok(self.seq(pos) == pos.wrapping_add(1))
        })
    }

    #[cold]
    #[inline(never)]
    pub(super) fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            object: self.seg.label().to_owned(),
            reason,
        }
    }

    pub(super) fn try_recv_into(&self, buf: &mut Vec<u8>) -> Result<bool> {
        let Some((pos, len)) = self.try_claim_recv()? else {
            return Ok(false);
        };
        buf.clear();
        buf.resize(len, 0);
        let read = self.read_at(pos, 0, buf);
        self.free(pos);
        read.map(|()| true)
    }

    /// Repairs the slots the queue waits at (the one at `deq`, and the one
    /// `enq` needs, which may still hold the previous lap) when the process
    /// named in their claim word died (module docs).
    pub(super) fn recover(&self) {
        let deq = self.seg.a64(DEQ).load(Ordering::Acquire);
        let enq = self.seg.a64(ENQ).load(Ordering::Acquire);
        self.recover_slot(deq, enq, deq);
        // The slot `enq` needs is in `enq`'s lap (free) or still in the one
        // before (published, or being read).
        let p = if self.seq(enq) == enq || enq < self.geo.slots {
            enq
        } else {
            enq.wrapping_sub(self.geo.slots)
        };
        if p != deq {
            self.recover_slot(p, enq, deq);
        }
    }

    /// Repairs the slot of position `p` if its claimer died, according to
    /// how far that process got (module docs). A slot in no state of `p`'s
    /// is left alone.
    pub(super) fn recover_slot(&self, p: u64, enq: u64, deq: u64) {
        let claim = self.claimer(p);
        let dead = claim.load(Ordering::Acquire);
        if dead == 0 || sys::owner_alive(dead) != Some(false) {
            return;
        }
        let seq = self.seq(p);
        let give_back = || {
            claim
                .compare_exchange(dead, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        };
        let published = p.wrapping_add(1);
        let freed = p.wrapping_add(self.geo.slots);
        if seq == p && enq > p {
            // A sender took position `p` and died before publishing: retire
            // the slot ("skip", published as its sender would have).
            self.write_len(p, SKIP);
            if self.cas_seq(p, p, published) && give_back() {
                DATA_PARK.notify(&self.seg);
            }
        } else if seq == published && deq > p {
            // A receiver took position `p` and died before freeing the slot:
            // free it (the message is lost with its receiver).
            if self.cas_seq(p, published, freed) && give_back() {
                SPACE_PARK.notify(&self.seg);
            }
        } else if (seq == p || seq == published || seq == freed) && give_back() {
            // It died holding only the claim word (before taking a position,
            // or after publishing or freeing): the slot is as it should be.
            DATA_PARK.notify(&self.seg);
            SPACE_PARK.notify(&self.seg);
        }
    }

    /// Compare-and-swap of the sequence of the slot for `p` (as logical
    /// sequences; stored minus the slot's index).
    pub(super) fn cas_seq(&self, p: u64, cur: u64, new: u64) -> bool {
        let idx = self.geo.index(p);
        self.seg
            .a64(self.at(p))
            .compare_exchange(
                cur.wrapping_sub(idx),
                new.wrapping_sub(idx),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Blocking send: claim, or wait until the slot at the send index is free
    /// for this lap (that exact condition, so that a slot another process
    /// keeps from being free parks us instead of spinning). The deadline is
    /// checked on every round, as a hostile writer can make `try_send` fail
    /// right after the wait said there was room.
    pub(super) fn send_opt(&self, msg: &[u8], deadline: Option<Instant>) -> Result<()> {
        let started = Instant::now();
        let mut checked = started;
        loop {
            if self.try_send(msg)? {
                return Ok(());
            }
            self.wait_for_space(msg.len(), deadline, started, &mut checked)?;
        }
    }

    pub(super) fn recv_into_opt(&self, buf: &mut Vec<u8>, deadline: Option<Instant>) -> Result<()> {
        let started = Instant::now();
        let mut checked = started;
        loop {
            if self.try_recv_into(buf)? {
                return Ok(());
            }
            self.wait_for_data(deadline, started, &mut checked)?;
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::atomic::{AtomicU64, AtomicU8};
    use loom::sync::Arc;

    /// Two slots of one byte each, as loom atomics (the byte relaxed).
    struct Mem {
        enq: AtomicU64,
        deq: AtomicU64,
        seqs: [AtomicU64; 2],
        claims: [AtomicU64; 2],
        bytes: [AtomicU8; 2],
    }

    impl QueueMem for Mem {
        #[inline]
        fn slots(&self) -> u64 {
            2
        }
        #[inline]
        fn load_enq(&self) -> u64 {
            self.enq.load(Ordering::Relaxed)
        }
        #[inline]
        fn cas_enq(&self, cur: u64, new: u64) -> std::result::Result<u64, u64> {
            self.enq
                .compare_exchange(cur, new, Ordering::Relaxed, Ordering::Relaxed)
        }
        #[inline]
        fn load_deq(&self) -> u64 {
            self.deq.load(Ordering::Relaxed)
        }
        #[inline]
        fn cas_deq(&self, cur: u64, new: u64) -> std::result::Result<u64, u64> {
            self.deq
                .compare_exchange(cur, new, Ordering::Relaxed, Ordering::Relaxed)
        }
        #[inline]
        fn load_seq(&self, pos: u64, o: Ordering) -> u64 {
            self.seqs[(pos % 2) as usize].load(o)
        }
        #[inline]
        fn store_seq(&self, pos: u64, seq: u64, o: Ordering) {
            self.seqs[(pos % 2) as usize].store(seq, o)
        }
        fn cas_claim(&self, pos: u64, cur: u64, new: u64) -> std::result::Result<u64, u64> {
            self.claims[(pos % 2) as usize].compare_exchange(
                cur,
                new,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
        }
        fn release_claim(&self, pos: u64) {
            self.claims[(pos % 2) as usize].store(0, Ordering::Release)
        }
        fn pause(&self) {
            loom::thread::yield_now();
        }
    }

    #[test]
    fn mpmc_delivers_each_message_once_and_whole() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let mem = Arc::new(Mem {
                enq: AtomicU64::new(0),
                deq: AtomicU64::new(0),
                seqs: [AtomicU64::new(0), AtomicU64::new(1)],
                claims: [AtomicU64::new(0), AtomicU64::new(0)],
                bytes: [AtomicU8::new(0), AtomicU8::new(0)],
            });
            // Two senders, one message each, and one receiver. Each thread
            // tries a bounded number of times (loom cannot follow threads
            // that spin on each other's progress without end, see its issue
            // #398), so what is checked here is safety: whatever is
            // received came from a sender that succeeded, whole, and once.
            // That every message arrives is what the cross-process tests
            // (filemap-testkit) check.
            let senders: Vec<_> = [7u8, 9]
                .into_iter()
                .map(|v| {
                    let m = mem.clone();
                    loom::thread::spawn(move || {
                        for _ in 0..3 {
                            if let Some(pos) = claim_send(&*m, u64::from(v)).expect("consistent") {
                                m.bytes[(pos % 2) as usize].store(v, Ordering::Relaxed);
                                finish_send(&*m, pos);
                                return Some(v);
                            }
                            loom::thread::yield_now();
                        }
                        None
                    })
                })
                .collect();
            let mut got = Vec::new();
            for _ in 0..4 {
                match claim_recv(&*mem, 3).expect("a consistent queue") {
                    Some(pos) => {
                        got.push(mem.bytes[(pos % 2) as usize].load(Ordering::Relaxed));
                        finish_recv(&*mem, pos);
                    }
                    None => loom::thread::yield_now(),
                }
                if got.len() == 2 {
                    break;
                }
            }
            let mut sent: Vec<u8> = senders
                .into_iter()
                .filter_map(|s| s.join().unwrap())
                .collect();
            sent.sort_unstable();
            got.sort_unstable();
            let received = got.len();
            got.dedup();
            assert_eq!(got.len(), received, "no message twice");
            // Every message received was sent, and whole (its sender's byte).
            assert!(
                got.iter().all(|b| sent.contains(b)),
                "got {got:?}, sent {sent:?}"
            );
            // Claim words are all given back.
            assert_eq!(mem.claims[0].load(Ordering::Relaxed), 0);
            assert_eq!(mem.claims[1].load(Ordering::Relaxed), 0);
        });
    }
}

// Waiting on many sources at once (`crate::wait`).

/// What the queue's words say now (see [`crate::inspect::observe`]).
pub(crate) fn observe(seg: Segment) -> Result<Observation> {
    seg.expect(spec())?;
    let geo = SlotArray::of(&seg, SLOTS, SLOT_HEADER)?;
    // Receivers claim a position only once a sender has: read theirs first.
    let received = seg.a64(DEQ).load(Ordering::Acquire);
    let sent = seg.a64(ENQ).load(Ordering::Acquire);
    if received > sent {
        return Err(Error::Corrupt {
            object: seg.label().to_owned(),
            reason: format!("receivers are at position {received}, past the senders' {sent}"),
        });
    }
    Ok(Observation {
        ends: Vec::new(),
        detail: Detail::Mpmc {
            slots: geo.slots,
            max_message: geo.size,
            // Both move meanwhile; at most a ring is ever queued.
            queued: (sent - received).min(geo.slots),
            sent,
            received,
        },
    })
}
