//! OS-specific extensions, as `std::os` has them: what only one family of
//! systems can do. Today: handing a mapping to an unrelated process (not a
//! child), `DuplicateHandle` into another process on Windows and a descriptor
//! sent over a Unix socket elsewhere. (The one public module with OS
//! conditions: its whole point is the difference.)

#[cfg(unix)]
pub mod unix;
#[cfg(windows)]
pub mod windows;
