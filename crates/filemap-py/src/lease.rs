//! An end lent to an awaited call: the call's future owns it while it
//! runs, and gives it back (to a slot the Python object reads) when it ends,
//! however it ends: done, failed, or cancelled (the future dropped).

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::Fail;

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

/// A receiving end an awaited receive can borrow ([`lend_receive`]).
pub(crate) trait Receive: Send + 'static {
    /// What a receive gives, owned.
    type Msg: Clone + Send + 'static;
    /// The next message, awaited.
    fn receive(&mut self) -> impl Future<Output = filemap::Result<Self::Msg>> + Send + '_;
}

impl Receive for filemap::channel::spsc::Receiver {
    type Msg = Vec<u8>;
    async fn receive(&mut self) -> filemap::Result<Vec<u8>> {
        self.recv_async().await.map(|m| m.to_vec())
    }
}

impl Receive for filemap::channel::broadcast::Receiver {
    type Msg = filemap::channel::broadcast::Received;
    fn receive(&mut self) -> impl Future<Output = filemap::Result<Self::Msg>> + Send + '_ {
        self.recv_async()
    }
}

/// Where an awaited receive leaves the message it took before it gives the
/// end back: its coroutine picks it up, or, if the task was cancelled
/// meanwhile, the next receive does.
pub(crate) type Arrived<M> = Arc<Mutex<Option<M>>>;

/// The wait of an awaited receive, as a Python awaitable: `end` is lent to
/// the future, which leaves the message it takes in `arrived` first and
/// gives the end back home after (so whoever takes the end back finds the
/// message), however it ends.
pub(crate) fn lend_receive<'py, R: Receive>(
    py: Python<'py>,
    end: R,
    home: &Home<R>,
    arrived: &Arrived<R::Msg>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut lease = Lease::new(end, home);
    let arrived = arrived.clone();
    awaitable(py, async move {
        let got = lease.get().receive().await;
        if let Ok(m) = &got {
            *arrived.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone());
        }
        drop(lease);
        got.map(|_| ()).map_err(|e| PyErr::from(Fail::from(e)))
    })
}

/// Moves a message an awaited receive left into `pending` (if that is free).
pub(crate) fn take_arrived<M>(pending: &mut Option<M>, arrived: &Arrived<M>) {
    if pending.is_none() {
        *pending = arrived.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The message an awaited receive left, for its coroutine's last step.
pub(crate) fn arrived_or_taken<M>(pending: &mut Option<M>) -> PyResult<M> {
    pending.take().ok_or_else(|| {
        PyValueError::new_err("the awaited message was taken by another receive on this receiver")
    })
}
