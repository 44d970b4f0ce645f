//! `filemap echo`: print the messages of a broadcast channel as they pass
//! (as one more receiver), or a `Latest` cell's value as it changes.

use std::io::Write;
use std::sync::mpsc::{Receiver as Stop, RecvTimeoutError};
use std::time::Duration;

use filemap::channel::broadcast;
use filemap::inspect::{observe, Detail};
use filemap::sync::LatestBytesReader;

use crate::error::{CliError, Result};

/// Print a broadcast channel's messages as they pass, or a Latest cell's value.
#[derive(clap::Args)]
#[command(
    after_help = "A broadcast channel is read as one more receiver: its other receivers \
                  still get every message. A Latest cell prints its value and version, then \
                  each new version. spsc and mpmc channels are refused: each of their messages \
                  goes to one receiver, so reading one would take it from its consumer \
                  (`filemap hz NAME` measures them, `filemap info NAME` shows their counts).\n\n\
                  Examples:\n  filemap echo events\n  filemap echo events --count 10 --hex\n  \
                  filemap echo position --count 1"
)]
pub struct Args {
    /// The broadcast channel or Latest cell.
    name: String,
    /// Stop after N messages (or values); default: until Ctrl-C, SIGTERM
    /// or the sender closing.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Print bytes as hex (by default text, unless a message is not
    /// printable UTF-8).
    #[arg(long)]
    hex: bool,
}

/// A channel that fires when Ctrl-C or SIGTERM comes.
pub fn stop_signal() -> Result<Stop<()>> {
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| CliError::Other(format!("cannot install the signal handler: {e}")))?;
    Ok(rx)
}

fn show(bytes: &[u8], hex: bool) -> String {
    match std::str::from_utf8(bytes) {
        Ok(t) if !hex && !t.chars().any(|c| c.is_control() && c != '\t') => t.to_owned(),
        _ => bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Whether to stop now (a signal came, or its sender is gone).
fn stopped(stop: &Stop<()>) -> bool {
    !matches!(stop.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty))
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    let stop = stop_signal()?;
    let kind = match observe(&a.name)?.detail {
        Detail::Broadcast { .. } => "broadcast",
        Detail::Latest { .. } => "latest",
        Detail::Spsc { .. } | Detail::Mpmc { .. } => {
            return Err(CliError::Usage(format!(
                "`{}` is an {} channel: each message goes to one receiver, so `filemap echo` \
                 would take messages from its consumer, and refuses. `filemap hz {0}` \
                 measures its rate and `filemap info {0}` shows its counts, without taking any",
                a.name,
                if matches!(observe(&a.name)?.detail, Detail::Spsc { .. }) {
                    "spsc"
                } else {
                    "mpmc"
                }
            )))
        }
        _ => {
            return Err(CliError::Usage(format!(
                "`{}` is not a broadcast channel or a Latest cell: `filemap echo` prints those \
                 (`filemap info {0}` shows what it is)",
                a.name
            )))
        }
    };
    let mut printed = 0u64;
    let more = |printed: u64| a.count.is_none_or(|n| printed < n);
    if kind == "broadcast" {
        let mut rx = broadcast::Receiver::open(&a.name)?;
        writeln!(
            out,
            "echoing `{}` (broadcast, as one more receiver)",
            a.name
        )?;
        out.flush()?;
        let mut m = broadcast::Received::default();
        while more(printed) && !stopped(&stop) {
            match rx.recv_into_timeout(&mut m, Duration::from_millis(100)) {
                Ok(()) => {}
                Err(filemap::Error::Timeout { .. }) => continue,
                Err(filemap::Error::PeerGone { .. }) => {
                    writeln!(out, "the sender closed `{}`", a.name)?;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
            if m.missed > 0 {
                writeln!(out, "({} missed: this reader fell a ring behind)", m.missed)?;
            }
            writeln!(out, "[{}] {}", m.seq, show(&m.data, a.hex))?;
            out.flush()?;
            printed += 1;
        }
        return Ok(());
    }
    let r = LatestBytesReader::open(&a.name)?;
    let mut buf = vec![0u8; r.size()];
    let mut last = None;
    while more(printed) {
        let v = r.read_versioned(&mut buf)?;
        if last != Some(v) {
            writeln!(out, "version {v}: {}", show(&buf, a.hex))?;
            out.flush()?;
            last = Some(v);
            printed += 1;
            continue;
        }
        // Polling the version (a cheap load) for the next write.
        match stop.recv_timeout(Duration::from_millis(5)) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    Ok(())
}
