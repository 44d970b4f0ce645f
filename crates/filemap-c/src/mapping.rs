//! Mappings and views: `CreateFileMapping`, `OpenFileMapping`,
//! `MapViewOfFile`, `FlushViewOfFile`, `UnmapViewOfFile`.

use std::ffi::{c_char, c_void};

use filemap::{Access, Disposition, Mapping, View, ViewAccess};

use crate::handle::{body, bytes, check_out, close, put_handle, put_opt, text, Kind};
use crate::status::{run, Fail, FmStatus, Result};

/// Read-only access (`FILE_MAP_READ`).
pub const FM_ACCESS_READ: u32 = 1;
/// Read-write access (`FILE_MAP_WRITE`).
pub const FM_ACCESS_READ_WRITE: u32 = 2;
/// A copy-on-write view (`FILE_MAP_COPY`): writes stay in this process.
pub const FM_ACCESS_COPY_ON_WRITE: u32 = 3;

/// A mapping object (`HANDLE` from `CreateFileMapping`). Close with
/// `fm_mapping_close`.
pub struct FmMapping {
    _opaque: [u8; 0],
}

/// A view of a mapping (`MapViewOfFile`'s pointer). Unmap with
/// `fm_view_unmap`.
pub struct FmView {
    _opaque: [u8; 0],
}

/// A mapping made ready for a child process (`fm_mapping_inherit`). Close
/// with `fm_inheritable_close` once the child is started.
pub struct FmInheritable {
    _opaque: [u8; 0],
}

pub(crate) struct MappingBody(Mapping);
pub(crate) struct ViewBody(View);
pub(crate) struct InheritableBody {
    _inner: filemap::Inheritable,
    token: std::ffi::CString,
}

impl Kind for MappingBody {
    const MAGIC: u64 = 0x464d_4d41_5050_0001;
    const NAME: &'static str = "FmMapping";
    type Opaque = FmMapping;
}
impl Kind for ViewBody {
    const MAGIC: u64 = 0x464d_5649_4557_0002;
    const NAME: &'static str = "FmView";
    type Opaque = FmView;
}
impl Kind for InheritableBody {
    const MAGIC: u64 = 0x464d_494e_4852_0003;
    const NAME: &'static str = "FmInheritable";
    type Opaque = FmInheritable;
}

fn access(a: u32) -> Result<Access> {
    match a {
        FM_ACCESS_READ => Ok(Access::Read),
        FM_ACCESS_READ_WRITE => Ok(Access::ReadWrite),
        _ => Err(Fail::arg(format!(
            "access {a} is not FM_ACCESS_READ (1) or FM_ACCESS_READ_WRITE (2)"
        ))),
    }
}

fn view_access(a: u32) -> Result<ViewAccess> {
    match a {
        FM_ACCESS_READ => Ok(ViewAccess::Read),
        FM_ACCESS_READ_WRITE => Ok(ViewAccess::ReadWrite),
        FM_ACCESS_COPY_ON_WRITE => Ok(ViewAccess::CopyOnWrite),
        _ => Err(Fail::arg(format!(
            "view access {a} is not FM_ACCESS_READ (1), FM_ACCESS_READ_WRITE (2) or FM_ACCESS_COPY_ON_WRITE (3)"
        ))),
    }
}

/// Creates the named mapping `name` of `size` bytes, zero-filled, backed
/// by memory (`CreateFileMapping(INVALID_HANDLE_VALUE, .., name)` with
/// create-new). The name lives while a process holds it.
///
/// Returns `FM_ALREADY_EXISTS` if the name is taken, `FM_INVALID_NAME`,
/// `FM_INVALID_SIZE` (0), `FM_NO_SPACE`.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
/// Ownership: `*out` is the caller's; free it with `fm_mapping_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_create(
    name: *const c_char,
    size: u64,
    out: *mut *mut FmMapping,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let m = Mapping::create(name, size)?;
        // SAFETY: checked non-null above; valid per the contract.
        unsafe { put_handle(out, MappingBody(m)) }
    })
}

/// Opens the existing named mapping `name` with `access`
/// (`FM_ACCESS_READ` or `FM_ACCESS_READ_WRITE`): `OpenFileMapping`.
///
/// Returns `FM_NOT_FOUND`, `FM_ACCESS_DENIED`, `FM_INVALID_NAME`.
///
/// # Safety
/// As `fm_mapping_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_open(
    name: *const c_char,
    access: u32,
    out: *mut *mut FmMapping,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let m = Mapping::open(name, self::access(access)?)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, MappingBody(m)) }
    })
}

/// Creates the named mapping, or opens it if it exists
/// (`CreateFileMapping` followed by `GetLastError() ==
/// ERROR_ALREADY_EXISTS`). `*created` (if not NULL) says which. An existing
/// object is never resized.
///
/// # Safety
/// As `fm_mapping_create`; `created` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_create_or_open(
    name: *const c_char,
    size: u64,
    out: *mut *mut FmMapping,
    created: *mut bool,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let (m, how) = Mapping::create_or_open(name, size)?;
        // SAFETY: `created` is NULL or writable; `out` checked non-null.
        unsafe {
            put_opt(created, how == Disposition::Created);
            put_handle(out, MappingBody(m))
        }
    })
}

/// Creates the named mapping `name` backed by the file at `path`
/// (`CreateFileMapping(hFile, .., name)`): other processes that open the
/// name map the file's pages. `size` 0 maps the whole file; a larger size
/// grows it.
///
/// # Safety
/// `name` and `path` are NUL-terminated strings; `out` is valid for a
/// pointer write. Ownership as `fm_mapping_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_create_file(
    name: *const c_char,
    path: *const c_char,
    size: u64,
    out: *mut *mut FmMapping,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let (name, path) = unsafe { (text(name, "name")?, text(path, "path")?) };
        let m = Mapping::create_file(name, path, size)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, MappingBody(m)) }
    })
}

/// Maps the file at `path`, unnamed (`CreateFile` + `CreateFileMapping`
/// without a name). `size` 0 maps the whole file; a larger size grows it.
/// Read-write access creates a missing file.
///
/// Returns `FM_FILE_NOT_FOUND`, `FM_ACCESS_DENIED`, `FM_INVALID_SIZE`.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_from_path(
    path: *const c_char,
    size: u64,
    access: u32,
    out: *mut *mut FmMapping,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let path = unsafe { text(path, "path")? };
        let m = Mapping::from_path(path, size, self::access(access)?)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, MappingBody(m)) }
    })
}

/// A new unnamed mapping of `size` bytes, backed by memory
/// (`CreateFileMapping` with no name): for this process and the children it
/// hands it to with `fm_mapping_inherit`.
///
/// # Safety
/// `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_anonymous(size: u64, out: *mut *mut FmMapping) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        let m = Mapping::anonymous(size)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, MappingBody(m)) }
    })
}

/// Removes the name `name` (a persistent mapping's, or one whose holders
/// died): processes that hold it keep their views.
///
/// # Safety
/// `name` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_remove(name: *const c_char) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        Ok(Mapping::remove(name)?)
    })
}

/// The mapping's size in bytes, in `*size`.
///
/// # Safety
/// `mapping` is a handle from this API (or NULL: refused); `size` is valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_size(mapping: *mut FmMapping, size: *mut u64) -> FmStatus {
    run(|| {
        check_out(size, "size")?;
        // SAFETY: per this function's contract.
        let m = unsafe { body::<MappingBody>(mapping)? };
        // SAFETY: checked non-null above.
        unsafe { size.write(m.0.len()) };
        Ok(())
    })
}

/// Closes the mapping handle (`CloseHandle`). Views made from it stay
/// valid until unmapped; the name goes when its last holder closes it.
/// NULL is accepted (nothing happens).
///
/// # Safety
/// `mapping` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_close(mapping: *mut FmMapping) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<MappingBody>(mapping) })
}

/// Prepares the mapping for a child process with `access`. Pass the token
/// (`fm_inheritable_token`) to the child (an argument or the environment),
/// which calls `fm_mapping_from_inherited`; on Unix the child must be
/// started with `fork`/`posix_spawn` (the descriptor is inheritable), on
/// Windows with `CreateProcess(bInheritHandles = TRUE)`.
///
/// # Safety
/// `mapping` is a handle from this API; `out` is valid for a pointer
/// write. Ownership: `*out` is the caller's; close it with
/// `fm_inheritable_close` once the child has started.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_inherit(
    mapping: *mut FmMapping,
    access: u32,
    out: *mut *mut FmInheritable,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let m = unsafe { body::<MappingBody>(mapping)? };
        let h = m.0.inherit(self::access(access)?)?;
        let token = std::ffi::CString::new(h.token())
            .map_err(|_| Fail::new(FmStatus::FM_PANIC, "an inheritance token held a NUL"))?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, InheritableBody { _inner: h, token }) }
    })
}

/// The token to hand to the child. Ownership: the string belongs to the
/// handle and lives until `fm_inheritable_close`. NULL for a NULL or wrong
/// handle.
///
/// # Safety
/// `handle` is NULL or a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_inheritable_token(handle: *mut FmInheritable) -> *const c_char {
    // SAFETY: per this function's contract.
    match unsafe { body::<InheritableBody>(handle) } {
        Ok(h) => h.token.as_ptr(),
        Err(_) => std::ptr::null(),
    }
}

/// Closes this process's inheritable copy (the child keeps its own).
///
/// # Safety
/// `handle` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_inheritable_close(handle: *mut FmInheritable) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<InheritableBody>(handle) })
}

/// Picks up, in a child, the mapping its parent handed over with
/// `fm_mapping_inherit`. A token is taken at most once per process
/// (`FM_INVALID_TOKEN` the second time).
///
/// # Safety
/// `token` is a NUL-terminated string that came from the parent that
/// started this process; `out` is valid for a pointer write. The mapping
/// owns the inherited descriptor or handle from now on.
#[no_mangle]
pub unsafe extern "C" fn fm_mapping_from_inherited(
    token: *const c_char,
    out: *mut *mut FmMapping,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let token = unsafe { text(token, "token")? };
        // SAFETY: the token comes from this process's parent (the caller's
        // promise), checked by filemap against what it names.
        let m = unsafe { Mapping::from_inherited(token)? };
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, MappingBody(m)) }
    })
}

/// Maps `len` bytes of the mapping from `offset` with `access`
/// (`FM_ACCESS_READ`, `FM_ACCESS_READ_WRITE`, `FM_ACCESS_COPY_ON_WRITE`):
/// `MapViewOfFile`. `len` 0 maps from `offset` to the end, as
/// `MapViewOfFile`'s `dwNumberOfBytesToMap` 0. Any offset works (filemap
/// aligns for you).
///
/// Returns `FM_OUT_OF_RANGE`, `FM_ACCESS_DENIED` (more access than the
/// mapping has).
///
/// # Safety
/// `mapping` is a handle from this API; `out` is valid for a pointer
/// write. Ownership: `*out` is the caller's; free it with `fm_view_unmap`.
#[no_mangle]
pub unsafe extern "C" fn fm_view_map(
    mapping: *mut FmMapping,
    offset: u64,
    len: u64,
    access: u32,
    out: *mut *mut FmView,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let m = unsafe { body::<MappingBody>(mapping)? };
        let a = view_access(access)?;
        let v = if len == 0 {
            m.0.view(offset.., a)?
        } else {
            m.0.map(offset, len, a)?
        };
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, ViewBody(v)) }
    })
}

/// The view's first byte in `*data` and its length in `*len`.
///
/// Ownership: the bytes are shared memory, valid until `fm_view_unmap`;
/// other processes may change them at any time (use atomics, or one of
/// filemap's channels, to exchange data safely). Writing through a
/// read-only view faults.
///
/// # Safety
/// `view` is a handle from this API; `data` and `len` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fm_view_data(
    view: *mut FmView,
    data: *mut *mut c_void,
    len: *mut usize,
) -> FmStatus {
    run(|| {
        check_out(data, "data")?;
        check_out(len, "len")?;
        // SAFETY: per this function's contract.
        let v = unsafe { body::<ViewBody>(view)? };
        // SAFETY: both checked non-null above.
        unsafe {
            data.write(v.0.as_ptr().cast());
            len.write(v.0.len());
        }
        Ok(())
    })
}

/// Copies `len` bytes at `offset` of the view into `buf`, checked against
/// the view's bounds (`FM_OUT_OF_RANGE`), and `FM_TRUNCATED` if another
/// process shrank the object under the view.
///
/// # Safety
/// `view` is a handle from this API; `buf` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn fm_view_read(
    view: *mut FmView,
    offset: usize,
    buf: *mut c_void,
    len: usize,
) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let v = unsafe { body::<ViewBody>(view)? };
        // SAFETY: per this function's contract.
        let buf = unsafe { crate::handle::bytes_mut(buf, len, "buf")? };
        Ok(v.0.read_at(offset, buf)?)
    })
}

/// Copies `len` bytes from `data` into the view at `offset`, checked as
/// `fm_view_read`; `FM_ACCESS_DENIED` for a read-only view.
///
/// # Safety
/// `view` is a handle from this API; `data` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn fm_view_write(
    view: *mut FmView,
    offset: usize,
    data: *const c_void,
    len: usize,
) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let v = unsafe { body::<ViewBody>(view)? };
        // SAFETY: per this function's contract.
        let data = unsafe { bytes(data, len, "data")? };
        Ok(v.0.write_at(offset, data)?)
    })
}

/// Starts writing the view's dirty pages back to its file
/// (`FlushViewOfFile`); nothing to do for memory-backed mappings.
///
/// # Safety
/// `view` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_view_flush(view: *mut FmView) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let v = unsafe { body::<ViewBody>(view)? };
        Ok(v.0.flush()?)
    })
}

/// Unmaps the view and frees its handle (`UnmapViewOfFile`). NULL is
/// accepted.
///
/// # Safety
/// `view` is NULL or a handle from this API; neither it nor the pointer
/// from `fm_view_data` is used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_view_unmap(view: *mut FmView) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<ViewBody>(view) })
}
