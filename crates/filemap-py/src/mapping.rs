//! Mappings, views and hand-overs to children.

use std::os::raw::c_int;

use filemap::{Access, ViewAccess};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Fail as Error, Result};
use crate::*;

pub(crate) fn access(s: &str) -> Result<Access> {
    match s {
        "r" => Ok(Access::Read),
        "rw" => Ok(Access::ReadWrite),
        _ => {
            Err(PyValueError::new_err(format!("access must be \"r\" or \"rw\", not {s:?}")).into())
        }
    }
}

pub(crate) fn view_access(s: &str) -> Result<ViewAccess> {
    match s {
        "r" => Ok(ViewAccess::Read),
        "rw" => Ok(ViewAccess::ReadWrite),
        "cow" => Ok(ViewAccess::CopyOnWrite),
        _ => Err(PyValueError::new_err(format!(
            "access must be \"r\", \"rw\" or \"cow\", not {s:?}"
        ))
        .into()),
    }
}

/// A mapping object: named or unnamed, backed by memory or a file.
#[pyclass(module = "filemap._filemap")]
pub(crate) struct Mapping {
    inner: Option<filemap::Mapping>,
}

impl Mapping {
    fn get(&self) -> Result<&filemap::Mapping> {
        self.inner
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the mapping is closed").into())
    }
}

pub(crate) fn options(mode: u32, persistent: bool, access_: &str) -> Result<filemap::Options> {
    let mut o = filemap::Options::new().mode(mode).access(access(access_)?);
    if persistent {
        o = o.lifetime(filemap::Lifetime::Persistent);
    }
    Ok(o)
}

/// Whose existing objects an open accepts: `"anyone"` (the default), `"me"`
/// (this user or root), or a list of user ids (plus this user and root).
#[derive(FromPyObject)]
pub(crate) enum OwnersArg {
    Word(String),
    Uids(Vec<u32>),
}

pub(crate) fn owners(o: Option<OwnersArg>) -> Result<filemap::Owners> {
    Ok(match o {
        None => filemap::Owners::Anyone,
        Some(OwnersArg::Word(w)) if w == "anyone" => filemap::Owners::Anyone,
        Some(OwnersArg::Word(w)) if w == "me" => filemap::Owners::CurrentUser,
        Some(OwnersArg::Word(w)) => {
            return Err(PyValueError::new_err(format!(
                "owners must be \"anyone\", \"me\" or a list of user ids, not {w:?}"
            ))
            .into())
        }
        Some(OwnersArg::Uids(u)) => filemap::Owners::Uids(u),
    })
}

#[pymethods]
impl Mapping {
    /// Creates the named mapping of `size` bytes (zero-filled); fails with
    /// `AlreadyExists` if the name is taken.
    #[staticmethod]
    #[pyo3(signature = (name, size, *, mode = 0o600, persistent = false))]
    fn create(name: &str, size: u64, mode: u32, persistent: bool) -> Result<Mapping> {
        Ok(Mapping {
            inner: Some(options(mode, persistent, "rw")?.create(name, size)?),
        })
    }

    /// Opens the existing named mapping with `access` ("r" or "rw").
    /// `owners` ("anyone", "me", or a list of user ids) refuses, with
    /// `AccessDenied`, an object made by anyone else (a name another user
    /// took first).
    #[staticmethod]
    #[pyo3(signature = (name, access = "rw", *, owners = None))]
    fn open(name: &str, access: &str, owners: Option<OwnersArg>) -> Result<Mapping> {
        let o = options(0o600, false, access)?.trusted_owners(self::owners(owners)?);
        Ok(Mapping {
            inner: Some(o.open(name)?),
        })
    }

    /// Creates the named mapping or opens the existing one; returns
    /// `(mapping, created)`. `owners` as for `open`.
    #[staticmethod]
    #[pyo3(signature = (name, size, *, mode = 0o600, persistent = false, access = "rw", owners = None))]
    fn create_or_open(
        name: &str,
        size: u64,
        mode: u32,
        persistent: bool,
        access: &str,
        owners: Option<OwnersArg>,
    ) -> Result<(Mapping, bool)> {
        let (m, how) = options(mode, persistent, access)?
            .trusted_owners(self::owners(owners)?)
            .create_or_open(name, size)?;
        Ok((
            Mapping { inner: Some(m) },
            how == filemap::Disposition::Created,
        ))
    }

    /// Maps the file at `path` (`size` 0: the whole file; larger grows it).
    #[staticmethod]
    #[pyo3(signature = (path, size = 0, access = "rw"))]
    fn from_path(path: std::path::PathBuf, size: u64, access: &str) -> Result<Mapping> {
        Ok(Mapping {
            inner: Some(filemap::Mapping::from_path(
                &path,
                size,
                self::access(access)?,
            )?),
        })
    }

    /// A new unnamed mapping, for this process and the children it hands it to.
    #[staticmethod]
    fn anonymous(size: u64) -> Result<Mapping> {
        Ok(Mapping {
            inner: Some(filemap::Mapping::anonymous(size)?),
        })
    }

    /// Picks up a mapping a parent handed over with `inherit` (call once per token).
    #[staticmethod]
    fn from_inherited(token: &str) -> Result<Mapping> {
        // SAFETY: the token names a descriptor or handle the parent made
        // for this process (checked: open, a mapping object of the size
        // and access it says); taking it at most once per token is the
        // caller's promise, documented on the Python method.
        let m = unsafe { filemap::Mapping::from_inherited(token) }?;
        Ok(Mapping { inner: Some(m) })
    }

    /// Removes a name (the POSIX way, for persistent mappings).
    #[staticmethod]
    fn remove(name: &str) -> Result<()> {
        filemap::Mapping::remove(name).map_err(Error::from)
    }

    /// Prepares the mapping for a child process: pass `handle` in
    /// `subprocess`'s `pass_fds` (Unix; on Windows the handle is
    /// inheritable) and `token` to the child, which calls `from_inherited`.
    #[pyo3(signature = (access = "rw"))]
    fn inherit(&self, access: &str) -> Result<Inheritable> {
        let h = self.get()?.inherit(self::access(access)?)?;
        let token = h.token().to_owned();
        let handle = token
            .split(':')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(Inheritable {
            _inner: h,
            token,
            handle,
        })
    }

    /// A view of `length` bytes from `offset` (None: to the end), with
    /// `access` "r", "rw" or "cow" (default: "rw" when the mapping allows).
    #[pyo3(signature = (offset = 0, length = None, access = None))]
    fn view(&self, offset: u64, length: Option<u64>, access: Option<&str>) -> Result<View> {
        let m = self.get()?;
        let acc = match access {
            Some(a) => view_access(a)?,
            None if m.access() == Access::ReadWrite => ViewAccess::ReadWrite,
            None => ViewAccess::Read,
        };
        let v = m.map(offset, length.unwrap_or(0), acc)?;
        Ok(View {
            readonly: acc == ViewAccess::Read,
            inner: Some(v),
            exports: 0,
        })
    }

    fn __len__(&self) -> Result<usize> {
        Ok(self.get()?.len() as usize)
    }

    /// The name, or None for unnamed and file mappings.
    #[getter]
    fn name(&self) -> Result<Option<String>> {
        Ok(self.get()?.name().map(str::to_owned))
    }

    /// "r" or "rw".
    #[getter]
    fn access(&self) -> Result<&'static str> {
        Ok(match self.get()?.access() {
            Access::Read => "r",
            Access::ReadWrite => "rw",
        })
    }

    /// "memory" or "file".
    #[getter]
    fn backing(&self) -> Result<&'static str> {
        Ok(self.get()?.backing().as_str())
    }

    /// Lets go of the mapping (views keep the object alive while they live).
    fn close(&mut self) {
        self.inner = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) {
        self.close();
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            Some(m) => format!(
                "<filemap.Mapping {:?} {} bytes {}>",
                m.name().unwrap_or("<unnamed>"),
                m.len(),
                m.backing().as_str()
            ),
            None => "<filemap.Mapping closed>".into(),
        }
    }
}

/// A mapping made ready for a child process (see `Mapping.inherit`).
#[pyclass(module = "filemap._filemap")]
pub(crate) struct Inheritable {
    _inner: filemap::Inheritable,
    /// The text the child passes to `Mapping.from_inherited`.
    #[pyo3(get)]
    token: String,
    /// The descriptor (Unix) or handle (Windows) the child must inherit.
    #[pyo3(get)]
    handle: u64,
}

/// A view of a mapping: the buffer protocol (`memoryview(v)`,
/// `numpy.frombuffer(v, dtype)`: zero-copy, read-only for a read-only
/// view), `read_at`, `write_at`.
#[pyclass(module = "filemap._filemap")]
pub(crate) struct View {
    inner: Option<filemap::View>,
    readonly: bool,
    /// Buffers handed out and not yet released.
    exports: usize,
}

impl View {
    fn get(&self) -> Result<&filemap::View> {
        self.inner
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the view is closed").into())
    }
}

#[pymethods]
impl View {
    /// # Safety
    /// Called by Python with a `Py_buffer` to fill, per the buffer protocol.
    unsafe fn __getbuffer__(
        mut slf: PyRefMut<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> Result<()> {
        let (ptr, len) = {
            let v = slf.get()?;
            (v.as_ptr(), v.len())
        };
        let readonly = c_int::from(slf.readonly);
        let obj = slf.as_ptr();
        // SAFETY: `view` is the buffer Python asked us to fill; `ptr..ptr+len`
        // is the live mapped view, which stays mapped while the buffer is
        // exported: `close` refuses while `exports` > 0, and the buffer holds
        // a reference to this object (set by PyBuffer_FillInfo), so it
        // cannot be dropped first. Other processes may write the bytes at any
        // time, which Python code sees as a memoryview over shared memory.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                obj,
                ptr.cast(),
                len as ffi::Py_ssize_t,
                readonly,
                flags,
            )
        };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()).into());
        }
        slf.exports += 1;
        Ok(())
    }

    /// # Safety
    /// Called by Python when a buffer from `__getbuffer__` is released.
    unsafe fn __releasebuffer__(mut slf: PyRefMut<'_, Self>, _view: *mut ffi::Py_buffer) {
        slf.exports = slf.exports.saturating_sub(1);
    }

    /// `n` bytes from `offset`, copied.
    fn read_at<'py>(
        &self,
        py: Python<'py>,
        offset: usize,
        n: usize,
    ) -> Result<Bound<'py, PyBytes>> {
        let v = self.get()?;
        let mut buf = vec![0u8; n];
        v.read_at(offset, &mut buf)?;
        Ok(PyBytes::new(py, &buf))
    }

    /// Copies `data` in at `offset`.
    fn write_at(&self, offset: usize, data: Bytes) -> Result<()> {
        let data: &[u8] = &data;
        self.get()?.write_at(offset, data).map_err(Error::from)
    }

    /// Starts writing a file-backed view back to disk.
    fn flush(&self) -> Result<()> {
        self.get()?.flush().map_err(Error::from)
    }

    /// Whether writes through this view are refused.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    fn __len__(&self) -> Result<usize> {
        Ok(self.get()?.len())
    }

    /// Unmaps the view. Raises `BufferError` while a memoryview or NumPy
    /// array still uses it (release those first): memory is never unmapped
    /// under Python's feet.
    fn close(&mut self) -> Result<()> {
        if self.exports > 0 {
            return Err(PyBufferError::new_err(format!(
                "the view is still exported {} time(s) (a memoryview or NumPy array uses \
                 it); release those first",
                self.exports
            ))
            .into());
        }
        self.inner = None;
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> Result<()> {
        self.close()
    }
}
