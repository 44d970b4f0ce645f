//! An end lent to an awaited call: the call's future owns it while it
//! runs, and gives it back (to a slot the Python object reads) when it ends,
//! however it ends: done, failed, or cancelled (the future dropped).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pyo3::prelude::*;

/// Where a lent end comes back to.
pub(crate) type Home<T> = Arc<Slot<T>>;

/// The slot, and a signal for its return.
pub(crate) struct Slot<T> {
    item: Mutex<Option<T>>,
    back: Condvar,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            item: Mutex::new(None),
            back: Condvar::new(),
        }
    }
}

/// An end out on loan to a future.
pub(crate) struct Lease<T> {
    item: Option<T>,
    home: Home<T>,
}

impl<T> Lease<T> {
    pub(crate) fn new(item: T, home: &Home<T>) -> Lease<T> {
        Lease {
            item: Some(item),
            home: home.clone(),
        }
    }

    pub(crate) fn get(&mut self) -> &mut T {
        self.item.as_mut().expect("held until dropped")
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        *self.home.item.lock().unwrap_or_else(|e| e.into_inner()) = self.item.take();
        self.home.back.notify_all();
    }
}

/// How long a call waits for an end whose awaited call was just cancelled:
/// asyncio cancels at once, and the runtime drops the Rust future (which
/// gives the end back) an instant later, on its own thread.
const CANCEL_GRACE: Duration = Duration::from_millis(200);

/// The end back from its home: at once if its lease ended, or within
/// [`CANCEL_GRACE`] if one is ending; `None` if an awaited call still
/// holds it.
pub(crate) fn reclaim<T>(home: &Home<T>) -> Option<T> {
    let slot = home.item.lock().unwrap_or_else(|e| e.into_inner());
    let (mut slot, _) = home
        .back
        .wait_timeout_while(slot, CANCEL_GRACE, |s| s.is_none())
        .unwrap_or_else(|e| e.into_inner());
    slot.take()
}

/// `fut` as an awaitable for Python: an asyncio future of the running
/// loop (its Rust future run on the package's tokio runtime), inside a
/// coroutine, so that `asyncio.create_task` takes it as `await` does.
/// Cancelling the task cancels the asyncio future, which drops `fut`.
pub(crate) fn awaitable<F, T>(py: Python<'_>, fut: F) -> PyResult<Bound<'_, PyAny>>
where
    F: std::future::Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    let future = pyo3_async_runtimes::tokio::future_into_py(py, fut)?;
    py.import(pyo3::intern!(py, "filemap._aio"))?
        .getattr(pyo3::intern!(py, "awaiting"))?
        .call1((future,))
}

/// The coroutine `filemap._aio.NAME(*args)`: the Python half of an
/// awaitable form.
pub(crate) fn aio<'py>(
    py: Python<'py>,
    name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import(pyo3::intern!(py, "filemap._aio"))?
        .getattr(name)?
        .call1(args)
}
