//! Small types every layer shares, the `sys` layer included: the access a
//! process holds, the access of one view, what create-or-open did, and the
//! parameters of creating a named object, the type of a channel's messages.
//! It imports only the leaves (`error`, `hash`). [`crate::mapping`]
//! re-exports the public ones.

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

/// The type of the messages a channel carries, as its segment records it:
/// an identity (by default the Rust type's name), the size and the alignment.
///
/// A channel created with a message type ([`crate::Options::message_type`],
/// or the typed channels of [`crate::typed`], which set it for you) refuses an
/// opener that expects another type with [`crate::Error::Incompatible`]
/// naming both, instead of letting it read one type's bytes as another's.
/// Identities are compared by a 64-bit hash of the whole string, size and
/// alignment; the segment keeps [`MessageType::STORED_NAME`] bytes of the
/// identity (its end, where a Rust path names the type) for messages and
/// tools (`filemap info`).
///
/// The default identity is [`std::any::type_name`], which is good for two
/// programs built from the same source by the same compiler; programs in
/// other languages, or built apart, should agree on an explicit identity
/// ([`MessageType::named`]), for example `"sensors.Reading/v2"`.
///
/// ```
/// use filemap::MessageType;
/// let t = MessageType::of::<[u32; 4]>();
/// assert_eq!((t.size(), t.align(), t.identity()), (16, 4, "[u32; 4]"));
/// let v2 = MessageType::named::<[u32; 4]>("sensors.Reading/v2");
/// assert_ne!(t, v2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageType {
    identity: String,
    size: u32,
    align: u32,
    hash: u64,
}

impl MessageType {
    /// How many bytes of the identity a segment keeps (for display).
    pub const STORED_NAME: usize = 32;

    /// The message type of `T`, identified by its type name.
    ///
    /// # Panics
    /// For a type of 4 GiB or more (no channel carries such messages).
    pub fn of<T>() -> MessageType {
        Self::named::<T>(std::any::type_name::<T>())
    }

    /// The message type of `T` with an identity of the caller's choosing.
    ///
    /// # Panics
    /// As [`MessageType::of`].
    pub fn named<T>(identity: &str) -> MessageType {
        let size = u32::try_from(std::mem::size_of::<T>()).expect("a message type under 4 GiB");
        let align = u32::try_from(std::mem::align_of::<T>()).expect("an alignment under 4 GiB");
        Self::from_parts(identity, size, align)
    }

    /// A message type described by its parts, for bindings that have no
    /// Rust type (Python's NumPy dtypes, C structs): `size` and `align` in
    /// bytes, as the language lays the type out.
    ///
    /// # Errors
    /// [`crate::Error::InvalidSize`] for an empty identity, a size of 4 GiB
    /// or more, or an alignment that is not a power of two (at most 4096).
    pub fn new(identity: &str, size: u64, align: u64) -> crate::error::Result<MessageType> {
        let bad = |reason: String| crate::error::Error::InvalidSize {
            object: format!("message type `{identity}`"),
            reason,
        };
        if identity.is_empty() {
            return Err(bad("its identity is empty".into()));
        }
        let size = u32::try_from(size).map_err(|_| bad(format!("{size} bytes is too large")))?;
        if !align.is_power_of_two() || align > 4096 {
            return Err(bad(format!(
                "alignment {align} is not a power of two up to 4096"
            )));
        }
        Ok(Self::from_parts(identity, size, align as u32))
    }

    fn from_parts(identity: &str, size: u32, align: u32) -> MessageType {
        MessageType {
            identity: identity.to_owned(),
            size,
            align,
            hash: crate::hash::fnv1a(identity.bytes()),
        }
    }

    /// As a segment recorded it: the stored (maybe cut) identity with the
    /// hash of the whole one.
    pub(crate) fn recorded(identity: String, size: u32, align: u32, hash: u64) -> MessageType {
        MessageType {
            identity,
            size,
            align,
            hash,
        }
    }

    /// What a segment keeps of the identity: all of it when it fits in
    /// [`MessageType::STORED_NAME`] bytes, else `…` and its end (the end of
    /// a Rust path names the type), cut at a character boundary.
    pub(crate) fn stored_identity(&self) -> String {
        let id = self.identity.as_str();
        if id.len() <= Self::STORED_NAME {
            return id.to_owned();
        }
        let mut from = id.len() - (Self::STORED_NAME - '…'.len_utf8());
        while !id.is_char_boundary(from) {
            from += 1;
        }
        format!("…{}", &id[from..])
    }

    /// The identity (as recorded by a segment: `…` and its last bytes,
    /// when longer than [`MessageType::STORED_NAME`]).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Size of one value in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.size)
    }

    /// Alignment in bytes.
    pub fn align(&self) -> u64 {
        u64::from(self.align)
    }

    /// The 64-bit FNV-1a hash of the whole identity (what openers compare).
    pub fn identity_hash(&self) -> u64 {
        self.hash
    }

    /// Whether `self` and `other` describe the same messages (same identity
    /// hash, size and alignment: a stored, cut identity still matches).
    pub fn same_as(&self, other: &MessageType) -> bool {
        (self.hash, self.size, self.align) == (other.hash, other.size, other.align)
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` ({} bytes, alignment {})",
            self.identity, self.size, self.align
        )
    }
}
