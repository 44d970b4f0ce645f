//! What Linux and macOS share: the POSIX mapping object (a descriptor and
//! its size), mapping files, handing a descriptor to a child, and views
//! (`mmap`, `munmap`, `msync`), through `rustix`. What differs per OS (how a
//! named object lives and dies, memfd, futexes, barriers) is in `linux.rs`
//! and `macos.rs`, which this file reaches as `os`.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::fs::{self as rfs, OFlags};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MsyncFlags, ProtFlags};

use super::os;
use super::sigbus;
use super::RawView;
use crate::error::{Error, Result};
use crate::types::{Access, ViewAccess};

/// The allocation granularity: views start at a multiple of this.
pub(crate) fn granularity() -> u64 {
    rustix::param::page_size() as u64
}

pub(super) fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// What an `Object` is backed by.
#[derive(Debug)]
pub(super) enum Kind {
    /// A named POSIX shm object. `path` is its path (Linux) or shm name (macOS).
    Named {
        path: String,
        /// Transient (Win32 lifetime) rather than persistent or foreign.
        managed: bool,
        /// (st_dev, st_ino) of the file, to recognise it under its name.
        id: (u64, u64),
        /// macOS only: this process created it and unlinks it on release.
        unlink_on_drop: bool,
        /// Its mode when opened (with filemap's marks).
        mode: u32,
        /// The process that took this descriptor's lock: in a `fork`ed
        /// child, which only has a copy, another (Linux: `linux.rs`,
        /// "Children").
        locker: u32,
    },
    /// memfd (Linux) or an already-unlinked shm object (macOS).
    Anonymous,
    /// A descriptor handed to this process (`from_inherited`): what it
    /// refers to (memfd, named object, file) is the parent's business.
    Inherited,
    /// A regular file.
    File,
    /// A regular file mapped under a name (Linux): `record` is the named
    /// object that says which file (`record.rs`), held for as long as this
    /// object lives so that the name does too.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    NamedFile {
        /// Never read: held so that the name lives, and released when this
        /// object drops (after the file's descriptor).
        #[allow(dead_code)]
        record: Box<Object>,
        /// The file's absolute path, as recorded.
        path: String,
    },
}

/// A view's entry in the `SIGBUS` table (`None`: not watched).
pub(crate) type Watch = Option<&'static sigbus::Slot>;

/// Whether the `SIGBUS` handler replaced a page of the watched view.
#[inline]
pub(crate) fn watch_tripped(w: &Watch) -> bool {
    w.is_some_and(|s| s.tripped())
}

/// The pages backing an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum Large {
    /// The system's pages.
    No,
    /// Transparent huge pages of this size where the kernel can (a named
    /// object made with `Options::large_pages`): views ask for them.
    Transparent(u64),
    /// Huge pages of this size set aside for `hugetlbfs` (a huge-page
    /// memfd): views start and end on them.
    Hugetlb(u64),
}

/// An open mapping object: the descriptor, its size, and what backs it.
#[derive(Debug)]
pub(crate) struct Object {
    /// Taken out (and closed) only in `drop`: a named object's release must
    /// close it before it looks for other holders (see `linux.rs`).
    pub(super) fd: ManuallyDrop<OwnedFd>,
    pub(super) size: u64,
    pub(super) writable: bool,
    pub(super) kind: Kind,
    pub(super) large: Large,
}

impl Object {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The object's size now (`fstat`): smaller than [`Object::size`] once
    /// another process shrank it. `None` if the OS does not say.
    pub(crate) fn current_size(&self) -> Option<u64> {
        rfs::fstat(&*self.fd)
            .ok()
            .map(|st| st.st_size.max(0) as u64)
    }

    /// Refuses a named object whose owner `owners` does not accept (for a
    /// named file mapping, its record's owner: who made the name).
    pub(crate) fn check_owner(&self, owners: &crate::types::Owners, obj: &str) -> Result<()> {
        use crate::types::Owners;
        let named = match &self.kind {
            Kind::NamedFile { record, .. } => record,
            Kind::Named { .. } => self,
            _ => return Ok(()),
        };
        let me = rustix::process::geteuid().as_raw();
        let owner = rfs::fstat(&*named.fd)
            .map_err(|e| Error::os(obj, "fstat", io(e)))?
            .st_uid;
        let (ok, whom) = match owners {
            Owners::Anyone => return Ok(()),
            Owners::CurrentUser => (owner == me || owner == 0, "this user or root".to_owned()),
            Owners::Uids(uids) => (
                owner == me || owner == 0 || uids.contains(&owner),
                format!("this user, root or the uids {uids:?}"),
            ),
        };
        if ok {
            return Ok(());
        }
        Err(Error::AccessDenied {
            object: obj.to_owned(),
            reason: format!(
                "it is owned by {}, and this process accepts only objects made by {whom} \
                 (Options::trusted_owners): another user may have created the name first",
                os::user_label(owner)
            ),
        })
    }

    /// `fsync` of the backing file (data and metadata).
    pub(crate) fn sync_backing(&self, object: &str) -> Result<()> {
        match self.kind {
            Kind::File | Kind::NamedFile { .. } => {
                rfs::fsync(&*self.fd).map_err(|e| Error::os(object, "fsync", io(e)))
            }
            _ => Ok(()),
        }
    }

    /// The granularity of views: the system's, or the huge page size of a
    /// `hugetlbfs` object.
    pub(crate) fn granularity(&self) -> u64 {
        match self.large {
            Large::Hugetlb(size) => size,
            _ => granularity(),
        }
    }

    /// The large page size asked for, if any (`None`: the system's pages).
    pub(crate) fn large_page_size(&self) -> Option<u64> {
        match self.large {
            Large::No => None,
            Large::Transparent(s) | Large::Hugetlb(s) => Some(s),
        }
    }

    /// Whether the object was made reserve-only (`Options::reserve`): its
    /// pages must be committed before views reach them.
    pub(crate) fn reserved(&self) -> bool {
        matches!(self.kind, Kind::Named { mode, .. } if os::reserved_mode(mode))
    }

    /// Commits `offset..offset + len` of a reserve-only object.
    pub(crate) fn commit(&self, offset: u64, len: u64, obj: &str) -> Result<()> {
        let huge = matches!(self.large, Large::Transparent(_));
        os::commit(&self.fd, offset, len, self.size, huge, obj)
    }

    /// Whether all of `offset..offset + len` is committed (always, for an
    /// object that is not reserve-only).
    pub(crate) fn committed(&self, offset: u64, len: u64, _obj: &str) -> Result<bool> {
        Ok(!self.reserved() || os::committed(&self.fd, offset, len))
    }

    /// How many bytes from the start are committed.
    pub(crate) fn committed_prefix(&self, _obj: &str) -> Result<u64> {
        Ok(if self.reserved() {
            os::committed_prefix(&self.fd, self.size)
        } else {
            self.size
        })
    }

    /// Whether a file backs the object (as far as this process knows: a
    /// handed-over descriptor does not say).
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.kind, Kind::File | Kind::NamedFile { .. })
    }

    /// The path of the file a named file-backed object maps.
    pub(crate) fn file_path(&self) -> Option<&str> {
        match &self.kind {
            Kind::NamedFile { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and `self.fd` is not used after this.
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        if let Kind::Named {
            path,
            managed,
            id,
            unlink_on_drop,
            locker,
            ..
        } = &self.kind
        {
            os::release_named(fd, path, *managed, *id, *locker, *unlink_on_drop);
        }
    }
}

pub(super) fn stat_id(st: &rfs::Stat) -> (u64, u64) {
    #[allow(clippy::unnecessary_cast)]
    (st.st_dev as u64, st.st_ino as u64)
}

pub(super) fn is_regular(st: &rfs::Stat) -> bool {
    rfs::FileType::from_raw_mode(st.st_mode as _) == rfs::FileType::RegularFile
}

/// What kind of file `st` is, for messages ("a FIFO (named pipe)").
pub(super) fn file_kind(st: &rfs::Stat) -> &'static str {
    use rfs::FileType as T;
    match T::from_raw_mode(st.st_mode as _) {
        T::RegularFile => "a regular file",
        T::Directory => "a directory",
        T::Symlink => "a symbolic link",
        T::Fifo => "a FIFO (named pipe)",
        T::Socket => "a socket",
        T::CharacterDevice => "a character device",
        T::BlockDevice => "a block device",
        _ => "not a regular file",
    }
}

/// Waits with growing pauses: the library polls only where the OS offers no
/// way to wait (another process's half-finished step), and always with a deadline.
pub(super) struct Backoff(pub(super) u32);
impl Backoff {
    pub(super) fn pause(&mut self) {
        self.0 = (self.0 + 1).min(10);
        if self.0 < 4 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50 << (self.0 - 4)));
        }
    }
}

/// Maps `file`; `size` 0 means the file's size, a larger size grows the file.
pub(crate) fn from_file(file: &File, size: u64, access: Access, obj: &str) -> Result<Object> {
    let fd: OwnedFd = file
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::os(obj, "fcntl(F_DUPFD_CLOEXEC)", e))?;
    let st = rfs::fstat(&fd).map_err(|e| Error::os(obj, "fstat", io(e)))?;
    if !is_regular(&st) {
        return Err(Error::InvalidSize {
            object: obj.to_owned(),
            reason: format!(
                "it is {}, not a regular file, so it has no size to map",
                file_kind(&st)
            ),
        });
    }
    let acc = rfs::fcntl_getfl(&fd).map_err(|e| Error::os(obj, "fcntl(F_GETFL)", io(e)))?
        & OFlags::RWMODE;
    let file_writable = acc == OFlags::RDWR;
    if access == Access::ReadWrite && !file_writable {
        return Err(Error::AccessDenied {
            object: obj.to_owned(),
            reason: "read-write access was asked for, but the file was opened without both read and write".into(),
        });
    }
    if acc == OFlags::WRONLY {
        return Err(Error::AccessDenied {
            object: obj.to_owned(),
            reason: "the file was opened write-only; a mapping needs read access".into(),
        });
    }
    let current = st.st_size as u64;
    let size = super::file_size(size, current, access == Access::ReadWrite, obj)?;
    if size > current {
        rfs::ftruncate(&fd, size).map_err(|e| Error::os_sized(obj, size, "ftruncate", io(e)))?;
    }
    Ok(Object {
        fd: ManuallyDrop::new(fd),
        size,
        writable: access == Access::ReadWrite,
        large: Large::No,
        kind: Kind::File,
    })
}

// ---------------------------------------------------------------------------
// Handing an unnamed mapping to a child process.
// ---------------------------------------------------------------------------

/// A descriptor made inheritable for a child; closed again when dropped.
#[derive(Debug)]
pub(crate) struct Inherit {
    fd: OwnedFd,
}

impl Inherit {
    /// Prepares `o` for inheritance with `access`: a separate descriptor
    /// (opened read-only for read access) without close-on-exec.
    pub(crate) fn new(o: &Object, access: Access, obj: &str) -> Result<Inherit> {
        let fd = match os::reopen(&o.fd, &o.kind, access, obj)? {
            Some(fd) => fd,
            None => rustix::io::dup(&*o.fd).map_err(|e| Error::os(obj, "dup", io(e)))?,
        };
        // `dup` already leaves FD_CLOEXEC clear; the re-opened one has it set.
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty())
            .map_err(|e| Error::os(obj, "fcntl(F_SETFD)", io(e)))?;
        Ok(Inherit { fd })
    }

    /// The number the child sees.
    pub(crate) fn raw(&self) -> u64 {
        self.fd.as_raw_fd() as u64
    }
}

/// Adopts the descriptor `raw` that this process inherited; checks that it is
/// open, is a mapping object of at least `len` bytes, and allows `access`.
pub(crate) fn from_inherited(raw: u64, len: u64, access: Access, token: &str) -> Result<Object> {
    let bad = |reason: String| Error::InvalidToken {
        token: token.to_owned(),
        reason,
    };
    let rawfd =
        RawFd::try_from(raw).map_err(|_| bad(format!("{raw} is not a descriptor number")))?;
    if rawfd < 0 {
        return Err(bad(format!("{raw} is not a descriptor number")));
    }
    // SAFETY: borrowing only for the duration of these checks; if `rawfd` is not
    // open the calls fail with EBADF and nothing is closed.
    let borrowed = unsafe { BorrowedFd::borrow_raw(rawfd) };
    check_handed(borrowed, len, access).map_err(bad)?;
    // SAFETY: the descriptor is open (checked) and was handed to this process
    // for it to own: the token names it, and the parent closed its own copy
    // (a different number in the parent's table). Taking ownership once is
    // the caller's contract, stated on `Mapping::from_inherited`.
    let fd = unsafe { OwnedFd::from_raw_fd(rawfd) };
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| Error::os(token, "fcntl(F_SETFD)", io(e)))?;
    Ok(handed(fd, len, access))
}

/// Checks a descriptor handed to this process: open, a regular file (shared
/// memory or a file) of at least `len` bytes, and open for `access`.
fn check_handed(fd: BorrowedFd<'_>, len: u64, access: Access) -> std::result::Result<(), String> {
    let n = fd.as_raw_fd();
    let fl = rfs::fcntl_getfl(fd)
        .map_err(|e| format!("descriptor {n} is not open in this process ({})", io(e)))?;
    let st = rfs::fstat(fd).map_err(|e| format!("fstat of descriptor {n} failed: {}", io(e)))?;
    if !is_regular(&st) {
        return Err(format!(
            "descriptor {n} is {}, not a shared-memory object or file",
            file_kind(&st)
        ));
    }
    if (st.st_size as u64) < len {
        return Err(format!(
            "descriptor {n} has {} bytes, fewer than the {len} it was handed over with",
            st.st_size
        ));
    }
    if access == Access::ReadWrite && fl & OFlags::RWMODE != OFlags::RDWR {
        return Err(format!(
            "it was handed over as read-write, but descriptor {n} is read-only"
        ));
    }
    Ok(())
}

/// The object for a descriptor handed to this process (checked).
fn handed(fd: OwnedFd, len: u64, access: Access) -> Object {
    let large = os::large_of_fd(fd.as_fd());
    Object {
        fd: ManuallyDrop::new(fd),
        size: len,
        writable: access == Access::ReadWrite,
        large,
        kind: Kind::Inherited,
    }
}

// ---------------------------------------------------------------------------
// Handing a mapping to an unrelated process over a Unix socket.
// ---------------------------------------------------------------------------

/// What goes with the descriptor: `FMHO`, a version, the access, and the size.
const HANDOVER_MAGIC: [u8; 4] = *b"FMHO";
const HANDOVER_LEN: usize = 16;

/// Sends `o` over the connected Unix socket `socket` (`SCM_RIGHTS`), with
/// `access`: a read-only hand-over sends a read-only descriptor (made as for
/// `Inherit`).
pub(crate) fn send_over(
    o: &Object,
    access: Access,
    socket: BorrowedFd<'_>,
    obj: &str,
) -> Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage};
    let own = os::reopen(&o.fd, &o.kind, access, obj)?;
    let fd: BorrowedFd<'_> = own.as_ref().map_or(o.fd.as_fd(), |f| f.as_fd());
    let mut head = [0u8; HANDOVER_LEN];
    head[..4].copy_from_slice(&HANDOVER_MAGIC);
    head[4] = 1;
    head[5] = u8::from(access == Access::ReadWrite);
    head[8..].copy_from_slice(&o.size.to_le_bytes());
    let fds = [fd];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let sent = sendmsg(
        socket,
        &[std::io::IoSlice::new(&head)],
        &mut control,
        os::SEND_FLAGS,
    )
    .map_err(|e| Error::os(obj, "sendmsg(SCM_RIGHTS)", io(e)))?;
    if sent != HANDOVER_LEN {
        return Err(Error::os(
            obj,
            "sendmsg(SCM_RIGHTS)",
            std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "the socket took part of the message",
            ),
        ));
    }
    Ok(())
}

/// Receives a mapping sent with [`send_over`] from the Unix socket `socket`;
/// returns the object and the access it was sent with. `label` names the
/// socket in messages.
pub(crate) fn receive_over(socket: BorrowedFd<'_>, label: &str) -> Result<(Object, Access)> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage};
    let bad = |reason: String| Error::InvalidToken {
        token: label.to_owned(),
        reason,
    };
    let mut head = [0u8; HANDOVER_LEN];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        socket,
        &mut [std::io::IoSliceMut::new(&mut head)],
        &mut control,
        os::RECV_FLAGS,
    )
    .map_err(|e| Error::os(label, "recvmsg(SCM_RIGHTS)", io(e)))?;
    // Take every descriptor that came, so that none leaks whatever else is wrong.
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    if got.bytes == 0 {
        return Err(bad(
            "the other end closed the socket before sending a mapping".into(),
        ));
    }
    if got.bytes != HANDOVER_LEN || head[..4] != HANDOVER_MAGIC || head[4] != 1 {
        return Err(bad(format!(
            "what came is not a filemap hand-over ({} bytes starting {:02x?})",
            got.bytes,
            &head[..got.bytes.min(8)]
        )));
    }
    let access = if head[5] == 1 {
        Access::ReadWrite
    } else {
        Access::Read
    };
    let len = u64::from_le_bytes(head[8..].try_into().expect("8 bytes"));
    if fds.len() != 1 {
        return Err(bad(format!(
            "{} descriptors came with it, not one",
            fds.len()
        )));
    }
    let fd = fds.pop().expect("one descriptor");
    if len == 0 {
        return Err(bad("it says the mapping has 0 bytes".into()));
    }
    check_handed(fd.as_fd(), len, access).map_err(bad)?;
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| Error::os(label, "fcntl(F_SETFD)", io(e)))?;
    Ok((handed(fd, len, access), access))
}

// ---------------------------------------------------------------------------
// Views.
// ---------------------------------------------------------------------------

/// Maps `len` bytes of `o` from `offset` (any offset: it is aligned down here
/// and the returned view starts exactly at `offset`). The caller has checked
/// the range and the access.
pub(crate) fn map(
    o: &Object,
    offset: u64,
    len: usize,
    access: ViewAccess,
    at: Option<usize>,
    obj: &str,
) -> Result<RawView> {
    let p = super::place(offset, len, o.size, o.granularity(), obj)?;
    let (prot, flags) = match access {
        ViewAccess::Read => (ProtFlags::READ, MapFlags::SHARED),
        ViewAccess::ReadWrite => (ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED),
        ViewAccess::CopyOnWrite => (ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE),
    };
    let (hint, flags) = match at {
        None => (std::ptr::null_mut(), flags),
        Some(a) => (
            super::placed_base(&p, a, obj)? as *mut std::ffi::c_void,
            flags | os::NO_REPLACE,
        ),
    };
    // SAFETY: no existing memory is replaced: without an address the kernel
    // picks one (null hint); with one, `MAP_FIXED_NOREPLACE` (Linux) fails
    // rather than replace, and elsewhere the address is only a hint (checked
    // below). `fd` is open; the offset is a multiple of the page size. The
    // result is only used through RawView.
    let base = unsafe { mm::mmap(hint, p.map_len, prot, flags, &*o.fd, p.aligned) }.map_err(
        |e| match (at, e) {
            (Some(a), Errno::EXIST) => super::placement_error(
                obj,
                a,
                "the range is in use: something is already mapped there".into(),
            ),
            _ => Error::os_sized(obj, p.map_len as u64, "mmap", io(e)),
        },
    )?;
    if let Some(a) = at {
        if base != hint {
            // A kernel without MAP_FIXED_NOREPLACE (before Linux 4.17), or a
            // hint not taken (macOS): the range was not free.
            // SAFETY: `base..base + map_len` is the mapping just made, unused.
            let _ = unsafe { mm::munmap(base, p.map_len) };
            return Err(super::placement_error(
                obj,
                a,
                "the range is in use (the system would have put the view elsewhere)".into(),
            ));
        }
    }
    if let Large::Transparent(_) = o.large {
        // Ask for huge pages in this view too (`huge=advise` on the
        // mount maps them only in views that ask); a refusal only costs speed.
        // SAFETY: `base..base + map_len` is the mapping just made, which
        // nothing else uses yet.
        unsafe { os::advise_huge(base, p.map_len) };
    }
    let mut raw = RawView::new(base.cast(), &p, len);
    raw.watch = sigbus::watch(base as usize, p.map_len);
    Ok(raw)
}

/// Unmaps a view, reporting the OS error if any.
/// How many bytes of the view the OS maps with large pages now.
pub(crate) fn large_page_bytes(v: &RawView, obj: &str) -> Result<u64> {
    os::huge_bytes(v.base as usize, v.map_len, obj)
}

pub(crate) fn unmap(v: &RawView, obj: &str) -> Result<()> {
    if let Some(slot) = v.watch {
        sigbus::unwatch(slot);
    }
    // SAFETY: `base..base+map_len` is exactly what `map` mapped, and the caller
    // (View) unmaps each RawView once and never touches it afterwards.
    unsafe { mm::munmap(v.base.cast(), v.map_len) }.map_err(|e| Error::os(obj, "munmap", io(e)))
}

/// Starts (or, with `wait`, completes) write-back of the view's pages.
pub(crate) fn flush(v: &RawView, wait: bool, obj: &str) -> Result<()> {
    let flags = if wait {
        MsyncFlags::SYNC
    } else {
        MsyncFlags::ASYNC
    };
    // SAFETY: `base..base+map_len` is a live mapping made by `map`; msync does
    // not change its contents.
    unsafe { mm::msync(v.base.cast(), v.map_len, flags) }
        .map_err(|e| Error::os(obj, "msync", io(e)))
}
