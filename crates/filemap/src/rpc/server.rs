//! The server side of a service: takes requests off the queue, records
//! which it holds (so that its death is reported to their clients), and
//! answers each on its client's response channel.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::*;
use crate::channel::mpmc;
use crate::park::deadline_after;

/// A server of a service: any number may serve one service (up to
/// [`SERVERS`]), each request going to one of them. Usable from several
/// threads (`&self`; each call takes a short internal lock), but one
/// `Server` is one server slot: for servers that work in parallel, make one
/// per thread.
#[derive(Debug)]
pub struct Server {
    reg: Registry,
    queue: mpmc::Receiver,
    /// This server's slot in the registry.
    index: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Response channels of the clients answered lately: slot -> (generation, sender).
    senders: IdMap<(u32, mpmc::Sender)>,
    /// Hands in use (bit `h`: hand `h`).
    hands: u64,
    /// Buffers of requests answered, for the next ones (no allocation per request).
    pool: Vec<Vec<u8>>,
    rejected: u64,
    undelivered: u64,
    until_look: u32,
    next_maintenance: Instant,
}

/// A request taken by a server: its bytes, and the obligation to answer.
/// [`Request::respond`] sends the response to the client that asked;
/// dropping a request unanswered tells that client so (its call fails with
/// [`Error::PeerGone`] saying the server dropped it), so every request gets
/// exactly one response.
#[derive(Debug)]
pub struct Request<'a> {
    server: ServerRef<'a>,
    tag: u64,
    id: u64,
    data: Vec<u8>,
    hand: Option<usize>,
    answered: bool,
}

/// The server a request answers through: borrowed, or shared (an
/// [`OwnedRequest`]).
#[derive(Debug)]
enum ServerRef<'a> {
    Borrowed(&'a Server),
    Shared(std::sync::Arc<Server>),
}

impl std::ops::Deref for ServerRef<'_> {
    type Target = Server;
    fn deref(&self) -> &Server {
        match self {
            ServerRef::Borrowed(s) => s,
            ServerRef::Shared(s) => s,
        }
    }
}

/// A request that holds its server by an `Arc` instead of borrowing it:
/// what a binding needs to keep a request apart from its server (tokio's
/// `lock_owned` shape). Made by [`Server::recv_request_owned`] and its other
/// forms; answered and dropped as a [`Request`].
pub type OwnedRequest = Request<'static>;

/// Requests looked at between two looks at the clock for maintenance.
const LOOK_EVERY: u32 = 1024;
/// Malformed requests skipped by one `try_recv_request` before it returns.
const SKIP_AT_MOST: usize = 1024;

impl Server {
    /// Creates the service `name` with `config` and becomes its first server.
    ///
    /// # Errors
    /// As [`crate::Options::create`] for `name` and `name.requests`;
    /// [`Error::InvalidSize`] for a configuration out of range.
    pub fn create(name: &str, config: &Config) -> Result<Server> {
        Self::create_with(name, config, &Options::new())
    }

    /// [`Server::create`] with options (mode, lifetime, ready timeout).
    ///
    /// # Errors
    /// As [`Server::create`].
    pub fn create_with(name: &str, config: &Config, opts: &Options) -> Result<Server> {
        let queue = mpmc::Receiver::create_with(
            &requests_name(name),
            config.request_slots,
            config.max_request + REQ_HEADER as u64,
            opts,
        )?;
        let reg = Registry::create(name, config, opts)?;
        Self::register(reg, queue)
    }

    /// Opens the existing service `name` as one more server (or as the
    /// server that takes over from one that died).
    ///
    /// # Errors
    /// As [`crate::Options::open`]; [`Error::Incompatible`] for an object
    /// that is not a service of this format; [`Error::Busy`] when all
    /// [`SERVERS`] server slots are held by live processes.
    pub fn open(name: &str) -> Result<Server> {
        Self::open_with(name, &Options::new())
    }

    /// [`Server::open`] with options.
    ///
    /// # Errors
    /// As [`Server::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Server> {
        let reg = Registry::open(name, opts, None)?;
        let queue = mpmc::Receiver::open_with(&requests_name(name), opts)?;
        Self::register(reg, queue)
    }

    /// Opens the service `name` as one more server, checking that its
    /// requests and responses are of these types (what
    /// [`super::TypedServer`] does; for bindings with no Rust type).
    ///
    /// # Errors
    /// As [`Server::open`]; [`Error::Incompatible`] naming both types when
    /// the service carries others, or bytes.
    pub fn open_typed(
        name: &str,
        opts: &Options,
        request: &MessageType,
        response: &MessageType,
    ) -> Result<Server> {
        let reg = Registry::open(name, opts, Some(request))?;
        reg.check_response_type(response)?;
        let queue = mpmc::Receiver::open_with(&requests_name(name), opts)?;
        Self::register(reg, queue)
    }

    fn register(reg: Registry, queue: mpmc::Receiver) -> Result<Server> {
        if queue.max_message() < REQ_HEADER + reg.max_request {
            return Err(Error::Corrupt {
                object: reg.name.clone(),
                reason: format!(
                    "its request queue takes {} bytes, less than the {} its configuration needs",
                    queue.max_message(),
                    REQ_HEADER + reg.max_request
                ),
            });
        }
        let me = sys::owner_word(std::process::id());
        let state = Mutex::new(State {
            buf: Vec::with_capacity(queue.max_message()),
            out: Vec::with_capacity(RESP_HEADER + reg.max_response),
            senders: IdMap::default(),
            hands: 0,
            pool: Vec::new(),
            rejected: 0,
            undelivered: 0,
            until_look: LOOK_EVERY,
            next_maintenance: Instant::now() + MAINTENANCE,
        });
        let mut server = Server {
            reg,
            queue,
            index: usize::MAX,
            state,
        };
        for i in 0..SERVERS {
            let owner = server.reg.server_owner(i);
            let cur = owner.load(Ordering::Acquire);
            let take = cur == 0 || sys::owner_alive(cur) == Some(false);
            if take
                && owner
                    .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                server.index = i;
                if cur != 0 {
                    // Its previous holder died: answer for what it held.
                    server.answer_for_dead(i);
                } else {
                    server.clear_hands(i);
                }
                return Ok(server);
            }
        }
        Err(Error::Busy {
            object: server.reg.name.clone(),
            reason: format!("all its {SERVERS} server slots are held by live processes"),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.reg.name
    }

    /// The largest request.
    pub fn max_request(&self) -> usize {
        self.reg.max_request
    }

    /// The largest response.
    pub fn max_response(&self) -> usize {
        self.reg.max_response
    }

    /// Requests skipped because they were malformed (too short for their
    /// header, naming a client slot that does not exist) or came from a
    /// client that is gone, since this server started.
    pub fn rejected(&self) -> u64 {
        self.state().rejected
    }

    /// Responses that could not be delivered (the client's response
    /// channel was gone or full: a client that sent more requests than its
    /// window, or that is not one).
    pub fn undelivered(&self) -> u64 {
        self.state().undelivered
    }

    /// The next request if one is there now.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a corrupt queue. Malformed requests are
    /// skipped and counted ([`Server::rejected`]), never returned as errors.
    pub fn try_recv_request(&self) -> Result<Option<Request<'_>>> {
        for _ in 0..SKIP_AT_MOST {
            let mut st = self.state();
            let got = self.queue.try_recv_into(&mut st.buf)?;
            if !got {
                self.maybe_maintain(&mut st, true);
                return Ok(None);
            }
            if let Some(r) = self.accept(&mut st) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The next request, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Server::try_recv_request`].
    pub fn recv_request(&self) -> Result<Request<'_>> {
        self.recv_opt(None)
    }

    /// The next request, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Server::recv_request`], and [`Error::Timeout`].
    pub fn recv_request_timeout(&self, timeout: Duration) -> Result<Request<'_>> {
        self.recv_opt(deadline_after(timeout))
    }

    /// The next request, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Server::recv_request`], and [`Error::Timeout`].
    pub fn recv_request_deadline(&self, deadline: Instant) -> Result<Request<'_>> {
        self.recv_opt(Some(deadline))
    }

    fn recv_opt(&self, deadline: Option<Instant>) -> Result<Request<'_>> {
        // The common case under load: a request comes in a moment. Poll for
        // it without a look at the clock.
        for _ in 0..SPINS {
            // Two loads per poll; the lock only when there is something.
            if self.queue.looks_ready() {
                let mut st = self.state();
                if self.queue.try_recv_into(&mut st.buf)? {
                    if let Some(r) = self.accept(&mut st) {
                        return Ok(r);
                    }
                }
            }
            std::hint::spin_loop();
        }
        let started = Instant::now();
        loop {
            let mut st = self.state();
            // Fast: a request there now.
            if self.queue.try_recv_into(&mut st.buf)? {
                if let Some(r) = self.accept(&mut st) {
                    return Ok(r);
                }
                continue;
            }
            self.maybe_maintain(&mut st, true);
            drop(st);
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout {
                    object: self.reg.name.clone(),
                    what: "a request",
                    waited: started.elapsed(),
                });
            }
            // Wait in slices, for the maintenance between them.
            let slice = now + MAINTENANCE;
            let until = deadline.map_or(slice, |d| d.min(slice));
            let mut buf = std::mem::take(&mut self.state().buf);
            let got = self.queue.recv_into_deadline(&mut buf, until);
            let mut st = self.state();
            st.buf = buf;
            match got {
                Ok(()) => {
                    if let Some(r) = self.accept(&mut st) {
                        return Ok(r);
                    }
                }
                Err(Error::Timeout { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Server::try_recv_request`], owning (see [`OwnedRequest`]).
    ///
    /// # Errors
    /// As [`Server::try_recv_request`].
    pub fn try_recv_request_owned(server: &std::sync::Arc<Server>) -> Result<Option<OwnedRequest>> {
        Ok(server.try_recv_request()?.map(|r| r.into_owned(server)))
    }

    /// [`Server::recv_request`], owning.
    ///
    /// # Errors
    /// As [`Server::recv_request`].
    pub fn recv_request_owned(server: &std::sync::Arc<Server>) -> Result<OwnedRequest> {
        Ok(server.recv_request()?.into_owned(server))
    }

    /// [`Server::recv_request_timeout`], owning.
    ///
    /// # Errors
    /// As [`Server::recv_request_timeout`].
    pub fn recv_request_owned_timeout(
        server: &std::sync::Arc<Server>,
        timeout: Duration,
    ) -> Result<OwnedRequest> {
        Ok(server.recv_request_timeout(timeout)?.into_owned(server))
    }

    /// [`Server::recv_request_deadline`], owning.
    ///
    /// # Errors
    /// As [`Server::recv_request_deadline`].
    pub fn recv_request_owned_deadline(
        server: &std::sync::Arc<Server>,
        deadline: Instant,
    ) -> Result<OwnedRequest> {
        Ok(server.recv_request_deadline(deadline)?.into_owned(server))
    }

    /// The next request, asynchronously: the task sleeps, no thread blocks.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no request.
    ///
    /// # Errors
    /// As [`Server::recv_request`].
    pub async fn recv_request_async(&self) -> Result<Request<'_>> {
        loop {
            let bytes = self.queue.recv_async().await?;
            let mut st = self.state();
            st.buf = bytes;
            if let Some(r) = self.accept(&mut st) {
                return Ok(r);
            }
        }
    }

    /// Turns the bytes in `st.buf` into a request, or counts them rejected.
    fn accept(&self, st: &mut State) -> Option<Request<'_>> {
        if st.until_look == 0 {
            self.maybe_maintain(st, true);
        } else {
            st.until_look -= 1;
        }
        let Some((head, data)) = st.buf.split_at_checked(REQ_HEADER) else {
            st.rejected += 1;
            return None;
        };
        let tag = u64::from_ne_bytes(head[..8].try_into().expect("8 bytes"));
        let id = u64::from_ne_bytes(head[8..].try_into().expect("8 bytes"));
        match slot_of(tag) {
            Some((slot, gen)) if self.reg.client_current(slot, gen, false) => {}
            _ => {
                st.rejected += 1;
                return None;
            }
        }
        let mut buf = st.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        let data = buf;
        let hand = (!st.hands).trailing_zeros() as usize;
        let hand = (hand < HANDS).then(|| {
            st.hands |= 1 << hand;
            self.reg
                .hand_id(self.index, hand)
                .store(id, Ordering::Relaxed);
            // Release: with the id, for a client reading it after our death.
            self.reg
                .hand_tag(self.index, hand)
                .store(tag, Ordering::Release);
            hand
        });
        Some(Request {
            server: ServerRef::Borrowed(self),
            tag,
            id,
            data,
            hand,
            answered: false,
        })
    }

    /// Sends a response with `status` to the client `tag`; false if it
    /// could not be delivered.
    fn deliver(&self, st: &mut State, tag: u64, id: u64, status: u64, payload: &[u8]) -> bool {
        let Some((slot, gen)) = slot_of(tag) else {
            return false;
        };
        let key = u64::from(slot);
        let cached = matches!(st.senders.get(&key), Some((g, _)) if *g == gen);
        if !cached {
            st.senders.remove(&key);
            if !self.reg.client_current(slot, gen, false) {
                return false;
            }
            match mpmc::Sender::open(&response_name(&self.reg.name, slot, gen)) {
                Ok(tx) if tx.max_message() >= RESP_HEADER + payload.len() => {
                    st.senders.insert(key, (gen, tx));
                }
                _ => return false,
            }
        }
        // One copy into a buffer, one into the slot: measured faster than
        // three writes in place through a reservation (64 B calls, 450 vs
        // 530 ns).
        let mut out = std::mem::take(&mut st.out);
        out.clear();
        out.extend_from_slice(&id.to_ne_bytes());
        out.extend_from_slice(&status.to_ne_bytes());
        out.extend_from_slice(payload);
        let sent = match st.senders.get(&key) {
            Some((_, tx)) => matches!(tx.try_send(&out), Ok(true)),
            None => false,
        };
        st.out = out;
        sent
    }

    fn release_hand(&self, st: &mut State, hand: Option<usize>) {
        if let Some(h) = hand {
            self.reg.hand_tag(self.index, h).store(0, Ordering::Release);
            st.hands &= !(1 << h);
        }
    }

    fn finish(&self, req: &mut Request<'_>, status: u64, payload: &[u8]) {
        let mut st = self.state();
        if !self.deliver(&mut st, req.tag, req.id, status, payload) {
            st.undelivered += 1;
        }
        self.release_hand(&mut st, req.hand);
        if st.pool.len() < HANDS {
            st.pool.push(std::mem::take(&mut req.data));
        }
    }

    /// Every [`MAINTENANCE`]: let go of dead clients' response channels,
    /// and answer for servers that died.
    fn maybe_maintain(&self, st: &mut State, look: bool) {
        st.until_look = LOOK_EVERY;
        if !look || Instant::now() < st.next_maintenance {
            return;
        }
        st.next_maintenance = Instant::now() + MAINTENANCE;
        let reg = &self.reg;
        st.senders
            .retain(|&slot, (gen, _)| reg.client_current(slot as u32, *gen, true));
        let (_, dead) = reg.servers();
        for i in dead {
            let owner = reg.server_owner(i);
            let cur = owner.load(Ordering::Acquire);
            let me = sys::owner_word(std::process::id());
            // Take the slot while answering for it, so that one server does.
            if cur != 0
                && sys::owner_alive(cur) == Some(false)
                && owner
                    .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                self.answer_for(st, i);
                owner.store(0, Ordering::Release);
            }
        }
    }

    /// Answers for dead server slot `i` (now ours): each request it held
    /// fails in its client.
    fn answer_for_dead(&self, i: usize) {
        let mut st = self.state();
        self.answer_for(&mut st, i);
    }

    fn answer_for(&self, st: &mut State, i: usize) {
        for h in 0..HANDS {
            let tag = self.reg.hand_tag(i, h).swap(0, Ordering::AcqRel);
            if tag != 0 {
                let id = self.reg.hand_id(i, h).load(Ordering::Acquire);
                if !self.deliver(st, tag, id, SERVER_DIED, &[]) {
                    st.undelivered += 1;
                }
            }
        }
    }

    fn clear_hands(&self, i: usize) {
        for h in 0..HANDS {
            self.reg.hand_tag(i, h).store(0, Ordering::Release);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.index < SERVERS {
            self.clear_hands(self.index);
            self.reg
                .server_owner(self.index)
                .store(0, Ordering::Release);
        }
    }
}

impl crate::wait::Sealed for Server {
    fn source(&mut self) -> crate::wait::SourceRef<'_> {
        crate::wait::Sealed::source(&mut self.queue)
    }
}

impl<'a> Request<'a> {
    fn server_handle(&self) -> ServerRef<'a> {
        match &self.server {
            ServerRef::Borrowed(s) => ServerRef::Borrowed(s),
            ServerRef::Shared(s) => ServerRef::Shared(std::sync::Arc::clone(s)),
        }
    }

    /// The same request holding `server` (which it was taken from) by its `Arc`.
    fn into_owned(mut self, server: &std::sync::Arc<Server>) -> OwnedRequest {
        self.answered = true; // this one hands its duty over
        Request {
            server: ServerRef::Shared(std::sync::Arc::clone(server)),
            tag: self.tag,
            id: self.id,
            data: std::mem::take(&mut self.data),
            hand: self.hand,
            answered: false,
        }
    }

    /// The request's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The request's id (unique per client).
    pub fn id(&self) -> RequestId {
        RequestId(self.id)
    }

    /// The client that sent it: its slot in the service and the slot's
    /// generation (a new client in the same slot has another).
    pub fn client(&self) -> (u32, u32) {
        slot_of(self.tag).unwrap_or((u32::MAX, 0))
    }

    /// Answers the request with `response`. A client that died or closed
    /// since it asked gets nothing (and that is not an error).
    ///
    /// # Errors
    /// [`Error::InvalidSize`] for a response over [`Server::max_response`]
    /// (the client is then told the request was dropped).
    pub fn respond(mut self, response: &[u8]) -> Result<()> {
        if response.len() > self.server.reg.max_response {
            return Err(Error::InvalidSize {
                object: self.server.reg.name.clone(),
                reason: format!(
                    "a response of {} bytes is over the service's limit of {}",
                    response.len(),
                    self.server.reg.max_response
                ),
            });
        }
        self.answered = true;
        let server = self.server_handle();
        server.finish(&mut self, OK, response);
        Ok(())
    }

    /// Tells the client its request could not be decoded (typed services).
    pub(crate) fn reject_undecodable(mut self) {
        self.answered = true;
        let server = self.server_handle();
        server.finish(&mut self, UNDECODABLE, &[]);
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if !self.answered {
            // Answers through a handle of its own: `finish` takes the request too.
            let server = self.server_handle();
            server.finish(self, DROPPED, &[]);
        }
    }
}
