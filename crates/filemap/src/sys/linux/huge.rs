//! Large pages: transparent huge pages of `/dev/shm`, huge-page memfds.

use std::mem::ManuallyDrop;
use std::os::fd::BorrowedFd;

use rustix::fs::{self as rfs};

use crate::error::{Error, Result};
use crate::sys::posix::{io, Kind, Large, Object};

use super::*;

/// Mode bit marking a filemap object made with `Options::large_pages`
/// (group execute, with the same rule as `MARK_RESERVED`): every view asks
/// for transparent huge pages.
pub(crate) const MARK_LARGE: u32 = 0o010;

/// The pages a named object of mode `mode` asks for.
pub(super) fn large_of_mode(mode: u32) -> Large {
    if mode & MARK_LARGE != 0 && mode & (MARK_TRANSIENT | MARK_PERSISTENT) != 0 {
        Large::Transparent(pmd_size())
    } else {
        Large::No
    }
}

/// The pages a descriptor handed to this process is backed by: a
/// `hugetlbfs` file (a huge-page memfd) has huge pages of its block size.
pub(in crate::sys) fn large_of_fd(fd: BorrowedFd<'_>) -> Large {
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
pub(in crate::sys) unsafe fn advise_huge(base: *mut std::ffi::c_void, len: usize) {
    // SAFETY: the caller's promise; advice changes no byte.
    let _ = unsafe { rustix::mm::madvise(base, len, rustix::mm::Advice::LinuxHugepage) };
}

/// The size of a transparent huge page (a PMD): 2 MiB on x86-64.
pub(super) fn pmd_size() -> u64 {
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
pub(super) fn shm_mount_huge() -> Option<String> {
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
