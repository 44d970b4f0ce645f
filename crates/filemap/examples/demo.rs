//! Two real processes share a named mapping, narrated step by step:
//! a writer creates it and writes, a reader opens it, reads and replies, and
//! once the writer lets go the name is gone (the Win32 lifetime, on every OS).
//!
//! `cargo run --example demo` (the example starts itself twice, as the
//! writer and as the reader).

#[path = "common/seed.rs"]
mod seed;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

type Res = Result<(), Box<dyn std::error::Error>>;

fn writer() -> Res {
    let pid = std::process::id();
    let m = seed::create_and_write()?;
    println!(
        "[writer {pid}] created `{}` ({} bytes), wrote {:?}",
        seed::NAME,
        m.len(),
        seed::MESSAGE
    );
    println!("[writer {pid}] holding the mapping; waiting for the reader");
    std::io::stdout().flush()?;
    // The demo tells us on stdin when the reader is done.
    std::io::stdin().read_line(&mut String::new())?;
    let v = m.view(.., filemap::ViewAccess::Read)?;
    println!(
        "[writer {pid}] the reader's reply is in my view: {:?}",
        seed::read_str(&v, seed::REPLY_AT)
    );
    println!("[writer {pid}] exiting: my handle and view close");
    Ok(())
}

fn reader() -> Res {
    let pid = std::process::id();
    let msg = seed::open_read_and_reply(&format!("Reply from second process ({pid})."))?;
    println!(
        "[reader {pid}] opened `{}` by name and read {msg:?}",
        seed::NAME
    );
    println!("[reader {pid}] wrote a reply at offset {}", seed::REPLY_AT);
    Ok(())
}

fn main() -> Res {
    let exe = std::env::current_exe()?;
    match std::env::args().nth(1).as_deref() {
        Some("writer") => return writer(),
        Some("reader") => return reader(),
        _ => {}
    }
    println!("[demo] starting the writer process");
    let mut w = Command::new(&exe)
        .arg("writer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(w.stdout.take().ok_or("no stdout")?);
    // Relay the writer's lines until it says it holds the mapping.
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            return Err("the writer exited early".into());
        }
        print!("{line}");
        if line.contains("holding") {
            break;
        }
    }
    println!("[demo] starting the reader process");
    let st = Command::new(&exe).arg("reader").status()?;
    if !st.success() {
        return Err(format!("reader failed: {st}").into());
    }
    println!("[demo] telling the writer the reader is done");
    w.stdin.take().ok_or("no stdin")?.write_all(b"done\n")?;
    for l in out.lines() {
        println!("{}", l?);
    }
    let st = w.wait()?;
    if !st.success() {
        return Err(format!("writer failed: {st}").into());
    }
    match filemap::Mapping::open(seed::NAME, filemap::Access::Read) {
        Err(filemap::Error::NotFound { .. }) => {
            println!(
                "[demo] both processes are gone, and so is `{}`: opening it now gives NotFound",
                seed::NAME
            )
        }
        Ok(_) => return Err("the mapping outlived its holders".into()),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
