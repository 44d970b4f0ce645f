//! macOS (and other POSIX systems without Linux's extras): `shm_open` without
//! the flock-based lifetime. A transient object is unlinked when the process
//! that created it releases it (a crash leaves the name; `Mapping::remove`
//! clears it). Waiting polls; there are no cross-process barriers, so every
//! process fences. Checked, not run, in CI. The parts shared with Linux are in
//! `posix.rs`.

use std::mem::ManuallyDrop;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, Mode};
use rustix::io::Errno;

use super::posix::{io, stat_id, Backoff, Kind, Large, Object};
use crate::error::{Error, Result};
use crate::name::Name;
use crate::types::{Access, CreateParams, Disposition};

/// Called when this process lets go of a named object: the creator of a
/// transient object unlinks its name.
pub(super) fn release_named(
    _fd: OwnedFd,
    path: &str,
    _managed: bool,
    _id: (u64, u64),
    locker: u32,
    unlink_on_drop: bool,
) {
    // A forked child's copy: the name is its parent's to unlink.
    if unlink_on_drop && std::process::id() == locker {
        let _ = rustix::shm::unlink(path);
    }
}

pub(crate) fn open_named(n: &Name, access: Access, ready_timeout: Duration) -> Result<Object> {
    let started = Instant::now();
    let path = crate::name::platform_name(n);
    let flags = match access {
        Access::Read => rustix::shm::OFlags::RDONLY,
        Access::ReadWrite => rustix::shm::OFlags::RDWR,
    };
    let fd = rustix::shm::open(path.as_str(), flags, Mode::empty())
        .map_err(|e| Error::os(&n.given, "shm_open", io(e)))?;
    let mut backoff = Backoff(0);
    loop {
        let st = rfs::fstat(&fd).map_err(|e| Error::os(&n.given, "fstat", io(e)))?;
        // A creator holds mode 0 until the object is sized (see create_named).
        if st.st_size > 0 && st.st_mode & 0o777 != 0 {
            return Ok(Object {
                fd: ManuallyDrop::new(fd),
                size: st.st_size as u64,
                writable: access == Access::ReadWrite,
                large: Large::No,
                kind: Kind::Named {
                    path,
                    managed: false,
                    id: stat_id(&st),
                    unlink_on_drop: false,
                    mode: st.st_mode as u32,
                    locker: std::process::id(),
                },
            });
        }
        if started.elapsed() >= ready_timeout {
            return Err(Error::NotReady {
                object: n.given.clone(),
                waited: started.elapsed(),
                reason: "it still has size 0 or mode 0 (its creator has not finished)".into(),
            });
        }
        backoff.pause();
    }
}

pub(crate) fn create_named(
    n: &Name,
    size: u64,
    p: &CreateParams,
    open_existing: bool,
) -> Result<(Object, Disposition)> {
    use rustix::shm::OFlags as S;
    if p.large_pages {
        return Err(large_unsupported(&n.given));
    }
    if p.reserve {
        return Err(Error::Unsupported {
            object: n.given.clone(),
            what: "a reserve-only mapping (Options::reserve; macOS shm objects cannot be \
                   committed in parts)"
                .into(),
        });
    }
    let path = crate::name::platform_name(n);
    match rustix::shm::open(path.as_str(), S::CREATE | S::EXCL | S::RDWR, Mode::empty()) {
        Ok(fd) => {
            let obj = &n.given;
            let made = (|| {
                rfs::ftruncate(&fd, size)
                    .map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
                rfs::fchmod(&fd, Mode::from_raw_mode((p.mode & 0o777) as _))
                    .map_err(|e| Error::os(obj, "fchmod", io(e)))?;
                rfs::fstat(&fd).map_err(|e| Error::os(obj, "fstat", io(e)))
            })();
            match made {
                Ok(st) => Ok((
                    Object {
                        fd: ManuallyDrop::new(fd),
                        size,
                        writable: true,
                        large: Large::No,
                        kind: Kind::Named {
                            path,
                            managed: !p.persistent,
                            id: stat_id(&st),
                            unlink_on_drop: !p.persistent,
                            mode: st.st_mode as u32,
                            locker: std::process::id(),
                        },
                    },
                    Disposition::Created,
                )),
                Err(e) => {
                    let _ = rustix::shm::unlink(path.as_str());
                    Err(e)
                }
            }
        }
        Err(Errno::EXIST) if open_existing => Ok((
            open_named(n, p.access, p.ready_timeout)?,
            Disposition::Opened,
        )),
        Err(e) => Err(Error::os_sized(&n.given, size, "shm_open", io(e))),
    }
}

/// Large pages are not offered for shared memory here.
pub(crate) fn anonymous_large(_size: u64, obj: &str) -> Result<Object> {
    Err(large_unsupported(obj))
}

fn large_unsupported(obj: &str) -> Error {
    Error::Unsupported {
        object: obj.to_owned(),
        what: "large pages for shared memory (macOS offers superpages only to private \
               anonymous memory)"
            .into(),
    }
}

/// Never called here (no object asks for huge pages).
///
/// # Safety
/// None needed: it does nothing.
pub(super) unsafe fn advise_huge(_base: *mut std::ffi::c_void, _len: usize) {}

/// Never large here.
pub(super) fn large_of_fd(_fd: std::os::fd::BorrowedFd<'_>) -> super::posix::Large {
    super::posix::Large::No
}

/// Not available here.
pub(crate) fn huge_bytes(_base: usize, _len: usize, obj: &str) -> Result<u64> {
    Err(Error::Unsupported {
        object: obj.to_owned(),
        what: "reading back large pages".into(),
    })
}

/// Reserve-only objects are not made here (`create_named` refuses them).
pub(super) fn reserved_mode(_mode: u32) -> bool {
    false
}

/// Never called: no object here is reserve-only.
pub(crate) fn commit(
    _fd: &OwnedFd,
    _offset: u64,
    _len: u64,
    _size: u64,
    _huge: bool,
    _obj: &str,
) -> Result<()> {
    Ok(())
}

/// Never called: no object here is reserve-only.
pub(crate) fn committed(_fd: &OwnedFd, _offset: u64, _len: u64) -> bool {
    true
}

/// Never called: no object here is reserve-only.
pub(crate) fn committed_prefix(_fd: &OwnedFd, size: u64) -> u64 {
    size
}

/// Not available here yet: macOS shm objects carry no mark that would tell
/// a file record from memory (see the crate docs, "Platform differences").
pub(crate) fn create_named_file(
    n: &Name,
    mapped: Object,
    path: &str,
    _p: &CreateParams,
    _open_existing: bool,
) -> Result<(Object, Disposition)> {
    drop(mapped);
    Err(Error::Unsupported {
        object: n.given.clone(),
        what: format!("giving the file mapping of {path} a name (named file mappings)"),
    })
}

pub(crate) fn remove_named(n: &Name) -> Result<()> {
    rustix::shm::unlink(crate::name::platform_name(n).as_str())
        .map_err(|e| Error::os(&n.given, "shm_unlink", io(e)))
}

pub(crate) fn anonymous(size: u64, obj: &str) -> Result<Object> {
    use rustix::shm::OFlags as S;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let nth = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = format!("/fm.{}.{nth}", std::process::id());
        match rustix::shm::open(
            tmp.as_str(),
            S::CREATE | S::EXCL | S::RDWR,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => {
                let _ = rustix::shm::unlink(tmp.as_str());
                rfs::ftruncate(&fd, size)
                    .map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
                return Ok(Object {
                    fd: ManuallyDrop::new(fd),
                    size,
                    writable: true,
                    large: Large::No,
                    kind: Kind::Anonymous,
                });
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(Error::os(obj, "shm_open", io(e))),
        }
    }
}

/// Not available here (no `/proc/self/fd` to reopen through).
/// Read-write hand-overs use the object's own descriptor (`None`).
pub(super) fn reopen(
    fd: &OwnedFd,
    kind: &Kind,
    access: Access,
    obj: &str,
) -> Result<Option<OwnedFd>> {
    let _ = (fd, kind);
    if access == Access::ReadWrite {
        return Ok(None);
    }
    Err(Error::Unsupported {
        object: obj.to_owned(),
        what: "handing a read-only descriptor of a read-write mapping to a child".into(),
    })
}

/// The start time is not looked up here; 0 means "unknown". `None` when no
/// process has that pid.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid as i32)?).ok()?;
    Some(0)
}

/// Sleeping and waking across processes on words of one segment. Here, for
/// now, waiting polls (sleeps of at most 1 ms); `os_sync_wait_on_address`
/// (macOS 14.4+) is the planned replacement.
#[derive(Debug)]
pub(crate) struct Parker;

impl Parker {
    /// For the segment mapped under `name` (unused: polling needs no key).
    pub(crate) fn new(_name: Option<&str>) -> Parker {
        Parker
    }

    /// macOS fallback: polls (see the type's docs).
    pub(crate) fn wait(
        &self,
        _off: usize,
        word: &std::sync::atomic::AtomicU32,
        expected: u32,
        timeout: Duration,
    ) {
        if word.load(std::sync::atomic::Ordering::Acquire) == expected {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
        }
    }

    /// macOS fallback: waiters poll, so there is nobody to wake.
    pub(crate) fn wake(&self, _off: usize, _word: &std::sync::atomic::AtomicU32, _n: u32) {}
}

/// No call here waits on many words: [`wait_any`] polls.
pub(crate) fn waits_natively() -> bool {
    false
}

/// Sleeps until one of `words` moves or `timeout` passes, by polling with
/// sleeps of at most 1 ms (as single waits do here).
pub(crate) fn wait_any(words: &[super::WaitWord<'_>], timeout: Duration) {
    if words.iter().any(|w| w.moved()) {
        return;
    }
    std::thread::sleep(timeout.min(Duration::from_millis(1)));
}

/// The faulting address in the `siginfo_t` of a `SIGBUS` (for `sigbus.rs`).
///
/// # Safety
/// `info` points to the `siginfo_t` the kernel passed to a `SIGBUS` handler.
pub(super) unsafe fn fault_addr(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: the caller's promise; macOS has the field directly.
    unsafe { (*info).si_addr as usize }
}

/// No `MAP_FIXED_NOREPLACE` here: the address is a hint, which `posix::map`
/// checks (never `MAP_FIXED`, which would replace what is mapped there).
pub(super) const NO_REPLACE: rustix::mm::MapFlags = rustix::mm::MapFlags::empty();

/// Flags for sending a hand-over: no `SIGPIPE` for a closed peer where the
/// system offers that per call (Linux); elsewhere the error comes back and
/// the signal follows its disposition.
pub(super) const SEND_FLAGS: rustix::net::SendFlags = rustix::net::SendFlags::empty();

/// Flags for receiving a hand-over: received descriptors close on exec where
/// the system can do it at once (Linux); `receive_over` sets it otherwise.
pub(super) const RECV_FLAGS: rustix::net::RecvFlags = rustix::net::RecvFlags::empty();

/// `uid N`: macOS's user database is not read here.
pub(crate) fn user_label(uid: u32) -> String {
    format!("uid {uid}")
}
