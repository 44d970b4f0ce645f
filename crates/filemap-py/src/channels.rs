//! spsc, mpmc and broadcast channels.

use std::os::raw::c_int;

use filemap::channel::{broadcast, mpmc, spsc};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Fail as Error, Result};
use crate::lease::{awaitable, reclaim, Home, Lease};
use crate::*;

/// A channel's message type as Python gives it: `(identity, size,
/// alignment)`, e.g. from a NumPy dtype (`filemap.typed` builds it).
pub(crate) type MessageTypeArg = Option<(String, u64, u64)>;

/// Options recording (on create) or checking (on open) the message type.
pub(crate) fn options_of(t: MessageTypeArg) -> Result<filemap::Options> {
    let opts = filemap::Options::new();
    Ok(match t {
        Some((identity, size, align)) => {
            opts.message_type(filemap::MessageType::new(&identity, size, align)?)
        }
        None => opts,
    })
}

/// The sending end of an spsc channel.
#[pyclass(module = "filemap._filemap", name = "SpscSender")]
pub(crate) struct SpscSender {
    /// `None` while an awaited send (`send_async`) holds it.
    inner: Option<spsc::Sender>,
    /// Where that send gives it back.
    home: Home<spsc::Sender>,
}

impl SpscSender {
    fn wrap(tx: spsc::Sender) -> Self {
        SpscSender {
            inner: Some(tx),
            home: Default::default(),
        }
    }

    /// The sender, back from an awaited send that ended.
    fn tx(&mut self) -> Result<&mut spsc::Sender> {
        if self.inner.is_none() {
            self.inner = reclaim(&self.home);
        }
        self.inner.as_mut().ok_or_else(|| {
            PyValueError::new_err("an awaited send (send_async) is in progress on this sender")
                .into()
        })
    }
}

#[pymethods]
impl SpscSender {
    /// Creates the channel with a ring of at least `capacity` bytes.
    #[staticmethod]
    #[pyo3(signature = (name, capacity, *, message_type = None))]
    fn create(name: &str, capacity: u64, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self::wrap(spsc::Sender::create_with(
            name,
            capacity,
            &options_of(message_type)?,
        )?))
    }

    /// Opens the existing channel as its sender.
    #[staticmethod]
    #[pyo3(signature = (name, *, message_type = None))]
    fn open(name: &str, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self::wrap(spsc::Sender::open_with(
            name,
            &options_of(message_type)?,
        )?))
    }

    /// Sends `data`, waiting (GIL released) while the ring is full.
    #[pyo3(signature = (data, timeout = None))]
    fn send(&mut self, py: Python<'_>, data: Bytes, timeout: Option<f64>) -> Result<()> {
        let data: &[u8] = &data;
        let deadline = timeout_of(timeout)?;
        let tx = self.tx()?;
        blocking(py, deadline, |slice| tx.send_timeout(data, slice))
    }

    /// Sends `data` if there is room now.
    fn try_send(&mut self, data: Bytes) -> Result<bool> {
        let data: &[u8] = &data;
        self.tx()?.try_send(data).map_err(Error::from)
    }

    /// `await tx.send_async(data)`: sends `data`, waiting on the running
    /// asyncio loop (no thread blocked) while the ring is full: first a short
    /// while of tries (50 µs) yielding to the loop between them, then on
    /// filemap's runtime. A task cancelled before the send happened sends
    /// nothing; one cancelled after it has sent it whole. One awaited send
    /// at a time per sender.
    fn send_async<'py>(slf: &Bound<'py, Self>, data: Bytes) -> Result<Bound<'py, PyAny>> {
        let py = slf.py();
        let msg: Vec<u8> = data.to_vec();
        // Room now: done, no round through the loop.
        if slf.borrow_mut().tx()?.try_send(&msg)? {
            return Ok(crate::lease::aio(py, "done", ())?);
        }
        Ok(crate::lease::aio(
            py,
            "send",
            (slf, PyBytes::new(py, &msg)),
        )?)
    }

    /// The wait of an awaited send, after its tries: `None` if it was sent
    /// now, else the future of the wait.
    fn _send_future<'py>(
        &mut self,
        py: Python<'py>,
        data: Bytes,
    ) -> Result<Option<Bound<'py, PyAny>>> {
        let msg: Vec<u8> = data.to_vec();
        if self.tx()?.try_send(&msg)? {
            return Ok(None);
        }
        let mut lease = Lease::new(self.inner.take().expect("checked by tx()"), &self.home);
        Ok(Some(awaitable(py, async move {
            let r = lease.get().send_async(&msg).await;
            drop(lease);
            r.map_err(|e| PyErr::from(Error::from(e)))
        })?))
    }

    /// The largest message this channel takes.
    #[getter]
    fn max_message(&mut self) -> Result<usize> {
        Ok(self.tx()?.max_message())
    }
}

/// The receiving end of an spsc channel.
#[pyclass(module = "filemap._filemap", name = "SpscReceiver")]
pub(crate) struct SpscReceiver {
    /// A message received in place (`recv_message`) and not yet released:
    /// it owns the receiver meanwhile (`spsc::OwnedMessage`).
    current: Option<spsc::OwnedMessage>,
    /// The receiver, when no message holds it.
    inner: Option<spsc::Receiver>,
    /// A message received into a buffer too small for it, kept for the
    /// next receive.
    pending: Option<Vec<u8>>,
    /// Where an awaited receive (`recv_async`) gives the receiver back.
    home: Home<spsc::Receiver>,
    /// Where it leaves the message it took, before it gives the receiver
    /// back: its coroutine picks it up (`_arrived`), or, if the task was
    /// cancelled meanwhile, the next receive does. No message is lost.
    arrived: crate::lease::Arrived<Vec<u8>>,
}

impl SpscReceiver {
    fn wrap(rx: spsc::Receiver) -> Self {
        SpscReceiver {
            current: None,
            inner: Some(rx),
            pending: None,
            home: Default::default(),
            arrived: Default::default(),
        }
    }

    /// The receiver, for a call that receives: refused while a message
    /// received in place is still open (it holds the receiver).
    fn rx(&mut self) -> Result<&mut spsc::Receiver> {
        self.settle();
        match &mut self.inner {
            Some(rx) => Ok(rx),
            None if self.current.is_some() => Err(PyValueError::new_err(
                "a message received with recv_message is still open: release it first",
            )
            .into()),
            None => Err(PyValueError::new_err(
                "an awaited receive (recv_async) is in progress on this receiver",
            )
            .into()),
        }
    }

    /// Takes the receiver back from an awaited receive that ended (or is
    /// ending: a cancelled one), and the message it left, in order: a
    /// message it took comes before any later one.
    fn settle(&mut self) {
        if self.inner.is_none() && self.current.is_none() {
            self.inner = reclaim(&self.home);
        }
        crate::lease::take_arrived(&mut self.pending, &self.arrived);
    }

    /// Frees the message received in place, and takes the receiver back.
    fn release_current(&mut self) {
        if let Some(m) = self.current.take() {
            self.inner = Some(m.into_receiver());
        }
    }
}

#[pymethods]
impl SpscReceiver {
    #[staticmethod]
    #[pyo3(signature = (name, capacity, *, message_type = None))]
    fn create(name: &str, capacity: u64, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self::wrap(spsc::Receiver::create_with(
            name,
            capacity,
            &options_of(message_type)?,
        )?))
    }

    #[staticmethod]
    #[pyo3(signature = (name, *, message_type = None))]
    fn open(name: &str, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self::wrap(spsc::Receiver::open_with(
            name,
            &options_of(message_type)?,
        )?))
    }

    /// The next message, waiting (GIL released) as long as `timeout` allows.
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> Result<Bound<'py, PyBytes>> {
        self.settle();
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

    /// `await rx.recv_async()`: the next message, waiting on the running
    /// asyncio loop (no thread blocked for it; other tasks run meanwhile).
    /// It first tries for a short while (50 µs), yielding to the loop
    /// between tries (`asyncio.sleep(0)`), so back-to-back traffic never
    /// leaves the loop's thread; then it waits on filemap's runtime.
    /// Cancelling the task (`task.cancel()`, `asyncio.wait_for`) loses no
    /// message: one taken meanwhile is kept for the next receive. One
    /// awaited receive at a time per receiver.
    fn recv_async<'py>(slf: &Bound<'py, Self>) -> Result<Bound<'py, PyAny>> {
        Ok(crate::lease::aio(slf.py(), "receive", (slf,))?)
    }

    /// The wait of an awaited receive, after its tries: `None` if a message
    /// is there now (kept for `_arrived`), else the future of the wait.
    fn _recv_future<'py>(slf: &Bound<'py, Self>) -> Result<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        this.settle();
        if this.pending.is_none() {
            let now = this.rx()?.try_recv()?.map(|m| m.to_vec());
            this.pending = now;
        }
        if this.pending.is_some() {
            return Ok(None);
        }
        let end = this.inner.take().expect("checked by rx()");
        Ok(Some(crate::lease::lend_receive(
            py,
            end,
            &this.home,
            &this.arrived,
        )?))
    }

    /// The message an awaited receive left (its coroutine's last step).
    fn _arrived<'py>(&mut self, py: Python<'py>) -> Result<Bound<'py, PyBytes>> {
        self.settle();
        let m = crate::lease::arrived_or_taken(&mut self.pending)?;
        Ok(PyBytes::new(py, &m))
    }

    /// The next message if one is there now, else None.
    fn try_recv<'py>(&mut self, py: Python<'py>) -> Result<Option<Bound<'py, PyBytes>>> {
        self.settle();
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
        self.settle();
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
            this.settle();
            if let Some(p) = this.pending.take() {
                this.pending = Some(p);
                return Err(PyValueError::new_err(
                    "a message too long for an earlier recv_into is kept: take it with recv first",
                )
                .into());
            }
            // The receiver goes into the message for as long as it is held,
            // and comes back on a time-out or error (or on release).
            let mut rx = this.inner.take();
            let got = blocking(py, deadline, |slice| {
                let r = rx.take().expect("given back after each try");
                match r.recv_owned_timeout(slice) {
                    Ok(m) => Ok(m),
                    Err((r, e)) => {
                        rx = Some(r);
                        Err(e)
                    }
                }
            });
            match got {
                Ok(m) => this.current = Some(m),
                Err(e) => {
                    this.inner = rx;
                    return Err(e);
                }
            }
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
pub(crate) struct Message {
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
            self.rx.borrow_mut(py).release_current();
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
                    rx.release_current();
                }
            });
        }
    }
}

/// The sending end of an mpmc queue.
#[pyclass(module = "filemap._filemap", name = "MpmcSender")]
pub(crate) struct MpmcSender {
    inner: mpmc::Sender,
}

#[pymethods]
impl MpmcSender {
    #[staticmethod]
    #[pyo3(signature = (name, slots, max_message, *, message_type = None))]
    fn create(
        name: &str,
        slots: u64,
        max_message: u64,
        message_type: MessageTypeArg,
    ) -> Result<Self> {
        Ok(Self {
            inner: mpmc::Sender::create_with(name, slots, max_message, &options_of(message_type)?)?,
        })
    }

    #[staticmethod]
    #[pyo3(signature = (name, *, message_type = None))]
    fn open(name: &str, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self {
            inner: mpmc::Sender::open_with(name, &options_of(message_type)?)?,
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
pub(crate) struct MpmcReceiver {
    /// Shared with the awaited receives in flight (an mpmc receiver
    /// receives through `&self`, so several may wait at once).
    inner: std::sync::Arc<mpmc::Receiver>,
    buf: Vec<u8>,
    /// Messages awaited receives took and their coroutines have not picked
    /// up yet (one whose task was cancelled stays here): every receive on
    /// this object returns these first, in the order they were taken. No
    /// message is lost.
    arrived: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Vec<u8>>>>,
}

impl MpmcReceiver {
    fn wrap(rx: mpmc::Receiver) -> Self {
        MpmcReceiver {
            inner: std::sync::Arc::new(rx),
            buf: Vec::new(),
            arrived: Default::default(),
        }
    }

    /// The oldest message an awaited receive left, if any.
    fn take_arrived(&self) -> Option<Vec<u8>> {
        self.arrived
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

#[pymethods]
impl MpmcReceiver {
    #[staticmethod]
    #[pyo3(signature = (name, slots, max_message, *, message_type = None))]
    fn create(
        name: &str,
        slots: u64,
        max_message: u64,
        message_type: MessageTypeArg,
    ) -> Result<Self> {
        Ok(Self::wrap(mpmc::Receiver::create_with(
            name,
            slots,
            max_message,
            &options_of(message_type)?,
        )?))
    }

    #[staticmethod]
    #[pyo3(signature = (name, *, message_type = None))]
    fn open(name: &str, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self::wrap(mpmc::Receiver::open_with(
            name,
            &options_of(message_type)?,
        )?))
    }

    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> Result<Bound<'py, PyBytes>> {
        if let Some(m) = self.take_arrived() {
            return Ok(PyBytes::new(py, &m));
        }
        let deadline = timeout_of(timeout)?;
        let (rx, buf) = (&*self.inner, &mut self.buf);
        blocking(py, deadline, |slice| rx.recv_into_timeout(buf, slice))?;
        Ok(PyBytes::new(py, &self.buf))
    }

    fn try_recv<'py>(&mut self, py: Python<'py>) -> Result<Option<Bound<'py, PyBytes>>> {
        if let Some(m) = self.take_arrived() {
            return Ok(Some(PyBytes::new(py, &m)));
        }
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
        if let Some(m) = self.take_arrived() {
            self.buf = m;
        } else {
            let deadline = timeout_of(timeout)?;
            let (rx, buf) = (&*self.inner, &mut self.buf);
            blocking(py, deadline, |slice| rx.recv_into_timeout(buf, slice))?;
        }
        fill_buffer(buffer, &self.buf)
    }

    /// `await rx.recv_async()`: the next message, waiting on the running
    /// asyncio loop, as `SpscReceiver.recv_async` does (tries for 50 µs
    /// yielding to the loop, then waits on filemap's runtime). Several may
    /// be awaited at once on one receiver. Cancelling the task loses no
    /// message: one taken meanwhile is returned by the next receive.
    fn recv_async<'py>(slf: &Bound<'py, Self>) -> Result<Bound<'py, PyAny>> {
        Ok(crate::lease::aio(slf.py(), "receive_shared", (slf,))?)
    }

    /// The wait of an awaited receive, after its tries: `None` if a message
    /// is there now (kept for `_arrived`), else the future of the wait.
    fn _recv_future<'py>(&mut self, py: Python<'py>) -> Result<Option<Bound<'py, PyAny>>> {
        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        if arrived.is_empty() && self.inner.try_recv_into(&mut self.buf)? {
            arrived.push_back(std::mem::take(&mut self.buf));
        }
        if !arrived.is_empty() {
            return Ok(None);
        }
        drop(arrived);
        let (rx, arrived) = (self.inner.clone(), self.arrived.clone());
        Ok(Some(awaitable(py, async move {
            let got = rx.recv_async().await;
            got.map(|m| {
                arrived
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_back(m)
            })
            .map_err(|e| PyErr::from(Error::from(e)))
        })?))
    }

    /// The oldest message an awaited receive left (its coroutine's last
    /// step); `None` if another receive on this object took it first.
    fn _arrived<'py>(&mut self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.take_arrived().map(|m| PyBytes::new(py, &m))
    }
}

/// The sending end of a broadcast channel (never waits).
#[pyclass(module = "filemap._filemap", name = "BroadcastSender")]
pub(crate) struct BroadcastSender {
    inner: broadcast::Sender,
}

#[pymethods]
impl BroadcastSender {
    #[staticmethod]
    #[pyo3(signature = (name, slots, max_message, *, message_type = None))]
    fn create(
        name: &str,
        slots: u64,
        max_message: u64,
        message_type: MessageTypeArg,
    ) -> Result<Self> {
        Ok(Self {
            inner: broadcast::Sender::create_with(
                name,
                slots,
                max_message,
                &options_of(message_type)?,
            )?,
        })
    }

    #[staticmethod]
    #[pyo3(signature = (name, *, message_type = None))]
    fn open(name: &str, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self {
            inner: broadcast::Sender::open_with(name, &options_of(message_type)?)?,
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
pub(crate) struct BroadcastReceiver {
    /// The receiver, when no awaited receive holds it.
    inner: Option<broadcast::Receiver>,
    /// A message an awaited receive took, for the next receive.
    pending: Option<broadcast::Received>,
    /// Where an awaited receive (`recv_async`) gives the receiver back.
    home: Home<broadcast::Receiver>,
    /// Where it leaves the message it took, before it gives the receiver
    /// back (as `SpscReceiver` does): no message is lost to a cancelled task.
    arrived: crate::lease::Arrived<broadcast::Received>,
}

impl BroadcastReceiver {
    fn wrap(rx: broadcast::Receiver) -> Self {
        BroadcastReceiver {
            inner: Some(rx),
            pending: None,
            home: Default::default(),
            arrived: Default::default(),
        }
    }

    /// Takes the receiver back from an awaited receive that ended (or is
    /// ending), and the message it left.
    fn settle(&mut self) {
        if self.inner.is_none() {
            self.inner = reclaim(&self.home);
        }
        crate::lease::take_arrived(&mut self.pending, &self.arrived);
    }

    fn rx(&mut self) -> Result<&mut broadcast::Receiver> {
        self.settle();
        self.inner.as_mut().ok_or_else(|| {
            PyValueError::new_err("an awaited receive (recv_async) is in progress on this receiver")
                .into()
        })
    }
}

/// A broadcast message as Python's `filemap.Received(data, seq, missed)`.
fn received<'py>(py: Python<'py>, r: &broadcast::Received) -> Result<Bound<'py, PyAny>> {
    static RECEIVED: pyo3::sync::PyOnceLock<Py<pyo3::types::PyType>> =
        pyo3::sync::PyOnceLock::new();
    let class = RECEIVED.import(py, "filemap._types", "Received")?;
    Ok(class.call1((PyBytes::new(py, &r.data), r.seq, r.missed))?)
}

#[pymethods]
impl BroadcastReceiver {
    #[staticmethod]
    #[pyo3(signature = (name, slots, max_message, *, message_type = None))]
    fn create(
        name: &str,
        slots: u64,
        max_message: u64,
        message_type: MessageTypeArg,
    ) -> Result<Self> {
        Ok(Self::wrap(broadcast::Receiver::create_with(
            name,
            slots,
            max_message,
            &options_of(message_type)?,
        )?))
    }

    #[staticmethod]
    #[pyo3(signature = (name, *, message_type = None))]
    fn open(name: &str, message_type: MessageTypeArg) -> Result<Self> {
        Ok(Self::wrap(broadcast::Receiver::open_with(
            name,
            &options_of(message_type)?,
        )?))
    }

    /// The next message, a `filemap.Received(data, seq, missed)` named
    /// tuple: its bytes, its number, and how many messages before it this
    /// receiver missed.
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> Result<Bound<'py, PyAny>> {
        self.settle();
        if let Some(r) = self.pending.take() {
            return received(py, &r);
        }
        let deadline = timeout_of(timeout)?;
        let rx = self.rx()?;
        let r = blocking(py, deadline, |slice| rx.recv_timeout(slice))?;
        received(py, &r)
    }

    /// The next message if one is there now (as `recv` gives it), else None.
    fn try_recv<'py>(&mut self, py: Python<'py>) -> Result<Option<Bound<'py, PyAny>>> {
        self.settle();
        let r = match self.pending.take() {
            Some(r) => Some(r),
            None => self.rx()?.try_recv()?,
        };
        r.map(|r| received(py, &r)).transpose()
    }

    /// `await rx.recv_async()`: the next message (as `recv` gives it),
    /// waiting on the running asyncio loop, as `SpscReceiver.recv_async`
    /// does. Cancelling the task loses no message: one taken meanwhile is
    /// kept for the next receive. One awaited receive at a time per receiver.
    fn recv_async<'py>(slf: &Bound<'py, Self>) -> Result<Bound<'py, PyAny>> {
        Ok(crate::lease::aio(slf.py(), "receive", (slf,))?)
    }

    /// The wait of an awaited receive, after its tries: `None` if a message
    /// is there now (kept for `_arrived`), else the future of the wait.
    fn _recv_future<'py>(slf: &Bound<'py, Self>) -> Result<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        this.settle();
        if this.pending.is_none() {
            let now = this.rx()?.try_recv()?;
            this.pending = now;
        }
        if this.pending.is_some() {
            return Ok(None);
        }
        let end = this.inner.take().expect("checked by rx()");
        Ok(Some(crate::lease::lend_receive(
            py,
            end,
            &this.home,
            &this.arrived,
        )?))
    }

    /// The message an awaited receive left (its coroutine's last step).
    fn _arrived<'py>(&mut self, py: Python<'py>) -> Result<Bound<'py, PyAny>> {
        self.settle();
        received(py, &crate::lease::arrived_or_taken(&mut self.pending)?)
    }
}
