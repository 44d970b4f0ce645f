//! `filemap rm`: remove names, like `shm_unlink`.

use std::io::Write;

use filemap::Mapping;

use crate::error::{CliError, Result};

/// Remove names (like shm_unlink); holders keep their memory.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  filemap rm cache\n  filemap rm a b c")]
pub struct Args {
    /// Names to remove.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Removes each name, reporting each failure and going on; the worst exit
/// code wins.
pub fn run(a: Args, out: &mut impl Write) -> Result<u8> {
    let mut worst = 0u8;
    for name in &a.names {
        match Mapping::remove(name) {
            Ok(()) => writeln!(out, "removed `{name}`")?,
            Err(e) => {
                let e = CliError::from(e);
                eprintln!("filemap: {e}");
                worst = worst.max(e.exit_code());
            }
        }
    }
    Ok(worst)
}
