//! Seeing what shared-memory objects exist, who holds them, and removing the
//! stale ones: what the `filemap` command-line tool shows.
//!
//! Available on Linux, where `/dev/shm` lists every POSIX shm object on the
//! machine and `/proc` tells which processes hold (`/proc/PID/fd`) or map
//! (`/proc/PID/maps`) each. Elsewhere these functions return
//! [`Error::Unsupported`](crate::Error::Unsupported); on Windows,
//! `filemap::os::windows::sections` lists the named sections (sizes,
//! headers, handle counts) instead.
//!
//! ```no_run
//! for o in filemap::inspect::list()? {
//!     println!("{} {} bytes {:?}, {} holders", o.name, o.size, o.state, o.holders.len());
//! }
//! # Ok::<(), filemap::Error>(())
//! ```

use crate::error::Result;
pub use crate::segment::{Detail, End, EndState, Observation};
use crate::segment::{Kind, Segment};

// The OS file: `/proc` and `/dev/shm` on Linux; elsewhere every call says
// it is unsupported.
#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(not(target_os = "linux"), path = "unsupported.rs")]
mod os;

/// Who made an object, as its mode bits record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// filemap, with [`Lifetime::Transient`](crate::Lifetime::Transient).
    Transient,
    /// filemap, with [`Lifetime::Persistent`](crate::Lifetime::Persistent).
    Persistent,
    /// Another program (Python, Boost, `shm_open` directly, ...).
    Foreign,
}

/// Whether anyone still uses an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// A filemap object that some process holds or maps.
    Live,
    /// A transient filemap object that no process holds or maps: its holders
    /// are gone (crashed), and filemap treats it as absent. Safe to remove.
    Stale,
    /// A persistent filemap object that no process holds right now; it stays
    /// by design until removed.
    Idle,
    /// Not created by filemap; never removed by [`remove_if_stale`].
    Foreign,
    /// A filemap object this process is not permitted to open, so it cannot
    /// tell whether a process holds it (another user's `0600` object).
    /// Never removed by [`remove_if_stale`].
    Unknown,
}

impl State {
    /// The lowercase word used by the CLI and its JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Stale => "stale",
            State::Idle => "idle",
            State::Foreign => "foreign",
            State::Unknown => "unknown",
        }
    }
}

impl Origin {
    /// The lowercase word used by the CLI and its JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Transient => "transient",
            Origin::Persistent => "persistent",
            Origin::Foreign => "foreign",
        }
    }
}

/// A process that holds an object open or has it mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// It has a descriptor open on the object.
    pub open: bool,
    /// It has the object mapped.
    pub mapped: bool,
}

/// What is known about one shared-memory object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    /// The name (without the leading `/`).
    pub name: String,
    /// Size in bytes (for a named file mapping, the mapping's size, not its
    /// record's).
    pub size: u64,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's user name, when `/etc/passwd` has it.
    pub user: Option<String>,
    /// Permission bits (`0o777` part).
    pub mode: u32,
    /// What backs it: memory, or for a named file mapping (whose
    /// `/dev/shm` entry is a small record naming the file) a file.
    pub backing: crate::mapping::Backing,
    /// For a named file mapping: the file's absolute path.
    pub file: Option<String>,
    /// For a named file mapping whose record this user would refuse to
    /// follow for read-write access (made by someone who may not open the
    /// file so, or writable by others than its owner): why. Opening it then
    /// fails with [`Error::AccessDenied`](crate::Error::AccessDenied).
    pub untrusted: Option<String>,
    /// Who made it.
    pub origin: Origin,
    /// Whether it is in use.
    pub state: State,
    /// Its filemap segment header, if it has one (read without opening the
    /// object, so looking never changes its state).
    pub header: Option<crate::segment::Header>,
    /// Processes that hold or map it (other than this one). Processes whose
    /// `/proc` entries this user may not read are not seen.
    pub holders: Vec<Holder>,
}

/// Every POSIX shared-memory object on the machine, sorted by name.
///
/// # Errors
/// [`Error::Unsupported`](crate::Error::Unsupported) off Linux;
/// [`Error::Os`](crate::Error::Os) when `/dev/shm` cannot be read.
pub fn list() -> Result<Vec<ObjectInfo>> {
    os::list()
}

/// What is known about the object `name`.
///
/// # Errors
/// [`Error::NotFound`](crate::Error::NotFound), [`Error::InvalidName`](crate::Error::InvalidName),
/// [`Error::Unsupported`](crate::Error::Unsupported) off Linux.
pub fn info(name: &str) -> Result<ObjectInfo> {
    let n = crate::name::parse(name)?;
    os::info(&n)
}

/// The outcome of [`remove_if_stale`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    /// It was stale and is removed.
    Removed,
    /// It was kept, for the reason given.
    Kept(String),
}

/// Removes `name` if it is a stale transient filemap object: one that no
/// process holds (checked with the same lock test every filemap process uses,
/// at the moment of removal) and no process maps. Anything else is kept, with
/// the reason.
///
/// # Errors
/// [`Error::NotFound`](crate::Error::NotFound), [`Error::AccessDenied`](crate::Error::AccessDenied)
/// (not permitted to remove it), [`Error::Unsupported`](crate::Error::Unsupported) off Linux.
pub fn remove_if_stale(name: &str) -> Result<Cleaned> {
    let n = crate::name::parse(name)?;
    os::remove_if_stale(&n)
}

/// What the shared words of the filemap object `name` say now: its ends
/// and their holders, and its kind's figures (messages queued, sent and
/// received; a lock's holder; an event's permits; a `Latest` cell's
/// version). See [`Detail`] for what each kind shows.
///
/// Read from a read-only view, without disturbing anything: no end is
/// claimed, no lock taken, nothing written, so the channel's own
/// processes go on as if nobody looked. Works on every OS.
///
/// ```
/// use filemap::channel::spsc::{Receiver, Sender};
/// use filemap::inspect::{observe, Detail};
///
/// let mut tx = Sender::create("filemap-doc-observe", 4096)?;
/// let _rx = Receiver::open("filemap-doc-observe")?;
/// tx.send(b"one")?;
/// tx.send(b"two")?;
/// match observe("filemap-doc-observe")?.detail {
///     Detail::Spsc { queued, sent, received, .. } => assert_eq!((queued, sent, received), (2, 2, 0)),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), filemap::Error>(())
/// ```
///
/// # Errors
/// [`Error::NotFound`](crate::Error::NotFound);
/// [`Error::Incompatible`](crate::Error::Incompatible) for a raw mapping
/// or one made by an incompatible build;
/// [`Error::Corrupt`](crate::Error::Corrupt) (with the reason) when the
/// words hold what no filemap process writes.
pub fn observe(name: &str) -> Result<Observation> {
    let seg = Segment::observe(name)?;
    match seg.header().kind {
        Kind::Spsc => crate::channel::spsc::observe(seg),
        Kind::Mpmc => crate::channel::mpmc::observe(seg),
        Kind::Broadcast => crate::channel::broadcast::observe(seg),
        Kind::Latest => crate::sync::observe::latest(seg),
        Kind::Event => crate::sync::observe::event(seg),
        Kind::Mutex => crate::sync::observe::mutex(seg),
        _ => Ok(Observation {
            ends: Vec::new(),
            detail: Detail::Other,
        }),
    }
}
