//! `filemap clean`: remove stale objects only.

use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use filemap::inspect::{self, Cleaned, State};
use filemap::Error;

use crate::error::{CliError, Result};
use crate::output::Object;

/// Remove stale objects only: filemap objects no process holds or maps.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  filemap clean --dry-run\n  filemap clean\n  \
                  filemap clean --watch 60   # every minute, until Ctrl-C or SIGTERM"
)]
pub struct Args {
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Clean again every SECONDS (fractions allowed), until Ctrl-C, SIGTERM
    /// or end of input; each pass says only what it removed, and a summary.
    #[arg(long, value_name = "SECONDS", value_parser = crate::fmt::parse_seconds)]
    watch: Option<Duration>,
}

/// What `clean` has to do on this OS: nothing on Windows (the kernel frees
/// a section with its last handle); on macOS, which cannot list shm names,
/// nothing it can do (`rm` removes a name you know).
pub fn not_here() -> Option<std::result::Result<&'static str, CliError>> {
    if cfg!(windows) {
        Some(Ok(
            "nothing to clean on Windows: the kernel frees a section when its last handle \
             closes, crashes included, so no stale name is ever left behind",
        ))
    } else if cfg!(target_os = "macos") {
        Some(Err(CliError::Usage(
            "`filemap clean` cannot run on macOS, which offers no way to list POSIX \
             shared-memory names; a name a crashed creator left stays until you remove it \
             with `filemap rm NAME`"
                .into(),
        )))
    } else {
        None
    }
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    match not_here() {
        Some(Ok(note)) => {
            writeln!(out, "{note}")?;
            return Ok(());
        }
        Some(Err(e)) => return Err(e),
        None => {}
    }
    let Some(every) = a.watch else {
        return pass(a.dry_run, false, out);
    };
    // Like `create`: a signal or the end of input ends the loop cleanly.
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    let on_signal = tx.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send("a signal");
    })
    .map_err(|e| CliError::Other(format!("cannot install the signal handler: {e}")))?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send("end of input");
    });
    writeln!(
        out,
        "cleaning every {} s until Ctrl-C, SIGTERM or end of input",
        every.as_secs_f64()
    )?;
    loop {
        pass(a.dry_run, true, out)?;
        out.flush()?;
        match rx.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(why) => {
                writeln!(out, "stopped on {why}")?;
                return Ok(());
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// One pass over every object; `quiet` leaves out what was kept.
fn pass(dry_run: bool, quiet: bool, out: &mut impl Write) -> Result {
    let all = inspect::list()?;
    let (mut removed, mut kept) = (0, 0);
    for o in &all {
        if o.state != State::Stale {
            let why = match o.state {
                State::Live => format!("live, held by {}", Object::from(o).holders_text()),
                State::Idle => "persistent: it stays until `filemap rm`".into(),
                State::Foreign => "foreign: not created by filemap".into(),
                State::Unknown => {
                    "unknown: not permitted to check whether a process holds it".into()
                }
                State::Stale => unreachable!("filtered above"),
            };
            if !quiet {
                writeln!(out, "kept    {}: {why}", o.name)?;
            }
            kept += 1;
            continue;
        }
        if dry_run {
            writeln!(
                out,
                "would remove {}: stale, no process holds or maps it",
                o.name
            )?;
            removed += 1;
            continue;
        }
        match inspect::remove_if_stale(&o.name) {
            Ok(Cleaned::Removed) => {
                writeln!(
                    out,
                    "removed {}: stale, no process held or mapped it",
                    o.name
                )?;
                removed += 1;
            }
            Ok(Cleaned::Kept(why)) => {
                if !quiet {
                    writeln!(out, "kept    {}: {why}", o.name)?;
                }
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
    if !quiet || removed > 0 {
        writeln!(out, "{verb} {removed}, kept {kept}")?;
    }
    Ok(())
}
