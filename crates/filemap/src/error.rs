//! The one error type of the crate.

use std::io;
use std::time::Duration;

/// `s` with control characters (a NUL, a newline) escaped as Rust writes
/// them (`\0`, `\n`), and everything else, backslashes included, as it is:
/// a message stays one line and shows what was given.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, one variant per cause.
///
/// Every message names the object it is about (a mapping name such as `jobs`,
/// a file path, or `<unnamed>`), and OS failures name the call that failed
/// and its error code, so that a log line alone says what happened.
///
/// ```
/// use filemap::{Error, Mapping};
///
/// match Mapping::open("filemap-doc-no-such-object", filemap::Access::Read) {
///     Err(Error::NotFound { name }) => assert_eq!(name, "filemap-doc-no-such-object"),
///     other => panic!("expected NotFound, got {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object of that name exists (or the last process holding it has exited).
    #[error("no mapping named `{name}` exists")]
    NotFound {
        /// The name as the caller gave it.
        name: String,
    },

    /// The file to map does not exist: asked for read-only (so not
    /// created), or its folder does not exist.
    #[error("no file `{}` exists (read-write access creates a missing file, but not a missing folder)", escape_controls(.path))]
    FileNotFound {
        /// The path as the caller gave it.
        path: String,
    },

    /// Create-new was asked for, and an object of that name already exists.
    #[error("a mapping named `{name}` already exists; open it, or pick another name")]
    AlreadyExists {
        /// The name as the caller gave it.
        name: String,
    },

    /// The OS refused the access, or the caller asked for more access than it holds
    /// (for example a read-write view of a mapping opened read-only).
    #[error("access to `{object}` denied: {reason}")]
    AccessDenied {
        /// The object concerned.
        object: String,
        /// Why, including the OS call and code when the OS refused.
        reason: String,
    },

    /// The name breaks the portable naming rule (see [`crate::name`]).
    // Control characters (a NUL, a newline) are shown escaped, so a message
    // stays one line and shows what was really given.
    #[error("invalid mapping name `{}`: {reason}", escape_controls(.name))]
    InvalidName {
        /// The name as the caller gave it.
        name: String,
        /// Which part of the rule it breaks.
        reason: String,
    },

    /// A size that cannot be used: zero where a size is needed, a size that
    /// overflows, or a size a read-only file cannot be grown to.
    #[error("invalid size for `{object}`: {reason}")]
    InvalidSize {
        /// The object concerned.
        object: String,
        /// Why the size was refused.
        reason: String,
    },

    /// A view's range does not lie inside the mapping (or is empty, or overflows).
    #[error(
        "range at offset {offset} of length {len} is outside `{object}`, which is {size} bytes"
    )]
    OutOfRange {
        /// The object (or view) concerned.
        object: String,
        /// Start of the requested range.
        offset: u64,
        /// Length of the requested range.
        len: u64,
        /// Size of the object or view.
        size: u64,
    },

    /// A view could not be placed at the address asked for
    /// ([`crate::Mapping::map_at`]): the range is in use, or the address does
    /// not fit the allocation granularity. Nothing already mapped is touched.
    #[error("cannot place a view of `{object}` at {address:#x}: {reason}")]
    Placement {
        /// The object concerned.
        object: String,
        /// The address asked for (of the view's first byte).
        address: usize,
        /// Why.
        reason: String,
    },

    /// An atomic access at an offset that is not a multiple of the type's alignment.
    #[error("offset {offset} in `{object}` is not aligned to {align} bytes")]
    Misaligned {
        /// The object concerned.
        object: String,
        /// The offending offset (relative to the view).
        offset: u64,
        /// The alignment required.
        align: u64,
    },

    /// The object exists but its creator has not finished making it (for example it
    /// still has size 0) and it did not become ready within the wait.
    #[error("`{object}` is not ready after waiting {waited:?}: {reason}")]
    NotReady {
        /// The object concerned.
        object: String,
        /// How long the opener waited.
        waited: Duration,
        /// What was still missing.
        reason: String,
    },

    /// The backing store (for example `/dev/shm`, or the Windows commit limit)
    /// cannot hold an object of the requested size. Reported at creation, never
    /// later as a fault on first touch.
    #[error("not enough space for `{object}` ({size} bytes): {call} failed: {source}")]
    NoSpace {
        /// The object concerned.
        object: String,
        /// The size asked for.
        size: u64,
        /// The OS call that failed.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A token passed to [`crate::Mapping::from_inherited`] is malformed or does
    /// not describe a mapping this process inherited.
    #[error("invalid inherited-mapping token `{token}`: {reason}")]
    InvalidToken {
        /// The token as given.
        token: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A segment's header or indices are not what filemap wrote: wrong magic,
    /// out-of-range sizes or indices. Whatever another process wrote is checked
    /// before use; this is the error, never a crash.
    #[error("`{object}` is corrupt: {reason}")]
    Corrupt {
        /// The object concerned.
        object: String,
        /// What failed to check out.
        reason: String,
    },

    /// One message another process sent does not decode as the type this
    /// process reads it as (a length that is not a whole number of values,
    /// bytes that do not deserialize, a request without its header). The
    /// message was taken off the channel and dropped; the channel itself is
    /// intact and the next receive goes on with the next message.
    #[error("`{object}` delivered a malformed message, which was dropped: {reason}")]
    Malformed {
        /// The channel or service concerned.
        object: String,
        /// What did not decode.
        reason: String,
    },

    /// A page of a view lost its backing while this process had it mapped:
    /// another process shrank the object (`ftruncate`, `truncate`), or the
    /// backing store was full when a page of a foreign object was first
    /// touched. The access completed on a private zero page (never a crash);
    /// what was there is gone, and what is written there reaches no one.
    #[error(
        "`{object}` was shrunk under this process's view (or a page of it could not be backed): \
         the bytes past its end are gone; open it again to see what is left"
    )]
    Truncated {
        /// The object concerned.
        object: String,
    },

    /// A named file-backed mapping's file is no longer what the name maps:
    /// it was removed, replaced by another file at the same path, or shrunk
    /// below the mapping's size.
    #[error("`{object}` maps the file `{}`, but {reason}", escape_controls(.path))]
    FileChanged {
        /// The mapping's name.
        object: String,
        /// The file's path, as its creator recorded it.
        path: String,
        /// What changed.
        reason: String,
    },

    /// Create-or-open found the name taken by a different mapping than the
    /// one asked for (another file, or memory instead of a file).
    #[error("a mapping named `{name}` already exists, but {reason}")]
    Conflict {
        /// The name as the caller gave it.
        name: String,
        /// What the existing mapping is, and what was asked for.
        reason: String,
    },

    /// A view or commit reached past the committed part of a mapping created
    /// with [`Options::reserve`](crate::Options::reserve): the pages are
    /// reserved but have no memory yet. Commit them first
    /// ([`Mapping::commit`](crate::Mapping::commit)).
    #[error(
        "`{object}`: bytes {offset}..{end} are not all committed (the committed start is \
         {committed} bytes); commit them first",
        end = .offset.saturating_add(*.len)
    )]
    NotCommitted {
        /// The object concerned.
        object: String,
        /// Start of the range asked for.
        offset: u64,
        /// Its length.
        len: u64,
        /// How many bytes from the start are committed now.
        committed: u64,
    },

    /// A valid segment of another kind, format version or layout (for example
    /// made by a build with another pointer width or endianness).
    #[error("`{object}` is incompatible: {reason}")]
    Incompatible {
        /// The object concerned.
        object: String,
        /// What differs.
        reason: String,
    },

    /// A blocking operation's time ran out.
    #[error("`{object}`: timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// The object concerned.
        object: String,
        /// What was waited for.
        what: &'static str,
        /// How long.
        waited: Duration,
    },

    /// The process on the other side closed its end or died.
    #[error("`{object}`: {reason}")]
    PeerGone {
        /// The object concerned.
        object: String,
        /// Closed cleanly or died, and which process.
        reason: String,
    },

    /// A role that only one process may hold (such as a channel's sender) is
    /// held by another live process.
    #[error("`{object}` is busy: {reason}")]
    Busy {
        /// The object concerned.
        object: String,
        /// Who holds it.
        reason: String,
    },

    /// The operation is not available on this platform.
    #[error("`{object}`: {what} is not supported on this platform")]
    Unsupported {
        /// The object concerned.
        object: String,
        /// The operation.
        what: String,
    },

    /// Any other OS failure.
    #[error("`{object}`: {call} failed: {source}")]
    Os {
        /// The object concerned.
        object: String,
        /// The OS call that failed, e.g. `mmap` or `MapViewOfFileEx`.
        call: &'static str,
        /// The OS error; its `raw_os_error()` is the code.
        #[source]
        source: io::Error,
    },
}

/// The kind of an [`Error`], as [`std::io::ErrorKind`] is of an I/O error:
/// what callers branch on (retry, report, exit code, exception class)
/// without naming every variant. Several variants share a kind; new
/// variants join an existing kind where one fits.
///
/// ```
/// use filemap::{ErrorKind, Mapping};
///
/// let e = Mapping::open("filemap-doc-kind-missing", filemap::Access::Read).unwrap_err();
/// assert_eq!(e.kind(), ErrorKind::NotFound);
/// assert_eq!(e.kind().as_str(), "NotFound");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object (or, for a file mapping, its file) does not exist, or no
    /// longer is what it was: [`Error::NotFound`], [`Error::FileNotFound`],
    /// [`Error::FileChanged`].
    NotFound,
    /// The name is taken: [`Error::AlreadyExists`], [`Error::Conflict`].
    AlreadyExists,
    /// The OS, or a check of who made the object, refused: [`Error::AccessDenied`].
    AccessDenied,
    /// The call's arguments cannot work: [`Error::InvalidName`],
    /// [`Error::InvalidSize`], [`Error::OutOfRange`], [`Error::Misaligned`],
    /// [`Error::InvalidToken`], [`Error::Placement`], [`Error::NotCommitted`].
    InvalidArgument,
    /// A deadline passed: [`Error::Timeout`], [`Error::NotReady`].
    Timeout,
    /// The process at the other end is gone: [`Error::PeerGone`].
    PeerGone,
    /// Shared bytes fail their checks: [`Error::Corrupt`], and one message
    /// that does not decode: [`Error::Malformed`].
    Corrupt,
    /// Well-formed, but not what the caller expects (another kind, version
    /// or layout): [`Error::Incompatible`].
    Incompatible,
    /// Another process shrank the object under a view: [`Error::Truncated`].
    Truncated,
    /// Someone else holds what is needed: [`Error::Busy`].
    Busy,
    /// The system cannot give the memory or disk: [`Error::NoSpace`].
    NoSpace,
    /// Not on this platform: [`Error::Unsupported`].
    Unsupported,
    /// Any other OS failure: [`Error::Os`].
    Os,
}

impl ErrorKind {
    /// The kind's name (`"NotFound"`, `"AccessDenied"`, ...), as the Python
    /// exception classes and the test helper's replies spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::AlreadyExists => "AlreadyExists",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::PeerGone => "PeerGone",
            ErrorKind::Corrupt => "Corrupt",
            ErrorKind::Incompatible => "Incompatible",
            ErrorKind::Truncated => "Truncated",
            ErrorKind::Busy => "Busy",
            ErrorKind::NoSpace => "NoSpace",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::Os => "Os",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The kind of this error (see [`ErrorKind`] for which variants share one).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } | Error::FileNotFound { .. } | Error::FileChanged { .. } => {
                ErrorKind::NotFound
            }
            Error::AlreadyExists { .. } | Error::Conflict { .. } => ErrorKind::AlreadyExists,
            Error::AccessDenied { .. } => ErrorKind::AccessDenied,
            Error::InvalidName { .. }
            | Error::InvalidSize { .. }
            | Error::OutOfRange { .. }
            | Error::Misaligned { .. }
            | Error::InvalidToken { .. }
            | Error::Placement { .. }
            | Error::NotCommitted { .. } => ErrorKind::InvalidArgument,
            Error::Timeout { .. } | Error::NotReady { .. } => ErrorKind::Timeout,
            Error::PeerGone { .. } => ErrorKind::PeerGone,
            Error::Corrupt { .. } | Error::Malformed { .. } => ErrorKind::Corrupt,
            Error::Incompatible { .. } => ErrorKind::Incompatible,
            Error::Truncated { .. } => ErrorKind::Truncated,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::NoSpace { .. } => ErrorKind::NoSpace,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Os { .. } => ErrorKind::Os,
        }
    }

    /// Classifies an OS error from `call` on `object` into the matching variant:
    /// "not found", "exists", "permission" and "no space" get their own
    /// variants; everything else is [`Error::Os`].
    pub(crate) fn os(object: &str, call: &'static str, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                name: object.to_owned(),
            },
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                name: object.to_owned(),
            },
            io::ErrorKind::PermissionDenied => Error::AccessDenied {
                object: object.to_owned(),
                reason: format!("{call} failed: {source}"),
            },
            _ => Error::Os {
                object: object.to_owned(),
                call,
                source,
            },
        }
    }

    /// Like [`Error::os`], but an out-of-space error becomes [`Error::NoSpace`].
    pub(crate) fn os_sized(
        object: &str,
        size: u64,
        call: &'static str,
        source: io::Error,
    ) -> Error {
        if is_no_space(&source) {
            Error::NoSpace {
                object: object.to_owned(),
                size,
                call,
                source,
            }
        } else {
            Error::os(object, call, source)
        }
    }

    /// The OS error code, when the error came from the OS.
    pub fn os_code(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } | Error::NoSpace { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn is_no_space(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(c) if c == libc_enospc() || c == libc_enomem())
    }
    #[cfg(windows)]
    {
        // ERROR_NOT_ENOUGH_MEMORY, ERROR_OUTOFMEMORY, ERROR_COMMITMENT_LIMIT,
        // ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL.
        matches!(e.raw_os_error(), Some(8 | 14 | 1455 | 112 | 39))
    }
    #[cfg(not(any(unix, windows)))]
    {
        false
    }
}

#[cfg(unix)]
fn libc_enospc() -> i32 {
    rustix::io::Errno::NOSPC.raw_os_error()
}

#[cfg(unix)]
fn libc_enomem() -> i32 {
    rustix::io::Errno::NOMEM.raw_os_error()
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::NotFound { .. } | Error::FileNotFound { .. } => io::ErrorKind::NotFound,
            Error::AlreadyExists { .. } | Error::Conflict { .. } => io::ErrorKind::AlreadyExists,
            Error::FileChanged { .. } => io::ErrorKind::NotFound,
            Error::NotCommitted { .. } => io::ErrorKind::InvalidInput,
            Error::AccessDenied { .. } => io::ErrorKind::PermissionDenied,
            Error::InvalidName { .. }
            | Error::InvalidSize { .. }
            | Error::OutOfRange { .. }
            | Error::Misaligned { .. }
            | Error::InvalidToken { .. } => io::ErrorKind::InvalidInput,
            Error::NotReady { .. } | Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::Corrupt { .. } | Error::Malformed { .. } | Error::Incompatible { .. } => {
                io::ErrorKind::InvalidData
            }
            Error::PeerGone { .. } => io::ErrorKind::BrokenPipe,
            Error::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            Error::Placement { .. } => io::ErrorKind::AddrInUse,
            Error::Busy { .. } => io::ErrorKind::ResourceBusy,
            Error::NoSpace { .. } => io::ErrorKind::StorageFull,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::Os { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}
