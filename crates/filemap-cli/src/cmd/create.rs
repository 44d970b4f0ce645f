//! `filemap create`: make a named mapping and hold it (or leave a persistent one).

use std::io::Write;
use std::path::PathBuf;

use filemap::{Lifetime, Options};

use crate::error::{CliError, Result};
use crate::fmt::{human_size, parse_size};

/// Create a mapping. Without --persistent it lives only while a process holds
/// it, so `create` holds it until Ctrl-C, SIGTERM, or end of stdin.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  filemap create jobs --size 64K
  filemap create cache --size 2G --persistent --mode 640
  filemap create log --size 1MiB --file /tmp/log.bin
  filemap create table --file /data/table.bin   (the whole file)")]
pub struct Args {
    /// Name: 1-200 of [A-Za-z0-9._-], optionally after `Local\\` or `Global\\`.
    name: String,
    /// Size: bytes, or with K/KiB, M/MiB, G/GiB (all powers of 1024).
    /// Needed for memory; with --file, the default is the file's size.
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Back it by this file (created, or grown to SIZE) instead of memory:
    /// any process that opens NAME maps the file, and writes reach it.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Keep it after this process exits, until `filemap rm` (not on Windows).
    #[arg(long)]
    persistent: bool,
    /// Permission bits in octal (Unix), applied exactly whatever the umask. Default 600.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<u32>,
}

fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("`{s}` is not an octal mode between 0 and 777"))
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    let name = &a.name;
    let mut o = Options::new();
    if a.persistent {
        o = o.lifetime(Lifetime::Persistent);
    }
    if let Some(mode) = a.mode {
        o = o.mode(mode);
    }
    let (m, what) = match (&a.file, a.size) {
        (Some(path), size) => {
            let m = o.create_file(name, path, size.unwrap_or(0))?;
            let shown = m
                .file_path()
                .map(str::to_owned)
                .unwrap_or_else(|| path.display().to_string());
            (m, format!("`{name}` mapping the file {shown}"))
        }
        (None, Some(size)) => (o.create(name, size)?, format!("`{name}`")),
        (None, None) => {
            return Err(CliError::Usage(
                "--size is needed for a memory-backed mapping (or give --file PATH)".into(),
            ))
        }
    };
    let size = human_size(m.len());
    if a.persistent {
        writeln!(
            out,
            "created {what} ({size}), persistent: it stays until `filemap rm {name}`"
        )?;
        return Ok(());
    }
    // Install the handler before saying we hold it, so that a signal sent
    // as soon as the line appears releases cleanly instead of killing us.
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    let on_signal = tx.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send("a signal");
    })
    .map_err(|e| CliError::Other(format!("cannot install the signal handler: {e}")))?;
    writeln!(
        out,
        "created {what} ({size}); holding it (pid {}) until Ctrl-C, SIGTERM or end of input",
        std::process::id()
    )?;
    out.flush()?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send("end of input");
    });
    let why = rx.recv().unwrap_or("end of input");
    drop(m);
    writeln!(
        out,
        "released {what} on {why}; it is gone once no other process holds it"
    )?;
    Ok(())
}
