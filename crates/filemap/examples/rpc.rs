//! Request-response between processes: a server process (this program run
//! with `server`) adds up the numbers in each request; this process is a
//! client that makes calls, several of them in flight at once, and gets
//! each response matched to its request.
//!
//! `cargo run --example rpc`
//!
//! Run with `client`, it is only the client, of a server someone else
//! started: `python crates/filemap-py/examples/rpc_server.py` is such a
//! server in Python, which runs this program as its client.

use std::time::Duration;

use filemap::rpc::{Client, Config, Server};

const NAME: &str = "filemap-example-adder";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("server") {
        let server = Server::open(NAME)?;
        // Serves until every client is gone and nothing came for a second.
        loop {
            let req = match server.recv_request_timeout(Duration::from_secs(1)) {
                Ok(r) => r,
                Err(filemap::Error::Timeout { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let text = String::from_utf8_lossy(req.data()).into_owned();
            let sum: i64 = text
                .split('+')
                .filter_map(|n| n.trim().parse::<i64>().ok())
                .sum();
            req.respond(sum.to_string().as_bytes())?;
        }
    }
    if std::env::args().nth(1).as_deref() == Some("client") {
        return calls(&mut Client::open(NAME)?);
    }
    // This process makes the service (as its first server, which takes no
    // requests) and stays registered until the calls are done: a client
    // whose service has no server at all gets `PeerGone`, and the server
    // process below may not have registered yet when the first call goes out.
    let maker = Server::create(NAME, &Config::new().max_request(256).max_response(64))?;
    let mut client = Client::open(NAME)?;
    let mut server = std::process::Command::new(std::env::current_exe()?)
        .arg("server")
        .spawn()?;
    calls(&mut client)?;
    drop((client, maker));
    server.wait()?;
    Ok(())
}

/// The client's calls: one, then three in flight collected in another order.
fn calls(client: &mut Client) -> Result<(), Box<dyn std::error::Error>> {
    let t = Duration::from_secs(10);
    let answer = client.call_timeout(b"1 + 2 + 3", t)?;
    println!("1 + 2 + 3 = {}", String::from_utf8_lossy(&answer));
    // Three in flight, collected in another order.
    let a = client.send_request(b"10 + 20")?;
    let b = client.send_request(b"100 + 200")?;
    let c = client.send_request(b"-5 + 5")?;
    for (id, what) in [(c, "-5 + 5"), (a, "10 + 20"), (b, "100 + 200")] {
        let r = client.response_timeout(id, t)?;
        println!("{what} = {}", String::from_utf8_lossy(&r));
    }
    Ok(())
}
