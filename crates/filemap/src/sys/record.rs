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

#[cfg(test)]
mod tests {
    use super::*;

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
