//! `filemap bridge`: carry local channels and `Latest` cells to and from
//! other hosts over Zenoh (the `bridge` feature; see the `filemap-zenoh` crate).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use filemap_zenoh::{zenoh, Backpressure, Bridge, Config, Route, RouteStats};

use crate::error::{CliError, Result};

/// Bridge local channels to other hosts over Zenoh. Runs until Ctrl-C or
/// SIGTERM; reports each route's counters every --interval (stderr, or
/// stdout with --json) and once more at exit.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  # Host A: publish the local channel `sensors`, take commands into `cmds`.
  filemap bridge --out sensors:demo/sensors --in demo/cmds:cmds --listen tcp/0.0.0.0:7447
  # Host B: the other way round, connecting to A.
  filemap bridge --in demo/sensors:sensors --out cmds:demo/cmds --connect tcp/HOST_A:7447
  # Routes and Zenoh's own settings from a file (JSON5; see filemap-zenoh's Config).
  filemap bridge --config bridge.json5 --json

Each message becomes one Zenoh sample whose payload is the message's bytes;
a sequence number rides in the sample's attachment, so the receiving side
counts what was lost. The kind of each local object (spsc, mpmc, broadcast,
Latest) is read from its header; a route waits for its object to exist.")]
pub struct Args {
    /// Publish the local channel or Latest cell NAME on the Zenoh key KEY.
    #[arg(long = "out", value_name = "NAME:KEY")]
    outs: Vec<String>,
    /// Write samples on the key expression KEY into the local object NAME.
    #[arg(long = "in", value_name = "KEY:NAME")]
    ins: Vec<String>,
    /// Backpressure for the routes given by --out and --in (default: block
    /// for spsc and mpmc channels, drop for broadcast channels and Latest cells).
    #[arg(long, value_parser = parse_backpressure)]
    backpressure: Option<Backpressure>,
    /// A bridge configuration file (JSON5): `zenoh` (Zenoh's configuration)
    /// and `routes`. Flags add to it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A Zenoh configuration file (as zenohd takes), for the Zenoh part.
    #[arg(long)]
    zenoh_config: Option<PathBuf>,
    /// Zenoh endpoint to connect to (repeatable), as `tcp/HOST:PORT`.
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Zenoh endpoint to listen on (repeatable), as `tcp/ADDR:PORT`.
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Zenoh mode: `peer` (the default) or `client` (through a router).
    #[arg(long)]
    mode: Option<String>,
    /// Turn Zenoh's multicast scouting off (then peers meet only through
    /// --connect and --listen).
    #[arg(long)]
    no_multicast_scouting: bool,
    /// Any other Zenoh setting, as KEY=JSON5 (repeatable), e.g.
    /// `transport/link/tx/lease=5000`.
    #[arg(long = "cfg", value_name = "KEY=VALUE")]
    cfg: Vec<String>,
    /// Report as JSON lines on stdout: `{"bridge": ID, "final": BOOL, "routes": [...]}`.
    #[arg(long)]
    json: bool,
    /// Seconds between reports (0: only the final one).
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
}

fn parse_backpressure(s: &str) -> std::result::Result<Backpressure, String> {
    match s {
        "block" => Ok(Backpressure::Block),
        "drop" => Ok(Backpressure::Drop),
        _ => Err(format!("`{s}`: expected block or drop")),
    }
}

fn bridge_err(e: filemap_zenoh::Error) -> CliError {
    match e {
        filemap_zenoh::Error::Route { .. } | filemap_zenoh::Error::Config(_) => {
            CliError::Usage(e.to_string())
        }
        filemap_zenoh::Error::Zenoh(_) => CliError::Other(e.to_string()),
    }
}

/// The configuration the arguments describe.
fn config(a: &Args) -> Result<Config> {
    let mut c = match &a.config {
        Some(path) => Config::from_file(path).map_err(bridge_err)?,
        None => Config::new(zenoh::Config::default()),
    };
    if let Some(path) = &a.zenoh_config {
        c.zenoh = zenoh::Config::from_file(path)
            .map_err(|e| CliError::Usage(format!("Zenoh configuration {}: {e}", path.display())))?;
    }
    let set = |c: &mut Config, key: &str, value: String| {
        c.zenoh
            .insert_json5(key, &value)
            .map_err(|e| CliError::Usage(format!("Zenoh setting {key}={value}: {e}")))
    };
    let list = |v: &[String]| serde_json::to_string(v).expect("strings serialise");
    if !a.connect.is_empty() {
        set(&mut c, "connect/endpoints", list(&a.connect))?;
    }
    if !a.listen.is_empty() {
        set(&mut c, "listen/endpoints", list(&a.listen))?;
    }
    if let Some(mode) = &a.mode {
        set(
            &mut c,
            "mode",
            serde_json::to_string(mode).expect("a string"),
        )?;
    }
    if a.no_multicast_scouting {
        set(&mut c, "scouting/multicast/enabled", "false".into())?;
    }
    for kv in &a.cfg {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--cfg {kv}: expected KEY=VALUE")))?;
        set(&mut c, k, v.to_owned())?;
    }
    let with = |r: Route| match a.backpressure {
        Some(b) => r.backpressure(b),
        None => r,
    };
    for o in &a.outs {
        c.route(with(Route::parse_out(o).map_err(bridge_err)?));
    }
    for i in &a.ins {
        c.route(with(Route::parse_in(i).map_err(bridge_err)?));
    }
    Ok(c)
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    if !(a.interval >= 0.0 && a.interval.is_finite()) {
        return Err(CliError::Usage(format!(
            "--interval {}: expected seconds, 0 or more",
            a.interval
        )));
    }
    let c = config(&a)?;
    let bridge = Bridge::new(c).map_err(bridge_err)?;
    let stop = bridge.stopper();
    ctrlc::set_handler(move || stop.stop())
        .map_err(|e| CliError::Other(format!("cannot handle Ctrl-C: {e}")))?;
    eprintln!(
        "filemap bridge {}: {} route(s); Ctrl-C stops",
        bridge.id(),
        bridge.stats().len()
    );
    let interval = (a.interval > 0.0).then(|| Duration::from_secs_f64(a.interval));
    let mut last: Vec<RouteStats> = Vec::new();
    let result = std::thread::scope(|s| {
        let running = s.spawn(|| bridge.run());
        let mut next = interval.map(|i| Instant::now() + i);
        while !running.is_finished() {
            std::thread::park_timeout(Duration::from_millis(50));
            if let Some(at) = next {
                if Instant::now() >= at {
                    next = interval.map(|i| at + i);
                    report(&a, &bridge, false, &mut last, out)?;
                }
            }
        }
        running
            .join()
            .map_err(|_| CliError::Other("the bridge panicked".into()))
    })?;
    report(&a, &bridge, true, &mut last, out)?;
    result.map_err(bridge_err)
}

/// One report: every route as JSON, or in text the routes that changed.
fn report(
    a: &Args,
    bridge: &Bridge,
    last_one: bool,
    last: &mut Vec<RouteStats>,
    out: &mut impl Write,
) -> Result {
    let now = bridge.stats();
    if a.json {
        let line = serde_json::json!({ "bridge": bridge.id(), "final": last_one, "routes": now });
        writeln!(out, "{line}")?;
        out.flush()?;
    } else {
        for (i, r) in now.iter().enumerate() {
            let same = last.get(i).is_some_and(|l| {
                (l.messages, l.lost, l.dropped, l.rejected, &l.state)
                    == (r.messages, r.lost, r.dropped, r.rejected, &r.state)
            });
            // A publisher heard for the first time: say where it was joined,
            // so that a gap across a restart shows (the messages before it
            // were delivered by an earlier run, or lost).
            for o in &r.origins {
                let known = last
                    .get(i)
                    .is_some_and(|l| l.origins.iter().any(|p| p.origin == o.origin));
                if !known {
                    eprintln!(
                        "{}: hearing bridge {} from message {} on",
                        r.route, o.origin, o.first_seq
                    );
                }
            }
            if last_one || !same {
                eprintln!("{}{}", if last_one { "at exit: " } else { "" }, text(r));
            }
        }
    }
    *last = now;
    Ok(())
}

fn text(r: &RouteStats) -> String {
    let mut s = format!(
        "{}: {}; {} messages, {}, {} lost",
        r.route,
        r.state,
        r.messages,
        crate::fmt::human_size(r.bytes),
        r.lost
    );
    for (n, what) in [
        (
            r.resets,
            "resets (numbers no honest stream makes: forged, or restarted)",
        ),
        (r.dropped, "dropped"),
        (r.rejected, "rejected"),
        (r.reopened, "reopened"),
    ] {
        if n > 0 {
            s.push_str(&format!(", {n} {what}"));
        }
    }
    s
}
