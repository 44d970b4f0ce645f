//! Typed request-response: requests of `Q` and responses of `R`,
//! plain-old-data types as the typed channels take ([`crate::typed::Pod`]),
//! recorded in the service's registry and checked by every opener.
//!
//! ```
//! use filemap::rpc::{Config, TypedClient, TypedServer};
//! use std::time::Duration;
//!
//! let server = TypedServer::<[u32; 2], u64>::create("filemap-doc-rpc-typed", &Config::new())?;
//! let mut client = TypedClient::<[u32; 2], u64>::open("filemap-doc-rpc-typed")?;
//! let id = client.send_request(&[20, 22])?;
//! let req = server.recv_request_timeout(Duration::from_secs(5))?;
//! let [a, b] = *req.value();
//! req.respond(&(u64::from(a) + u64::from(b)))?;
//! assert_eq!(client.response_timeout(id, Duration::from_secs(5))?, 42);
//!
//! // A client of other types is refused, naming both:
//! assert!(TypedClient::<u64, u64>::open("filemap-doc-rpc-typed").is_err());
//! # Ok::<(), filemap::Error>(())
//! ```

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::*;
use crate::typed::Pod;

/// A server of a typed service.
#[derive(Debug)]
pub struct TypedServer<Q, R> {
    inner: Server,
    _t: PhantomData<fn(Q) -> R>,
}

/// A typed request taken by a [`TypedServer`]: its value, and the
/// obligation to answer (as [`Request`]).
#[derive(Debug)]
pub struct TypedRequest<'a, Q, R> {
    inner: Request<'a>,
    value: Q,
    _t: PhantomData<fn(R)>,
}

/// A client of a typed service.
#[derive(Debug)]
pub struct TypedClient<Q, R> {
    inner: Client,
    _t: PhantomData<fn(Q) -> R>,
}

fn types<Q, R>() -> (MessageType, MessageType) {
    (MessageType::of::<Q>(), MessageType::of::<R>())
}

impl<Q: Pod, R: Pod> TypedServer<Q, R> {
    /// Creates the service `name` for requests of `Q` and responses of `R`
    /// (`config`'s sizes are set to theirs) and becomes its first server.
    ///
    /// # Errors
    /// As [`Server::create`].
    pub fn create(name: &str, config: &Config) -> Result<Self> {
        Self::create_with(name, config, &Options::new())
    }

    /// [`TypedServer::create`] with options.
    ///
    /// # Errors
    /// As [`Server::create`].
    pub fn create_with(name: &str, config: &Config, opts: &Options) -> Result<Self> {
        let (q, r) = types::<Q, R>();
        let config = config
            .clone()
            .max_request(q.size())
            .max_response(r.size())
            .message_types(q, r);
        Ok(Self::wrap(Server::create_with(name, &config, opts)?))
    }

    /// Opens the existing service `name` as one more server.
    ///
    /// # Errors
    /// As [`Server::open`]; [`Error::Incompatible`] naming both types when
    /// the service carries others.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`TypedServer::open`] with options.
    ///
    /// # Errors
    /// As [`TypedServer::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let (q, r) = types::<Q, R>();
        Ok(Self::wrap(Server::open_typed(name, opts, &q, &r)?))
    }

    fn wrap(inner: Server) -> Self {
        TypedServer {
            inner,
            _t: PhantomData,
        }
    }

    /// The byte-level server underneath (for its counters).
    pub fn as_server(&self) -> &Server {
        &self.inner
    }

    /// A typed request, or `None` (answered as undecodable) for bytes that
    /// are not one `Q`.
    fn typed<'a>(&self, r: Request<'a>) -> Option<TypedRequest<'a, Q, R>> {
        match Q::read_from_bytes(r.data()) {
            Ok(value) => Some(TypedRequest {
                inner: r,
                value,
                _t: PhantomData,
            }),
            Err(_) => {
                r.reject_undecodable();
                None
            }
        }
    }

    /// The next request if one is there now.
    ///
    /// # Errors
    /// As [`Server::try_recv_request`]. A request that is not one `Q` is
    /// answered as undecodable (its call fails with [`Error::Malformed`])
    /// and skipped.
    pub fn try_recv_request(&self) -> Result<Option<TypedRequest<'_, Q, R>>> {
        while let Some(r) = self.inner.try_recv_request()? {
            if let Some(t) = self.typed(r) {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// The next request, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`TypedServer::try_recv_request`].
    pub fn recv_request(&self) -> Result<TypedRequest<'_, Q, R>> {
        loop {
            if let Some(t) = self.typed(self.inner.recv_request()?) {
                return Ok(t);
            }
        }
    }

    /// The next request, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`TypedServer::recv_request`], and [`Error::Timeout`].
    pub fn recv_request_timeout(&self, timeout: Duration) -> Result<TypedRequest<'_, Q, R>> {
        match crate::park::deadline_after(timeout) {
            Some(d) => self.recv_request_deadline(d),
            None => self.recv_request(),
        }
    }

    /// The next request, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`TypedServer::recv_request`], and [`Error::Timeout`].
    pub fn recv_request_deadline(&self, deadline: Instant) -> Result<TypedRequest<'_, Q, R>> {
        loop {
            if let Some(t) = self.typed(self.inner.recv_request_deadline(deadline)?) {
                return Ok(t);
            }
        }
    }

    /// The next request, asynchronously.
    ///
    /// # Errors
    /// As [`TypedServer::recv_request`].
    pub async fn recv_request_async(&self) -> Result<TypedRequest<'_, Q, R>> {
        loop {
            if let Some(t) = self.typed(self.inner.recv_request_async().await?) {
                return Ok(t);
            }
        }
    }
}

impl<Q, R> crate::wait::Sealed for TypedServer<Q, R> {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::Sealed::source(&mut self.inner)
    }
}

impl<Q: Pod, R: Pod> TypedRequest<'_, Q, R> {
    /// The request's value.
    pub fn value(&self) -> &Q {
        &self.value
    }

    /// The request's id.
    pub fn id(&self) -> RequestId {
        self.inner.id()
    }

    /// Answers with `response`.
    ///
    /// # Errors
    /// As [`Request::respond`].
    pub fn respond(self, response: &R) -> Result<()> {
        self.inner.respond(response.as_bytes())
    }
}

impl<Q: Pod, R: Pod> TypedClient<Q, R> {
    /// Connects to the typed service `name`.
    ///
    /// # Errors
    /// As [`Client::open`]; [`Error::Incompatible`] naming both types when
    /// the service carries others (or bytes).
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::new())
    }

    /// [`TypedClient::open`] with options.
    ///
    /// # Errors
    /// As [`TypedClient::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        let (q, r) = types::<Q, R>();
        Ok(TypedClient {
            inner: Client::open_typed(name, opts, &q, &r)?,
            _t: PhantomData,
        })
    }

    /// The byte-level client underneath.
    pub fn as_client(&mut self) -> &mut Client {
        &mut self.inner
    }

    fn value(&self, bytes: Result<Vec<u8>>) -> Result<R> {
        crate::typed::one(self.inner.name(), &bytes?)
    }

    /// Sends `req` if there is room now (see [`Client::try_call`]).
    ///
    /// # Errors
    /// As [`Client::try_call`].
    pub fn try_call(&mut self, req: &Q) -> Result<Option<RequestId>> {
        self.inner.try_call(req.as_bytes())
    }

    /// Sends `req`, waiting for room, and returns its id.
    ///
    /// # Errors
    /// As [`Client::send_request`].
    pub fn send_request(&mut self, req: &Q) -> Result<RequestId> {
        self.inner.send_request(req.as_bytes())
    }

    /// Sends `req` and waits as long as it takes for its response.
    ///
    /// # Errors
    /// As [`Client::call`]; [`Error::Malformed`] for a response that is not one `R`.
    pub fn call(&mut self, req: &Q) -> Result<R> {
        let r = self.inner.call(req.as_bytes());
        self.value(r)
    }

    /// Sends `req` and waits at most `timeout` for its response.
    ///
    /// # Errors
    /// As [`TypedClient::call`], and [`Error::Timeout`].
    pub fn call_timeout(&mut self, req: &Q, timeout: Duration) -> Result<R> {
        let r = self.inner.call_timeout(req.as_bytes(), timeout);
        self.value(r)
    }

    /// Sends `req` and waits until `deadline` at most for its response.
    ///
    /// # Errors
    /// As [`TypedClient::call`], and [`Error::Timeout`].
    pub fn call_deadline(&mut self, req: &Q, deadline: Instant) -> Result<R> {
        let r = self.inner.call_deadline(req.as_bytes(), deadline);
        self.value(r)
    }

    /// Sends `req` and awaits its response.
    ///
    /// # Errors
    /// As [`TypedClient::call`].
    pub async fn call_async(&mut self, req: &Q) -> Result<R> {
        let r = self.inner.call_async(req.as_bytes()).await;
        self.value(r)
    }

    /// The response to `id` if it is there now.
    ///
    /// # Errors
    /// As [`Client::try_response`], and [`Error::Malformed`].
    pub fn try_response(&mut self, id: RequestId) -> Result<Option<R>> {
        match self.inner.try_response(id)? {
            Some(b) => self.value(Ok(b)).map(Some),
            None => Ok(None),
        }
    }

    /// The response to `id`, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Client::response`], and [`Error::Malformed`].
    pub fn response(&mut self, id: RequestId) -> Result<R> {
        let r = self.inner.response(id);
        self.value(r)
    }

    /// The response to `id`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Client::response_timeout`], and [`Error::Malformed`].
    pub fn response_timeout(&mut self, id: RequestId, timeout: Duration) -> Result<R> {
        let r = self.inner.response_timeout(id, timeout);
        self.value(r)
    }

    /// The response to `id`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Client::response_deadline`], and [`Error::Malformed`].
    pub fn response_deadline(&mut self, id: RequestId, deadline: Instant) -> Result<R> {
        let r = self.inner.response_deadline(id, deadline);
        self.value(r)
    }
}

impl<Q, R> crate::wait::Sealed for TypedClient<Q, R> {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::Sealed::source(&mut self.inner)
    }
}
