//! Named file mappings: a file record in `/dev/shm` names the file
//! (`sys/record.rs` has its format and trust rules).

use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::name::Name;
use crate::sys::posix::{file_kind, io, is_regular, stat_id, Kind, Large, Object};
use crate::types::{Access, CreateParams, Disposition};

use super::*;

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
    let rec = crate::sys::record::Record {
        id: stat_id(&st),
        size: mapped.size,
        path: path.to_owned(),
    };
    if path.len() > crate::sys::record::MAX_PATH {
        return Err(Error::InvalidSize {
            object: obj.clone(),
            reason: format!(
                "the file's path is {} bytes, more than the {} a name can record",
                path.len(),
                crate::sys::record::MAX_PATH
            ),
        });
    }
    let bytes = crate::sys::record::encode(&rec);
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
        crate::sys::record::decode(&read_record(&o, obj)?).ok()
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
/// Whether the named object `o` is a file record (`MARK_FILE`).
pub(super) fn is_record(o: &Object) -> bool {
    matches!(o.kind, Kind::Named { mode, .. } if mode & MARK_FILE != 0)
}

/// The bytes of the file record `o` (at most `record::MAX_LEN`).
pub(super) fn read_record(o: &Object, obj: &str) -> Result<Vec<u8>> {
    let want = (o.size as usize).min(crate::sys::record::MAX_LEN);
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
pub(super) fn follow(o: Object, n: &Name, access: Access) -> Result<Object> {
    if !is_record(&o) {
        return Ok(o);
    }
    let obj = &n.given;
    let rec = crate::sys::record::decode(&read_record(&o, obj)?).map_err(|why| Error::Corrupt {
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
    let parties = crate::sys::record::Parties {
        record_uid: rst.st_uid,
        record_mode: rst.st_mode,
        file_uid: st.st_uid,
        file_mode: st.st_mode,
        opener_uid: rustix::process::geteuid().as_raw(),
    };
    crate::sys::record::trust(parties, access == Access::ReadWrite).map_err(|why| {
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
    match users().remove(&uid) {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// User names by uid, from `/etc/passwd` (empty where it cannot be read).
pub(crate) fn users() -> std::collections::HashMap<u32, String> {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}
