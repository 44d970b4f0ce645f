//! Waiting on a control event and a data channel at once with a
//! `WaitSet` (like `WaitForMultipleObjects`): a producer process (this
//! program run with `producer`) sends a few messages, then signals
//! "stop" on the event; the consumer (this process) handles whichever is
//! ready, sleeping in between.
//!
//! `cargo run --example waitset`

use filemap::channel::spsc::{Receiver, Sender};
use filemap::sync::Event;
use filemap::wait::WaitSet;

const DATA: &str = "filemap-example-data";
const STOP: &str = "filemap-example-stop";

/// Prints every message there now; true once the producer closed its end
/// and everything it sent was read.
fn drain(data: &mut Receiver) -> Result<bool, filemap::Error> {
    loop {
        match data.try_recv() {
            Ok(Some(m)) => println!("data: {}", String::from_utf8_lossy(&m.to_vec())),
            Ok(None) => return Ok(false),
            Err(filemap::Error::PeerGone { .. }) => {
                println!("data: the producer closed its end");
                return Ok(true);
            }
            Err(e) => return Err(e),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("producer") {
        let mut tx = Sender::open(DATA)?;
        let stop = Event::open(STOP)?;
        for i in 0..5 {
            tx.send(format!("message {i}").as_bytes())?;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stop.notify_one();
        return Ok(());
    }
    let mut data = Receiver::create(DATA, 64 * 1024)?;
    let mut stop = Event::create(STOP)?;
    let mut producer = std::process::Command::new(std::env::current_exe()?)
        .arg("producer")
        .spawn()?;
    let mut set = WaitSet::new();
    let (mut stopped, mut closed) = (false, false);
    while !(stopped && closed) {
        // Wait only on what can still say something; `is_data` tells the
        // sources apart by position.
        let mut sources: Vec<&mut dyn filemap::wait::Waitable> = Vec::new();
        let mut is_data = Vec::new();
        if !closed {
            sources.push(&mut data);
            is_data.push(true);
        }
        if !stopped {
            sources.push(&mut stop);
            is_data.push(false);
        }
        let ready: Vec<bool> = set
            .wait(&mut sources)?
            .iter()
            .map(|r| is_data[r.index])
            .collect();
        drop(sources);
        for data_ready in ready {
            if data_ready {
                closed = drain(&mut data)?;
            } else {
                // The wait took the event's notification.
                println!("stop: the producer says it is done");
                stopped = true;
            }
        }
    }
    producer.wait()?;
    Ok(())
}
