//! The *file record* that makes a file-backed mapping openable by name on
//! Linux (Windows names file-backed sections natively): a small named object
//! in `/dev/shm`, under the usual lifetime protocol, whose bytes say which
//! file the name maps. Marked by the set-user-ID bit in its mode (`MARK_FILE`
//! in `linux.rs`), which is meaningless on a shared-memory object.
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `FMFILE01` |
//! | 8..16 | the file's device (`st_dev`) |
//! | 16..24 | the file's inode (`st_ino`) |
//! | 24..32 | the mapping's size in bytes |
//! | 32..36 | length N of the path, 1..=4096 |
//! | 36..36+N | the file's absolute path (UTF-8) |
//! | 36+N..44+N | FNV-1a of every byte before it |
//!
//! Anyone who may write the record may write anything into it: decoding
//! checks every field, and an opener still needs the file's own
//! permissions and checks the file is the one recorded (device and inode).
//!
//! # Trust
//!
//! Anyone may create a file in `/dev/shm`, so a record may have been
//! written by hand by a user who may not write the file it names, to make a
//! more privileged opener write there for them. A record grants no more
//! than its creator could have opened ([`trust`]): it is followed only when
//! its owner is the opener, root, or the file's owner with the file's
//! owner permission bits for the access asked; and only when nobody but
//! its owner may write it (filemap makes records without group or other
//! write bits), since whoever may write it chooses the file. Anything else
//! is `AccessDenied`, naming the record's owner and the file. (Windows
//! needs none of this: a section holds a handle that its creator opened,
//! with the creator's rights.)

const MAGIC: &[u8; 8] = b"FMFILE01";
const FIXED: usize = 36;
/// The longest path a record holds (Linux's `PATH_MAX`).
pub(crate) const MAX_PATH: usize = 4096;
/// The largest record there is.
pub(crate) const MAX_LEN: usize = FIXED + MAX_PATH + 8;

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub id: (u64, u64),
    pub size: u64,
    pub path: String,
}

pub(crate) fn encode(r: &Record) -> Vec<u8> {
    let mut b = Vec::with_capacity(FIXED + r.path.len() + 8);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&r.id.0.to_le_bytes());
    b.extend_from_slice(&r.id.1.to_le_bytes());
    b.extend_from_slice(&r.size.to_le_bytes());
    b.extend_from_slice(&(r.path.len() as u32).to_le_bytes());
    b.extend_from_slice(r.path.as_bytes());
    let sum = crate::hash::fnv1a(b.iter().copied());
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// Reads a record, or says what is wrong with it.
pub(crate) fn decode(b: &[u8]) -> Result<Record, String> {
    let u64_at = |at: usize| {
        b.get(at..at + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
    };
    if b.len() < FIXED + 1 + 8 {
        return Err(format!("{} bytes is too short for a file record", b.len()));
    }
    if &b[..8] != MAGIC {
        return Err("it does not start with the file-record magic `FMFILE01`".into());
    }
    let n = u32::from_le_bytes(b[32..36].try_into().expect("4 bytes")) as usize;
    if n == 0 || n > MAX_PATH {
        return Err(format!("its path length {n} is not in 1..={MAX_PATH}"));
    }
    let end = FIXED + n;
    let sum = u64_at(end)
        .ok_or_else(|| format!("its path length {n} runs past its end ({} bytes)", b.len()))?;
    if crate::hash::fnv1a(b[..end].iter().copied()) != sum {
        return Err("its checksum does not match its contents (it was overwritten)".into());
    }
    let path = std::str::from_utf8(&b[FIXED..end])
        .map_err(|_| "its path is not UTF-8".to_string())?
        .to_owned();
    if !path.starts_with('/') || path.contains('\0') {
        return Err(format!("its path {path:?} is not an absolute path"));
    }
    Ok(Record {
        id: (u64_at(8).expect("fixed"), u64_at(16).expect("fixed")),
        size: u64_at(24).expect("fixed"),
        path,
    })
}

/// Who made a record and who wants to follow it: the record's owner and
/// mode, the file's owner and mode (from `fstat`), and the opener's
/// effective uid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parties {
    pub record_uid: u32,
    pub record_mode: u32,
    pub file_uid: u32,
    pub file_mode: u32,
    pub opener_uid: u32,
}

/// Whether a record may be followed for `write` (read-write) or read
/// access (module docs, "Trust"): `Err` says why not, naming the owner by
/// uid (the caller adds names and paths).
pub(crate) fn trust(p: Parties, write: bool) -> Result<(), String> {
    if p.record_mode & 0o022 != 0 {
        return Err(format!(
            "its record (mode {:04o}) may be written by users other than its owner, and any of \
             them could have chosen the file; filemap makes records writable by their owner only",
            p.record_mode & 0o777
        ));
    }
    if p.record_uid == p.opener_uid || p.record_uid == 0 {
        return Ok(());
    }
    if p.record_uid != p.file_uid {
        return Err(format!(
            "its record was made by uid {}, who is neither this user (uid {}), nor root, nor \
             the file's owner (uid {}): a name grants no more than its creator could open",
            p.record_uid, p.opener_uid, p.file_uid
        ));
    }
    let need = if write { 0o600 } else { 0o400 };
    if p.file_mode & need != need {
        return Err(format!(
            "its record was made by uid {}, the file's owner, whose permissions on the file \
             (mode {:04o}) do not allow {}",
            p.record_uid,
            p.file_mode & 0o7777,
            if write { "writing" } else { "reading" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_grants_no_more_than_its_creator_could_open() {
        let p = Parties {
            record_uid: 65534,
            record_mode: 0o6600,
            file_uid: 0,
            file_mode: 0o100644,
            opener_uid: 0,
        };
        // nobody's record naming root's file: refused for root, either access.
        assert!(trust(p, true).unwrap_err().contains("uid 65534"));
        assert!(trust(p, false).is_err());
        // The opener's own record, or root's: the opener's own rights apply.
        assert!(trust(
            Parties {
                opener_uid: 65534,
                ..p
            },
            true
        )
        .is_ok());
        assert!(trust(
            Parties {
                record_uid: 0,
                opener_uid: 1000,
                ..p
            },
            true
        )
        .is_ok());
        // The file's owner, within the owner bits of the file's mode.
        let owner = Parties {
            file_uid: 65534,
            ..p
        };
        assert!(trust(owner, true).is_ok());
        let read_only = Parties {
            file_mode: 0o100444,
            ..owner
        };
        assert!(trust(read_only, false).is_ok());
        assert!(trust(read_only, true).unwrap_err().contains("writing"));
        // A record others may write: whoever wrote it chose the file.
        let open_record = Parties {
            record_mode: 0o1666,
            ..owner
        };
        assert!(trust(open_record, false)
            .unwrap_err()
            .contains("other than its owner"));
        let own_open = Parties {
            record_mode: 0o1620,
            opener_uid: 65534,
            ..p
        };
        assert!(trust(own_open, false).is_err());
    }

    fn sample() -> Record {
        Record {
            id: (0x803, 123_456),
            size: 1 << 20,
            path: "/var/data/état.bin".into(),
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(decode(&encode(&sample())), Ok(sample()));
    }

    #[test]
    fn refuses_every_damage() {
        let good = encode(&sample());
        // Any single flipped byte is caught (magic, fields, path or sum).
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "byte {i} flipped was accepted");
        }
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut} was accepted");
        }
        let mut long = good.clone();
        long[32..36].copy_from_slice(&(MAX_PATH as u32 + 1).to_le_bytes());
        assert!(decode(&long).unwrap_err().contains("not in 1..="));
        let rel = Record {
            path: "relative/p".into(),
            ..sample()
        };
        assert!(decode(&encode(&rel)).unwrap_err().contains("absolute"));
    }
}
