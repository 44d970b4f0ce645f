//! Names that a foreign tool removes are put back (Linux).
//!
//! Python's `multiprocessing.shared_memory.SharedMemory(name)` registers
//! every object it attaches to with its `resource_tracker`, which unlinks
//! the name when the Python process exits, even while filemap processes
//! hold the object. Later openers would get `NotFound` and a `create` would
//! make a second object under the name: two groups of processes that
//! believe they share memory and do not.
//!
//! An unlinked file cannot be linked again from a descriptor (the kernel
//! refuses a link to a file with no links left), so every transient object
//! gets a second link when it is made, its *shadow*, in `/dev/shm` too:
//! `.filemap-` and 16 hex digits of the name's FNV-1a hash. Then:
//!
//! - **Holders notice and restore.** Each process that holds a transient
//!   name has one thread (not one per object), started with its first such
//!   name, that reads `inotify` events for `/dev/shm`; when a name it holds
//!   is deleted (or renamed away), it links the shadow back under the name
//!   (`linkat`, which fails harmlessly if someone took the name meanwhile).
//!   Measured here (2 vCPUs), the name is back about 0.2 ms after the
//!   unlink; up to a few ms when the unlinking process keeps the CPU the
//!   thread wakes on busy.
//! - **Openers and creators restore too.** An open or create that finds the
//!   name missing looks at its shadow first: a shadow that someone holds
//!   (and that this user or root owns) is linked back, and the call goes on
//!   with that object; so no second object is made while a holder's thread
//!   has not yet acted.
//! - **A deliberate removal removes the shadow first.** Every filemap removal
//!   (the last holder letting go, a stale name swept, `Mapping::remove`,
//!   `filemap rm`, `filemap clean`) unlinks the shadow and then the name, so
//!   what filemap removes stays removed.
//!
//! Only transient objects get a shadow (a persistent one has POSIX
//! semantics: whoever unlinks it removes it). A shadow another user put at
//! the path first is left alone: the name then goes without one. Listing
//! (`inspect`, `filemap list`) does not show shadows.

use std::collections::HashMap;
use std::sync::{Mutex, Once};

use rustix::fs::{self as rfs, inotify, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::os::{ofd_held_by_others, MARK_TRANSIENT, SHM_DIR};
use super::posix::stat_id;

/// The prefix of a shadow's file name.
const PREFIX: &str = ".filemap-";

/// The shadow of the object at `path` (`/dev/shm/NAME`), or `None` for a
/// path outside `/dev/shm`.
pub(crate) fn shadow_of(path: &str) -> Option<String> {
    let base = path.strip_prefix(SHM_DIR)?.strip_prefix('/')?;
    Some(format!(
        "{SHM_DIR}/{PREFIX}{:016x}",
        crate::hash::fnv1a(base.bytes())
    ))
}

/// Whether the file name (in `/dev/shm`) is a shadow's.
pub(crate) fn is_shadow_name(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The identity of the file at `path`, if a regular file is there.
fn id_at(path: &str) -> Option<(u64, u64)> {
    let st = rfs::lstat(path).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then(|| stat_id(&st))
}

/// Gives the object `fd` (identity `id`, named `path`) its shadow. A stale
/// shadow left at the path (its holders died) is replaced; a live one or
/// another user's is left alone (the name then goes without a shadow).
pub(crate) fn create(path: &str, id: (u64, u64)) {
    let Some(shadow) = shadow_of(path) else {
        return;
    };
    for _ in 0..2 {
        // From the name just made (cheaper than through `/proc/self/fd`);
        // checked below, in case the name changed hands meanwhile.
        match rfs::linkat(rfs::CWD, path, rfs::CWD, shadow.as_str(), AtFlags::empty()) {
            Ok(()) if id_at(&shadow) != Some(id) => {
                // The name was replaced in between: not our shadow to keep.
                remove_foreign_link(&shadow);
                return;
            }
            Err(Errno::EXIST) => {
                // Gone meanwhile: try again.
                let Some(old) = id_at(&shadow) else { continue };
                if old == id || held(&shadow) != Some(false) {
                    return;
                }
                // Stale: nobody holds what it links. Unlinking needs the
                // lock too, as every removal of a transient object does.
                super::os::remove_if_unheld(&shadow, old);
            }
            _ => return,
        }
    }
}

/// Undoes a shadow link made to an object that is not ours (the name was
/// replaced between making it and linking the shadow): unlinked under the
/// lock, like any removal of a transient object, unless someone holds it.
fn remove_foreign_link(shadow: &str) {
    if let Some(other) = id_at(shadow) {
        if held(shadow) == Some(false) {
            super::os::remove_if_unheld(shadow, other);
        }
    }
}

/// Whether someone holds the object linked at `path` (`None`: nothing
/// there, or it cannot be opened to ask).
fn held(path: &str) -> Option<bool> {
    let fd = rfs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    ofd_held_by_others(&fd).ok()
}

/// Unlinks the shadow of `path` if it links the object `id`: the first step
/// of every deliberate removal (module docs).
pub(crate) fn remove(path: &str, id: (u64, u64)) {
    if let Some(shadow) = shadow_of(path) {
        if id_at(&shadow) == Some(id) {
            let _ = rfs::unlink(shadow.as_str());
        }
    }
}

/// Puts the name `path` back from its shadow, if the name is missing and
/// the shadow links a transient object that someone holds and that this
/// user or root owns (for an opener or creator that found the name
/// missing). True when the name is back (by this call or another).
pub(crate) fn restore_for_opener(path: &str) -> bool {
    let Some(shadow) = shadow_of(path) else {
        return false;
    };
    let Ok(st) = rfs::lstat(shadow.as_str()) else {
        return false;
    };
    let me = rustix::process::geteuid().as_raw();
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_mode & MARK_TRANSIENT == 0
        || (st.st_uid != me && st.st_uid != 0)
        || held(&shadow) != Some(true)
    {
        return false;
    }
    link_back(&shadow, path, stat_id(&st))
}

/// Links `shadow` (which must still be the object `id`) under `path`.
fn link_back(shadow: &str, path: &str, id: (u64, u64)) -> bool {
    if id_at(shadow) != Some(id) {
        return false;
    }
    match rfs::linkat(rfs::CWD, shadow, rfs::CWD, path, AtFlags::empty()) {
        Ok(()) => true,
        Err(Errno::EXIST) => id_at(path) == Some(id),
        Err(_) => false,
    }
}

/// The transient names this process holds: path → identities, each with
/// how many holds (a process may hold one name several times, and a newer
/// object under a name it once held).
static HELD: Mutex<Option<Held>> = Mutex::new(None);
static WATCH: Once = Once::new();

/// Path → (identity, holds).
type Held = HashMap<String, Vec<((u64, u64), usize)>>;

fn held_names() -> std::sync::MutexGuard<'static, Option<Held>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// This process now holds the transient object `id` at `path`: its name is
/// watched (the watching thread starts with the first).
pub(crate) fn hold(path: &str, id: (u64, u64)) {
    {
        let mut map = held_names();
        let ids = map
            .get_or_insert_with(HashMap::new)
            .entry(path.to_owned())
            .or_default();
        match ids.iter_mut().find(|(i, _)| *i == id) {
            Some((_, n)) => *n += 1,
            None => ids.push((id, 1)),
        }
    }
    WATCH.call_once(|| {
        // Without the thread, openers and creators still restore names.
        let _ = std::thread::Builder::new()
            .name("filemap-names".into())
            .spawn(watch);
    });
}

/// This process let go of one hold of `id` at `path`.
pub(crate) fn let_go(path: &str, id: (u64, u64)) {
    let mut map = held_names();
    let Some(map) = map.as_mut() else { return };
    if let Some(ids) = map.get_mut(path) {
        if let Some(k) = ids.iter().position(|(i, _)| *i == id) {
            ids[k].1 -= 1;
            if ids[k].1 == 0 {
                ids.swap_remove(k);
            }
        }
        if ids.is_empty() {
            map.remove(path);
        }
    }
}

/// Puts back every held name in `names` (all of them with `None`) that is
/// missing.
fn restore_held(names: Option<&[String]>) {
    let todo: Vec<(String, (u64, u64))> = {
        let map = held_names();
        let Some(map) = map.as_ref() else { return };
        let pick = |p: &String| names.is_none_or(|n| n.contains(p));
        map.iter()
            .filter(|(p, _)| pick(p))
            .flat_map(|(p, ids)| ids.iter().map(move |(id, _)| (p.clone(), *id)))
            .collect()
    };
    for (path, id) in todo {
        if id_at(&path).is_none() {
            if let Some(shadow) = shadow_of(&path) {
                link_back(&shadow, &path, id);
            }
        }
    }
}

/// The watching thread: `inotify` on `/dev/shm` for names deleted or
/// renamed away; each one this process holds is put back.
fn watch() {
    let Ok(fd) = inotify::init(inotify::CreateFlags::CLOEXEC) else {
        return;
    };
    if inotify::add_watch(
        &fd,
        SHM_DIR,
        inotify::WatchFlags::DELETE
            | inotify::WatchFlags::MOVED_FROM
            | inotify::WatchFlags::ONLYDIR,
    )
    .is_err()
    {
        return;
    }
    // Names deleted since the last look, which a watch started just now
    // could have missed.
    restore_held(None);
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
    let mut reader = inotify::Reader::new(&fd, &mut buf);
    let prefix = format!("{SHM_DIR}/");
    loop {
        let mut gone: Vec<String> = Vec::new();
        let mut overflow = false;
        loop {
            match reader.next() {
                Ok(ev) => {
                    if ev.events().contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
                        overflow = true;
                    } else if let Some(name) = ev.file_name().and_then(|n| n.to_str().ok()) {
                        if !is_shadow_name(name) {
                            gone.push(format!("{prefix}{name}"));
                        }
                    }
                }
                Err(Errno::INTR) => {}
                Err(_) => return,
            }
            if reader.is_buffer_empty() {
                break;
            }
        }
        if overflow {
            restore_held(None);
        } else if !gone.is_empty() {
            restore_held(Some(&gone));
        }
    }
}
