//! The catalogue of transports: every row the benchmark can run, with its
//! `--only` code, its label, its family and what it needs ([`TRANSPORTS`]),
//! apart from the driver (`lib.rs`) that times them.

use crate::{BenchError, Result, Scenario};

/// A transport under test, with its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// One cache line per direction in a shared mapping, both sides spinning.
    FloorSpin,
    /// The same words, waiting with futex wait/wake (Linux).
    FloorFutex,
    /// The raw futex ping-pong with the idle gap of [`TransportKind::SpscIdle`] before
    /// each round trip: the like-for-like floor for that row (a CPU left idle
    /// for a while can take longer to wake than one kept busy).
    FloorFutexIdle,
    /// filemap SPSC, busy-polling `try_send`/`try_recv`, copying.
    SpscSpin,
    /// filemap SPSC, busy-polling, writing and reading in place (reserve/commit, borrowed receive).
    SpscZeroCopy,
    /// [`TransportKind::SpscSpin`] with its channels backed by large pages
    /// (`filemap::Options::large_pages`), where the OS offers them.
    SpscLarge,
    /// filemap SPSC, blocking `send`/`recv` (spin briefly, then park).
    SpscBlocking,
    /// [`TransportKind::SpscSpin`] through the C API: both sides are C code
    /// (compiled by the build script) calling `fm_spsc_try_send` and
    /// `fm_spsc_try_recv` of `filemap-c` (the `c` feature).
    SpscC,
    /// filemap SPSC streamed between two programs of their own written as
    /// the docs show (`fm-stream-client`): public API only, blocking, not
    /// pinned, timed from the first send to the last receipt (stream only).
    SpscClient,
    /// filemap SPSC, blocking, with the peer idle: before each round trip
    /// (untimed) the parent waits [`IDLE_GAP`](crate::IDLE_GAP), so that the peer has stopped
    /// spinning and sleeps in the kernel when the message comes; compare
    /// with the raw futex ping-pong.
    SpscIdle,
    /// filemap spsc received through a `WaitSet` of 1 channel (blocking).
    WaitSet1,
    /// The same with 63 idle channels in each side's set.
    WaitSet64,
    /// The same with 999 idle channels in each side's set.
    WaitSet1000,
    /// [`TransportKind::WaitSet1`] with the idle gap of [`TransportKind::SpscIdle`].
    WaitSetIdle,
    /// [`TransportKind::WaitSet64`] with the idle gap.
    WaitSet64Idle,
    /// filemap spsc awaited (`send_async`/`recv_async`) on a tokio
    /// current-thread runtime.
    AsyncCurrent,
    /// The same on a tokio multi-thread runtime (the child echoes on a
    /// worker thread).
    AsyncMulti,
    /// [`TransportKind::AsyncCurrent`] with the idle gap of [`TransportKind::SpscIdle`].
    AsyncIdle,
    /// tokio's `UnixStream`, awaited on a current-thread runtime (Unix).
    TokioUnixSocket,
    /// filemap broadcast (one sender, one receiver here), busy-polling `try_recv`.
    Broadcast,
    /// filemap broadcast, blocking `recv`.
    BroadcastBlocking,
    /// filemap MPMC (one sender, one receiver here), busy-polling.
    Mpmc,
    /// filemap MPMC, blocking `send`/`recv`.
    MpmcBlocking,
    /// filemap MPMC streaming with 2 senders (threads of the child, a handle
    /// each) and 2 receivers (threads of the parent), busy-polling; not pinned.
    Mpmc2x2,
    /// [`TransportKind::Mpmc2x2`], blocking.
    Mpmc2x2Blocking,
    /// A pipe each way (the child's stdin and stdout).
    Pipe,
    /// A Unix domain stream socket.
    UnixSocket,
    /// iceoryx2 publish-subscribe (IPC service, busy-polling `receive`; the
    /// `iceoryx2` feature, Linux).
    Iceoryx2,
    /// Plain Zenoh pub/sub between the two processes, TCP on loopback (the
    /// `zenoh` feature).
    ZenohPubSub,
    /// filemap request-response: a client calling (blocking), a server
    /// answering with as many bytes.
    Rpc,
    /// Request-response framed over a Unix domain stream socket (Unix).
    UnixSocketRpc,
    /// iceoryx2 request-response (busy-polling; the `iceoryx2` feature, Linux).
    Iceoryx2Rpc,
    /// filemap spsc channels carried between the two processes by two
    /// `filemap_zenoh` bridges, one in each (the `zenoh` feature).
    ZenohBridge,
}

/// The module that implements a [`TransportKind`] (several modes share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Floor,
    Spsc,
    /// [`TransportKind::SpscClient`]: both sides are `fm-stream-client`.
    Client,
    /// [`TransportKind::SpscC`]: C code on the C API.
    CApi,
    Mpmc,
    Broadcast,
    Pipe,
    UnixSocket,
    Iceoryx2,
    WaitSet,
    Async,
    Zenoh,
    Rpc,
    UnixSocketRpc,
    Iceoryx2Rpc,
}

/// Everything the driver needs to know of a [`TransportKind`]: one row per transport.
pub(crate) struct TransportInfo {
    pub(crate) kind: TransportKind,
    /// What `--only` takes.
    pub(crate) code: &'static str,
    /// The row label.
    pub(crate) label: &'static str,
    pub(crate) family: Family,
    /// Round trips only (no streaming row).
    pub(crate) latency_only: bool,
    /// Streaming only (no round-trip row).
    pub(crate) stream_only: bool,
    /// More busy threads than one CPU per process: the driver does not pin
    /// its processes (one CPU each would serialise their threads).
    pub(crate) unpinned: bool,
    /// Wait [`IDLE_GAP`](crate::IDLE_GAP) (untimed) before each round trip.
    pub(crate) idle_gap: bool,
    /// Offered by this build on this OS.
    pub(crate) available: bool,
}

const fn info(
    kind: TransportKind,
    code: &'static str,
    label: &'static str,
    family: Family,
    latency_only: bool,
) -> TransportInfo {
    TransportInfo {
        kind,
        code,
        label,
        family,
        latency_only,
        stream_only: false,
        unpinned: false,
        idle_gap: false,
        available: true,
    }
}

/// The transports, in the order rows appear.
pub(crate) const TRANSPORTS: &[TransportInfo] = &[
    info(
        TransportKind::FloorSpin,
        "floor-spin",
        "floor: cache line, spin",
        Family::Floor,
        true,
    ),
    TransportInfo {
        available: cfg!(target_os = "linux"),
        ..info(
            TransportKind::FloorFutex,
            "floor-futex",
            "floor: futex ping-pong",
            Family::Floor,
            true,
        )
    },
    TransportInfo {
        available: cfg!(target_os = "linux"),
        idle_gap: true,
        ..info(
            TransportKind::FloorFutexIdle,
            "floor-futex-idle",
            "floor: futex ping-pong, idle peer",
            Family::Floor,
            true,
        )
    },
    info(
        TransportKind::SpscSpin,
        "spsc-spin",
        "filemap spsc, spin, copy",
        Family::Spsc,
        false,
    ),
    info(
        TransportKind::SpscLarge,
        "spsc-large",
        "filemap spsc, spin, copy, large pages",
        Family::Spsc,
        false,
    ),
    info(
        TransportKind::SpscZeroCopy,
        "spsc-zero-copy",
        "filemap spsc, spin, zero-copy",
        Family::Spsc,
        false,
    ),
    info(
        TransportKind::SpscBlocking,
        "spsc-blocking",
        "filemap spsc, blocking",
        Family::Spsc,
        false,
    ),
    TransportInfo {
        available: cfg!(feature = "c"),
        ..info(
            TransportKind::SpscC,
            "spsc-c",
            "filemap spsc, spin, copy, from C (C API)",
            Family::CApi,
            false,
        )
    },
    TransportInfo {
        stream_only: true,
        ..info(
            TransportKind::SpscClient,
            "spsc-client",
            "filemap spsc, a client as in the docs",
            Family::Client,
            false,
        )
    },
    TransportInfo {
        idle_gap: true,
        ..info(
            TransportKind::SpscIdle,
            "spsc-idle",
            "filemap spsc, blocking, idle peer",
            Family::Spsc,
            true,
        )
    },
    info(
        TransportKind::WaitSet1,
        "waitset-1",
        "filemap WaitSet, 1 channel",
        Family::WaitSet,
        true,
    ),
    info(
        TransportKind::WaitSet64,
        "waitset-64",
        "filemap WaitSet, 64 channels",
        Family::WaitSet,
        true,
    ),
    info(
        TransportKind::WaitSet1000,
        "waitset-1000",
        "filemap WaitSet, 1000 channels",
        Family::WaitSet,
        true,
    ),
    TransportInfo {
        idle_gap: true,
        ..info(
            TransportKind::WaitSetIdle,
            "waitset-idle",
            "filemap WaitSet, 1 channel, idle peer",
            Family::WaitSet,
            true,
        )
    },
    TransportInfo {
        idle_gap: true,
        ..info(
            TransportKind::WaitSet64Idle,
            "waitset-64-idle",
            "filemap WaitSet, 64 channels, idle peer",
            Family::WaitSet,
            true,
        )
    },
    info(
        TransportKind::AsyncCurrent,
        "async-current",
        "filemap spsc, async (tokio current-thread)",
        Family::Async,
        true,
    ),
    info(
        TransportKind::AsyncMulti,
        "async-multi",
        "filemap spsc, async (tokio multi-thread)",
        Family::Async,
        true,
    ),
    TransportInfo {
        idle_gap: true,
        ..info(
            TransportKind::AsyncIdle,
            "async-idle",
            "filemap spsc, async, idle peer",
            Family::Async,
            true,
        )
    },
    TransportInfo {
        available: cfg!(unix),
        ..info(
            TransportKind::TokioUnixSocket,
            "tokio-unix-socket",
            "tokio UnixStream, async",
            Family::Async,
            true,
        )
    },
    // Broadcast streaming rows also say how many messages the receiver
    // missed (its sender never waits) and count only those delivered.
    info(
        TransportKind::Broadcast,
        "broadcast",
        "filemap broadcast, spin",
        Family::Broadcast,
        false,
    ),
    info(
        TransportKind::BroadcastBlocking,
        "broadcast-blocking",
        "filemap broadcast, blocking",
        Family::Broadcast,
        false,
    ),
    info(
        TransportKind::Mpmc,
        "mpmc",
        "filemap mpmc, spin",
        Family::Mpmc,
        false,
    ),
    info(
        TransportKind::MpmcBlocking,
        "mpmc-blocking",
        "filemap mpmc, blocking",
        Family::Mpmc,
        false,
    ),
    TransportInfo {
        stream_only: true,
        unpinned: true,
        ..info(
            TransportKind::Mpmc2x2,
            "mpmc-2x2",
            "filemap mpmc, 2 senders x 2 receivers, spin",
            Family::Mpmc,
            false,
        )
    },
    TransportInfo {
        stream_only: true,
        unpinned: true,
        ..info(
            TransportKind::Mpmc2x2Blocking,
            "mpmc-2x2-blocking",
            "filemap mpmc, 2 senders x 2 receivers, blocking",
            Family::Mpmc,
            false,
        )
    },
    info(TransportKind::Pipe, "pipe", "pipe", Family::Pipe, false),
    TransportInfo {
        available: cfg!(unix),
        ..info(
            TransportKind::UnixSocket,
            "unix-socket",
            "unix socket",
            Family::UnixSocket,
            false,
        )
    },
    TransportInfo {
        available: cfg!(all(feature = "iceoryx2", target_os = "linux")),
        ..info(
            TransportKind::Iceoryx2,
            "iceoryx2",
            "iceoryx2 pub-sub, spin",
            Family::Iceoryx2,
            false,
        )
    },
    info(
        TransportKind::Rpc,
        "rpc",
        "filemap rpc, call (blocking)",
        Family::Rpc,
        true,
    ),
    TransportInfo {
        available: cfg!(unix),
        ..info(
            TransportKind::UnixSocketRpc,
            "unix-socket-rpc",
            "unix socket request-response",
            Family::UnixSocketRpc,
            true,
        )
    },
    TransportInfo {
        available: cfg!(all(feature = "iceoryx2", target_os = "linux")),
        ..info(
            TransportKind::Iceoryx2Rpc,
            "iceoryx2-rpc",
            "iceoryx2 request-response, spin",
            Family::Iceoryx2Rpc,
            true,
        )
    },
    TransportInfo {
        available: cfg!(feature = "zenoh"),
        unpinned: true,
        ..info(
            TransportKind::ZenohPubSub,
            "zenoh",
            "zenoh pub-sub, TCP loopback",
            Family::Zenoh,
            false,
        )
    },
    TransportInfo {
        available: cfg!(feature = "zenoh"),
        unpinned: true,
        ..info(
            TransportKind::ZenohBridge,
            "zenoh-bridge",
            "filemap spsc via 2 zenoh bridges",
            Family::Zenoh,
            false,
        )
    },
];

impl TransportKind {
    pub(crate) fn info(self) -> &'static TransportInfo {
        TRANSPORTS
            .iter()
            .find(|i| i.kind == self)
            .expect("every TransportKind has a row in TRANSPORTS")
    }

    /// The row label.
    pub fn as_str(self) -> &'static str {
        self.info().label
    }

    /// The code `--only` takes.
    pub fn code(self) -> &'static str {
        self.info().code
    }

    pub(crate) fn family(self) -> Family {
        self.info().family
    }

    pub(crate) fn from_code(s: &str) -> Option<TransportKind> {
        Self::all().into_iter().find(|p| p.code() == s)
    }

    /// The transports named by `codes` (as `--only` takes them, e.g.
    /// `floor-spin,spsc-spin`).
    ///
    /// # Errors
    /// [`BenchError::Unsupported`] for a code this build does not have, with
    /// the list of those it has.
    pub fn parse_list(codes: &[String]) -> Result<Vec<TransportKind>> {
        codes
            .iter()
            .map(|c| {
                TransportKind::from_code(c.trim()).ok_or_else(|| {
                    let known: Vec<_> = TransportKind::all()
                        .into_iter()
                        .map(TransportKind::code)
                        .collect();
                    BenchError::Unsupported(format!(
                        "no transport `{c}` in this build; there are: {}",
                        known.join(", ")
                    ))
                })
            })
            .collect()
    }

    /// Why this machine cannot run the transport now, if it cannot: for
    /// [`TransportKind::SpscLarge`], the OS setting that withholds large pages
    /// (asked by creating a small large-page mapping).
    pub fn unavailable(self) -> Option<String> {
        if self != TransportKind::SpscLarge {
            return None;
        }
        let probe = format!("fm-bench-probe-{}", std::process::id());
        match filemap::Options::new()
            .large_pages(true)
            .create(&probe, 4096)
        {
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Every transport this build has on this OS.
    pub fn all() -> Vec<TransportKind> {
        TRANSPORTS
            .iter()
            .filter(|i| i.available)
            .map(|i| i.kind)
            .collect()
    }

    pub(crate) fn scenarios(self) -> &'static [Scenario] {
        if self.info().stream_only {
            &[Scenario::Stream]
        } else if self.info().latency_only {
            &[Scenario::Latency]
        } else {
            &[Scenario::Latency, Scenario::Stream]
        }
    }
}
