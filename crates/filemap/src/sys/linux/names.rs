//! Named objects in `/dev/shm` and their lifetime: joining, creating,
//! releasing and removing names under the lock protocol of the module docs
//! (`mod.rs`), and handing an object over.

use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::name::Name;
use crate::sys::posix::{file_kind, io, is_regular, stat_id, Backoff, Kind, Object};
use crate::types::{Access, CreateParams, Disposition};

use super::*;

/// Called when this process lets go of a named object (its last `Mapping` or
/// `View` is dropped): closes `fd`, then, for a transient object, removes the
/// name if no holder is left anywhere (module docs, "Releasing").
pub(in crate::sys) fn release_named(
    fd: OwnedFd,
    path: &str,
    managed: bool,
    id: (u64, u64),
    locker: u32,
    _unlink_on_drop: bool,
) {
    // A forked child's copy of a parent's `Mapping`: the lock on the
    // description is the parent's, not the child's to change (module docs,
    // "Children"). Closing the copy is all there is to do.
    if std::process::id() != locker {
        return;
    }
    if managed {
        crate::sys::shadow::let_go(path, id);
    }
    // Our own lock made exclusive: no other description holds one. Copies
    // of ours in children (one between its `fork` and its `exec`, say) share
    // it and do not count. A read-only descriptor cannot hold the exclusive
    // lock: it takes the second way below.
    if managed && ofd_lock(&fd, Lock::Exclusive).is_ok() {
        if same_file(path, id) {
            let _ = unlink_named(path, id);
        }
        return;
    }
    // Someone else holds it (or held it a moment ago). Let go of our lock on
    // the description, for every copy of it (a child that has not reached
    // its `exec` would otherwise hold it on after us), and close.
    let _ = ofd_unlock(&fd);
    drop(fd);
    // Then look afresh: two holders that let go at once each refused the
    // other's upgrade above; after letting go, at least one of them gets the
    // exclusive lock on a fresh description.
    if managed {
        try_remove(path, id);
    }
}

/// What [`try_remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removal {
    /// The name is removed.
    Removed,
    /// Someone holds the file (the exclusive lock was refused).
    Held,
    /// Nothing to do here: the name is gone or names another file, or this
    /// process may not open it read-write.
    NotOurs,
}

/// Removes the name `path` if it still refers to the file `id` and nobody
/// holds that file: takes the exclusive lock on a fresh read-write
/// description, checks, unlinks, and lets go. Does nothing when the lock is
/// refused (someone holds it), the name now refers to another file, or this
/// process may not open it read-write.
pub(crate) fn remove_if_unheld(path: &str, id: (u64, u64)) -> bool {
    try_remove(path, id) == Removal::Removed
}

pub(super) fn try_remove(path: &str, id: (u64, u64)) -> Removal {
    let Ok(fd) = rfs::open(
        path,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    ) else {
        return Removal::NotOurs;
    };
    if !matches!(rfs::fstat(&fd), Ok(st) if stat_id(&st) == id) {
        return Removal::NotOurs;
    }
    if ofd_lock(&fd, Lock::Exclusive).is_err() {
        return Removal::Held;
    }
    if !same_file(path, id) {
        return Removal::NotOurs;
    }
    match unlink_named(path, id) {
        Ok(()) => Removal::Removed,
        Err(_) => Removal::NotOurs,
    }
}

/// Removes the name `path` of the object `id`, its shadow first (`shadow.rs`:
/// so that no holder puts back what filemap removes).
pub(crate) fn unlink_named(path: &str, id: (u64, u64)) -> rustix::io::Result<()> {
    crate::sys::shadow::remove(path, id);
    rfs::unlink(path)
}

/// True when `path` currently names the file with identity `id`.
pub(super) fn same_file(path: &str, id: (u64, u64)) -> bool {
    matches!(rfs::lstat(path), Ok(st) if stat_id(&st) == id)
}

pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Mode bit marking a transient filemap object (`S_ISVTX`, meaningless on a
/// regular file otherwise).
pub(crate) const MARK_TRANSIENT: u32 = 0o1000;
/// Mode bit marking a persistent filemap object (`S_ISGID` without group
/// execute, which Linux gives no meaning since mandatory locking was removed).
pub(crate) const MARK_PERSISTENT: u32 = 0o2000;

pub(super) fn shm_path(n: &Name) -> String {
    format!("{SHM_DIR}/{}", n.base)
}

/// Outcome of trying to join an existing named object.
pub(super) enum Join {
    Live(Object),
    /// It was not there, or it was stale and has been removed.
    Gone,
}

/// Opens `path` and joins it as a holder (module docs, "Opening").
pub(super) fn join(n: &Name, access: Access, deadline: Instant, started: Instant) -> Result<Join> {
    let path = shm_path(n);
    let flags = match access {
        Access::Read => OFlags::RDONLY,
        Access::ReadWrite => OFlags::RDWR,
    } | OFlags::CLOEXEC
        | OFlags::NOFOLLOW
        // Anyone may put a FIFO at the name: opening one must not block
        // (the type check below then refuses it). No effect on regular files.
        | OFlags::NONBLOCK;
    let mut backoff = Backoff(0);
    let mut restored = false;
    loop {
        let fd = match rfs::open(path.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            // A file record is held read-only by anyone (only its owner may
            // write it): read-write access is then the file's business.
            Err(Errno::ACCESS) if access == Access::ReadWrite => {
                match rfs::open(path.as_str(), read_only_flags(flags), Mode::empty()) {
                    Ok(fd) if rfs::fstat(&fd).is_ok_and(|st| st.st_mode & MARK_FILE != 0) => fd,
                    _ => return Err(Error::os(&n.given, "open", io(Errno::ACCESS))),
                }
            }
            // Missing: a foreign tool may have unlinked a live object's
            // name; put it back from its shadow (once) and look again.
            Err(Errno::NOENT) if !restored => {
                restored = true;
                if crate::sys::shadow::restore_for_opener(&path) {
                    continue;
                }
                return Ok(Join::Gone);
            }
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
                reason: format!(
                    "{path} is {}, not a shared-memory object (filemap opens only regular files there)",
                    file_kind(&st)
                ),
            });
        }
        let id = stat_id(&st);
        let managed = st.st_mode & MARK_TRANSIENT != 0;
        // Our hold: a shared lock on our own description.
        match ofd_lock(&fd, Lock::Shared) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                // A writer holds the exclusive lock for a moment (removing a
                // name it found unheld): wait it out and start over.
                backoff_or_timeout(n, &mut backoff, deadline, started)?;
                continue;
            }
            Err(e) => return Err(Error::os(&n.given, "fcntl(F_OFD_SETLK)", io(e))),
        }
        // If a releaser unlinked the file before we locked it, the name is
        // gone (or names a newer object): start over.
        if !same_file(&path, id) {
            backoff.pause();
            continue;
        }
        let others = ofd_held_by_others(&fd)
            .map_err(|e| Error::os(&n.given, "fcntl(F_OFD_GETLK)", io(e)))?;
        if managed && !others {
            // Nobody else holds this transient object: its last holder died.
            // Remove the stale name if this process may (it needs write
            // access), and report it gone either way.
            drop(fd);
            remove_if_unheld(&path, id);
            return Ok(Join::Gone);
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
        if managed {
            crate::sys::shadow::hold(&path, id);
        }
        return Ok(Join::Live(Object {
            fd: ManuallyDrop::new(fd),
            size: st.st_size as u64,
            writable: access == Access::ReadWrite,
            large: large_of_mode(st.st_mode as u32),
            kind: Kind::Named {
                path,
                managed,
                id,
                unlink_on_drop: false,
                mode: st.st_mode as u32,
                locker: std::process::id(),
            },
        }));
    }
}

/// `flags` with read-only access instead of read-write.
pub(super) fn read_only_flags(flags: OFlags) -> OFlags {
    (flags - OFlags::RWMODE) | OFlags::RDONLY
}

pub(super) fn backoff_or_timeout(
    n: &Name,
    b: &mut Backoff,
    deadline: Instant,
    started: Instant,
) -> Result<()> {
    if Instant::now() >= deadline {
        return Err(Error::NotReady {
            object: n.given.clone(),
            waited: started.elapsed(),
            reason: "another process kept it locked exclusively (removing it), or it is \
                     stale and this process may not remove it"
                .into(),
        });
    }
    b.pause();
    Ok(())
}

/// Opens an existing named object (module docs, "Opening"); a file record
/// yields the file it names.
pub(crate) fn open_named(n: &Name, access: Access, ready_timeout: Duration) -> Result<Object> {
    let started = Instant::now();
    match join(n, access, started + ready_timeout, started)? {
        Join::Live(o) => follow(o, n, access),
        Join::Gone => Err(Error::NotFound {
            name: n.given.clone(),
        }),
    }
}

/// Creates a named object; with `open_existing`, joins an existing live one instead
/// of failing (module docs, "Creating").
pub(crate) fn create_named(
    n: &Name,
    size: u64,
    p: &CreateParams,
    open_existing: bool,
) -> Result<(Object, Disposition)> {
    let obj = &n.given;
    if p.large_pages {
        transparent_huge_pages().map_err(|why| Error::Unsupported {
            object: obj.clone(),
            what: format!("large pages for a named mapping {why}"),
        })?;
    }
    let mark =
        if p.reserve { MARK_RESERVED } else { 0 } | if p.large_pages { MARK_LARGE } else { 0 };
    let (o, how) = create_link(n, p, open_existing, mark, |fd| {
        rfs::ftruncate(fd, size).map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
        // Reserve every page now, so that a too-small /dev/shm fails here rather
        // than as SIGBUS on first touch; or, reserving only, none (`commit`).
        if !p.reserve {
            if p.large_pages {
                commit(fd, 0, size, size, true, obj)?;
            } else {
                reserve(fd, size, obj)?;
            }
        }
        Ok(size)
    })?;
    match how {
        Disposition::Created => Ok((o, how)),
        // What exists may be a file mapping: open what it names, as
        // `CreateFileMapping` opens an existing section whatever backs it.
        Disposition::Opened => Ok((follow(o, n, p.access)?, how)),
    }
}

/// Makes a new named object: an unnamed `O_TMPFILE` in `/dev/shm` that
/// `fill` gives its contents and size, then its mode (with the lifetime mark
/// and `mark`), then this process's shared lock, and only then its name
/// (module docs, "Creating"). An existing live name is joined with
/// `open_existing` (returned as it is: the caller follows a file record),
/// an error otherwise.
pub(super) fn create_link(
    n: &Name,
    p: &CreateParams,
    open_existing: bool,
    mark: u32,
    fill: impl FnOnce(&OwnedFd) -> Result<u64>,
) -> Result<(Object, Disposition)> {
    sweep::now_and_then();
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
        e => Error::os(obj, "open(O_TMPFILE)", io(e)),
    })?;
    // Contents first: writing or resizing a file clears its set-user-ID
    // bit (`MARK_FILE`) unless the writer may set it.
    let size = fill(&fd)?;
    let mode = (p.mode & 0o777)
        | mark
        | if p.persistent {
            MARK_PERSISTENT
        } else {
            MARK_TRANSIENT
        };
    rfs::fchmod(&fd, Mode::from_raw_mode(mode as _))
        .map_err(|e| Error::os(obj, "fchmod", io(e)))?;
    // Nobody else can see this file yet, so the lock cannot be refused.
    ofd_lock(&fd, Lock::Shared).map_err(|e| Error::os(obj, "fcntl(F_OFD_SETLK)", io(e)))?;
    let st = rfs::fstat(&fd).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut backoff = Backoff(0);
    loop {
        // A live object whose name a foreign tool unlinked is put back
        // first (`shadow.rs`): a second object under its name is a split.
        crate::sys::shadow::restore_for_opener(&path);
        match rfs::linkat(
            rfs::CWD,
            proc_path.as_str(),
            rfs::CWD,
            path.as_str(),
            rfs::AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) => {
                if !p.persistent {
                    crate::sys::shadow::create(&path, stat_id(&st));
                    crate::sys::shadow::hold(&path, stat_id(&st));
                }
                return Ok((
                    Object {
                        fd: ManuallyDrop::new(fd),
                        size,
                        writable: true,
                        large: large_of_mode(st.st_mode as u32),
                        kind: Kind::Named {
                            path,
                            managed: !p.persistent,
                            id: stat_id(&st),
                            unlink_on_drop: false,
                            mode: st.st_mode as u32,
                            locker: std::process::id(),
                        },
                    },
                    Disposition::Created,
                ));
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
pub(crate) fn remove_named(n: &Name) -> Result<()> {
    let path = shm_path(n);
    // Its shadow first, so that no holder puts the name back (`shadow.rs`).
    if let Ok(st) = rfs::lstat(path.as_str()) {
        crate::sys::shadow::remove(&path, stat_id(&st));
    }
    rfs::unlink(path.as_str()).map_err(|e| Error::os(&n.given, "unlink", io(e)))
}

/// A read-only descriptor of the object `fd` refers to (a new open file
/// description, through `/proc/self/fd`), for a hand-over.
///
/// - For a memfd (`Kind::Anonymous`), the object's mode becomes `0400` first:
///   a child could otherwise open `/proc/self/fd/N` read-write and write into
///   it. (A process that bypasses file permissions, such as root with
///   `CAP_DAC_OVERRIDE`, still can; and the parent's own descriptors and
///   views keep working: permissions are checked when opening.)
/// - For a named object, the new description holds a shared lock of its
///   own: handed to a child, it keeps the name alive while the child holds
///   it (module docs). The child can still open the name with whatever
///   access the object's mode grants it.
/// - A file's mode is the caller's, and is not changed.
///
/// For read-write access, only a named object needs a description of its
/// own (the child must hold the name with a lock of its own: sharing ours,
/// it would not count, module docs "Children"); `None` then means the
/// object's own descriptor will do.
pub(in crate::sys) fn reopen(
    fd: &OwnedFd,
    kind: &Kind,
    access: Access,
    obj: &str,
) -> Result<Option<OwnedFd>> {
    let named = matches!(kind, Kind::Named { .. });
    if access == Access::ReadWrite && !named {
        return Ok(None);
    }
    if let Kind::Anonymous = kind {
        rfs::fchmod(fd, Mode::from_raw_mode(0o400)).map_err(|e| Error::os(obj, "fchmod", io(e)))?;
    }
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let rw = match access {
        Access::Read => OFlags::RDONLY,
        Access::ReadWrite => OFlags::RDWR,
    };
    let ro = rfs::open(p.as_str(), rw | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::os(obj, "open(/proc/self/fd)", io(e)))?;
    if !named {
        return Ok(Some(ro));
    }
    let started = Instant::now();
    let mut backoff = Backoff(0);
    loop {
        match ofd_lock(&ro, Lock::Shared) {
            Ok(()) => return Ok(Some(ro)),
            // Cannot happen while `fd` holds its shared lock; bounded anyway.
            Err(Errno::WOULDBLOCK) if started.elapsed() < Duration::from_secs(2) => backoff.pause(),
            Err(e) => return Err(Error::os(obj, "fcntl(F_OFD_SETLK)", io(e))),
        }
    }
}
