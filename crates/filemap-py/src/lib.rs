//! `filemap._filemap`: the native half of the `filemap` Python package
//! (the Python half, in `python/filemap`, re-exports it and defines the
//! exception classes). Every blocking call releases the GIL and wakes
//! every 100 ms to let Python run its signal handlers, so Ctrl-C
//! interrupts it with `KeyboardInterrupt`.

use std::os::raw::c_int;
use std::time::{Duration, Instant};

use filemap::channel::{broadcast, mpmc, spsc};
use filemap::{Access, ViewAccess};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// How often a blocking call comes back to Python to run signal handlers.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

mod errors;
use errors::{Fail as Error, Result};

fn access(s: &str) -> Result<Access> {
    match s {
        "r" => Ok(Access::Read),
        "rw" => Ok(Access::ReadWrite),
        _ => {
            Err(PyValueError::new_err(format!("access must be \"r\" or \"rw\", not {s:?}")).into())
        }
    }
}

fn view_access(s: &str) -> Result<ViewAccess> {
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

fn timeout_of(t: Option<f64>) -> Result<Option<Instant>> {
    match t {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => {
            Ok(Instant::now().checked_add(Duration::from_secs_f64(s)))
        }
        Some(s) => Err(PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds, not {s}"
        ))
        .into()),
    }
}

/// Runs `f` with the GIL released, in slices of at most 100 ms until it
/// succeeds, fails with something other than a time-out, or `deadline`
/// passes (then its time-out error is raised); between slices Python's
/// signal handlers run (Ctrl-C).
fn blocking<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    f: impl FnMut(Duration) -> filemap::Result<T> + Send,
) -> Result<T> {
    match blocking_until(py, deadline, f)? {
        Ok(v) => Ok(v),
        Err(timeout) => Err(timeout.into()),
    }
}

/// As [`blocking`], giving back the time-out error instead of raising it.
fn blocking_until<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut f: impl FnMut(Duration) -> filemap::Result<T> + Send,
) -> Result<Result<T, filemap::Error>> {
    loop {
        let slice = match deadline {
            None => SIGNAL_SLICE,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_SLICE),
        };
        match py.detach(|| f(slice)) {
            Ok(v) => return Ok(Ok(v)),
            Err(e @ filemap::Error::Timeout { .. }) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Err(e));
                }
                py.check_signals()?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A raw destination for a message, handed to the thread that runs with
/// the GIL released.
struct Dest(*mut u8, usize);
// SAFETY: the pointer is into a Python buffer that a `PyBuffer` holds (so
// it stays valid) for the whole blocking call; only that call writes it.
unsafe impl Send for Dest {}

/// A mapping object: named or unnamed, backed by memory or a file.
#[pyclass(module = "filemap._filemap")]
struct Mapping {
    inner: Option<filemap::Mapping>,
}

impl Mapping {
    fn get(&self) -> Result<&filemap::Mapping> {
        self.inner
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the mapping is closed").into())
    }
}

fn options(mode: u32, persistent: bool, access_: &str) -> Result<filemap::Options> {
    let mut o = filemap::Options::new().mode(mode).access(access(access_)?);
    if persistent {
        o = o.lifetime(filemap::Lifetime::Persistent);
    }
    Ok(o)
}

/// Whose existing objects an open accepts: `"anyone"` (the default), `"me"`
/// (this user or root), or a list of user ids (plus this user and root).
#[derive(FromPyObject)]
enum OwnersArg {
    Word(String),
    Uids(Vec<u32>),
}

fn owners(o: Option<OwnersArg>) -> Result<filemap::Owners> {
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
struct Inheritable {
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
struct View {
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

/// Any bytes-like object (bytes, bytearray, memoryview, NumPy array,
/// filemap View), read in place: C-contiguous, held for the call.
struct Bytes(pyo3::buffer::PyBuffer<u8>);

impl<'py> FromPyObject<'_, 'py> for Bytes {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let buf = match pyo3::buffer::PyBuffer::<u8>::get(&obj) {
            Ok(b) => b,
            // Items of another type (a float32 array): its bytes, through
            // `memoryview(obj).cast("B")` (contiguous buffers only).
            Err(_) => {
                let bytes = obj
                    .py()
                    .import("builtins")?
                    .getattr("memoryview")?
                    .call1((obj,))?
                    .call_method1("cast", ("B",))?;
                pyo3::buffer::PyBuffer::<u8>::get(&bytes)?
            }
        };
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "a contiguous bytes-like object is needed",
            ));
        }
        Ok(Bytes(buf))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a C-contiguous buffer of `len_bytes` bytes, which the
        // `PyBuffer` keeps exported (so not resized nor freed) while `self`
        // lives. Python threads may change its bytes meanwhile, as with any
        // buffer handed to C; the copy then sees some mix.
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr().cast::<u8>(), self.0.len_bytes()) }
    }
}

/// `out` as a writable, C-contiguous buffer of bytes.
fn writable(out: &Bound<'_, PyAny>) -> Result<pyo3::buffer::PyBuffer<u8>> {
    let buf = pyo3::buffer::PyBuffer::<u8>::get(out)?;
    if buf.readonly() || !buf.is_c_contiguous() {
        return Err(PyValueError::new_err(
            "recv_into needs a writable, contiguous buffer of bytes (a bytearray, a \
             writable memoryview, a NumPy uint8 array)",
        )
        .into());
    }
    Ok(buf)
}

/// Copies `msg` into a writable, C-contiguous buffer `out`; returns the length.
fn fill_buffer(out: &Bound<'_, PyAny>, msg: &[u8]) -> Result<usize> {
    let buf = writable(out)?;
    if buf.len_bytes() < msg.len() {
        return Err(PyValueError::new_err(format!(
            "the buffer holds {} bytes, the message has {}",
            buf.len_bytes(),
            msg.len()
        ))
        .into());
    }
    // SAFETY: the buffer is writable, contiguous and at least `msg.len()`
    // bytes long (checked), and stays valid while `buf` holds it.
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.buf_ptr().cast::<u8>(), msg.len()) };
    Ok(msg.len())
}

/// The sending end of an spsc channel.
#[pyclass(module = "filemap._filemap", name = "SpscSender")]
struct SpscSender {
    inner: spsc::Sender,
}

#[pymethods]
impl SpscSender {
    /// Creates the channel with a ring of at least `capacity` bytes.
    #[staticmethod]
    fn create(name: &str, capacity: u64) -> Result<Self> {
        Ok(Self {
            inner: spsc::Sender::create(name, capacity)?,
        })
    }

    /// Opens the existing channel as its sender.
    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: spsc::Sender::open(name)?,
        })
    }

    /// Sends `data`, waiting (GIL released) while the ring is full.
    #[pyo3(signature = (data, timeout = None))]
    fn send(&mut self, py: Python<'_>, data: Bytes, timeout: Option<f64>) -> Result<()> {
        let data: &[u8] = &data;
        let deadline = timeout_of(timeout)?;
        let tx = &mut self.inner;
        blocking(py, deadline, |slice| tx.send_timeout(data, slice))
    }

    /// Sends `data` if there is room now.
    fn try_send(&mut self, data: Bytes) -> Result<bool> {
        let data: &[u8] = &data;
        self.inner.try_send(data).map_err(Error::from)
    }

    /// The largest message this channel takes.
    #[getter]
    fn max_message(&self) -> usize {
        self.inner.max_message()
    }
}

/// The receiving end of an spsc channel.
#[pyclass(module = "filemap._filemap", name = "SpscReceiver")]
struct SpscReceiver {
    /// A message received in place (`recv_message`) and not yet released.
    /// Declared before `inner`, so dropped first: it borrows it.
    current: Option<spsc::Message<'static>>,
    inner: Box<spsc::Receiver>,
    /// A message received into a buffer too small for it, kept for the
    /// next receive.
    pending: Option<Vec<u8>>,
}

impl SpscReceiver {
    fn wrap(rx: spsc::Receiver) -> Self {
        SpscReceiver {
            current: None,
            inner: Box::new(rx),
            pending: None,
        }
    }

    /// The receiver, for a call that receives: refused while a message
    /// received in place is still open (it borrows the receiver).
    fn rx(&mut self) -> Result<&mut spsc::Receiver> {
        if self.current.is_some() {
            return Err(PyValueError::new_err(
                "a message received with recv_message is still open: release it first",
            )
            .into());
        }
        Ok(&mut self.inner)
    }
}

#[pymethods]
impl SpscReceiver {
    #[staticmethod]
    fn create(name: &str, capacity: u64) -> Result<Self> {
        Ok(Self::wrap(spsc::Receiver::create(name, capacity)?))
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self::wrap(spsc::Receiver::open(name)?))
    }

    /// The next message, waiting (GIL released) as long as `timeout` allows.
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> Result<Bound<'py, PyBytes>> {
        if let Some(p) = self.pending.take() {
            return Ok(PyBytes::new(py, &p));
        }
        let deadline = timeout_of(timeout)?;
        let rx = self.rx()?;
        let msg = blocking(py, deadline, |slice| {
            rx.recv_timeout(slice).map(|m| m.to_vec())
        })?;
        Ok(PyBytes::new(py, &msg))
    }

    /// The next message if one is there now, else None.
    fn try_recv<'py>(&mut self, py: Python<'py>) -> Result<Option<Bound<'py, PyBytes>>> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(PyBytes::new(py, &p)));
        }
        Ok(self
            .rx()?
            .try_recv()?
            .map(|m| PyBytes::new(py, &m.to_vec())))
    }

    /// Receives the next message into `buffer` (no allocation); returns its
    /// length. A message longer than the buffer raises `ValueError` and is
    /// kept for the next receive.
    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(
        &mut self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> Result<usize> {
        if let Some(p) = self.pending.take() {
            return match fill_buffer(buffer, &p) {
                Ok(n) => Ok(n),
                Err(e) => {
                    self.pending = Some(p);
                    Err(e)
                }
            };
        }
        let deadline = timeout_of(timeout)?;
        let buf = writable(buffer)?;
        let dest = Dest(buf.buf_ptr().cast::<u8>(), buf.len_bytes());
        let rx = self.rx()?;
        let got = blocking(py, deadline, move |slice| {
            let dest = &dest;
            rx.recv_timeout(slice).map(|m| {
                if m.len() > dest.1 {
                    return Err(m.to_vec());
                }
                // SAFETY: `dest` is a writable buffer of `dest.1 >= m.len()`
                // bytes, held by `buf` for this whole call (see `Dest`).
                let out = unsafe { std::slice::from_raw_parts_mut(dest.0, m.len()) };
                m.read_at(0, out).map(|()| m.len()).map_err(|_| Vec::new())
            })
        })?;
        match got {
            Ok(n) => Ok(n),
            Err(too_long) => {
                let (n, cap) = (too_long.len(), buf.len_bytes());
                self.pending = Some(too_long);
                Err(PyValueError::new_err(format!(
                    "the buffer holds {cap} bytes, the message has {n} (kept for the next \
                     receive)"
                ))
                .into())
            }
        }
    }

    /// The next message *in place* (zero-copy): a read-only buffer over the
    /// ring, for `memoryview(m)` or `numpy.frombuffer(m, dtype)`, to use in
    /// a `with` block. Its space is freed for the sender when it is
    /// released (`release()`, the end of the `with`, or garbage
    /// collection); until then this receiver refuses other receives.
    #[pyo3(signature = (timeout = None))]
    fn recv_message(slf: Bound<'_, Self>, timeout: Option<f64>) -> Result<Message> {
        let py = slf.py();
        let deadline = timeout_of(timeout)?;
        {
            let mut this = slf.borrow_mut();
            this.rx()?;
            if let Some(p) = this.pending.take() {
                this.pending = Some(p);
                return Err(PyValueError::new_err(
                    "a message too long for an earlier recv_into is kept: take it with recv first",
                )
                .into());
            }
            let rx: &mut spsc::Receiver = &mut this.inner;
            // SAFETY: the receiver lives in a Box the SpscReceiver owns and
            // never replaces, so its address is stable; the message that
            // borrows it is kept in the same struct, declared before the Box
            // (dropped first), and every other use of the receiver goes
            // through `rx()`, which refuses while the message is there.
            let rx: &'static mut spsc::Receiver = unsafe { &mut *(rx as *mut spsc::Receiver) };
            let m = blocking(py, deadline, move |slice| {
                // Reborrowed for each try; the one that succeeds is kept.
                // SAFETY: as above; the tries run one after another, so
                // only one of these borrows is ever alive.
                let rx: &'static mut spsc::Receiver = unsafe { &mut *(rx as *mut spsc::Receiver) };
                rx.recv_timeout(slice)
            })?;
            this.current = Some(m);
        }
        Ok(Message {
            rx: slf.unbind(),
            exports: 0,
            released: false,
        })
    }
}

/// A message received in place (`SpscReceiver.recv_message`): a read-only
/// buffer over the ring until released.
#[pyclass(module = "filemap._filemap")]
struct Message {
    rx: Py<SpscReceiver>,
    exports: usize,
    released: bool,
}

impl Message {
    /// The message's bytes in place: pointer and length.
    fn span(&self, py: Python<'_>) -> Result<(*const u8, usize)> {
        if self.released {
            return Err(PyValueError::new_err("the message was released").into());
        }
        let rx = self.rx.borrow(py);
        let m = rx
            .current
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the message was released"))?;
        // SAFETY: only the pointer and length are taken: a sender following
        // the channel protocol does not write a published message before
        // the receiver frees it, which it does only on release.
        let s = unsafe { m.as_slice() };
        Ok((s.as_ptr(), s.len()))
    }
}

#[pymethods]
impl Message {
    /// # Safety
    /// Called by Python with a `Py_buffer` to fill, per the buffer protocol.
    unsafe fn __getbuffer__(
        mut slf: PyRefMut<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> Result<()> {
        let (ptr, len) = slf.span(slf.py())?;
        let obj = slf.as_ptr();
        // SAFETY: `view` is Python's buffer to fill; `ptr..ptr+len` is the
        // message in the mapped ring, which stays there while exported:
        // `release` refuses while `exports` > 0, and the buffer holds a
        // reference to this object, whose drop is what releases otherwise.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(view, obj, ptr as *mut _, len as ffi::Py_ssize_t, 1, flags)
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

    fn __len__(&self, py: Python<'_>) -> Result<usize> {
        Ok(self.span(py)?.1)
    }

    /// A copy of the message.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyBytes>> {
        let rx = self.rx.borrow(py);
        match (&rx.current, self.released) {
            (Some(m), false) => Ok(PyBytes::new(py, &m.to_vec())),
            _ => Err(PyValueError::new_err("the message was released").into()),
        }
    }

    /// Frees the message's space for the sender. Raises `BufferError`
    /// while a memoryview or array still uses it.
    fn release(&mut self, py: Python<'_>) -> Result<()> {
        if self.exports > 0 {
            return Err(PyBufferError::new_err(format!(
                "the message is still exported {} time(s) (a memoryview or NumPy array \
                 uses it); release those first",
                self.exports
            ))
            .into());
        }
        if !self.released {
            self.released = true;
            self.rx.borrow_mut(py).current = None;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> Result<()> {
        self.release(py)
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        // No buffer can be exported any more (each holds a reference to this
        // object): release the message if the program did not.
        if !self.released {
            Python::attach(|py| {
                if let Ok(mut rx) = self.rx.try_borrow_mut(py) {
                    rx.current = None;
                }
            });
        }
    }
}

/// The sending end of an mpmc queue.
#[pyclass(module = "filemap._filemap", name = "MpmcSender")]
struct MpmcSender {
    inner: mpmc::Sender,
}

#[pymethods]
impl MpmcSender {
    #[staticmethod]
    fn create(name: &str, slots: u64, max_message: u64) -> Result<Self> {
        Ok(Self {
            inner: mpmc::Sender::create(name, slots, max_message)?,
        })
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: mpmc::Sender::open(name)?,
        })
    }

    #[pyo3(signature = (data, timeout = None))]
    fn send(&self, py: Python<'_>, data: Bytes, timeout: Option<f64>) -> Result<()> {
        let data: &[u8] = &data;
        let deadline = timeout_of(timeout)?;
        let tx = &self.inner;
        blocking(py, deadline, |slice| tx.send_timeout(data, slice))
    }

    fn try_send(&self, data: Bytes) -> Result<bool> {
        let data: &[u8] = &data;
        self.inner.try_send(data).map_err(Error::from)
    }
}

/// The receiving end of an mpmc queue.
#[pyclass(module = "filemap._filemap", name = "MpmcReceiver")]
struct MpmcReceiver {
    inner: mpmc::Receiver,
    buf: Vec<u8>,
}

#[pymethods]
impl MpmcReceiver {
    #[staticmethod]
    fn create(name: &str, slots: u64, max_message: u64) -> Result<Self> {
        Ok(Self {
            inner: mpmc::Receiver::create(name, slots, max_message)?,
            buf: Vec::new(),
        })
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: mpmc::Receiver::open(name)?,
            buf: Vec::new(),
        })
    }

    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> Result<Bound<'py, PyBytes>> {
        let deadline = timeout_of(timeout)?;
        let (rx, buf) = (&self.inner, &mut self.buf);
        blocking(py, deadline, |slice| rx.recv_into_timeout(buf, slice))?;
        Ok(PyBytes::new(py, &self.buf))
    }

    fn try_recv<'py>(&mut self, py: Python<'py>) -> Result<Option<Bound<'py, PyBytes>>> {
        Ok(if self.inner.try_recv_into(&mut self.buf)? {
            Some(PyBytes::new(py, &self.buf))
        } else {
            None
        })
    }

    #[pyo3(signature = (buffer, timeout = None))]
    fn recv_into(
        &mut self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> Result<usize> {
        let deadline = timeout_of(timeout)?;
        let (rx, buf) = (&self.inner, &mut self.buf);
        blocking(py, deadline, |slice| rx.recv_into_timeout(buf, slice))?;
        fill_buffer(buffer, &self.buf)
    }
}

/// The sending end of a broadcast channel (never waits).
#[pyclass(module = "filemap._filemap", name = "BroadcastSender")]
struct BroadcastSender {
    inner: broadcast::Sender,
}

#[pymethods]
impl BroadcastSender {
    #[staticmethod]
    fn create(name: &str, slots: u64, max_message: u64) -> Result<Self> {
        Ok(Self {
            inner: broadcast::Sender::create(name, slots, max_message)?,
        })
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: broadcast::Sender::open(name)?,
        })
    }

    /// Sends `data` (never waits: a slow receiver misses messages, and is
    /// told how many).
    fn send(&mut self, data: Bytes) -> Result<()> {
        let data: &[u8] = &data;
        self.inner.send(data).map_err(Error::from)
    }
}

/// A receiving end of a broadcast channel.
#[pyclass(module = "filemap._filemap", name = "BroadcastReceiver")]
struct BroadcastReceiver {
    inner: broadcast::Receiver,
}

#[pymethods]
impl BroadcastReceiver {
    #[staticmethod]
    fn create(name: &str, slots: u64, max_message: u64) -> Result<Self> {
        Ok(Self {
            inner: broadcast::Receiver::create(name, slots, max_message)?,
        })
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: broadcast::Receiver::open(name)?,
        })
    }

    /// The next message as `(data, seq, missed)`: its bytes, its number,
    /// and how many messages before it this receiver missed.
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> Result<(Bound<'py, PyBytes>, u64, u64)> {
        let deadline = timeout_of(timeout)?;
        let rx = &mut self.inner;
        let r = blocking(py, deadline, |slice| rx.recv_timeout(slice))?;
        Ok((PyBytes::new(py, &r.data), r.seq, r.missed))
    }
}

/// A cross-process event: `notify_one` leaves a permit, `notify_all` wakes
/// every waiter.
#[pyclass(module = "filemap._filemap")]
struct Event {
    inner: filemap::sync::Event,
}

#[pymethods]
impl Event {
    #[staticmethod]
    fn create(name: &str) -> Result<Self> {
        Ok(Self {
            inner: filemap::sync::Event::create(name)?,
        })
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: filemap::sync::Event::open(name)?,
        })
    }

    fn notify_one(&self) {
        self.inner.notify_one();
    }

    fn notify_all(&self) {
        self.inner.notify_all();
    }

    /// Waits (GIL released) for a permit or a pulse; False on time-out
    /// (as `threading.Event.wait`).
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> Result<bool> {
        let deadline = timeout_of(timeout)?;
        let ev = &self.inner;
        Ok(blocking_until(py, deadline, |slice| ev.wait_timeout(slice))?.is_ok())
    }
}

/// The writing end of a `Latest` cell of bytes (fixed size): readers in
/// any process get the last whole value, never a torn one.
#[pyclass(module = "filemap._filemap")]
struct LatestWriter {
    inner: filemap::sync::LatestBytesWriter,
}

#[pymethods]
impl LatestWriter {
    /// Creates the cell holding `initial` (its length is the cell's size).
    #[staticmethod]
    fn create(name: &str, initial: Bytes) -> Result<Self> {
        Ok(Self {
            inner: filemap::sync::LatestBytesWriter::create(name, &initial)?,
        })
    }

    /// Opens an existing cell as its writer.
    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: filemap::sync::LatestBytesWriter::open(name)?,
        })
    }

    /// Publishes `data` (exactly `size` bytes); never waits.
    fn write(&mut self, data: Bytes) -> Result<()> {
        self.inner.write(&data).map_err(Error::from)
    }

    /// The cell's size in bytes.
    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }
}

/// A reading end of a `Latest` cell of bytes.
#[pyclass(module = "filemap._filemap")]
struct LatestReader {
    inner: filemap::sync::LatestBytesReader,
}

#[pymethods]
impl LatestReader {
    /// Creates the cell holding `initial` and reads it.
    #[staticmethod]
    fn create(name: &str, initial: Bytes) -> Result<Self> {
        Ok(Self {
            inner: filemap::sync::LatestBytesReader::create(name, &initial)?,
        })
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            inner: filemap::sync::LatestBytesReader::open(name)?,
        })
    }

    /// The latest whole value.
    fn read<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyBytes>> {
        let v = self.inner.read()?;
        Ok(PyBytes::new(py, &v))
    }

    /// The latest whole value into `buffer` (exactly `size` bytes).
    fn read_into(&self, buffer: &Bound<'_, PyAny>) -> Result<()> {
        let buf = writable(buffer)?;
        let v = self.inner.read()?;
        if buf.len_bytes() != v.len() {
            return Err(PyValueError::new_err(format!(
                "the buffer holds {} bytes, the cell {}",
                buf.len_bytes(),
                v.len()
            ))
            .into());
        }
        fill_buffer(buffer, &v).map(|_| ())
    }

    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }
}

/// A cross-process lock: filemap's robust mutex (without a value), for a
/// `with` block. A holder that died while holding it does not block anyone:
/// the next `acquire` gets it and `previous_owner_died` says so.
#[pyclass(module = "filemap._filemap")]
struct Lock {
    // Declared before `mutex`, so dropped first: the guard borrows it.
    guard: Option<filemap::sync::MutexGuard<'static, u64>>,
    mutex: Box<filemap::sync::Mutex<u64>>,
    died: bool,
}

impl Lock {
    fn wrap(mutex: filemap::sync::Mutex<u64>) -> Self {
        Lock {
            guard: None,
            mutex: Box::new(mutex),
            died: false,
        }
    }
}

#[pymethods]
impl Lock {
    #[staticmethod]
    fn create(name: &str) -> Result<Self> {
        Ok(Lock::wrap(filemap::sync::Mutex::create(name, &0)?))
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Lock::wrap(filemap::sync::Mutex::open(name)?))
    }

    /// Takes the lock, waiting (GIL released) as long as `timeout` allows;
    /// False on time-out. Taking it twice from one `Lock` raises.
    #[pyo3(signature = (timeout = None))]
    fn acquire(&mut self, py: Python<'_>, timeout: Option<f64>) -> Result<bool> {
        if self.guard.is_some() {
            return Err(PyValueError::new_err("this Lock is already held here").into());
        }
        let deadline = timeout_of(timeout)?;
        let m: &filemap::sync::Mutex<u64> = &self.mutex;
        // SAFETY: the mutex lives in a Box that `self` owns and never
        // replaces, so its address is stable; the guard is kept in the same
        // struct, declared before the Box (dropped first), and `release`
        // drops it: it never outlives the mutex it borrows.
        let m: &'static filemap::sync::Mutex<u64> = unsafe { &*(m as *const _) };
        match blocking_until(py, deadline, |slice| m.lock_timeout(slice))? {
            Ok(g) => {
                self.died = g.previous_owner_died();
                self.guard = Some(g);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Lets go of the lock.
    fn release(&mut self) -> Result<()> {
        match self.guard.take() {
            Some(_) => Ok(()),
            None => Err(PyValueError::new_err("this Lock is not held here").into()),
        }
    }

    /// Whether this `Lock` holds the lock now.
    #[getter]
    fn locked(&self) -> bool {
        self.guard.is_some()
    }

    /// Whether the last `acquire` found the lock left by a holder that died.
    #[getter]
    fn previous_owner_died(&self) -> bool {
        self.died
    }

    fn __enter__(mut slf: PyRefMut<'_, Self>) -> Result<PyRefMut<'_, Self>> {
        let py = slf.py();
        slf.acquire(py, None)?;
        Ok(slf)
    }

    fn __exit__(
        &mut self,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> Result<()> {
        self.release()
    }
}

#[pymodule]
fn _filemap(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Lock>()?;
    m.add_class::<Message>()?;
    m.add_class::<LatestWriter>()?;
    m.add_class::<LatestReader>()?;
    m.add_class::<Mapping>()?;
    m.add_class::<Inheritable>()?;
    m.add_class::<View>()?;
    m.add_class::<SpscSender>()?;
    m.add_class::<SpscReceiver>()?;
    m.add_class::<MpmcSender>()?;
    m.add_class::<MpmcReceiver>()?;
    m.add_class::<BroadcastSender>()?;
    m.add_class::<BroadcastReceiver>()?;
    m.add_class::<Event>()?;
    Ok(())
}
