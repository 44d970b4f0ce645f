//! Side-by-side IPC benchmarks, each case as two real processes: the
//! shared-memory floor (one cache line ping-ponged, spinning; and a raw futex
//! ping-pong for blocking), filemap's channels (SPSC spinning, zero-copy,
//! blocking, and blocking with an idle peer; MPMC and broadcast, spinning and
//! blocking), pipes, Unix domain sockets and (feature `iceoryx2`) iceoryx2.
//! [`Peer`] lists them; [`Options::rounds`] repeats every case and keeps each
//! one's median run.
//!
//! The `filemap bench` command drives it: [`run`] in the parent, and
//! [`peer_main`] in the child process the parent starts for every case.
//!
//! Scenarios:
//! - **latency**: the parent sends a message of `size` bytes, the child sends
//!   one of the same size back; each round trip is timed with `Instant` (the
//!   same overhead for every row) into an HDR histogram.
//! - **stream**: the child sends `count` messages as fast as it can, the
//!   parent receives them (reading every byte: copying out, or in place for
//!   zero-copy) and times from the first message after warm-up to the last.
//!
//! On Linux with two or more CPUs the parent runs on CPU 0 and the child on CPU 1
//! ([`Options::pin`]).

mod chart;
mod ops;

pub use chart::write_svg;
pub use ops::{ops_table, run_ops, OpRow};

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use filemap::channel::broadcast::{Received, Receiver as BReceiver, Sender as BSender};
use filemap::channel::mpmc::Channel as MpmcChannel;
use filemap::channel::spsc::{Receiver, Sender};
use filemap::{Access, Mapping, ViewAccess};
use hdrhistogram::Histogram;

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Round trips (ping-pong).
    Latency,
    /// One-way throughput.
    Stream,
}

impl Scenario {
    fn as_str(self) -> &'static str {
        match self {
            Scenario::Latency => "latency",
            Scenario::Stream => "stream",
        }
    }
}

/// A transport under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// One cache line per direction in a shared mapping, both sides spinning.
    FloorSpin,
    /// The same words, waiting with futex wait/wake (Linux).
    FloorFutex,
    /// The raw futex ping-pong with the idle gap of [`Peer::SpscIdle`] before
    /// each round trip: the like-for-like floor for that row (a CPU left idle
    /// for a while can take longer to wake than one kept busy).
    FloorFutexIdle,
    /// filemap SPSC, busy-polling `try_send`/`try_recv`, copying.
    SpscSpin,
    /// filemap SPSC, busy-polling, writing and reading in place (reserve/commit, borrowed receive).
    SpscZeroCopy,
    /// filemap SPSC, blocking `send`/`recv` (spin briefly, then park).
    SpscBlocking,
    /// filemap SPSC, blocking, with the peer idle: before each round trip
    /// (untimed) the parent waits [`IDLE_GAP`], so that the peer has stopped
    /// spinning and sleeps in the kernel when the message comes; compare
    /// with the raw futex ping-pong.
    SpscIdle,
    /// filemap broadcast (one sender, one receiver here), busy-polling `try_recv`.
    Broadcast,
    /// filemap broadcast, blocking `recv`.
    BroadcastBlocking,
    /// filemap MPMC (one sender, one receiver here), busy-polling.
    Mpmc,
    /// filemap MPMC, blocking `send`/`recv`.
    MpmcBlocking,
    /// A pipe each way (the child's stdin and stdout).
    Pipe,
    /// A Unix domain stream socket.
    UnixSocket,
    /// iceoryx2 publish-subscribe (IPC service, busy-polling `receive`; the
    /// `iceoryx2` feature, Linux).
    Iceoryx2,
}

impl Peer {
    /// The row label.
    pub fn as_str(self) -> &'static str {
        match self {
            Peer::FloorSpin => "floor: cache line, spin",
            Peer::FloorFutex => "floor: futex ping-pong",
            Peer::FloorFutexIdle => "floor: futex ping-pong, idle peer",
            Peer::SpscSpin => "filemap spsc, spin, copy",
            Peer::SpscZeroCopy => "filemap spsc, spin, zero-copy",
            Peer::SpscBlocking => "filemap spsc, blocking",
            Peer::SpscIdle => "filemap spsc, blocking, idle peer",
            Peer::Broadcast => "filemap broadcast, spin",
            Peer::BroadcastBlocking => "filemap broadcast, blocking",
            Peer::Mpmc => "filemap mpmc, spin",
            Peer::MpmcBlocking => "filemap mpmc, blocking",
            Peer::Pipe => "pipe",
            Peer::UnixSocket => "unix socket",
            Peer::Iceoryx2 => "iceoryx2 pub-sub, spin",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Peer::FloorSpin => "floor-spin",
            Peer::FloorFutex => "floor-futex",
            Peer::FloorFutexIdle => "floor-futex-idle",
            Peer::SpscSpin => "spsc-spin",
            Peer::SpscZeroCopy => "spsc-zero-copy",
            Peer::SpscBlocking => "spsc-blocking",
            Peer::SpscIdle => "spsc-idle",
            Peer::Broadcast => "broadcast",
            Peer::BroadcastBlocking => "broadcast-blocking",
            Peer::Mpmc => "mpmc",
            Peer::MpmcBlocking => "mpmc-blocking",
            Peer::Pipe => "pipe",
            Peer::UnixSocket => "unix-socket",
            Peer::Iceoryx2 => "iceoryx2",
        }
    }

    fn from_code(s: &str) -> Option<Peer> {
        Self::all().into_iter().find(|p| p.code() == s)
    }

    /// The transports named by `codes` (as `--only` takes them, e.g.
    /// `floor-spin,spsc-spin`).
    ///
    /// # Errors
    /// A code this build does not have, with the list of those it has.
    pub fn parse_list(codes: &[String]) -> Result<Vec<Peer>, String> {
        codes
            .iter()
            .map(|c| {
                Peer::from_code(c.trim()).ok_or_else(|| {
                    let known: Vec<_> = Peer::all().into_iter().map(Peer::code).collect();
                    format!(
                        "no transport `{c}` in this build; there are: {}",
                        known.join(", ")
                    )
                })
            })
            .collect()
    }

    /// Every transport this OS has.
    pub fn all() -> Vec<Peer> {
        let mut v = vec![Peer::FloorSpin];
        if cfg!(target_os = "linux") {
            v.extend([Peer::FloorFutex, Peer::FloorFutexIdle]);
        }
        v.extend([
            Peer::SpscSpin,
            Peer::SpscZeroCopy,
            Peer::SpscBlocking,
            Peer::SpscIdle,
            Peer::Broadcast,
            Peer::BroadcastBlocking,
            Peer::Mpmc,
            Peer::MpmcBlocking,
            Peer::Pipe,
        ]);
        if cfg!(unix) {
            v.push(Peer::UnixSocket);
        }
        if cfg!(all(feature = "iceoryx2", target_os = "linux")) {
            v.push(Peer::Iceoryx2);
        }
        v
    }

    fn scenarios(self) -> &'static [Scenario] {
        match self {
            // Broadcast streaming would measure how much a receiver misses,
            // since its sender never waits; only round trips compare.
            Peer::FloorSpin
            | Peer::FloorFutex
            | Peer::FloorFutexIdle
            | Peer::SpscIdle
            | Peer::Broadcast
            | Peer::BroadcastBlocking => &[Scenario::Latency],
            _ => &[Scenario::Latency, Scenario::Stream],
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Message sizes in bytes.
    pub sizes: Vec<usize>,
    /// Fewer iterations: the whole run in well under 30 s.
    pub quick: bool,
    /// How to start a peer: the program and the arguments before the peer's own.
    pub peer_command: (std::path::PathBuf, Vec<String>),
    /// Pin the two processes to CPUs 0 and 1 (Linux). [`Options::new`] turns
    /// it on when the machine has two or more CPUs.
    pub pin: bool,
    /// Measure exactly this many messages per case (after 10% warm-up), instead
    /// of a count scaled to the size (for tests).
    pub count: Option<u64>,
    /// The transports to run ([`Peer::all`] by default).
    pub peers: Vec<Peer>,
    /// Run every case this many times, interleaved (all cases once, then all
    /// again, ...), and report for each the round with the median result:
    /// on a noisy machine that keeps one unlucky run from deciding a row.
    pub rounds: usize,
}

impl Options {
    /// Options for `sizes`; pinning on when this process may use two or more
    /// CPUs (call it before anything pins this process).
    pub fn new(
        sizes: Vec<usize>,
        quick: bool,
        peer_command: (std::path::PathBuf, Vec<String>),
    ) -> Options {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Options {
            sizes,
            quick,
            peer_command,
            pin: cfg!(target_os = "linux") && cpus >= 2,
            count: None,
            peers: Peer::all(),
            rounds: 1,
        }
    }
}

/// One measured case.
#[derive(Debug, Clone)]
pub struct Row {
    /// Latency or stream.
    pub scenario: Scenario,
    /// Row label.
    pub transport: String,
    /// Message size in bytes.
    pub size: usize,
    /// Messages (stream) or round trips (latency) measured.
    pub count: u64,
    /// Round-trip percentiles in ns: p50, p90, p99, p99.9, max (latency rows).
    pub latency_ns: Option<[u64; 5]>,
    /// Messages per second (stream rows).
    pub msgs_per_s: Option<f64>,
    /// Gigabytes (1e9 bytes) per second (stream rows).
    pub gb_per_s: Option<f64>,
}

impl Row {
    /// The row as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let lat = self.latency_ns.map(|l| {
            serde_json::json!({"p50": l[0], "p90": l[1], "p99": l[2], "p999": l[3], "max": l[4]})
        });
        serde_json::json!({
            "scenario": self.scenario.as_str(),
            "transport": self.transport,
            "size": self.size,
            "count": self.count,
            "latency_ns": lat,
            "msgs_per_s": self.msgs_per_s,
            "gb_per_s": self.gb_per_s,
        })
    }
}

fn counts(scenario: Scenario, size: usize, quick: bool) -> (u64, u64) {
    let budget: u64 = match (scenario, quick) {
        (Scenario::Latency, true) => 16 << 20,
        (Scenario::Latency, false) => 256 << 20,
        (Scenario::Stream, true) => 256 << 20,
        (Scenario::Stream, false) => 4 << 30,
    };
    let cap = match (scenario, quick) {
        (Scenario::Latency, true) => 20_000,
        (Scenario::Latency, false) => 200_000,
        (Scenario::Stream, true) => 500_000,
        (Scenario::Stream, false) => 5_000_000,
    };
    let n = (budget / size.max(64) as u64).clamp(200, cap);
    (n, (n / 10).max(50))
}

fn ring_capacity(size: usize) -> u64 {
    ((size as u64 + 16) * 4).max(1 << 20)
}

/// Runs every case (`opts.rounds` times); `progress` hears about each run
/// before it starts.
///
/// # Errors
/// A message saying which case failed and why.
pub fn run(
    opts: &Options,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<Row>, String> {
    let mut cases = Vec::new();
    for &size in &opts.sizes {
        for &peer in &opts.peers {
            for &sc in peer.scenarios() {
                cases.push((sc, peer, size));
            }
        }
    }
    cases.sort_by_key(|(sc, _, size)| (*sc == Scenario::Stream, *size));
    let rounds = opts.rounds.max(1);
    let mut runs: Vec<Vec<Row>> = vec![Vec::new(); cases.len()];
    let total = (cases.len() + opts.sizes.len()) * rounds;
    let mut step = 0;
    for round in 0..rounds {
        for (k, &(sc, peer, size)) in cases.iter().enumerate() {
            let of = if rounds > 1 {
                format!(" (round {}/{rounds})", round + 1)
            } else {
                String::new()
            };
            progress(
                step,
                total,
                &format!("{} {} {size} B{of}", sc.as_str(), peer.as_str()),
            );
            step += 1;
            let (mut count, mut warmup) = opts
                .count
                .map_or_else(|| counts(sc, size, opts.quick), |n| (n, n / 10));
            if matches!(peer, Peer::SpscIdle | Peer::FloorFutexIdle) {
                // Each round trip waits IDLE_GAP first: keep the case to a few seconds.
                count = count.min(if opts.quick { 400 } else { 4000 });
                warmup = warmup.min(50);
            }
            let row = run_case(opts, sc, peer, size, count, warmup)
                .map_err(|e| format!("{} {} {size} B: {e}", sc.as_str(), peer.as_str()))?;
            runs[k].push(row);
        }
    }
    let mut rows: Vec<Row> = runs.into_iter().map(median_run).collect();
    for &size in &opts.sizes {
        let mut copies = Vec::new();
        for _ in 0..rounds {
            progress(step, total, &format!("memcpy {size} B"));
            step += 1;
            copies.push(memcpy_row(size, opts.quick));
        }
        rows.push(median_run(copies));
    }
    Ok(rows)
}

/// Of several runs of one case, the one with the median result (p50 for
/// round trips, msg/s for streams), so that a row's figures all come from
/// one run.
fn median_run(mut runs: Vec<Row>) -> Row {
    let key = |r: &Row| match (r.latency_ns, r.msgs_per_s) {
        (Some(l), _) => l[0] as f64,
        (None, Some(m)) => -m,
        (None, None) => 0.0,
    };
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let mid = (runs.len() - 1) / 2;
    runs.swap_remove(mid)
}

/// Single-core memcpy bandwidth between two buffers of `size` bytes: the
/// reference for streaming rows.
fn memcpy_row(size: usize, quick: bool) -> Row {
    let (count, warmup) = counts(Scenario::Stream, size, quick);
    let src = vec![7u8; size];
    let mut dst = vec![0u8; size];
    for _ in 0..warmup {
        dst.copy_from_slice(std::hint::black_box(&src));
    }
    let t = Instant::now();
    for _ in 0..count {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    let secs = t.elapsed().as_secs_f64();
    Row {
        scenario: Scenario::Stream,
        transport: "floor: memcpy, one core".into(),
        size,
        count,
        latency_ns: None,
        msgs_per_s: Some(count as f64 / secs),
        gb_per_s: Some(count as f64 * size as f64 / secs / 1e9),
    }
}

fn unique_name(peer: Peer) -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "fm-bench-{}-{}-{}",
        peer.code(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Resources the parent made for one case, dropped after it.
enum Made {
    Floor(Mapping),
    Spsc(Option<Box<Sender>>, Box<Receiver>),
    Bcast(Box<BSender>, String),
    Mpmc(Option<Box<MpmcChannel>>, Box<MpmcChannel>),
    Pipe,
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener, std::path::PathBuf),
    #[cfg(all(feature = "iceoryx2", target_os = "linux"))]
    Ice(Box<ice::Ports>),
}

fn run_case(
    opts: &Options,
    sc: Scenario,
    peer: Peer,
    size: usize,
    count: u64,
    warmup: u64,
) -> Result<Row, String> {
    let e = |e: filemap::Error| e.to_string();
    let name = unique_name(peer);
    let made = match peer {
        Peer::FloorSpin | Peer::FloorFutex | Peer::FloorFutexIdle => {
            Made::Floor(Mapping::create(&name, 4096).map_err(e)?)
        }
        Peer::SpscSpin | Peer::SpscZeroCopy | Peer::SpscBlocking | Peer::SpscIdle => {
            let cap = ring_capacity(size);
            // Latency: ping (parent -> child) and pong; stream: child -> parent only.
            let tx = match sc {
                Scenario::Latency => Some(Box::new(
                    Sender::create(&format!("{name}.ping"), cap).map_err(e)?,
                )),
                Scenario::Stream => None,
            };
            Made::Spsc(
                tx,
                Box::new(Receiver::create(&format!("{name}.pong"), cap).map_err(e)?),
            )
        }
        Peer::Broadcast | Peer::BroadcastBlocking => {
            let ping = BSender::create(&format!("{name}.ping"), 64, size as u64).map_err(e)?;
            // The pong channel is the child's to create; we open it once it is ready.
            Made::Bcast(Box::new(ping), name.clone())
        }
        Peer::Mpmc | Peer::MpmcBlocking => {
            let slots = (ring_capacity(size) / size.max(64) as u64).clamp(4, 1024);
            let ping = match sc {
                Scenario::Latency => Some(Box::new(
                    MpmcChannel::create(&format!("{name}.ping"), slots, size as u64).map_err(e)?,
                )),
                Scenario::Stream => None,
            };
            let pong =
                MpmcChannel::create(&format!("{name}.pong"), slots, size as u64).map_err(e)?;
            Made::Mpmc(ping, Box::new(pong))
        }
        Peer::Pipe => Made::Pipe,
        Peer::Iceoryx2 => {
            #[cfg(all(feature = "iceoryx2", target_os = "linux"))]
            {
                Made::Ice(Box::new(ice::Ports::parent(&name, sc, size)?))
            }
            #[cfg(not(all(feature = "iceoryx2", target_os = "linux")))]
            return Err("built without the iceoryx2 feature".into());
        }
        Peer::UnixSocket => {
            #[cfg(unix)]
            {
                let path = std::env::temp_dir().join(format!("{name}.sock"));
                let l = std::os::unix::net::UnixListener::bind(&path).map_err(|e| e.to_string())?;
                Made::Unix(l, path)
            }
            #[cfg(not(unix))]
            return Err("no Unix sockets here".into());
        }
    };
    let (prog, pre) = &opts.peer_command;
    let mut cmd = Command::new(prog);
    if opts.pin {
        // The parent runs on CPU 0, the peer on CPU 1. The peer is told
        // rather than left to work it out: it inherits our one-CPU mask.
        pin_to(0);
        cmd.env(CPU_VAR, "1");
    }
    let mut child = cmd
        .args(pre)
        .args([
            peer.code(),
            sc.as_str(),
            &size.to_string(),
            &(count + warmup).to_string(),
            &name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the peer: {e}"))?;
    // The peer says "ready" on stderr; libraries may print other lines first.
    let mut ready = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if ready.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            let _ = child.wait();
            return Err(format!("the peer failed: {said}"));
        }
        if line.trim() == "ready" {
            break;
        }
        said.push_str(&line);
    }
    let result = parent_side(&mut child, made, sc, peer, size, count, warmup);
    // End of input tells a peer that waits for it that the case is over.
    drop(child.stdin.take());
    let status = child.wait().map_err(|e| e.to_string())?;
    let row = result?;
    if !status.success() {
        return Err(format!("the peer exited with {status}"));
    }
    Ok(row)
}

fn percentiles(h: &Histogram<u64>) -> [u64; 5] {
    [
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
    ]
}

fn floor_words(m: &Mapping) -> Result<filemap::View, String> {
    m.view(.., ViewAccess::ReadWrite).map_err(|e| e.to_string())
}

/// The parent's half of a case.
fn parent_side(
    child: &mut Child,
    made: Made,
    sc: Scenario,
    peer: Peer,
    size: usize,
    count: u64,
    warmup: u64,
) -> Result<Row, String> {
    let e = |e: filemap::Error| e.to_string();
    let io = |e: std::io::Error| e.to_string();
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; size];
    let record = |i: u64, t: Instant, hist: &mut Histogram<u64>| {
        if i >= warmup {
            let _ = hist.record(t.elapsed().as_nanos() as u64);
        }
    };
    let total = count + warmup;
    let mut stream_start = None;
    let mut on_stream = |i: u64| {
        if i == warmup {
            stream_start = Some(Instant::now());
        }
    };
    match (made, sc) {
        (Made::Floor(m), _) => {
            let v = floor_words(&m)?;
            if peer == Peer::FloorSpin {
                let (a, b) = (v.atomic_u64(0).map_err(e)?, v.atomic_u64(64).map_err(e)?);
                for i in 1..=total {
                    let t = Instant::now();
                    a.store(i, Ordering::Release);
                    while b.load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                    record(i - 1, t, &mut hist);
                }
            } else {
                let (a, b) = (v.atomic_u32(0).map_err(e)?, v.atomic_u32(64).map_err(e)?);
                for i in 1..=total as u32 {
                    if peer == Peer::FloorFutexIdle {
                        std::thread::sleep(IDLE_GAP);
                    }
                    let t = Instant::now();
                    a.store(i, Ordering::Release);
                    futex::wake(a);
                    futex::wait_until(b, i);
                    record(u64::from(i) - 1, t, &mut hist);
                }
            }
        }
        (Made::Spsc(tx, mut rx), Scenario::Latency) => {
            let mut tx = tx.ok_or("no ping channel")?;
            for i in 0..total {
                if peer == Peer::SpscIdle {
                    std::thread::sleep(IDLE_GAP);
                }
                let t = Instant::now();
                spsc_send(&mut tx, peer, &buf, i).map_err(e)?;
                spsc_recv(&mut rx, peer, &mut buf).map_err(e)?;
                record(i, t, &mut hist);
            }
        }
        (Made::Mpmc(ping, pong), sc) => {
            for i in 0..total {
                let t = Instant::now();
                match (&ping, sc) {
                    (Some(p), Scenario::Latency) => mpmc_send(p, peer, &buf).map_err(e)?,
                    _ => on_stream(i),
                }
                mpmc_recv(&pong, peer, &mut buf).map_err(e)?;
                record(i, t, &mut hist);
            }
        }
        (Made::Bcast(mut tx, name), _) => {
            let mut rx = BReceiver::open(&format!("{name}.pong")).map_err(e)?;
            let mut got = Received::default();
            got.data.reserve(size);
            for i in 0..total {
                let t = Instant::now();
                tx.send(&buf).map_err(e)?;
                bcast_recv(&mut rx, peer, &mut got).map_err(e)?;
                record(i, t, &mut hist);
            }
        }
        (Made::Spsc(_, mut rx), Scenario::Stream) => {
            for i in 0..total {
                on_stream(i);
                spsc_recv(&mut rx, peer, &mut buf).map_err(e)?;
            }
        }
        (Made::Pipe, sc) => {
            let mut w = child.stdin.take().ok_or("no stdin")?;
            let mut r = child.stdout.take().ok_or("no stdout")?;
            let after = |i, t| record(i, t, &mut hist);
            byte_stream(&mut w, &mut r, sc, &mut buf, total, &mut on_stream, after).map_err(io)?;
        }
        #[cfg(unix)]
        (Made::Unix(l, path), sc) => {
            let (s, _) = l.accept().map_err(io)?;
            let _ = std::fs::remove_file(&path);
            let after = |i, t| record(i, t, &mut hist);
            byte_stream(&mut &s, &mut &s, sc, &mut buf, total, &mut on_stream, after)
                .map_err(io)?;
        }
        #[cfg(all(feature = "iceoryx2", target_os = "linux"))]
        (Made::Ice(mut p), sc) => {
            for i in 0..total {
                let t = Instant::now();
                if sc == Scenario::Latency {
                    p.send(&buf)?;
                } else {
                    on_stream(i);
                }
                p.recv(&mut buf)?;
                record(i, t, &mut hist);
            }
        }
    }
    let row = |latency_ns, msgs_per_s, gb_per_s| Row {
        scenario: sc,
        transport: peer.as_str().into(),
        size,
        count,
        latency_ns,
        msgs_per_s,
        gb_per_s,
    };
    Ok(match sc {
        Scenario::Latency => row(Some(percentiles(&hist)), None, None),
        Scenario::Stream => {
            let secs = stream_start.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
            // `count` messages were received after the clock started (the
            // first of them at its start).
            let rate = count as f64 / secs;
            row(None, Some(rate), Some(rate * size as f64 / 1e9))
        }
    })
}

/// The parent's loop over a byte stream (pipe, socket): for latency, write a
/// message and read the echo; for streaming, read. `before(i)` runs before
/// message `i` is read, `after(i, start)` once it has been.
fn byte_stream(
    w: &mut impl Write,
    r: &mut impl Read,
    sc: Scenario,
    buf: &mut [u8],
    total: u64,
    before: &mut impl FnMut(u64),
    mut after: impl FnMut(u64, Instant),
) -> std::io::Result<()> {
    for i in 0..total {
        let t = Instant::now();
        if sc == Scenario::Latency {
            w.write_all(buf)?;
        } else {
            before(i);
        }
        r.read_exact(buf)?;
        after(i, t);
    }
    Ok(())
}

/// Receives one MPMC message into `buf`, busy-polling or blocking as `peer`
/// does (without allocating: `buf` already has the message's size).
fn mpmc_recv(ch: &MpmcChannel, peer: Peer, buf: &mut Vec<u8>) -> filemap::Result<()> {
    if peer == Peer::MpmcBlocking {
        return ch.recv_into(buf, None);
    }
    while !ch.try_recv_into(buf)? {
        std::hint::spin_loop();
    }
    Ok(())
}

/// Sends one MPMC message, busy-polling or blocking as `peer` does.
fn mpmc_send(ch: &MpmcChannel, peer: Peer, buf: &[u8]) -> filemap::Result<()> {
    if peer == Peer::MpmcBlocking {
        return ch.send(buf, None);
    }
    while !ch.try_send(buf)? {
        std::hint::spin_loop();
    }
    Ok(())
}

/// Receives one broadcast message into `got`, busy-polling (without
/// allocating: its buffer already has the message's size).
fn bcast_recv(rx: &mut BReceiver, peer: Peer, got: &mut Received) -> filemap::Result<()> {
    if peer == Peer::BroadcastBlocking {
        return rx.recv_into(got, None);
    }
    while !rx.try_recv_into(got)? {
        std::hint::spin_loop();
    }
    Ok(())
}

/// Sends one message on an SPSC channel the way `peer` does.
fn spsc_send(tx: &mut Sender, peer: Peer, buf: &[u8], i: u64) -> filemap::Result<()> {
    match peer {
        Peer::SpscBlocking | Peer::SpscIdle => tx.send(buf),
        Peer::SpscZeroCopy => loop {
            if let Some(mut slot) = tx.try_reserve(buf.len())? {
                // SAFETY: a filemap receiver never writes unpublished bytes.
                unsafe { slot.as_mut_slice() }.fill(i as u8);
                slot.commit();
                return Ok(());
            }
            std::hint::spin_loop();
        },
        _ => {
            while !tx.try_send(buf)? {
                std::hint::spin_loop();
            }
            Ok(())
        }
    }
}

/// Receives one message, reading every byte (into `buf`, or in place).
fn spsc_recv(rx: &mut Receiver, peer: Peer, buf: &mut [u8]) -> filemap::Result<()> {
    if matches!(peer, Peer::SpscBlocking | Peer::SpscIdle) {
        return rx.recv()?.read_at(0, buf);
    }
    loop {
        if let Some(m) = rx.try_recv()? {
            if peer == Peer::SpscZeroCopy {
                // SAFETY: a filemap sender never writes a published message.
                let bytes = unsafe { m.as_slice() };
                // Read every byte in place (what a consumer of the data does).
                let sum = bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b));
                std::hint::black_box(sum);
            } else {
                m.read_at(0, buf)?;
            }
            return Ok(());
        }
        std::hint::spin_loop();
    }
}

/// The child process of a case: `PEER SCENARIO SIZE TOTAL NAME`.
///
/// # Errors
/// A message for the parent.
pub fn peer_main(args: &[String]) -> Result<(), String> {
    let [peer, sc, size, total, name] = args else {
        return Err(format!(
            "expected PEER SCENARIO SIZE COUNT NAME, got {args:?}"
        ));
    };
    let peer = Peer::from_code(peer).ok_or_else(|| format!("unknown peer {peer}"))?;
    let sc = match sc.as_str() {
        "latency" => Scenario::Latency,
        "stream" => Scenario::Stream,
        other => return Err(format!("unknown scenario {other}")),
    };
    let size: usize = size.parse().map_err(|_| "bad size")?;
    let total: u64 = total.parse().map_err(|_| "bad count")?;
    let e = |e: filemap::Error| e.to_string();
    let io = |e: std::io::Error| e.to_string();
    if let Some(cpu) = std::env::var(CPU_VAR).ok().and_then(|c| c.parse().ok()) {
        pin_to(cpu);
    }
    let ready = || {
        eprintln!("ready");
    };
    let mut buf = vec![0u8; size];
    match peer {
        Peer::FloorSpin | Peer::FloorFutex | Peer::FloorFutexIdle => {
            let m = Mapping::open(name, Access::ReadWrite).map_err(e)?;
            let v = floor_words(&m)?;
            ready();
            if peer == Peer::FloorSpin {
                let (a, b): (&AtomicU64, &AtomicU64) =
                    (v.atomic_u64(0).map_err(e)?, v.atomic_u64(64).map_err(e)?);
                for i in 1..=total {
                    while a.load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                    b.store(i, Ordering::Release);
                }
            } else {
                let (a, b): (&AtomicU32, &AtomicU32) =
                    (v.atomic_u32(0).map_err(e)?, v.atomic_u32(64).map_err(e)?);
                for i in 1..=total as u32 {
                    futex::wait_until(a, i);
                    b.store(i, Ordering::Release);
                    futex::wake(b);
                }
            }
        }
        Peer::SpscSpin | Peer::SpscZeroCopy | Peer::SpscBlocking | Peer::SpscIdle => {
            let mut tx = Sender::open(&format!("{name}.pong")).map_err(e)?;
            if sc == Scenario::Latency {
                let mut rx = Receiver::open(&format!("{name}.ping")).map_err(e)?;
                ready();
                for i in 0..total {
                    spsc_recv(&mut rx, peer, &mut buf).map_err(e)?;
                    spsc_send(&mut tx, peer, &buf, i).map_err(e)?;
                }
            } else {
                ready();
                for i in 0..total {
                    spsc_send(&mut tx, peer, &buf, i).map_err(e)?;
                }
            }
        }
        Peer::Mpmc | Peer::MpmcBlocking => {
            let pong = MpmcChannel::open(&format!("{name}.pong")).map_err(e)?;
            let ping = match sc {
                Scenario::Latency => Some(MpmcChannel::open(&format!("{name}.ping")).map_err(e)?),
                Scenario::Stream => None,
            };
            ready();
            for _ in 0..total {
                if let Some(p) = &ping {
                    mpmc_recv(p, peer, &mut buf).map_err(e)?;
                }
                mpmc_send(&pong, peer, &buf).map_err(e)?;
            }
        }
        Peer::Broadcast | Peer::BroadcastBlocking => {
            let mut rx = BReceiver::open(&format!("{name}.ping")).map_err(e)?;
            let mut tx = BSender::create(&format!("{name}.pong"), 64, size as u64).map_err(e)?;
            ready();
            let mut got = Received::default();
            got.data.reserve(size);
            for _ in 0..total {
                bcast_recv(&mut rx, peer, &mut got).map_err(e)?;
                tx.send(&got.data).map_err(e)?;
            }
            // Stay until the parent has read the last reply: closing first
            // would be reported to it as the sender going away.
            let _ = std::io::stdin().read(&mut [0u8; 1]);
        }
        Peer::Pipe => {
            ready();
            let mut r = std::io::stdin().lock();
            let mut w = std::io::stdout().lock();
            for _ in 0..total {
                if sc == Scenario::Latency {
                    r.read_exact(&mut buf).map_err(io)?;
                }
                w.write_all(&buf).map_err(io)?;
                if sc == Scenario::Latency {
                    w.flush().map_err(io)?;
                }
            }
            w.flush().map_err(io)?;
        }
        Peer::Iceoryx2 => {
            #[cfg(all(feature = "iceoryx2", target_os = "linux"))]
            {
                let mut p = ice::Ports::child(name, sc, size)?;
                ready();
                for _ in 0..total {
                    if sc == Scenario::Latency {
                        p.recv(&mut buf)?;
                    }
                    p.send(&buf)?;
                }
            }
        }
        Peer::UnixSocket => {
            #[cfg(unix)]
            {
                let path = std::env::temp_dir().join(format!("{name}.sock"));
                let mut s = std::os::unix::net::UnixStream::connect(path).map_err(io)?;
                ready();
                for _ in 0..total {
                    if sc == Scenario::Latency {
                        s.read_exact(&mut buf).map_err(io)?;
                    }
                    s.write_all(&buf).map_err(io)?;
                }
            }
        }
    }
    Ok(())
}

/// Runs this thread on `cpu` (Linux; elsewhere nothing).
fn pin_to(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// How long the parent leaves the peer idle before each round trip of
/// [`Peer::SpscIdle`]: well past the spinning phase of a blocking receive, so
/// that the peer sleeps in the kernel when the message comes.
pub const IDLE_GAP: std::time::Duration = std::time::Duration::from_micros(500);

/// The environment variable that tells a peer which CPU to run on.
const CPU_VAR: &str = "FILEMAP_BENCH_CPU";

/// The iceoryx2 peer: a publisher and a subscriber on two publish-subscribe
/// services of byte slices (`ping` parent to child, `pong` back; streaming
/// uses `pong` only), configured for low latency: a small subscriber buffer,
/// no history, busy-polling `receive`, and the publisher blocking rather than
/// dropping when the subscriber's buffer is full (so no message is lost).
#[cfg(all(feature = "iceoryx2", target_os = "linux"))]
mod ice {
    use super::Scenario;
    use iceoryx2::port::publisher::Publisher;
    use iceoryx2::port::subscriber::Subscriber;
    use iceoryx2::prelude::*;

    type Pub = Publisher<ipc::Service, [u8], ()>;
    type Sub = Subscriber<ipc::Service, [u8], ()>;

    pub struct Ports {
        _node: Node<ipc::Service>,
        publ: Option<Pub>,
        sub: Option<Sub>,
    }

    fn err(e: impl std::fmt::Display) -> String {
        format!("iceoryx2: {e}")
    }

    impl Ports {
        fn make(
            name: &str,
            size: usize,
            send_on: Option<&str>,
            recv_on: Option<&str>,
        ) -> Result<Ports, String> {
            // Its default configuration is what we measure; no notice about it.
            set_log_level(LogLevel::Error);
            let node = NodeBuilder::new().create::<ipc::Service>().map_err(err)?;
            let service = |svc: &str| {
                let sname: ServiceName = format!("filemap-bench/{name}/{svc}")
                    .as_str()
                    .try_into()
                    .map_err(err)?;
                node.service_builder(&sname)
                    .publish_subscribe::<[u8]>()
                    .subscriber_max_buffer_size(16)
                    .history_size(0)
                    .enable_safe_overflow(false)
                    .open_or_create()
                    .map_err(err)
            };
            let publ = match send_on {
                Some(svc) => Some(
                    service(svc)?
                        .publisher_builder()
                        .initial_max_slice_len(size.max(1))
                        .unable_to_deliver_strategy(UnableToDeliverStrategy::Block)
                        .create()
                        .map_err(err)?,
                ),
                None => None,
            };
            let sub = match recv_on {
                Some(svc) => Some(
                    service(svc)?
                        .subscriber_builder()
                        .buffer_size(16)
                        .create()
                        .map_err(err)?,
                ),
                None => None,
            };
            Ok(Ports {
                _node: node,
                publ,
                sub,
            })
        }

        pub fn parent(name: &str, sc: Scenario, size: usize) -> Result<Ports, String> {
            let send = (sc == Scenario::Latency).then_some("ping");
            Self::make(name, size, send, Some("pong"))
        }

        pub fn child(name: &str, sc: Scenario, size: usize) -> Result<Ports, String> {
            let recv = (sc == Scenario::Latency).then_some("ping");
            Self::make(name, size, Some("pong"), recv)
        }

        pub fn send(&mut self, buf: &[u8]) -> Result<(), String> {
            let p = self.publ.as_ref().ok_or("no publisher")?;
            let sample = p.loan_slice_uninit(buf.len()).map_err(err)?;
            sample.write_from_slice(buf).send().map_err(err)?;
            Ok(())
        }

        pub fn recv(&mut self, buf: &mut [u8]) -> Result<(), String> {
            let s = self.sub.as_ref().ok_or("no subscriber")?;
            loop {
                if let Some(sample) = s.receive().map_err(err)? {
                    buf.copy_from_slice(sample.payload());
                    return Ok(());
                }
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod futex {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Waits (in the kernel) until `w == v`.
    pub fn wait_until(w: &AtomicU32, v: u32) {
        loop {
            let cur = w.load(Ordering::Acquire);
            if cur == v {
                return;
            }
            let _ =
                rustix::thread::futex::wait(w, rustix::thread::futex::Flags::empty(), cur, None);
        }
    }

    pub fn wake(w: &AtomicU32) {
        let _ = rustix::thread::futex::wake(w, rustix::thread::futex::Flags::empty(), 1);
    }
}

#[cfg(not(target_os = "linux"))]
mod futex {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// No futex here (the futex row is not offered off Linux); spins.
    pub fn wait_until(w: &AtomicU32, v: u32) {
        while w.load(Ordering::Acquire) != v {
            std::hint::spin_loop();
        }
    }

    pub fn wake(_w: &AtomicU32) {}
}

/// An aligned text table of `rows`, each with its ratio to the floor of its
/// size (latency: p50 over the spinning cache-line p50; stream: GB/s over
/// memcpy GB/s).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let fmt_ns = |n: u64| {
        if n >= 1_000_000 {
            format!("{:.1} ms", n as f64 / 1e6)
        } else if n >= 1_000 {
            format!("{:.2} us", n as f64 / 1e3)
        } else {
            format!("{n} ns")
        }
    };
    let floor_p50 = |size: usize| {
        rows.iter()
            .find(|r| r.size == size && r.transport == Peer::FloorSpin.as_str())
            .and_then(|r| r.latency_ns)
            .map(|l| l[0])
    };
    let memcpy = |size: usize| {
        rows.iter()
            .find(|r| r.size == size && r.transport.starts_with("floor: memcpy"))
            .and_then(|r| r.gb_per_s)
    };
    let mut lat: Vec<[String; 8]> = Vec::new();
    let mut stream: Vec<[String; 6]> = Vec::new();
    for r in rows {
        match (r.scenario, r.latency_ns) {
            (Scenario::Latency, Some(l)) => lat.push([
                r.size.to_string(),
                r.transport.clone(),
                fmt_ns(l[0]),
                fmt_ns(l[1]),
                fmt_ns(l[2]),
                fmt_ns(l[3]),
                fmt_ns(l[4]),
                floor_p50(r.size).map_or("-".into(), |f| format!("{:.2}x", l[0] as f64 / f as f64)),
            ]),
            _ => stream.push([
                r.size.to_string(),
                r.transport.clone(),
                r.msgs_per_s
                    .map_or("-".into(), |m| format!("{:.2} M", m / 1e6)),
                r.gb_per_s.map_or("-".into(), |g| format!("{g:.2}")),
                memcpy(r.size)
                    .zip(r.gb_per_s)
                    .map_or("-".into(), |(m, g)| format!("{:.0}%", 100.0 * g / m)),
                r.count.to_string(),
            ]),
        }
    }
    out.push_str("Round-trip latency (two processes, ping-pong)\n");
    out.push_str(&aligned(
        &[
            "SIZE",
            "TRANSPORT",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "p50 / FLOOR",
        ],
        &lat,
    ));
    out.push_str("\nOne-way streaming throughput (two processes)\n");
    out.push_str(&aligned(
        &[
            "SIZE",
            "TRANSPORT",
            "MSG/S",
            "GB/S",
            "OF MEMCPY",
            "MESSAGES",
        ],
        &stream,
    ));
    out
}

fn aligned<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut w = head.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 2 {
                    format!("{c:<w$}", w = w[i])
                } else {
                    format!("{c:>w$}", w = w[i])
                }
            })
            .collect();
        out.push_str(s.join("  ").trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scale_with_size_within_bounds() {
        let (n, w) = counts(Scenario::Latency, 8, true);
        assert_eq!(n, 20_000);
        assert!(w >= 50);
        let (n, _) = counts(Scenario::Stream, 1 << 20, true);
        assert_eq!(n, 256);
        assert!(ring_capacity(1 << 20) / 2 - 8 >= 1 << 20);
    }

    #[test]
    fn table_shows_ratios_to_the_floor() {
        let lat = |t: &str, p50| Row {
            scenario: Scenario::Latency,
            transport: t.into(),
            size: 64,
            count: 10,
            latency_ns: Some([p50, p50, p50, p50, p50]),
            msgs_per_s: None,
            gb_per_s: None,
        };
        let st = |t: &str, g| Row {
            scenario: Scenario::Stream,
            transport: t.into(),
            size: 64,
            count: 10,
            latency_ns: None,
            msgs_per_s: Some(1e6),
            gb_per_s: Some(g),
        };
        let t = table(&[
            lat(Peer::FloorSpin.as_str(), 100),
            lat("pipe", 5000),
            st("floor: memcpy, one core", 10.0),
            st("pipe", 2.5),
        ]);
        assert!(t.contains("1.00x") && t.contains("50.00x"), "{t}");
        assert!(t.contains("25%"), "{t}");
    }
}
