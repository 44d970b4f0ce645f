//! Small types every layer shares, the `sys` layer included: the access a
//! process holds, the access of one view, what create-or-open did, and the
//! parameters of creating a named object. A leaf module: it imports nothing
//! from the crate. [`crate::mapping`] re-exports the public ones.

use std::time::Duration;

/// The access a process holds on a mapping object (`FILE_MAP_READ` or
/// `FILE_MAP_READ | FILE_MAP_WRITE`; `O_RDONLY` or `O_RDWR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read only. Views can be [`ViewAccess::Read`] or [`ViewAccess::CopyOnWrite`].
    Read,
    /// Read and write. Views of any kind.
    ReadWrite,
}

/// The access of one view (`FILE_MAP_READ`, `FILE_MAP_WRITE`, `FILE_MAP_COPY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewAccess {
    /// Read only: writes through it are refused.
    Read,
    /// Read and write, shared: other processes see the writes.
    ReadWrite,
    /// Copy-on-write: reads see the shared bytes until this view writes a page;
    /// from then on that page is private to this view, and its writes are never
    /// seen by anyone else nor reach a backing file.
    CopyOnWrite,
}

/// What create-or-open did (the `ERROR_ALREADY_EXISTS` case of `CreateFileMapping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// This call created the object, with the requested size, zero-filled.
    Created,
    /// The object existed and was opened as it is: same size and bytes as
    /// before (never resized nor truncated), whatever size this call asked for.
    Opened,
}

/// Whose named objects a process accepts when it opens an existing one
/// ([`crate::Options::trusted_owners`]): anyone may create a name first
/// (squat it) with a mode that lets others in, and a process that opens it
/// then exchanges data with the squatter.
///
/// The default is [`Owners::Anyone`], as with `OpenFileMapping`, Python's
/// `SharedMemory` and Boost: the object's permissions decide who may open
/// it, objects made by other programs and by services running as another
/// user can be opened, and nothing that worked before breaks. A process
/// that meets names other users can make (a service in a shared `/dev/shm`
/// or session namespace) should say whom it trusts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Owners {
    /// Any owner the OS lets this process open: the OS's permissions decide.
    #[default]
    Anyone,
    /// Only objects made by this process's user, or by the administrator
    /// (root; on Windows `LocalSystem` or the Administrators group, which
    /// also own what an elevated process makes).
    CurrentUser,
    /// (Unix) Objects made by these user ids, this process's user, or root.
    /// On Windows, [`crate::Error::Unsupported`].
    Uids(Vec<u32>),
}

/// Parameters for creating and opening named objects, as the sys layer needs them.
#[derive(Debug, Clone)]
pub(crate) struct CreateParams {
    pub mode: u32,
    pub persistent: bool,
    pub ready_timeout: Duration,
    pub access: Access,
    /// Reserve only: no page of a new object is committed up front.
    pub reserve: bool,
    /// Back a new object with large (huge) pages.
    pub large_pages: bool,
    /// Whose existing objects an open accepts.
    pub owners: Owners,
}
