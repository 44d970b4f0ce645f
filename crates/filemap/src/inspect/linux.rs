//! Linux: what `/dev/shm` holds and which processes use it, from `/proc`.
//! Backs the public `inspect` module. No `unsafe` here; the lifetime protocol
//! it reads (mode marks, the shared open-file-description lock per holder)
//! is `sys`'s.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use rustix::fs::{self as rfs, Mode, OFlags};

use super::{Cleaned, Holder, ObjectInfo, Origin, State};
use crate::error::{Error, Result};
use crate::mapping::Backing;
use crate::name::Name;
use crate::segment::{parse_header, HEADER_LEN};
use crate::sys::{
    ofd_held_by_others, ofd_lock, Lock, MARK_FILE, MARK_PERSISTENT, MARK_TRANSIENT, SHM_DIR,
};

/// (device, inode) of a file, the key holders are matched by: a filemap object's
/// descriptors and maps show its creation-time path (`/dev/shm/#123 (deleted)`,
/// as it was made with `O_TMPFILE`), so names cannot be matched.
type Key = (u64, u64);

fn key(md: &fs::Metadata) -> Key {
    (md.dev(), md.ino())
}

/// Holders of the objects in `index`, by name, from every readable
/// `/proc/PID` (the scan is `sys`'s, which the stale-name sweep uses too).
fn scan_holders(index: &HashMap<Key, String>) -> HashMap<String, Vec<Holder>> {
    crate::sys::proc_users(index)
        .into_iter()
        .map(|(name, users)| {
            let hs = users
                .into_iter()
                .map(|u| Holder {
                    pid: u.pid,
                    command: u.command,
                    open: u.open,
                    mapped: u.mapped,
                })
                .collect();
            (name, hs)
        })
        .collect()
}

fn origin(mode: u32) -> Origin {
    if mode & MARK_TRANSIENT != 0 {
        Origin::Transient
    } else if mode & MARK_PERSISTENT != 0 {
        Origin::Persistent
    } else {
        Origin::Foreign
    }
}

/// Opens `path` to look at it, never blocking (anyone can put a FIFO in
/// `/dev/shm`) nor following a link, and only if it is a regular file.
fn open_to_look(path: &str) -> Option<rustix::fd::OwnedFd> {
    let fd = rfs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let st = rfs::fstat(&fd).ok()?;
    (rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile).then_some(fd)
}

/// Whether some process holds the filemap lock on the object at `path`;
/// `None` when this process may not open it to check.
fn lock_held(path: &str) -> Option<bool> {
    let fd = open_to_look(path)?;
    ofd_held_by_others(&fd).ok()
}

/// The first bytes of the file at `path` (as many as a segment header), read
/// without locking or mapping it.
fn read_start(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; HEADER_LEN];
    let mut f = fs::File::from(open_to_look(path)?);
    f.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// The file record at `path` (a named file mapping), if it reads as one.
fn read_record(path: &str) -> Option<crate::sys::record::Record> {
    use std::io::Read;
    let mut buf = Vec::new();
    fs::File::from(open_to_look(path)?)
        .take(crate::sys::record::MAX_LEN as u64)
        .read_to_end(&mut buf)
        .ok()?;
    crate::sys::record::decode(&buf).ok()
}

fn describe(
    name: &str,
    md: &fs::Metadata,
    holders: Vec<Holder>,
    users: &HashMap<u32, String>,
) -> ObjectInfo {
    let origin = origin(md.mode());
    let path = format!("{SHM_DIR}/{name}");
    let state = match origin {
        Origin::Foreign => State::Foreign,
        _ if !holders.is_empty() => State::Live,
        _ => match lock_held(&path) {
            Some(true) => State::Live,
            // Not permitted to open it (another user's 0600 object): whether
            // a process holds it cannot be told from here.
            None => State::Unknown,
            Some(false) if origin == Origin::Transient => State::Stale,
            Some(false) => State::Idle,
        },
    };
    let record = (md.mode() & MARK_FILE != 0)
        .then(|| read_record(&path))
        .flatten();
    let untrusted = record.as_ref().and_then(|r| {
        let file = fs::symlink_metadata(&r.path).ok()?;
        let parties = crate::sys::record::Parties {
            record_uid: md.uid(),
            record_mode: md.mode(),
            file_uid: file.uid(),
            file_mode: file.mode(),
            opener_uid: rustix::process::geteuid().as_raw(),
        };
        crate::sys::record::trust(parties, true).err()
    });
    let (backing, size, file) = match record {
        Some(r) => (Backing::File, r.size, Some(r.path)),
        None => (Backing::Memory, md.len(), None),
    };
    ObjectInfo {
        header: read_start(&path).and_then(|b| parse_header(&b)),
        name: name.to_owned(),
        size,
        file,
        untrusted,
        uid: md.uid(),
        user: users.get(&md.uid()).cloned(),
        mode: md.mode() & 0o777,
        backing,
        origin,
        state,
        holders,
    }
}

pub(super) fn list() -> Result<Vec<ObjectInfo>> {
    let entries = fs::read_dir(SHM_DIR).map_err(|e| Error::os(SHM_DIR, "opendir", e))?;
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Ok(md) = e.path().symlink_metadata() else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        // A transient object's second link (`sys/shadow.rs`) is not an object.
        if md.is_file() && !crate::sys::shadow::is_shadow_name(&name) {
            found.push((name, md));
        }
    }
    let index = found.iter().map(|(n, md)| (key(md), n.clone())).collect();
    let mut holders = scan_holders(&index);
    let users = crate::sys::users();
    let mut out = Vec::new();
    for (name, md) in &found {
        let hs = holders.remove(name).unwrap_or_default();
        out.push(describe(name, md, hs, &users));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub(super) fn info(n: &Name) -> Result<ObjectInfo> {
    let path = format!("{SHM_DIR}/{}", n.base);
    let md = fs::symlink_metadata(&path).map_err(|e| Error::os(&n.given, "lstat", e))?;
    if !md.is_file() {
        return Err(Error::NotFound {
            name: n.given.clone(),
        });
    }
    let index = HashMap::from([(key(&md), n.base.clone())]);
    let hs = scan_holders(&index).remove(&n.base).unwrap_or_default();
    Ok(describe(&n.base, &md, hs, &crate::sys::users()))
}

pub(super) fn remove_if_stale(n: &Name) -> Result<Cleaned> {
    let path = format!("{SHM_DIR}/{}", n.base);
    let obj = &n.given;
    // Read-write: the exclusive lock held while deciding needs write access.
    let fd = rfs::open(
        path.as_str(),
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::os(
            obj,
            "open",
            std::io::Error::from_raw_os_error(e.raw_os_error()),
        )
    })?;
    let md = fs::symlink_metadata(&path).map_err(|e| Error::os(obj, "lstat", e))?;
    match origin(md.mode()) {
        Origin::Foreign => return Ok(Cleaned::Kept("not created by filemap".into())),
        Origin::Persistent => {
            return Ok(Cleaned::Kept(
                "persistent: it stays until `filemap rm`".into(),
            ))
        }
        Origin::Transient => {}
    }
    // Hold the exclusive lock while deciding and removing, as every filemap
    // process does (see sys/linux.rs), so no new holder can slip in.
    if ofd_lock(&fd, Lock::Exclusive).is_err() {
        return Ok(Cleaned::Kept("held by a live filemap process".into()));
    }
    let index = HashMap::from([(key(&md), n.base.clone())]);
    if let Some(h) = scan_holders(&index)
        .remove(&n.base)
        .and_then(|hs| hs.into_iter().next())
    {
        let how = if h.mapped { "mapped" } else { "open" };
        return Ok(Cleaned::Kept(format!(
            "{how} by pid {} ({})",
            h.pid, h.command
        )));
    }
    let st = rfs::fstat(&fd).map_err(|e| {
        Error::os(
            obj,
            "fstat",
            std::io::Error::from_raw_os_error(e.raw_os_error()),
        )
    })?;
    #[allow(clippy::unnecessary_cast)]
    if (st.st_dev as u64, st.st_ino as u64) != key(&md) {
        return Ok(Cleaned::Kept("it was replaced while being checked".into()));
    }
    crate::sys::unlink_named(&path, key(&md)).map_err(|e| {
        Error::os(
            obj,
            "unlink",
            std::io::Error::from_raw_os_error(e.raw_os_error()),
        )
    })?;
    Ok(Cleaned::Removed)
}
