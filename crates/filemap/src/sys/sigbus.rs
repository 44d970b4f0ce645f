//! Surviving a shrunk object (Linux, macOS).
//!
//! Any process that may write a named object (or a mapped file) can shrink
//! it: `ftruncate`, Python's `os.ftruncate`, the `truncate` command. Touching
//! a page of a view that now lies past the end of the object raises `SIGBUS`,
//! which would kill this process in the middle of a safe call. So:
//!
//! - Every view registers its address range here ([`watch`]) and unregisters
//!   it when unmapped ([`unwatch`]). The table is lock-free and never frees
//!   memory, so the signal handler can read it.
//! - The `SIGBUS` handler ([`install`], once per process, before the first
//!   view) looks the faulting address up. Inside a filemap view, it maps a
//!   private zero page over the page that lost its backing (`mmap` with
//!   `MAP_FIXED`, which is async-signal-safe), marks the view *tripped*, and
//!   returns: the access completes (reading zeros; a write lands in the
//!   private page and reaches no one), and the safe call that made it
//!   reports [`crate::Error::Truncated`] once it sees the mark.
//! - Anywhere else it hands the signal to whatever handler was installed
//!   before (Rust's own, which reports stack overflows, or the program's),
//!   or restores the default action, so the fault is what it would have
//!   been without filemap.
//!
//! What this covers: every access filemap's safe API makes (views' copies
//! and atomics, channels, cells, locks, events), and accesses through
//! `&Atomic*` references a view handed out (they complete on the zero page,
//! and the view reports the mark from then on). What it does not cover: a
//! slice borrowed with the `unsafe` `as_slice`/`as_mut_slice` (the accesses
//! complete the same way, but nothing reports them: check
//! [`crate::View::is_truncated`]); a program that installs its own `SIGBUS`
//! handler after filemap's without chaining to it; and a fault raised while
//! another thread unmaps the very view it hit (which safe code cannot do).
//! A page of a *foreign* object that was never reserved and finds the backing
//! store full also raises `SIGBUS`; it is handled, and reported, the same way.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::Once;

/// Slots per chunk of the table.
const CHUNK: usize = 256;
/// A `start` that marks a slot being filled in (0 marks a free one).
const FILLING: usize = 1;

/// One view's range, and whether a page of it lost its backing.
#[derive(Debug)]
pub(crate) struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    tripped: AtomicU32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            tripped: AtomicU32::new(0),
        }
    }

    /// Whether the handler replaced a page of this view.
    #[inline]
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed) != 0
    }
}

struct Chunk {
    slots: [Slot; CHUNK],
    next: AtomicPtr<Chunk>,
}

impl Chunk {
    const fn new() -> Chunk {
        Chunk {
            slots: [const { Slot::new() }; CHUNK],
            next: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

/// The first chunk; more are allocated (and never freed) when it is full.
static TABLE: Chunk = Chunk::new();

/// The page size, for the handler (which must not call into the libc).
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// The handler that was installed before ours (a leaked `sigaction`), to
/// pass faults that are not ours on to.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());

fn chunks() -> impl Iterator<Item = &'static Chunk> {
    let mut next: Option<&'static Chunk> = Some(&TABLE);
    std::iter::from_fn(move || {
        let c = next?;
        let p = c.next.load(Ordering::Acquire);
        // SAFETY: chunks are leaked boxes, never freed, published with
        // release after being fully initialised.
        next = (!p.is_null()).then(|| unsafe { &*p });
        Some(c)
    })
}

/// Registers the range `start..start + len` of a new view; `None` when the
/// handler could not be installed (the view then works, unprotected).
pub(crate) fn watch(start: usize, len: usize) -> Option<&'static Slot> {
    if !install() {
        return None;
    }
    let end = start.checked_add(len)?;
    loop {
        let mut last = &TABLE;
        for c in chunks() {
            for s in &c.slots {
                if s.start
                    .compare_exchange(0, FILLING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    s.end.store(end, Ordering::Relaxed);
                    s.tripped.store(0, Ordering::Relaxed);
                    // Release: the handler that sees `start` sees `end` too.
                    s.start.store(start.max(FILLING + 1), Ordering::Release);
                    return Some(s);
                }
            }
            last = c;
        }
        // Full: append a chunk (whoever loses the race frees its own).
        let fresh = Box::into_raw(Box::new(Chunk::new()));
        if last
            .next
            .compare_exchange(
                std::ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `fresh` was never published; we still own it.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }
}

/// Unregisters a view's slot (before it is unmapped).
pub(crate) fn unwatch(slot: &'static Slot) {
    slot.start.store(0, Ordering::Release);
}

/// The slot whose range holds `addr`. Lock-free and allocation-free: the
/// signal handler calls it.
fn find(addr: usize) -> Option<&'static Slot> {
    for c in chunks() {
        for s in &c.slots {
            let start = s.start.load(Ordering::Acquire);
            if start > FILLING && start <= addr && addr < s.end.load(Ordering::Relaxed) {
                return Some(s);
            }
        }
    }
    None
}

/// Installs the handler once; false if the system refused.
fn install() -> bool {
    static ONCE: Once = Once::new();
    static FIRST: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());
    static OK: AtomicU32 = AtomicU32::new(0);
    ONCE.call_once(|| {
        PAGE.store(rustix::param::page_size(), Ordering::Relaxed);
        // SAFETY: `sigaction` structs are plain C data, zero is a valid
        // start; we fill in the handler, flags and an empty mask, install
        // ours and keep the previous one (leaked, so the handler can always
        // read it).
        unsafe {
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = on_sigbus as *const () as usize;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut ours.sa_mask);
            // The handler in place now is stored *before* ours is installed,
            // so that a SIGBUS the instant after finds it (it finds the
            // default action if it comes sooner still: see `previous`).
            let before: *mut libc::sigaction = Box::into_raw(Box::new(std::mem::zeroed()));
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), before) == 0 {
                FIRST.store(before, Ordering::Relaxed);
                PREVIOUS.store(before, Ordering::Release);
            } else {
                drop(Box::from_raw(before));
            }
            // Then ours, keeping exactly what it replaced (another thread may
            // have changed it in between). `before` stays allocated: a
            // handler running now may still read it. (Kept in `FIRST`, so
            // that leak checkers such as LeakSanitizer, which C programs
            // linking filemap run, see it as held, not lost.)
            let replaced: *mut libc::sigaction = Box::into_raw(Box::new(std::mem::zeroed()));
            if libc::sigaction(libc::SIGBUS, &ours, replaced) == 0 {
                PREVIOUS.store(replaced, Ordering::Release);
                OK.store(1, Ordering::Release);
            } else {
                drop(Box::from_raw(replaced));
            }
        }
    });
    OK.load(Ordering::Acquire) == 1
}

/// The handler and flags of the disposition `prev` points to (stored by
/// `install`), or the default action when none is stored yet.
fn previous(prev: *const libc::sigaction) -> (libc::sighandler_t, libc::c_int) {
    if prev.is_null() {
        return (libc::SIG_DFL, 0);
    }
    // SAFETY: a non-null `prev` was leaked by `install` and is never freed
    // nor written after it was stored.
    let prev = unsafe { &*prev };
    (prev.sa_sigaction, prev.sa_flags)
}

/// The `SIGBUS` handler (see the module docs). Async-signal-safe: atomics,
/// `mmap`, `sigaction`, and the previous handler.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler.
    let addr = unsafe { super::os::fault_addr(info) };
    if let Some(slot) = find(addr) {
        let page = PAGE.load(Ordering::Relaxed).max(1);
        let at = addr & !(page - 1);
        // SAFETY: `at..at + page` lies inside a live view of ours (found in
        // the table), whose page lost its backing; replacing that page with
        // a private zero page changes no memory anyone else can see, and
        // the view is unmapped (whole, this page included) when dropped.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            slot.tripped.store(1, Ordering::Relaxed);
            return;
        }
    }
    // Not ours (or the page could not be replaced): what would have happened
    // without filemap.
    let (handler, flags) = previous(PREVIOUS.load(Ordering::Acquire));
    if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
        if flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed as this signature.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        } else {
            // SAFETY: installed without SA_SIGINFO: the one-argument form.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
        return;
    }
    // The default action: restore it and return; the access faults again
    // and the process ends as it would have.
    // SAFETY: a zeroed `sigaction` with SIG_DFL is the default disposition.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIGBUS that came before `install` stored the previous disposition
    /// (a null pointer) takes the default action; it used to read through
    /// the null pointer.
    #[test]
    fn no_stored_disposition_means_the_default_action() {
        assert_eq!(previous(std::ptr::null()), (libc::SIG_DFL, 0));
        // SAFETY: a zeroed `sigaction` is plain C data.
        let mut ign: libc::sigaction = unsafe { std::mem::zeroed() };
        ign.sa_sigaction = libc::SIG_IGN;
        ign.sa_flags = libc::SA_SIGINFO;
        assert_eq!(previous(&ign), (libc::SIG_IGN, libc::SA_SIGINFO));
    }

    /// Once installed, what was there before is stored, never null.
    #[test]
    fn installing_stores_the_previous_disposition() {
        assert!(install());
        assert!(!PREVIOUS.load(Ordering::Acquire).is_null());
    }
}
