//! Bridges [`filemap`] channels and `Latest` cells to other hosts
//! over [Zenoh](https://zenoh.io): the producer on one machine and the
//! consumer on another keep their filemap code, and a bridge on each host
//! carries the messages between them.
//!
//! ```no_run
//! use filemap_zenoh::{Bridge, Config, Route};
//!
//! // Host A: publish the local broadcast channel `sensors` on `demo/sensors`,
//! // and write what comes on `demo/cmds` into the local channel `cmds`.
//! let mut config = Config::new(zenoh::Config::default());
//! config
//!     .zenoh
//!     .insert_json5("listen/endpoints", r#"["tcp/0.0.0.0:7447"]"#)
//!     .expect("a valid Zenoh setting");
//! config
//!     .route(Route::out("sensors", "demo/sensors")?)
//!     .route(Route::into_local("demo/cmds", "cmds")?);
//! let bridge = Bridge::new(config)?;
//! let stop = bridge.stopper(); // stop.stop() from another thread ends run()
//! bridge.run()?;
//! for route in bridge.stats() {
//!     println!("{}: {} messages, {} lost", route.route, route.messages, route.lost);
//! }
//! # Ok::<(), filemap_zenoh::Error>(())
//! ```
//!
//! # What a bridge guarantees
//!
//! - **Bytes and boundaries.** One local message is one Zenoh sample, its
//!   payload the message's bytes unchanged; a plain Zenoh subscriber reads
//!   them as sent. What the bridge adds rides in the sample's attachment
//!   (see [`wire`]).
//! - **Loss is counted.** Each route numbers what it publishes; a receiving
//!   route counts the gaps, per publishing bridge ([`RouteStats::lost`],
//!   [`RouteStats::origins`]). What the local side skipped before the
//!   bridge read it (a broadcast receiver lapped, `Latest` values
//!   overwritten between two looks) is counted on the sending side and shows
//!   as a gap on the receiving side too.
//! - **No loops.** A route's subscription ignores samples from its own
//!   session (Zenoh's `Locality::Remote`) and any sample stamped with its own
//!   bridge's id, and a bridge refuses a configuration in which one local
//!   object is both the source of an Out route and the target of an In
//!   route: it never re-publishes what it injected.
//! - **Backpressure is chosen per route** ([`Backpressure`]): `block` (the
//!   default for spsc and mpmc) loses nothing and holds the producer back;
//!   `drop` (the default for broadcast and `Latest`) never waits and counts
//!   what it dropped.
//! - **Restarts heal.** Zenoh reconnects a restarted peer on its own; a
//!   local object that goes away (its peer died, it was removed) is reopened
//!   by name once it is back, and its route resumes.
//!
//! # Local objects
//!
//! A route names a local object; its kind is read from its header when the
//! route opens it. Until the object exists the route waits for it, looking
//! every 100 ms. Out routes read from an spsc channel (as its receiver), an
//! mpmc channel (as one more receiver), a broadcast channel (as one more
//! receiver) or a `Latest` cell (polled, see [`Route::poll`]). In routes
//! write into an spsc channel (as its sender), an mpmc channel, a broadcast
//! channel (as its sender) or a `Latest` cell (as its writer; samples of
//! another size are refused and counted).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Locality, Sample};
use zenoh::{Session, Wait};

/// The Zenoh crate this bridge is built on (for its `Config`).
pub use zenoh;

mod config;
mod local;
mod route;
pub mod wire;
mod worker;

pub use config::Config;
pub use route::{Backpressure, Direction, LocalKind, Route, DEFAULT_POLL};

use local::{Put, Sink, Source, SLICE};
use wire::{Stamp, Tracker};
use worker::Worker;

/// Why a bridge could not be made or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A route that cannot be: bad name or key expression, or routes that
    /// would loop.
    #[error("route `{route}`: {reason}")]
    Route {
        /// The route as written.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration file or text that cannot be used.
    #[error("bridge configuration: {0}")]
    Config(String),
    /// Zenoh refused (opening the session, declaring a publisher or
    /// subscriber, or a session closed under the bridge).
    #[error("zenoh: {0}")]
    Zenoh(String),
}

fn zerr(what: &str) -> impl FnOnce(zenoh::Error) -> Error + '_ {
    move |e| Error::Zenoh(format!("{what}: {e}"))
}

/// How often a route looks again for a local object that is not there.
const REOPEN_EVERY: Duration = Duration::from_millis(100);
/// A route shares its counters after this many messages (and when idle).
const SHARE_EVERY: u64 = 256;

/// What a route is doing. Reports and JSON give it as text: `starting`,
/// `running`, `waiting ...` (for what), `reopening ...` (why), `stopped`,
/// `failed: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteState {
    /// Not yet started.
    Starting,
    /// Carrying messages.
    Running,
    /// Waiting; the text says for what (`for `x` to exist`, `for a
    /// subscriber on K`) or, starting with `:`, after which error.
    Waiting(String),
    /// Reopening its local object after an error; the text says which and why.
    Reopening(String),
    /// Ended because the bridge stopped.
    Stopped,
    /// Ended by an error (which stops the bridge).
    Failed(String),
}

impl std::fmt::Display for RouteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteState::Starting => f.write_str("starting"),
            RouteState::Running => f.write_str("running"),
            RouteState::Waiting(what) if what.starts_with(':') => write!(f, "waiting{what}"),
            RouteState::Waiting(what) => write!(f, "waiting {what}"),
            RouteState::Reopening(why) => write!(f, "reopening {why}"),
            RouteState::Stopped => f.write_str("stopped"),
            RouteState::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl Serialize for RouteState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What one route has done so far (see [`Bridge::stats`]).
#[derive(Debug, Clone, Serialize)]
pub struct RouteStats {
    /// The route, as `out NAME -> KEY` or `in KEY -> NAME`.
    pub route: String,
    /// Which way it flows.
    pub direction: Direction,
    /// The local object's name.
    pub local: String,
    /// The key expression.
    pub key: String,
    /// The local object's kind, once it has been opened.
    pub kind: Option<LocalKind>,
    /// The backpressure in force, once the kind is known.
    pub backpressure: Option<Backpressure>,
    /// What the route is doing: [`RouteState::Running`], or what it waits
    /// for (its text in reports and JSON: `running`, `waiting ...`).
    pub state: RouteState,
    /// Out: whether any subscriber (of another session) matches its key.
    pub matched: Option<bool>,
    /// Messages carried (Out: published; In: written into the local object).
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages lost. In: gaps in the sequence numbers received. Out:
    /// messages the local object dropped before the bridge read them (a
    /// broadcast receiver lapped, `Latest` values overwritten between looks).
    pub lost: u64,
    /// In: jumps in an origin's numbers that no honest stream can make (a
    /// forged stamp, or a stream that started over), counted here rather
    /// than as lost (see [`wire::Progress::resets`]).
    pub resets: u64,
    /// In, drop mode: messages dropped because the local channel was full.
    pub dropped: u64,
    /// In: messages the local object refused (too large for the channel, or
    /// not the size of the `Latest` cell).
    pub rejected: u64,
    /// In: samples without a filemap stamp (from plain Zenoh publishers);
    /// delivered, but their losses cannot be counted.
    pub foreign: u64,
    /// In: samples stamped by this very bridge, ignored (a loop).
    pub echoes: u64,
    /// Times the local object was reopened (its peer died, it was removed
    /// and made again, it was found damaged).
    pub reopened: u64,
    /// The last problem met, if any.
    pub last_error: Option<String>,
    /// In: per publishing bridge, what was received from it.
    pub origins: Vec<OriginStats>,
}

/// What an In route received from one publishing bridge (one run of it).
#[derive(Debug, Clone, Serialize)]
pub struct OriginStats {
    /// The publishing bridge's id (see [`Bridge::id`]).
    pub origin: String,
    /// The first sequence number received from it: a route that joins, or
    /// rejoins after its bridge restarted, mid-stream starts here.
    pub first_seq: u64,
    /// The highest sequence number received.
    pub last_seq: u64,
    /// Messages received.
    pub received: u64,
    /// Gaps in the numbers.
    pub lost: u64,
    /// Numbers at or below one already received.
    pub out_of_order: u64,
    /// Jumps no honest stream can make (a forged stamp, or a stream that
    /// started over): not counted as lost ([`wire::Progress::resets`]).
    pub resets: u64,
}

impl RouteStats {
    fn new(r: &Route) -> RouteStats {
        RouteStats {
            route: r.to_string(),
            direction: r.direction(),
            local: r.local().to_owned(),
            key: r.key().to_owned(),
            kind: None,
            backpressure: r.chosen_backpressure(),
            state: RouteState::Starting,
            matched: None,
            messages: 0,
            bytes: 0,
            lost: 0,
            resets: 0,
            dropped: 0,
            rejected: 0,
            foreign: 0,
            echoes: 0,
            reopened: 0,
            last_error: None,
            origins: Vec::new(),
        }
    }
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Ends a running [`Bridge`] from another thread (or a signal handler).
#[derive(Debug, Clone)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    /// Asks the bridge to stop; [`Bridge::run`] returns within about 100 ms.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A bridge: one Zenoh session and its routes (see the [crate] docs).
pub struct Bridge {
    session: Session,
    id: [u8; 16],
    routes: Vec<Route>,
    stop: Arc<AtomicBool>,
    stats: Vec<Arc<Mutex<RouteStats>>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("id", &self.id())
            .field("routes", &self.routes)
            .finish()
    }
}

impl Bridge {
    /// Checks the routes and opens the Zenoh session (which connects and
    /// listens as its configuration says). Routes start with [`run`](Self::run).
    ///
    /// # Errors
    /// [`Error::Config`] without routes; [`Error::Route`] when one local
    /// object is both the source of an Out route and the target of an In
    /// route (the bridge would re-publish what it injected); [`Error::Zenoh`]
    /// when Zenoh cannot open the session (a bad endpoint, a port in use).
    pub fn new(config: Config) -> Result<Bridge, Error> {
        let Config { zenoh, .. } = &config;
        let routes = config.routes().to_vec();
        if routes.is_empty() {
            return Err(Error::Config("no routes: give at least one".into()));
        }
        for out in routes.iter().filter(|r| r.direction() == Direction::Out) {
            if let Some(inb) = routes
                .iter()
                .find(|r| r.direction() == Direction::In && r.local() == out.local())
            {
                return Err(Error::Route {
                    route: out.to_string(),
                    reason: format!(
                        "`{}` is also the target of `{inb}`: the bridge would publish again what \
                         it wrote there; use two local objects",
                        out.local()
                    ),
                });
            }
        }
        let session = zenoh::open(zenoh.clone())
            .wait()
            .map_err(zerr("cannot open a session"))?;
        let id = session.zid().to_le_bytes();
        let stats = routes
            .iter()
            .map(|r| Arc::new(Mutex::new(RouteStats::new(r))))
            .collect();
        Ok(Bridge {
            session,
            id,
            routes,
            stop: Arc::new(AtomicBool::new(false)),
            stats,
        })
    }

    /// This bridge's id (its Zenoh session id, new for every run), as it
    /// appears in a receiving route's [`OriginStats::origin`].
    pub fn id(&self) -> String {
        hex(&self.id)
    }

    /// The Zenoh session, to learn about it (`session().info()`) or to use it
    /// for more.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// A handle that stops [`run`](Self::run).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Each route's counters, as last shared by the route (at most
    /// 256 messages, or 100 ms, old while it runs; exact once `run` returned).
    pub fn stats(&self) -> Vec<RouteStats> {
        self.stats.iter().map(|s| lock(s).clone()).collect()
    }

    /// Runs every route, one thread each, until [`Stopper::stop`] is called.
    ///
    /// # Errors
    /// [`Error::Zenoh`] when Zenoh refuses a route's publisher or
    /// subscriber, or the session fails under it; the other routes are then
    /// stopped too. Problems with local objects are not errors: the route
    /// reports them in its [`RouteStats::state`] and tries again.
    pub fn run(&self) -> Result<(), Error> {
        std::thread::scope(|s| {
            let workers: Vec<_> = self
                .routes
                .iter()
                .zip(&self.stats)
                .map(|(route, shared)| {
                    s.spawn(move || {
                        let w = Worker {
                            stop: self.stop.clone(),
                            id: self.id,
                            route: route.clone(),
                            shared: shared.clone(),
                            st: RouteStats::new(route),
                            matching: None,
                        };
                        let r = match route.direction() {
                            Direction::Out => w.run_out(&self.session),
                            Direction::In => w.run_in(&self.session),
                        };
                        let mut st = lock(shared);
                        if let Err(e) = &r {
                            st.state = RouteState::Failed(e.to_string());
                            st.last_error = Some(e.to_string());
                            // One route failing stops the bridge.
                            self.stop.store(true, Ordering::Release);
                        } else {
                            st.state = RouteState::Stopped;
                        }
                        r
                    })
                })
                .collect();
            let mut first = Ok(());
            for w in workers {
                let r = w.join().unwrap_or_else(|_| {
                    self.stop.store(true, Ordering::Release);
                    Err(Error::Zenoh("a route's thread panicked".into()))
                });
                if first.is_ok() {
                    first = r;
                }
            }
            first
        })
    }
}

fn lock(m: &Mutex<RouteStats>) -> MutexGuard<'_, RouteStats> {
    // Counters stay meaningful even if a route panicked while sharing them.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
