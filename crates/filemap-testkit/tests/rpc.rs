//! Request-response and typed channels across real processes: four client
//! processes making 100,000 calls each with every response checked, a
//! client killed mid-call, a server killed mid-call and restarted, a
//! hostile client, and typed values (copied and written in place).

use std::time::{Duration, Instant};

use filemap::rpc::{Client, Config, Server};
use filemap::{Access, Error, Mapping};
use filemap_testkit::{rpc_request, rpc_response, unique, wait_until, Helper, Reading};

fn serve(name: &str, how: &str, extra: &[&str]) -> Helper {
    let mut args = vec!["rpc-serve", name, how];
    args.extend_from_slice(extra);
    let h = Helper::spawn(&args);
    assert_eq!(h.line(), "ready");
    h
}

fn gone(name: &str) -> bool {
    matches!(
        Mapping::open(name, Access::Read),
        Err(Error::NotFound { .. })
    )
}

#[test]
fn four_clients_make_100_000_calls_each_every_response_matching_its_request() {
    let name = unique("rpc-load");
    let server = serve(&name, "create", &[]);
    let count = if cfg!(windows) { 5_000 } else { 100_000 };
    let clients: Vec<Helper> = (0..4)
        .map(|k| {
            // Client 0 waits for each response; the others keep 8 in flight.
            let inflight = if k == 0 { "1" } else { "8" };
            let c = Helper::spawn(&[
                "rpc-client",
                &name,
                &k.to_string(),
                &count.to_string(),
                inflight,
            ]);
            assert_eq!(c.line(), "ready");
            c
        })
        .collect();
    for c in clients {
        assert_eq!(c.line(), format!("ok {count}"));
        c.exit();
    }
    drop(server);
}

#[test]
fn a_client_killed_mid_call_leaks_nothing_and_the_others_are_served() {
    let name = unique("rpc-client-dies");
    let server = serve(&name, "create", &[]);
    let victim = Helper::spawn(&["rpc-client-slow", &name]);
    let line = victim.line();
    let responses = line.strip_prefix("sent ").expect("sent NAME").to_owned();
    assert!(
        !gone(&responses),
        "its response channel exists while it runs"
    );
    victim.kill(); // mid-call: the server answers 300 ms after taking it
                   // Another client is served all along.
    let mut c = Client::open(&name).unwrap();
    for n in 0..100 {
        let req = rpc_request(9, n);
        assert_eq!(
            c.call_timeout(&req, Duration::from_secs(30)).unwrap(),
            rpc_response(&req)
        );
    }
    // The dead client's response channel goes away: the server lets go of it.
    wait_until("the dead client's response channel is removed", || {
        gone(&responses)
    });
    // Its slot is taken again by new clients, many times over.
    for _ in 0..40 {
        let mut c2 = Client::open(&name).unwrap();
        assert_eq!(
            c2.call_timeout(b"x", Duration::from_secs(30)).unwrap(),
            rpc_response(b"x")
        );
    }
    drop(server);
}

#[test]
fn a_server_killed_mid_call_fails_the_call_promptly_and_a_restarted_one_takes_over() {
    let name = unique("rpc-server-dies");
    // The service outlives its first server: the client holds its names.
    let keeper = Server::create(&name, &Config::new().max_request(64).max_response(64)).unwrap();
    let mut c = Client::open(&name).unwrap();
    drop(keeper);
    let stall = serve(&name, "open", &["stall"]);
    let id = c.send_request(b"never answered").unwrap();
    assert_eq!(stall.line(), format!("took {}", id.get()));
    let killed = Instant::now();
    stall.kill();
    let e = c.response_timeout(id, Duration::from_secs(30)).unwrap_err();
    assert!(matches!(e, Error::PeerGone { .. }), "{e}");
    assert!(
        e.to_string().contains("died") || e.to_string().contains("no server"),
        "{e}"
    );
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "PeerGone came {took:?} after the kill"
    );
    // A new server takes over; the same client is served again.
    let restarted = serve(&name, "open", &[]);
    for n in 0..50 {
        let req = rpc_request(3, n);
        assert_eq!(
            c.call_timeout(&req, Duration::from_secs(30)).unwrap(),
            rpc_response(&req)
        );
    }
    drop(restarted);
}

#[test]
fn a_server_killed_while_another_serves_fails_only_the_calls_it_held() {
    let name = unique("rpc-two-servers");
    let keeper = Server::create(&name, &Config::new().max_request(64).max_response(64)).unwrap();
    let mut c = Client::open(&name).unwrap();
    let stall = serve(&name, "open", &["stall"]);
    let id = c.send_request(b"held by the staller").unwrap();
    assert_eq!(stall.line(), format!("took {}", id.get()));
    stall.kill();
    // `keeper` is alive: only the held call fails, and the keeper (looking
    // at the dead server in its maintenance) or the client reports it.
    let t = std::thread::spawn(move || {
        let r = keeper
            .recv_request_timeout(Duration::from_secs(30))
            .unwrap();
        let out = rpc_response(r.data());
        r.respond(&out).unwrap();
        // Its maintenance runs while it waits: long enough for one round.
        let _ = keeper.recv_request_timeout(Duration::from_millis(300));
    });
    let e = c.response_timeout(id, Duration::from_secs(30)).unwrap_err();
    assert!(
        matches!(e, Error::PeerGone { .. }) && e.to_string().contains("died"),
        "{e}"
    );
    assert_eq!(
        c.call_timeout(b"y", Duration::from_secs(30)).unwrap(),
        rpc_response(b"y")
    );
    t.join().unwrap();
}

#[test]
fn a_hostile_client_does_not_take_the_server_down() {
    let name = unique("rpc-hostile");
    let server = serve(&name, "create", &[]);
    let mut c = Client::open(&name).unwrap();
    let hostile = Helper::spawn(&["rpc-hostile", &name, &c.slot().to_string()]);
    assert!(hostile.line().starts_with("done "));
    // The server still serves, and this client gets its own responses only
    // (the forged ones carry ids it never sent).
    for n in 0..200 {
        let req = rpc_request(5, n);
        assert_eq!(
            c.call_timeout(&req, Duration::from_secs(30)).unwrap(),
            rpc_response(&req)
        );
    }
    assert_eq!(c.in_flight(), 0);
    drop(server);
}

#[test]
fn typed_values_cross_processes_copied_and_written_in_place() {
    use filemap::typed::spsc::Receiver;
    let name = unique("typed-stream");
    let mut rx = Receiver::<Reading>::create(&name, 256).unwrap();
    let count = 20_000u64;
    let tx = Helper::spawn(&["typed-send", &name, &count.to_string()]);
    for n in 0..count {
        if n % 3 == 0 {
            let s = rx.sample_timeout(Duration::from_secs(60)).unwrap();
            assert_eq!(s.len(), 1);
            assert_eq!(
                s.read_field::<u64>(0, std::mem::offset_of!(Reading, n))
                    .unwrap(),
                n
            );
            assert_eq!(s.get(0).unwrap(), Reading::numbered(n));
        } else {
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(60)).unwrap(),
                Reading::numbered(n)
            );
        }
    }
    assert_eq!(tx.line(), format!("sent {count}"));
    // Another process opening it as another type is refused, naming both.
    let wrong = Helper::spawn(&["typed-wrong", &name]);
    let line = wrong.line();
    assert!(line.starts_with("err Incompatible"), "{line}");
    assert!(line.contains("Reading") && line.contains("u64"), "{line}");
}

#[test]
fn a_message_that_is_not_a_whole_value_is_malformed_and_the_next_one_arrives() {
    use filemap::typed::spsc::Receiver;
    let name = unique("typed-malformed");
    let mut rx = Receiver::<Reading>::create(&name, 16).unwrap();
    // Bytes, through the byte API of the same channel (as any process may).
    let mut raw = filemap::channel::spsc::Sender::open(&name).unwrap();
    raw.send(&[7; 5]).unwrap();
    raw.send(zerocopy::IntoBytes::as_bytes(&Reading::numbered(4)))
        .unwrap();
    let e = rx.recv_timeout(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
    assert!(
        e.to_string().contains("5 bytes") && e.to_string().contains(&name),
        "{e}"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Reading::numbered(4)
    );
}
