//! The second process of the Win32 named-shared-memory tutorial: opens
//! `Local\MyFileMappingObject` (made by `cargo run --example writer`), prints
//! the message and writes a reply.

#[path = "common/seed.rs"]
mod seed;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let msg = seed::open_read_and_reply("Reply from second process.")?;
    println!("read from `{}`: {msg:?}", seed::NAME);
    Ok(())
}
