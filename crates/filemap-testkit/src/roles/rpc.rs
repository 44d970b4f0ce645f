//! Request-response servers and clients (honest, slow, stalling and
//! hostile), and the typed channels' sender.

#[allow(unused_imports)]
use super::*;
use filemap::rpc::{Client, Config, Server};
use filemap_testkit::{rpc_request, rpc_response, Reading};
use std::collections::VecDeque;
use std::time::Duration;

/// This family's role named by `a[0]`, run; `None` if it is not one of them.
pub(crate) fn role(a: &[&str]) -> Option<Result<String, Error>> {
    run(a).map_or_else(RoleError::into_option, |s| Some(Ok(s)))
}

/// Set once stdin closed (the test dropped its `Helper`): the server below
/// then returns, dropping what it holds, as a clean exit does.
static EOF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn watch_stdin() {
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        EOF.store(true, std::sync::atomic::Ordering::SeqCst);
    });
}

fn at_eof() -> bool {
    EOF.load(std::sync::atomic::Ordering::SeqCst)
}

/// `rpc-serve`, which reads stdin itself (to exit when it closes), so it
/// runs before `main` locks stdin: the exit code, or `None` for other roles.
pub(crate) fn serve(args: &[String]) -> Option<i32> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let ["rpc-serve", name, how, rest @ ..] = &a[..] else {
        return None;
    };
    match serve_until_eof(name, how, rest) {
        Ok(()) => Some(0),
        Err(e) => {
            say(&format!("err {} {e}", e.kind()));
            Some(1)
        }
    }
}

/// Serves NAME (creating it with `create`, else opening it) until stdin
/// closes: each response is `rpc_response(request)`; a request starting
/// with `slow` is answered after 300 ms. With `stall`, takes one request,
/// says `took ID`, and never answers it.
fn serve_until_eof(name: &str, how: &str, rest: &[&str]) -> Result<(), Error> {
    let server = if how == "create" {
        Server::create(
            name,
            &Config::new().max_request(64).max_response(64).clients(16),
        )?
    } else {
        Server::open(name)?
    };
    watch_stdin();
    say("ready");
    let stall = rest.contains(&"stall");
    let mut held = Vec::new();
    while !at_eof() {
        let r = match server.recv_request_timeout(Duration::from_millis(100)) {
            Ok(r) => r,
            Err(Error::Timeout { .. }) => continue,
            Err(e) => return Err(e),
        };
        if stall {
            // Holds it, unanswered, until killed (or stdin closes).
            say(&format!("took {}", r.id().get()));
            held.push(r);
            continue;
        }
        if r.data().starts_with(b"slow") {
            std::thread::sleep(Duration::from_millis(300));
        }
        let out = rpc_response(r.data());
        r.respond(&out)?;
    }
    Ok(())
}

fn run(a: &[&str]) -> Result<String, RoleError> {
    match a {
        // COUNT calls as client number K, up to INFLIGHT in flight, each
        // response checked against its request.
        ["rpc-client", name, k, count, inflight] => {
            let (k, count, inflight): (u64, u64, usize) = (
                k.parse().expect("k"),
                count.parse().expect("count"),
                inflight.parse().expect("inflight"),
            );
            let mut c = Client::open(name)?;
            say("ready");
            let mut window = VecDeque::new();
            let (mut sent, mut done) = (0u64, 0u64);
            while done < count {
                while sent < count && window.len() < inflight {
                    let req = rpc_request(k, sent);
                    window.push_back((c.send_request(&req)?, req));
                    sent += 1;
                }
                let (id, req) = window.pop_front().expect("in flight");
                let got = c.response_timeout(id, Duration::from_secs(30))?;
                if got != rpc_response(&req) {
                    return Ok(format!("bad response to call {done} of client {k}"));
                }
                done += 1;
            }
            Ok(format!("ok {done}"))
        }
        // Sends one `slow` request, says `sent RESPONSES-NAME`, and waits
        // for its response (the test kills it before).
        ["rpc-client-slow", name] => {
            let mut c = Client::open(name)?;
            let id = c.send_request(b"slow request")?;
            say(&format!("sent {}", c.responses_name()));
            let _ = c.response(id);
            Ok("answered".into())
        }
        // Sends the service's queue what no honest client sends: nothing,
        // a short header, slots out of range, the tags of client slot
        // VICTIM (generations 0..8) with ids nobody asked, and a full-size
        // request of noise.
        ["rpc-hostile", name, victim] => {
            let victim: u64 = victim.parse().expect("victim slot");
            let q = filemap::channel::mpmc::Sender::open(&format!("{name}.requests"))?;
            let mut sent = 0;
            let mut send = |m: &[u8]| -> Result<(), Error> {
                q.send_timeout(m, Duration::from_secs(10))?;
                sent += 1;
                Ok(())
            };
            send(&[])?;
            send(&[1, 2, 3, 4, 5])?;
            for slot in [u64::from(u32::MAX), 0xffff, 1 << 20] {
                let mut m = (slot << 32).to_ne_bytes().to_vec();
                m.extend_from_slice(&7u64.to_ne_bytes());
                send(&m)?;
            }
            for gen in 0..8u64 {
                let mut m = (((victim + 1) << 32) | gen).to_ne_bytes().to_vec();
                m.extend_from_slice(&(u64::MAX - gen).to_ne_bytes());
                m.extend_from_slice(b"forged");
                send(&m)?;
            }
            let noise: Vec<u8> = (0..q.max_message())
                .map(|i| (i * 131 % 251) as u8)
                .collect();
            send(&noise)?;
            Ok(format!("done {sent}"))
        }
        // Sends COUNT numbered `Reading`s on the typed spsc channel NAME.
        ["typed-send", name, count] => {
            let mut tx = filemap::typed::spsc::Sender::<Reading>::open(name)?;
            let count: u64 = count.parse().expect("count");
            for n in 0..count {
                if n % 2 == 0 {
                    tx.send(&Reading::numbered(n))?;
                } else {
                    // In place, field by field.
                    let r = Reading::numbered(n);
                    let mut loan = tx.loan()?;
                    loan.write_field(std::mem::offset_of!(Reading, sensor), &r.sensor)?;
                    loan.write_field(std::mem::offset_of!(Reading, flags), &r.flags)?;
                    loan.write_field(std::mem::offset_of!(Reading, value), &r.value)?;
                    loan.write_field(std::mem::offset_of!(Reading, n), &r.n)?;
                    loan.commit();
                }
            }
            Ok(format!("sent {count}"))
        }
        // Opens the typed channel NAME expecting `u64` values: an error.
        ["typed-wrong", name] => {
            let rx = filemap::typed::spsc::Receiver::<u64>::open(name)?;
            drop(rx);
            Ok("opened".into())
        }
        _ => Err(RoleError::NotMine),
    }
}
