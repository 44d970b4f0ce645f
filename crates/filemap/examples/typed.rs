//! Typed messages between two processes: a sensor process (this program
//! run with `sensor`) sends `Reading`s, the first written whole, the rest
//! field by field in place; this process receives them as values. The
//! channel records the type, so a process that opens it as another type
//! is refused instead of reading garbage.
//!
//! `cargo run --example typed`

use filemap::typed::spsc::{Receiver, Sender};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const NAME: &str = "filemap-example-readings";

/// The message: `#[repr(C)]`, no padding, any bytes a valid value.
#[derive(Debug, Clone, Copy, PartialEq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Reading {
    sensor: u32,
    seq: u32,
    celsius: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("sensor") {
        let mut tx = Sender::<Reading>::open(NAME)?;
        tx.send(&Reading {
            sensor: 7,
            seq: 0,
            celsius: 20.0,
        })?;
        for seq in 1..5u32 {
            // In place: no `Reading` is built; each field goes to the ring.
            let mut loan = tx.loan()?;
            loan.write_field(std::mem::offset_of!(Reading, sensor), &7u32)?;
            loan.write_field(std::mem::offset_of!(Reading, seq), &seq)?;
            loan.write_field(
                std::mem::offset_of!(Reading, celsius),
                &(20.0 + f64::from(seq) / 4.0),
            )?;
            loan.commit();
        }
        return Ok(());
    }
    let mut rx = Receiver::<Reading>::create(NAME, 64)?;
    let mut sensor = std::process::Command::new(std::env::current_exe()?)
        .arg("sensor")
        .spawn()?;
    for _ in 0..5 {
        let r = rx.recv_timeout(std::time::Duration::from_secs(10))?;
        println!(
            "reading {}: sensor {} at {:.2} °C",
            r.seq, r.sensor, r.celsius
        );
    }
    sensor.wait()?;
    // The type is checked on open: `u64` is not what the channel carries.
    match filemap::typed::spsc::Sender::<u64>::open(NAME) {
        Err(e) => println!("as u64: {e}"),
        Ok(_) => return Err("a u64 sender was let in".into()),
    }
    Ok(())
}
