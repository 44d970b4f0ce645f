//! `filemap info`: one object's size, owner, mode, lifetime, state, header, holders.

use std::io::Write;

use filemap::{inspect, Access, Error, Mapping, ViewAccess};

use crate::error::Result;
use crate::output::{self, Object};

/// Show size, mode, owner, lifetime, state and holders of one object.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  filemap info jobs\n  filemap info jobs --json")]
pub struct Args {
    /// The object's name.
    name: String,
    /// Print JSON (schema in the README).
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args, out: &mut impl Write) -> Result {
    let o = match inspect::info(&a.name) {
        Ok(o) => Object::from(&o),
        // Where the OS offers no inspection (Windows, macOS), say what opening shows.
        Err(Error::Unsupported { .. }) => {
            let m = Mapping::open(&a.name, Access::Read)?;
            let header = filemap::segment::read_header(&m.view(.., ViewAccess::Read)?)?;
            #[allow(unused_mut)]
            let mut o = Object::opened(&a.name, &m, header.as_ref());
            // Windows counts the handles open on a section; ours is two of
            // them here (the listing's own is already left out).
            #[cfg(windows)]
            if let Ok(s) = filemap::os::windows::section(&a.name) {
                o.handles = s.handles.map(|n| n.saturating_sub(1));
                o.state = Some("live");
                o.lifetime = Some("transient");
            }
            o
        }
        Err(e) => return Err(e.into()),
    };
    if a.json {
        output::write_json(out, &o)?;
    } else {
        o.write_text(out)?;
    }
    Ok(())
}
