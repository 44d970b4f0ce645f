//! `filemap-bench`: IPC side by side, each case as two real processes (see
//! the library docs for what each row measures).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use filemap_bench::{BenchError, Options, Result, TransportKind};

/// Benchmark IPC side by side: the shared-memory floor, filemap's channels,
/// pipes, Unix sockets (and iceoryx2 with the `iceoryx2` feature).
#[derive(Parser)]
#[command(
    name = "filemap-bench",
    version,
    after_help = "Each case runs as two processes (pinned to CPUs 0 and 1 when there are two).\n\
                  The floor row runs at every size and round; if its p50 moves by more than half \
                  during the run, the run ends with a warning that its rows are not comparable.\n\n\
                  Examples:\n  filemap-bench --quick\n  filemap-bench --sizes 64,1MiB --json bench.json\n  \
                  filemap-bench --only floor-spin,spsc-spin --sizes 64 --rounds 5"
)]
struct Args {
    /// A short run (well under 30 s).
    #[arg(long)]
    quick: bool,
    /// Message sizes, comma-separated (bytes, or with K/KiB, M/MiB, G/GiB).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "8,64,1K,64K,1MiB")]
    sizes: Vec<u64>,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also draw latency and throughput against message size as an SVG chart.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Only these transports, comma-separated (e.g. floor-spin,spsc-spin;
    /// an unknown one lists those there are).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Run every case this many times, interleaved, and report each case's
    /// median run (steadier figures on a noisy machine).
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..=99))]
    rounds: u32,
    /// Messages per case instead of the default counts (for a smoke test).
    #[arg(long, hide = true)]
    count: Option<u64>,
    /// Internal: run as the peer process of a case.
    #[arg(long, hide = true, num_args = 5, allow_hyphen_values = true)]
    peer: Option<Vec<String>>,
}

/// `4096`, `64K`, `1MiB`, `2G`: powers of 1024.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 4096, 64K, 1MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return Err(format!("`{s}`: unknown unit; use K, M or G")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filemap-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(peer) = args.peer {
        return filemap_bench::peer_main(&peer);
    }
    let exe = std::env::current_exe()?;
    let sizes = args
        .sizes
        .iter()
        .map(|&s| usize::try_from(s))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| BenchError::Unsupported("a size is larger than this machine's".into()))?;
    let mut opts = Options::new(sizes, args.quick, (exe, vec!["--peer".into()]));
    opts.count = args.count;
    opts.rounds = args.rounds as usize;
    if let Some(codes) = &args.only {
        opts.transports = TransportKind::parse_list(codes)?;
    }
    // Transports this machine cannot run now (large pages withheld) are
    // left out, and said so.
    let mut skipped = Vec::new();
    opts.transports.retain(|p| match p.unavailable() {
        Some(why) => {
            skipped.push(format!("not measured: {}: {why}", p.as_str()));
            false
        }
        None => true,
    });
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let measured = filemap_bench::run(&opts, |i, n, what| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
        bar.set_message(what.to_owned());
    });
    bar.finish_and_clear();
    let measured = measured?;
    let rows = &measured.rows;
    eprintln!(
        "{} cases in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", filemap_bench::table(rows));
    for line in &skipped {
        println!("{line}");
    }
    let unsteady = measured.unsteady();
    if let Some(w) = &unsteady {
        println!("{w}\n");
    }
    let ops = filemap_bench::run_ops(match (args.count, args.quick) {
        (Some(n), _) => n as usize,
        (None, true) => 2_000,
        (None, false) => 20_000,
    })?;
    println!("{}", filemap_bench::ops_table(&ops));
    if let Some(path) = &args.json {
        let v = serde_json::json!({
            "machine": {"cpus": std::thread::available_parallelism().map_or(1, |n| n.get()), "os": std::env::consts::OS},
            "quick": args.quick,
            "rounds": args.rounds,
            "rows": rows.iter().map(filemap_bench::Row::to_json).collect::<Vec<_>>(),
            "floor_p50_ns": measured.floor_p50_ns,
            "unsteady": unsteady,
            "operations": ops.iter().map(filemap_bench::OpRow::to_json).collect::<Vec<_>>(),
        });
        let text =
            serde_json::to_string_pretty(&v).map_err(|e| BenchError::library("serde_json", e))?;
        std::fs::write(path, text)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.svg {
        filemap_bench::write_svg(rows, path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
