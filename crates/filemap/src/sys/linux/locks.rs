//! Open-file-description locks, the holders' marks (module docs, `mod.rs`).

use std::os::fd::{AsRawFd, OwnedFd};

use rustix::io::Errno;

/// A lock on a whole file's open file description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// `F_RDLCK`: what every holder keeps; needs read access.
    Shared,
    /// `F_WRLCK`: only while removing a name; needs write access.
    Exclusive,
}

/// Takes `lock` on the open file description of `fd` without waiting
/// (`F_OFD_SETLK`); `WOULDBLOCK` when another description holds a lock that
/// conflicts, `BADF` for an exclusive lock on a read-only descriptor. A
/// shared lock this description holds becomes exclusive atomically.
pub(crate) fn ofd_lock(fd: &OwnedFd, lock: Lock) -> rustix::io::Result<()> {
    let mut fl = whole_file(match lock {
        Lock::Shared => libc::F_RDLCK,
        Lock::Exclusive => libc::F_WRLCK,
    });
    // SAFETY: `fd` is an open descriptor for the duration of the call, and
    // `fl` is a properly initialised `struct flock` that the kernel only reads.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if r == -1 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO));
    }
    Ok(())
}

/// Lets go of any lock the open file description of `fd` holds
/// (`F_OFD_SETLK` with `F_UNLCK`), for every descriptor that shares it.
pub(crate) fn ofd_unlock(fd: &OwnedFd) -> rustix::io::Result<()> {
    let mut fl = whole_file(libc::F_UNLCK);
    // SAFETY: as in `ofd_lock`.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if r == -1 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO));
    }
    Ok(())
}

/// Whether a description other than `fd`'s holds any lock on the file
/// (`F_OFD_GETLK` for a write lock; read access is enough to ask).
pub(crate) fn ofd_held_by_others(fd: &OwnedFd) -> rustix::io::Result<bool> {
    let mut fl = whole_file(libc::F_WRLCK);
    // SAFETY: as in `ofd_lock`; the kernel writes the answer into `fl`.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if r == -1 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO));
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// A `struct flock` of type `typ` over the whole file, as OFD locks need
/// (`l_pid` 0).
pub(super) fn whole_file(typ: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all zeroes is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // to the end of the file, however it grows
    fl
}
