//! Linux: named objects in `/dev/shm` with the Win32 lifetime (a shared
//! open-file-description lock per holder), memfd for unnamed objects,
//! futexes for waiting and `membarrier` for cross-process barriers, through
//! `rustix` (and `libc` for the OFD locks rustix does not wrap). The parts
//! shared with macOS are in `posix.rs`.
//!
//! # Lifetime of named objects on Linux (the Win32 model)
//!
//! A named object is the tmpfs file `/dev/shm/NAME` (what `shm_open("/NAME")`
//! opens). Every filemap process that holds it keeps a *shared* lock
//! (`F_OFD_SETLK`, `F_RDLCK`, whole file) on its own open file description,
//! for as long as its `Mapping` or any `View` lives. The kernel drops such a
//! lock when the last descriptor of that description closes: when the process
//! exits, `kill -9` included (and a child that copied the descriptor closes
//! its copy, or `exec`s); a process letting go drops it itself (below).
//!
//! Open-file-description locks rather than `flock`, for two reasons:
//! - An exclusive one (`F_WRLCK`) needs a descriptor open for writing, so a
//!   process that may only read the object can hold it like anyone else but
//!   never lock the owner out (with `flock`, a reader could take the
//!   exclusive lock on a stale object and keep every writer from opening it).
//! - Changing a shared lock to an exclusive one is atomic, and a refused
//!   change leaves the shared lock as it was: how a releasing process asks
//!   "does any other description hold it?" without letting go first.
//!   (`flock`'s conversion drops the lock first.)
//!
//! "Does anyone else hold it?" is `F_OFD_GETLK` for a write lock, which any
//! reader may ask; taking the exclusive lock is how a writer makes sure, for
//! the moment it removes a name, that nobody does.
//!
//! Transient objects (the default) carry the sticky bit (`S_ISVTX`) in their
//! mode; persistent ones carry `S_ISGID` instead, and objects made by other
//! programs carry neither. Only transient objects are ever removed behind
//! anyone's back.
//!
//! - **Creating**: the object is made complete before it gets its name: an
//!   unnamed `O_TMPFILE` in `/dev/shm` is sized, its pages reserved with
//!   `fallocate` (so a full `/dev/shm` fails here, not as SIGBUS later), its mode
//!   set with `fchmod` (independent of umask), a shared lock taken, and only
//!   then is it linked to the name with `linkat`, which fails if the name exists.
//!   No one can see a half-made object, and create-new is atomic.
//! - **Releasing**: when the last `Mapping`/`View` of the object in a process is
//!   dropped, the process first tries to turn its own shared lock into the
//!   exclusive one (atomic; a refusal leaves the shared lock as it was). That
//!   works when no *other* description holds a lock, whoever else shares
//!   this one (module docs, "Children"). Then it unlinks the name (after
//!   checking that the name still refers to this very file) and closes.
//!   Otherwise it lets go of its lock (`F_UNLCK`), closes its descriptor,
//!   opens the name afresh read-write and tries the exclusive lock there:
//!   two holders that let go at the same instant each refuse the other's
//!   upgrade, and after letting go at least one of them gets the lock. A process that may not write the object leaves
//!   that to the next one that can.
//! - **Crashes**: when the last holder dies, nobody is left to unlink; the name
//!   is then *stale*. Every filemap call that meets the name (open, create,
//!   create-or-open) sees that nobody else holds the transient object,
//!   removes it as a releaser would, and behaves as if it were absent. (So does
//!   `filemap clean`.) And so that their memory does not wait for someone to
//!   meet the name, a process's first `create` (and then one at most every
//!   minute) *sweeps* `/dev/shm`: every transient object of this user that
//!   nobody holds is removed the same way (the exclusive lock, taken only
//!   when no holder is left, is the test; live, persistent, foreign and
//!   other users' objects are never touched), within bounds (4,096 entries
//!   looked at, 20 ms). `FILEMAP_SWEEP=0` in the environment turns it off
//!   (`sweep`).
//! - **Opening**: an opener takes its shared lock and then checks that the name
//!   still refers to the file it opened; if a releaser unlinked it in between,
//!   the opener starts over and finds the name gone. A releaser's short
//!   exclusive lock is waited out.
//!
//! # Children
//!
//! A `fork`ed child shares its parent's open file description, and so the
//! lock on it, but is not a holder of its own, as a Win32 child gets no
//! handle that was not made inheritable: a child between `fork` and `exec`
//! holds a copy of every descriptor of its parent, close-on-exec or not, and
//! were it to count, a thread letting go of a name while another thread
//! starts a child (as any program with subprocesses does) would leave the
//! name behind. So a releasing process upgrades its own description's lock
//! (which copies of it do not hinder), and when that is refused it lets go
//! of the lock on the description (`F_UNLCK`, for every copy) before it
//! closes; and a child dropping its copy of a `Mapping` (the process that
//! took the lock is another) only closes its descriptor. The child keeps its
//! views. A child that should hold the name opens it, or is handed it with
//! `Mapping::inherit`, which hands over a new description, locked before it
//! is handed over (read-only or read-write); the name then lives until both
//! have let go. Descriptors are close-on-exec.
//!
//! Unlinking only ever happens while holding the exclusive lock on that very
//! file and after checking the name still refers to it, and nobody can replace
//! the name while that lock is held, so one process never removes another's
//! fresh object.
//!
//! Processes of filemap builds from before the switch to these locks (which
//! used `flock`) do not see these locks, nor these processes theirs: the two
//! must not share names.

use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use super::posix::{file_kind, io, is_regular, stat_id, Backoff, Kind, Large, Object};
use crate::error::{Error, Result};
use crate::name::Name;
use crate::types::{Access, CreateParams, Disposition};

/// Called when this process lets go of a named object (its last `Mapping` or
/// `View` is dropped): closes `fd`, then, for a transient object, removes the
/// name if no holder is left anywhere (module docs, "Releasing").
pub(super) fn release_named(
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
        super::shadow::let_go(path, id);
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
enum Removal {
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

fn try_remove(path: &str, id: (u64, u64)) -> Removal {
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

/// A process that has a file open or mapped (from `/proc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcUser {
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub command: String,
    /// It has a descriptor open on the file.
    pub open: bool,
    /// It has the file mapped.
    pub mapped: bool,
}

/// The processes other than this one that have the files of `index` (by
/// device and inode) open or mapped, by the name `index` gives, from every
/// `/proc/PID` this process may read (by `fd` and `maps`: a filemap object's
/// descriptors and maps show its creation-time path, `/dev/shm/#123
/// (deleted)`, so names cannot be matched).
pub(crate) fn proc_users<K: Clone + Eq + std::hash::Hash>(
    index: &std::collections::HashMap<(u64, u64), K>,
) -> std::collections::HashMap<K, Vec<ProcUser>> {
    use std::collections::HashMap;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    let key = |md: &fs::Metadata| (md.dev(), md.ino());
    let me = std::process::id();
    let mut by_name: HashMap<K, Vec<ProcUser>> = HashMap::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return by_name;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let base = p.path();
        let mut seen: HashMap<&K, (bool, bool)> = HashMap::new();
        if let Ok(fds) = fs::read_dir(base.join("fd")) {
            for fd in fds.flatten() {
                // stat follows the descriptor to the file itself, renamed or not.
                if let Some(name) = fs::metadata(fd.path())
                    .ok()
                    .and_then(|md| index.get(&key(&md)))
                {
                    seen.entry(name).or_default().0 = true;
                }
            }
        }
        if let Ok(maps) = fs::read_to_string(base.join("maps")) {
            for line in maps.lines() {
                // address perms offset dev(maj:min, hex) inode path
                let mut f = line.split_whitespace().skip(3);
                let (Some(dev), Some(ino)) = (f.next(), f.next()) else {
                    continue;
                };
                let Some((maj, min)) = dev.split_once(':') else {
                    continue;
                };
                let (Ok(maj), Ok(min), Ok(ino)) = (
                    u32::from_str_radix(maj, 16),
                    u32::from_str_radix(min, 16),
                    ino.parse::<u64>(),
                ) else {
                    continue;
                };
                if let Some(name) = index.get(&(rfs::makedev(maj, min), ino)) {
                    seen.entry(name).or_default().1 = true;
                }
            }
        }
        if seen.is_empty() {
            continue;
        }
        let command = fs::read_to_string(base.join("comm"))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default();
        for (name, (open, mapped)) in seen {
            by_name.entry(name.clone()).or_default().push(ProcUser {
                pid,
                command: command.clone(),
                open,
                mapped,
            });
        }
    }
    for hs in by_name.values_mut() {
        hs.sort_by_key(|h| h.pid);
    }
    by_name
}

/// Removing the stale names of this user (module docs, "Crashes"): what
/// crashed holders left, with their memory, before anyone meets the name.
pub(crate) mod sweep {
    use std::collections::HashMap;
    use std::os::fd::OwnedFd;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

    use super::super::posix::stat_id;
    use super::{ofd_lock, proc_users, same_file, unlink_named, Lock, MARK_TRANSIENT, SHM_DIR};

    /// At most one sweep per process in this time.
    pub(crate) const INTERVAL: Duration = Duration::from_secs(60);
    /// A sweep looks at no more entries of `/dev/shm` than this...
    const MAX_ENTRIES: usize = 4096;
    /// ...locks no more stale candidates at once than this...
    const MAX_CANDIDATES: usize = 256;
    /// ...and stops looking for more after this long.
    const MAX_TIME: Duration = Duration::from_millis(20);

    static LAST: Mutex<Option<Instant>> = Mutex::new(None);

    /// What a sweep did.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Swept {
        /// Entries of `/dev/shm` looked at.
        pub examined: usize,
        /// Stale names removed.
        pub removed: usize,
    }

    /// Sweeps if this process has not in the last [`INTERVAL`] and
    /// `FILEMAP_SWEEP` is not `0` or `off`.
    pub(crate) fn now_and_then() {
        if matches!(std::env::var("FILEMAP_SWEEP").as_deref(), Ok("0" | "off")) {
            return;
        }
        {
            let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        let _ = sweep();
    }

    /// One bounded sweep. A name is removed when it is a regular file in
    /// `/dev/shm` owned by this user with the transient mark, no process
    /// holds it (this process gets the exclusive lock, as a releaser or an
    /// opener removing a stale name does, and keeps it until the end), and no
    /// other process has it open or mapped either (a foreign program such as
    /// Python may map it without filemap's lock: `filemap clean` keeps such
    /// objects too). One `/proc` scan serves every candidate, and only when
    /// there is one.
    pub(crate) fn sweep() -> Swept {
        let started = Instant::now();
        let me = rustix::process::geteuid().as_raw();
        let mut done = Swept::default();
        let Ok(dir) = rfs::open(
            SHM_DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return done;
        };
        let Ok(entries) = rfs::Dir::read_from(&dir) else {
            return done;
        };
        // This user's transient objects, by name: names first, then the
        // shadows (`shadow.rs`) whose name is gone (a shadow beside its
        // name goes with it).
        let mut found: Vec<(String, (u64, u64))> = Vec::new();
        let mut shadows: Vec<(String, (u64, u64))> = Vec::new();
        for e in entries.flatten() {
            if done.examined >= MAX_ENTRIES || started.elapsed() >= MAX_TIME {
                break;
            }
            done.examined += 1;
            let Ok(name) = e.file_name().to_str() else {
                continue;
            };
            let shadow = super::super::shadow::is_shadow_name(name);
            if name.starts_with('.') && !shadow {
                continue;
            }
            let Ok(st) = rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
                || st.st_mode & MARK_TRANSIENT == 0
                || st.st_uid != me
            {
                continue;
            }
            let entry = (format!("{SHM_DIR}/{name}"), stat_id(&st));
            if shadow {
                shadows.push(entry);
            } else {
                found.push(entry);
            }
        }
        let named: std::collections::HashSet<(u64, u64)> = found.iter().map(|f| f.1).collect();
        found.extend(shadows.into_iter().filter(|s| !named.contains(&s.1)));
        // Unheld candidates, each locked exclusively until decided.
        let mut locked: Vec<(String, (u64, u64), OwnedFd)> = Vec::new();
        for (path, id) in found {
            if locked.len() >= MAX_CANDIDATES || started.elapsed() >= MAX_TIME {
                break;
            }
            let Ok(fd) = rfs::open(
                path.as_str(),
                OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
                Mode::empty(),
            ) else {
                continue;
            };
            if !matches!(rfs::fstat(&fd), Ok(now) if stat_id(&now) == id) {
                continue;
            }
            // Refused: someone holds it. Got: nobody does, and nobody can
            // start to (an opener waits) while this process decides.
            if ofd_lock(&fd, Lock::Exclusive).is_ok() {
                locked.push((path, id, fd));
            }
        }
        if locked.is_empty() {
            return done;
        }
        let index: HashMap<(u64, u64), (u64, u64)> =
            locked.iter().map(|(_, id, _)| (*id, *id)).collect();
        let used = proc_users(&index);
        for (path, id, fd) in locked {
            if !used.contains_key(&id) && same_file(&path, id) && unlink_named(&path, id).is_ok() {
                done.removed += 1;
            }
            drop(fd);
        }
        done
    }
}

/// Removes the name `path` of the object `id`, its shadow first (`shadow.rs`:
/// so that no holder puts back what filemap removes).
pub(crate) fn unlink_named(path: &str, id: (u64, u64)) -> rustix::io::Result<()> {
    super::shadow::remove(path, id);
    rfs::unlink(path)
}

/// True when `path` currently names the file with identity `id`.
fn same_file(path: &str, id: (u64, u64)) -> bool {
    matches!(rfs::lstat(path), Ok(st) if stat_id(&st) == id)
}

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
fn whole_file(typ: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all zeroes is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // to the end of the file, however it grows
    fl
}

pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Mode bit marking a transient filemap object (`S_ISVTX`, meaningless on a
/// regular file otherwise).
pub(crate) const MARK_TRANSIENT: u32 = 0o1000;
/// Mode bit marking a persistent filemap object (`S_ISGID` without group
/// execute, which Linux gives no meaning since mandatory locking was removed).
pub(crate) const MARK_PERSISTENT: u32 = 0o2000;

fn shm_path(n: &Name) -> String {
    format!("{SHM_DIR}/{}", n.base)
}

/// Outcome of trying to join an existing named object.
enum Join {
    Live(Object),
    /// It was not there, or it was stale and has been removed.
    Gone,
}

/// Opens `path` and joins it as a holder (module docs, "Opening").
fn join(n: &Name, access: Access, deadline: Instant, started: Instant) -> Result<Join> {
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
                if super::shadow::restore_for_opener(&path) {
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
            super::shadow::hold(&path, id);
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
fn read_only_flags(flags: OFlags) -> OFlags {
    (flags - OFlags::RWMODE) | OFlags::RDONLY
}

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

/// Mode bit marking a filemap object made with `Options::reserve`: its pages
/// are committed by `commit` (owner execute, which filemap never gives a
/// shared-memory object otherwise; it counts only beside a lifetime mark).
pub(crate) const MARK_RESERVED: u32 = 0o100;

/// Mode bit marking a filemap object made with `Options::large_pages`
/// (group execute, with the same rule as `MARK_RESERVED`): every view asks
/// for transparent huge pages.
pub(crate) const MARK_LARGE: u32 = 0o010;

/// The pages a named object of mode `mode` asks for.
fn large_of_mode(mode: u32) -> Large {
    if mode & MARK_LARGE != 0 && mode & (MARK_TRANSIENT | MARK_PERSISTENT) != 0 {
        Large::Transparent(pmd_size())
    } else {
        Large::No
    }
}

/// The pages a descriptor handed to this process is backed by: a
/// `hugetlbfs` file (a huge-page memfd) has huge pages of its block size.
pub(super) fn large_of_fd(fd: BorrowedFd<'_>) -> Large {
    const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
    match (rfs::fstatfs(fd), rfs::fstat(fd)) {
        #[allow(clippy::unnecessary_cast)]
        (Ok(fs), Ok(st)) if fs.f_type as i64 == HUGETLBFS_MAGIC => {
            Large::Hugetlb(st.st_blksize as u64)
        }
        _ => Large::No,
    }
}

/// Asks for transparent huge pages in a mapping (`MADV_HUGEPAGE`); a
/// refusal only costs speed, so it is not reported.
///
/// # Safety
/// `base..base + len` is a mapping this process made.
pub(super) unsafe fn advise_huge(base: *mut std::ffi::c_void, len: usize) {
    // SAFETY: the caller's promise; advice changes no byte.
    let _ = unsafe { rustix::mm::madvise(base, len, rustix::mm::Advice::LinuxHugepage) };
}

/// The size of a transparent huge page (a PMD): 2 MiB on x86-64.
fn pmd_size() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(2 << 20)
}

/// The settings the kernel reads for transparent huge pages in `/dev/shm`:
/// the mount's `huge=` option (absent: `never`), and the system-wide
/// override `/sys/kernel/mm/transparent_hugepage/shmem_enabled` (`deny`
/// or `force`). Ok when huge pages can back a named object, or why not.
pub(crate) fn transparent_huge_pages() -> std::result::Result<(), String> {
    const SYS: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
    let Ok(sys) = std::fs::read_to_string(SYS) else {
        return Err(format!(
            "on a kernel without transparent huge pages ({SYS} is missing)"
        ));
    };
    // The selected word is in brackets: "always within_size advise [never] deny force".
    let selected = sys
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or("never");
    match selected {
        "deny" => {
            return Err(format!(
                "while {SYS} is `deny` (which turns them off for all shared memory)"
            ))
        }
        "force" => return Ok(()),
        _ => {}
    }
    let huge = shm_mount_huge().unwrap_or_else(|| "never".into());
    match huge.as_str() {
        "always" | "within_size" | "advise" => Ok(()),
        other => Err(format!(
            "while {SHM_DIR} is mounted with huge={other} (remount it with huge=within_size \
             or huge=advise: `mount -o remount,huge=within_size {SHM_DIR}`; or set {SYS} to \
             `force`)"
        )),
    }
}

/// The `huge=` option of the mount at `/dev/shm` (the last one mounted
/// there), if it has one.
fn shm_mount_huge() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let mut fields = line.split(' ');
        if fields.nth(4) != Some(SHM_DIR) {
            continue;
        }
        let super_opts = line.split(" - ").nth(1)?.split(' ').nth(2).unwrap_or("");
        found = Some(
            super_opts
                .split(',')
                .find_map(|o| o.strip_prefix("huge="))
                .unwrap_or("never")
                .to_owned(),
        );
    }
    found
}

/// A memfd of `size` bytes (rounded up to whole huge pages) backed by the
/// huge pages set aside for `hugetlbfs` (`MFD_HUGETLB`), all reserved now.
pub(crate) fn anonymous_large(size: u64, obj: &str) -> Result<Object> {
    use rfs::{MemfdFlags, SealFlags};
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| meminfo_field(&meminfo, name);
    let total = field("HugePages_Total").unwrap_or(0);
    let free = field("HugePages_Free").unwrap_or(0);
    let page = field("Hugepagesize").unwrap_or(2048) * 1024;
    if total == 0 {
        return Err(Error::Unsupported {
            object: obj.to_owned(),
            what: "large pages for an unnamed mapping while no huge pages are set aside \
                   (/proc/sys/vm/nr_hugepages is 0; `sysctl vm.nr_hugepages=N` as root sets \
                   aside N)"
                .into(),
        });
    }
    let rounded = size.checked_next_multiple_of(page).unwrap_or(u64::MAX);
    if rounded / page > free {
        return Err(Error::NoSpace {
            object: obj.to_owned(),
            size: rounded,
            call: "reserve",
            source: std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!(
                    "{} huge pages of {page} bytes needed, {free} of {total} free                      (/proc/sys/vm/nr_hugepages)",
                    rounded / page
                ),
            ),
        });
    }
    let fd = rfs::memfd_create(
        "filemap",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING | MemfdFlags::HUGETLB,
    )
    .map_err(|e| Error::os(obj, "memfd_create(MFD_HUGETLB)", io(e)))?;
    rfs::ftruncate(&fd, rounded).map_err(|e| Error::os_sized(obj, rounded, "ftruncate", io(e)))?;
    rfs::fallocate(&fd, rfs::FallocateFlags::empty(), 0, rounded)
        .map_err(|e| Error::os_sized(obj, rounded, "fallocate", io(e)))?;
    rfs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .map_err(|e| Error::os(obj, "fcntl(F_ADD_SEALS)", io(e)))?;
    Ok(Object {
        fd: ManuallyDrop::new(fd),
        size: rounded,
        writable: true,
        large: Large::Hugetlb(page),
        kind: Kind::Anonymous,
    })
}

/// How many bytes of the mapping at `base` (made by this process) the
/// kernel maps with huge pages now (`/proc/self/smaps`: `ShmemPmdMapped`,
/// `FilePmdMapped`, `Shared_Hugetlb`, `Private_Hugetlb`).
pub(crate) fn huge_bytes(base: usize, len: usize, obj: &str) -> Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")
        .map_err(|e| Error::os(obj, "read /proc/self/smaps", e))?;
    let end = base.saturating_add(len);
    let mut total = 0u64;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap_or(0),
                usize::from_str_radix(b, 16).unwrap_or(0),
            );
            inside = a < end && b > base;
            continue;
        }
        if !inside {
            continue;
        }
        for field in [
            "ShmemPmdMapped:",
            "FilePmdMapped:",
            "Shared_Hugetlb:",
            "Private_Hugetlb:",
        ] {
            if let Some(v) = line.strip_prefix(field) {
                let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                total = total.saturating_add(kb * 1024);
            }
        }
    }
    Ok(total)
}

/// Whether a named object's `mode` marks it reserve-then-commit.
pub(super) fn reserved_mode(mode: u32) -> bool {
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
    let page = super::granularity();
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

/// Mode bit marking a file record (`S_ISUID`, meaningless on a
/// shared-memory object): the object's bytes say which file the name maps
/// (`record.rs`).
pub(crate) const MARK_FILE: u32 = 0o4000;

/// Gives the file `file` (at the absolute `path`, mapped as `mapped`) the
/// name `n`: creates its file record (module `record`) under the usual
/// lifetime protocol. With `open_existing`, a live name that maps the same
/// file is opened instead; one that maps anything else is a
/// [`Error::Conflict`].
pub(crate) fn create_named_file(
    n: &Name,
    mapped: Object,
    path: &str,
    p: &CreateParams,
    open_existing: bool,
) -> Result<(Object, Disposition)> {
    let obj = &n.given;
    let st = rfs::fstat(&*mapped.fd).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    let rec = super::record::Record {
        id: stat_id(&st),
        size: mapped.size,
        path: path.to_owned(),
    };
    if path.len() > super::record::MAX_PATH {
        return Err(Error::InvalidSize {
            object: obj.clone(),
            reason: format!(
                "the file's path is {} bytes, more than the {} a name can record",
                path.len(),
                super::record::MAX_PATH
            ),
        });
    }
    let bytes = super::record::encode(&rec);
    // Whoever may write a record chooses the file it names (`record.rs`,
    // "Trust"): only its owner may. Openers need only read it to hold it.
    let mut p = p.clone();
    p.mode &= 0o644;
    let p = &p;
    let (o, how) = create_link(n, p, open_existing, MARK_FILE, |fd| {
        let mut at = 0;
        while at < bytes.len() {
            at += rustix::io::pwrite(fd, &bytes[at..], at as u64)
                .map_err(|e| Error::os(obj, "pwrite", io(e)))?;
        }
        Ok(bytes.len() as u64)
    })?;
    if how == Disposition::Created {
        let mut mapped = mapped;
        mapped.kind = Kind::NamedFile {
            record: Box::new(o),
            path: path.to_owned(),
        };
        return Ok((mapped, how));
    }
    // It exists: it must map this very file.
    let existing = if is_record(&o) {
        super::record::decode(&read_record(&o, obj)?).ok()
    } else {
        None
    };
    match existing {
        Some(r) if r.id == rec.id => Ok((follow(o, n, p.access)?, how)),
        Some(r) => Err(Error::Conflict {
            name: obj.clone(),
            reason: format!("it maps the file {} (not {path})", r.path),
        }),
        None => Err(Error::Conflict {
            name: obj.clone(),
            reason: format!("it is backed by memory, not by the file {path}"),
        }),
    }
}
/// Makes a new named object: an unnamed `O_TMPFILE` in `/dev/shm` that
/// `fill` gives its contents and size, then its mode (with the lifetime mark
/// and `mark`), then this process's shared lock, and only then its name
/// (module docs, "Creating"). An existing live name is joined with
/// `open_existing` (returned as it is: the caller follows a file record),
/// an error otherwise.
fn create_link(
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
        super::shadow::restore_for_opener(&path);
        match rfs::linkat(
            rfs::CWD,
            proc_path.as_str(),
            rfs::CWD,
            path.as_str(),
            rfs::AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) => {
                if !p.persistent {
                    super::shadow::create(&path, stat_id(&st));
                    super::shadow::hold(&path, stat_id(&st));
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

/// Whether the named object `o` is a file record (`MARK_FILE`).
fn is_record(o: &Object) -> bool {
    matches!(o.kind, Kind::Named { mode, .. } if mode & MARK_FILE != 0)
}

/// The bytes of the file record `o` (at most `record::MAX_LEN`).
fn read_record(o: &Object, obj: &str) -> Result<Vec<u8>> {
    let want = (o.size as usize).min(super::record::MAX_LEN);
    let mut buf = vec![0u8; want];
    let mut at = 0;
    while at < want {
        match rustix::io::pread(&*o.fd, &mut buf[at..], at as u64) {
            Ok(0) => break,
            Ok(k) => at += k,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os(obj, "pread", io(e))),
        }
    }
    buf.truncate(at);
    Ok(buf)
}

/// The object to use for the live named object `o`: `o` itself, or, for a
/// file record, the file it names, opened with `access` (the opener needs
/// the file's own permissions), holding `o` to keep the name alive.
fn follow(o: Object, n: &Name, access: Access) -> Result<Object> {
    if !is_record(&o) {
        return Ok(o);
    }
    let obj = &n.given;
    let rec = super::record::decode(&read_record(&o, obj)?).map_err(|why| Error::Corrupt {
        object: obj.clone(),
        reason: format!("its file record is unreadable: {why}"),
    })?;
    let changed = |reason: String| Error::FileChanged {
        object: obj.clone(),
        path: rec.path.clone(),
        reason,
    };
    let denied = |e: Errno| Error::AccessDenied {
        object: obj.clone(),
        reason: format!(
            "opening its file {} {}: {} (a file mapping is opened with the file's own \
             permissions)",
            rec.path,
            match access {
                Access::Read => "for reading",
                Access::ReadWrite => "for reading and writing",
            },
            io(e)
        ),
    };
    // First a handle that opens nothing (`O_PATH`: no device is opened, no
    // FIFO waited on), to check what stands at the path and whether the
    // record may name it, before the file is opened for `access`.
    let at = rfs::open(
        rec.path.as_str(),
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT | Errno::NOTDIR => changed("the file no longer exists".into()),
        Errno::ACCESS | Errno::PERM => denied(e),
        Errno::LOOP => changed("a symbolic link now stands at its path".into()),
        e => Error::os(obj, "open(O_PATH)", io(e)),
    })?;
    let st = rfs::fstat(&at).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    if !is_regular(&st) || stat_id(&st) != rec.id {
        return Err(changed(format!(
            "another file now stands at that path ({}, device and inode {}:{}, recorded {}:{})",
            file_kind(&st),
            stat_id(&st).0,
            stat_id(&st).1,
            rec.id.0,
            rec.id.1
        )));
    }
    // A name grants no more than its creator could open (`record.rs`, "Trust").
    let rst = rfs::fstat(&*o.fd).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    let parties = super::record::Parties {
        record_uid: rst.st_uid,
        record_mode: rst.st_mode,
        file_uid: st.st_uid,
        file_mode: st.st_mode,
        opener_uid: rustix::process::geteuid().as_raw(),
    };
    super::record::trust(parties, access == Access::ReadWrite).map_err(|why| {
        Error::AccessDenied {
            object: obj.clone(),
            reason: format!(
                "it names the file {} (owned by {}), but {why}; the record's owner is {}",
                rec.path,
                user_label(st.st_uid),
                user_label(rst.st_uid)
            ),
        }
    })?;
    // Now open that very inode for `access`, with this process's rights.
    let flags = match access {
        Access::Read => OFlags::RDONLY,
        Access::ReadWrite => OFlags::RDWR,
    } | OFlags::CLOEXEC
        | OFlags::NONBLOCK;
    let fd = rfs::open(
        format!("/proc/self/fd/{}", at.as_raw_fd()).as_str(),
        flags,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ACCESS | Errno::PERM | Errno::ROFS => denied(e),
        e => Error::os(obj, "open", io(e)),
    })?;
    let st = rfs::fstat(&fd).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    if (st.st_size as u64) < rec.size {
        return Err(changed(format!(
            "it is now {} bytes, smaller than the mapping's {}",
            st.st_size, rec.size
        )));
    }
    Ok(Object {
        fd: ManuallyDrop::new(fd),
        size: rec.size,
        writable: access == Access::ReadWrite,
        large: Large::No,
        kind: Kind::NamedFile {
            record: Box::new(o),
            path: rec.path,
        },
    })
}

/// `name (uid N)`, or `uid N` where `/etc/passwd` does not name the user.
pub(crate) fn user_label(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
        })
    });
    match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// Removes the name (like `shm_unlink`); holders keep their memory.
pub(crate) fn remove_named(n: &Name) -> Result<()> {
    let path = shm_path(n);
    // Its shadow first, so that no holder puts the name back (`shadow.rs`).
    if let Ok(st) = rfs::lstat(path.as_str()) {
        super::shadow::remove(&path, stat_id(&st));
    }
    rfs::unlink(path.as_str()).map_err(|e| Error::os(&n.given, "unlink", io(e)))
}

/// A memfd of `size` bytes, its pages reserved and its size sealed.
pub(crate) fn anonymous(size: u64, obj: &str) -> Result<Object> {
    use rfs::{MemfdFlags, SealFlags};
    let fd = rfs::memfd_create("filemap", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| Error::os(obj, "memfd_create", io(e)))?;
    rfs::ftruncate(&fd, size).map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
    reserve(&fd, size, obj)?;
    // Nobody (the child included) can shrink it under our views and cause SIGBUS.
    rfs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .map_err(|e| Error::os(obj, "fcntl(F_ADD_SEALS)", io(e)))?;
    Ok(Object {
        fd: ManuallyDrop::new(fd),
        size,
        writable: true,
        large: Large::No,
        kind: Kind::Anonymous,
    })
}

/// Reserves every page of a new object of `size` bytes (`fallocate`), so
/// that running out of memory is an error now, not SIGBUS on first touch.
/// Sizes the system cannot give are refused before anything is reserved:
/// memfd has no cap, and `/dev/shm` may allow more than there is memory, so
/// `fallocate` would otherwise push the machine toward the OOM killer.
fn reserve(fd: &OwnedFd, size: u64, obj: &str) -> Result<()> {
    check_memory(size, obj)?;
    rfs::fallocate(fd, rfs::FallocateFlags::empty(), 0, size)
        .map_err(|e| Error::os_sized(obj, size, "fallocate", io(e)))
}

/// Refuses `size` bytes the system plainly cannot give (see `reserve`).
fn check_memory(size: u64, obj: &str) -> Result<()> {
    let exact = if plainly_fits(size) {
        None
    } else {
        memory_available()
    };
    if let Some(available) = exact {
        if size > available {
            return Err(Error::NoSpace {
                object: obj.to_owned(),
                size,
                call: "reserve",
                source: std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!(
                        "{size} bytes asked for, but the system can give about {available} \
                         (available memory and free swap, within this process's cgroup limit)"
                    ),
                ),
            });
        }
    }
    Ok(())
}

/// Bytes of memory the system can still give: `MemAvailable` plus
/// `SwapFree` (`/proc/meminfo`), and no more than what is left under this
/// process's cgroup v2 `memory.max`. `None` when none of that can be read.
pub(crate) fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| meminfo_field(&meminfo, name).map(|kb| kb.saturating_mul(1024));
    let system = field("MemAvailable")?.saturating_add(field("SwapFree").unwrap_or(0));
    Some(match cgroup_room() {
        Some(room) => system.min(room),
        None => system,
    })
}

/// The number of the `/proc/meminfo` line `name:` (kB for sizes; a count
/// for `HugePages_*`).
fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A cheap test that `size` is far below what the system can give, so that
/// the exact reading of `/proc` (tens of microseconds: more than making a
/// small object) can be skipped: a quarter of free memory and swap
/// (`sysinfo`, one system call), and a sixteenth of the cgroup's limit
/// (read once per process).
fn plainly_fits(size: u64) -> bool {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let si = rustix::system::sysinfo();
    let unit = u64::from(si.mem_unit.max(1));
    // `unsigned long` in the kernel: 32 bits on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(si.freeram)
        .saturating_add(u64::from(si.freeswap))
        .saturating_mul(unit);
    let limit = *LIMIT.get_or_init(|| cgroup_memory().map(|(max, _)| max));
    size <= free / 4 && limit.is_none_or(|l| size <= l / 16)
}

/// What is left under this process's cgroup memory limit, if it has one.
fn cgroup_room() -> Option<u64> {
    cgroup_memory().map(|(max, used)| max.saturating_sub(used))
}

/// This process's cgroup memory limit and usage, if it has a limit: v2's
/// `memory.max` and `memory.current`, or v1's `memory.limit_in_bytes` and
/// `memory.usage_in_bytes` (v1 writes "no limit" as a number near 2^63).
fn cgroup_memory() -> Option<(u64, u64)> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read = |dir: &str, f: &str| -> Option<u64> {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let pair = |dir: &str, limit: &str, usage: &str| {
        let max = read(dir, limit).filter(|&m| m < 1 << 62)?; // v2 "max" does not parse
        Some((max, read(dir, usage)?))
    };
    for line in cg.lines() {
        if let Some(path) = line.strip_prefix("0::") {
            let dir = format!("/sys/fs/cgroup{}", path.trim());
            if let Some(p) = pair(&dir, "memory.max", "memory.current") {
                return Some(p);
            }
        } else if let Some((_, path)) = line
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once(':'))
            .filter(|(ctrl, _)| ctrl.split(',').any(|c| c == "memory"))
        {
            let dir = format!("/sys/fs/cgroup/memory{}", path.trim());
            if let Some(p) = pair(&dir, "memory.limit_in_bytes", "memory.usage_in_bytes") {
                return Some(p);
            }
        }
    }
    None
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
pub(super) fn reopen(
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

/// The start time of process `pid` in clock ticks since boot (`/proc/PID/stat`
/// field 22), which with the pid names a process uniquely (pids are reused);
/// `None` if it does not run (gone, or a zombie).
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

/// Sleeping and waking across processes on words of one segment: a futex on
/// the shared word (not PRIVATE, so it works across processes).
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
    pub(crate) fn wake(&self, _off: usize, word: &std::sync::atomic::AtomicU32, n: u32) {
        let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), n);
    }
}

/// Whether this kernel has `futex_waitv` (Linux 5.16+), and the
/// environment does not ask to behave as if it had not (`FILEMAP_NO_WAITV`).
/// Asked once: an empty list is `EINVAL` where the call exists, `ENOSYS`
/// where it does not.
pub(crate) fn waits_natively() -> bool {
    use rustix::thread::futex;
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::env::var_os("FILEMAP_NO_WAITV").is_none()
            && !matches!(
                futex::waitv(
                    &[],
                    futex::WaitvFlags::empty(),
                    None,
                    rustix::time::ClockId::Monotonic
                ),
                Err(Errno::NOSYS)
            )
    })
}

/// How many words one `futex_waitv` takes (`FUTEX_WAITV_MAX`).
const WAITV_MAX: usize = 128;

/// Sleeps until one of `words` moves or is woken, or `timeout` passes
/// (spurious returns allowed; callers re-check). One `futex_waitv` for up
/// to 127 words; for more, a thread per further 127 words, all woken
/// together through a private futex word when the first returns. Without
/// `futex_waitv` (Linux before 5.16) it polls: sleeps of at most 1 ms.
pub(crate) fn wait_any(words: &[super::WaitWord<'_>], timeout: Duration) {
    use std::sync::atomic::AtomicU32;
    if words.iter().any(|w| w.moved()) {
        return;
    }
    if let [w] = words {
        return w.parker.wait(w.off, w.word, w.expected, timeout);
    }
    if !waits_natively() {
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
        return;
    }
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let add = |t: rustix::time::Timespec| {
        let nanos = (t.tv_nsec as u64).saturating_add(u64::from(timeout.subsec_nanos()));
        rustix::thread::futex::Timespec {
            tv_sec: t
                .tv_sec
                .saturating_add(timeout.as_secs().min(i64::MAX as u64 / 2) as i64)
                .saturating_add((nanos / 1_000_000_000) as i64),
            tv_nsec: (nanos % 1_000_000_000) as _,
        }
    };
    let until = add(now);
    let cancel = AtomicU32::new(0);
    let chunk = WAITV_MAX - 1;
    let wait_chunk = |part: &[super::WaitWord<'_>]| {
        use rustix::thread::futex::{self, Wait, WaitFlags, WaitPtr};
        let mut list: Vec<Wait> = part
            .iter()
            .map(|w| {
                let mut e = Wait::new();
                e.val = u64::from(w.expected);
                e.uaddr = WaitPtr::new(w.word.as_ptr().cast());
                e.flags = WaitFlags::SIZE_U32;
                e
            })
            .collect();
        let mut c = Wait::new();
        c.uaddr = WaitPtr::new(cancel.as_ptr().cast());
        c.flags = WaitFlags::SIZE_U32 | WaitFlags::PRIVATE;
        list.push(c);
        // Returns on a wake-up, a word that differs (EAGAIN), the absolute
        // deadline (ETIMEDOUT) or a signal (EINTR): all mean "look again".
        let _ = futex::waitv(
            &list,
            futex::WaitvFlags::empty(),
            Some(&until),
            rustix::time::ClockId::Monotonic,
        );
        cancel.store(1, std::sync::atomic::Ordering::Release);
        let _ = futex::wake(&cancel, futex::Flags::PRIVATE, u32::MAX);
    };
    if words.len() <= chunk {
        return wait_chunk(words);
    }
    std::thread::scope(|s| {
        let mut parts = words.chunks(chunk);
        let first = parts.next().unwrap_or_default();
        for part in parts {
            let wait_chunk = &wait_chunk;
            // Without a thread this part is not waited on: the caller's
            // slice (and its re-check) still bounds how late it is seen.
            let _ = std::thread::Builder::new()
                .name("filemap-waitset".into())
                .spawn_scoped(s, move || wait_chunk(part));
        }
        wait_chunk(first);
    });
}

/// Whether this system offers cross-process barriers
/// (`MEMBARRIER_CMD_GLOBAL_EXPEDITED`) to this process. False when
/// `FILEMAP_NO_MEMBARRIER` is set (to anything) in the environment: the
/// process then behaves as if the system refused, which is how the fallback
/// is tested.
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
pub(crate) fn heavy_barrier() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    barriers_available() && membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}

/// The faulting address in the `siginfo_t` of a `SIGBUS` (for `sigbus.rs`).
///
/// # Safety
/// `info` points to the `siginfo_t` the kernel passed to a `SIGBUS` handler.
pub(super) unsafe fn fault_addr(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: for SIGBUS the union holds the fault fields (the caller's promise).
    unsafe { (*info).si_addr() as usize }
}

/// `MAP_FIXED_NOREPLACE`: place a view at an address, failing (`EEXIST`) rather
/// than replace what is mapped there (Linux 4.17+; older kernels take it as a
/// hint, which `posix::map` checks).
pub(super) const NO_REPLACE: rustix::mm::MapFlags = rustix::mm::MapFlags::FIXED_NOREPLACE;

/// Flags for sending a hand-over: no `SIGPIPE` for a closed peer where the
/// system offers that per call (Linux); elsewhere the error comes back and
/// the signal follows its disposition.
pub(super) const SEND_FLAGS: rustix::net::SendFlags = rustix::net::SendFlags::NOSIGNAL;

/// Flags for receiving a hand-over: received descriptors close on exec where
/// the system can do it at once (Linux); `receive_over` sets it otherwise.
pub(super) const RECV_FLAGS: rustix::net::RecvFlags = rustix::net::RecvFlags::CMSG_CLOEXEC;
