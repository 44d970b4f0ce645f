//! `filemap list`: every shared-memory object on the machine (Linux: `/dev/shm`;
//! Windows: the named sections of this session and the global namespace).

use std::io::Write;

#[cfg(not(windows))]
use filemap::inspect;

use crate::error::Result;
use crate::fmt::{self, human_size};
use crate::output::{self, List, Object};

/// List every shared-memory object on the machine (Linux, Windows).
#[derive(clap::Args)]
#[command(
    after_help = "States: live (held or mapped), stale (a filemap object whose holders \
                  all exited or crashed), idle (persistent, unheld), foreign (not made by filemap).\n\n\
                  Examples:\n  filemap list\n  filemap list --json"
)]
pub struct Args {
    /// Print JSON (schema in the README).
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    if cfg!(target_os = "macos") {
        return Err(crate::error::CliError::Usage(
            "`filemap list` cannot run on macOS, which offers no way to list POSIX \
             shared-memory names: `filemap info NAME` shows one whose name you know"
                .into(),
        ));
    }
    #[cfg(windows)]
    let objects: Vec<Object> = filemap::os::windows::sections()?
        .iter()
        .map(Object::from_section)
        .collect();
    #[cfg(not(windows))]
    let objects: Vec<Object> = inspect::list()?.iter().map(Object::from).collect();
    if a.json {
        output::write_json(out, &List { objects })?;
        return Ok(());
    }
    let rows: Vec<[String; 8]> = objects
        .iter()
        .map(|o| {
            [
                o.name.clone(),
                human_size(o.size),
                o.user
                    .clone()
                    .or_else(|| o.uid.map(|u| u.to_string()))
                    .unwrap_or_else(|| "-".into()),
                o.mode.clone().unwrap_or_else(|| "-".into()),
                match (&o.file, &o.untrusted) {
                    (Some(f), Some(_)) => format!("file ({f}) UNTRUSTED"),
                    (Some(f), None) => format!("file ({f})"),
                    (None, _) => o.backing.to_owned(),
                },
                o.state.unwrap_or("-").to_owned(),
                o.activity
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |a| a.short()),
                o.holders_text(),
            ]
        })
        .collect();
    fmt::table(
        out,
        &[
            "NAME", "SIZE", "OWNER", "MODE", "BACKING", "STATE", "ACTIVITY", "HOLDERS",
        ],
        &rows,
    )?;
    if objects.is_empty() {
        writeln!(out, "(no shared-memory objects)")?;
    }
    Ok(())
}
