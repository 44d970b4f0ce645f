//! The first process of the Win32 named-shared-memory tutorial: creates
//! `Local\MyFileMappingObject`, writes a message, and holds the mapping until
//! you press Enter. Run `cargo run --example reader` in another terminal meanwhile.

#[path = "common/seed.rs"]
mod seed;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = seed::create_and_write()?;
    println!(
        "created `{}` ({} bytes) and wrote {:?}",
        seed::NAME,
        m.len(),
        seed::MESSAGE
    );
    println!("run `cargo run --example reader` in another terminal, then press Enter here");
    std::io::stdin().read_line(&mut String::new())?;
    let v = m.view(.., filemap::ViewAccess::Read)?;
    println!(
        "reply found in the mapping: {:?}",
        seed::read_str(&v, seed::REPLY_AT)
    );
    Ok(())
}
