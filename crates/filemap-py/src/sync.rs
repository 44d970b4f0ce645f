//! Events, `Latest` cells and the robust lock.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{Fail as Error, Result};
use crate::*;

/// A cross-process event: `notify_one` leaves a permit, `notify_all` wakes
/// every waiter.
#[pyclass(module = "filemap._filemap")]
pub(crate) struct Event {
    inner: std::sync::Arc<filemap::sync::Event>,
    /// Wakes an awaited wait took and its coroutine has not picked up yet
    /// (`_woken`): a task cancelled in between leaves its wake to the next
    /// wait here, so that no permit is lost.
    woken: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Event {
    fn wrap(ev: filemap::sync::Event) -> Self {
        Event {
            inner: std::sync::Arc::new(ev),
            woken: Default::default(),
        }
    }

    /// Takes one wake an awaited wait left, if there is one.
    fn take_woken(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.woken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[pymethods]
impl Event {
    #[staticmethod]
    fn create(name: &str) -> Result<Self> {
        Ok(Self::wrap(filemap::sync::Event::create(name)?))
    }

    #[staticmethod]
    fn open(name: &str) -> Result<Self> {
        Ok(Self::wrap(filemap::sync::Event::open(name)?))
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
        if self.take_woken() {
            return Ok(true);
        }
        let deadline = timeout_of(timeout)?;
        let ev = &self.inner;
        Ok(blocking_until(py, deadline, |slice| ev.wait_timeout(slice))?.is_ok())
    }

    /// `await ev.wait_async()`: waits for a permit or a pulse on the running
    /// asyncio loop (no thread blocked for it). A wake that comes to a task
    /// cancelled meanwhile is kept for the next wait on this `Event`.
    fn wait_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.borrow();
        let future = if this.take_woken() {
            // Kept for the coroutine to take.
            this.woken.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            None
        } else {
            let (ev, woken) = (this.inner.clone(), this.woken.clone());
            Some(crate::lease::awaitable(py, async move {
                ev.wait_async()
                    .await
                    .map_err(|e| PyErr::from(Error::from(e)))?;
                woken.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                Ok(())
            })?)
        };
        drop(this);
        crate::lease::aio(py, "woken", (future, slf))
    }

    /// Takes the wake an awaited wait left (its coroutine's last step).
    fn _woken(&self) -> bool {
        self.take_woken()
    }
}

/// The writing end of a `Latest` cell of bytes (fixed size): readers in
/// any process get the last whole value, never a torn one.
#[pyclass(module = "filemap._filemap")]
pub(crate) struct LatestWriter {
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
pub(crate) struct LatestReader {
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
pub(crate) struct Lock {
    /// The hold: an owned guard (it keeps an `Arc` of the mutex, so no
    /// borrow of `mutex` is kept in the same struct).
    guard: Option<filemap::sync::OwnedMutexGuard<u64>>,
    mutex: std::sync::Arc<filemap::sync::Mutex<u64>>,
    died: bool,
}

impl Lock {
    fn wrap(mutex: filemap::sync::Mutex<u64>) -> Self {
        Lock {
            guard: None,
            mutex: std::sync::Arc::new(mutex),
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
        let m = &self.mutex;
        match blocking_until(py, deadline, |slice| m.lock_owned_timeout(slice))? {
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
