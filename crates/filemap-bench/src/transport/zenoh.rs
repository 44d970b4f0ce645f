//! Zenoh between the two processes (the `zenoh` feature), over TCP on
//! 127.0.0.1 with multicast scouting off:
//!
//! - [`TransportKind::ZenohPubSub`]: plain Zenoh, as a user would write it: each
//!   process has a session; the parent publishes on `ping` and takes `pong`
//!   from a subscriber's FIFO queue; the child echoes (`recv`, then `put`).
//! - [`TransportKind::ZenohBridge`]: filemap spsc channels carried by two
//!   `filemap_zenoh` bridges, one in each process (on its own threads, with
//!   its own session): the parent sends into its local channel, its bridge
//!   publishes, the child's bridge writes into the child's local channel,
//!   and back. Its cost over the row above is the bridge's own.
//!
//! The parent listens on a free loopback port, which it hands to the child
//! in a small mapping (`NAME.port`).

use std::io::Read;
use std::process::Child;
use std::time::{Duration, Instant};

use filemap::channel::spsc::{Receiver, Sender};
use filemap::{Access, Mapping, ViewAccess};
use filemap_zenoh::zenoh::handlers::FifoChannelHandler;
use filemap_zenoh::zenoh::pubsub::{Publisher, Subscriber};
use filemap_zenoh::zenoh::qos::CongestionControl;
use filemap_zenoh::zenoh::sample::Sample;
use filemap_zenoh::zenoh::{self, Session, Wait};
use filemap_zenoh::{Bridge, Route};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};
use crate::TransportKind;

/// How long either side waits for the other's subscriptions to be known.
const MATCH_DEADLINE: Duration = Duration::from_secs(30);

pub(crate) struct Zenoh;

fn zerr(e: impl std::fmt::Display) -> BenchError {
    BenchError::library("zenoh", e)
}

fn config(listen: Option<u16>, connect: Option<u16>) -> Result<zenoh::Config> {
    let mut c = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: String| c.insert_json5(k, &v).map_err(zerr);
    set(&mut c, "scouting/multicast/enabled", "false".into())?;
    set(&mut c, "scouting/gossip/enabled", "false".into())?;
    let port = listen.unwrap_or(0);
    set(
        &mut c,
        "listen/endpoints",
        format!(r#"["tcp/127.0.0.1:{port}"]"#),
    )?;
    if let Some(p) = connect {
        set(
            &mut c,
            "connect/endpoints",
            format!(r#"["tcp/127.0.0.1:{p}"]"#),
        )?;
    }
    Ok(c)
}

fn key(case: &Case, what: &str) -> String {
    format!("fm-bench/{}/{what}", case.name)
}

/// Waits until `cond` holds (a peer's subscription became known).
fn wait_for(what: &str, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let end = Instant::now() + MATCH_DEADLINE;
    while !cond()? {
        if Instant::now() > end {
            return Err(BenchError::Peer(format!(
                "{what}: not within {MATCH_DEADLINE:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn publisher(s: &Session, key: String) -> Result<Publisher<'static>> {
    s.declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(zerr)
}

fn subscriber(s: &Session, key: String) -> Result<Subscriber<FifoChannelHandler<Sample>>> {
    s.declare_subscriber(key).wait().map_err(zerr)
}

fn matched(p: &Publisher<'_>) -> Result<bool> {
    Ok(p.matching_status().wait().map_err(zerr)?.matching())
}

/// The port the parent listens on, in the mapping `NAME.port`.
fn share_port(case: &Case, port: u16) -> Result<Mapping> {
    let m = Mapping::create(&case.object("port"), 8)?;
    m.view(.., ViewAccess::ReadWrite)?
        .write_at(0, &port.to_le_bytes())?;
    Ok(m)
}

fn read_port(case: &Case) -> Result<u16> {
    let m = Mapping::open(&case.object("port"), Access::Read)?;
    let mut b = [0u8; 2];
    m.view(.., ViewAccess::Read)?.read_at(0, &mut b)?;
    Ok(u16::from_le_bytes(b))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A bridge running on its own thread until dropped.
pub(crate) struct Running {
    bridge: std::sync::Arc<Bridge>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(listen: Option<u16>, connect: Option<u16>, routes: Vec<Route>) -> Result<Running> {
        let mut c = filemap_zenoh::Config::new(config(listen, connect)?);
        for r in routes {
            c.route(r);
        }
        let bridge = std::sync::Arc::new(Bridge::new(c).map_err(zerr)?);
        let b = bridge.clone();
        let thread = std::thread::spawn(move || {
            if let Err(e) = b.run() {
                eprintln!("bridge: {e}");
            }
        });
        Ok(Running {
            bridge,
            thread: Some(thread),
        })
    }

    /// Until every Out route has a subscriber and every In route runs.
    fn wait_ready(&self) -> Result<()> {
        wait_for("the bridges' routes", || {
            Ok(self.bridge.stats().iter().all(|r| match r.direction {
                filemap_zenoh::Direction::Out => r.matched == Some(true),
                filemap_zenoh::Direction::In => r.state == filemap_zenoh::RouteState::Running,
            }))
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.bridge.stopper().stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) enum Parent {
    Plain {
        _session: Session,
        _port: Mapping,
        ping: Publisher<'static>,
        pong: Subscriber<FifoChannelHandler<Sample>>,
        buf: Vec<u8>,
    },
    Bridged {
        tx: Sender,
        rx: Receiver,
        bridge: Running,
        _port: Mapping,
        buf: Vec<u8>,
    },
}

impl Transport for Zenoh {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let port = free_port()?;
        let shared = share_port(case, port)?;
        let buf = vec![0x5a; case.size];
        if case.kind == TransportKind::ZenohPubSub {
            let session = zenoh::open(config(Some(port), None)?)
                .wait()
                .map_err(zerr)?;
            let ping = publisher(&session, key(case, "ping"))?;
            let pong = subscriber(&session, key(case, "pong"))?;
            return Ok(Parent::Plain {
                _session: session,
                _port: shared,
                ping,
                pong,
                buf,
            });
        }
        let cap = case.ring_capacity();
        let tx = Sender::create(&case.object("ping-a"), cap)?;
        let rx = Receiver::create(&case.object("pong-a"), cap)?;
        let bridge = Running::start(
            Some(port),
            None,
            vec![
                Route::out(&case.object("ping-a"), &key(case, "ping")).map_err(zerr)?,
                Route::into_local(&key(case, "pong"), &case.object("pong-a")).map_err(zerr)?,
            ],
        )?;
        Ok(Parent::Bridged {
            tx,
            rx,
            bridge,
            _port: shared,
            buf,
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let port = read_port(case)?;
        if case.kind == TransportKind::ZenohPubSub {
            let session = zenoh::open(config(None, Some(port))?)
                .wait()
                .map_err(zerr)?;
            let ping = subscriber(&session, key(case, "ping"))?;
            let pong = publisher(&session, key(case, "pong"))?;
            wait_for("the parent's subscription", || matched(&pong))?;
            ready();
            if case.latency() {
                for _ in 0..case.total {
                    let s = ping.recv().map_err(zerr)?;
                    pong.put(s.payload().clone()).wait().map_err(zerr)?;
                }
            } else {
                let msg = vec![0xa5u8; case.size];
                for _ in 0..case.total {
                    pong.put(msg.as_slice()).wait().map_err(zerr)?;
                }
            }
            let _ = std::io::stdin().read(&mut [0u8; 1]);
            drop(session);
            return Ok(());
        }
        let cap = case.ring_capacity();
        let mut rx = Receiver::create(&case.object("ping-b"), cap)?;
        let mut tx = Sender::create(&case.object("pong-b"), cap)?;
        let bridge = Running::start(
            None,
            Some(port),
            vec![
                Route::into_local(&key(case, "ping"), &case.object("ping-b")).map_err(zerr)?,
                Route::out(&case.object("pong-b"), &key(case, "pong")).map_err(zerr)?,
            ],
        )?;
        bridge.wait_ready()?;
        ready();
        if case.latency() {
            let mut buf = vec![0u8; case.size];
            for _ in 0..case.total {
                let m = rx.recv()?;
                m.read_at(0, &mut buf)?;
                drop(m);
                tx.send(&buf)?;
            }
        } else {
            let msg = vec![0xa5u8; case.size];
            for _ in 0..case.total {
                tx.send(&msg)?;
            }
        }
        // The bridge must carry the last messages out before it stops.
        let _ = std::io::stdin().read(&mut [0u8; 1]);
        drop(bridge);
        Ok(())
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, _child: &mut Child, _case: &Case) -> Result<()> {
        match self {
            Parent::Plain { ping, .. } => wait_for("the child's subscription", || matched(ping)),
            Parent::Bridged { bridge, .. } => bridge.wait_ready(),
        }
    }

    #[inline]
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        match self {
            Parent::Plain {
                ping, pong, buf, ..
            } => {
                ping.put(buf.as_slice()).wait().map_err(zerr)?;
                let s = pong.recv().map_err(zerr)?;
                copy_out(&s, buf)
            }
            Parent::Bridged { tx, rx, buf, .. } => {
                tx.send(buf)?;
                let m = rx.recv()?;
                Ok(m.read_at(0, buf)?)
            }
        }
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        match self {
            Parent::Plain { pong, buf, .. } => {
                let s = pong.recv().map_err(zerr)?;
                copy_out(&s, buf)
            }
            Parent::Bridged { rx, buf, .. } => {
                let m = rx.recv()?;
                Ok(m.read_at(0, buf)?)
            }
        }
    }
}

/// Copies the sample's bytes out (as every row reads every byte).
fn copy_out(s: &Sample, buf: &mut [u8]) -> Result<()> {
    let bytes = s.payload().to_bytes();
    if bytes.len() != buf.len() {
        return Err(BenchError::Peer(format!(
            "a sample of {} bytes, expected {}",
            bytes.len(),
            buf.len()
        )));
    }
    buf.copy_from_slice(&bytes);
    Ok(())
}
