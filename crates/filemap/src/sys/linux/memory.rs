//! Unnamed objects (memfd) and what memory the system can give.

use std::mem::ManuallyDrop;
use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs};

use crate::error::{Error, Result};
use crate::sys::posix::{io, Kind, Large, Object};

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
pub(super) fn reserve(fd: &OwnedFd, size: u64, obj: &str) -> Result<()> {
    check_memory(size, obj)?;
    rfs::fallocate(fd, rfs::FallocateFlags::empty(), 0, size)
        .map_err(|e| Error::os_sized(obj, size, "fallocate", io(e)))
}

/// Refuses `size` bytes the system plainly cannot give (see `reserve`).
pub(super) fn check_memory(size: u64, obj: &str) -> Result<()> {
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
pub(super) fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
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
pub(super) fn plainly_fits(size: u64) -> bool {
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
pub(super) fn cgroup_room() -> Option<u64> {
    cgroup_memory().map(|(max, used)| max.saturating_sub(used))
}

/// This process's cgroup memory limit and usage, if it has a limit: v2's
/// `memory.max` and `memory.current`, or v1's `memory.limit_in_bytes` and
/// `memory.usage_in_bytes` (v1 writes "no limit" as a number near 2^63).
pub(super) fn cgroup_memory() -> Option<(u64, u64)> {
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
