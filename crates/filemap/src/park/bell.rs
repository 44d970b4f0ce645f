//! A [`WaitSet`](crate::wait::WaitSet)'s doorbell: a small segment of its own
//! whose bits its sources' senders set, so that a set of many sources
//! learns which of them moved by reading a few words instead of every
//! source.
//!
//! A set registers itself in each source's segment, in the word beside the
//! source's park words ([`Park::bell`](super::Park)): its process id,
//! the doorbell's token (the doorbell is named after both) and the source's
//! bit. A sender reads that word right after the `waiting` word it reads
//! anyway after every message (the same cache line, so no extra miss); when
//! it is set, it opens the doorbell once (kept until the word changes) and
//! sets the bit.
//!
//! The bits are *hints*: they make the set's polling cheap, and nothing
//! depends on them for correctness. A set that is about to sleep announces
//! itself on every source and re-checks every source, as it always did
//! (`wait::WaitSet`), so a sender that could not open the doorbell, a bit
//! lost to a hostile writer, or a registration another process overwrote
//! costs at most the rest of the polling phase, never a missed wake-up. The
//! loom models in `wait` run the functions below ([`ring`], [`take`],
//! [`claim`]) together with the sleeping protocol.
//!
//! One registration per source: a source already registered by a live set
//! of another process (a second receiver of an mpmc queue, say) is polled
//! by this set as before.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::Result;
use crate::mapping::Options;
use crate::segment::{fingerprint, Kind, RingCache, Segment, Spec, HEADER_LEN};
use crate::sys;

/// Where the bitmap starts in a doorbell segment.
const BITS: usize = HEADER_LEN;
/// The most bits a doorbell has (sources beyond share bits: index modulo).
const MAX_BITS: u32 = 1 << 16;
/// Version of the doorbell protocol, part of its fingerprint.
const BELL_FORMAT: u64 = 1;

fn spec() -> Spec {
    Spec {
        kind: Kind::Doorbell,
        fingerprint: fingerprint(Kind::Doorbell, &[BITS as u64, BELL_FORMAT]),
    }
}

/// The tokens of this process's live doorbells: a registration naming this
/// process and a token not in here is left over from a dropped set.
static LIVE: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
/// The next token to try.
static NEXT: AtomicU16 = AtomicU16::new(1);

fn live() -> std::sync::MutexGuard<'static, Option<HashSet<u16>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registration word: process id, token, bit. Never 0 (pid 0 is nobody).
pub(crate) fn reg_word(pid: u32, token: u16, bit: u32) -> u64 {
    (u64::from(pid) << 32) | (u64::from(token) << 16) | u64::from(bit & 0xffff)
}

fn reg_pid(reg: u64) -> u32 {
    (reg >> 32) as u32
}

fn reg_token(reg: u64) -> u16 {
    (reg >> 16) as u16
}

fn bell_name(pid: u32, token: u16) -> String {
    format!("filemap-bell-{pid}-{token:04x}")
}

/// The memory the doorbell protocol works on: the registration word in a
/// source's segment and the doorbell's bitmap (std atomics over segments in
/// the library, loom atomics in the models).
pub(crate) trait BellMem {
    /// Words in the bitmap.
    fn words(&self) -> usize;
    /// Sets `mask` in word `w` (release: the message the sender published
    /// before happens-before a set that takes the bit with acquire).
    fn or_word(&self, w: usize, mask: u64);
    /// Reads word `w` (relaxed; a cheap look before [`BellMem::swap_word`]).
    fn load_word(&self, w: usize) -> u64;
    /// Takes word `w`, leaving 0 (acquire).
    fn swap_word(&self, w: usize) -> u64;
}

/// A source's registration word.
pub(crate) trait RegMem {
    fn load_reg(&self) -> u64;
    fn cas_reg(&self, cur: u64, new: u64) -> bool;
}

/// The sender's side, after it published a message and read `reg` (nonzero):
/// sets the source's bit. A bit past the bitmap's end (a hostile
/// registration) wraps around it.
#[inline]
pub(crate) fn ring<B: BellMem>(b: &B, reg: u64) {
    let words = b.words();
    if words == 0 {
        return;
    }
    let bit = (reg & 0xffff) as usize % (words * 64);
    b.or_word(bit / 64, 1 << (bit % 64));
}

/// The set's side: takes every bit set since the last call and calls `f`
/// with each bit's number.
#[inline]
pub(crate) fn take<B: BellMem>(b: &B, mut f: impl FnMut(usize)) {
    for w in 0..b.words() {
        if b.load_word(w) == 0 {
            continue;
        }
        let mut v = b.swap_word(w);
        while v != 0 {
            let i = v.trailing_zeros() as usize;
            v &= v - 1;
            f(w * 64 + i);
        }
    }
}

/// Registers `mine` in a source's word: free, already this set's (any
/// bit), or left by a set that is gone (`stale`). False when another live
/// set holds it (the source is then polled).
pub(crate) fn claim<R: RegMem>(r: &R, mine: u64, stale: impl Fn(u64) -> bool) -> bool {
    let cur = r.load_reg();
    if cur == mine {
        return true;
    }
    let same_set = cur >> 16 == mine >> 16;
    (cur == 0 || same_set || stale(cur)) && r.cas_reg(cur, mine)
}

/// Whether a registration is left over: from this process, a token no live
/// set of it holds; from another, a process that is gone (a pid reused by
/// another process counts as live: the source is then polled, which is
/// only slower).
pub(crate) fn is_stale(reg: u64) -> bool {
    let pid = reg_pid(reg);
    if pid == std::process::id() {
        return !live().as_ref().is_some_and(|s| s.contains(&reg_token(reg)));
    }
    sys::owner_alive(u64::from(pid)) == Some(false)
}

/// A doorbell segment, as std atomics.
struct SegBell<'a>(&'a Segment, usize);

impl BellMem for SegBell<'_> {
    fn words(&self) -> usize {
        self.1
    }
    fn or_word(&self, w: usize, mask: u64) {
        self.0.a64(BITS + 8 * w).fetch_or(mask, Ordering::Release);
    }
    fn load_word(&self, w: usize) -> u64 {
        self.0.a64(BITS + 8 * w).load(Ordering::Relaxed)
    }
    fn swap_word(&self, w: usize) -> u64 {
        self.0.a64(BITS + 8 * w).swap(0, Ordering::Acquire)
    }
}

/// A source's registration word in its segment.
pub(crate) struct SegReg<'a>(pub &'a AtomicU64);

impl RegMem for SegReg<'_> {
    fn load_reg(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
    fn cas_reg(&self, cur: u64, new: u64) -> bool {
        self.0
            .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The words of a doorbell segment: as many as its maker gave it (its
/// header's capacity, in bits), no more than the mapping has room for
/// (another process made it, and a view may be longer than asked for).
fn words_in(seg: &Segment) -> usize {
    let room = seg.view().len().saturating_sub(BITS) / 8;
    let made = usize::try_from(seg.header().capacity / 64).unwrap_or(usize::MAX);
    room.min(made).min(MAX_BITS as usize / 64)
}

/// The sender's side in a segment: `reg` was read nonzero from the
/// source's registration word. Out of line: only sources in a set of many
/// come here.
#[cold]
#[inline(never)]
pub(crate) fn ring_from(cache: &Mutex<RingCache>, reg: u64) {
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if c.reg >> 16 != reg >> 16 {
        // Another doorbell (or the first): opened once, kept (or its
        // absence kept) while the registration names it.
        c.bell = open(reg).ok().map(|seg| {
            let words = words_in(&seg);
            (seg, words)
        });
    }
    c.reg = reg;
    if let Some((seg, words)) = &c.bell {
        ring(&SegBell(seg, *words), reg);
    }
}

/// Opens the doorbell a registration names; only a doorbell segment is
/// accepted, and nothing is waited for.
fn open(reg: u64) -> Result<Segment> {
    let opts = Options::new().ready_timeout(Duration::ZERO);
    Segment::open(&bell_name(reg_pid(reg), reg_token(reg)), &opts, spec())
}

/// A set's own doorbell.
#[derive(Debug)]
pub(crate) struct Bell {
    seg: Segment,
    token: u16,
    words: usize,
}

impl Bell {
    /// A doorbell with room for `sources` bits (at least 64); `None` when
    /// no name could be made (then the set polls every source).
    pub(crate) fn create(sources: usize) -> Option<Bell> {
        let words = sources.div_ceil(64).clamp(1, MAX_BITS as usize / 64);
        let pid = std::process::id();
        for _ in 0..8 {
            let token = NEXT.fetch_add(1, Ordering::Relaxed);
            if token == 0 {
                continue;
            }
            let len = (BITS + 8 * words) as u64;
            let Ok(seg) = Segment::create(
                &bell_name(pid, token),
                &Options::new(),
                spec(),
                words as u64 * 64,
                0,
                len,
            ) else {
                // Taken (by a process that guessed the name, or left over):
                // the next token.
                continue;
            };
            live().get_or_insert_with(HashSet::new).insert(token);
            let words = words_in(&seg).min(words);
            return Some(Bell { seg, token, words });
        }
        None
    }

    /// The registration word for source `index`.
    pub(crate) fn reg_for(&self, index: usize) -> u64 {
        reg_word(
            std::process::id(),
            self.token,
            (index % (self.words * 64)) as u32,
        )
    }

    /// The bits (sources) this doorbell has.
    pub(crate) fn bits(&self) -> usize {
        self.words * 64
    }

    /// Takes the bits set since the last call ([`take`]).
    pub(crate) fn take(&self, f: impl FnMut(usize)) {
        take(&SegBell(&self.seg, self.words), f);
    }
}

impl Drop for Bell {
    fn drop(&mut self) {
        if let Some(s) = live().as_mut() {
            s.remove(&self.token);
        }
    }
}
