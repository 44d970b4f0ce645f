//! Off Linux: no inspection yet. Every call says so, naming the object.

use super::{Cleaned, ObjectInfo};
use crate::error::{Error, Result};
use crate::name::Name;

fn no_inspection(object: &str) -> Error {
    Error::Unsupported {
        object: object.to_owned(),
        what: if cfg!(windows) {
            "listing and inspecting through `inspect` (Linux); on Windows, \
             `filemap::os::windows::sections` lists the named sections"
                .into()
        } else {
            "listing and inspecting shared-memory objects (Linux; macOS offers no \
             listing of shm names)"
                .into()
        },
    }
}

pub(super) fn list() -> Result<Vec<ObjectInfo>> {
    Err(no_inspection("shared memory"))
}

pub(super) fn info(n: &Name) -> Result<ObjectInfo> {
    Err(no_inspection(&n.given))
}

pub(super) fn remove_if_stale(n: &Name) -> Result<Cleaned> {
    Err(no_inspection(&n.given))
}
