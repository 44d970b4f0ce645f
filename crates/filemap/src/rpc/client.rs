//! The client side of a service: sends requests tagged with its slot and
//! an id, and sorts the responses on its own channel by id.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::*;
use crate::channel::mpmc;
use crate::park::deadline_after;

/// How often a waiting client looks at the servers (a dead one holding its
/// request, or none left).
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// The id of a request in flight, to collect its response with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The id as a number (unique per client, counting from 1).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id of that number (for bindings that hand ids out as numbers).
    pub fn from_raw(id: u64) -> RequestId {
        RequestId(id)
    }
}

/// A client of a service. One per thread that calls (`&mut self`); a
/// process may have many (each takes a client slot).
#[derive(Debug)]
pub struct Client {
    reg: Registry,
    requests: mpmc::Sender,
    responses: mpmc::Receiver,
    slot: u32,
    tag: u64,
    responses_name: String,
    next_id: u64,
    /// Sent, and no response taken off the channel yet.
    pending: IdSet,
    /// Pending ids whose caller gave up (a dropped future): their
    /// responses are dropped on arrival.
    abandoned: IdSet,
    /// Responses taken off the channel, not collected yet.
    stash: IdMap<Result<Vec<u8>>>,
    buf: Vec<u8>,
    out: Vec<u8>,
    window: usize,
    last_check: Instant,
}

impl Client {
    /// Connects to the service `name` (made by [`Server::create`]).
    ///
    /// # Errors
    /// As [`crate::Options::open`]; [`Error::Incompatible`] for an object
    /// that is not a service of this format; [`Error::Busy`] when every
    /// client slot is taken by a live process.
    pub fn open(name: &str) -> Result<Client> {
        Self::open_with(name, &Options::new())
    }

    /// [`Client::open`] with options (mode of its response channel, ready timeout).
    ///
    /// # Errors
    /// As [`Client::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Client> {
        Self::connect(Registry::open(name, opts, None)?, opts)
    }

    /// Connects to the service `name`, checking that its requests and
    /// responses are of these types (what [`super::TypedClient`] does; for
    /// bindings with no Rust type).
    ///
    /// # Errors
    /// As [`Client::open`]; [`Error::Incompatible`] naming both types when
    /// the service carries others, or bytes.
    pub fn open_typed(
        name: &str,
        opts: &Options,
        request: &MessageType,
        response: &MessageType,
    ) -> Result<Client> {
        let reg = Registry::open(name, opts, Some(request))?;
        reg.check_response_type(response)?;
        Self::connect(reg, opts)
    }

    fn connect(reg: Registry, opts: &Options) -> Result<Client> {
        let requests = mpmc::Sender::open_with(&requests_name(&reg.name), opts)?;
        if requests.max_message() < REQ_HEADER + reg.max_request {
            return Err(Error::Corrupt {
                object: reg.name.clone(),
                reason: "its request queue is smaller than its configuration says".into(),
            });
        }
        let (slot, gen) = reg.claim_client()?;
        let responses_name = response_name(&reg.name, slot, gen);
        let made = mpmc::Receiver::create_with(
            &responses_name,
            reg.response_slots,
            (RESP_HEADER + reg.max_response) as u64,
            &opts.clone().lifetime(crate::mapping::Lifetime::Transient),
        );
        let responses = match made {
            Ok(r) => r,
            Err(e) => {
                reg.client_owner(slot).store(0, Ordering::Release);
                return Err(e);
            }
        };
        let window = reg.response_slots.next_power_of_two() as usize;
        Ok(Client {
            buf: Vec::with_capacity(RESP_HEADER + reg.max_response),
            out: Vec::with_capacity(REQ_HEADER + reg.max_request),
            reg,
            requests,
            responses,
            slot,
            tag: tag_of(slot, gen),
            responses_name,
            next_id: 1,
            pending: IdSet::default(),
            abandoned: IdSet::default(),
            stash: IdMap::default(),
            window,
            last_check: Instant::now(),
        })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.reg.name
    }

    /// This client's slot in the service.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The largest request.
    pub fn max_request(&self) -> usize {
        self.reg.max_request
    }

    /// The name of this client's response channel (`SERVICE.c<slot>.<generation>`).
    pub fn responses_name(&self) -> &str {
        &self.responses_name
    }

    /// Requests in flight (sent, response not received yet).
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The request message for `req` with id `id`, in `self.out`.
    fn frame(&mut self, id: u64, req: &[u8]) -> Result<()> {
        if req.len() > self.reg.max_request {
            return Err(Error::InvalidSize {
                object: self.reg.name.clone(),
                reason: format!(
                    "a request of {} bytes is over the service's limit of {}",
                    req.len(),
                    self.reg.max_request
                ),
            });
        }
        self.out.clear();
        self.out.extend_from_slice(&self.tag.to_ne_bytes());
        self.out.extend_from_slice(&id.to_ne_bytes());
        self.out.extend_from_slice(req);
        Ok(())
    }

    /// Sends `req` if the queue and this client's window of requests in
    /// flight have room now, and returns its id; `Ok(None)` if not. Never
    /// waits. Collect the response with [`Client::try_response`],
    /// [`Client::response`] and the other forms.
    ///
    /// # Errors
    /// [`Error::InvalidSize`] over [`Client::max_request`]; [`Error::Corrupt`].
    pub fn try_call(&mut self, req: &[u8]) -> Result<Option<RequestId>> {
        while self.pending.len() >= self.window {
            if !self.take_one(None, true)? {
                return Ok(None);
            }
        }
        let id = self.next_id;
        self.frame(id, req)?;
        if !self.requests.try_send(&self.out)? {
            return Ok(None);
        }
        Ok(Some(self.sent(id)))
    }

    fn sent(&mut self, id: u64) -> RequestId {
        self.next_id += 1;
        self.pending.insert(id);
        RequestId(id)
    }

    /// Sends `req`, waiting as long as it takes for room, and returns its id.
    ///
    /// # Errors
    /// As [`Client::try_call`], and [`Error::PeerGone`] when no server is
    /// left while it waits for room.
    pub fn send_request(&mut self, req: &[u8]) -> Result<RequestId> {
        self.send_opt(req, None)
    }

    /// Sends `req`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Client::send_request`], and [`Error::Timeout`].
    pub fn send_request_timeout(&mut self, req: &[u8], timeout: Duration) -> Result<RequestId> {
        self.send_opt(req, deadline_after(timeout))
    }

    fn send_opt(&mut self, req: &[u8], deadline: Option<Instant>) -> Result<RequestId> {
        if self.pending.len() < self.window {
            // The common case: room in the window and in the queue.
            let id = self.next_id;
            self.frame(id, req)?;
            if self.requests.try_send(&self.out)? {
                return Ok(self.sent(id));
            }
        }
        let started = Instant::now();
        while self.pending.len() >= self.window {
            self.take_one(deadline, false)?;
            self.past(deadline, started)?;
        }
        let id = self.next_id;
        self.frame(id, req)?;
        loop {
            let slice = Instant::now() + CHECK_EVERY;
            let until = deadline.map_or(slice, |d| d.min(slice));
            match self.requests.send_deadline(&self.out, until) {
                Ok(()) => return Ok(self.sent(id)),
                Err(Error::Timeout { .. }) => {
                    self.past(deadline, started)?;
                    let (live, _) = self.reg.servers();
                    if live == 0 {
                        return Err(self.no_server());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `req` and waits as long as it takes for its response.
    ///
    /// # Errors
    /// As [`Client::send_request`] and [`Client::response`].
    pub fn call(&mut self, req: &[u8]) -> Result<Vec<u8>> {
        self.call_opt(req, None)
    }

    /// Sends `req` and waits at most `timeout`, in all, for its response.
    ///
    /// # Errors
    /// As [`Client::call`], and [`Error::Timeout`].
    pub fn call_timeout(&mut self, req: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        self.call_opt(req, deadline_after(timeout))
    }

    /// Sends `req` and waits until `deadline` at most for its response.
    ///
    /// # Errors
    /// As [`Client::call`], and [`Error::Timeout`].
    pub fn call_deadline(&mut self, req: &[u8], deadline: Instant) -> Result<Vec<u8>> {
        self.call_opt(req, Some(deadline))
    }

    fn call_opt(&mut self, req: &[u8], deadline: Option<Instant>) -> Result<Vec<u8>> {
        let id = self.send_opt(req, deadline)?;
        let r = self.response_opt(id, deadline);
        if matches!(r, Err(Error::Timeout { .. })) {
            // Nobody will collect it: drop its response when it comes.
            self.abandon(id.0);
        }
        r
    }

    /// The response to `id` if it is there now.
    ///
    /// # Errors
    /// The call's own failure: [`Error::PeerGone`] when the server that
    /// took the request died (or dropped it unanswered), or no server is
    /// left; [`Error::Malformed`] when the server could not decode it;
    /// [`Error::InvalidSize`] for an id that is not in flight.
    pub fn try_response(&mut self, id: RequestId) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(r) = self.stash.remove(&id.0) {
                return r.map(Some);
            }
            self.known(id)?;
            if !self.take_one(None, true)? {
                if self.last_check.elapsed() >= CHECK_EVERY {
                    self.check_servers();
                    if let Some(r) = self.stash.remove(&id.0) {
                        return r.map(Some);
                    }
                }
                return Ok(None);
            }
        }
    }

    /// The response to `id`, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Client::try_response`].
    pub fn response(&mut self, id: RequestId) -> Result<Vec<u8>> {
        self.response_opt(id, None)
    }

    /// The response to `id`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Client::try_response`], and [`Error::Timeout`] (the request
    /// stays in flight: ask again later).
    pub fn response_timeout(&mut self, id: RequestId, timeout: Duration) -> Result<Vec<u8>> {
        self.response_opt(id, deadline_after(timeout))
    }

    /// The response to `id`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Client::response_timeout`].
    pub fn response_deadline(&mut self, id: RequestId, deadline: Instant) -> Result<Vec<u8>> {
        self.response_opt(id, Some(deadline))
    }

    fn response_opt(&mut self, id: RequestId, deadline: Option<Instant>) -> Result<Vec<u8>> {
        if !self.stash.is_empty() {
            if let Some(r) = self.stash.remove(&id.0) {
                return r;
            }
        }
        self.known(id)?;
        // The common case: the response comes in a moment. Poll for it
        // without a look at the clock.
        for _ in 0..SPINS {
            if self.responses.looks_ready() && self.responses.try_recv_into(&mut self.buf)? {
                let msg = std::mem::take(&mut self.buf);
                let filed = self.file(&msg);
                self.buf = msg;
                match filed {
                    Some((got, r)) if got == id.0 => return r,
                    Some((got, r)) => {
                        self.stash.insert(got, r);
                    }
                    None => {}
                }
            }
            std::hint::spin_loop();
        }
        let started = Instant::now();
        loop {
            if let Some(r) = self.stash.remove(&id.0) {
                return r;
            }
            self.known(id)?;
            self.past(deadline, started)?;
            self.take_one(deadline, false)?;
        }
    }

    fn known(&self, id: RequestId) -> Result<()> {
        if self.pending.contains(&id.0) {
            return Ok(());
        }
        Err(Error::InvalidSize {
            object: self.reg.name.clone(),
            reason: format!(
                "request {} is not in flight from this client (its response was collected, \
                 or it was never sent)",
                id.0
            ),
        })
    }

    fn past(&self, deadline: Option<Instant>, started: Instant) -> Result<()> {
        match deadline {
            Some(d) if Instant::now() >= d => Err(Error::Timeout {
                object: self.reg.name.clone(),
                what: "a response",
                waited: started.elapsed(),
            }),
            _ => Ok(()),
        }
    }

    /// Takes one response off the channel into the stash (or drops it):
    /// never waits when `now_only`, else waits one slice at most (then
    /// looks at the servers). True when one was taken.
    fn take_one(&mut self, deadline: Option<Instant>, now_only: bool) -> Result<bool> {
        let got = if now_only {
            self.responses.try_recv_into(&mut self.buf)?
        } else {
            let slice = Instant::now() + CHECK_EVERY;
            let until = deadline.map_or(slice, |d| d.min(slice));
            match self.responses.recv_into_deadline(&mut self.buf, until) {
                Ok(()) => true,
                Err(Error::Timeout { .. }) => {
                    self.check_servers();
                    false
                }
                Err(e) => return Err(e),
            }
        };
        if got {
            let bytes = std::mem::take(&mut self.buf);
            if let Some((id, r)) = self.file(&bytes) {
                self.stash.insert(id, r);
            }
            self.buf = bytes;
        }
        Ok(got)
    }

    /// Decodes a response message: its id and result if its id is pending
    /// (no longer, then), `None` otherwise (late, abandoned, or not ours:
    /// dropped).
    fn file(&mut self, msg: &[u8]) -> Option<(u64, Result<Vec<u8>>)> {
        let (head, payload) = msg.split_at_checked(RESP_HEADER)?;
        let id = u64::from_ne_bytes(head[..8].try_into().expect("8 bytes"));
        let status = u64::from_ne_bytes(head[8..].try_into().expect("8 bytes"));
        if !self.pending.remove(&id) || (!self.abandoned.is_empty() && self.abandoned.remove(&id)) {
            return None;
        }
        let name = &self.reg.name;
        let r = match status {
            OK => Ok(payload.to_vec()),
            DROPPED => Err(Error::PeerGone {
                object: name.clone(),
                reason: format!("the server dropped request {id} without answering it"),
            }),
            SERVER_DIED => Err(Error::PeerGone {
                object: name.clone(),
                reason: format!("the server that took request {id} died before answering it"),
            }),
            UNDECODABLE => Err(Error::Malformed {
                object: name.clone(),
                reason: format!("the server could not decode request {id} as its request type"),
            }),
            other => Err(Error::Malformed {
                object: name.clone(),
                reason: format!("the response to request {id} has an unknown status {other}"),
            }),
        };
        Some((id, r))
    }

    fn abandon(&mut self, id: u64) {
        if self.pending.contains(&id) {
            self.abandoned.insert(id);
        }
        self.stash.remove(&id);
    }

    /// Fails the pending requests a dead server held, and all of them when
    /// no server is left.
    fn check_servers(&mut self) {
        self.last_check = Instant::now();
        let (live, dead) = self.reg.servers();
        for i in dead {
            let owner = self.reg.server_owner(i).load(Ordering::Acquire);
            for id in self.reg.held_by(i, self.tag) {
                if self.pending.remove(&id) && !self.abandoned.remove(&id) {
                    self.stash.insert(
                        id,
                        Err(Error::PeerGone {
                            object: self.reg.name.clone(),
                            reason: format!(
                                "the server (process {}) that took request {id} died before \
                                 answering it",
                                owner as u32
                            ),
                        }),
                    );
                }
            }
        }
        if live == 0 {
            for id in std::mem::take(&mut self.pending) {
                if !self.abandoned.remove(&id) {
                    self.stash.insert(id, Err(self.no_server()));
                }
            }
        }
    }

    fn no_server(&self) -> Error {
        Error::PeerGone {
            object: self.reg.name.clone(),
            reason: "no server serves it (every server closed or died)".into(),
        }
    }

    /// Sends `req` and awaits its response: the task sleeps, no thread
    /// blocks. A server's death is noticed within
    /// [`crate::wait::ASYNC_LIVENESS`].
    ///
    /// # Cancel safety
    /// Dropping the future after the request went out abandons it: its
    /// response is dropped when it comes.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn call_async(&mut self, req: &[u8]) -> Result<Vec<u8>> {
        let id = self.send_request_async(req).await?;
        self.response_async(id).await
    }

    /// Sends `req` asynchronously (waiting for room), returning its id.
    ///
    /// # Errors
    /// As [`Client::send_request`].
    pub async fn send_request_async(&mut self, req: &[u8]) -> Result<RequestId> {
        while self.pending.len() >= self.window {
            let msg = self.responses.recv_async().await?;
            if let Some((id, r)) = self.file(&msg) {
                self.stash.insert(id, r);
            }
        }
        let id = self.next_id;
        self.frame(id, req)?;
        let out = std::mem::take(&mut self.out);
        let r = self.requests.send_async(&out).await;
        self.out = out;
        r?;
        Ok(self.sent(id))
    }

    /// Awaits the response to `id`.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the request (its response is dropped
    /// when it comes; `id` is no longer in flight).
    pub fn response_async(&mut self, id: RequestId) -> ResponseFuture<'_> {
        ResponseFuture {
            client: self,
            id: id.0,
            done: false,
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Frees the slot; servers let go of the response channel on seeing it.
        self.reg.client_owner(self.slot).store(0, Ordering::Release);
    }
}

impl crate::wait::Sealed for Client {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::Sealed::source(&mut self.responses)
    }
}

/// The future of [`Client::response_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct ResponseFuture<'a> {
    client: &'a mut Client,
    id: u64,
    done: bool,
}

impl Future for ResponseFuture<'_> {
    type Output = Result<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let c = &mut *this.client;
        loop {
            if let Some(r) = c.stash.remove(&this.id) {
                this.done = true;
                return Poll::Ready(r);
            }
            if let Err(e) = c.known(RequestId(this.id)) {
                this.done = true;
                return Poll::Ready(Err(e));
            }
            match c.responses.poll_recv(cx) {
                Poll::Ready(Ok(msg)) => {
                    if let Some((id, r)) = c.file(&msg) {
                        c.stash.insert(id, r);
                    }
                }
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    // Woken at least every ASYNC_LIVENESS (an mpmc future's
                    // poke): look at the servers, as the blocking forms do.
                    if c.last_check.elapsed() >= CHECK_EVERY {
                        c.check_servers();
                        if c.stash.contains_key(&this.id) {
                            continue;
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for ResponseFuture<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.client.abandon(self.id);
        }
    }
}
