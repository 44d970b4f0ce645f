//! In-process checks of the protocol's pieces; the crash and load cases
//! run with real processes in the testkit's `rpc` tests.

use super::*;
use std::time::Duration;

fn unique(tag: &str) -> String {
    format!("fm-rpc-{tag}-{}", std::process::id())
}

#[test]
fn tags_round_trip_and_zero_is_no_client() {
    assert_eq!(slot_of(tag_of(0, 7)), Some((0, 7)));
    assert_eq!(slot_of(tag_of(65535, u32::MAX)), Some((65535, u32::MAX)));
    assert_eq!(slot_of(0), None);
    assert_eq!(slot_of(7), None, "slot part 0: no client");
}

#[test]
fn responses_come_back_by_id_in_any_order() {
    let name = unique("order");
    let server = Server::create(&name, &Config::new().max_request(16).max_response(16)).unwrap();
    let mut c = Client::open(&name).unwrap();
    let ids: Vec<RequestId> = (0..5u8).map(|i| c.send_request(&[i]).unwrap()).collect();
    let mut reqs: Vec<Request<'_>> = (0..5)
        .map(|_| server.recv_request_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    // Answer in reverse order.
    while let Some(r) = reqs.pop() {
        let v = r.data()[0];
        r.respond(&[v, v]).unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        let i = i as u8;
        assert_eq!(
            c.response_timeout(*id, Duration::from_secs(5)).unwrap(),
            [i, i]
        );
    }
    assert!(c.try_response(ids[0]).is_err(), "collected twice");
}

#[test]
fn a_request_dropped_unanswered_fails_its_call() {
    let name = unique("dropped");
    let server = Server::create(&name, &Config::new()).unwrap();
    let mut c = Client::open(&name).unwrap();
    let id = c.send_request(b"x").unwrap();
    drop(server.recv_request_timeout(Duration::from_secs(5)).unwrap());
    let e = c.response_timeout(id, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Error::PeerGone { .. }), "{e}");
    assert!(e.to_string().contains("dropped"), "{e}");
}

#[test]
fn with_no_server_left_a_call_fails_promptly() {
    let name = unique("noserver");
    let server = Server::create(&name, &Config::new()).unwrap();
    let mut c = Client::open(&name).unwrap();
    drop(server);
    let t = std::time::Instant::now();
    let e = c.call_timeout(b"x", Duration::from_secs(30)).unwrap_err();
    assert!(matches!(e, Error::PeerGone { .. }), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn sizes_over_the_limits_are_refused_naming_the_service() {
    let name = unique("sizes");
    let server = Server::create(&name, &Config::new().max_request(8).max_response(4)).unwrap();
    let mut c = Client::open(&name).unwrap();
    let e = c.try_call(&[0; 9]).unwrap_err();
    assert!(
        matches!(e, Error::InvalidSize { .. }) && e.to_string().contains(&name),
        "{e}"
    );
    let id = c.send_request(&[0; 8]).unwrap();
    let r = server.recv_request_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(r.respond(&[0; 5]), Err(Error::InvalidSize { .. })));
    // The refused response's request was then dropped: the client hears it.
    assert!(matches!(
        c.response_timeout(id, Duration::from_secs(5)),
        Err(Error::PeerGone { .. })
    ));
}

#[test]
fn a_malformed_request_is_counted_and_skipped() {
    let name = unique("malformed");
    let server = Server::create(&name, &Config::new().max_request(32)).unwrap();
    let raw = crate::channel::mpmc::Sender::open(&requests_name(&name)).unwrap();
    raw.send(b"short").unwrap(); // no header
    raw.send(&[0xff; 20]).unwrap(); // a slot that does not exist
    let mut c = Client::open(&name).unwrap();
    let id = c.send_request(b"real").unwrap();
    let r = server.recv_request_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(r.data(), b"real");
    r.respond(b"ok").unwrap();
    assert_eq!(
        c.response_timeout(id, Duration::from_secs(5)).unwrap(),
        b"ok"
    );
    assert_eq!(server.rejected(), 2);
}

#[test]
fn a_typed_opener_of_another_type_is_refused_naming_both() {
    let name = unique("types");
    let _s = Server::create(
        &name,
        &Config::new().message_types(MessageType::of::<u64>(), MessageType::of::<u32>()),
    )
    .unwrap();
    let e = Client::open_typed(
        &name,
        &Options::new(),
        &MessageType::of::<u64>(),
        &MessageType::of::<u64>(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Incompatible { .. }), "{e}");
    assert!(
        e.to_string().contains("u32") && e.to_string().contains("u64"),
        "{e}"
    );
}

#[cfg(not(loom))]
#[test]
fn async_calls_and_requests_complete_and_a_dropped_call_is_abandoned() {
    let name = unique("async");
    let server = Server::create(&name, &Config::new()).unwrap();
    let mut c = Client::open(&name).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (a, b) = rt.block_on(async {
        let serve = async {
            for _ in 0..2 {
                let r = server.recv_request_async().await.unwrap();
                let mut out = r.data().to_vec();
                out.reverse();
                r.respond(&out).unwrap();
            }
        };
        let calls = async {
            let a = c.call_async(b"abc").await.unwrap();
            let b = c.call_async(b"xyz").await.unwrap();
            (a, b)
        };
        let work = async { tokio::join!(calls, serve).0 };
        tokio::time::timeout(Duration::from_secs(30), work)
            .await
            .expect("within 30 s")
    });
    assert_eq!((a.as_slice(), b.as_slice()), (&b"cba"[..], &b"zyx"[..]));
    // A call whose future is dropped after sending: its response is
    // dropped on arrival, and nothing stays in flight.
    let late = c.send_request(b"late").unwrap();
    drop(c.response_async(late));
    let next = c.send_request(b"next").unwrap();
    for _ in 0..2 {
        let r = server.recv_request_timeout(Duration::from_secs(5)).unwrap();
        let out = r.data().to_vec();
        r.respond(&out).unwrap();
    }
    assert_eq!(
        c.response_timeout(next, Duration::from_secs(5)).unwrap(),
        b"next"
    );
    assert!(c.try_response(late).is_err(), "abandoned: not in flight");
    assert_eq!(
        c.in_flight(),
        0,
        "the abandoned call's response was dropped"
    );
}

#[test]
fn a_server_in_a_wait_set_is_ready_when_a_request_comes() {
    let name = unique("waitset");
    let mut server = Server::create(&name, &Config::new()).unwrap();
    let mut c = Client::open(&name).unwrap();
    let mut set = crate::wait::WaitSet::new();
    assert!(set.try_wait(&mut [&mut server]).unwrap().is_empty());
    let id = c.send_request(b"q").unwrap();
    let ready = set
        .wait_timeout(&mut [&mut server], Duration::from_secs(5))
        .unwrap();
    assert_eq!(ready.len(), 1);
    server
        .try_recv_request()
        .unwrap()
        .expect("a request")
        .respond(b"a")
        .unwrap();
    // And a client is ready when its response has come.
    let ready = set
        .wait_timeout(&mut [&mut c], Duration::from_secs(5))
        .unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(c.try_response(id).unwrap().as_deref(), Some(&b"a"[..]));
}

#[test]
fn inspect_names_the_types_servers_and_clients() {
    let name = unique("inspect");
    let s = Server::create(
        &name,
        &Config::new()
            .clients(3)
            .message_types(MessageType::of::<u64>(), MessageType::of::<[u8; 4]>()),
    )
    .unwrap();
    let c = Client::open(&name).unwrap();
    let i = inspect(&name).unwrap();
    let me = std::process::id();
    assert_eq!(
        (i.servers.as_slice(), i.clients.as_slice()),
        (&[me][..], &[me][..])
    );
    assert_eq!(i.client_slots, 3);
    assert_eq!(i.request_type.unwrap().identity(), "u64");
    assert_eq!(i.response_type.unwrap().identity(), "[u8; 4]");
    drop((c, s));
    // Not a service:
    let _ch = crate::channel::mpmc::Sender::create(&unique("not-svc"), 4, 4).unwrap();
    assert!(matches!(
        inspect(&unique("not-svc")),
        Err(Error::Incompatible { .. })
    ));
}

#[test]
fn an_owned_request_answers_apart_from_its_server() {
    let name = unique("owned");
    let server = std::sync::Arc::new(Server::create(&name, &Config::new()).unwrap());
    let mut c = Client::open(&name).unwrap();
    let a = c.send_request(b"a").unwrap();
    let b = c.send_request(b"b").unwrap();
    let ra = Server::recv_request_owned_timeout(&server, Duration::from_secs(5)).unwrap();
    let rb = Server::recv_request_owned_timeout(&server, Duration::from_secs(5)).unwrap();
    // Answered from another thread; the other dropped unanswered.
    std::thread::spawn(move || ra.respond(b"A").unwrap())
        .join()
        .unwrap();
    drop(rb);
    assert_eq!(c.response_timeout(a, Duration::from_secs(5)).unwrap(), b"A");
    let e = c.response_timeout(b, Duration::from_secs(5)).unwrap_err();
    assert!(e.to_string().contains("dropped"), "{e}");
}
