//! `filemap clean`: remove stale objects only.

use std::io::Write;

use filemap::inspect::{self, Cleaned, State};
use filemap::Error;

use crate::error::Result;
use crate::output::Object;

/// Remove stale objects only: filemap objects no process holds or maps.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  filemap clean --dry-run\n  filemap clean")]
pub struct Args {
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
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
            writeln!(out, "kept    {}: {why}", o.name)?;
            kept += 1;
            continue;
        }
        if a.dry_run {
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
                writeln!(out, "kept    {}: {why}", o.name)?;
                kept += 1;
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => {
                eprintln!("filemap: {e}");
                kept += 1;
            }
        }
    }
    let verb = if a.dry_run { "would remove" } else { "removed" };
    writeln!(out, "{verb} {removed}, kept {kept}")?;
    Ok(())
}
