//! `filemap demo`: the Win32 named-shared-memory tutorial as two real processes,
//! narrated. This binary starts itself as the writer and as the reader.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use filemap::{Access, Mapping, ViewAccess};

const NAME: &str = "Local\\MyFileMappingObject";
const SIZE: u64 = 256;
const MESSAGE: &str = "Message from first process.";
const REPLY_AT: usize = 128;

type Res = Result<(), String>;

/// Two real processes share a mapping, narrated step by step.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  filemap demo")]
pub struct Args {
    /// Internal: the role of a child process of the demo.
    #[arg(long, hide = true)]
    role: Option<String>,
}

/// Runs the demo (or, with `--role`, one of its two processes).
pub fn run(a: Args) -> crate::error::Result {
    roles(a.role.as_deref()).map_err(crate::error::CliError::Other)
}

fn text_at(v: &filemap::View, at: usize) -> String {
    let bytes = v.to_vec();
    let t = &bytes[at..];
    let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
    String::from_utf8_lossy(&t[..end]).into_owned()
}

fn writer() -> Result<(), filemap::Error> {
    let pid = std::process::id();
    let m = Mapping::create(NAME, SIZE)?;
    m.view(.., ViewAccess::ReadWrite)?
        .write_at(0, MESSAGE.as_bytes())?;
    println!("[writer {pid}] created `{NAME}` ({SIZE} bytes) and wrote {MESSAGE:?}");
    println!("[writer {pid}] holding the mapping; waiting for the reader");
    let _ = std::io::stdout().flush();
    // The demo says on stdin when the reader is done.
    let _ = std::io::stdin().read_line(&mut String::new());
    let v = m.view(.., ViewAccess::Read)?;
    println!(
        "[writer {pid}] the reader's reply is in my view: {:?}",
        text_at(&v, REPLY_AT)
    );
    println!("[writer {pid}] exiting: my handle and view close");
    Ok(())
}

fn reader() -> Result<(), filemap::Error> {
    let pid = std::process::id();
    let m = Mapping::open(NAME, Access::ReadWrite)?;
    let v = m.view(.., ViewAccess::ReadWrite)?;
    println!(
        "[reader {pid}] opened `{NAME}` by name and read {:?}",
        text_at(&v, 0)
    );
    v.write_at(
        REPLY_AT,
        format!("Reply from second process ({pid}).").as_bytes(),
    )?;
    println!("[reader {pid}] wrote a reply at offset {REPLY_AT}");
    Ok(())
}

/// Runs the demo, or one of its roles.
fn roles(role: Option<&str>) -> Res {
    match role {
        Some("writer") => return writer().map_err(|e| e.to_string()),
        Some("reader") => return reader().map_err(|e| e.to_string()),
        Some(other) => return Err(format!("unknown demo role `{other}`")),
        None => {}
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let err = |what: &str, e: std::io::Error| format!("{what}: {e}");
    println!("[demo] starting the writer process");
    let mut w = Command::new(&exe)
        .args(["demo", "--role", "writer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| err("starting the writer", e))?;
    let mut out = BufReader::new(w.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    loop {
        line.clear();
        if out
            .read_line(&mut line)
            .map_err(|e| err("reading the writer", e))?
            == 0
        {
            let _ = w.wait();
            return Err("the writer exited before creating the mapping".into());
        }
        print!("{line}");
        if line.contains("holding") {
            break;
        }
    }
    println!("[demo] starting the reader process");
    let st = Command::new(&exe)
        .args(["demo", "--role", "reader"])
        .status()
        .map_err(|e| err("starting the reader", e))?;
    if !st.success() {
        return Err(format!("the reader failed ({st})"));
    }
    println!("[demo] telling the writer the reader is done");
    w.stdin
        .take()
        .ok_or("no stdin")?
        .write_all(b"done\n")
        .map_err(|e| err("telling the writer", e))?;
    for l in out.lines() {
        println!("{}", l.map_err(|e| err("reading the writer", e))?);
    }
    let st = w.wait().map_err(|e| err("waiting for the writer", e))?;
    if !st.success() {
        return Err(format!("the writer failed ({st})"));
    }
    match Mapping::open(NAME, Access::Read) {
        Err(filemap::Error::NotFound { .. }) => {
            println!(
                "[demo] both processes are gone, and so is `{NAME}`: opening it now gives NotFound"
            );
            Ok(())
        }
        Ok(_) => Err(format!("`{NAME}` outlived its holders")),
        Err(e) => Err(e.to_string()),
    }
}
