//! Status codes, the thread's last error message, and the boundary that
//! keeps panics out of C.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call did: `FM_OK`, or why it did not. The codes from
/// `FM_NOT_FOUND` to `FM_OS` mirror the Rust crate's `filemap::Error`
/// variants one to one; the others are the C API's own.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum FmStatus {
    /// Done.
    FM_OK = 0,
    /// A `*_try_*` call found nothing to take, no room, or the lock held:
    /// it would have had to wait.
    FM_WOULD_BLOCK = 1,
    /// A receive into a buffer found a message longer than the buffer. The
    /// message stays queued for this handle; the length output says how
    /// long it is. Receive again with a buffer that large, or borrow it.
    FM_BUFFER_TOO_SMALL = 2,
    /// A null pointer, a handle of another kind, a flag out of range, a
    /// string that is not UTF-8, or a call out of order (a commit with no
    /// reservation).
    FM_INVALID_ARGUMENT = 3,
    /// A panic inside filemap, caught at the boundary: a bug; the message
    /// says where.
    FM_PANIC = 4,
    /// An error this version of the C API does not know by name (a newer
    /// filemap); the message says what it is.
    FM_UNKNOWN = 5,
    /// No object of that name exists.
    FM_NOT_FOUND = 10,
    /// The file to map does not exist.
    FM_FILE_NOT_FOUND = 11,
    /// Create-new was asked for, and the name is taken.
    FM_ALREADY_EXISTS = 12,
    /// The OS refused the access, or more access was asked than is held.
    FM_ACCESS_DENIED = 13,
    /// The name breaks filemap's portable naming rule.
    FM_INVALID_NAME = 14,
    /// A size that cannot be used (zero, overflowing, over a channel's limit).
    FM_INVALID_SIZE = 15,
    /// A range outside the mapping, view or message.
    FM_OUT_OF_RANGE = 16,
    /// A view could not be placed at the address asked for.
    FM_PLACEMENT = 17,
    /// An offset not aligned for an atomic access.
    FM_MISALIGNED = 18,
    /// The object's creator has not finished making it.
    FM_NOT_READY = 19,
    /// The backing store cannot hold an object of that size.
    FM_NO_SPACE = 20,
    /// An inheritance token that is malformed, used, or not for this process.
    FM_INVALID_TOKEN = 21,
    /// Shared memory holds values its protocol never writes (a hostile or
    /// broken peer).
    FM_CORRUPT = 22,
    /// The object's header is not a filemap header of its kind.
    FM_MALFORMED = 23,
    /// Another process shrank the object under this process's view.
    FM_TRUNCATED = 24,
    /// The file behind a named file-backed mapping was replaced.
    FM_FILE_CHANGED = 25,
    /// The name exists with another kind, size or type than asked.
    FM_CONFLICT = 26,
    /// A reserved range that is not committed yet.
    FM_NOT_COMMITTED = 27,
    /// Made by an incompatible version of filemap, or of another kind.
    FM_INCOMPATIBLE = 28,
    /// The wait's time ran out.
    FM_TIMEOUT = 29,
    /// The other end closed or died.
    FM_PEER_GONE = 30,
    /// The end (or the name) is held by another live process.
    FM_BUSY = 31,
    /// Not available on this OS or this object.
    FM_UNSUPPORTED = 32,
    /// Another OS failure; the message names the call and its code.
    FM_OS = 33,
}

impl FmStatus {
    /// The status of a Rust error.
    pub(crate) fn of(e: &filemap::Error) -> FmStatus {
        use filemap::Error as E;
        match e {
            E::NotFound { .. } => FmStatus::FM_NOT_FOUND,
            E::FileNotFound { .. } => FmStatus::FM_FILE_NOT_FOUND,
            E::AlreadyExists { .. } => FmStatus::FM_ALREADY_EXISTS,
            E::AccessDenied { .. } => FmStatus::FM_ACCESS_DENIED,
            E::InvalidName { .. } => FmStatus::FM_INVALID_NAME,
            E::InvalidSize { .. } => FmStatus::FM_INVALID_SIZE,
            E::OutOfRange { .. } => FmStatus::FM_OUT_OF_RANGE,
            E::Placement { .. } => FmStatus::FM_PLACEMENT,
            E::Misaligned { .. } => FmStatus::FM_MISALIGNED,
            E::NotReady { .. } => FmStatus::FM_NOT_READY,
            E::NoSpace { .. } => FmStatus::FM_NO_SPACE,
            E::InvalidToken { .. } => FmStatus::FM_INVALID_TOKEN,
            E::Corrupt { .. } => FmStatus::FM_CORRUPT,
            E::Malformed { .. } => FmStatus::FM_MALFORMED,
            E::Truncated { .. } => FmStatus::FM_TRUNCATED,
            E::FileChanged { .. } => FmStatus::FM_FILE_CHANGED,
            E::Conflict { .. } => FmStatus::FM_CONFLICT,
            E::NotCommitted { .. } => FmStatus::FM_NOT_COMMITTED,
            E::Incompatible { .. } => FmStatus::FM_INCOMPATIBLE,
            E::Timeout { .. } => FmStatus::FM_TIMEOUT,
            E::PeerGone { .. } => FmStatus::FM_PEER_GONE,
            E::Busy { .. } => FmStatus::FM_BUSY,
            E::Unsupported { .. } => FmStatus::FM_UNSUPPORTED,
            E::Os { .. } => FmStatus::FM_OS,
            _ => FmStatus::FM_UNKNOWN,
        }
    }

    /// The code's name, as the header spells it.
    pub fn name(self) -> &'static CStr {
        match self {
            FmStatus::FM_OK => c"FM_OK",
            FmStatus::FM_WOULD_BLOCK => c"FM_WOULD_BLOCK",
            FmStatus::FM_BUFFER_TOO_SMALL => c"FM_BUFFER_TOO_SMALL",
            FmStatus::FM_INVALID_ARGUMENT => c"FM_INVALID_ARGUMENT",
            FmStatus::FM_PANIC => c"FM_PANIC",
            FmStatus::FM_UNKNOWN => c"FM_UNKNOWN",
            FmStatus::FM_NOT_FOUND => c"FM_NOT_FOUND",
            FmStatus::FM_FILE_NOT_FOUND => c"FM_FILE_NOT_FOUND",
            FmStatus::FM_ALREADY_EXISTS => c"FM_ALREADY_EXISTS",
            FmStatus::FM_ACCESS_DENIED => c"FM_ACCESS_DENIED",
            FmStatus::FM_INVALID_NAME => c"FM_INVALID_NAME",
            FmStatus::FM_INVALID_SIZE => c"FM_INVALID_SIZE",
            FmStatus::FM_OUT_OF_RANGE => c"FM_OUT_OF_RANGE",
            FmStatus::FM_PLACEMENT => c"FM_PLACEMENT",
            FmStatus::FM_MISALIGNED => c"FM_MISALIGNED",
            FmStatus::FM_NOT_READY => c"FM_NOT_READY",
            FmStatus::FM_NO_SPACE => c"FM_NO_SPACE",
            FmStatus::FM_INVALID_TOKEN => c"FM_INVALID_TOKEN",
            FmStatus::FM_CORRUPT => c"FM_CORRUPT",
            FmStatus::FM_MALFORMED => c"FM_MALFORMED",
            FmStatus::FM_TRUNCATED => c"FM_TRUNCATED",
            FmStatus::FM_FILE_CHANGED => c"FM_FILE_CHANGED",
            FmStatus::FM_CONFLICT => c"FM_CONFLICT",
            FmStatus::FM_NOT_COMMITTED => c"FM_NOT_COMMITTED",
            FmStatus::FM_INCOMPATIBLE => c"FM_INCOMPATIBLE",
            FmStatus::FM_TIMEOUT => c"FM_TIMEOUT",
            FmStatus::FM_PEER_GONE => c"FM_PEER_GONE",
            FmStatus::FM_BUSY => c"FM_BUSY",
            FmStatus::FM_UNSUPPORTED => c"FM_UNSUPPORTED",
            FmStatus::FM_OS => c"FM_OS",
        }
    }

    /// Every code, for `fm_status_name` and the tests.
    pub(crate) const ALL: [FmStatus; 30] = [
        FmStatus::FM_OK,
        FmStatus::FM_WOULD_BLOCK,
        FmStatus::FM_BUFFER_TOO_SMALL,
        FmStatus::FM_INVALID_ARGUMENT,
        FmStatus::FM_PANIC,
        FmStatus::FM_UNKNOWN,
        FmStatus::FM_NOT_FOUND,
        FmStatus::FM_FILE_NOT_FOUND,
        FmStatus::FM_ALREADY_EXISTS,
        FmStatus::FM_ACCESS_DENIED,
        FmStatus::FM_INVALID_NAME,
        FmStatus::FM_INVALID_SIZE,
        FmStatus::FM_OUT_OF_RANGE,
        FmStatus::FM_PLACEMENT,
        FmStatus::FM_MISALIGNED,
        FmStatus::FM_NOT_READY,
        FmStatus::FM_NO_SPACE,
        FmStatus::FM_INVALID_TOKEN,
        FmStatus::FM_CORRUPT,
        FmStatus::FM_MALFORMED,
        FmStatus::FM_TRUNCATED,
        FmStatus::FM_FILE_CHANGED,
        FmStatus::FM_CONFLICT,
        FmStatus::FM_NOT_COMMITTED,
        FmStatus::FM_INCOMPATIBLE,
        FmStatus::FM_TIMEOUT,
        FmStatus::FM_PEER_GONE,
        FmStatus::FM_BUSY,
        FmStatus::FM_UNSUPPORTED,
        FmStatus::FM_OS,
    ];
}

/// Why a call failed, on its way to C: the status and the message.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) status: FmStatus,
    pub(crate) message: Message,
}

/// A failure's message: made for the occasion, or a fixed text (for the
/// statuses of hot paths, `FM_WOULD_BLOCK`, which allocate nothing).
#[derive(Debug)]
pub(crate) enum Message {
    Owned(String),
    Static(&'static CStr),
}

impl Fail {
    pub(crate) fn new(status: FmStatus, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: Message::Owned(message.into()),
        }
    }

    /// A failure with a fixed message: no allocation, no formatting.
    pub(crate) const fn fixed(status: FmStatus, message: &'static CStr) -> Fail {
        Fail {
            status,
            message: Message::Static(message),
        }
    }

    /// `FM_INVALID_ARGUMENT` with `message`.
    pub(crate) fn arg(message: impl Into<String>) -> Fail {
        Fail::new(FmStatus::FM_INVALID_ARGUMENT, message)
    }
}

impl From<filemap::Error> for Fail {
    fn from(e: filemap::Error) -> Fail {
        Fail::new(FmStatus::of(&e), e.to_string())
    }
}

pub(crate) type Result<T, E = Fail> = std::result::Result<T, E>;

/// The thread's last message, as `fm_last_error_message` hands it out.
enum Last {
    Owned(CString),
    Static(&'static CStr),
}

thread_local! {
    static LAST_ERROR: RefCell<Last> = const { RefCell::new(Last::Static(c"")) };
}

fn set_last_error(message: Message) {
    let last = match message {
        Message::Static(s) => Last::Static(s),
        Message::Owned(m) => {
            // A message with a NUL in it (a name given with one, escaped by
            // filemap, but be sure) is cut there rather than lost.
            let mut bytes = m.into_bytes();
            if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                bytes.truncate(nul);
            }
            Last::Owned(CString::new(bytes).unwrap_or_default())
        }
    };
    LAST_ERROR.with(|l| *l.borrow_mut() = last);
}

/// Runs `f`, turning its error into a status and the thread's message, and
/// a panic into `FM_PANIC`: the one way every exported function returns.
#[inline]
pub(crate) fn run(f: impl FnOnce() -> Result<()>) -> FmStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => FmStatus::FM_OK,
        Ok(Err(fail)) => {
            let status = fail.status;
            set_last_error(fail.message);
            status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            set_last_error(Message::Owned(format!(
                "internal error in filemap (please report it): {what}"
            )));
            FmStatus::FM_PANIC
        }
    }
}

/// The message of the last call on this thread that did not return
/// `FM_OK`: it names the object and the cause (for an OS failure, the call
/// and its error code). Empty before any failure. For `FM_WOULD_BLOCK`, the
/// answer of a `*_try_*` call that is often polled in a loop, it is a
/// fixed text without the object's name, so that such a call formats and
/// allocates nothing.
///
/// Ownership: the string belongs to filemap; it stays valid, unchanged,
/// until the next call on this thread that fails. Copy it to keep it.
/// Never NULL.
#[no_mangle]
pub extern "C" fn fm_last_error_message() -> *const c_char {
    LAST_ERROR.with(|l| match &*l.borrow() {
        Last::Owned(c) => c.as_ptr(),
        Last::Static(s) => s.as_ptr(),
    })
}

/// The name of a status code (`"FM_NOT_FOUND"` for `FM_NOT_FOUND`), or
/// `"FM_UNKNOWN"` for a number that is no code. A static string: never
/// freed, never NULL.
#[no_mangle]
pub extern "C" fn fm_status_name(status: i32) -> *const c_char {
    FmStatus::ALL
        .iter()
        .find(|s| **s as i32 == status)
        .map_or(c"FM_UNKNOWN", |s| s.name())
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let st = run(|| panic!("boom at the boundary"));
        assert_eq!(st, FmStatus::FM_PANIC);
        // SAFETY: fm_last_error_message returns a valid C string.
        let msg = unsafe { CStr::from_ptr(fm_last_error_message()) };
        let msg = msg.to_str().unwrap();
        assert!(msg.contains("boom at the boundary"), "{msg}");
    }

    #[test]
    fn every_error_variant_has_its_own_code() {
        let e = filemap::Error::NotFound { name: "x".into() };
        assert_eq!(FmStatus::of(&e), FmStatus::FM_NOT_FOUND);
        let mut names: Vec<_> = FmStatus::ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FmStatus::ALL.len());
        for s in FmStatus::ALL {
            // SAFETY: static strings.
            let n = unsafe { CStr::from_ptr(fm_status_name(s as i32)) };
            assert_eq!(n, s.name());
        }
        // SAFETY: static string.
        let n = unsafe { CStr::from_ptr(fm_status_name(9999)) };
        assert_eq!(n, c"FM_UNKNOWN");
    }
}
