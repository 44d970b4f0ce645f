//! `filemap dump`: hex and ASCII, like `xxd`.

use std::io::Write;

use super::read::Span;
use crate::error::Result;
use crate::fmt;

/// Show bytes as hex and ASCII, like `xxd`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  filemap dump jobs\n  filemap dump jobs --offset 4K --len 256")]
pub struct Args {
    #[command(flatten)]
    span: Span,
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    let bytes = a.span.bytes()?;
    fmt::hexdump(out, a.span.offset, &bytes)?;
    Ok(())
}
