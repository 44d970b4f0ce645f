//! A stream of messages between two processes written the way filemap's docs
//! show, on the public API only: what a user's own program gets. `filemap-bench`
//! runs it as its "spsc, a client as in the docs" streaming row.
//!
//! ```text
//! fm-stream-client send NAME SIZE COUNT CAPACITY   creates the channel, says "ready",
//!                                                  sends on a line from stdin, then
//!                                                  says "first_send_ns T"
//! fm-stream-client recv NAME SIZE COUNT            opens it, says "ready", receives
//!                                                  and checks every message, then says
//!                                                  "last_receipt_ns T"
//! ```
//!
//! Times are nanoseconds since the Unix epoch (the system clock, which both
//! processes share), so that the stream is timed from its first send to its
//! last receipt, with no warm-up and no pinning: neither is what a user has.

use std::io::BufRead;
use std::time::{SystemTime, UNIX_EPOCH};

use filemap::channel::spsc::{Receiver, Sender};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<&str, String> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| "usage: fm-stream-client send|recv NAME SIZE COUNT [CAPACITY]".into())
    };
    let name = arg(1)?;
    let size: usize = arg(2)?.parse()?;
    let count: u64 = arg(3)?.parse()?;
    let mut msg = vec![0u8; size.max(8)];
    msg.truncate(size);
    match arg(0)? {
        "send" => {
            let capacity: u64 = arg(4)?.parse()?;
            let mut tx = Sender::create(name, capacity)?;
            println!("ready");
            std::io::stdin().lock().read_line(&mut String::new())?;
            let first = now_ns();
            for i in 0..count {
                // The message's number in its first bytes (as many as fit).
                let n = size.min(8);
                msg[..n].copy_from_slice(&i.to_le_bytes()[..n]);
                tx.send(&msg)?;
            }
            println!("first_send_ns {first}");
        }
        "recv" => {
            let mut rx = Receiver::open(name)?;
            println!("ready");
            let n = size.min(8);
            for i in 0..count {
                let m = rx.recv()?;
                m.read_at(0, &mut msg)?;
                if m.len() != size || msg[..n] != i.to_le_bytes()[..n] {
                    return Err(format!("message {i} is wrong: {} bytes", m.len()).into());
                }
            }
            println!("last_receipt_ns {}", now_ns());
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}
