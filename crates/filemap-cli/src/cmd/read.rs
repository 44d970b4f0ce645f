//! `filemap read`: raw bytes of an object to stdout.

use std::io::Write;

use filemap::{Access, Mapping, ViewAccess};

use crate::error::Result;
use crate::fmt::parse_size;

/// The bytes `dump` and `read` show.
#[derive(clap::Args)]
pub struct Span {
    /// The object's name.
    pub name: String,
    /// Where to start.
    #[arg(long, default_value = "0", value_parser = parse_size)]
    pub offset: u64,
    /// How many bytes (default: to the end).
    #[arg(long, value_parser = parse_size)]
    pub len: Option<u64>,
}

impl Span {
    /// A copy of the bytes, through a read-only view.
    pub fn bytes(&self) -> Result<Vec<u8>> {
        let m = Mapping::open(&self.name, Access::Read)?;
        let v = m.map(self.offset, self.len.unwrap_or(0), ViewAccess::Read)?;
        Ok(v.to_vec())
    }
}

/// Write raw bytes of the object to stdout.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  filemap read jobs > jobs.bin\n  filemap read jobs --offset 100 --len 5"
)]
pub struct Args {
    #[command(flatten)]
    span: Span,
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    out.write_all(&a.span.bytes()?)?;
    Ok(())
}
