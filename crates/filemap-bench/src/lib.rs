//! Side-by-side IPC benchmarks, each case as two real processes: the
//! shared-memory floor (one cache line ping-ponged, spinning; and a raw futex
//! ping-pong for blocking), filemap's channels (SPSC spinning, zero-copy,
//! blocking, and blocking with an idle peer; MPMC and broadcast, spinning and
//! blocking), pipes, Unix domain sockets and (feature `iceoryx2`) iceoryx2.
//! [`TransportKind`] lists them; [`Options::rounds`] repeats every case and keeps each
//! one's median run, and [`Measured::unsteady`] says when the floor moved during
//! a run (the machine changed under it).
//!
//! The `filemap-bench` binary drives it: [`run`] in the parent, and
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
//! Each transport is a module of `transport` behind one small trait (the
//! parent's setup, the parent's side of an iteration, the child's side); the
//! driver here times every transport the same way.
//!
//! On Linux with two or more CPUs the parent runs on CPU 0 and the child on CPU 1
//! ([`Options::pin`]).

mod catalogue;
mod chart;
mod error;
mod ops;
mod report;
mod transport;

pub use catalogue::TransportKind;
pub use chart::write_svg;
pub use error::{BenchError, Result};
pub use ops::{ops_table, run_ops, OpRow};
pub use report::table;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use catalogue::Family;
#[cfg(test)]
use catalogue::TRANSPORTS;
use transport::{with_transport, Case, ParentSide, Transport};

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

    fn parse(s: &str) -> Option<Scenario> {
        [Scenario::Latency, Scenario::Stream]
            .into_iter()
            .find(|sc| sc.as_str() == s)
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
    /// The transports to run ([`TransportKind::all`] by default).
    pub transports: Vec<TransportKind>,
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
            transports: TransportKind::all(),
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
    /// Messages the receiver missed, of `count` (stream rows of a transport
    /// whose sender never waits: broadcast); the rates count only those
    /// delivered.
    pub lost: Option<u64>,
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
            "lost": self.lost,
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

/// What [`run`] measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// One row per case: each case's median run (see [`Options::rounds`]).
    pub rows: Vec<Row>,
    /// The floor's p50 (one cache line, spinning) in every run of it, in the
    /// order they ran: one quantity, measured at every size in every round and
    /// so spread over the whole run. How far it moves says whether the machine
    /// stayed the same while the other rows were measured.
    pub floor_p50_ns: Vec<u64>,
}

impl Measured {
    /// A warning to print when the floor's largest p50 is more than 1.5 times
    /// its smallest: the host moved the two CPUs closer together or further
    /// apart during the run (on a VM, both vCPUs on one physical core, or on
    /// two), so rows measured at different times, and their ratios to the
    /// floor, cannot be compared. `None` for a steady run (one floor run is
    /// always steady).
    pub fn unsteady(&self) -> Option<String> {
        let min = *self.floor_p50_ns.iter().min()?;
        let max = *self.floor_p50_ns.iter().max()?;
        (max.saturating_mul(2) > min.saturating_mul(3)).then(|| {
            format!(
                "warning: the floor (one cache line, spinning) ranged from {min} to {max} ns \
                 over this run's {} measurements of it: the machine changed during the run, \
                 so rows measured at different times and their ratios to the floor are not \
                 comparable; run again when it is steady",
                self.floor_p50_ns.len()
            )
        })
    }
}

/// Runs every case (`opts.rounds` times); `progress` hears about each run
/// before it starts.
///
/// # Errors
/// [`BenchError::Case`], saying which case failed and why.
pub fn run(opts: &Options, mut progress: impl FnMut(usize, usize, &str)) -> Result<Measured> {
    let mut cases = Vec::new();
    for &size in &opts.sizes {
        for &peer in &opts.transports {
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
    let mut floor_p50_ns = Vec::new();
    for round in 0..rounds {
        for (k, &(sc, peer, size)) in cases.iter().enumerate() {
            let of = if rounds > 1 {
                format!(" (round {}/{rounds})", round + 1)
            } else {
                String::new()
            };
            let what = format!("{} {} {size} B", sc.as_str(), peer.as_str());
            progress(step, total, &format!("{what}{of}"));
            step += 1;
            let (mut count, mut warmup) = opts
                .count
                .map_or_else(|| counts(sc, size, opts.quick), |n| (n, n / 10));
            if peer.family() == Family::Zenoh && opts.count.is_none() {
                // Round trips over TCP take tens of microseconds: a tenth of
                // the messages keeps each case to seconds.
                count = (count / 10).max(200);
                warmup = (warmup / 10).max(50);
            }
            if peer.info().idle_gap {
                // Each round trip waits IDLE_GAP first: keep the case to a few seconds.
                count = count.min(if opts.quick { 400 } else { 4000 });
                warmup = warmup.min(50);
            }
            let case = Case {
                kind: peer,
                scenario: sc,
                size,
                total: count + warmup,
                name: unique_name(peer),
            };
            let row = match peer.family() {
                // Two programs of their own, timed by themselves, no warm-up.
                Family::Client => transport::client::run(&Case {
                    total: count,
                    ..case
                }),
                _ => with_transport!(peer, run_case(opts, &case, warmup)),
            }
            .map_err(|e| BenchError::Case {
                case: what,
                source: Box::new(e),
            })?;
            if peer == TransportKind::FloorSpin && sc == Scenario::Latency {
                floor_p50_ns.extend(row.latency_ns.map(|l| l[0]));
            }
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
    Ok(Measured { rows, floor_p50_ns })
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
        lost: None,
    }
}

fn unique_name(peer: TransportKind) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "fm-bench-{}-{}-{}",
        peer.code(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts the peer process. Under Wine, starting a process now and then
/// fails with `ERROR_INTERNAL_ERROR` (1359; seen once in a CI run of the
/// bench's test, in 8 runs of it): that one error is retried, a few times.
fn spawn_peer(cmd: &mut Command) -> Result<std::process::Child> {
    const ERROR_INTERNAL_ERROR: i32 = 1359;
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e)
                if cfg!(windows) && e.raw_os_error() == Some(ERROR_INTERNAL_ERROR) && tries < 3 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r.map_err(|e| BenchError::Peer(format!("starting it: {e}"))),
        }
    }
}

/// Waits for the peer to exit.
fn wait_peer(child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
    child
        .wait()
        .map_err(|e| BenchError::Peer(format!("waiting for it to exit: {e}")))
}

/// One case with transport `T`: set up, start the peer, wait for it to be
/// ready, time the iterations, and collect the peer's exit.
fn run_case<T: Transport>(opts: &Options, case: &Case, warmup: u64) -> Result<Row> {
    // Some rows run several busy threads in each process (Zenoh's runtime
    // and the bridges', the 2 x 2 rows' senders and receivers): one CPU
    // each would serialise them, so those run unpinned.
    let pin = opts.pin && !case.kind.info().unpinned;
    if opts.pin && !pin {
        unpin();
    }
    let mut parent = T::setup(case)?;
    let (prog, pre) = &opts.peer_command;
    let mut cmd = Command::new(prog);
    if pin {
        // The parent runs on CPU 0, the peer on CPU 1. The peer is told
        // rather than left to work it out: it inherits our one-CPU mask.
        pin_to(0);
        cmd.env(CPU_VAR, "1");
    }
    cmd.args(pre)
        .args([
            case.kind.code(),
            case.scenario.as_str(),
            &case.size.to_string(),
            &case.total.to_string(),
            &case.name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_peer(&mut cmd)?;
    // The peer says "ready" on stderr; libraries may print other lines first.
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| BenchError::Peer("its stderr is not piped".into()))?;
    let mut ready = std::io::BufReader::new(stderr);
    let mut said = String::new();
    loop {
        let mut line = String::new();
        let read = ready.read_line(&mut line);
        if read.map_err(|e| BenchError::Peer(format!("reading what it says: {e}")))? == 0 {
            let status = wait_peer(&mut child)?;
            return Err(BenchError::Peer(format!("{status}: {said}")));
        }
        if line.trim() == "ready" {
            break;
        }
        said.push_str(&line);
    }
    let result = parent
        .attach(&mut child, case)
        .and_then(|()| time(&mut parent, case, warmup));
    // End of input tells a peer that waits for it that the case is over
    // (the parent side may hold the child's stdin: drop it first).
    drop(parent);
    drop(child.stdin.take());
    let status = wait_peer(&mut child)?;
    let row = result?;
    if !status.success() {
        return Err(BenchError::Peer(format!("it exited with {status}")));
    }
    Ok(row)
}

/// The timed loop, the same for every transport.
fn time<P: ParentSide>(p: &mut P, case: &Case, warmup: u64) -> Result<Row> {
    let count = case.total - warmup;
    let row = |latency_ns, msgs_per_s, gb_per_s, lost| Row {
        scenario: case.scenario,
        transport: case.kind.as_str().into(),
        size: case.size,
        count,
        latency_ns,
        msgs_per_s,
        gb_per_s,
        lost,
    };
    match case.scenario {
        Scenario::Latency => {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                .map_err(|e| BenchError::library("hdrhistogram", e))?;
            let idle = case.kind.info().idle_gap;
            for i in 0..case.total {
                if idle {
                    std::thread::sleep(IDLE_GAP);
                }
                let t = Instant::now();
                p.round_trip(i)?;
                if i >= warmup {
                    let _ = hist.record(t.elapsed().as_nanos() as u64);
                }
            }
            Ok(row(Some(percentiles(&hist)), None, None, None))
        }
        Scenario::Stream => {
            let mut start = None;
            let mut lost_before = None;
            let mut timed = count;
            for i in 0..case.total {
                if i == warmup {
                    start = Some(Instant::now());
                    lost_before = p.lost();
                    // A receiver that fell behind during the warm-up may have
                    // jumped past its end: the messages it jumped over were
                    // counted lost before the clock started, and are not
                    // timed (counting them as received in no time made a
                    // 1 MiB broadcast stream read 38 to 742 GB/s).
                    let first = p.handled().unwrap_or(warmup).max(warmup);
                    timed = case.total.saturating_sub(first);
                }
                p.receive(i)?;
            }
            let secs = start.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
            // `timed` messages were sent after the clock started (the first
            // of them at its start); all were received but those lost.
            let lost = p.lost().map(|l| l - lost_before.unwrap_or(0));
            let rate = timed.saturating_sub(lost.unwrap_or(0)) as f64 / secs;
            let mut row = row(None, Some(rate), Some(rate * case.size as f64 / 1e9), lost);
            row.count = timed;
            Ok(row)
        }
    }
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

/// The child process of a case: `PEER SCENARIO SIZE TOTAL NAME`.
///
/// # Errors
/// [`BenchError::Unsupported`] for arguments that do not fit; the
/// transport's error otherwise.
pub fn peer_main(args: &[String]) -> Result<()> {
    let bad = |what: String| BenchError::Unsupported(what);
    let [peer, sc, size, total, name] = args else {
        return Err(bad(format!(
            "expected PEER SCENARIO SIZE COUNT NAME, got {args:?}"
        )));
    };
    let case = Case {
        kind: TransportKind::from_code(peer).ok_or_else(|| bad(format!("unknown peer {peer}")))?,
        scenario: Scenario::parse(sc).ok_or_else(|| bad(format!("unknown scenario {sc}")))?,
        size: size.parse().map_err(|_| bad(format!("bad size {size}")))?,
        total: total
            .parse()
            .map_err(|_| bad(format!("bad count {total}")))?,
        name: name.clone(),
    };
    if let Some(cpu) = std::env::var(CPU_VAR).ok().and_then(|c| c.parse().ok()) {
        pin_to(cpu);
    }
    with_transport!(case.kind, child_side(&case))
}

fn child_side<T: Transport>(case: &Case) -> Result<()> {
    T::child(case, &|| eprintln!("ready"))
}

/// Lets this process run on every CPU again (after [`pin_to`]).
fn unpin() {
    #[cfg(target_os = "linux")]
    {
        let mut set = rustix::thread::CpuSet::new();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        for cpu in 0..cpus.max(2) {
            set.set(cpu);
        }
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
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
/// [`TransportKind::SpscIdle`]: well past the spinning phase of a blocking receive, so
/// that the peer sleeps in the kernel when the message comes.
pub const IDLE_GAP: Duration = Duration::from_micros(500);

/// The environment variable that tells a peer which CPU to run on.
const CPU_VAR: &str = "FILEMAP_BENCH_CPU";

#[cfg(test)]
mod tests {
    use super::*;

    /// A lossy stream's receiver that, at message `jump_at`, finds it fell
    /// behind and jumps to message `jump_to`, the ones between lost.
    struct Jumping {
        jump_at: u64,
        jump_to: u64,
        next: u64,
        lost: u64,
        received: u64,
    }

    impl ParentSide for Jumping {
        fn round_trip(&mut self, _i: u64) -> Result<()> {
            unreachable!("a stream")
        }
        fn receive(&mut self, i: u64) -> Result<()> {
            if self.next > i {
                return Ok(());
            }
            if i == self.jump_at {
                self.lost += self.jump_to - i;
                self.next = self.jump_to + 1;
            } else {
                self.next = i + 1;
            }
            self.received += 1;
            Ok(())
        }
        fn lost(&self) -> Option<u64> {
            Some(self.lost)
        }
        fn handled(&self) -> Option<u64> {
            Some(self.next)
        }
    }

    fn stream(jump_at: u64, jump_to: u64) -> Row {
        let case = Case {
            kind: TransportKind::Broadcast,
            scenario: Scenario::Stream,
            size: 64,
            total: 100,
            name: "unused".into(),
        };
        let mut p = Jumping {
            jump_at,
            jump_to,
            next: 0,
            lost: 0,
            received: 0,
        };
        let row = time(&mut p, &case, 10).expect("a fake cannot fail");
        // Every message was received or counted lost.
        assert_eq!(p.received + p.lost, 100);
        row
    }

    #[test]
    fn a_stream_times_only_the_messages_after_the_warm_up() {
        // A jump during the warm-up past its end: messages 5 to 89 were lost
        // and 90 received before the clock started, and 91 to 99 are all that
        // is timed (it used to count 10 to 99 as received, in the time of the
        // last nine).
        let row = stream(5, 90);
        assert_eq!(row.count, 9);
        assert_eq!(row.lost, Some(0));
        // A jump inside the warm-up: all 90 after it are timed.
        let row = stream(2, 6);
        assert_eq!(row.count, 90);
        assert_eq!(row.lost, Some(0));
        // A jump after the clock started: its losses are the timed stream's.
        let row = stream(20, 50);
        assert_eq!(row.count, 90);
        assert_eq!(row.lost, Some(30));
    }

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
    fn every_peer_has_one_row_with_a_unique_code() {
        use std::collections::HashSet;
        let all = [
            TransportKind::FloorSpin,
            TransportKind::FloorFutex,
            TransportKind::FloorFutexIdle,
            TransportKind::SpscSpin,
            TransportKind::SpscLarge,
            TransportKind::SpscZeroCopy,
            TransportKind::SpscBlocking,
            TransportKind::SpscC,
            TransportKind::SpscClient,
            TransportKind::SpscIdle,
            TransportKind::WaitSet1,
            TransportKind::WaitSet64,
            TransportKind::WaitSet1000,
            TransportKind::WaitSetIdle,
            TransportKind::WaitSet64Idle,
            TransportKind::AsyncCurrent,
            TransportKind::AsyncMulti,
            TransportKind::AsyncIdle,
            TransportKind::TokioUnixSocket,
            TransportKind::Broadcast,
            TransportKind::BroadcastBlocking,
            TransportKind::Mpmc,
            TransportKind::MpmcBlocking,
            TransportKind::Mpmc2x2,
            TransportKind::Mpmc2x2Blocking,
            TransportKind::Pipe,
            TransportKind::UnixSocket,
            TransportKind::Iceoryx2,
            TransportKind::Rpc,
            TransportKind::UnixSocketRpc,
            TransportKind::Iceoryx2Rpc,
            TransportKind::ZenohPubSub,
            TransportKind::ZenohBridge,
        ];
        assert_eq!(TRANSPORTS.len(), all.len());
        for p in all {
            assert_eq!(
                TRANSPORTS.iter().filter(|i| i.kind == p).count(),
                1,
                "{p:?}"
            );
        }
        let codes: HashSet<_> = TRANSPORTS.iter().map(|i| i.code).collect();
        assert_eq!(codes.len(), TRANSPORTS.len(), "codes are unique");
        assert!(TransportKind::all().contains(&TransportKind::SpscSpin));
        assert!(matches!(
            TransportKind::parse_list(&["nope".into()]),
            Err(BenchError::Unsupported(m)) if m.contains("spsc-spin")
        ));
    }

    #[test]
    fn a_floor_that_moves_during_a_run_is_reported() {
        let m = |floor: &[u64]| Measured {
            rows: Vec::new(),
            floor_p50_ns: floor.to_vec(),
        };
        let w = m(&[479, 104, 482, 474, 102]).unsteady().expect("warns");
        assert!(
            w.contains("102 to 482 ns") && w.contains("5 measurements"),
            "{w}"
        );
        assert_eq!(m(&[297, 317, 362, 328, 374]).unsteady(), None);
        assert_eq!(m(&[300, 450]).unsteady(), None, "1.5x exactly is steady");
        assert!(m(&[300, 451]).unsteady().is_some());
        assert_eq!(m(&[100]).unsteady(), None);
        assert_eq!(m(&[]).unsteady(), None);
        assert!(m(&[0, 1]).unsteady().is_some());
        assert_eq!(m(&[u64::MAX, u64::MAX]).unsteady(), None);
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
            lost: None,
        };
        let st = |t: &str, g| Row {
            scenario: Scenario::Stream,
            transport: t.into(),
            size: 64,
            count: 10,
            latency_ns: None,
            msgs_per_s: Some(1e6),
            gb_per_s: Some(g),
            lost: None,
        };
        let t = table(&[
            lat(TransportKind::FloorSpin.as_str(), 100),
            lat("pipe", 5000),
            st("floor: memcpy, one core", 10.0),
            st("pipe", 2.5),
        ]);
        assert!(t.contains("1.00x") && t.contains("50.00x"), "{t}");
        assert!(t.contains("25%"), "{t}");
    }
}
