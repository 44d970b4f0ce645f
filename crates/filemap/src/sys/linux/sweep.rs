//! Removing the stale names of this user (module docs, "Crashes"): what
//! crashed holders left, with their memory, before anyone meets the name.

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
    sweep();
}

/// One bounded sweep. A name is removed when it is a regular file in
/// `/dev/shm` owned by this user with the transient mark, no process
/// holds it (this process gets the exclusive lock, as a releaser or an
/// opener removing a stale name does, and keeps it until the end), and no
/// other process has it open or mapped either (a foreign program such as
/// Python may map it without filemap's lock: `filemap clean` keeps such
/// objects too). One `/proc` scan serves every candidate, and only when
/// there is one.
pub(crate) fn sweep() {
    let started = Instant::now();
    let me = rustix::process::geteuid().as_raw();
    let Ok(dir) = rfs::open(
        SHM_DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let Ok(entries) = rfs::Dir::read_from(&dir) else {
        return;
    };
    // This user's transient objects, by name: names first, then the
    // shadows (`shadow.rs`) whose name is gone (a shadow beside its
    // name goes with it).
    let mut found: Vec<(String, (u64, u64))> = Vec::new();
    let mut shadows: Vec<(String, (u64, u64))> = Vec::new();
    for e in entries.flatten().take(MAX_ENTRIES) {
        if started.elapsed() >= MAX_TIME {
            break;
        }
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
        return;
    }
    let index: HashMap<(u64, u64), (u64, u64)> =
        locked.iter().map(|(_, id, _)| (*id, *id)).collect();
    let used = proc_users(&index);
    for (path, id, fd) in locked {
        if !used.contains_key(&id) && same_file(&path, id) {
            let _ = unlink_named(&path, id);
        }
        // The exclusive lock goes only now, after the unlink.
        drop(fd);
    }
}
