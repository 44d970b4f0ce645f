//! `filemap`: see, make, read, write and clean shared-memory mappings.
//!
//! A thin layer over the `filemap` library; `filemap --help` and
//! `filemap COMMAND --help` describe each command with examples.
//!
//! Exit codes: 0 success, 1 not found (or a check failed), 2 usage or OS error.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use filemap::inspect::{self, Cleaned, ObjectInfo, State};
use filemap::{Access, Error, Lifetime, Mapping, Options, ViewAccess};

mod demo;
mod fmt;

use fmt::{human_size, parse_size};

const EXAMPLES: &str = "Examples:
  filemap create jobs --size 1MiB      # create `jobs` and hold it until Ctrl-C
  filemap list                         # every shared-memory object, who holds it
  filemap write jobs --text hello      # write bytes at offset 0
  filemap dump jobs --len 64           # hex + ASCII
  filemap clean --dry-run              # what a clean would remove
  filemap demo                         # two processes sharing a mapping, narrated";

/// See, make, read, write and clean shared-memory mappings.
#[derive(Parser)]
#[command(name = "filemap", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a mapping. Without --persistent it lives only while a process holds
    /// it, so `create` holds it until Ctrl-C, SIGTERM, or end of stdin.
    #[command(after_help = "Examples:
  filemap create jobs --size 64K
  filemap create cache --size 2G --persistent --mode 640
  filemap create log --size 1MiB --file /tmp/log.bin")]
    Create {
        /// Name: 1-200 of [A-Za-z0-9._-], optionally after `Local\\` or `Global\\`.
        name: String,
        /// Size: bytes, or with K/KiB, M/MiB, G/GiB (all powers of 1024).
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Back it by this file (created or grown to SIZE) instead of memory;
        /// other processes map the file by its path. NAME is then only a label.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Keep it after this process exits, until `filemap rm` (not on Windows).
        #[arg(long)]
        persistent: bool,
        /// Permission bits in octal (Unix), applied exactly whatever the umask. Default 600.
        #[arg(long, value_parser = parse_mode)]
        mode: Option<u32>,
    },
    /// Show size, mode, owner, lifetime, state and holders of one object.
    #[command(after_help = "Examples:\n  filemap info jobs\n  filemap info jobs --json")]
    Info {
        /// The object's name.
        name: String,
        /// Print JSON (schema in the README).
        #[arg(long)]
        json: bool,
    },
    /// List every shared-memory object on the machine (Linux).
    #[command(
        after_help = "States: live (held or mapped), stale (a filemap object whose holders \
                            all exited or crashed), idle (persistent, unheld), foreign (not made by filemap).\n\n\
                            Examples:\n  filemap list\n  filemap list --json"
    )]
    List {
        /// Print JSON (schema in the README).
        #[arg(long)]
        json: bool,
    },
    /// Show bytes as hex and ASCII, like `xxd`.
    #[command(
        after_help = "Examples:\n  filemap dump jobs\n  filemap dump jobs --offset 4K --len 256"
    )]
    Dump {
        #[command(flatten)]
        span: Span,
    },
    /// Write raw bytes of the object to stdout.
    #[command(
        after_help = "Examples:\n  filemap read jobs > jobs.bin\n  filemap read jobs --offset 100 --len 5"
    )]
    Read {
        #[command(flatten)]
        span: Span,
    },
    /// Write bytes into the object: from stdin, or --hex, or --text.
    #[command(
        after_help = "Examples:\n  filemap write jobs --text hello\n  filemap write jobs --offset 16 --hex 00ff10\n  \
                            printf abc | filemap write jobs"
    )]
    Write {
        /// The object's name.
        name: String,
        /// Where to start.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offset: u64,
        /// Bytes as hex digits.
        #[arg(long, conflicts_with = "text")]
        hex: Option<String>,
        /// Bytes as UTF-8 text.
        #[arg(long)]
        text: Option<String>,
    },
    /// Remove names (like shm_unlink); holders keep their memory.
    #[command(after_help = "Examples:\n  filemap rm cache\n  filemap rm a b c")]
    Rm {
        /// Names to remove.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove stale objects only: filemap objects no process holds or maps.
    #[command(after_help = "Examples:\n  filemap clean --dry-run\n  filemap clean")]
    Clean {
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Benchmark IPC side by side: the shared-memory floor, filemap, pipes, Unix sockets.
    #[command(
        after_help = "Each case runs as two processes (pinned to CPUs 0 and 1 when there are two).\n\n\
                            Examples:\n  filemap bench --quick\n  filemap bench --sizes 64,1MiB --json bench.json\n  \
                            filemap bench --only floor-spin,spsc-spin --sizes 64 --rounds 5"
    )]
    Bench {
        /// A short run (well under 30 s).
        #[arg(long)]
        quick: bool,
        /// Message sizes, comma-separated.
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
    },
    /// Two real processes share a mapping, narrated step by step.
    Demo {
        /// Internal: the role of a child process of the demo.
        #[arg(long, hide = true)]
        role: Option<String>,
    },
}

/// The bytes `dump` and `read` show.
#[derive(clap::Args)]
struct Span {
    /// The object's name.
    name: String,
    /// Where to start.
    #[arg(long, default_value = "0", value_parser = parse_size)]
    offset: u64,
    /// How many bytes (default: to the end).
    #[arg(long, value_parser = parse_size)]
    len: Option<u64>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("`{s}` is not an octal mode between 0 and 777"))
}

/// A failure: the message for stderr and the exit code.
struct Failure {
    msg: String,
    code: u8,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let (code, hint) = match &e {
            Error::NotFound { .. } => (1, "; `filemap list` shows what exists"),
            Error::AlreadyExists { .. } => {
                (2, "; `filemap info` shows it, `filemap rm` removes it")
            }
            Error::AccessDenied { .. } => {
                (2, "; check the object's owner and mode with `filemap info`")
            }
            Error::OutOfRange { .. } => (2, "; `filemap info` shows its size"),
            _ => (2, ""),
        };
        Failure {
            msg: format!("{e}{hint}"),
            code,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure {
            msg: format!("I/O error: {e}"),
            code: 2,
        }
    }
}

fn fail(msg: impl Into<String>, code: u8) -> Failure {
    Failure {
        msg: msg.into(),
        code,
    }
}

type Res = Result<ExitCode, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("filemap: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

fn run(cmd: Cmd) -> Res {
    match cmd {
        Cmd::Create {
            name,
            size,
            file,
            persistent,
            mode,
        } => create(&name, size, file, persistent, mode),
        Cmd::Info { name, json } => info(&name, json),
        Cmd::List { json } => list(json),
        Cmd::Dump { span } => {
            let bytes = read_range(&span)?;
            let mut out = std::io::stdout().lock();
            fmt::hexdump(&mut out, span.offset, &bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Read { span } => {
            let bytes = read_range(&span)?;
            std::io::stdout().lock().write_all(&bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Write {
            name,
            offset,
            hex,
            text,
        } => write(&name, offset, hex, text),
        Cmd::Rm { names } => rm(&names),
        Cmd::Clean { dry_run } => clean(dry_run),
        Cmd::Bench {
            quick,
            sizes,
            json,
            svg,
            only,
            rounds,
            count,
            peer,
        } => run_bench(
            BenchArgs {
                quick,
                sizes,
                only,
                rounds,
                count,
            },
            (json, svg),
            peer,
        ),
        Cmd::Demo { role } => demo::run(role.as_deref())
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| fail(e, 2)),
    }
}

/// What `filemap bench` was asked to run.
struct BenchArgs {
    quick: bool,
    sizes: Vec<u64>,
    only: Option<Vec<String>>,
    rounds: u32,
    count: Option<u64>,
}

fn run_bench(
    args: BenchArgs,
    (json, svg): (Option<PathBuf>, Option<PathBuf>),
    peer: Option<Vec<String>>,
) -> Res {
    if let Some(args) = peer {
        filemap_bench::peer_main(&args).map_err(|e| fail(e, 2))?;
        return Ok(ExitCode::SUCCESS);
    }
    let BenchArgs {
        quick,
        sizes,
        only,
        rounds,
        count,
    } = args;
    let exe = std::env::current_exe()?;
    let mut opts = filemap_bench::Options::new(
        sizes.iter().map(|&s| s as usize).collect(),
        quick,
        (exe, vec!["bench".into(), "--peer".into()]),
    );
    opts.count = count;
    opts.rounds = rounds as usize;
    if let Some(codes) = only {
        opts.peers = filemap_bench::Peer::parse_list(&codes).map_err(|e| fail(e, 2))?;
    }
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let rows = filemap_bench::run(&opts, |i, n, what| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
        bar.set_message(what.to_owned());
    });
    bar.finish_and_clear();
    let rows = rows.map_err(|e| fail(e, 2))?;
    eprintln!(
        "{} cases in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{}", filemap_bench::table(&rows));
    let ops = filemap_bench::run_ops(match (count, quick) {
        (Some(n), _) => n as usize,
        (None, true) => 2_000,
        (None, false) => 20_000,
    })
    .map_err(|e| fail(e, 2))?;
    println!("{}", filemap_bench::ops_table(&ops));
    if let Some(path) = json {
        let v = serde_json::json!({
            "machine": {"cpus": std::thread::available_parallelism().map_or(1, |n| n.get()), "os": std::env::consts::OS},
            "quick": quick,
            "rounds": rounds,
            "rows": rows.iter().map(filemap_bench::Row::to_json).collect::<Vec<_>>(),
            "operations": ops.iter().map(filemap_bench::OpRow::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap_or_default())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = svg {
        filemap_bench::write_svg(&rows, &path)
            .map_err(|e| fail(format!("writing {}: {e}", path.display()), 2))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn create(
    name: &str,
    size: u64,
    file: Option<PathBuf>,
    persistent: bool,
    mode: Option<u32>,
) -> Res {
    let (m, what) = match &file {
        Some(path) => {
            let m = Mapping::from_path(path, size, Access::ReadWrite)?;
            (
                m,
                format!("file-backed mapping `{name}` of {}", path.display()),
            )
        }
        None => {
            let mut o = Options::new();
            if persistent {
                o = o.lifetime(Lifetime::Persistent);
            }
            if let Some(mode) = mode {
                o = o.mode(mode);
            }
            (o.create(name, size)?, format!("`{name}`"))
        }
    };
    let size = human_size(m.len());
    if persistent && file.is_none() {
        println!("created {what} ({size}), persistent: it stays until `filemap rm {name}`");
        return Ok(ExitCode::SUCCESS);
    }
    // Install the handler before saying we hold it, so that a signal sent
    // as soon as the line appears releases cleanly instead of killing us.
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    let on_signal = tx.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send("a signal");
    })
    .map_err(|e| fail(format!("cannot install the signal handler: {e}"), 2))?;
    println!(
        "created {what} ({size}); holding it (pid {}) until Ctrl-C, SIGTERM or end of input",
        std::process::id()
    );
    std::io::stdout().flush()?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send("end of input");
    });
    let why = rx.recv().unwrap_or("end of input");
    drop(m);
    println!("released {what} on {why}; it is gone once no other process holds it");
    Ok(ExitCode::SUCCESS)
}

fn json_info(o: &ObjectInfo) -> serde_json::Value {
    serde_json::json!({
        "name": o.name,
        "size": o.size,
        "uid": o.uid,
        "user": o.user,
        "mode": format!("{:04o}", o.mode),
        "backing": "memory",
        "lifetime": o.origin.as_str(),
        "state": o.state.as_str(),
        "segment": o.header.as_ref().map(json_header),
        "holders": o.holders.iter().map(|h| serde_json::json!({
            "pid": h.pid, "command": h.command, "open": h.open, "mapped": h.mapped,
        })).collect::<Vec<_>>(),
    })
}

fn json_header(h: &filemap::segment::Header) -> serde_json::Value {
    serde_json::json!({
        "kind": h.kind.as_str(),
        "version": h.version,
        "fingerprint": format!("{:016x}", h.fingerprint),
        "capacity": h.capacity,
        "param": h.param,
        "total_len": h.total_len,
        "creator_pid": h.creator_pid,
        "ready": h.ready,
    })
}

fn header_text(h: Option<&filemap::segment::Header>) -> String {
    match h {
        None => "none (a raw mapping)".into(),
        Some(h) => format!(
            "filemap segment: kind {}, format v{}, layout {:016x}, capacity {}, param {}, \
             {} bytes, made by pid {}, {}",
            h.kind.as_str(),
            h.version,
            h.fingerprint,
            h.capacity,
            h.param,
            h.total_len,
            h.creator_pid,
            if h.ready { "ready" } else { "not ready" }
        ),
    }
}

fn holders_text(o: &ObjectInfo) -> String {
    if o.holders.is_empty() {
        return "-".into();
    }
    o.holders
        .iter()
        .map(|h| format!("{}({})", h.pid, h.command))
        .collect::<Vec<_>>()
        .join(",")
}

fn info(name: &str, json: bool) -> Res {
    let o = match inspect::info(name) {
        Ok(o) => o,
        // Where the OS offers no inspection (Windows, macOS), say what opening shows.
        Err(Error::Unsupported { .. }) => {
            let m = Mapping::open(name, Access::Read)?;
            let header = filemap::segment::read_header(&m.view(.., ViewAccess::Read)?)?;
            if json {
                let segment = header.as_ref().map(json_header);
                let v = serde_json::json!({
                    "name": name, "size": m.len(), "backing": "memory", "segment": segment, "holders": null,
                });
                println!("{v}");
            } else {
                println!("name:     {name}");
                println!("size:     {}", fmt::size_line(m.len()));
                println!("backing:  memory");
                println!("header:   {}", header_text(header.as_ref()));
                println!("holders:  not available on this OS");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", json_info(&o));
        return Ok(ExitCode::SUCCESS);
    }
    let owner = match &o.user {
        Some(u) => format!("{u} (uid {})", o.uid),
        None => format!("uid {}", o.uid),
    };
    println!("name:     {}", o.name);
    println!("size:     {}", fmt::size_line(o.size));
    println!("owner:    {owner}");
    println!("mode:     {:04o}", o.mode);
    println!("backing:  memory (/dev/shm/{})", o.name);
    println!("lifetime: {}", o.origin.as_str());
    println!("state:    {}", o.state.as_str());
    println!("header:   {}", header_text(o.header.as_ref()));
    if o.holders.is_empty() {
        println!("holders:  none");
    }
    for (i, h) in o.holders.iter().enumerate() {
        let how = match (h.open, h.mapped) {
            (true, true) => "open, mapped",
            (true, false) => "open",
            _ => "mapped",
        };
        let label = if i == 0 { "holders:" } else { "" };
        println!("{label:<9} {} {} ({how})", h.pid, h.command);
    }
    Ok(ExitCode::SUCCESS)
}

fn list(json: bool) -> Res {
    let all = inspect::list()?;
    if json {
        let v: Vec<_> = all.iter().map(json_info).collect();
        println!("{}", serde_json::json!({ "objects": v }));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|o| {
            [
                o.name.clone(),
                human_size(o.size),
                o.user.clone().unwrap_or_else(|| o.uid.to_string()),
                format!("{:04o}", o.mode),
                o.state.as_str().to_owned(),
                holders_text(o),
            ]
        })
        .collect();
    fmt::table(
        &["NAME", "SIZE", "OWNER", "MODE", "STATE", "HOLDERS"],
        &rows,
    );
    if all.is_empty() {
        println!("(no shared-memory objects)");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_range(span: &Span) -> Result<Vec<u8>, Failure> {
    let m = Mapping::open(&span.name, Access::Read)?;
    let v = m.map(span.offset, span.len.unwrap_or(0), ViewAccess::Read)?;
    Ok(v.to_vec())
}

fn write(name: &str, offset: u64, hex: Option<String>, text: Option<String>) -> Res {
    let data = match (hex, text) {
        (Some(h), _) => fmt::parse_hex(&h).map_err(|e| fail(format!("--hex: {e}"), 2))?,
        (_, Some(t)) => t.into_bytes(),
        (None, None) => {
            let mut buf = Vec::new();
            std::io::stdin().lock().read_to_end(&mut buf)?;
            buf
        }
    };
    if data.is_empty() {
        return Err(fail(
            "nothing to write: give --hex, --text, or bytes on stdin",
            2,
        ));
    }
    let m = Mapping::open(name, Access::ReadWrite)?;
    let v = m.map(offset, data.len() as u64, ViewAccess::ReadWrite)?;
    v.write_at(0, &data)?;
    println!("wrote {} bytes to `{name}` at offset {offset}", data.len());
    Ok(ExitCode::SUCCESS)
}

fn rm(names: &[String]) -> Res {
    let mut worst = 0u8;
    for name in names {
        match Mapping::remove(name) {
            Ok(()) => println!("removed `{name}`"),
            Err(e) => {
                let f = Failure::from(e);
                eprintln!("filemap: {}", f.msg);
                worst = worst.max(f.code);
            }
        }
    }
    Ok(ExitCode::from(worst))
}

fn clean(dry_run: bool) -> Res {
    let all = inspect::list()?;
    let (mut removed, mut kept) = (0, 0);
    for o in &all {
        if o.state != State::Stale {
            let why = match o.state {
                State::Live => format!("live, held by {}", holders_text(o)),
                State::Idle => "persistent: it stays until `filemap rm`".into(),
                State::Foreign => "foreign: not created by filemap".into(),
                State::Stale => unreachable!(),
            };
            println!("kept    {}: {why}", o.name);
            kept += 1;
            continue;
        }
        if dry_run {
            println!(
                "would remove {}: stale, no process holds or maps it",
                o.name
            );
            removed += 1;
            continue;
        }
        match inspect::remove_if_stale(&o.name) {
            Ok(Cleaned::Removed) => {
                println!("removed {}: stale, no process held or mapped it", o.name);
                removed += 1;
            }
            Ok(Cleaned::Kept(why)) => {
                println!("kept    {}: {why}", o.name);
                kept += 1;
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => {
                eprintln!("filemap: {e}");
                kept += 1;
            }
        }
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    println!("{verb} {removed}, kept {kept}");
    Ok(ExitCode::SUCCESS)
}
