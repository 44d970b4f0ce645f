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
