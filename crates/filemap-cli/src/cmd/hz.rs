//! `filemap hz`: how fast a channel (or a `Latest` cell) moves, window by
//! window, from its counters: nothing is taken from it.

use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use filemap::inspect::{observe, Detail};

use crate::error::{CliError, Result};
use crate::fmt::{self, human_size};

/// Print the rate of a channel or Latest cell, window by window.
#[derive(clap::Args)]
#[command(
    after_help = "Read from the channel's counters: every kind, spsc and mpmc included, \
                  is measured without taking a message from its receivers.\n\n\
                  Examples:\n  filemap hz jobs\n  filemap hz jobs --window 5 --count 3"
)]
pub struct Args {
    /// The channel (spsc, mpmc, broadcast) or Latest cell.
    name: String,
    /// Seconds per window (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = fmt::parse_seconds)]
    window: Duration,
    /// Stop after N windows (default: until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// Messages (or writes) so far, and ring bytes where known.
fn counters(name: &str) -> Result<(u64, Option<u64>, &'static str)> {
    Ok(match observe(name)?.detail {
        Detail::Spsc {
            sent, sent_bytes, ..
        } => (sent, Some(sent_bytes), "msg/s"),
        Detail::Mpmc { sent, .. } | Detail::Broadcast { sent, .. } => (sent, None, "msg/s"),
        Detail::Latest { version, .. } => (version, None, "writes/s"),
        _ => {
            return Err(CliError::Usage(format!(
                "`{name}` is not a channel or a Latest cell: `filemap hz` measures those \
                 (`filemap info {name}` shows what it is)"
            )))
        }
    })
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    let (mut count, mut bytes, unit) = counters(&a.name)?;
    let mut at = Instant::now();
    let stop = crate::cmd::echo::stop_signal()?;
    writeln!(
        out,
        "measuring `{}` every {} s (Ctrl-C stops)",
        a.name,
        a.window.as_secs_f64()
    )?;
    out.flush()?;
    let mut done = 0;
    while a.count.is_none_or(|n| done < n) {
        match stop.recv_timeout(a.window) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return Ok(()),
        }
        let (c, b, _) = counters(&a.name)?;
        let now = Instant::now();
        let dt = (now - at).as_secs_f64();
        let rate = c.saturating_sub(count) as f64 / dt;
        let bw = match (b, bytes) {
            (Some(b), Some(before)) => format!(
                "   bytes: {}/s",
                human_size((b.saturating_sub(before) as f64 / dt) as u64)
            ),
            _ => String::new(),
        };
        writeln!(out, "rate: {rate:.1} {unit}{bw}   window: {dt:.2} s")?;
        out.flush()?;
        (count, bytes, at) = (c, b, now);
        done += 1;
    }
    Ok(())
}
