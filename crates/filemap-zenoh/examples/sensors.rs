//! The two-host walk-through of the README ("Beyond one machine"): a
//! producer and a consumer of the broadcast channel `sensors` that know
//! nothing of the network; `filemap bridge` on each host carries it.
//!
//! ```text
//! host A:  cargo run -p filemap-zenoh --example sensors -- produce sensors 100
//! host B:  cargo run -p filemap-zenoh --example sensors -- consume sensors 100
//! ```
//!
//! `produce NAME COUNT` creates the broadcast channel NAME and sends COUNT
//! readings, one every 100 ms. `consume NAME COUNT` creates it (the bridge
//! on its host writes into it) and prints COUNT readings, or stops after
//! 10 s without one.

use std::time::Duration;

use filemap::channel::broadcast::{Receiver, Sender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [role, name, count] = args.as_slice() else {
        return Err("usage: sensors produce|consume NAME COUNT".into());
    };
    let count: u64 = count.parse()?;
    match role.as_str() {
        "produce" => {
            let mut tx = Sender::create(name, 64, 256)?;
            for i in 0..count {
                let reading = format!("reading {i}: {:.1} C", 20.0 + (i % 50) as f64 / 10.0);
                tx.send(reading.as_bytes())?;
                println!("sent {reading}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        "consume" => {
            let mut rx = Receiver::create(name, 64, 256)?;
            for _ in 0..count {
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(m) => {
                        let missed = if m.missed > 0 {
                            format!(" ({} missed)", m.missed)
                        } else {
                            String::new()
                        };
                        println!("got {}{missed}", String::from_utf8_lossy(&m.data));
                    }
                    // Until the bridge opens the channel, it has no sender.
                    Err(filemap::Error::PeerGone { .. }) => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    Err(filemap::Error::Timeout { .. }) => {
                        println!("nothing for 10 s; stopping");
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        other => return Err(format!("unknown role {other}: produce or consume").into()),
    }
    Ok(())
}
