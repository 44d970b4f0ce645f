//! The OS layer, the bottom of the crate: it imports only the leaf modules
//! (`error`, `name`, `types`, `hash`; a test in `tests/layers.rs` checks).
//! One file per OS provides the same small set of items (`linux.rs` and
//! `macos.rs` share `posix.rs`; `windows.rs`):
//!
//! - `Object`: an open mapping object (fd or section handle) and what is known
//!   about it; dropping it releases this process's hold (and, on Linux, removes
//!   the name when this was the last holder of a transient object);
//! - `create_named`, `open_named`, `remove_named`, `anonymous`, `from_file`;
//! - `Inherit` and `from_inherited` for handing an unnamed mapping to a child;
//! - `map`, `unmap`, `flush` over a [`RawView`], and `granularity`.
//!
//! Nearly all of the crate's `unsafe` lives here. The modules above never `cfg`
//! on the OS.

use std::sync::atomic::{AtomicU32, AtomicU64};

// One file per OS, each providing the same items; `posix.rs` holds what
// Linux and macOS share and reaches the OS-specific one as `os`.
#[cfg(unix)]
mod posix;
#[cfg(target_os = "linux")]
pub(crate) mod record;
#[cfg(target_os = "linux")]
pub(crate) mod shadow;
#[cfg(unix)]
mod sigbus;
#[cfg(unix)]
pub(crate) use posix::*;
#[cfg_attr(target_os = "linux", path = "linux/mod.rs")]
#[cfg_attr(all(unix, not(target_os = "linux")), path = "macos.rs")]
#[cfg(unix)]
mod os;
#[cfg(unix)]
pub(crate) use os::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// A process named by pid and (the low 32 bits of) its start time, packed in
/// one word so that it can be claimed with a single compare-and-swap. 0 is nobody.
pub(crate) fn owner_word(pid: u32) -> u64 {
    let start = process_start(pid).unwrap_or(0) as u32;
    (u64::from(start) << 32) | u64::from(pid)
}

/// Whether the process an [`owner_word`] names still runs: `Some(false)` when it
/// is gone or its pid now names another process, `None` for nobody (0).
pub(crate) fn owner_alive(owner: u64) -> Option<bool> {
    let pid = owner as u32;
    if pid == 0 {
        return None;
    }
    let start = (owner >> 32) as u32;
    match process_start(pid) {
        None => Some(false),
        // 0 means the start time is unknown on one side: trust the pid.
        Some(s) => Some(start == 0 || s == 0 || s as u32 == start),
    }
}

/// One word to sleep on in [`wait_any`]: the segment's parker, the word's
/// offset in the segment, the word, and the value it had when the waiter
/// decided to sleep.
#[derive(Clone, Copy)]
// macOS polls: it reads only the word.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
pub(crate) struct WaitWord<'a> {
    pub parker: &'a Parker,
    pub off: usize,
    pub word: &'a AtomicU32,
    pub expected: u32,
}

impl WaitWord<'_> {
    /// Whether the word moved already (no need to sleep).
    pub(crate) fn moved(&self) -> bool {
        self.word.load(std::sync::atomic::Ordering::Acquire) != self.expected
    }
}

/// A mapped range of address space. `ptr..ptr+len` is exactly the range the
/// caller asked for; `base..base+map_len` is what the OS mapped (aligned down to
/// the allocation granularity).
#[derive(Debug)]
pub(crate) struct RawView {
    base: *mut u8,
    map_len: usize,
    ptr: *mut u8,
    len: usize,
    /// How this OS learns that a page of the view lost its backing (the
    /// object was shrunk): see `sigbus.rs` (Unix); nothing on Windows, where
    /// a mapped section cannot shrink.
    watch: Watch,
}

// SAFETY: a RawView is an address range, not a borrow of thread-local data; the
// pages stay mapped until `unmap` consumes it. Every access through it goes
// through the methods below, which are either copies, atomics, or `unsafe`.
unsafe impl Send for RawView {}
// SAFETY: as above; shared access from several threads is the same as shared
// access from several processes, which the methods already account for.
unsafe impl Sync for RawView {}

/// Types that can be accessed atomically in shared memory.
pub(crate) trait SharedAtomic {
    const ALIGN: usize;
}
impl SharedAtomic for AtomicU32 {
    const ALIGN: usize = 4;
}
impl SharedAtomic for AtomicU64 {
    const ALIGN: usize = 8;
}

/// Where the OS mapping for a view of `len` bytes at `offset` starts, and how
/// big it is: `offset` aligned down to the granularity, and the slack before it.
pub(crate) struct Placement {
    pub aligned: u64,
    pub delta: usize,
    pub map_len: usize,
    /// The granularity used: [`granularity`], or an object's large page
    /// size where views must start and end on large pages.
    pub gran: u64,
}

/// Places a view of `len` bytes at `offset` of an object of `size` bytes
/// whose views start on multiples of `gran` (see [`Placement`]). With a
/// granularity above the system's (large pages), the mapping also ends on
/// one, as `munmap` and `MapViewOfFile` then require.
pub(crate) fn place(
    offset: u64,
    len: usize,
    size: u64,
    gran: u64,
    obj: &str,
) -> crate::error::Result<Placement> {
    let out = || crate::error::Error::OutOfRange {
        object: obj.to_owned(),
        offset,
        len: len as u64,
        size,
    };
    let aligned = offset - offset % gran;
    let delta = (offset - aligned) as usize;
    let mut map_len = delta.checked_add(len).ok_or_else(out)?;
    if gran > granularity() {
        let g = gran as usize;
        map_len = map_len.checked_next_multiple_of(g).ok_or_else(out)?;
    }
    Ok(Placement {
        aligned,
        delta,
        map_len,
        gran,
    })
}

/// Where the OS mapping of a view must start so that the view's first byte
/// is at `at`: `at - delta`, which must be a multiple of the granularity
/// (as `MapViewOfFileEx` requires of its base address).
pub(crate) fn placed_base(p: &Placement, at: usize, obj: &str) -> crate::error::Result<usize> {
    let g = p.gran as usize;
    let bad = |reason: String| placement_error(obj, at, reason);
    let base = at
        .checked_sub(p.delta)
        .ok_or_else(|| bad("the address is below the start of the address space".into()))?;
    if base % g != 0 {
        return Err(bad(format!(
            "the address must be a multiple of the allocation granularity ({g} bytes) plus the \
             offset's remainder ({}): try {:#x}",
            p.delta,
            base - base % g + g + p.delta
        )));
    }
    base.checked_add(p.map_len)
        .ok_or_else(|| bad("the range runs past the end of the address space".into()))?;
    Ok(base)
}

/// A view could not be placed at `at`.
pub(crate) fn placement_error(obj: &str, at: usize, reason: String) -> crate::error::Error {
    crate::error::Error::Placement {
        object: obj.to_owned(),
        address: at,
        reason,
    }
}

/// The size to map a file with: `requested`, or the file's `current` size for 0;
/// growing needs write access. Shared by both platforms' `from_file`.
pub(crate) fn file_size(
    requested: u64,
    current: u64,
    writable: bool,
    obj: &str,
) -> crate::error::Result<u64> {
    let size = if requested == 0 { current } else { requested };
    if size == 0 {
        return Err(crate::error::Error::InvalidSize {
            object: obj.to_owned(),
            reason: "the file is empty and no size was given; give a size to grow it".into(),
        });
    }
    if size > current && !writable {
        return Err(crate::error::Error::InvalidSize {
            object: obj.to_owned(),
            reason: format!(
                "the file is {current} bytes and cannot be grown to {size} with read-only access"
            ),
        });
    }
    Ok(size)
}

impl RawView {
    /// A view over an OS mapping at `base` made for `p`, of which the caller
    /// sees `len` bytes from `base + p.delta`.
    fn new(base: *mut u8, p: &Placement, len: usize) -> RawView {
        // SAFETY: `delta < map_len`, the length of the mapping at `base`, so the
        // result is inside it.
        let ptr = unsafe { base.add(p.delta) };
        RawView {
            base,
            map_len: p.map_len,
            ptr,
            len,
            watch: Watch::default(),
        }
    }

    /// Whether a page of this view lost its backing (another process shrank
    /// the object): its accesses then complete on private zero pages, and
    /// the safe API reports `Error::Truncated`.
    #[inline]
    pub(crate) fn truncated(&self) -> bool {
        watch_tripped(&self.watch)
    }

    #[inline]
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when `offset..offset+n` lies within the view.
    #[inline]
    fn contains(&self, offset: usize, n: usize) -> bool {
        offset.checked_add(n).is_some_and(|end| end <= self.len)
    }

    /// Copies `buf.len()` bytes from the view at `offset` into `buf`.
    /// Returns false (and copies nothing) when the range is outside the view.
    #[inline]
    pub(crate) fn copy_out(&self, offset: usize, buf: &mut [u8]) -> bool {
        if !self.contains(offset, buf.len()) {
            return false;
        }
        // SAFETY: the source range is inside the mapped view (checked above) and
        // stays mapped while `self` lives; `buf` is a distinct, exclusive Rust
        // buffer, so the ranges cannot overlap. Other processes may write the
        // source concurrently: the copy then sees some mix of old and new bytes,
        // which is what the safe API documents; no reference to the shared bytes
        // is created.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copies `data` into the view at `offset`. The caller has checked that the
    /// view is writable. Returns false when the range is outside the view.
    #[inline]
    pub(crate) fn copy_in(&self, offset: usize, data: &[u8]) -> bool {
        if !self.contains(offset, data.len()) {
            return false;
        }
        // SAFETY: the destination range is inside the view (checked above), which
        // is mapped writable (checked by the caller before calling); `data` is a
        // Rust slice and cannot overlap a range we never hand out as a slice.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len()) };
        true
    }

    /// Hints the CPU to fetch the cache line at `offset` (a no-op out of range
    /// and on CPUs without a stable prefetch intrinsic). Not a memory access:
    /// it cannot race with other processes' writes.
    #[inline]
    pub(crate) fn prefetch(&self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        if self.contains(offset, 1) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: `offset` is inside the view (checked), so the address is in
            // a live mapping; a prefetch reads nothing the program sees, and
            // SSE, which it needs, is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.ptr.add(offset).cast::<i8>()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }

    /// Hints the CPU to fetch the cache line at `offset` for writing
    /// (`prefetchw`: the line is taken exclusive, so stores to it do not wait
    /// for other CPUs' copies to be invalidated). A no-op out of range, on
    /// x86-64 CPUs without the instruction, and on other architectures. Not a
    /// memory access: it cannot race with other processes' writes (at worst it
    /// takes a line another CPU is reading, which then reads it back).
    #[inline]
    pub(crate) fn prefetch_write(&self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        if self.contains(offset, 1) && has_prefetchw() {
            // SAFETY: `offset` is inside the view (checked), so the address is in
            // a live mapping; `prefetchw` (which the CPU has: checked) reads and
            // writes nothing the program sees, touches no stack or flags, and
            // cannot fault.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{}]",
                    in(reg) self.ptr.add(offset),
                    options(nostack, preserves_flags, readonly)
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }

    /// An atomic at `offset`, or `None` if out of range. `Err(())` if misaligned.
    #[inline]
    pub(crate) fn atomic<T: SharedAtomic>(&self, offset: usize) -> Option<Result<&T, ()>> {
        if !self.contains(offset, T::ALIGN) {
            return None;
        }
        // SAFETY: in range (checked); only the address is computed.
        let p = unsafe { self.ptr.add(offset) };
        if (p as usize) % T::ALIGN != 0 {
            return Some(Err(()));
        }
        // SAFETY: `p` is in the mapped view, aligned for T (checked), and T is
        // an atomic integer type, for which every bit pattern is valid and all
        // access is atomic, so concurrent writes from other processes are not a
        // data race. The reference lives no longer than `&self`, and the view
        // stays mapped while `self` lives.
        Some(Ok(unsafe { &*(p as *const T) }))
    }
}

/// Whether this x86-64 CPU has `prefetchw` (CPUID 8000_0001h, ECX bit 8),
/// asked once per process.
///
/// `std::is_x86_feature_detected!` does not know this feature, and
/// `_mm_prefetch::<_MM_HINT_ET0>` compiles to a plain `prefetcht0` unless the
/// whole build targets it.
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_prefetchw() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: not asked yet; 1: no; 2: yes.
    static HAS: AtomicU8 = AtomicU8::new(0);
    match HAS.load(Ordering::Relaxed) {
        0 => {
            let yes = ask_prefetchw();
            HAS.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

#[cfg(target_arch = "x86_64")]
#[cold]
fn ask_prefetchw() -> bool {
    use std::arch::x86_64::__cpuid;
    // Leaf 8000_0000h gives the highest extended leaf; 8000_0001h is asked
    // only if it is there.
    __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod tests {
    /// CPUID's `prefetchw` bit is the one Linux calls `3dnowprefetch`.
    #[test]
    fn prefetchw_is_found_where_the_kernel_sees_it() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
        let flags = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .expect("a flags line");
        let kernel = flags.split_whitespace().any(|f| f == "3dnowprefetch");
        assert_eq!(super::has_prefetchw(), kernel);
        // Asked once, remembered: the same answer again.
        assert_eq!(super::has_prefetchw(), kernel);
    }
}
