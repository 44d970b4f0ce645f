//! [`TransportKind::SpscClient`]: a stream between two programs of their own
//! (`fm-stream-client`, built beside `filemap-bench`), written the way the
//! docs show on the public API only: the sender creates the channel with the
//! capacity the docs advise for streaming ([`crate::ring_capacity`]), both
//! sides block (`send`, `recv`), nothing is pinned, and the stream is timed
//! from its first send to its last receipt, with no warm-up.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};

use super::Case;
use crate::error::{BenchError, Result};
use crate::{Row, Scenario};

/// The client program beside this one.
fn program() -> Result<std::path::PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.with_file_name(format!("fm-stream-client{}", std::env::consts::EXE_SUFFIX)))
}

fn spawn(args: &[String]) -> Result<(Child, BufReader<ChildStdout>)> {
    let mut child = Command::new(program()?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| BenchError::Peer("the client's stdout is not piped".into()))?;
    Ok((child, BufReader::new(out)))
}

/// The next line of a client, which must start with `key`; its value.
fn said(out: &mut BufReader<ChildStdout>, child: &mut Child, key: &str) -> Result<u128> {
    let mut line = String::new();
    if out.read_line(&mut line)? == 0 {
        let status = child.wait()?;
        return Err(BenchError::Peer(format!(
            "the stream client exited ({status}) before saying {key}"
        )));
    }
    let value = line.trim().strip_prefix(key).map(str::trim);
    match value {
        Some("") if key == "ready" => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| BenchError::Peer(format!("the stream client said {line:?}"))),
        None => Err(BenchError::Peer(format!(
            "the stream client said {line:?}, not {key}"
        ))),
    }
}

/// Runs the two clients for `case` (a stream) and makes its row.
pub(crate) fn run(case: &Case) -> Result<Row> {
    // Not pinned: a user's programs are not (our earlier cases pinned us,
    // and children inherit the mask).
    crate::unpin();
    let (size, count) = (case.size.to_string(), case.total.to_string());
    let cap = case.ring_capacity().to_string();
    let name = case.object("stream");
    let (mut tx, mut tx_out) = spawn(&[
        "send".into(),
        name.clone(),
        size.clone(),
        count.clone(),
        cap,
    ])?;
    said(&mut tx_out, &mut tx, "ready")?;
    let (mut rx, mut rx_out) = spawn(&["recv".into(), name, size, count])?;
    said(&mut rx_out, &mut rx, "ready")?;
    tx.stdin
        .take()
        .ok_or_else(|| BenchError::Peer("the client's stdin is not piped".into()))?
        .write_all(b"go\n")?;
    let first = said(&mut tx_out, &mut tx, "first_send_ns")?;
    let last = said(&mut rx_out, &mut rx, "last_receipt_ns")?;
    for mut c in [tx, rx] {
        let status = c.wait()?;
        if !status.success() {
            return Err(BenchError::Peer(format!(
                "a stream client exited with {status}"
            )));
        }
    }
    let secs = last.saturating_sub(first) as f64 / 1e9;
    let rate = case.total as f64 / secs;
    Ok(Row {
        scenario: Scenario::Stream,
        transport: case.kind.as_str().into(),
        size: case.size,
        count: case.total,
        latency_ns: None,
        msgs_per_s: Some(rate),
        gb_per_s: Some(rate * case.size as f64 / 1e9),
        lost: None,
    })
}
