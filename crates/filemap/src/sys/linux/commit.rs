//! Reserve, then commit: objects whose pages are given as they are needed.

use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::sys::posix::io;

use super::*;

/// Mode bit marking a filemap object made with `Options::reserve`: its pages
/// are committed by `commit` (owner execute, which filemap never gives a
/// shared-memory object otherwise; it counts only beside a lifetime mark).
pub(crate) const MARK_RESERVED: u32 = 0o100;

/// Whether a named object's `mode` marks it reserve-then-commit.
pub(in crate::sys) fn reserved_mode(mode: u32) -> bool {
    mode & MARK_RESERVED != 0 && mode & (MARK_TRANSIENT | MARK_PERSISTENT) != 0
}

/// Commits `offset..offset + len` (whole pages) of the reserve-only object
/// `fd` of `size` bytes: checks the system can give the memory, reserves
/// the pages (`fallocate`: a full `/dev/shm` fails here, never as SIGBUS),
/// then faults them in once through a passing mapping, which marks them
/// present without changing a byte (so `committed` sees them, and pages
/// another process committed and wrote keep what it wrote).
pub(crate) fn commit(
    fd: &OwnedFd,
    offset: u64,
    len: u64,
    size: u64,
    huge: bool,
    obj: &str,
) -> Result<()> {
    use rustix::mm::{self, Advice, MapFlags, ProtFlags};
    let page = crate::sys::granularity();
    let start = offset - offset % page;
    let end = offset
        .saturating_add(len)
        .div_ceil(page)
        .saturating_mul(page)
        .min(size);
    let n = end - start;
    check_memory(n, obj)?;
    let fallocate = || {
        rfs::fallocate(fd, rfs::FallocateFlags::empty(), start, n)
            .map_err(|e| Error::os_sized(obj, n, "fallocate", io(e)))
    };
    // Huge pages: the fault-in below allocates them (a mount with
    // `huge=advise` gives them only to a mapping that asks, which
    // `fallocate` is not); otherwise `fallocate` reserves the pages first.
    if !huge {
        fallocate()?;
    }
    let n_usize = usize::try_from(n).map_err(|_| {
        Error::os_sized(
            obj,
            n,
            "mmap",
            std::io::Error::other("larger than this process's address space"),
        )
    })?;
    // SAFETY: a fresh mapping the kernel places (no address given), of a
    // range inside the object (`end <= size`); nothing else uses it, and it
    // is unmapped below.
    let p = unsafe {
        mm::mmap(
            std::ptr::null_mut(),
            n_usize,
            ProtFlags::READ,
            MapFlags::SHARED,
            fd,
            start,
        )
    }
    .map_err(|e| Error::os_sized(obj, n, "mmap", io(e)))?;
    if huge {
        // SAFETY: advice on the mapping just made; it changes no byte.
        let _ = unsafe { mm::madvise(p, n_usize, Advice::LinuxHugepage) };
    }
    // Fault every page in: a failure to allocate is an error here, never
    // SIGBUS.
    // SAFETY: `p..p + n` is the mapping just made.
    let populated = unsafe { mm::madvise(p, n_usize, Advice::LinuxPopulateRead) };
    let outcome = match populated {
        Ok(()) => Ok(()),
        Err(Errno::NOMEM | Errno::NOSPC | Errno::FAULT) => Err(Error::os_sized(
            obj,
            n,
            "madvise(MADV_POPULATE_READ)",
            io(Errno::NOMEM),
        )),
        Err(_) => {
            // Before Linux 5.14 (EINVAL): reserve with `fallocate`, so
            // that the reads below find every page present (no SIGBUS),
            // then read one byte of every page.
            let reserved = if huge { fallocate() } else { Ok(()) };
            if reserved.is_ok() {
                for at in (0..n_usize).step_by(page as usize) {
                    // SAFETY: `at < n`, inside the readable mapping just
                    // made, and the page is allocated (`fallocate`).
                    unsafe { std::ptr::read_volatile(p.cast::<u8>().add(at)) };
                }
            }
            reserved
        }
    };
    // SAFETY: unmapping exactly the mapping made above, used by nothing else.
    unsafe { mm::munmap(p, n_usize) }.map_err(|e| Error::os(obj, "munmap", io(e)))?;
    outcome
}

/// Whether every page of `offset..offset + len` of a reserve-only object
/// is committed: the next hole (`SEEK_HOLE`) is at or past the end.
pub(crate) fn committed(fd: &OwnedFd, offset: u64, len: u64) -> bool {
    matches!(rfs::seek(fd, rfs::SeekFrom::Hole(offset)), Ok(h) if h >= offset.saturating_add(len))
}

/// How many bytes from the start of a reserve-only object of `size` bytes
/// are committed: its first hole.
pub(crate) fn committed_prefix(fd: &OwnedFd, size: u64) -> u64 {
    rfs::seek(fd, rfs::SeekFrom::Hole(0)).map_or(0, |h| h.min(size))
}
