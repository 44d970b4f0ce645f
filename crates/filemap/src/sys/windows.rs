//! Windows: sections (`CreateFileMappingW` & co.) through `windows-sys`.
//!
//! The kernel already gives the Win32 lifetime: a named section lives while any
//! handle or view of it exists in any process, and the kernel closes a dead
//! process's handles. Sections are created whole (size and commit charge at
//! once, `SEC_COMMIT`), so no opener sees a half-made one.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::null;

use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Foundation::{
    DuplicateHandle, SetLastError, ERROR_ALREADY_EXISTS, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetSecurityInfo, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    CreateWellKnownSid, EqualSid, GetLengthSid, GetTokenInformation, InitializeSecurityDescriptor,
    SetSecurityDescriptorOwner, TokenOwner, TokenUser, WinBuiltinAdministratorsSid,
    WinLocalSystemSid, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
    SECURITY_DESCRIPTOR, SECURITY_MAX_SID_SIZE, TOKEN_QUERY,
};
use windows_sys::Win32::Storage::FileSystem::{FlushFileBuffers, READ_CONTROL};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FlushViewOfFile, GetLargePageMinimum, MapViewOfFileEx, OpenFileMappingW,
    UnmapViewOfFile, VirtualAlloc, VirtualQuery, FILE_MAP, FILE_MAP_COPY, FILE_MAP_LARGE_PAGES,
    FILE_MAP_READ, FILE_MAP_WRITE, MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS,
    MEM_COMMIT, PAGE_READONLY, PAGE_READWRITE, SECTION_QUERY, SEC_COMMIT, SEC_LARGE_PAGES,
    SEC_RESERVE,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{
    CreateEventW, CreateSemaphoreW, GetCurrentProcess, OpenProcessToken, ReleaseSemaphore,
    SetEvent, WaitForMultipleObjects, WaitForSingleObject,
};

use super::RawView;

/// Windows keeps no `SIGBUS` table: a mapped section cannot shrink.
pub(crate) type Watch = ();

/// Never: a mapped section cannot shrink.
#[inline]
pub(crate) fn watch_tripped(_w: &Watch) -> bool {
    false
}
use crate::error::{Error, Result};
use crate::name::Name;
use crate::types::{Access, CreateParams, Disposition, Owners, ViewAccess};

/// `SECTION_BASIC_INFORMATION` from the native API, which windows-sys does not carry.
#[repr(C)]
struct SectionBasicInformation {
    base_address: *mut c_void,
    allocation_attributes: u32,
    maximum_size: i64,
}

#[link(name = "ntdll")]
extern "system" {
    /// `NtQuerySection`: the exact byte size of a section (Win32 offers only the
    /// page-rounded size of a view). Needs `SECTION_QUERY` on the handle.
    fn NtQuerySection(
        section: HANDLE,
        class: u32,
        info: *mut c_void,
        info_len: usize,
        ret_len: *mut usize,
    ) -> i32;
}

/// The allocation granularity (64 KiB on every Windows so far).
pub(crate) fn granularity() -> u64 {
    let mut info = std::mem::MaybeUninit::<SYSTEM_INFO>::zeroed();
    // SAFETY: GetSystemInfo fills the whole struct and cannot fail.
    unsafe { GetSystemInfo(info.as_mut_ptr()) };
    // SAFETY: initialised by GetSystemInfo (and zeroed before).
    u64::from(unsafe { info.assume_init() }.dwAllocationGranularity)
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn split(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

/// An open section handle, its size and, for file mappings, the file.
#[derive(Debug)]
pub(crate) struct Object {
    handle: OwnedHandle,
    size: u64,
    writable: bool,
    file: Option<File>,
    /// Backed by a file (`SEC_FILE`), whether or not this process has it.
    is_file: bool,
    /// The file's path, when this process named it.
    path: Option<String>,
    /// Made with `SEC_RESERVE`: pages are committed by `commit`.
    reserved: bool,
    /// The large page size of a `SEC_LARGE_PAGES` section; 0 otherwise.
    large: u64,
}

impl Object {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The object's size now: sections do not shrink while mapped.
    pub(crate) fn current_size(&self) -> Option<u64> {
        Some(self.size)
    }

    /// `FlushFileBuffers` for file mappings; nothing for memory.
    pub(crate) fn sync_backing(&self, object: &str) -> Result<()> {
        if let Some(f) = &self.file {
            // SAFETY: a valid file handle owned by `f`.
            if unsafe { FlushFileBuffers(f.as_raw_handle()) } == 0 {
                return Err(Error::os(
                    object,
                    "FlushFileBuffers",
                    io::Error::last_os_error(),
                ));
            }
        }
        Ok(())
    }

    fn raw(&self) -> HANDLE {
        self.handle.as_raw_handle()
    }

    /// Whether a file backs the section (`SEC_FILE`, also for openers).
    pub(crate) fn is_file(&self) -> bool {
        self.is_file
    }

    /// The file's path, when this process created the named file mapping
    /// (Windows does not say which file a section it opened maps).
    pub(crate) fn file_path(&self) -> Option<&str> {
        self.path.as_deref()
    }
}

/// `SEC_FILE` in `SECTION_BASIC_INFORMATION.AllocationAttributes`.
const SEC_FILE_ATTR: u32 = 0x0080_0000;
/// `SEC_RESERVE` there.
const SEC_RESERVE_ATTR: u32 = 0x0400_0000;

impl Object {
    /// The granularity of this object's views.
    pub(crate) fn granularity(&self) -> u64 {
        self.large.max(granularity())
    }

    /// The large page size, if the section has large pages.
    pub(crate) fn large_page_size(&self) -> Option<u64> {
        (self.large > 0).then_some(self.large)
    }

    /// Whether the section was made `SEC_RESERVE` (also for openers).
    pub(crate) fn reserved(&self) -> bool {
        self.reserved
    }

    /// Commits `offset..offset + len` of a `SEC_RESERVE` section:
    /// `VirtualAlloc(MEM_COMMIT)` through a passing view. The commit is the
    /// section's, seen by every process's views. The view covers the whole
    /// section: Wine (8.0) records a commit made through a view of part of
    /// a section for that view only.
    pub(crate) fn commit(&self, offset: u64, len: u64, obj: &str) -> Result<()> {
        let whole = usize::try_from(self.size).map_err(|_| too_big(obj, self.size))?;
        let n = usize::try_from(len).map_err(|_| too_big(obj, len))?;
        let at = usize::try_from(offset).map_err(|_| too_big(obj, offset))?;
        let v = map(self, 0, whole, ViewAccess::ReadWrite, None, obj)?;
        // SAFETY: `at + n <= size` (the caller checked the range), so the
        // range lies inside the view just made; committing pages of a
        // section view changes no byte.
        let got = unsafe { VirtualAlloc(v.ptr.add(at).cast(), n, MEM_COMMIT, PAGE_READWRITE) };
        let e = io::Error::last_os_error();
        unmap(&v, obj)?;
        if got.is_null() {
            return Err(Error::os_sized(obj, len, "VirtualAlloc(MEM_COMMIT)", e));
        }
        Ok(())
    }

    /// Whether all of `offset..offset + len` is committed.
    pub(crate) fn committed(&self, offset: u64, len: u64, obj: &str) -> Result<bool> {
        if !self.reserved {
            return Ok(true);
        }
        let n = usize::try_from(len).map_err(|_| too_big(obj, len))?;
        let v = map(self, offset, n, ViewAccess::Read, None, obj)?;
        let all = committed_run(v.ptr, n) >= n;
        unmap(&v, obj)?;
        Ok(all)
    }

    /// How many bytes from the start are committed.
    pub(crate) fn committed_prefix(&self, obj: &str) -> Result<u64> {
        if !self.reserved {
            return Ok(self.size);
        }
        let n = usize::try_from(self.size).map_err(|_| too_big(obj, self.size))?;
        let v = map(self, 0, n, ViewAccess::Read, None, obj)?;
        let run = committed_run(v.ptr, n);
        unmap(&v, obj)?;
        Ok(run.min(n) as u64)
    }
}

fn too_big(obj: &str, len: u64) -> Error {
    Error::os_sized(
        obj,
        len,
        "MapViewOfFileEx",
        io::Error::other("larger than this process's address space"),
    )
}

/// How many bytes from `p` (up to `n`, in whole regions) are committed:
/// `VirtualQuery` region by region.
fn committed_run(p: *mut u8, n: usize) -> usize {
    let mut done = 0usize;
    while done < n {
        let mut m = std::mem::MaybeUninit::<MEMORY_BASIC_INFORMATION>::zeroed();
        // SAFETY: querying an address inside a live view of this process into
        // a buffer of the size passed.
        let got = unsafe {
            VirtualQuery(
                p.wrapping_add(done).cast(),
                m.as_mut_ptr(),
                std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
            )
        };
        if got == 0 {
            break;
        }
        // SAFETY: VirtualQuery filled it (it returned non-zero).
        let m = unsafe { m.assume_init() };
        if m.State != MEM_COMMIT {
            break;
        }
        let region_end = (m.BaseAddress as usize).saturating_add(m.RegionSize);
        let here = p as usize + done;
        if region_end <= here {
            break;
        }
        done += region_end - here;
    }
    done
}

/// Takes ownership of a handle a Win32 call just returned, or reports its error.
fn owned(h: HANDLE, object: &str, size: u64, call: &'static str) -> Result<OwnedHandle> {
    if h.is_null() {
        return Err(Error::os_sized(
            object,
            size,
            call,
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `h` is a fresh, valid handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as RawHandle) })
}

/// The exact size of a section.
fn section_size(h: HANDLE, object: &str) -> Result<u64> {
    section_info(h, object).map(|(size, _)| size)
}

/// The exact size of a section and its allocation attributes (`SEC_*`).
fn section_info(h: HANDLE, object: &str) -> Result<(u64, u32)> {
    let mut info = SectionBasicInformation {
        base_address: std::ptr::null_mut(),
        allocation_attributes: 0,
        maximum_size: 0,
    };
    // SAFETY: `info` is a writable buffer of the size passed; class 0 is
    // SectionBasicInformation, whose layout SectionBasicInformation mirrors.
    let status = unsafe {
        NtQuerySection(
            h,
            0,
            (&mut info as *mut SectionBasicInformation).cast(),
            std::mem::size_of::<SectionBasicInformation>(),
            std::ptr::null_mut(),
        )
    };
    if status < 0 {
        return Err(Error::Os {
            object: object.to_owned(),
            call: "NtQuerySection",
            source: io::Error::other(format!("NTSTATUS {:#010x}", status as u32)),
        });
    }
    let size = u64::try_from(info.maximum_size).map_err(|_| Error::InvalidSize {
        object: object.to_owned(),
        reason: format!("the section reports a negative size {}", info.maximum_size),
    })?;
    Ok((size, info.allocation_attributes))
}

fn section_access(access: Access) -> u32 {
    match access {
        Access::Read => FILE_MAP_READ | SECTION_QUERY,
        Access::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE | SECTION_QUERY,
    }
}

pub(crate) fn create_named(
    n: &Name,
    size: u64,
    p: &CreateParams,
    open_existing: bool,
) -> Result<(Object, Disposition)> {
    let obj = &n.given;
    let wname = wide(&n.given);
    let (size, large) = if p.large_pages {
        if p.reserve {
            return Err(Error::Unsupported {
                object: obj.clone(),
                what: "large pages with reserve-then-commit (SEC_LARGE_PAGES needs SEC_COMMIT)"
                    .into(),
            });
        }
        let page = large_pages_ready(obj)?;
        (
            size.checked_next_multiple_of(page).unwrap_or(u64::MAX),
            page,
        )
    } else {
        (size, 0)
    };
    loop {
        let (handle, existed) =
            pagefile_section(size, wname.as_ptr(), p.reserve, p.large_pages, obj)?;
        if !existed {
            let o = Object {
                handle,
                size,
                writable: true,
                file: None,
                is_file: false,
                path: None,
                reserved: p.reserve,
                large,
            };
            return Ok((o, Disposition::Created));
        }
        if !open_existing {
            return Err(Error::AlreadyExists { name: obj.clone() });
        }
        // Re-open with exactly the access asked for, as OpenFileMapping would.
        // If the other holders closed it meanwhile, it is gone: create it again.
        drop(handle);
        match open_named(n, p.access, p.ready_timeout) {
            Ok(o) => return Ok((o, Disposition::Opened)),
            Err(Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Names the file mapping `mapped` (made by [`from_file`]) `n`: the native
/// `CreateFileMappingW(file, .., name)`. With `open_existing`, an existing
/// section backed by a file is opened (Windows does not say which file, so
/// a different one goes unnoticed here); one backed by memory is a
/// [`Error::Conflict`].
pub(crate) fn create_named_file(
    n: &Name,
    mapped: Object,
    path: &str,
    p: &CreateParams,
    open_existing: bool,
) -> Result<(Object, Disposition)> {
    let obj = &n.given;
    let wname = wide(obj);
    let file = mapped.file.as_ref().ok_or_else(|| Error::Unsupported {
        object: obj.clone(),
        what: "naming a mapping that has no file".into(),
    })?;
    let prot = if mapped.writable {
        PAGE_READWRITE
    } else {
        PAGE_READONLY
    };
    let (hi, lo) = split(mapped.size);
    let security = CreationSecurity::new(obj)?;
    // SAFETY: SetLastError only sets this thread's last-error value, cleared
    // so that ERROR_ALREADY_EXISTS can only come from the next call.
    unsafe { SetLastError(0) };
    // SAFETY: a valid file handle owned by `file`; attributes that live
    // until the call returns; the name is NUL-terminated and outlives the
    // call.
    let h = unsafe {
        CreateFileMappingW(
            file.as_raw_handle(),
            security.attributes(),
            prot,
            hi,
            lo,
            wname.as_ptr(),
        )
    };
    let existed = io::Error::last_os_error().raw_os_error() == Some(ERROR_ALREADY_EXISTS as i32);
    let handle = owned(h, obj, mapped.size, "CreateFileMappingW")?;
    if !existed {
        return Ok((
            Object {
                handle,
                size: mapped.size,
                writable: mapped.writable,
                file: mapped.file,
                is_file: true,
                path: Some(path.to_owned()),
                reserved: false,
                large: 0,
            },
            Disposition::Created,
        ));
    }
    if !open_existing {
        return Err(Error::AlreadyExists { name: obj.clone() });
    }
    let (_, attrs) = section_info(handle.as_raw_handle(), obj)?;
    if attrs & SEC_FILE_ATTR == 0 {
        return Err(Error::Conflict {
            name: obj.clone(),
            reason: format!("it is backed by memory, not by the file {path}"),
        });
    }
    drop(handle);
    Ok((
        open_named(n, p.access, p.ready_timeout)?,
        Disposition::Opened,
    ))
}

pub(crate) fn open_named(
    n: &Name,
    access: Access,
    _ready_timeout: std::time::Duration,
) -> Result<Object> {
    let obj = &n.given;
    let wname = wide(&n.given);
    // SAFETY: a NUL-terminated name that outlives the call; handle not inheritable.
    let h = unsafe { OpenFileMappingW(section_access(access), 0, wname.as_ptr()) };
    let handle = owned(h, obj, 0, "OpenFileMappingW")?;
    let (size, attrs) = section_info(handle.as_raw_handle(), obj)?;
    Ok(Object {
        handle,
        size,
        writable: access == Access::ReadWrite,
        file: None,
        is_file: attrs & SEC_FILE_ATTR != 0,
        path: None,
        reserved: attrs & SEC_RESERVE_ATTR != 0,
        large: if attrs & SEC_LARGE_PAGES != 0 {
            // SAFETY: no arguments; returns a size.
            unsafe { GetLargePageMinimum() as u64 }
        } else {
            0
        },
    })
}

impl Object {
    /// Refuses a named section whose owner `owners` does not accept. The
    /// owner is the section's owner SID (`GetSecurityInfo`, through a
    /// handle opened by name with `READ_CONTROL` only); accepted for
    /// [`Owners::CurrentUser`]: this process's user (`TokenUser`), the owner
    /// it gives what it makes (`TokenOwner`: Administrators, when elevated),
    /// LocalSystem and Administrators.
    pub(crate) fn check_owner(&self, owners: &Owners, obj: &str) -> Result<()> {
        match owners {
            Owners::Anyone => return Ok(()),
            Owners::Uids(_) => {
                return Err(Error::Unsupported {
                    object: obj.to_owned(),
                    what: "trusting owners by Unix user id (Owners::Uids; use \
                           Owners::CurrentUser)"
                        .into(),
                })
            }
            Owners::CurrentUser => {}
        }
        let wname = wide(obj);
        // SAFETY: a NUL-terminated name that outlives the call; the handle is
        // not inheritable.
        let h = unsafe { OpenFileMappingW(READ_CONTROL, 0, wname.as_ptr()) };
        let handle = owned(h, obj, 0, "OpenFileMappingW(READ_CONTROL)")?;
        let mut owner: PSID = std::ptr::null_mut();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `handle` is open; the out-pointers are valid locals; the
        // descriptor the call allocates is freed below with `LocalFree`, and
        // `owner` points into it, so it is used only before that.
        let rc = unsafe {
            GetSecurityInfo(
                handle.as_raw_handle() as HANDLE,
                SE_KERNEL_OBJECT,
                OWNER_SECURITY_INFORMATION,
                &mut owner,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut sd,
            )
        };
        if rc != 0 {
            return Err(Error::os(
                obj,
                "GetSecurityInfo",
                io::Error::from_raw_os_error(rc as i32),
            ));
        }
        let trusted = trusted_sids(obj);
        let verdict = trusted.map(|sids| {
            let ok = !owner.is_null()
                && sids.iter().any(|s| {
                    // SAFETY: both are valid SIDs: `s` made by the OS into our
                    // buffer, `owner` inside the live descriptor `sd`.
                    unsafe { EqualSid(s.as_ptr() as PSID, owner) != 0 }
                });
            (ok, sid_text(owner))
        });
        // SAFETY: `sd` was allocated by `GetSecurityInfo` and is not used after.
        unsafe { LocalFree(sd) };
        let (ok, who) = verdict?;
        if ok {
            return Ok(());
        }
        Err(Error::AccessDenied {
            object: obj.to_owned(),
            reason: format!(
                "it is owned by {who}, and this process accepts only objects made by this user, \
                 LocalSystem or Administrators (Options::trusted_owners): another user may \
                 have created the name first"
            ),
        })
    }
}

/// A SID, in a buffer of the largest size one can have (4-byte aligned, as
/// a SID must be).
type SidBuf = [u32; SECURITY_MAX_SID_SIZE as usize / 4];

/// A SID of this process's token: its user (`TokenUser`) or the owner it
/// gives what it makes (`TokenOwner`).
fn token_sid(class: i32, obj: &str) -> Result<SidBuf> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of this process; `token` receives a new handle.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(Error::os(
            obj,
            "OpenProcessToken",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `token` is the fresh handle above, owned here only.
    let token = unsafe { OwnedHandle::from_raw_handle(token as RawHandle) };
    // TOKEN_USER or TOKEN_OWNER: a pointer to a SID that follows it.
    let mut buf = [0u64; 64];
    let mut len = 0u32;
    // SAFETY: `buf` is writable for its whole size, which is passed.
    let ok = unsafe {
        GetTokenInformation(
            token.as_raw_handle() as HANDLE,
            class,
            buf.as_mut_ptr().cast(),
            std::mem::size_of_val(&buf) as u32,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(Error::os(
            obj,
            "GetTokenInformation",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: both structures start with the SID pointer, into `buf`.
    let sid = unsafe { *(buf.as_ptr() as *const PSID) };
    let mut one: SidBuf = [0; SECURITY_MAX_SID_SIZE as usize / 4];
    // SAFETY: `sid` is a valid SID inside `buf`; at most `SECURITY_MAX_SID_SIZE`
    // bytes of it, the size of `one`, are copied.
    unsafe {
        let n = (GetLengthSid(sid) as usize).min(std::mem::size_of_val(&one));
        std::ptr::copy_nonoverlapping(sid as *const u8, one.as_mut_ptr().cast::<u8>(), n);
    }
    Ok(one)
}

/// The SIDs [`Owners::CurrentUser`] accepts as a section's owner.
fn trusted_sids(obj: &str) -> Result<Vec<SidBuf>> {
    let mut out = vec![token_sid(TokenUser, obj)?, token_sid(TokenOwner, obj)?];
    for known in [WinLocalSystemSid, WinBuiltinAdministratorsSid] {
        let mut one: SidBuf = [0; SECURITY_MAX_SID_SIZE as usize / 4];
        let mut len = SECURITY_MAX_SID_SIZE;
        // SAFETY: `one` is writable for `len` bytes.
        let ok = unsafe {
            CreateWellKnownSid(
                known,
                std::ptr::null_mut(),
                one.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if ok != 0 {
            out.push(one);
        }
    }
    Ok(out)
}

/// The security a named section this process makes gets: no DACL given,
/// so the token's default one applies, as with `NULL` attributes; and the
/// owner the token gives what it makes (`TokenOwner`), written explicitly
/// so that every implementation records one (Wine leaves a section made
/// with `NULL` attributes without an owner) and
/// [`Owners::CurrentUser`] can check it.
struct CreationSecurity {
    sd: SECURITY_DESCRIPTOR,
    owner: SidBuf,
    sa: SECURITY_ATTRIBUTES,
}

impl CreationSecurity {
    /// Boxed: the attributes point into the descriptor, which points into
    /// the owner buffer, so none may move.
    fn new(obj: &str) -> Result<Box<CreationSecurity>> {
        let mut c = Box::new(CreationSecurity {
            // SAFETY: a plain C struct, all zeroes until initialised below.
            sd: unsafe { std::mem::zeroed() },
            owner: token_sid(TokenOwner, obj)?,
            sa: SECURITY_ATTRIBUTES {
                nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
                lpSecurityDescriptor: std::ptr::null_mut(),
                bInheritHandle: 0,
            },
        });
        let sd: PSECURITY_DESCRIPTOR = std::ptr::addr_of_mut!(c.sd).cast();
        // SAFETY: `sd` points to a SECURITY_DESCRIPTOR the box owns;
        // revision 1 is SECURITY_DESCRIPTOR_REVISION. The owner SID lives in
        // the same box, as long as the descriptor.
        unsafe {
            if InitializeSecurityDescriptor(sd, 1) == 0
                || SetSecurityDescriptorOwner(sd, c.owner.as_mut_ptr().cast(), 0) == 0
            {
                return Err(Error::os(
                    obj,
                    "SetSecurityDescriptorOwner",
                    io::Error::last_os_error(),
                ));
            }
        }
        c.sa.lpSecurityDescriptor = sd;
        Ok(c)
    }

    fn attributes(&self) -> *const SECURITY_ATTRIBUTES {
        &self.sa
    }
}

/// A SID as text (`S-1-5-21-…`), for messages.
fn sid_text(sid: PSID) -> String {
    if sid.is_null() {
        return "nobody (no owner)".into();
    }
    let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: `sid` is a valid SID; the string the call allocates is read
    // up to its NUL and freed with `LocalFree`.
    unsafe {
        if ConvertSidToStringSidW(sid, &mut text) == 0 || text.is_null() {
            return "an unreadable SID".into();
        }
        let mut n = 0;
        while *text.add(n) != 0 {
            n += 1;
        }
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, n));
        LocalFree(text.cast());
        s
    }
}

pub(crate) fn remove_named(n: &Name) -> Result<()> {
    let wname = wide(&n.given);
    // SAFETY: as in open_named.
    let h = unsafe { OpenFileMappingW(SECTION_QUERY, 0, wname.as_ptr()) };
    let _handle = owned(h, &n.given, 0, "OpenFileMappingW")?;
    Err(Error::Unsupported {
        object: n.given.clone(),
        what: "removing a named section (it disappears when its last handle and view close)".into(),
    })
}

/// An unnamed section of `size` bytes (rounded up to whole large pages)
/// backed by large pages (`SEC_LARGE_PAGES`).
pub(crate) fn anonymous_large(size: u64, obj: &str) -> Result<Object> {
    let page = large_pages_ready(obj)?;
    let size = size.checked_next_multiple_of(page).unwrap_or(u64::MAX);
    let (handle, _) = pagefile_section(size, null(), false, true, obj)?;
    Ok(Object {
        handle,
        size,
        writable: true,
        file: None,
        is_file: false,
        path: None,
        reserved: false,
        large: page,
    })
}

/// Makes sure this process may use large pages: the processor has them,
/// and the "Lock pages in memory" right (`SeLockMemoryPrivilege`) is held
/// and enabled (`AdjustTokenPrivileges`). Returns the large page size.
fn large_pages_ready(obj: &str) -> Result<u64> {
    use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, LUID};
    use windows_sys::Win32::Security::{
        AdjustTokenPrivileges, LookupPrivilegeValueW, LUID_AND_ATTRIBUTES, SE_PRIVILEGE_ENABLED,
        TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
    };
    use windows_sys::Win32::System::Threading::OpenProcessToken;
    let unsupported = |what: String| Error::Unsupported {
        object: obj.to_owned(),
        what,
    };
    // SAFETY: no arguments; returns a size (0: no large pages).
    let page = unsafe { GetLargePageMinimum() } as u64;
    if page == 0 {
        return Err(unsupported(
            "large pages on a processor without them".into(),
        ));
    }
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: this process's pseudo-handle; `token` receives a new handle.
    if unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &mut token,
        )
    } == 0
    {
        return Err(Error::os(
            obj,
            "OpenProcessToken",
            io::Error::last_os_error(),
        ));
    }
    let mut luid = LUID {
        LowPart: 0,
        HighPart: 0,
    };
    let name = wide("SeLockMemoryPrivilege");
    // SAFETY: a NUL-terminated name and a LUID to fill.
    let found = unsafe { LookupPrivilegeValueW(null(), name.as_ptr(), &mut luid) } != 0;
    let privs = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES {
            Luid: luid,
            Attributes: SE_PRIVILEGE_ENABLED,
        }],
    };
    // SAFETY: SetLastError only sets this thread's last-error value.
    unsafe { SetLastError(0) };
    // SAFETY: a token opened with TOKEN_ADJUST_PRIVILEGES and a complete
    // TOKEN_PRIVILEGES; no previous state is asked for.
    let adjusted = found
        && unsafe {
            AdjustTokenPrivileges(
                token,
                0,
                &privs,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        } != 0;
    // ERROR_NOT_ALL_ASSIGNED: the call worked, but the right is not held.
    // SAFETY: no arguments.
    let held = adjusted && unsafe { GetLastError() } == 0;
    // SAFETY: the token handle opened above, closed once.
    unsafe { CloseHandle(token) };
    if !held {
        return Err(unsupported(
            "large pages without the \"Lock pages in memory\" right \
             (SeLockMemoryPrivilege: grant it to the account in Local Security Policy, User \
             Rights Assignment, then log on again)"
                .into(),
        ));
    }
    Ok(page)
}

/// How many bytes of the view the OS maps with large pages now
/// (`QueryWorkingSetEx`, large page by large page).
pub(crate) fn large_page_bytes(v: &RawView, obj: &str) -> Result<u64> {
    use windows_sys::Win32::System::ProcessStatus::{
        K32QueryWorkingSetEx, PSAPI_WORKING_SET_EX_INFORMATION,
    };
    // SAFETY: no arguments; returns a size (0: none).
    let page = (unsafe { GetLargePageMinimum() }).max(4096);
    let mut total = 0u64;
    let mut at = 0usize;
    while at < v.map_len {
        let mut info = std::mem::MaybeUninit::<PSAPI_WORKING_SET_EX_INFORMATION>::zeroed();
        // SAFETY: the address lies inside this process's live view; the
        // buffer holds one entry, whose address field is set first.
        let ok = unsafe {
            (*info.as_mut_ptr()).VirtualAddress = v.base.wrapping_add(at).cast();
            K32QueryWorkingSetEx(
                GetCurrentProcess(),
                info.as_mut_ptr().cast(),
                std::mem::size_of::<PSAPI_WORKING_SET_EX_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            return Err(Error::os(
                obj,
                "QueryWorkingSetEx",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: filled by the call (and zeroed before).
        let flags = unsafe { info.assume_init().VirtualAttributes.Flags };
        // Bit 0: valid (resident); bit 23: a large page.
        if flags & 1 != 0 && flags & (1 << 23) != 0 {
            total += page as u64;
        }
        at += page;
    }
    Ok(total)
}

pub(crate) fn anonymous(size: u64, obj: &str) -> Result<Object> {
    let (handle, _) = pagefile_section(size, null(), false, false, obj)?;
    Ok(Object {
        handle,
        size,
        writable: true,
        file: None,
        is_file: false,
        path: None,
        reserved: false,
        large: 0,
    })
}

/// `CreateFileMappingW` for a read-write section of `size` bytes backed by the
/// paging file, its commit charged now (`SEC_COMMIT`). `name` is a
/// NUL-terminated UTF-16 name or null. Also says whether the name already
/// existed (then the handle is to the existing section, unresized).
fn pagefile_section(
    size: u64,
    name: *const u16,
    reserve: bool,
    large: bool,
    obj: &str,
) -> Result<(OwnedHandle, bool)> {
    let commit = if reserve {
        SEC_RESERVE
    } else if large {
        SEC_COMMIT | SEC_LARGE_PAGES
    } else {
        SEC_COMMIT
    };
    let (hi, lo) = split(size);
    // A named section records its owner (`CreationSecurity`).
    let security = if name.is_null() {
        None
    } else {
        Some(CreationSecurity::new(obj)?)
    };
    let attributes = security.as_ref().map_or(null(), |s| s.attributes());
    // SAFETY: SetLastError only sets this thread's last-error value. Cleared so
    // that ERROR_ALREADY_EXISTS below can only come from this call.
    unsafe { SetLastError(0) };
    // SAFETY: INVALID_HANDLE_VALUE asks for a pagefile-backed section;
    // `attributes` is null (default security) or lives until the call
    // returns; `name` is null or NUL-terminated and outlives the call (the
    // caller's borrow).
    let h = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            attributes,
            PAGE_READWRITE | commit,
            hi,
            lo,
            name,
        )
    };
    let existed = io::Error::last_os_error().raw_os_error() == Some(ERROR_ALREADY_EXISTS as i32);
    Ok((owned(h, obj, size, "CreateFileMappingW")?, existed))
}

pub(crate) fn from_file(file: &File, size: u64, access: Access, obj: &str) -> Result<Object> {
    let file = file
        .try_clone()
        .map_err(|e| Error::os(obj, "DuplicateHandle", e))?;
    let current = file
        .metadata()
        .map_err(|e| Error::os(obj, "GetFileInformationByHandle", e))?
        .len();
    let size = super::file_size(size, current, access == Access::ReadWrite, obj)?;
    let prot = match access {
        Access::Read => PAGE_READONLY,
        Access::ReadWrite => PAGE_READWRITE,
    };
    // CreateFileMapping grows the file to `size` when it is larger (never shrinks).
    let (hi, lo) = split(size);
    // SAFETY: a valid file handle owned by `file`, unnamed section, default security.
    let h = unsafe { CreateFileMappingW(file.as_raw_handle(), null(), prot, hi, lo, null()) };
    let handle = owned(h, obj, size, "CreateFileMappingW")?;
    Ok(Object {
        handle,
        size,
        writable: access == Access::ReadWrite,
        file: Some(file),
        is_file: true,
        path: None,
        reserved: false,
        large: 0,
    })
}

/// An inheritable duplicate of a section handle; closed when dropped.
#[derive(Debug)]
pub(crate) struct Inherit {
    handle: OwnedHandle,
}

impl Inherit {
    pub(crate) fn new(o: &Object, access: Access, obj: &str) -> Result<Inherit> {
        let mut new: HANDLE = std::ptr::null_mut();
        // SAFETY: duplicating a valid handle within this process, into `new`.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                o.raw(),
                GetCurrentProcess(),
                &mut new,
                section_access(access),
                1,
                0,
            )
        };
        if ok == 0 {
            return Err(Error::os(
                obj,
                "DuplicateHandle",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh handle that nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(new as RawHandle) };
        Ok(Inherit { handle })
    }

    pub(crate) fn raw(&self) -> u64 {
        self.handle.as_raw_handle() as usize as u64
    }
}

/// Duplicates the section handle of `o` into the process `pid` with
/// `access` (`DuplicateHandle` into another process); returns the handle's
/// value there, for that process to adopt with `from_inherited`. Until it
/// does, the handle is open in that process (and closes when it exits).
pub(crate) fn duplicate_into(o: &Object, pid: u32, access: Access, obj: &str) -> Result<u64> {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_DUP_HANDLE};
    // SAFETY: OpenProcess has no memory-safety preconditions; null is handled.
    let target = unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) };
    if target.is_null() {
        return Err(Error::os(
            obj,
            "OpenProcess(PROCESS_DUP_HANDLE)",
            io::Error::last_os_error(),
        ));
    }
    let mut there: HANDLE = std::ptr::null_mut();
    // SAFETY: a valid section handle of ours, duplicated into the process
    // `target` (a valid handle with PROCESS_DUP_HANDLE), written to `there`.
    let ok = unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            o.raw(),
            target,
            &mut there,
            section_access(access),
            0,
            0,
        )
    };
    let err = io::Error::last_os_error();
    // SAFETY: `target` came from OpenProcess above and is closed once.
    unsafe { CloseHandle(target) };
    if ok == 0 {
        return Err(Error::os(obj, "DuplicateHandle", err));
    }
    Ok(there as usize as u64)
}

pub(crate) fn from_inherited(raw: u64, len: u64, access: Access, token: &str) -> Result<Object> {
    let bad = |reason: String| Error::InvalidToken {
        token: token.to_owned(),
        reason,
    };
    let h =
        usize::try_from(raw).map_err(|_| bad(format!("{raw} is not a handle value")))? as HANDLE;
    let size = section_size(h, token).map_err(|e| {
        bad(format!(
            "handle {raw} is not a section open in this process ({e})"
        ))
    })?;
    if size < len {
        return Err(bad(format!(
            "the section has {size} bytes, fewer than the {len} the token names"
        )));
    }
    if access == Access::ReadWrite {
        // Prove write access by mapping one byte writable, then unmapping it.
        // SAFETY: `h` is a section handle (NtQuerySection succeeded); a fresh
        // mapping at an address the system picks.
        let v = unsafe { MapViewOfFileEx(h, FILE_MAP_WRITE, 0, 0, 1, null()) };
        if v.Value.is_null() {
            return Err(bad(format!(
                "the token says read-write, but handle {raw} is read-only"
            )));
        }
        // SAFETY: unmapping the view just made.
        unsafe { UnmapViewOfFile(v) };
    }
    // SAFETY: the handle is a valid section handle this process inherited for
    // it to own (the caller's contract on `Mapping::from_inherited`).
    let handle = unsafe { OwnedHandle::from_raw_handle(h as RawHandle) };
    Ok(Object {
        handle,
        size: len,
        writable: access == Access::ReadWrite,
        file: None,
        is_file: false,
        path: None,
        reserved: false,
        large: 0,
    })
}

pub(crate) fn map(
    o: &Object,
    offset: u64,
    len: usize,
    access: ViewAccess,
    at: Option<usize>,
    obj: &str,
) -> Result<RawView> {
    let p = super::place(offset, len, o.size, o.granularity(), obj)?;
    let mut acc: FILE_MAP = match access {
        ViewAccess::Read => FILE_MAP_READ,
        ViewAccess::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
        ViewAccess::CopyOnWrite => FILE_MAP_COPY,
    };
    if o.large > 0 {
        acc |= FILE_MAP_LARGE_PAGES;
    }
    let base = match at {
        None => null(),
        Some(a) => super::placed_base(&p, a, obj)? as *const c_void,
    };
    let (hi, lo) = split(p.aligned);
    // SAFETY: a valid section handle; the offset is a multiple of the
    // allocation granularity; the address is null (the system picks) or a
    // multiple of the granularity, and MapViewOfFileEx fails rather than
    // replace anything mapped there.
    let v = unsafe { MapViewOfFileEx(o.raw(), acc, hi, lo, p.map_len, base) };
    if v.Value.is_null() {
        let e = io::Error::last_os_error();
        // ERROR_INVALID_ADDRESS: the range is not free.
        if let (Some(a), Some(487)) = (at, e.raw_os_error()) {
            return Err(super::placement_error(
                obj,
                a,
                "the range is in use or reserved (ERROR_INVALID_ADDRESS)".into(),
            ));
        }
        return Err(Error::os_sized(obj, p.map_len as u64, "MapViewOfFileEx", e));
    }
    Ok(RawView::new(v.Value.cast(), &p, len))
}

pub(crate) fn unmap(v: &RawView, obj: &str) -> Result<()> {
    // SAFETY: `base` is the address MapViewOfFileEx returned, unmapped once.
    let ok = unsafe {
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
            Value: v.base.cast(),
        })
    };
    if ok == 0 {
        return Err(Error::os(
            obj,
            "UnmapViewOfFile",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

pub(crate) fn flush(v: &RawView, _wait: bool, obj: &str) -> Result<()> {
    // SAFETY: a live view made by `map`. FlushViewOfFile starts the writes and,
    // for local files, returns once they are issued; `flush_durable` adds
    // FlushFileBuffers to wait for the disk.
    if unsafe { FlushViewOfFile(v.base.cast(), v.map_len) } == 0 {
        return Err(Error::os(
            obj,
            "FlushViewOfFile",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Processes and waiting, for the layers above (segments, channels).
// ---------------------------------------------------------------------------

/// The creation time of process `pid` (100 ns units since 1601), if it runs.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    use windows_sys::Win32::Foundation::{FILETIME, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    // SAFETY: OpenProcess has no memory-safety preconditions; a null result is handled.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        return None;
    }
    // SAFETY: a fresh handle that nothing else owns; closed when dropped.
    let h = unsafe { OwnedHandle::from_raw_handle(h as RawHandle) };
    let mut code = 0u32;
    // SAFETY: a valid process handle and a writable u32.
    if unsafe { GetExitCodeProcess(h.as_raw_handle(), &mut code) } == 0
        || code != STILL_ACTIVE as u32
    {
        return None;
    }
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: a valid process handle and four writable FILETIMEs.
    if unsafe {
        GetProcessTimes(
            h.as_raw_handle(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    } == 0
    {
        return Some(0);
    }
    Some((u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

/// Most permits one wake-up releases: a wake-all (`n = u32::MAX`) wakes up to
/// this many sleepers at once; any beyond it look again after their slice.
const MAX_RELEASE: u32 = 64;

/// Sleeping and waking across processes on words of one segment.
/// `WaitOnAddress` works only inside one process, so each word gets a named
/// semaphore, `<scope>\filemap-wait-<hash of the segment's name>-<offset>`:
/// a waiter that still sees the word unchanged waits on it, a waker releases
/// one permit per sleeper it was told of. A permit released just before a
/// waiter sleeps is not lost (it stays in the semaphore); one left over wakes
/// a later waiter early, which then looks again, as after any spurious wake.
/// An unnamed segment, or one whose semaphore cannot be made, polls instead
/// (sleeps of at most 1 ms).
pub(crate) struct Parker {
    /// The semaphore names' common part; `None`: poll.
    prefix: Option<String>,
    /// Semaphores opened so far, by word offset.
    sems: std::sync::Mutex<Vec<(usize, OwnedHandle)>>,
}

impl std::fmt::Debug for Parker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parker")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Parker {
    /// For the segment mapped under `name` (`None`: unnamed).
    pub(crate) fn new(name: Option<&str>) -> Parker {
        let prefix = name.and_then(|n| crate::name::parse(n).ok()).map(|n| {
            let scope = if n.given.starts_with("Global\\") {
                "Global"
            } else {
                "Local"
            };
            let h = crate::hash::fnv1a(n.base.bytes());
            format!("{scope}\\filemap-wait-{h:016x}")
        });
        Parker {
            prefix,
            sems: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The semaphore for the word at `off`, made or opened on first use.
    fn sem(&self, off: usize) -> Option<HANDLE> {
        let prefix = self.prefix.as_ref()?;
        let mut sems = self.sems.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, h)) = sems.iter().find(|(o, _)| *o == off) {
            return Some(h.as_raw_handle() as HANDLE);
        }
        let name = wide(&format!("{prefix}-{off}"));
        // SAFETY: `name` is NUL-terminated and outlives the call; null
        // attributes mean default security. CreateSemaphoreW opens the
        // existing semaphore of that name if there is one.
        let h = unsafe { CreateSemaphoreW(null(), 0, i32::MAX, name.as_ptr()) };
        if h.is_null() {
            return None;
        }
        // SAFETY: `h` is a fresh semaphore handle that nothing else owns.
        let owned = unsafe { OwnedHandle::from_raw_handle(h as RawHandle) };
        sems.push((off, owned));
        Some(h)
    }

    /// Blocks while `*word == expected`, for at most `timeout`; returns early
    /// on a wake-up or spuriously. `word` is the segment's word at `off`.
    pub(crate) fn wait(
        &self,
        off: usize,
        word: &std::sync::atomic::AtomicU32,
        expected: u32,
        timeout: std::time::Duration,
    ) {
        if word.load(std::sync::atomic::Ordering::Acquire) != expected {
            return;
        }
        match self.sem(off) {
            Some(h) => {
                let ms = timeout
                    .as_micros()
                    .div_ceil(1000)
                    .clamp(1, u128::from(u32::MAX - 1));
                // SAFETY: `h` is a live semaphore handle owned by `self.sems`,
                // which keeps it open while `self` lives.
                unsafe { WaitForSingleObject(h, ms as u32) };
            }
            None => std::thread::sleep(timeout.min(std::time::Duration::from_millis(1))),
        }
    }

    /// The semaphore for the word at `off` (`None`: an unnamed segment,
    /// whose waits poll).
    pub(crate) fn handle(&self, off: usize) -> Option<HANDLE> {
        self.sem(off)
    }

    /// Wakes up to `n` sleepers on the word at `off`, in any process.
    pub(crate) fn wake(&self, off: usize, _word: &std::sync::atomic::AtomicU32, n: u32) {
        if n == 0 {
            return;
        }
        if let Some(h) = self.sem(off) {
            // SAFETY: as in `wait`; a count over the maximum fails harmlessly
            // (sleepers then wake at the end of their slice).
            unsafe { ReleaseSemaphore(h, n.min(MAX_RELEASE) as i32, std::ptr::null_mut()) };
        }
    }
}

/// Waits on many words natively: `WaitForMultipleObjects`.
pub(crate) fn waits_natively() -> bool {
    true
}

/// One `WaitForMultipleObjects` over `part` and the `cancel` event, then
/// sets `cancel` so that the other parts' waits return too.
fn wait_handles(part: &[usize], cancel: usize, ms: u32) {
    let mut list: Vec<HANDLE> = part.iter().map(|&n| n as HANDLE).collect();
    list.push(cancel as HANDLE);
    // SAFETY: live handles for the whole call: the semaphores are owned by
    // the segments' parkers, which the caller borrows, and the event by
    // `wait_any`, which outlives every thread it starts.
    unsafe { WaitForMultipleObjects(list.len() as u32, list.as_ptr(), 0, ms) };
    // SAFETY: the live event handle (as above).
    unsafe { SetEvent(cancel as HANDLE) };
}

/// How many handles one `WaitForMultipleObjects` takes.
const WAIT_MAX: usize = 64;

/// Sleeps until one of `words` is woken (its semaphore signalled) or
/// `timeout` passes; spurious returns allowed (callers re-check). One
/// `WaitForMultipleObjects` for up to 64 words; for more, a thread per
/// further 63, all released together by a local event when the first
/// returns. Words of unnamed segments (no semaphore) are polled: the wait
/// then lasts at most 1 ms.
pub(crate) fn wait_any(words: &[super::WaitWord<'_>], timeout: std::time::Duration) {
    if words.iter().any(|w| w.moved()) {
        return;
    }
    if let [w] = words {
        return w.parker.wait(w.off, w.word, w.expected, timeout);
    }
    let mut handles: Vec<HANDLE> = words
        .iter()
        .filter_map(|w| w.parker.handle(w.off))
        .collect();
    let timeout = if handles.len() < words.len() {
        timeout.min(std::time::Duration::from_millis(1))
    } else {
        timeout
    };
    let ms = timeout
        .as_micros()
        .div_ceil(1000)
        .clamp(1, u128::from(u32::MAX - 1)) as u32;
    if handles.len() <= WAIT_MAX {
        if !handles.is_empty() {
            // SAFETY: live semaphore handles, owned by the segments' parkers,
            // which outlive this call (the caller borrows them).
            unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, ms) };
        } else {
            std::thread::sleep(timeout);
        }
        return;
    }
    // SAFETY: an unnamed manual-reset event, initially clear.
    let cancel = unsafe { CreateEventW(null(), 1, 0, null()) };
    if cancel.is_null() {
        std::thread::sleep(timeout.min(std::time::Duration::from_millis(1)));
        return;
    }
    // SAFETY: a fresh handle that nothing else owns; closed when dropped.
    let cancel_owned = unsafe { OwnedHandle::from_raw_handle(cancel as RawHandle) };
    let cancel = cancel_owned.as_raw_handle() as HANDLE;
    // Raw handles are plain numbers: the threads get them as such.
    let cancel = cancel as usize;
    let numbers: Vec<usize> = handles.drain(..).map(|h| h as usize).collect();
    std::thread::scope(|s| {
        let mut parts = numbers.chunks(WAIT_MAX - 1);
        let first = parts.next().unwrap_or_default();
        for part in parts {
            // Without a thread this part is not waited on: the caller's
            // slice (and its re-check) still bounds how late it is seen.
            let _ = std::thread::Builder::new()
                .name("filemap-waitset".into())
                .spawn_scoped(s, move || wait_handles(part, cancel, ms));
        }
        wait_handles(first, cancel, ms);
    });
    drop(cancel_owned);
}

#[cfg(test)]
mod tests {
    use super::Parker;
    use std::sync::atomic::AtomicU32;
    use std::time::{Duration, Instant};

    /// A waiter really sleeps (a polling fallback returns within 1 ms); a
    /// wake-up sent through another handle, reached by name alone as another
    /// process would, is kept until a waiter takes it; each word has its own.
    #[test]
    fn waiters_sleep_until_a_wake_up_reaches_them_by_name() {
        let name = format!("fm-parker-test-{}", std::process::id());
        let word = AtomicU32::new(0);
        let waiter = Parker::new(Some(&name));
        let slept = |off: usize, timeout: Duration| {
            let started = Instant::now();
            waiter.wait(off, &word, 0, timeout);
            started.elapsed()
        };
        let t = slept(8, Duration::from_millis(200));
        assert!(
            t >= Duration::from_millis(150),
            "nobody woke it, yet it returned after {t:?}"
        );

        // `Local\x` and `x` name the same objects.
        let waker = Parker::new(Some(&format!("Local\\{name}")));
        waker.wake(8, &word, 1);
        let t = slept(8, Duration::from_secs(120));
        assert!(
            t < Duration::from_secs(60),
            "the wake-up was lost: slept {t:?}"
        );

        waker.wake(16, &word, 1);
        let t = slept(24, Duration::from_millis(200));
        assert!(
            t >= Duration::from_millis(150),
            "a wake-up for another word woke it"
        );
    }
}

// Listing the named sections of this session and the global namespace
// (`filemap list` on Windows): the object manager's directories, read with
// the native calls Win32 has no counterpart for.

/// `UNICODE_STRING`.
#[repr(C)]
struct UnicodeString {
    length: u16,
    maximum_length: u16,
    buffer: *mut u16,
}

/// `OBJECT_ATTRIBUTES`.
#[repr(C)]
struct ObjectAttributes {
    length: u32,
    root_directory: HANDLE,
    object_name: *const UnicodeString,
    attributes: u32,
    security_descriptor: *const c_void,
    security_quality_of_service: *const c_void,
}

/// `OBJECT_DIRECTORY_INFORMATION`: one entry of a directory listing.
#[repr(C)]
struct ObjectDirectoryInformation {
    name: UnicodeString,
    type_name: UnicodeString,
}

/// `PUBLIC_OBJECT_BASIC_INFORMATION` (`ObjectBasicInformation`, class 0).
#[repr(C)]
struct ObjectBasicInformation {
    attributes: u32,
    granted_access: u32,
    handle_count: u32,
    pointer_count: u32,
    reserved: [u32; 10],
}

#[link(name = "ntdll")]
extern "system" {
    fn NtOpenDirectoryObject(
        handle: *mut HANDLE,
        access: u32,
        attrs: *const ObjectAttributes,
    ) -> i32;
    fn NtQueryDirectoryObject(
        handle: HANDLE,
        buffer: *mut c_void,
        length: u32,
        single_entry: u8,
        restart: u8,
        context: *mut u32,
        return_length: *mut u32,
    ) -> i32;
    fn NtQueryObject(
        handle: HANDLE,
        class: u32,
        info: *mut c_void,
        info_len: u32,
        ret_len: *mut u32,
    ) -> i32;
}

#[link(name = "kernel32")]
extern "system" {
    fn ProcessIdToSessionId(pid: u32, session: *mut u32) -> i32;
}

/// `DIRECTORY_QUERY`.
const DIRECTORY_QUERY: u32 = 0x0001;

/// A named section, as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SectionEntry {
    /// Its name as `OpenFileMapping` takes it (`Global\` for the global namespace).
    pub name: String,
    /// Its size (`None`: this process may not open it).
    pub size: Option<u64>,
    /// Backed by a file (`SEC_FILE`).
    pub file_backed: Option<bool>,
    /// Handles open on it in every process, this one's excluded.
    pub handles: Option<u32>,
    /// Its first bytes (up to 128), for a segment header.
    pub head: Option<Vec<u8>>,
}

fn nt_error(object: &str, call: &'static str, status: i32) -> Error {
    Error::Os {
        object: object.to_owned(),
        call,
        source: io::Error::other(format!("NTSTATUS {:#010x}", status as u32)),
    }
}

/// The names of the sections in the object directory `path`.
fn section_names(path: &str) -> Result<Vec<String>> {
    let mut wpath: Vec<u16> = path.encode_utf16().collect();
    let name = UnicodeString {
        length: (wpath.len() * 2) as u16,
        maximum_length: (wpath.len() * 2) as u16,
        buffer: wpath.as_mut_ptr(),
    };
    let attrs = ObjectAttributes {
        length: std::mem::size_of::<ObjectAttributes>() as u32,
        root_directory: std::ptr::null_mut(),
        object_name: &name,
        attributes: 0x40, // OBJ_CASE_INSENSITIVE
        security_descriptor: null(),
        security_quality_of_service: null(),
    };
    let mut dir: HANDLE = std::ptr::null_mut();
    // SAFETY: `attrs` and the string it points to outlive the call; `dir`
    // is a valid out-pointer.
    let status = unsafe { NtOpenDirectoryObject(&mut dir, DIRECTORY_QUERY, &attrs) };
    if status < 0 {
        return Err(nt_error(path, "NtOpenDirectoryObject", status));
    }
    // SAFETY: a fresh directory handle nothing else owns.
    let dir = unsafe { OwnedHandle::from_raw_handle(dir as RawHandle) };
    let mut names = Vec::new();
    // u64s: the entries hold pointers, so the buffer is 8-aligned.
    let mut buf = vec![0u64; 8192];
    let (mut context, mut restart) = (0u32, 1u8);
    // Bounded: each call returns one entry or ends the listing.
    for _ in 0..100_000 {
        let mut got = 0u32;
        // SAFETY: `buf` is writable for the length passed; `context` and
        // `got` are valid out-pointers.
        let status = unsafe {
            NtQueryDirectoryObject(
                dir.as_raw_handle() as HANDLE,
                buf.as_mut_ptr().cast(),
                (buf.len() * 8) as u32,
                // One entry per call: Wine (8.0) implements only this mode,
                // and every Windows does.
                1,
                restart,
                &mut context,
                &mut got,
            )
        };
        restart = 0;
        if status < 0 {
            // STATUS_NO_MORE_ENTRIES (and any error after the first entries): done.
            break;
        }
        let entries = buf.as_ptr().cast::<ObjectDirectoryInformation>();
        let max = buf.len() * 8 / std::mem::size_of::<ObjectDirectoryInformation>();
        for i in 0..max {
            // SAFETY: the call filled `buf` with an array of entries ended by
            // an all-zero one; `i` stays inside the buffer.
            let e = unsafe { &*entries.add(i) };
            if e.name.buffer.is_null() {
                break;
            }
            let text = |s: &UnicodeString| {
                // SAFETY: the string's buffer points into `buf` (or the
                // kernel's copy) with `length` bytes.
                let units =
                    unsafe { std::slice::from_raw_parts(s.buffer, usize::from(s.length) / 2) };
                String::from_utf16_lossy(units)
            };
            if !e.type_name.buffer.is_null() && text(&e.type_name) == "Section" {
                names.push(text(&e.name));
            }
        }
        // One entry per call: go on until STATUS_NO_MORE_ENTRIES (negative, above).
    }
    Ok(names)
}

/// What this process can learn of the section `name` (fields `None` where
/// it may not open it).
pub(crate) fn section_entry(name: &str) -> SectionEntry {
    let mut e = SectionEntry {
        name: name.to_owned(),
        size: None,
        file_backed: None,
        handles: None,
        head: None,
    };
    let wname = wide(name);
    // SAFETY: a NUL-terminated name that outlives the call; not inheritable.
    let h = unsafe { OpenFileMappingW(FILE_MAP_READ | SECTION_QUERY, 0, wname.as_ptr()) };
    let Ok(handle) = owned(h, name, 0, "OpenFileMappingW") else {
        return e;
    };
    let raw = handle.as_raw_handle() as HANDLE;
    if let Ok((size, attrs)) = section_info(raw, name) {
        e.size = Some(size);
        e.file_backed = Some(attrs & SEC_FILE_ATTR != 0);
        let len = size.min(128) as usize;
        if len > 0 {
            // SAFETY: a read-only view of `len` bytes of an open section at
            // an address the system picks.
            let v = unsafe { MapViewOfFileEx(raw, FILE_MAP_READ, 0, 0, len, null()) };
            if !v.Value.is_null() {
                let p = v.Value.cast::<u8>();
                // Reserved sections may leave the first page uncommitted:
                // read only what is committed.
                if committed_run(p, len) >= len {
                    let mut head = vec![0u8; len];
                    // SAFETY: `len` committed bytes of a live read-only view,
                    // copied out (another process may write them: bytes only).
                    unsafe { std::ptr::copy_nonoverlapping(p, head.as_mut_ptr(), len) };
                    e.head = Some(head);
                }
                // SAFETY: the view mapped just above, unmapped once.
                unsafe { UnmapViewOfFile(v) };
            }
        }
    }
    let mut info = std::mem::MaybeUninit::<ObjectBasicInformation>::zeroed();
    // SAFETY: a writable buffer of the size passed; class 0 is
    // ObjectBasicInformation, whose layout the struct mirrors.
    let status = unsafe {
        NtQueryObject(
            raw,
            0,
            info.as_mut_ptr().cast(),
            std::mem::size_of::<ObjectBasicInformation>() as u32,
            std::ptr::null_mut(),
        )
    };
    if status >= 0 {
        // SAFETY: filled by the successful call (and zeroed before).
        let count = unsafe { info.assume_init() }.handle_count;
        // Our own handle is one of them.
        e.handles = Some(count.saturating_sub(1));
    }
    e
}

/// Every named section of this session (names as they are) and of the
/// global namespace (`Global\NAME`), sorted by name.
pub(crate) fn list_sections() -> Result<Vec<SectionEntry>> {
    let mut session = 0u32;
    // SAFETY: a valid out-pointer.
    let ok = unsafe { ProcessIdToSessionId(std::process::id(), &mut session) } != 0;
    let mut names: Vec<String> = Vec::new();
    if ok && session != 0 {
        names.extend(section_names(&format!(
            "\\Sessions\\{session}\\BaseNamedObjects"
        ))?);
        // Session 0's local names are the global ones: listed once, below.
    }
    let global = section_names("\\BaseNamedObjects").unwrap_or_default();
    let prefix = if ok && session != 0 { "Global\\" } else { "" };
    names.extend(global.into_iter().map(|n| format!("{prefix}{n}")));
    names.sort();
    names.dedup();
    Ok(names.iter().map(|n| section_entry(n)).collect())
}
