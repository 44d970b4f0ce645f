//! Linux and macOS: POSIX shm, memfd, mmap and flock, through `rustix`.
//!
//! # Lifetime of named objects on Linux (the Win32 model)
//!
//! A named object is the tmpfs file `/dev/shm/NAME` (what `shm_open("/NAME")`
//! opens). Every filemap process that holds it keeps a *shared* `flock` on its
//! own open file description, for as long as its `Mapping` or any `View` lives.
//! The kernel drops those locks when a process exits, `kill -9` included. So
//! "does anyone still hold it?" is answered by trying an exclusive lock without
//! blocking: it succeeds only when no holder is left.
//!
//! Transient objects (the default) carry the sticky bit (`S_ISVTX`) in their mode;
//! persistent ones carry `S_ISGID` instead, and objects made by other programs
//! carry neither. Only transient objects are ever removed behind anyone's back.
//!
//! - **Creating**: the object is made complete before it gets its name: an
//!   unnamed `O_TMPFILE` in `/dev/shm` is sized, its pages reserved with
//!   `fallocate` (so a full `/dev/shm` fails here, not as SIGBUS later), its mode
//!   set with `fchmod` (independent of umask), a shared lock taken, and only
//!   then is it linked to the name with `linkat`, which fails if the name exists.
//!   No one can see a half-made object, and create-new is atomic.
//! - **Releasing**: when the last `Mapping`/`View` of the object in a process is
//!   dropped, the process tries to take the exclusive lock; if that works it is
//!   the last holder, and it unlinks the name (after checking that the name
//!   still refers to this very file).
//! - **Crashes**: when the last holder dies, nobody is left to unlink; the name
//!   is then *stale*. Every filemap call that meets the name (open, create,
//!   create-or-open) sees the stale object by the same exclusive-lock test,
//!   unlinks it and behaves as if it were absent. (So does `filemap clean`.)
//! - **Opening**: an opener takes its shared lock and then checks that the name
//!   still refers to the file it opened and that the file is still linked; if a
//!   releaser unlinked it in between, the opener starts over and finds the name
//!   gone. A short exclusive lock held by someone else's check is waited out.
//!
//! A `fork`ed child (without `exec`) shares its parent's open file description
//! and so its lock: the two count as one holder. Descriptors are close-on-exec.
//!
//! Unlinking only ever happens while holding the exclusive lock on that very
//! file and after checking the name still refers to it, and nobody can replace
//! the name while that lock is held, so one process never removes another's
//! fresh object.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use rustix::fs::FlockOperation;
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MsyncFlags, ProtFlags};

use super::RawView;
use crate::error::{Error, Result};
use crate::mapping::{Access, CreateParams, Disposition, ViewAccess};
use crate::name::Name;

/// The allocation granularity: views start at a multiple of this.
pub(crate) fn granularity() -> u64 {
    rustix::param::page_size() as u64
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// What an `Object` is backed by.
#[derive(Debug)]
enum Kind {
    /// A named POSIX shm object. `path` is its path (Linux) or shm name (macOS).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Named {
        path: String,
        /// Transient (Win32 lifetime) rather than persistent or foreign.
        managed: bool,
        /// (st_dev, st_ino) of the file, to recognise it under its name.
        id: (u64, u64),
        /// macOS only: this process created it and unlinks it on release.
        #[cfg_attr(target_os = "linux", allow(dead_code))]
        unlink_on_drop: bool,
    },
    /// memfd (Linux) or an already-unlinked shm object (macOS).
    Anonymous,
    /// A regular file.
    File,
}

/// An open mapping object: the descriptor, its size, and what backs it.
#[derive(Debug)]
pub(crate) struct Object {
    fd: OwnedFd,
    size: u64,
    writable: bool,
    kind: Kind,
}

impl Object {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// `fsync` of the backing file (data and metadata).
    pub(crate) fn sync_backing(&self, object: &str) -> Result<()> {
        match self.kind {
            Kind::File => rfs::fsync(&self.fd).map_err(|e| Error::os(object, "fsync", io(e))),
            _ => Ok(()),
        }
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Kind::Named {
            path,
            managed: true,
            id,
            ..
        } = &self.kind
        {
            // The last holder anywhere removes the name (module docs). If the
            // exclusive lock is refused, someone else still holds the object.
            if rfs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive).is_ok()
                && same_file(path, *id)
            {
                let _ = rfs::unlink(path.as_str());
            }
        }
        #[cfg(not(target_os = "linux"))]
        if let Kind::Named {
            path,
            unlink_on_drop: true,
            ..
        } = &self.kind
        {
            let _ = rustix::shm::unlink(path.as_str());
        }
    }
}

fn stat_id(st: &rfs::Stat) -> (u64, u64) {
    #[allow(clippy::unnecessary_cast)]
    (st.st_dev as u64, st.st_ino as u64)
}

/// True when `path` currently names the file with identity `id`.
#[cfg(target_os = "linux")]
fn same_file(path: &str, id: (u64, u64)) -> bool {
    matches!(rfs::lstat(path), Ok(st) if stat_id(&st) == id)
}

fn is_regular(st: &rfs::Stat) -> bool {
    rfs::FileType::from_raw_mode(st.st_mode as _) == rfs::FileType::RegularFile
}

/// Waits with growing pauses: the library polls only where the OS offers no
/// way to wait (another process's half-finished step), and always with a deadline.
struct Backoff(u32);
impl Backoff {
    fn pause(&mut self) {
        self.0 = (self.0 + 1).min(10);
        if self.0 < 4 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50 << (self.0 - 4)));
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Mode bit marking a transient filemap object (`S_ISVTX`, meaningless on a
/// regular file otherwise).
#[cfg(target_os = "linux")]
pub(crate) const MARK_TRANSIENT: u32 = 0o1000;
/// Mode bit marking a persistent filemap object (`S_ISGID` without group
/// execute, which Linux gives no meaning since mandatory locking was removed).
#[cfg(target_os = "linux")]
pub(crate) const MARK_PERSISTENT: u32 = 0o2000;

#[cfg(target_os = "linux")]
fn shm_path(n: &Name) -> String {
    format!("{SHM_DIR}/{}", n.base)
}

/// Outcome of trying to join an existing named object.
#[cfg(target_os = "linux")]
enum Join {
    Live(Object),
    /// It was not there, or it was stale and has been removed.
    Gone,
}

/// Opens `path` and joins it as a holder (module docs, "Opening").
#[cfg(target_os = "linux")]
fn join(n: &Name, access: Access, deadline: Instant, started: Instant) -> Result<Join> {
    let path = shm_path(n);
    let flags = match access {
        Access::Read => OFlags::RDONLY,
        Access::ReadWrite => OFlags::RDWR,
    } | OFlags::CLOEXEC
        | OFlags::NOFOLLOW;
    let mut backoff = Backoff(0);
    loop {
        let fd = match rfs::open(path.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Join::Gone),
            Err(Errno::LOOP) => {
                return Err(Error::AccessDenied {
                    object: n.given.clone(),
                    reason: format!(
                        "{path} is a symbolic link; filemap does not follow links in {SHM_DIR}"
                    ),
                })
            }
            Err(e) => return Err(Error::os(&n.given, "open", io(e))),
        };
        let st = rfs::fstat(&fd).map_err(|e| Error::os(&n.given, "fstat", io(e)))?;
        if !is_regular(&st) {
            return Err(Error::AccessDenied {
                object: n.given.clone(),
                reason: format!("{path} is not a regular file"),
            });
        }
        let id = stat_id(&st);
        let managed = st.st_mode & MARK_TRANSIENT != 0;
        match rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) if managed => {
                // Nobody holds this transient object: its last holder died. Remove
                // the stale name (if it is still this file) and report it gone.
                if same_file(&path, id) {
                    let _ = rfs::unlink(path.as_str());
                }
                return Ok(Join::Gone);
            }
            Ok(()) => {
                // Persistent or foreign: keep it, as a shared holder.
                if rfs::flock(&fd, FlockOperation::NonBlockingLockShared).is_err() {
                    backoff_or_timeout(n, &mut backoff, deadline, started)?;
                    continue;
                }
            }
            Err(Errno::WOULDBLOCK) => {
                if rfs::flock(&fd, FlockOperation::NonBlockingLockShared).is_err() {
                    // Someone holds the exclusive lock for a moment (a check or a
                    // release in progress): wait it out and start over.
                    backoff_or_timeout(n, &mut backoff, deadline, started)?;
                    continue;
                }
            }
            Err(e) => return Err(Error::os(&n.given, "flock", io(e))),
        }
        // We hold a shared lock. If a releaser unlinked the file before we got
        // it, the name is gone (or names a newer object): start over.
        if !same_file(&path, id) {
            backoff.pause();
            continue;
        }
        // A foreign creator may not have sized it yet: never hand out size 0.
        let mut st = st;
        while st.st_size <= 0 {
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    object: n.given.clone(),
                    waited: started.elapsed(),
                    reason: "it still has size 0 (its creator has not set its size)".into(),
                });
            }
            backoff.pause();
            st = rfs::fstat(&fd).map_err(|e| Error::os(&n.given, "fstat", io(e)))?;
        }
        return Ok(Join::Live(Object {
            fd,
            size: st.st_size as u64,
            writable: access == Access::ReadWrite,
            kind: Kind::Named {
                path,
                managed,
                id,
                unlink_on_drop: false,
            },
        }));
    }
}

#[cfg(target_os = "linux")]
fn backoff_or_timeout(
    n: &Name,
    b: &mut Backoff,
    deadline: Instant,
    started: Instant,
) -> Result<()> {
    if Instant::now() >= deadline {
        return Err(Error::NotReady {
            object: n.given.clone(),
            waited: started.elapsed(),
            reason: "another process kept it locked exclusively (creating or removing it)".into(),
        });
    }
    b.pause();
    Ok(())
}

/// Opens an existing named object (module docs, "Opening").
#[cfg(target_os = "linux")]
pub(crate) fn open_named(n: &Name, access: Access, ready_timeout: Duration) -> Result<Object> {
    let started = Instant::now();
    match join(n, access, started + ready_timeout, started)? {
        Join::Live(o) => Ok(o),
        Join::Gone => Err(Error::NotFound {
            name: n.given.clone(),
        }),
    }
}

/// Creates a named object; with `open_existing`, joins an existing live one instead
/// of failing (module docs, "Creating").
#[cfg(target_os = "linux")]
pub(crate) fn create_named(
    n: &Name,
    size: u64,
    p: &CreateParams,
    open_existing: bool,
) -> Result<(Object, Disposition)> {
    let started = Instant::now();
    let deadline = started + p.ready_timeout;
    let obj = &n.given;
    let path = shm_path(n);
    let fd = rfs::open(
        SHM_DIR,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| match e {
        Errno::NOENT | Errno::OPNOTSUPP | Errno::ISDIR => Error::Unsupported {
            object: obj.clone(),
            what: format!(
                "creating an unnamed file in {SHM_DIR} (O_TMPFILE: {})",
                io(e)
            ),
        },
        e => Error::os_sized(obj, size, "open(O_TMPFILE)", io(e)),
    })?;
    let mode = (p.mode & 0o777)
        | if p.persistent {
            MARK_PERSISTENT
        } else {
            MARK_TRANSIENT
        };
    rfs::fchmod(&fd, Mode::from_raw_mode(mode as _))
        .map_err(|e| Error::os(obj, "fchmod", io(e)))?;
    rfs::ftruncate(&fd, size).map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
    // Reserve every page now, so that a too-small /dev/shm fails here rather
    // than as SIGBUS on first touch.
    rfs::fallocate(&fd, rfs::FallocateFlags::empty(), 0, size)
        .map_err(|e| Error::os_sized(obj, size, "fallocate", io(e)))?;
    rfs::flock(&fd, FlockOperation::LockShared).map_err(|e| Error::os(obj, "flock", io(e)))?;
    let st = rfs::fstat(&fd).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut backoff = Backoff(0);
    loop {
        match rfs::linkat(
            rfs::CWD,
            proc_path.as_str(),
            rfs::CWD,
            path.as_str(),
            rfs::AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) => {
                return Ok((
                    Object {
                        fd,
                        size,
                        writable: true,
                        kind: Kind::Named {
                            path,
                            managed: !p.persistent,
                            id: stat_id(&st),
                            unlink_on_drop: false,
                        },
                    },
                    Disposition::Created,
                ))
            }
            Err(Errno::EXIST) => match join(n, p.access, deadline, started)? {
                Join::Live(existing) if open_existing => {
                    return Ok((existing, Disposition::Opened))
                }
                Join::Live(_) => return Err(Error::AlreadyExists { name: obj.clone() }),
                // Stale and removed, or removed meanwhile: try to take the name again.
                Join::Gone => backoff_or_timeout(n, &mut backoff, deadline, started)?,
            },
            Err(e) => return Err(Error::os(obj, "linkat", io(e))),
        }
    }
}

/// Removes the name (like `shm_unlink`); holders keep their memory.
#[cfg(target_os = "linux")]
pub(crate) fn remove_named(n: &Name) -> Result<()> {
    rfs::unlink(shm_path(n).as_str()).map_err(|e| Error::os(&n.given, "unlink", io(e)))
}

/// A memfd of `size` bytes, its pages reserved and its size sealed.
#[cfg(target_os = "linux")]
pub(crate) fn anonymous(size: u64, obj: &str) -> Result<Object> {
    use rfs::{MemfdFlags, SealFlags};
    let fd = rfs::memfd_create("filemap", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| Error::os(obj, "memfd_create", io(e)))?;
    rfs::ftruncate(&fd, size).map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
    rfs::fallocate(&fd, rfs::FallocateFlags::empty(), 0, size)
        .map_err(|e| Error::os_sized(obj, size, "fallocate", io(e)))?;
    // Nobody (the child included) can shrink it under our views and cause SIGBUS.
    rfs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .map_err(|e| Error::os(obj, "fcntl(F_ADD_SEALS)", io(e)))?;
    Ok(Object {
        fd,
        size,
        writable: true,
        kind: Kind::Anonymous,
    })
}

// ---------------------------------------------------------------------------
// macOS and other POSIX systems: shm_open without flock-based lifetime.
// Transient objects are unlinked when the creating process releases them (a
// crash leaves the name; `Mapping::remove` clears it). Checked, not run, in CI.
// ---------------------------------------------------------------------------

#[cfg(not(target_os = "linux"))]
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
                fd,
                size: st.st_size as u64,
                writable: access == Access::ReadWrite,
                kind: Kind::Named {
                    path,
                    managed: false,
                    id: stat_id(&st),
                    unlink_on_drop: false,
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

#[cfg(not(target_os = "linux"))]
pub(crate) fn create_named(
    n: &Name,
    size: u64,
    p: &CreateParams,
    open_existing: bool,
) -> Result<(Object, Disposition)> {
    use rustix::shm::OFlags as S;
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
                        fd,
                        size,
                        writable: true,
                        kind: Kind::Named {
                            path,
                            managed: !p.persistent,
                            id: stat_id(&st),
                            unlink_on_drop: !p.persistent,
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

#[cfg(not(target_os = "linux"))]
pub(crate) fn remove_named(n: &Name) -> Result<()> {
    rustix::shm::unlink(crate::name::platform_name(n).as_str())
        .map_err(|e| Error::os(&n.given, "shm_unlink", io(e)))
}

#[cfg(not(target_os = "linux"))]
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
                    fd,
                    size,
                    writable: true,
                    kind: Kind::Anonymous,
                });
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(Error::os(obj, "shm_open", io(e))),
        }
    }
}

/// Maps `file`; `size` 0 means the file's size, a larger size grows the file.
pub(crate) fn from_file(file: &File, size: u64, access: Access, obj: &str) -> Result<Object> {
    let fd: OwnedFd = file
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::os(obj, "fcntl(F_DUPFD_CLOEXEC)", e))?;
    let st = rfs::fstat(&fd).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    if !is_regular(&st) {
        return Err(Error::InvalidSize {
            object: obj.to_owned(),
            reason: "it is not a regular file, so it has no size to map".into(),
        });
    }
    let acc = rfs::fcntl_getfl(&fd).map_err(|e| Error::os(obj, "fcntl(F_GETFL)", io(e)))?
        & OFlags::RWMODE;
    let file_writable = acc == OFlags::RDWR;
    if access == Access::ReadWrite && !file_writable {
        return Err(Error::AccessDenied {
            object: obj.to_owned(),
            reason: "read-write access was asked for, but the file was opened without both read and write".into(),
        });
    }
    if acc == OFlags::WRONLY {
        return Err(Error::AccessDenied {
            object: obj.to_owned(),
            reason: "the file was opened write-only; a mapping needs read access".into(),
        });
    }
    let current = st.st_size as u64;
    let size = super::file_size(size, current, access == Access::ReadWrite, obj)?;
    if size > current {
        rfs::ftruncate(&fd, size).map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
    }
    Ok(Object {
        fd,
        size,
        writable: access == Access::ReadWrite,
        kind: Kind::File,
    })
}

// ---------------------------------------------------------------------------
// Handing an unnamed mapping to a child process.
// ---------------------------------------------------------------------------

/// A descriptor made inheritable for a child; closed again when dropped.
#[derive(Debug)]
pub(crate) struct Inherit {
    fd: OwnedFd,
}

impl Inherit {
    /// Prepares `o` for inheritance with `access`: a separate descriptor
    /// (opened read-only for read access) without close-on-exec.
    pub(crate) fn new(o: &Object, access: Access, obj: &str) -> Result<Inherit> {
        let fd = match access {
            Access::ReadWrite => {
                rustix::io::dup(&o.fd).map_err(|e| Error::os(obj, "dup", io(e)))?
            }
            Access::Read => reopen_read_only(o, obj)?,
        };
        // `dup` already leaves FD_CLOEXEC clear; the re-opened one has it set.
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty())
            .map_err(|e| Error::os(obj, "fcntl(F_SETFD)", io(e)))?;
        Ok(Inherit { fd })
    }

    /// The number the child sees.
    pub(crate) fn raw(&self) -> u64 {
        self.fd.as_raw_fd() as u64
    }
}

#[cfg(target_os = "linux")]
fn reopen_read_only(o: &Object, obj: &str) -> Result<OwnedFd> {
    let p = format!("/proc/self/fd/{}", o.fd.as_raw_fd());
    rfs::open(p.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::os(obj, "open(/proc/self/fd)", io(e)))
}

#[cfg(not(target_os = "linux"))]
fn reopen_read_only(o: &Object, obj: &str) -> Result<OwnedFd> {
    let _ = o;
    Err(Error::Unsupported {
        object: obj.to_owned(),
        what: "handing a read-only descriptor of a read-write mapping to a child".into(),
    })
}

/// Adopts the descriptor `raw` that this process inherited; checks that it is
/// open, is a mapping object of at least `len` bytes, and allows `access`.
pub(crate) fn from_inherited(raw: u64, len: u64, access: Access, token: &str) -> Result<Object> {
    let bad = |reason: String| Error::InvalidToken {
        token: token.to_owned(),
        reason,
    };
    let rawfd =
        RawFd::try_from(raw).map_err(|_| bad(format!("{raw} is not a descriptor number")))?;
    if rawfd < 0 {
        return Err(bad(format!("{raw} is not a descriptor number")));
    }
    // SAFETY: borrowing only for the duration of these checks; if `rawfd` is not
    // open the calls fail with EBADF and nothing is closed.
    let borrowed = unsafe { BorrowedFd::borrow_raw(rawfd) };
    let fl = rfs::fcntl_getfl(borrowed).map_err(|e| {
        bad(format!(
            "descriptor {rawfd} is not open in this process ({})",
            io(e)
        ))
    })?;
    let st = rfs::fstat(borrowed)
        .map_err(|e| bad(format!("fstat of descriptor {rawfd} failed: {}", io(e))))?;
    if !is_regular(&st) {
        return Err(bad(format!(
            "descriptor {rawfd} is not a shared-memory object or file"
        )));
    }
    if (st.st_size as u64) < len {
        return Err(bad(format!(
            "descriptor {rawfd} has {} bytes, fewer than the {len} the token names",
            st.st_size
        )));
    }
    let acc = fl & OFlags::RWMODE;
    if access == Access::ReadWrite && acc != OFlags::RDWR {
        return Err(bad(format!(
            "the token says read-write, but descriptor {rawfd} is read-only"
        )));
    }
    // SAFETY: the descriptor is open (F_GETFL succeeded) and was handed to this
    // process for it to own: the token names it, and the parent closed its own
    // copy (a different number in the parent's table). Taking ownership once is
    // the caller's contract, stated on `Mapping::from_inherited`.
    let fd = unsafe { OwnedFd::from_raw_fd(rawfd) };
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| Error::os(token, "fcntl(F_SETFD)", io(e)))?;
    Ok(Object {
        fd,
        size: len,
        writable: access == Access::ReadWrite,
        kind: Kind::Anonymous,
    })
}

// ---------------------------------------------------------------------------
// Views.
// ---------------------------------------------------------------------------

/// Maps `len` bytes of `o` from `offset` (any offset: it is aligned down here
/// and the returned view starts exactly at `offset`). The caller has checked
/// the range and the access.
pub(crate) fn map(
    o: &Object,
    offset: u64,
    len: usize,
    access: ViewAccess,
    obj: &str,
) -> Result<RawView> {
    let p = super::place(offset, len, o.size, obj)?;
    let (prot, flags) = match access {
        ViewAccess::Read => (ProtFlags::READ, MapFlags::SHARED),
        ViewAccess::ReadWrite => (ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED),
        ViewAccess::CopyOnWrite => (ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE),
    };
    // SAFETY: a fresh mapping at an address the kernel picks (null hint), so no
    // existing memory is replaced; `fd` is open; the offset is a multiple of the
    // page size. The result is only used through RawView.
    let base = unsafe {
        mm::mmap(
            std::ptr::null_mut(),
            p.map_len,
            prot,
            flags,
            &o.fd,
            p.aligned,
        )
    }
    .map_err(|e| Error::os_sized(obj, p.map_len as u64, "mmap", io(e)))?;
    Ok(RawView::new(base.cast(), &p, len))
}

/// Unmaps a view, reporting the OS error if any.
pub(crate) fn unmap(v: &RawView, obj: &str) -> Result<()> {
    // SAFETY: `base..base+map_len` is exactly what `map` mapped, and the caller
    // (View) unmaps each RawView once and never touches it afterwards.
    unsafe { mm::munmap(v.base.cast(), v.map_len) }.map_err(|e| Error::os(obj, "munmap", io(e)))
}

/// Starts (or, with `wait`, completes) write-back of the view's pages.
pub(crate) fn flush(v: &RawView, wait: bool, obj: &str) -> Result<()> {
    let flags = if wait {
        MsyncFlags::SYNC
    } else {
        MsyncFlags::ASYNC
    };
    // SAFETY: `base..base+map_len` is a live mapping made by `map`; msync does
    // not change its contents.
    unsafe { mm::msync(v.base.cast(), v.map_len, flags) }
        .map_err(|e| Error::os(obj, "msync", io(e)))
}

// ---------------------------------------------------------------------------
// Processes and waiting, for the layers above (segments, channels).
// ---------------------------------------------------------------------------

/// The start time of process `pid` in clock ticks since boot (`/proc/PID/stat`
/// field 22), which with the pid names a process uniquely (pids are reused);
/// `None` if it does not run (gone, or a zombie).
#[cfg(target_os = "linux")]
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past it.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    // Field 3, the state: a zombie (exited, not yet reaped by its parent) or a
    // dead process no longer runs, even though its /proc entry remains.
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Off Linux the start time is not looked up; 0 means "unknown".
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid as i32)?).ok()?;
    Some(0)
}

/// Sleeping and waking across processes on words of one segment. On Linux
/// a futex on the shared word (not PRIVATE, so it works across processes);
/// on macOS, for now, waiting polls (sleeps of at most 1 ms).
#[derive(Debug)]
pub(crate) struct Parker;

impl Parker {
    /// For the segment mapped under `name` (unused here: the futex is keyed
    /// by the word's physical page).
    pub(crate) fn new(_name: Option<&str>) -> Parker {
        Parker
    }

    /// Blocks while `*word == expected`, for at most `timeout`; returns early
    /// on a wake-up or spuriously. `word` is the segment's word at `off`.
    #[cfg(target_os = "linux")]
    pub(crate) fn wait(
        &self,
        _off: usize,
        word: &std::sync::atomic::AtomicU32,
        expected: u32,
        timeout: Duration,
    ) {
        use rustix::thread::futex;
        let ts = futex::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // EAGAIN (value changed), EINTR and ETIMEDOUT all mean "look again".
        let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
    }

    /// Wakes up to `n` sleepers on `word`, in any process.
    #[cfg(target_os = "linux")]
    pub(crate) fn wake(&self, _off: usize, word: &std::sync::atomic::AtomicU32, n: u32) {
        let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), n);
    }

    /// macOS fallback: polls (see the type's docs).
    #[cfg(not(target_os = "linux"))]
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
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn wake(&self, _off: usize, _word: &std::sync::atomic::AtomicU32, _n: u32) {}
}

/// Whether this system offers cross-process barriers
/// (`MEMBARRIER_CMD_GLOBAL_EXPEDITED`) to this process. False when
/// `FILEMAP_NO_MEMBARRIER` is set (to anything) in the environment: the
/// process then behaves as if the system refused, which is how the fallback
/// is tested.
#[cfg(target_os = "linux")]
pub(crate) fn barriers_available() -> bool {
    use rustix::thread::{membarrier_query, MembarrierCommand};
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let q = membarrier_query();
        std::env::var_os("FILEMAP_NO_MEMBARRIER").is_none()
            && q.contains_command(MembarrierCommand::GlobalExpedited)
            && q.contains_command(MembarrierCommand::RegisterGlobalExpedited)
    })
}

/// Whether this process is registered for cross-process barriers, so that
/// a [`heavy_barrier`] in any process orders this process's memory accesses
/// as a fence would and its hot paths may skip their fences (see
/// `channel::Park`).
///
/// The first call starts the registration on a short-lived thread and
/// answers false until it is done: in a process with more than one thread
/// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` waits for an RCU grace period
/// (18 ms measured here), which opening a channel should not.
#[cfg(target_os = "linux")]
pub(crate) fn barrier_registered() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    const IDLE: u8 = 0;
    const STARTED: u8 = 1;
    const DONE: u8 = 2;
    static STATE: AtomicU8 = AtomicU8::new(IDLE);
    match STATE.load(Ordering::Acquire) {
        DONE => true,
        STARTED => false,
        _ => {
            if barriers_available()
                && STATE
                    .compare_exchange(IDLE, STARTED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                let register = || {
                    use rustix::thread::{membarrier, MembarrierCommand};
                    if membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok() {
                        STATE.store(DONE, Ordering::Release);
                    }
                };
                // Without a thread, stay unregistered: this process fences.
                let _ = std::thread::Builder::new()
                    .name("filemap-membarrier".into())
                    .spawn(register);
            }
            false
        }
    }
}

/// A barrier in every running thread of every registered process
/// (`MEMBARRIER_CMD_GLOBAL_EXPEDITED`; the caller need not be registered):
/// once it returns, what any of them stored before it is visible here, and
/// what they load after it sees what this thread stored before the call.
/// False if the system refused it.
#[cfg(target_os = "linux")]
pub(crate) fn heavy_barrier() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    barriers_available() && membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}

/// Off Linux there is no cross-process barrier: every process fences.
#[cfg(not(target_os = "linux"))]
pub(crate) fn barriers_available() -> bool {
    false
}

/// Off Linux there is no cross-process barrier.
#[cfg(not(target_os = "linux"))]
pub(crate) fn barrier_registered() -> bool {
    false
}

/// Off Linux there is no cross-process barrier.
#[cfg(not(target_os = "linux"))]
pub(crate) fn heavy_barrier() -> bool {
    false
}
