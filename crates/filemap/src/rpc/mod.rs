//! Request-response between processes: servers (one, or several sharing
//! the work) and any number of clients on one named service. Each request
//! gets exactly one response, delivered to the client that sent it and
//! matched by an id; a client may have many requests in flight, and their
//! responses may come in any order.
//!
//! ```
//! use filemap::rpc::{Client, Config, Server};
//! use std::time::Duration;
//!
//! // The server process:
//! let server = Server::create("filemap-doc-rpc", &Config::new().max_request(64).max_response(64))?;
//! // A client process (here the same, for brevity):
//! let mut client = Client::open("filemap-doc-rpc")?;
//!
//! let id = client.send_request(b"2+3")?;           // the request is on its way
//! let req = server.recv_request_timeout(Duration::from_secs(5))?;
//! assert_eq!(req.data(), b"2+3");
//! req.respond(b"5")?;                              // to that client, for that id
//! assert_eq!(client.response_timeout(id, Duration::from_secs(5))?, b"5");
//!
//! // Or in one call (with a server answering in another process or thread).
//! # let t = std::thread::spawn(move || { let r = server.recv_request()?; r.respond(b"ok") });
//! assert_eq!(client.call_timeout(b"ping", Duration::from_secs(5))?, b"ok");
//! # t.join().unwrap()?;
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # The waiting forms
//!
//! | client | server |
//! |---|---|
//! | `try_call` (sends if the queue has room, never waits; collect with `try_response`/`response*`) | `try_recv_request` |
//! | `call`, `call_timeout`, `call_deadline` | `recv_request`, `recv_request_timeout`, `recv_request_deadline` |
//! | `call_async` | `recv_request_async` |
//! | `send_request` + `response`, `response_timeout`, `response_deadline`, `response_async` (many in flight) | a [`Server`] in a [`crate::wait::WaitSet`] |
//!
//! # Crashes
//!
//! - **A client dies**: responses to its requests are dropped (its slot's
//!   generation no longer matches them); servers let go of its response
//!   channel within about [`MAINTENANCE`], so its name is removed, and a new
//!   client may take its slot. The service keeps serving the others.
//! - **A server dies**: each request it had taken and not answered fails
//!   in its client with [`Error::PeerGone`]: the client, waiting, looks at
//!   the servers every 10 ms (every [`crate::wait::ASYNC_LIVENESS`] in the
//!   async forms), and a server that starts or does its maintenance sends
//!   the dead one's clients that answer. When no server is left, every
//!   pending call fails with [`Error::PeerGone`]; requests still queued
//!   stay for a server that starts later ([`Server::open`]: it takes over).
//! - **A hostile client** may send anything: a request too short for its
//!   header, or naming a client slot out of range, is counted
//!   ([`Server::rejected`]) and skipped, never returned as an error that
//!   would end a server's loop; responses to a slot of another client carry
//!   ids that client is not waiting for, and it drops them.
//!
//! Not covered: a server killed in the instant between taking a request off
//! the queue and recording it (a handful of instructions) loses that
//! request without a trace; its caller waits for its deadline (or gets
//! `PeerGone` when no server is left). And a server holding more than
//! [`HANDS`] unanswered requests at once records only the first ones.
//!
//! # Design
//!
//! A service `S` is three kinds of named objects:
//! - `S`, the registry (a segment of kind `service`): the configuration,
//!   a table of [`SERVERS`] server slots (each the server's owner word,
//!   and [`HANDS`] entries naming the requests it holds), and a table of
//!   client slots (each an owner word and a generation);
//! - `S.requests`, an [mpmc](crate::channel::mpmc) channel: every client
//!   sends, every server receives; a request is `[client tag u64][id
//!   u64][payload]`, the tag being the client's slot and generation;
//! - `S.c<slot>.<generation>`, one mpmc channel per client: the servers
//!   send, the client receives; a response is `[id u64][status u64][payload]`.

mod client;
mod server;
#[cfg(test)]
mod tests;
mod typed;

pub use client::{Client, RequestId, ResponseFuture};
pub use server::{OwnedRequest, Request, Server};
pub use typed::{TypedClient, TypedRequest, TypedServer};

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::mapping::{MessageType, Options};
use crate::segment::{fingerprint, Kind, Segment, Spec, HEADER_LEN};
use crate::sys;

/// Server slots in a service.
pub const SERVERS: usize = 16;
/// Unanswered requests a server records at once (see "Crashes").
pub const HANDS: usize = 64;
/// How often a server lets go of the response channels of clients that
/// died (at the latest; it also looks whenever it waits).
pub const MAINTENANCE: Duration = Duration::from_millis(100);

// The registry's layout, after the segment header.
/// u32: 1 once the creator wrote the configuration below.
const CONFIGURED: usize = HEADER_LEN;
const MAX_REQUEST: usize = HEADER_LEN + 8; // u64
const MAX_RESPONSE: usize = HEADER_LEN + 16; // u64
const RESPONSE_SLOTS: usize = HEADER_LEN + 24; // u64
const CLIENTS: usize = HEADER_LEN + 32; // u64
/// The response type (as the segment header records the request type):
/// size u32, alignment u32 (0: untyped), identity hash u64, 32 bytes of name.
const RESPONSE_TYPE: usize = HEADER_LEN + 64;
const SERVER_TABLE: usize = HEADER_LEN + 128;
/// A server slot: its owner word, then the hands from `HAND0`.
const SERVER_SLOT: usize = 64 + HANDS * 16;
const HAND0: usize = 64;
const CLIENT_TABLE: usize = SERVER_TABLE + SERVERS * SERVER_SLOT;
/// A client slot: owner word (u64), generation (u64).
const CLIENT_SLOT: usize = 16;
/// Version of the request and response formats and of the tables.
const RPC_FORMAT: u64 = 1;

/// Response statuses.
const OK: u64 = 0;
/// The server dropped the request without answering it.
const DROPPED: u64 = 1;
/// The server that took the request died before answering (sent by the
/// server that found it dead).
const SERVER_DIED: u64 = 2;
/// The server could not decode the request (a typed service).
const UNDECODABLE: u64 = 3;

/// Polls of a channel before a waiting call computes deadlines and parks
/// (a peer answering at once is caught without a look at the clock).
const SPINS: u32 = 2_000;

/// Hashes request ids (sequential numbers, chosen by this process: no
/// attacker picks them) with one multiplication; std's SipHash cost a
/// round trip tens of nanoseconds.
#[derive(Debug, Default, Clone, Copy)]
struct IdHash(u64);

impl std::hash::Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdBuild = std::hash::BuildHasherDefault<IdHash>;
type IdSet = std::collections::HashSet<u64, IdBuild>;
type IdMap<V> = std::collections::HashMap<u64, V, IdBuild>;

/// Request and response headers.
const REQ_HEADER: usize = 16;
const RESP_HEADER: usize = 16;

fn spec() -> Spec {
    Spec {
        kind: Kind::Service,
        fingerprint: fingerprint(
            Kind::Service,
            &[
                CONFIGURED as u64,
                RESPONSE_TYPE as u64,
                SERVER_TABLE as u64,
                SERVERS as u64,
                SERVER_SLOT as u64,
                HANDS as u64,
                CLIENT_SLOT as u64,
                REQ_HEADER as u64,
                RESP_HEADER as u64,
                RPC_FORMAT,
            ],
        ),
    }
}

/// A service's shape, fixed by the server that creates it.
///
/// ```
/// use filemap::rpc::Config;
/// let c = Config::new().max_request(256).max_response(4096).clients(8);
/// assert_eq!(c.max_request_value(), 256);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    max_request: u64,
    max_response: u64,
    request_slots: u64,
    response_slots: u64,
    clients: u64,
    request_type: Option<MessageType>,
    response_type: Option<MessageType>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// Requests and responses of up to 4 KiB, 64 queued requests, 64
    /// responses in flight per client, 64 clients at once.
    pub fn new() -> Config {
        Config {
            max_request: 4096,
            max_response: 4096,
            request_slots: 64,
            response_slots: 64,
            clients: 64,
            request_type: None,
            response_type: None,
        }
    }

    /// The largest request, in bytes.
    pub fn max_request(mut self, bytes: u64) -> Config {
        self.max_request = bytes;
        self
    }

    /// The largest response, in bytes.
    pub fn max_response(mut self, bytes: u64) -> Config {
        self.max_response = bytes;
        self
    }

    /// Requests the queue holds (rounded up to a power of two).
    pub fn request_slots(mut self, n: u64) -> Config {
        self.request_slots = n;
        self
    }

    /// Requests one client may have in flight (its response channel's
    /// slots, rounded up to a power of two).
    pub fn in_flight_per_client(mut self, n: u64) -> Config {
        self.response_slots = n;
        self
    }

    /// Clients connected at once.
    pub fn clients(mut self, n: u64) -> Config {
        self.clients = n;
        self
    }

    /// The largest request set.
    pub fn max_request_value(&self) -> u64 {
        self.max_request
    }

    /// Records the types of requests and responses (what the typed
    /// forms do; bindings with no Rust type use this).
    pub fn message_types(mut self, request: MessageType, response: MessageType) -> Config {
        self.request_type = Some(request);
        self.response_type = Some(response);
        self
    }
}

/// The registry of a service, checked.
#[derive(Debug)]
pub(crate) struct Registry {
    seg: Segment,
    name: String,
    max_request: usize,
    max_response: usize,
    response_slots: u64,
    clients: u32,
}

fn requests_name(name: &str) -> String {
    format!("{name}.requests")
}

fn response_name(name: &str, slot: u32, gen: u32) -> String {
    format!("{name}.c{slot}.{gen}")
}

/// The tag a request carries: slot + 1 (so 0 is no tag) and generation.
fn tag_of(slot: u32, gen: u32) -> u64 {
    (u64::from(slot) + 1) << 32 | u64::from(gen)
}

fn slot_of(tag: u64) -> Option<(u32, u32)> {
    let slot = (tag >> 32) as u32;
    slot.checked_sub(1).map(|s| (s, tag as u32))
}

impl Registry {
    fn create(name: &str, config: &Config, opts: &Options) -> Result<Registry> {
        let bad = |reason: String| Error::InvalidSize {
            object: name.to_owned(),
            reason,
        };
        if config.clients == 0 || config.clients > 1 << 16 {
            return Err(bad(format!(
                "{} clients: must be 1 to 65536",
                config.clients
            )));
        }
        if config.max_request > u64::from(u32::MAX) - REQ_HEADER as u64
            || config.max_response > u64::from(u32::MAX) - RESP_HEADER as u64
        {
            return Err(bad("requests and responses must be under 4 GiB".into()));
        }
        let total = CLIENT_TABLE as u64 + config.clients * CLIENT_SLOT as u64;
        let mut opts = opts.clone();
        if let Some(t) = &config.request_type {
            opts = opts.message_type(t.clone());
        }
        let seg = Segment::create(name, &opts, spec(), config.clients, 0, total)?;
        let v = seg.view();
        let put64 = |off: usize, x: u64| seg.a64(off).store(x, Ordering::Relaxed);
        put64(MAX_REQUEST, config.max_request);
        put64(MAX_RESPONSE, config.max_response);
        put64(RESPONSE_SLOTS, config.response_slots.max(1));
        put64(CLIENTS, config.clients);
        if let Some(t) = &config.response_type {
            let mut b = [0u8; 48];
            b[..4].copy_from_slice(&(t.size() as u32).to_ne_bytes());
            b[4..8].copy_from_slice(&(t.align() as u32).to_ne_bytes());
            b[8..16].copy_from_slice(&t.identity_hash().to_ne_bytes());
            let id = t.stored_identity();
            b[16..16 + id.len()].copy_from_slice(id.as_bytes());
            v.write_at(RESPONSE_TYPE, &b)?;
        }
        // Everything above happens-before an opener's acquire of this.
        seg.a32(CONFIGURED).store(1, Ordering::Release);
        Registry::checked(seg, name)
    }

    fn open(name: &str, opts: &Options, request_type: Option<&MessageType>) -> Result<Registry> {
        let mut opts = opts.clone();
        if let Some(t) = request_type {
            opts = opts.message_type(t.clone());
        }
        let seg = Segment::open(name, &opts, spec())?;
        let started = std::time::Instant::now();
        while seg.a32(CONFIGURED).load(Ordering::Acquire) != 1 {
            if started.elapsed() >= opts.ready_timeout_value() {
                return Err(Error::NotReady {
                    object: name.to_owned(),
                    waited: started.elapsed(),
                    reason: "its creator has not finished configuring the service".into(),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Registry::checked(seg, name)
    }

    /// Reads the configuration (written by whoever could write the
    /// segment: checked before use).
    fn checked(seg: Segment, name: &str) -> Result<Registry> {
        let get = |off: usize| seg.a64(off).load(Ordering::Relaxed);
        let (max_request, max_response, response_slots, clients) = (
            get(MAX_REQUEST),
            get(MAX_RESPONSE),
            get(RESPONSE_SLOTS),
            get(CLIENTS),
        );
        let room = seg.header().total_len.saturating_sub(CLIENT_TABLE as u64) / CLIENT_SLOT as u64;
        if clients == 0
            || clients > room
            || max_request > u64::from(u32::MAX)
            || max_response > u64::from(u32::MAX)
            || response_slots == 0
            || response_slots > 1 << 20
        {
            return Err(Error::Corrupt {
                object: name.to_owned(),
                reason: format!(
                    "its configuration ({clients} clients, requests of {max_request} bytes, \
                     responses of {max_response} bytes, {response_slots} in flight) is invalid"
                ),
            });
        }
        Ok(Registry {
            seg,
            name: name.to_owned(),
            max_request: max_request as usize,
            max_response: max_response as usize,
            response_slots,
            clients: clients as u32,
        })
    }

    /// `Err(Incompatible)` unless the service's responses are of type `want`.
    fn check_response_type(&self, want: &MessageType) -> Result<()> {
        let mut b = [0u8; 48];
        self.seg.view().read_at(RESPONSE_TYPE, &mut b)?;
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let hash = u64::from_ne_bytes(b[8..16].try_into().expect("8 bytes"));
        let (size, align) = (u32_at(0), u32_at(4));
        let name_end = b[16..].iter().position(|&c| c == 0).map_or(48, |e| 16 + e);
        let have = MessageType::new(
            &String::from_utf8_lossy(&b[16..name_end]),
            u64::from(size),
            u64::from(align.max(1)),
        );
        let same = align != 0
            && (hash, u64::from(size), u64::from(align))
                == (want.identity_hash(), want.size(), want.align());
        if same {
            return Ok(());
        }
        let reason = match (align, have) {
            (0, _) | (_, Err(_)) => {
                format!("its responses are untyped bytes, and this process expects {want}")
            }
            (_, Ok(have)) => {
                format!("its responses are of type {have}, and this process expects {want}")
            }
        };
        Err(Error::Incompatible {
            object: self.name.clone(),
            reason,
        })
    }

    fn server_owner(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        self.seg.a64(SERVER_TABLE + i * SERVER_SLOT)
    }

    fn hand_tag(&self, server: usize, hand: usize) -> &std::sync::atomic::AtomicU64 {
        self.seg
            .a64(SERVER_TABLE + server * SERVER_SLOT + HAND0 + hand * 16)
    }

    fn hand_id(&self, server: usize, hand: usize) -> &std::sync::atomic::AtomicU64 {
        self.seg
            .a64(SERVER_TABLE + server * SERVER_SLOT + HAND0 + hand * 16 + 8)
    }

    fn client_owner(&self, slot: u32) -> &std::sync::atomic::AtomicU64 {
        self.seg.a64(CLIENT_TABLE + slot as usize * CLIENT_SLOT)
    }

    fn client_gen(&self, slot: u32) -> &std::sync::atomic::AtomicU64 {
        self.seg.a64(CLIENT_TABLE + slot as usize * CLIENT_SLOT + 8)
    }

    /// Whether the client `slot` of generation `gen` is still there (its
    /// owner alive, when `check_alive`; else only the generation).
    fn client_current(&self, slot: u32, gen: u32, check_alive: bool) -> bool {
        if slot >= self.clients {
            return false;
        }
        let owner = self.client_owner(slot).load(Ordering::Acquire);
        if owner == 0 || self.client_gen(slot).load(Ordering::Acquire) as u32 != gen {
            return false;
        }
        !check_alive || sys::owner_alive(owner) != Some(false)
    }

    /// Takes a free client slot (or one whose owner died): its index and new generation.
    fn claim_client(&self) -> Result<(u32, u32)> {
        let me = sys::owner_word(std::process::id());
        for slot in 0..self.clients {
            let owner = self.client_owner(slot);
            let cur = owner.load(Ordering::Acquire);
            if cur != 0 && sys::owner_alive(cur) != Some(false) {
                continue;
            }
            if owner
                .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let gen = self
                    .client_gen(slot)
                    .fetch_add(1, Ordering::AcqRel)
                    .wrapping_add(1);
                return Ok((slot, gen as u32));
            }
        }
        Err(Error::Busy {
            object: self.name.clone(),
            reason: format!(
                "all its {} client slots are taken by live processes (Config::clients)",
                self.clients
            ),
        })
    }

    /// Servers registered whose process runs, and the dead ones.
    fn servers(&self) -> (usize, Vec<usize>) {
        let (mut live, mut dead) = (0, Vec::new());
        for i in 0..SERVERS {
            let owner = self.server_owner(i).load(Ordering::Acquire);
            if owner == 0 {
                continue;
            }
            match sys::owner_alive(owner) {
                Some(false) => dead.push(i),
                _ => live += 1,
            }
        }
        (live, dead)
    }

    /// The ids of the requests of client `tag` that dead server `i` held.
    fn held_by(&self, i: usize, tag: u64) -> Vec<u64> {
        (0..HANDS)
            .filter(|&h| self.hand_tag(i, h).load(Ordering::Acquire) == tag)
            .map(|h| self.hand_id(i, h).load(Ordering::Acquire))
            .collect()
    }
}

/// What a service's registry says, for tools (`filemap info`): read
/// through a read-only view, without joining the service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The largest request.
    pub max_request: u64,
    /// The largest response.
    pub max_response: u64,
    /// Client slots.
    pub client_slots: u64,
    /// The type of requests, for a typed service.
    pub request_type: Option<MessageType>,
    /// The type of responses, for a typed service.
    pub response_type: Option<MessageType>,
    /// The pids of the servers registered whose process runs.
    pub servers: Vec<u32>,
    /// The pids of the clients connected whose process runs.
    pub clients: Vec<u32>,
}

/// Reads the registry of the service `name` (see [`ServiceInfo`]).
///
/// # Errors
/// As [`crate::Mapping::open`] (read-only); [`Error::Incompatible`] for an
/// object that is not a service; [`Error::Corrupt`] for a registry whose
/// sizes do not check out.
pub fn inspect(name: &str) -> Result<ServiceInfo> {
    let m = crate::mapping::Mapping::open(name, crate::mapping::Access::Read)?;
    let v = m.view(.., crate::mapping::ViewAccess::Read)?;
    let h = crate::segment::read_header(&v)?.filter(|h| h.kind == Kind::Service && h.ready);
    let Some(h) = h else {
        return Err(Error::Incompatible {
            object: name.to_owned(),
            reason: "it is not a ready request-response service registry".into(),
        });
    };
    let len = (v.len() as u64).min(h.total_len);
    let corrupt = |reason: String| Error::Corrupt {
        object: name.to_owned(),
        reason,
    };
    if len < CLIENT_TABLE as u64 {
        return Err(corrupt(format!("its registry is {len} bytes, too small")));
    }
    let mut b = vec![0u8; len as usize];
    v.read_at(0, &mut b)?;
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let slots = u64_at(CLIENTS).min((len - CLIENT_TABLE as u64) / CLIENT_SLOT as u64);
    let live = |owner: u64| owner != 0 && sys::owner_alive(owner) != Some(false);
    let servers = (0..SERVERS)
        .map(|i| u64_at(SERVER_TABLE + i * SERVER_SLOT))
        .filter(|&o| live(o))
        .map(|o| o as u32)
        .collect();
    let clients = (0..slots as usize)
        .map(|i| u64_at(CLIENT_TABLE + i * CLIENT_SLOT))
        .filter(|&o| live(o))
        .map(|o| o as u32)
        .collect();
    let response_type = match u32_at(RESPONSE_TYPE + 4) {
        0 => None,
        align => {
            let raw = &b[RESPONSE_TYPE + 16..RESPONSE_TYPE + 48];
            let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
            Some(MessageType::recorded(
                String::from_utf8_lossy(&raw[..end]).into_owned(),
                u32_at(RESPONSE_TYPE),
                align,
                u64_at(RESPONSE_TYPE + 8),
            ))
        }
    };
    Ok(ServiceInfo {
        max_request: u64_at(MAX_REQUEST),
        max_response: u64_at(MAX_RESPONSE),
        client_slots: slots,
        request_type: h.message_type.clone(),
        response_type,
        servers,
        clients,
    })
}
