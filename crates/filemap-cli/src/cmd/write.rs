//! `filemap write`: bytes into an object, from an option or stdin.

use std::io::{Read, Write};

use filemap::{Access, Mapping, ViewAccess};

use crate::error::{CliError, Result};
use crate::fmt::{self, parse_size};

/// Write bytes into the object: from stdin, or --hex, or --text.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  filemap write jobs --text hello\n  filemap write jobs --offset 16 --hex 00ff10\n  \
                  printf abc | filemap write jobs"
)]
pub struct Args {
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
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    let data = match (a.hex, a.text) {
        (Some(h), _) => fmt::parse_hex(&h).map_err(|e| CliError::Usage(format!("--hex: {e}")))?,
        (_, Some(t)) => t.into_bytes(),
        (None, None) => {
            let mut buf = Vec::new();
            std::io::stdin().lock().read_to_end(&mut buf)?;
            buf
        }
    };
    if data.is_empty() {
        return Err(CliError::Usage(
            "nothing to write: give --hex, --text, or bytes on stdin".into(),
        ));
    }
    let m = Mapping::open(&a.name, Access::ReadWrite)?;
    let v = m.map(a.offset, data.len() as u64, ViewAccess::ReadWrite)?;
    v.write_at(0, &data)?;
    writeln!(
        out,
        "wrote {} bytes to `{}` at offset {}",
        data.len(),
        a.name,
        a.offset
    )?;
    Ok(())
}
