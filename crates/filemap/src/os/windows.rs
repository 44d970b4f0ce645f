//! Windows: hand a mapping to an unrelated process by duplicating its
//! section handle into that process (`DuplicateHandle`).
//!
//! ```no_run
//! use filemap::os::windows::MappingExt;
//! use filemap::{Access, Mapping};
//!
//! // Process A: put a read-only handle into process 4242 and tell it the
//! // token (through a pipe, a socket, a file: any way at all).
//! let m = Mapping::anonymous(1 << 20)?;
//! let token = m.duplicate_into(4242, Access::Read)?;
//!
//! // Process 4242, unrelated to A:
//! // let got = unsafe { Mapping::from_inherited(&token) }?;
//! # let _ = token;
//! # Ok::<(), filemap::Error>(())
//! ```

use crate::error::Result;
use crate::mapping::{Access, Mapping};
use crate::sys;

/// Handing a [`Mapping`] to another process on Windows.
pub trait MappingExt {
    /// Duplicates this mapping's section handle into the process `pid`, with
    /// at most `access`, and returns the token that process passes to
    /// [`Mapping::from_inherited`] to adopt it (once). Tell it the token any
    /// way you like. Until it adopts the handle, the handle is open in that
    /// process, and closes when that process exits.
    ///
    /// # Errors
    /// [`crate::Error::AccessDenied`] for read-write from a read-only
    /// mapping, or when this process may not open `pid` with
    /// `PROCESS_DUP_HANDLE`; [`crate::Error::Os`].
    fn duplicate_into(&self, pid: u32, access: Access) -> Result<String>;
}

impl MappingExt for Mapping {
    fn duplicate_into(&self, pid: u32, access: Access) -> Result<String> {
        self.check_hand_over(access, "another process")?;
        let (obj, label) = self.object();
        let raw = sys::duplicate_into(obj, pid, access, label)?;
        Ok(self.token(raw, access))
    }
}

/// A named section, as [`sections`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SectionInfo {
    /// Its name as [`Mapping::open`] takes it: as it is for this session's
    /// sections, `Global\NAME` for the global namespace's.
    pub name: String,
    /// Its size in bytes; `None` when this process may not open it.
    pub size: Option<u64>,
    /// Whether a file backs it (`SEC_FILE`); `None` when it cannot be opened.
    pub file_backed: Option<bool>,
    /// Handles open on it in every process (this listing's own excluded);
    /// `None` where the system does not say.
    pub handles: Option<u32>,
    /// Its filemap segment header, if it has one.
    pub header: Option<crate::segment::Header>,
}

fn section_info(e: sys::SectionEntry) -> SectionInfo {
    SectionInfo {
        header: e.head.as_deref().and_then(crate::segment::parse_header),
        name: e.name,
        size: e.size,
        file_backed: e.file_backed,
        handles: e.handles,
    }
}

/// Every named section of this session and of the global namespace, sorted
/// by name: what `filemap list` shows on Windows. Read through the object
/// manager's directories (`\Sessions\N\BaseNamedObjects`,
/// `\BaseNamedObjects`), each section opened read-only for a moment (so its
/// handle count, which excludes that handle, is exact only while nothing
/// else opens or closes it).
///
/// ```no_run
/// for s in filemap::os::windows::sections()? {
///     println!("{} {:?} bytes, {:?} handles", s.name, s.size, s.handles);
/// }
/// # Ok::<(), filemap::Error>(())
/// ```
///
/// # Errors
/// [`crate::Error::Os`] when the session's directory cannot be read.
pub fn sections() -> Result<Vec<SectionInfo>> {
    Ok(sys::list_sections()?
        .into_iter()
        .map(section_info)
        .collect())
}

/// What [`sections`] says of the one section `name`.
///
/// # Errors
/// [`crate::Error::InvalidName`] for a name filemap does not take;
/// [`crate::Error::NotFound`] when no section has it.
pub fn section(name: &str) -> Result<SectionInfo> {
    crate::name::parse(name)?;
    let e = sys::section_entry(name);
    if e.size.is_none() {
        // Not openable: missing, or not this process's to open.
        Mapping::open(name, Access::Read)?;
    }
    Ok(section_info(e))
}
