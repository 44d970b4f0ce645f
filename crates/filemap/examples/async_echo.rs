//! An async server and client in two processes, over two filemap channels:
//! the server (this process) answers every request on `requests` with its
//! upper-case on `replies`, awaiting both on a tokio runtime; the client (a
//! second process, this program run with `client`) sends five lines and
//! prints the answers. No thread blocks and nothing spins while waiting.
//!
//! `cargo run --example async_echo`

use filemap::channel::spsc::{Receiver, Sender};

const REQUESTS: &str = "filemap-example-requests";
const REPLIES: &str = "filemap-example-replies";
const LINES: [&str; 5] = ["hello", "shared", "memory", "across", "processes"];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("client") {
        return client().await;
    }
    // The server makes both channels, then starts the client.
    let mut requests = Receiver::create(REQUESTS, 64 * 1024)?;
    let mut replies = Sender::create(REPLIES, 64 * 1024)?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("client")
        .spawn()?;
    for _ in LINES {
        let line = requests.recv_async().await?.to_vec();
        let answer = String::from_utf8_lossy(&line).to_uppercase();
        println!("server: {:?} -> {answer:?}", String::from_utf8_lossy(&line));
        replies.send_async(answer.as_bytes()).await?;
    }
    // `requests` reports the client gone once it exits and the ring is empty.
    match requests.recv_async().await {
        Err(filemap::Error::PeerGone { .. }) => println!("server: the client closed its end"),
        other => println!("server: unexpected {other:?}"),
    }
    child.wait()?;
    Ok(())
}

async fn client() -> Result<(), Box<dyn std::error::Error>> {
    let mut requests = Sender::open(REQUESTS)?;
    let mut replies = Receiver::open(REPLIES)?;
    for line in LINES {
        requests.send_async(line.as_bytes()).await?;
        let answer = replies.recv_async().await?.to_vec();
        println!("client: {line:?} -> {:?}", String::from_utf8_lossy(&answer));
    }
    Ok(())
}
