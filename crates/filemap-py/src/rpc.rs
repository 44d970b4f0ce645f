//! Request-response: `RpcServer` (requests as `RpcRequest` objects that
//! answer once) and `RpcClient` (calls, or requests in flight collected by
//! id). Waiting releases the GIL, as every blocking call here does.

use std::sync::{Arc, Mutex};

use filemap::rpc::{Client, Config, OwnedRequest, Server};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::channels::MessageTypeArg;
use crate::errors::Result;
use crate::*;

fn message_type(t: MessageTypeArg) -> Result<Option<filemap::MessageType>> {
    Ok(match t {
        Some((identity, size, align)) => Some(filemap::MessageType::new(&identity, size, align)?),
        None => None,
    })
}

/// A typed service's request and response types: both, or neither.
fn message_types(
    request: MessageTypeArg,
    response: MessageTypeArg,
) -> Result<Option<(filemap::MessageType, filemap::MessageType)>> {
    match (message_type(request)?, message_type(response)?) {
        (Some(q), Some(r)) => Ok(Some((q, r))),
        (None, None) => Ok(None),
        _ => Err(
            PyValueError::new_err("give both request_type and response_type, or neither").into(),
        ),
    }
}

/// A server of a request-response service.
#[pyclass(module = "filemap._filemap", name = "RpcServer")]
pub(crate) struct RpcServer {
    inner: Arc<Server>,
}

#[pymethods]
impl RpcServer {
    /// Creates the service `name` and becomes its first server. With
    /// `request_type` and `response_type` (`(identity, size, alignment)`,
    /// as `filemap.typed.message_type(dtype, identity)` makes), the service
    /// is typed: requests and responses of those sizes, checked by openers.
    #[staticmethod]
    #[pyo3(signature = (name, *, max_request = 4096, max_response = 4096, clients = 64, request_type = None, response_type = None))]
    fn create(
        name: &str,
        max_request: u64,
        max_response: u64,
        clients: u64,
        request_type: MessageTypeArg,
        response_type: MessageTypeArg,
    ) -> Result<Self> {
        let mut config = Config::new()
            .max_request(max_request)
            .max_response(max_response)
            .clients(clients);
        if let Some((q, r)) = message_types(request_type, response_type)? {
            config = config
                .max_request(q.size())
                .max_response(r.size())
                .message_types(q, r);
        }
        Ok(Self {
            inner: Arc::new(Server::create(name, &config)?),
        })
    }

    /// Opens the existing service `name` as one more server (checking its
    /// types, when given).
    #[staticmethod]
    #[pyo3(signature = (name, *, request_type = None, response_type = None))]
    fn open(
        name: &str,
        request_type: MessageTypeArg,
        response_type: MessageTypeArg,
    ) -> Result<Self> {
        let server = match message_types(request_type, response_type)? {
            Some((q, r)) => Server::open_typed(name, &filemap::Options::new(), &q, &r)?,
            None => Server::open(name)?,
        };
        Ok(Self {
            inner: Arc::new(server),
        })
    }

    /// The next request, waiting (GIL released) at most `timeout` seconds
    /// (`None`: as long as it takes).
    #[pyo3(signature = (timeout = None))]
    fn recv_request(&self, py: Python<'_>, timeout: Option<f64>) -> Result<RpcRequest> {
        let deadline = timeout_of(timeout)?;
        let server = &self.inner;
        let r = blocking(py, deadline, |slice| {
            Server::recv_request_owned_timeout(server, slice)
        })?;
        Ok(RpcRequest::wrap(r))
    }

    /// The next request if one is there now, else `None`.
    fn try_recv_request(&self) -> Result<Option<RpcRequest>> {
        Ok(Server::try_recv_request_owned(&self.inner)?.map(RpcRequest::wrap))
    }

    /// Requests skipped as malformed.
    #[getter]
    fn rejected(&self) -> u64 {
        self.inner.rejected()
    }

    /// The service's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }
}

/// A request taken by a server: `data`, `id`, and `respond(data)` (once).
/// Dropped unanswered, it tells its client the request was dropped.
#[pyclass(module = "filemap._filemap", name = "RpcRequest")]
pub(crate) struct RpcRequest {
    inner: Mutex<Option<OwnedRequest>>,
    data: Vec<u8>,
    id: u64,
}

impl RpcRequest {
    fn wrap(r: OwnedRequest) -> RpcRequest {
        RpcRequest {
            data: r.data().to_vec(),
            id: r.id().get(),
            inner: Mutex::new(Some(r)),
        }
    }
}

#[pymethods]
impl RpcRequest {
    /// The request's bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    /// The request's id (unique per client).
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// Answers with `data` (bytes, or anything with the buffer protocol).
    fn respond(&self, data: Bytes) -> Result<()> {
        let r = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| PyValueError::new_err("this request was answered already"))?;
        let data: &[u8] = &data;
        r.respond(data)?;
        Ok(())
    }
}

/// A client of a request-response service.
#[pyclass(module = "filemap._filemap", name = "RpcClient")]
pub(crate) struct RpcClient {
    inner: Client,
    typed: Option<(filemap::MessageType, filemap::MessageType)>,
}

#[pymethods]
impl RpcClient {
    /// Connects to the service `name`; with `request_type` and
    /// `response_type`, checks that the service carries those types.
    #[staticmethod]
    #[pyo3(signature = (name, *, request_type = None, response_type = None))]
    fn open(
        name: &str,
        request_type: MessageTypeArg,
        response_type: MessageTypeArg,
    ) -> Result<Self> {
        let typed = message_types(request_type, response_type)?;
        let inner = match &typed {
            Some((q, r)) => Client::open_typed(name, &filemap::Options::new(), q, r)?,
            None => Client::open(name)?,
        };
        Ok(Self { inner, typed })
    }

    /// Sends `request` and waits (GIL released) at most `timeout` seconds
    /// in all for its response.
    #[pyo3(signature = (request, timeout = None))]
    fn call<'py>(
        &mut self,
        py: Python<'py>,
        request: Bytes,
        timeout: Option<f64>,
    ) -> Result<Bound<'py, PyBytes>> {
        let id = self.send_request(py, request, timeout)?;
        self.response(py, id, timeout)
    }

    /// Sends `request` (waiting for room, GIL released) and returns its id.
    #[pyo3(signature = (request, timeout = None))]
    fn send_request(
        &mut self,
        py: Python<'_>,
        request: Bytes,
        timeout: Option<f64>,
    ) -> Result<u64> {
        let data: &[u8] = &request;
        let deadline = timeout_of(timeout)?;
        let c = &mut self.inner;
        let id = blocking(py, deadline, |slice| c.send_request_timeout(data, slice))?;
        Ok(id.get())
    }

    /// The response to request `id`, waiting (GIL released) at most `timeout` seconds.
    #[pyo3(signature = (id, timeout = None))]
    fn response<'py>(
        &mut self,
        py: Python<'py>,
        id: u64,
        timeout: Option<f64>,
    ) -> Result<Bound<'py, PyBytes>> {
        let deadline = timeout_of(timeout)?;
        let c = &mut self.inner;
        let rid = filemap::rpc::RequestId::from_raw(id);
        let got = blocking(py, deadline, |slice| c.response_timeout(rid, slice))?;
        Ok(PyBytes::new(py, &got))
    }

    /// The response to request `id` if it is there now, else `None`.
    fn try_response<'py>(
        &mut self,
        py: Python<'py>,
        id: u64,
    ) -> Result<Option<Bound<'py, PyBytes>>> {
        let rid = filemap::rpc::RequestId::from_raw(id);
        Ok(self.inner.try_response(rid)?.map(|b| PyBytes::new(py, &b)))
    }

    /// Requests in flight.
    #[getter]
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }

    /// Whether this client checked the service's types on open.
    #[getter]
    fn typed(&self) -> bool {
        self.typed.is_some()
    }
}
