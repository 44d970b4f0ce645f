//! Which processes have a file open or mapped, from `/proc`.

use rustix::fs::{self as rfs};

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
