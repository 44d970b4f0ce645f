//! Mapping objects: create, open, inherit; and making views of them.

use std::fmt;
use std::fs::File;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::name;
use crate::sys;
pub(crate) use crate::types::CreateParams;
pub use crate::types::{Access, Disposition, MessageType, Owners, ViewAccess};

#[allow(unsafe_code)]
mod view;
pub use view::View;

/// How long a named object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lifetime {
    /// The Win32 model: the name disappears once no process holds a
    /// [`Mapping`] or [`View`] of it, including when the holders crash.
    #[default]
    Transient,
    /// The POSIX model: the object stays until [`Mapping::remove`] (or a
    /// reboot). Not available on Windows, where the kernel always uses the
    /// transient model.
    Persistent,
}

/// What backs a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backing {
    /// Memory (POSIX shm, memfd, or the Windows paging file).
    Memory,
    /// A file on disk.
    File,
}

impl Backing {
    /// The lowercase word the CLI and its JSON use: `memory` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backing::Memory => "memory",
            Backing::File => "file",
        }
    }
}

/// Options for creating or opening a named mapping; the plain
/// [`Mapping::create`], [`Mapping::open`] and [`Mapping::create_or_open`] use the
/// defaults.
///
/// ```
/// use filemap::{Access, Disposition, Lifetime, Options};
/// use std::time::Duration;
///
/// let (m, how) = Options::new()
///     .mode(0o600)
///     .lifetime(Lifetime::Transient)
///     .ready_timeout(Duration::from_secs(1))
///     .create_or_open("filemap-doc-options", 4096)?;
/// assert_eq!(how, Disposition::Created);
/// let again = Options::new().access(Access::Read).open("filemap-doc-options")?;
/// assert_eq!(again.len(), 4096);
/// # Ok::<(), filemap::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    params: CreateParams,
    /// What a channel created with these options records as its message
    /// type, and what one opened with them must carry.
    message: Option<MessageType>,
    /// How long an async operation on a channel made or opened with these
    /// options keeps trying before it sleeps ([`Options::async_spin`]).
    async_spin: Duration,
}

/// The default of [`Options::async_spin`]: 20 µs.
pub const DEFAULT_ASYNC_SPIN: Duration = Duration::from_micros(20);

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// Read-write access, mode 0600, transient lifetime, 2 s ready timeout.
    pub fn new() -> Options {
        Options {
            params: CreateParams {
                mode: 0o600,
                persistent: false,
                ready_timeout: Duration::from_secs(2),
                access: Access::ReadWrite,
                reserve: false,
                large_pages: false,
                owners: Owners::Anyone,
            },
            message: None,
            async_spin: DEFAULT_ASYNC_SPIN,
        }
    }

    /// How long an async operation (`recv_async`, `send_async`, the async
    /// forms of every channel and of `rpc`) on a channel made or opened with
    /// these options keeps trying, when it finds the channel not ready,
    /// before it sleeps on filemap's reactor. While it tries, it wakes itself
    /// and returns `Pending`, so the runtime runs its other tasks in between:
    /// no thread is blocked, and a task that waits stays cheap.
    ///
    /// Sleeping costs a hop through a reactor thread that wakes the task
    /// (tens of microseconds on a VM), so back-to-back traffic, whose answer
    /// comes within microseconds, goes much faster when it never sleeps. The
    /// default, [`DEFAULT_ASYNC_SPIN`] (20 µs), catches an answer that comes at
    /// once; an idle wait costs 20 µs of polling, then nothing. Zero sleeps at
    /// once (the right choice when the runtime's threads have better things to
    /// do than poll, or for many channels that are mostly idle).
    ///
    /// ```
    /// use filemap::channel::spsc::Receiver;
    /// use filemap::Options;
    /// use std::time::Duration;
    /// let opts = Options::new().async_spin(Duration::ZERO); // always sleep at once
    /// let rx = Receiver::create_with("filemap-doc-async-spin", 4096, &opts)?;
    /// # drop(rx);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    pub fn async_spin(mut self, budget: Duration) -> Options {
        self.async_spin = budget;
        self
    }

    pub(crate) fn async_spin_value(&self) -> Duration {
        self.async_spin
    }

    /// The type of the messages of a channel created or opened with these
    /// options: a channel created with it records it in its segment, and
    /// opening a channel that records another type (or none) fails with
    /// [`Error::Incompatible`] naming both. Without it (the default) a
    /// channel is created untyped, and opened whatever type it records: the
    /// byte API reads any channel's bytes. The typed channels
    /// ([`crate::typed`]) set it themselves; this is for byte channels that
    /// other languages read as a type, and for bindings.
    ///
    /// ```
    /// use filemap::channel::mpmc::Sender;
    /// use filemap::{MessageType, Options};
    /// let reading = MessageType::new("sensors.Reading/v2", 16, 8)?;
    /// let opts = Options::new().message_type(reading);
    /// let tx = Sender::create_with("filemap-doc-msgtype", 8, 16, &opts)?;
    /// // An opener that expects another type is refused:
    /// let other = Options::new().message_type(MessageType::of::<u64>());
    /// let e = Sender::open_with("filemap-doc-msgtype", &other).unwrap_err();
    /// assert!(e.to_string().contains("sensors.Reading/v2"), "{e}");
    /// # drop(tx);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    pub fn message_type(mut self, t: MessageType) -> Options {
        self.message = Some(t);
        self
    }

    pub(crate) fn message_type_value(&self) -> Option<&MessageType> {
        self.message.as_ref()
    }

    /// Whose existing objects [`Options::open`], [`Options::create_or_open`]
    /// and [`Options::create_or_open_file`] accept (and every channel, cell,
    /// event and lock opened with these options): an object owned by anyone
    /// else is refused with [`Error::AccessDenied`] naming its owner, before
    /// a byte of it is read. On Linux the owner of a named file mapping is
    /// its record's (who made the name). Default [`Owners::Anyone`] (see
    /// there for why).
    ///
    /// ```
    /// use filemap::{Options, Owners};
    /// let mine_only = Options::new().trusted_owners(Owners::CurrentUser);
    /// let (m, _) = mine_only.create_or_open("filemap-doc-owners", 4096)?;
    /// // Made by this user: accepted.
    /// let again = mine_only.open("filemap-doc-owners")?;
    /// # drop((m, again));
    /// # Ok::<(), filemap::Error>(())
    /// ```
    pub fn trusted_owners(mut self, owners: Owners) -> Options {
        self.params.owners = owners;
        self
    }

    /// The access for [`Options::open`], and for the object that
    /// [`Options::create_or_open`] finds existing. Creating always yields
    /// read-write access.
    pub fn access(mut self, access: Access) -> Options {
        self.params.access = access;
        self
    }

    /// Permission bits for a new object (Unix; ignored on Windows, where the
    /// object gets the creator's default security). Applied exactly, whatever
    /// the umask. Only the read and write bits (`0o666`) are used: filemap
    /// never makes a shared-memory object executable (on Linux it uses
    /// owner-execute to mark [`Options::reserve`] objects). Default `0o600`.
    pub fn mode(mut self, mode: u32) -> Options {
        self.params.mode = mode & 0o666;
        self
    }

    /// Back a new object with large pages (`SEC_LARGE_PAGES`), where the OS
    /// offers them: fewer TLB misses for big objects. What was obtained is
    /// for the OS to say: [`View::large_page_bytes`] reads it back.
    ///
    /// - **Linux, named objects**: transparent huge pages of `/dev/shm`
    ///   (tmpfs). They need the mount option `huge=within_size`, `huge=advise`
    ///   or `huge=always` (or `/sys/kernel/mm/transparent_hugepage/shmem_enabled`
    ///   set to `force`); the default, `huge=never`, gives
    ///   [`Error::Unsupported`] naming the setting. Every process's views ask
    ///   for them (`MADV_HUGEPAGE`; the object is marked with group-execute in
    ///   its mode). The kernel gives huge pages where it can and small ones
    ///   elsewhere.
    /// - **Linux, unnamed objects** ([`Options::anonymous`]): a huge-page
    ///   memfd (`MFD_HUGETLB`) from the pages set aside in
    ///   `/proc/sys/vm/nr_hugepages` ([`Error::Unsupported`] when none are,
    ///   [`Error::NoSpace`] when too few are free). The size is rounded up to
    ///   whole huge pages, and views start and end on them.
    /// - **Windows**: `SEC_LARGE_PAGES`, which needs the "Lock pages in
    ///   memory" right (`SeLockMemoryPrivilege`; [`Error::Unsupported`]
    ///   naming it otherwise). The size is rounded up to whole large pages,
    ///   and views start on them. Not with [`Options::reserve`].
    /// - **macOS**: [`Error::Unsupported`].
    ///
    /// Default off.
    pub fn large_pages(mut self, large: bool) -> Options {
        self.params.large_pages = large;
        self
    }

    /// A new unnamed mapping of `size` bytes, as [`Mapping::anonymous`],
    /// with these options' [`Options::large_pages`] (the others concern
    /// names).
    ///
    /// # Errors
    /// As [`Mapping::anonymous`]; [`Error::Unsupported`] or
    /// [`Error::NoSpace`] for large pages the system does not offer.
    pub fn anonymous(&self, size: u64) -> Result<Mapping> {
        let label = "<unnamed>".to_owned();
        check_size(&label, size)?;
        let obj = if self.params.large_pages {
            sys::anonymous_large(size, &label)?
        } else {
            sys::anonymous(size, &label)?
        };
        Ok(Mapping::new(
            obj,
            label,
            false,
            Access::ReadWrite,
            Backing::Memory,
            None,
        ))
    }

    /// Reserve, then commit (`SEC_RESERVE`): a new object of the given size
    /// takes no memory up front; [`Mapping::commit`] gives ranges their pages
    /// as they are needed (a full `/dev/shm`, or the system's commit limit,
    /// then fails there, cleanly), and a view may only cover committed pages
    /// ([`Error::NotCommitted`] otherwise, never SIGBUS or an access
    /// violation). Any process that opens the object can see what is
    /// committed ([`Mapping::committed_len`], [`Mapping::is_committed`]), so
    /// a segment can grow while processes are attached: the writer commits
    /// and fills the next range, readers map it once it is committed.
    ///
    /// Commits are never undone. On Linux, a page counts as committed once
    /// it has memory (`fallocate`d and present; `SEEK_HOLE` tells), and the
    /// object is marked with owner-execute in its mode; on Windows the
    /// section is `SEC_RESERVE` and the kernel keeps the commits. Not on
    /// macOS ([`Error::Unsupported`]). Default off.
    ///
    /// ```
    /// use filemap::{Options, ViewAccess};
    /// # if cfg!(target_os = "macos") { return Ok(()); }
    /// // 1 GiB of address, no memory yet.
    /// let m = Options::new().reserve(true).create("filemap-doc-reserve", 1 << 30)?;
    /// assert_eq!(m.committed_len()?, 0);
    /// assert!(matches!(
    ///     m.view(0..4096, ViewAccess::Read),
    ///     Err(filemap::Error::NotCommitted { .. })
    /// ));
    /// m.commit(0..1 << 20)?; // the first MiB gets its pages
    /// m.view(0..1 << 20, ViewAccess::ReadWrite)?.write_at(0, b"grown")?;
    /// assert_eq!(m.committed_len()?, 1 << 20);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    pub fn reserve(mut self, reserve: bool) -> Options {
        self.params.reserve = reserve;
        self
    }

    /// The lifetime of a new object. Default [`Lifetime::Transient`].
    pub fn lifetime(mut self, lifetime: Lifetime) -> Options {
        self.params.persistent = lifetime == Lifetime::Persistent;
        self
    }

    /// How long an opener waits for an object whose creator has not finished
    /// making it (for example one another program created with size 0), or
    /// that another process holds locked for a moment, before giving up with
    /// [`Error::NotReady`]. Default 2 s.
    pub fn ready_timeout(mut self, timeout: Duration) -> Options {
        self.params.ready_timeout = timeout;
        self
    }

    /// Creates a new named object of `size` bytes, zero-filled; fails with
    /// [`Error::AlreadyExists`] if the name is taken.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidSize`] (0 or too large),
    /// [`Error::AlreadyExists`], [`Error::NoSpace`] when the backing store cannot
    /// hold `size` bytes, [`Error::AccessDenied`], [`Error::Unsupported`]
    /// (persistent objects on Windows), [`Error::Os`].
    pub fn create(&self, name: &str, size: u64) -> Result<Mapping> {
        self.create_impl(name, size, false).map(|(m, _)| m)
    }

    /// Creates the named object, or opens it if it exists (with the access of
    /// [`Options::access`]) and says which. An existing object is never resized
    /// nor truncated: its size is the one its creator chose. `size` 0 means
    /// "whatever size it has": the object is only opened, never created.
    ///
    /// # Errors
    /// As [`Options::create`] and [`Options::open`]; [`Error::InvalidSize`]
    /// for size 0 when the object does not exist.
    pub fn create_or_open(&self, name: &str, size: u64) -> Result<(Mapping, Disposition)> {
        self.create_impl(name, size, true)
    }

    /// Opens an existing named object.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no live object has that name,
    /// [`Error::AccessDenied`] when the OS refuses the access,
    /// [`Error::NotReady`] when its creator has not finished it within the
    /// ready timeout, [`Error::InvalidName`], [`Error::Os`].
    pub fn open(&self, name: &str) -> Result<Mapping> {
        let n = name::parse(name)?;
        let obj = sys::open_named(&n, self.params.access, self.params.ready_timeout)?;
        obj.check_owner(&self.params.owners, &n.given)?;
        let lifetime = None;
        let backing = backing_of(&obj);
        Ok(Mapping::new(
            obj,
            n.given,
            true,
            self.params.access,
            backing,
            lifetime,
        ))
    }

    /// Maps the file at `path` and gives the mapping the name `name`
    /// (`CreateFileMapping` with a file handle and a name): any process can
    /// then [`open`](Options::open) the name and map *the file's* pages, and
    /// writes through any view reach the file. The name lives as a
    /// memory-backed one does ([`Options::lifetime`]); the file stays.
    ///
    /// `size` is as in [`Mapping::from_path`]: 0 maps the whole file, more
    /// grows it. With [`Access::ReadWrite`] (the default) the file is created
    /// if missing; with [`Access::Read`] the mapping is read-only.
    ///
    /// How the name is kept:
    /// - **Windows**: natively, a named section of the file.
    /// - **Linux**: a small *file record* `/dev/shm/NAME` (mode bits as
    ///   [`Options::mode`], plus set-user-ID as filemap's mark) holding the
    ///   file's absolute path, device and inode, under the same lifetime
    ///   protocol as memory-backed names. Foreign tools see that record, not
    ///   the file's bytes. An opener needs the file's own permissions for the
    ///   access it asks, and gets [`Error::FileChanged`] if another file now
    ///   stands at the path, or the file shrank below the mapping.
    /// - **macOS**: not available yet ([`Error::Unsupported`]).
    ///
    /// ```
    /// use filemap::{Access, Mapping, Options, ViewAccess};
    /// let path = std::env::temp_dir().join(format!("filemap-doc-named-{}.bin", std::process::id()));
    /// # if cfg!(target_os = "macos") { return Ok(()); }
    /// let m = Options::new().create_file("filemap-doc-file", &path, 4096)?;
    /// // Another process opens the name and reaches the same file:
    /// let other = Mapping::open("filemap-doc-file", Access::ReadWrite)?;
    /// other.view(.., ViewAccess::ReadWrite)?.write_at(0, b"hello")?;
    /// assert_eq!(m.backing(), filemap::Backing::File);
    /// drop((m, other));
    /// assert_eq!(&std::fs::read(&path).unwrap()[..5], b"hello");
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Options::create`] and [`Mapping::from_path`]; [`Error::Unsupported`]
    /// on macOS.
    pub fn create_file(&self, name: &str, path: impl AsRef<Path>, size: u64) -> Result<Mapping> {
        self.create_file_impl(name, path.as_ref(), size, false)
            .map(|(m, _)| m)
    }

    /// As [`Options::create_file`], or opens the existing name if it maps the
    /// same file, and says which.
    ///
    /// # Errors
    /// As [`Options::create_file`]; [`Error::Conflict`] naming both when the
    /// name maps another file or memory. (On Windows, which does not say which
    /// file a section maps, only memory is told apart.)
    pub fn create_or_open_file(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        size: u64,
    ) -> Result<(Mapping, Disposition)> {
        self.create_file_impl(name, path.as_ref(), size, true)
    }

    fn create_file_impl(
        &self,
        name: &str,
        path: &Path,
        size: u64,
        open_existing: bool,
    ) -> Result<(Mapping, Disposition)> {
        let n = name::parse(name)?;
        if self.params.persistent && cfg!(windows) {
            return Err(persistent_unsupported(&n.given));
        }
        let access = self.params.access;
        let file = open_file(path, access)?;
        let label = path.display().to_string();
        let absolute = std::fs::canonicalize(path)
            .map_err(|e| Error::os(&label, "realpath", e))?
            .display()
            .to_string();
        if size > 0 {
            check_size(&label, size)?;
        }
        let mapped = sys::from_file(&file, size, access, &label)?;
        let (obj, how) =
            sys::create_named_file(&n, mapped, &absolute, &self.params, open_existing)?;
        if how == Disposition::Opened {
            obj.check_owner(&self.params.owners, &n.given)?;
        }
        let (access, lifetime) = match how {
            Disposition::Created => (access, Some(self.chosen_lifetime())),
            Disposition::Opened => (self.params.access, None),
        };
        Ok((
            Mapping::new(obj, n.given, true, access, Backing::File, lifetime),
            how,
        ))
    }

    fn create_impl(
        &self,
        name: &str,
        size: u64,
        open_existing: bool,
    ) -> Result<(Mapping, Disposition)> {
        let n = name::parse(name)?;
        if size == 0 && open_existing {
            // "Whatever size it has": open only; creating needs a size.
            return match self.open(name) {
                Ok(m) => Ok((m, Disposition::Opened)),
                Err(Error::NotFound { .. }) => Err(Error::InvalidSize {
                    object: n.given,
                    reason: "it does not exist, and creating it needs a size of at least 1 byte \
                             (size 0 only opens an existing object at its own size)"
                        .into(),
                }),
                Err(e) => Err(e),
            };
        }
        check_size(&n.given, size)?;
        if self.params.persistent && cfg!(windows) {
            return Err(persistent_unsupported(&n.given));
        }
        let (obj, how) = sys::create_named(&n, size, &self.params, open_existing)?;
        if how == Disposition::Opened {
            obj.check_owner(&self.params.owners, &n.given)?;
        }
        let (access, lifetime) = match how {
            Disposition::Created => (Access::ReadWrite, Some(self.chosen_lifetime())),
            Disposition::Opened => (self.params.access, None),
        };
        let backing = backing_of(&obj);
        Ok((
            Mapping::new(obj, n.given, true, access, backing, lifetime),
            how,
        ))
    }

    pub(crate) fn ready_timeout_value(&self) -> Duration {
        self.params.ready_timeout
    }

    fn chosen_lifetime(&self) -> Lifetime {
        if self.params.persistent {
            Lifetime::Persistent
        } else {
            Lifetime::Transient
        }
    }
}

fn persistent_unsupported(name: &str) -> Error {
    Error::Unsupported {
        object: name.to_owned(),
        what:
            "a persistent named mapping (Windows removes every section when its last handle closes)"
                .into(),
    }
}

/// What backs an object the OS layer opened.
fn backing_of(obj: &sys::Object) -> Backing {
    if obj.is_file() {
        Backing::File
    } else {
        Backing::Memory
    }
}

/// Opens the file at `path` for a mapping with `access` (read-write creates
/// it if missing).
fn open_file(path: &Path, access: Access) -> Result<File> {
    let label = path.display().to_string();
    std::fs::OpenOptions::new()
        .read(true)
        .write(access == Access::ReadWrite)
        .create(access == Access::ReadWrite)
        .truncate(false)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::FileNotFound {
                path: label.clone(),
            },
            _ => Error::os(&label, "open", e),
        })
}

fn check_size(object: &str, size: u64) -> Result<()> {
    if size == 0 {
        return Err(Error::InvalidSize {
            object: object.to_owned(),
            reason: "a new mapping needs a size of at least 1 byte".into(),
        });
    }
    if i64::try_from(size).is_err() {
        return Err(Error::InvalidSize {
            object: object.to_owned(),
            reason: format!(
                "{size} bytes is more than the largest object size ({})",
                i64::MAX
            ),
        });
    }
    Ok(())
}

/// What a mapping and all of its views share; dropped with the last of them.
pub(crate) struct Shared {
    pub(crate) obj: sys::Object,
    /// Name, path or `<unnamed>`, for messages.
    pub(crate) label: String,
    named: bool,
    pub(crate) access: Access,
    backing: Backing,
    lifetime: Option<Lifetime>,
}

/// A mapping object: named or unnamed, backed by memory or a file. Views of it
/// are made with [`Mapping::view`] or [`Mapping::map`].
///
/// The object stays alive while this `Mapping`, a clone of it, or any [`View`]
/// made from it exists. Cloning is cheap and shares one OS handle.
#[derive(Clone)]
pub struct Mapping {
    shared: Arc<Shared>,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("name", &self.shared.label)
            .field("len", &self.len())
            .field("access", &self.shared.access)
            .field("backing", &self.shared.backing)
            .finish()
    }
}

impl Mapping {
    fn new(
        obj: sys::Object,
        label: String,
        named: bool,
        access: Access,
        backing: Backing,
        lifetime: Option<Lifetime>,
    ) -> Mapping {
        Mapping {
            shared: Arc::new(Shared {
                obj,
                label,
                named,
                access,
                backing,
                lifetime,
            }),
        }
    }

    /// Creates a new named mapping of `size` bytes backed by memory, zero-filled,
    /// with the defaults of [`Options::new`]. Fails if the name exists.
    ///
    /// ```
    /// let m = filemap::Mapping::create("filemap-doc-create", 1 << 20)?;
    /// assert_eq!(m.len(), 1 << 20);
    /// assert!(matches!(
    ///     filemap::Mapping::create("filemap-doc-create", 1),
    ///     Err(filemap::Error::AlreadyExists { .. })
    /// ));
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// See [`Options::create`].
    pub fn create(name: &str, size: u64) -> Result<Mapping> {
        Options::new().create(name, size)
    }

    /// Maps the file at `path` under the name `name`, with the defaults of
    /// [`Options::new`]: see [`Options::create_file`].
    ///
    /// # Errors
    /// See [`Options::create_file`].
    pub fn create_file(name: &str, path: impl AsRef<Path>, size: u64) -> Result<Mapping> {
        Options::new().create_file(name, path, size)
    }

    /// Creates the named mapping or opens the existing one read-write, and says which.
    ///
    /// # Errors
    /// See [`Options::create_or_open`].
    pub fn create_or_open(name: &str, size: u64) -> Result<(Mapping, Disposition)> {
        Options::new().create_or_open(name, size)
    }

    /// Opens an existing named mapping with `access`.
    ///
    /// # Errors
    /// See [`Options::open`].
    pub fn open(name: &str, access: Access) -> Result<Mapping> {
        Options::new().access(access).open(name)
    }

    /// Removes a name, like `shm_unlink`: the name is free at once; processes that
    /// hold the object keep their memory until they let go. This is how a
    /// [`Lifetime::Persistent`] object is removed.
    ///
    /// On Windows, where names vanish with their last handle, this returns
    /// [`Error::NotFound`] when no such object exists and [`Error::Unsupported`]
    /// when one does.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::AccessDenied`], [`Error::InvalidName`],
    /// [`Error::Unsupported`], [`Error::Os`].
    pub fn remove(name: &str) -> Result<()> {
        let n = name::parse(name)?;
        sys::remove_named(&n)
    }

    /// A new unnamed mapping of `size` bytes backed by memory, for this process
    /// and the children it hands it to with [`Mapping::inherit`].
    ///
    /// # Errors
    /// [`Error::InvalidSize`], [`Error::NoSpace`], [`Error::Os`].
    pub fn anonymous(size: u64) -> Result<Mapping> {
        Options::new().anonymous(size)
    }

    /// A mapping of an open file. `size` 0 maps the whole file (which must then
    /// not be empty); a size larger than the file grows it (which needs
    /// [`Access::ReadWrite`]); a smaller one maps only the start. The file is
    /// never shrunk. `access` must not exceed how `file` was opened.
    ///
    /// Writes through views reach the file; [`View::flush`] starts writing them
    /// back, [`View::flush_durable`] waits until they are on disk.
    ///
    /// # Errors
    /// [`Error::InvalidSize`], [`Error::AccessDenied`], [`Error::NoSpace`], [`Error::Os`].
    pub fn from_file(file: &File, size: u64, access: Access) -> Result<Mapping> {
        Self::from_file_labelled(file, size, access, "<file>".to_owned())
    }

    /// Opens the file at `path` and maps it as [`Mapping::from_file`] does. With
    /// [`Access::ReadWrite`] the file is created if missing.
    ///
    /// ```
    /// use filemap::{Access, Mapping, ViewAccess};
    /// let path = std::env::temp_dir().join(format!("filemap-doc-{}.bin", std::process::id()));
    /// let m = Mapping::from_path(&path, 8192, Access::ReadWrite)?;
    /// let v = m.view(.., ViewAccess::ReadWrite)?;
    /// v.write_at(100, b"on disk")?;
    /// v.flush_durable()?;
    /// drop((v, m));
    /// assert_eq!(&std::fs::read(&path).unwrap()[100..107], b"on disk");
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Mapping::from_file`], plus [`Error::FileNotFound`] for a missing
    /// file opened read-only (or in a folder that does not exist).
    pub fn from_path(path: impl AsRef<Path>, size: u64, access: Access) -> Result<Mapping> {
        let path = path.as_ref();
        let file = open_file(path, access)?;
        Self::from_file_labelled(&file, size, access, path.display().to_string())
    }

    fn from_file_labelled(
        file: &File,
        size: u64,
        access: Access,
        label: String,
    ) -> Result<Mapping> {
        if size > 0 {
            check_size(&label, size)?;
        }
        let obj = sys::from_file(file, size, access, &label)?;
        Ok(Mapping::new(obj, label, false, access, Backing::File, None))
    }

    /// The name given at creation or opening (`None` for unnamed and file mappings).
    pub fn name(&self) -> Option<&str> {
        self.shared.named.then_some(self.shared.label.as_str())
    }

    /// The size in bytes: the creator's size, whoever opened it. On Windows, a
    /// process that *opens* a named section sees the size rounded up to whole
    /// pages (4 KiB), because the kernel keeps no finer size for sections; the
    /// extra bytes are zero and belong to the object.
    pub fn len(&self) -> u64 {
        self.shared.obj.size()
    }

    /// Always false: mappings have at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The access this handle holds.
    pub fn access(&self) -> Access {
        self.shared.access
    }

    /// Memory or file.
    pub fn backing(&self) -> Backing {
        self.shared.backing
    }

    /// The absolute path of the file a *named* file mapping maps, where this
    /// process knows it: on Linux always, on Windows only in the process
    /// that created the name (Windows does not say which file a section
    /// maps). `None` for memory and for unnamed mappings.
    pub fn file_path(&self) -> Option<&str> {
        self.shared.obj.file_path()
    }

    /// The large page size backing the object ([`Options::large_pages`]),
    /// or `None` for the system's pages. What the OS actually maps is
    /// [`View::large_page_bytes`].
    pub fn large_page_size(&self) -> Option<u64> {
        self.shared.obj.large_page_size()
    }

    /// The granularity of this object's views: [`crate::allocation_granularity`],
    /// or its large page size where views must start on one (a Linux
    /// huge-page memfd, a Windows large-page section). [`Mapping::map_at`]
    /// addresses are multiples of it (plus the offset's remainder).
    pub fn granularity(&self) -> u64 {
        self.shared.obj.granularity()
    }

    /// Whether the object was made reserve-only ([`Options::reserve`]), in
    /// this process or another.
    pub fn is_reserved(&self) -> bool {
        self.shared.obj.reserved()
    }

    /// Commits the pages of `range` (whole pages around it) of a
    /// reserve-only object, for every process: the memory is taken now, and
    /// views may then cover the range. Already committed pages keep their
    /// bytes. A no-op for an object that is not reserve-only (all of it is
    /// committed).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range not inside the object,
    /// [`Error::AccessDenied`] for a read-only handle, [`Error::NoSpace`]
    /// when the system cannot give the memory (nothing else changes),
    /// [`Error::Os`].
    pub fn commit(&self, range: impl RangeBounds<u64>) -> Result<()> {
        let (offset, len) = self.range(range)?;
        if !self.is_reserved() {
            return Ok(());
        }
        if self.shared.access != Access::ReadWrite {
            return Err(Error::AccessDenied {
                object: self.shared.label.clone(),
                reason: "committing pages needs read-write access; this mapping was opened \
                         read-only"
                    .into(),
            });
        }
        self.shared.obj.commit(offset, len, &self.shared.label)
    }

    /// Whether every byte of `range` is committed (always true for an object
    /// that is not reserve-only).
    ///
    /// # Errors
    /// [`Error::OutOfRange`], [`Error::Os`].
    pub fn is_committed(&self, range: impl RangeBounds<u64>) -> Result<bool> {
        let (offset, len) = self.range(range)?;
        self.shared.obj.committed(offset, len, &self.shared.label)
    }

    /// How many bytes from the start are committed, as the OS says now: the
    /// size a reader of a growing segment may map. [`Mapping::len`] for an
    /// object that is not reserve-only.
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn committed_len(&self) -> Result<u64> {
        self.shared.obj.committed_prefix(&self.shared.label)
    }

    /// The lifetime this process chose when it created the object; `None` when
    /// the object was opened, inherited, or is not named.
    pub fn lifetime(&self) -> Option<Lifetime> {
        self.shared.lifetime
    }

    /// Maps `range` of the object with `access`. `..` is the whole object,
    /// `n..` from `n` to the end. Any offset works: the library aligns the OS
    /// mapping to the allocation granularity (64 KiB on Windows, the page size
    /// elsewhere) and the view starts exactly at the offset asked for.
    ///
    /// ```
    /// let m = filemap::Mapping::anonymous(10_000)?;
    /// let v = m.view(4097..4200, filemap::ViewAccess::ReadWrite)?;
    /// assert_eq!(v.len(), 103);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range that is empty or not inside the
    /// object, [`Error::AccessDenied`] for a read-write view of a read-only
    /// mapping (checked before anything is mapped), [`Error::Truncated`] when
    /// another process has shrunk the object below the range, [`Error::Os`]
    /// if the OS refuses the mapping (for example, no address space left).
    pub fn view(&self, range: impl RangeBounds<u64>, access: ViewAccess) -> Result<View> {
        let (start, len) = self.range(range)?;
        self.map(start, len, access)
    }

    /// `range` as (offset, length), checked to be non-empty and inside.
    fn range(&self, range: impl RangeBounds<u64>) -> Result<(u64, u64)> {
        let size = self.len();
        let out = |offset: u64, len: u64| Error::OutOfRange {
            object: self.shared.label.clone(),
            offset,
            len,
            size,
        };
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.checked_add(1).ok_or_else(|| out(s, 0))?,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1).ok_or_else(|| out(start, u64::MAX))?,
            Bound::Excluded(&e) => e,
            Bound::Unbounded => size,
        };
        if start >= end || end > size {
            return Err(out(start, end.saturating_sub(start)));
        }
        Ok((start, end - start))
    }

    /// Maps `len` bytes from `offset`, as `MapViewOfFile` does: `len` 0 means to
    /// the end of the object.
    ///
    /// # Errors
    /// As [`Mapping::view`].
    pub fn map(&self, offset: u64, len: u64, access: ViewAccess) -> Result<View> {
        self.map_impl(offset, len, access, None)
    }

    /// Maps `len` bytes from `offset` with the view's first byte at
    /// `address`, as `MapViewOfFileEx` with a base address does: processes
    /// that map an object at the same address can store pointers into it.
    /// Never replaces anything already mapped in this process: a range that
    /// is not free is an error (`MAP_FIXED_NOREPLACE` on Linux, the Ex call
    /// on Windows; on macOS the address is a hint that is checked).
    ///
    /// `address` must be a multiple of [`crate::allocation_granularity`] plus
    /// the remainder of `offset` by it (so `offset` 0 needs an aligned
    /// address); the error says which address would do.
    ///
    /// ```
    /// use filemap::{Mapping, ViewAccess};
    /// let m = Mapping::anonymous(1 << 16)?;
    /// // An address this process leaves free, aligned for any OS.
    /// let at = 0x3c50_0000_0000usize;
    /// let v = m.map_at(0, 0, ViewAccess::ReadWrite, at)?;
    /// assert_eq!(v.as_ptr() as usize, at);
    /// // The range is taken now: a second view there is refused.
    /// assert!(matches!(
    ///     m.map_at(0, 0, ViewAccess::Read, at),
    ///     Err(filemap::Error::Placement { .. })
    /// ));
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Mapping::map`], and [`Error::Placement`] when the range is in use
    /// or the address does not fit the granularity.
    pub fn map_at(
        &self,
        offset: u64,
        len: u64,
        access: ViewAccess,
        address: usize,
    ) -> Result<View> {
        self.map_impl(offset, len, access, Some(address))
    }

    fn map_impl(
        &self,
        offset: u64,
        len: u64,
        access: ViewAccess,
        at: Option<usize>,
    ) -> Result<View> {
        let size = self.len();
        let label = &self.shared.label;
        let len = if len == 0 {
            size.saturating_sub(offset)
        } else {
            len
        };
        let end = offset.checked_add(len);
        if len == 0 || end.is_none_or(|e| e > size) {
            return Err(Error::OutOfRange {
                object: label.clone(),
                offset,
                len,
                size,
            });
        }
        if access == ViewAccess::ReadWrite
            && (self.shared.access != Access::ReadWrite || !self.shared.obj.writable())
        {
            return Err(Error::AccessDenied {
                object: label.clone(),
                reason: "a read-write view was asked for, but the mapping was opened read-only; \
                         open it with Access::ReadWrite or use a Read or CopyOnWrite view"
                    .into(),
            });
        }
        let len_usize = usize::try_from(len).map_err(|_| Error::OutOfRange {
            object: format!("{label} (larger than this process's address space)"),
            offset,
            len,
            size,
        })?;
        // Another process may have shrunk the object since it was made: a view
        // past its end now would fault on first touch.
        if self
            .shared
            .obj
            .current_size()
            .is_some_and(|now| offset + len > now)
        {
            return Err(Error::Truncated {
                object: label.clone(),
            });
        }
        if !self.shared.obj.committed(offset, len, label)? {
            return Err(Error::NotCommitted {
                object: label.clone(),
                offset,
                len,
                committed: self.committed_len()?,
            });
        }
        let raw = sys::map(&self.shared.obj, offset, len_usize, access, at, label)?;
        Ok(View::new(raw, Arc::clone(&self.shared), offset, access))
    }

    /// Prepares this mapping to be handed to a child process, with `access` (which
    /// must not exceed this handle's). Pass [`Inheritable::token`] to the child (an
    /// argument or an environment variable), spawn it while the `Inheritable`
    /// lives, then drop it; the child calls [`Mapping::from_inherited`].
    ///
    /// On Unix this is a descriptor without close-on-exec; on Windows an
    /// inheritable duplicate of the section handle with the given access. Any
    /// child spawned while it lives inherits it, so spawn from one thread.
    ///
    /// A named mapping handed over keeps its name alive while the child
    /// holds it (Linux), even after this process lets go.
    ///
    /// # What a read-only hand-over guarantees
    ///
    /// The child gets a descriptor or handle that cannot write. Whether it can
    /// get a writable one some other way depends on the object:
    /// - **Unnamed (Linux)**: the object's mode becomes `0400`, so the child
    ///   cannot open its descriptor again read-write through `/proc/self/fd`;
    ///   a child that bypasses file permissions (root, `CAP_DAC_OVERRIDE`)
    ///   still can. This process's own descriptors and views keep writing.
    /// - **Named**: the child can open the name like any process, with the
    ///   access the object's mode grants its user: to make read-only binding,
    ///   run the child as a user the mode grants only reading.
    /// - **File**: likewise, the file's own permissions decide.
    /// - **Windows**: the handle is duplicated with read access only; a child
    ///   can open a named section again by name, as its security allows.
    ///
    /// ```no_run
    /// use filemap::{Access, Mapping};
    /// let m = Mapping::anonymous(4096)?;
    /// let h = m.inherit(Access::ReadWrite)?;
    /// let child = std::process::Command::new("worker")
    ///     .env("FILEMAP_TOKEN", h.token())
    ///     .spawn()?;
    /// drop(h);
    /// // In the child:
    /// // let token = std::env::var("FILEMAP_TOKEN")?;
    /// // let m = unsafe { Mapping::from_inherited(&token) }?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::AccessDenied`] for read-write access from a read-only handle,
    /// [`Error::Os`].
    pub fn inherit(&self, access: Access) -> Result<Inheritable> {
        if access == Access::ReadWrite && self.shared.access != Access::ReadWrite {
            return Err(Error::AccessDenied {
                object: self.shared.label.clone(),
                reason: "cannot hand read-write access to a child from a read-only mapping".into(),
            });
        }
        let raw = sys::Inherit::new(&self.shared.obj, access, &self.shared.label)?;
        let token = self.token(raw.raw(), access);
        Ok(Inheritable { _raw: raw, token })
    }

    /// Picks up a mapping handed over by a parent's [`Mapping::inherit`] (or,
    /// on Windows, duplicated into this process by another process with
    /// `filemap::os::windows::MappingExt::duplicate_into`).
    ///
    /// A token is adopted at most once per process: a second call with a
    /// token naming the same descriptor or handle number is
    /// [`Error::InvalidToken`], even after the first mapping was dropped
    /// (the number may name another object by then), so the same handle
    /// is never owned, nor closed, twice.
    ///
    /// # Safety
    /// `token` must come from `inherit` in the parent that spawned this process
    /// (or from `duplicate_into` on Windows): the mapping takes ownership of the
    /// inherited descriptor or handle, and closes it when dropped (like
    /// `OwnedFd::from_raw_fd`, which it uses). A token naming a descriptor
    /// this process opened for something else would take that one over.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] when the token is malformed, was adopted
    /// already, or names a descriptor or handle that is not open here, not a
    /// mapping object, smaller than the token says, or with less access than
    /// it says.
    #[allow(unsafe_code)]
    pub unsafe fn from_inherited(token: &str) -> Result<Mapping> {
        let bad = |reason: &str| Error::InvalidToken {
            token: token.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| bad("it does not start with `filemap-inherit:v1:`"))?;
        let mut parts = rest.split(':');
        let (Some(raw), Some(len), Some(acc), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected filemap-inherit:v1:HANDLE:LEN:ACCESS"));
        };
        let raw: u64 = raw.parse().map_err(|_| bad("the handle is not a number"))?;
        let len: u64 = len.parse().map_err(|_| bad("the length is not a number"))?;
        if len == 0 {
            return Err(bad("the length is 0"));
        }
        let access = match acc {
            "r" => Access::Read,
            "rw" => Access::ReadWrite,
            _ => return Err(bad("the access is neither `r` nor `rw`")),
        };
        // A token is adopted once: adopting it again would take ownership of
        // the descriptor a second time, and both owners would close it (by
        // then, maybe another object's). So a handle number, once adopted,
        // is refused for the rest of this process's life, even after the
        // first mapping closed it: the number may name anything since.
        let mut adopted = ADOPTED.lock().unwrap_or_else(|p| p.into_inner());
        if adopted.contains(&raw) {
            return Err(bad(&format!(
                "handle {raw} was adopted already in this process; a token is adopted \
                 once (adopting it again would close another object's handle)"
            )));
        }
        let obj = sys::from_inherited(raw, len, access, token)?;
        adopted.insert(raw);
        Ok(Mapping::handed(obj, "<inherited>".to_owned(), access))
    }
}

/// The handle numbers [`Mapping::from_inherited`] adopted in this process.
static ADOPTED: std::sync::Mutex<std::collections::BTreeSet<u64>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

const TOKEN_PREFIX: &str = "filemap-inherit:v1:";

/// What the OS-specific hand-overs (`crate::os`) need of a mapping.
impl Mapping {
    /// The token [`Mapping::from_inherited`] takes for the handle or
    /// descriptor `raw` with `access`.
    pub(crate) fn token(&self, raw: u64, access: Access) -> String {
        format!(
            "{TOKEN_PREFIX}{raw}:{}:{}",
            self.len(),
            match access {
                Access::Read => "r",
                Access::ReadWrite => "rw",
            }
        )
    }

    /// The OS object and the label for messages.
    pub(crate) fn object(&self) -> (&sys::Object, &str) {
        (&self.shared.obj, &self.shared.label)
    }

    /// `AccessDenied` when `access` is more than this handle holds.
    pub(crate) fn check_hand_over(&self, access: Access, to: &str) -> Result<()> {
        if access == Access::ReadWrite && self.shared.access != Access::ReadWrite {
            return Err(Error::AccessDenied {
                object: self.shared.label.clone(),
                reason: format!("cannot hand read-write access to {to} from a read-only mapping"),
            });
        }
        Ok(())
    }

    /// A mapping around an object handed to this process.
    pub(crate) fn handed(obj: sys::Object, label: String, access: Access) -> Mapping {
        Mapping::new(obj, label, false, access, Backing::Memory, None)
    }
}

/// A mapping made ready for a child process: see [`Mapping::inherit`]. Dropping
/// it closes the parent's inheritable copy (the child keeps its own).
#[derive(Debug)]
pub struct Inheritable {
    _raw: sys::Inherit,
    token: String,
}

impl Inheritable {
    /// The text to pass to the child, for [`Mapping::from_inherited`].
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Shared {
    /// The file-backed object's durable sync (`fsync` / `FlushFileBuffers`).
    pub(crate) fn sync_backing(&self) -> Result<()> {
        self.obj.sync_backing(&self.label)
    }
}
