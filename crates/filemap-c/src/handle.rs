//! Opaque handles that know their kind, and the checks every pointer from C
//! goes through.

use std::ffi::{c_char, c_void, CStr};
use std::time::Duration;

use crate::status::{Fail, Result};

/// What C holds: a `#[repr(C)]` box whose first word says what it is, so a
/// handle of another kind (or one closed, while its memory still says so)
/// is refused instead of used.
#[repr(C)]
pub(crate) struct Handle<T> {
    magic: u64,
    body: T,
}

/// A kind of handle: its tag and its name in messages.
pub(crate) trait Kind: Sized {
    /// The tag in the handle's first word.
    const MAGIC: u64;
    /// The C type's name, for messages.
    const NAME: &'static str;
    /// The opaque type C sees.
    type Opaque;
}

/// What a closed handle's first word reads until its memory is reused.
const CLOSED: u64 = 0x_dead_f11e_c105_ed00;

/// Boxes `body` as a new handle for C.
pub(crate) fn new_handle<T: Kind>(body: T) -> *mut T::Opaque {
    Box::into_raw(Box::new(Handle {
        magic: T::MAGIC,
        body,
    }))
    .cast()
}

/// Stores a new handle in `out`.
///
/// # Safety
/// `out` is null (refused) or valid for a pointer write.
pub(crate) unsafe fn put_handle<T: Kind>(out: *mut *mut T::Opaque, body: T) -> Result<()> {
    // SAFETY: checked for null; valid for writes per the caller.
    unsafe { *out = new_handle(body) };
    Ok(())
}

/// Checks that `out` can take a handle (before the work that makes one).
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Fail::arg(format!(
            "`{what}` is NULL: no place for the result"
        )));
    }
    Ok(())
}

/// The body of the handle `p`, checked for null and for its kind.
///
/// # Safety
/// `p` is null, or points to at least 8 readable bytes (any live filemap
/// handle does), and no other reference to this handle's body is live
/// (one thread at a time).
pub(crate) unsafe fn body<'a, T: Kind>(p: *mut T::Opaque) -> Result<&'a mut T> {
    if p.is_null() {
        return Err(Fail::arg(format!("the {} handle is NULL", T::NAME)));
    }
    let h = p.cast::<Handle<T>>();
    // SAFETY: every handle begins with its magic word (`#[repr(C)]`), and
    // `p` points to a handle per the caller; reading it as `u64` needs 8
    // readable bytes, aligned (boxes are).
    let magic = unsafe { std::ptr::addr_of!((*h).magic).read() };
    if magic != T::MAGIC {
        return Err(Fail::arg(if magic == CLOSED {
            format!("this {} handle was closed already", T::NAME)
        } else {
            format!(
                "not a {} handle (a handle of another kind, or not a filemap handle)",
                T::NAME
            )
        }));
    }
    // SAFETY: the magic says it is a live `Handle<T>`, made by `new_handle`;
    // the caller promises no other reference to it is live.
    Ok(unsafe { &mut (*h).body })
}

/// Closes the handle `p` (nothing for NULL, nor for a handle of another
/// kind, which is refused).
///
/// # Safety
/// As [`body`]; `p` is not used again.
pub(crate) unsafe fn close<T: Kind>(p: *mut T::Opaque) -> Result<()> {
    if p.is_null() {
        return Ok(());
    }
    // SAFETY: as `body` (the kind is checked there).
    unsafe { body::<T>(p)? };
    let h = p.cast::<Handle<T>>();
    // SAFETY: checked above: a live `Handle<T>` from `Box::into_raw`,
    // closed once (its magic changes first).
    unsafe {
        (*h).magic = CLOSED;
        let boxed = Box::from_raw(h);
        let Handle { body, .. } = *boxed;
        // The memory is freed here; the body (and its OS objects) goes
        // with it.
        drop(body);
    }
    Ok(())
}

/// A C string argument as `&str`.
///
/// # Safety
/// `s` is null (refused) or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn text<'a>(s: *const c_char, what: &str) -> Result<&'a str> {
    if s.is_null() {
        return Err(Fail::arg(format!("`{what}` is NULL")));
    }
    // SAFETY: NUL-terminated per the caller.
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str().map_err(|_| {
        Fail::arg(format!(
            "`{what}` is not UTF-8: {}",
            String::from_utf8_lossy(c.to_bytes())
        ))
    })
}

/// `len` bytes at `p` (NULL allowed for 0 bytes).
///
/// # Safety
/// `p` is null or valid for `len` bytes of reads that outlive `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::arg(format!(
            "`{what}` is NULL with a length of {len}"
        )));
    }
    // SAFETY: non-null and valid for `len` bytes per the caller.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), len) })
}

/// `len` writable bytes at `p` (NULL allowed for 0 bytes).
///
/// # Safety
/// `p` is null or valid for `len` bytes of writes that outlive `'a`, and
/// not read by anything else meanwhile.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Fail::arg(format!(
            "`{what}` is NULL with a length of {len}"
        )));
    }
    // SAFETY: non-null and valid for `len` bytes of writes per the caller.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast(), len) })
}

/// Writes `v` to `p` if `p` is not null (an optional output).
///
/// # Safety
/// `p` is null or valid for a write of `T`.
pub(crate) unsafe fn put_opt<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: non-null and valid per the caller.
        unsafe { p.write(v) };
    }
}

/// How long a waiting call waits: the three forms of each.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// `*_try_*`: not at all.
    No,
    /// The plain form: as long as it takes.
    Forever,
    /// `*_timeout`: at most this long.
    For(Duration),
}

impl Wait {
    pub(crate) fn ms(ms: u32) -> Wait {
        Wait::For(Duration::from_millis(u64::from(ms)))
    }
}
