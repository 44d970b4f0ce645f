//! The scenario of the Win32 "Creating Named Shared Memory" tutorial, shared by
//! the `writer`, `reader` and `demo` examples.

// Each example uses only part of this module.
#![allow(dead_code)]

use filemap::{Access, Mapping, ViewAccess};

/// The tutorial's object name.
pub const NAME: &str = "Local\\MyFileMappingObject";
/// The tutorial's buffer size.
pub const SIZE: u64 = 256;
/// What the first process writes.
pub const MESSAGE: &str = "Message from first process.";
/// Where the second process writes its reply.
pub const REPLY_AT: usize = 128;

/// First process: create the mapping and write the message. The mapping lives
/// while the returned handle does.
pub fn create_and_write() -> filemap::Result<Mapping> {
    let m = Mapping::create(NAME, SIZE)?;
    m.view(.., ViewAccess::ReadWrite)?
        .write_at(0, MESSAGE.as_bytes())?;
    Ok(m)
}

/// Second process: open the mapping, read the message, write a reply.
pub fn open_read_and_reply(reply: &str) -> filemap::Result<String> {
    let m = Mapping::open(NAME, Access::ReadWrite)?;
    let v = m.view(.., ViewAccess::ReadWrite)?;
    let msg = read_str(&v, 0);
    v.write_at(REPLY_AT, reply.as_bytes())?;
    Ok(msg)
}

/// The NUL-terminated text at `at`.
pub fn read_str(v: &filemap::View, at: usize) -> String {
    let bytes = v.to_vec();
    let text = &bytes[at..];
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    String::from_utf8_lossy(&text[..end]).into_owned()
}
