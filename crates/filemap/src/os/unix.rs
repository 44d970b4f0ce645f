//! Unix: hand a mapping to an unrelated process over a Unix socket
//! (`SCM_RIGHTS`), as `DuplicateHandle` does on Windows.
//!
//! ```no_run
//! use std::os::unix::net::UnixStream;
//! use filemap::os::unix::{receive_mapping, MappingExt};
//! use filemap::{Access, Mapping};
//!
//! // Process A (a server, say): hand a read-only mapping to whoever connects.
//! # let (a, b) = UnixStream::pair()?;
//! let m = Mapping::anonymous(1 << 20)?;
//! m.send_over(&a, Access::Read)?;
//!
//! // Process B, unrelated to A: what arrives is checked, then mapped.
//! let got = receive_mapping(&b)?;
//! assert_eq!(got.access(), Access::Read);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use crate::error::Result;
use crate::mapping::{Access, Mapping};
use crate::sys;

/// Handing a [`Mapping`] to another process over a Unix socket.
pub trait MappingExt {
    /// Sends this mapping over the connected Unix stream socket `socket`,
    /// with at most `access` (never more than this handle holds): the other
    /// process gets it with [`receive_mapping`]. A read-only hand-over sends
    /// a descriptor that cannot write (see [`Mapping::inherit`] for exactly
    /// what a read-only hand-over guarantees). A named object's name lives
    /// while the receiver holds it (Linux).
    ///
    /// # Errors
    /// [`crate::Error::AccessDenied`] for read-write from a read-only
    /// mapping; [`crate::Error::Os`] when sending fails (`sendmsg`).
    fn send_over(&self, socket: &UnixStream, access: Access) -> Result<()>;
}

impl MappingExt for Mapping {
    fn send_over(&self, socket: &UnixStream, access: Access) -> Result<()> {
        self.check_hand_over(access, "another process")?;
        let (obj, label) = self.object();
        sys::send_over(obj, access, socket.as_fd(), label)
    }
}

/// Receives a mapping another process sent with [`MappingExt::send_over`]
/// over the Unix stream socket `socket` (waits for it). What arrives is
/// checked before it is trusted: a filemap hand-over, exactly one
/// descriptor, a shared-memory object or file of at least the size it says,
/// open for at least the access it says.
///
/// # Errors
/// [`crate::Error::InvalidToken`] (naming the socket) for anything that is
/// not such a hand-over, or a peer that closed first; [`crate::Error::Os`]
/// when receiving fails.
pub fn receive_mapping(socket: &UnixStream) -> Result<Mapping> {
    let label = match socket
        .peer_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
    {
        Some(p) => format!("<hand-over from {p}>"),
        None => "<hand-over>".to_owned(),
    };
    let (obj, access) = sys::receive_over(socket.as_fd(), &label)?;
    Ok(Mapping::handed(obj, label, access))
}
