//! `filemap`: see, make, read, write and clean shared-memory mappings.
//!
//! A thin layer over the `filemap` library: one module per command
//! (`cmd/`), one set of output structs for `info` and `list` (`output`),
//! and errors reported here, in one place, with their exit codes.
//! `filemap --help` and `filemap COMMAND --help` describe each command with
//! examples. (The benchmark is its own binary, `filemap-bench`.)
//!
//! Exit codes: 0 success (also when stdout is closed early, as by `| head`),
//! 1 not found, 2 usage or OS error.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod error;
mod fmt;
mod output;
mod sample;

use error::CliError;

const EXAMPLES: &str = "Examples:
  filemap create jobs --size 1MiB      # create `jobs` and hold it until Ctrl-C
  filemap list                         # every shared-memory object, who holds it
  filemap top                          # live: rates, fill levels, stalled ends
  filemap hz jobs                      # a channel's rate, window by window
  filemap echo events                  # a broadcast channel's messages as they pass
  filemap write jobs --text hello      # write bytes at offset 0
  filemap dump jobs --len 64           # hex + ASCII
  filemap clean --dry-run              # what a clean would remove
  filemap demo                         # two processes sharing a mapping, narrated
  filemap bridge --out jobs:demo/jobs --connect tcp/HOST:7447   # (the `bridge` feature)";

/// See, make, read, write and clean shared-memory mappings.
#[derive(Parser)]
#[command(name = "filemap", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Create(cmd::create::Args),
    Info(cmd::info::Args),
    #[cfg_attr(
        target_os = "macos",
        command(
            about = "(Linux only: macOS cannot list shm names; use `info NAME`) List every shared-memory object"
        )
    )]
    List(cmd::list::Args),
    Dump(cmd::dump::Args),
    Read(cmd::read::Args),
    Write(cmd::write::Args),
    Rm(cmd::rm::Args),
    #[cfg_attr(
        windows,
        command(
            about = "(Nothing to do on Windows: sections go with their last handle) Remove stale objects"
        )
    )]
    #[cfg_attr(
        target_os = "macos",
        command(
            about = "(Linux only: macOS cannot list shm names; use `rm NAME`) Remove stale objects"
        )
    )]
    Clean(cmd::clean::Args),
    Demo(cmd::demo::Args),
    #[cfg_attr(
        target_os = "macos",
        command(
            about = "(Linux and Windows only: macOS cannot list shm names) A live view of every object"
        )
    )]
    Top(cmd::top::Args),
    Hz(cmd::hz::Args),
    Echo(cmd::echo::Args),
    #[cfg(feature = "bridge")]
    Bridge(cmd::bridge::Args),
    /// Carry channels to other hosts over Zenoh: not in this build (it
    /// needs the `bridge` feature; running it says how to build it).
    #[cfg(not(feature = "bridge"))]
    Bridge(NoBridge),
}

/// `filemap bridge` in a build without the `bridge` feature: takes whatever
/// it is given, and says how to get a build that has it.
#[cfg(not(feature = "bridge"))]
#[derive(clap::Args)]
struct NoBridge {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        // `top` writes through an unlocked handle: a lock on stdout held for
        // its whole run would stop its signal and hang-up watchers from
        // putting the terminal back (and `exit` from flushing).
        Cmd::Top(a) => cmd::top::run(a, &mut std::io::stdout()).map(|()| 0),
        cmd => {
            let mut out = std::io::stdout().lock();
            run(cmd, &mut out).and_then(|code| {
                out.flush()?;
                Ok(code)
            })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // The reader of our output went away: it has what it wanted.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filemap: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one command; `Ok` carries the exit code (0, or `rm`'s worst).
fn run(cmd: Cmd, out: &mut impl Write) -> Result<u8, CliError> {
    match cmd {
        Cmd::Create(a) => cmd::create::run(a, out)?,
        Cmd::Info(a) => cmd::info::run(a, out)?,
        Cmd::List(a) => cmd::list::run(a, out)?,
        Cmd::Dump(a) => cmd::dump::run(a, out)?,
        Cmd::Read(a) => cmd::read::run(a, out)?,
        Cmd::Write(a) => cmd::write::run(a, out)?,
        Cmd::Rm(a) => return cmd::rm::run(a, out),
        Cmd::Clean(a) => cmd::clean::run(a, out)?,
        Cmd::Demo(a) => cmd::demo::run(a)?,
        Cmd::Top(a) => cmd::top::run(a, out)?,
        Cmd::Hz(a) => cmd::hz::run(a, out)?,
        Cmd::Echo(a) => cmd::echo::run(a, out)?,
        #[cfg(feature = "bridge")]
        Cmd::Bridge(a) => cmd::bridge::run(a, out)?,
        #[cfg(not(feature = "bridge"))]
        Cmd::Bridge(_) => {
            return Err(CliError::Usage(
                "`filemap bridge` needs the `bridge` feature, which this build of filemap \
                 lacks (it carries Zenoh, so it is not in the default build). Install one that \
                 has it with `cargo install --path crates/filemap-cli --features bridge` from \
                 a checkout of filemap, or build it there with \
                 `cargo build --release -p filemap-cli --features bridge`"
                    .into(),
            ))
        }
    }
    Ok(0)
}
