//! The library's routes for each kind of local object, and its loop guards,
//! with two bridges (two Zenoh sessions over loopback TCP, multicast
//! scouting off) in this process. The bridge between processes and hosts is
//! tested with real processes in `filemap-cli/tests/bridge.rs`.

use filemap::channel::{broadcast, mpmc};
use filemap::sync::{LatestBytesReader, LatestBytesWriter};
use filemap_testkit::{free_port, unique, wait_until, DEADLINE};
use filemap_zenoh::wire::Stamp;
use filemap_zenoh::{Bridge, Config, Error, Route, RouteStats};
use zenoh::Wait;

/// Zenoh on loopback only: listen on `listen`, connect to `connect`.
fn zenoh_config(listen: &str, connect: Option<&str>) -> zenoh::Config {
    let mut c = zenoh::Config::default();
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    c.insert_json5("listen/endpoints", &format!(r#"["{listen}"]"#))
        .unwrap();
    if let Some(to) = connect {
        c.insert_json5("connect/endpoints", &format!(r#"["{to}"]"#))
            .unwrap();
    }
    c
}

fn bridge(listen: &str, connect: Option<&str>, routes: Vec<Route>) -> Bridge {
    let mut c = Config::new(zenoh_config(listen, connect));
    for r in routes {
        c.route(r);
    }
    Bridge::new(c).expect("a bridge")
}

fn stats<'a>(all: &'a [RouteStats], local: &str) -> &'a RouteStats {
    all.iter().find(|r| r.local == local).expect("a route")
}

/// Runs `a` and `b` while `body` runs; stops them; returns their final stats.
fn with_bridges(a: &Bridge, b: &Bridge, body: impl FnOnce()) {
    std::thread::scope(|s| {
        let ra = s.spawn(|| a.run());
        let rb = s.spawn(|| b.run());
        let stop = (a.stopper(), b.stopper());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        stop.0.stop();
        stop.1.stop();
        ra.join().unwrap().expect("bridge A ran");
        rb.join().unwrap().expect("bridge B ran");
        if let Err(p) = outcome {
            std::panic::resume_unwind(p);
        }
    });
}

#[test]
fn broadcast_latest_and_mpmc_routes_carry_what_they_should() {
    let t = unique("kinds");
    let (bc_src, bc_dst) = (format!("{t}-bc-src"), format!("{t}-bc-dst"));
    let (lt_src, lt_dst) = (format!("{t}-lt-src"), format!("{t}-lt-dst"));
    let mp_dst = format!("{t}-mp-dst");
    let (k_bc, k_lt, k_mp) = (format!("{t}/bc"), format!("{t}/lt"), format!("{t}/mp"));
    let port = free_port();
    let at = format!("tcp/127.0.0.1:{port}");

    // The local objects, made by their producers and consumers.
    let mut bc_tx = broadcast::Sender::create(&bc_src, 1024, 256).unwrap();
    let mut bc_rx = broadcast::Receiver::create(&bc_dst, 1024, 256).unwrap();
    let mut lt_w = LatestBytesWriter::create(&lt_src, &[0; 32]).unwrap();
    let lt_r = LatestBytesReader::create(&lt_dst, &[0; 32]).unwrap();
    let mp_rx = mpmc::Receiver::create(&mp_dst, 64, 64).unwrap();

    let a = bridge(
        &at,
        None,
        vec![
            Route::out(&bc_src, &k_bc).unwrap(),
            Route::out(&lt_src, &k_lt).unwrap(),
        ],
    );
    let b = bridge(
        "tcp/127.0.0.1:0",
        Some(&at),
        vec![
            Route::into_local(&k_bc, &bc_dst).unwrap(),
            Route::into_local(&k_lt, &lt_dst).unwrap(),
            Route::into_local(&k_mp, &mp_dst).unwrap(),
        ],
    );
    with_bridges(&a, &b, || {
        wait_until("both Out routes matched by B's subscriptions", || {
            let s = a.stats();
            [&bc_src, &lt_src]
                .iter()
                .all(|n| stats(&s, n).matched == Some(true))
        });

        // Broadcast: 1000 messages of 0 to 255 bytes, in order, exact.
        for i in 0..1000u32 {
            bc_tx.send(&vec![i as u8; (i % 256) as usize]).unwrap();
        }
        for i in 0..1000u32 {
            let m = bc_rx.recv_timeout(DEADLINE).unwrap();
            assert_eq!(m.data, vec![i as u8; (i % 256) as usize], "message {i}");
            assert_eq!(m.missed, 0);
        }

        // Latest: each value waited for arrives; of a burst, the last one
        // does, and the ones skipped are counted on both sides.
        let mut buf = [0u8; 32];
        for v in 1..=20u8 {
            lt_w.write(&[v; 32]).unwrap();
            wait_until("the value reaching B's cell", || {
                lt_r.read_into(&mut buf).unwrap();
                buf == [v; 32]
            });
        }
        for v in 21..=200u8 {
            lt_w.write(&[v; 32]).unwrap();
        }
        wait_until("the burst's last value reaching B's cell", || {
            lt_r.read_into(&mut buf).unwrap();
            buf == [200; 32]
        });

        // Plain Zenoh samples (no stamp) are delivered and counted apart;
        // one of the wrong size for the cell is refused.
        let plain = zenoh::open(zenoh_config("tcp/127.0.0.1:0", Some(&at)))
            .wait()
            .unwrap();
        let p = plain.declare_publisher(k_mp.clone()).wait().unwrap();
        wait_until("B's mpmc subscription matching", || {
            p.matching_status().wait().unwrap().matching()
        });
        for i in 0..10u8 {
            p.put(vec![i; 5]).wait().unwrap();
        }
        for i in 0..10u8 {
            assert_eq!(mp_rx.recv_timeout(DEADLINE).unwrap(), vec![i; 5]);
        }
        plain.put(k_lt.clone(), vec![1u8; 3]).wait().unwrap();
        wait_until("the 3-byte sample refused by the 32-byte cell", || {
            stats(&b.stats(), &lt_dst).rejected == 1
        });
        plain.close().wait().unwrap();
    });

    let (sa, sb) = (a.stats(), b.stats());
    let (bc_a, bc_b) = (stats(&sa, &bc_src), stats(&sb, &bc_dst));
    assert_eq!((bc_a.messages, bc_a.lost), (1000, 0), "{bc_a:?}");
    assert_eq!((bc_b.messages, bc_b.lost), (1000, 0), "{bc_b:?}");
    assert_eq!(bc_a.backpressure.map(|b| b.as_str()), Some("drop"));

    // Versions 0..=200 were each either published or counted as skipped.
    let (lt_a, lt_b) = (stats(&sa, &lt_src), stats(&sb, &lt_dst));
    assert_eq!(lt_a.messages + lt_a.lost, 201, "{lt_a:?}");
    // What A skipped shows on B as gaps in the numbers, exactly.
    assert_eq!(lt_b.lost, lt_a.lost, "{lt_a:?} {lt_b:?}");
    // B numbers the values as A did (one number per version) from where it
    // joined: every number is a message or a counted loss.
    let o = &lt_b.origins[0];
    assert_eq!(o.last_seq, 200, "{lt_b:?}");
    assert_eq!(
        lt_b.messages + lt_b.lost,
        o.last_seq - o.first_seq + 1,
        "{lt_b:?}"
    );
    assert_eq!((lt_b.rejected, lt_b.foreign), (1, 1), "{lt_b:?}");

    let mp_b = stats(&sb, &mp_dst);
    assert_eq!(
        (mp_b.messages, mp_b.foreign, mp_b.lost),
        (10, 10, 0),
        "{mp_b:?}"
    );
    assert_eq!(mp_b.backpressure.map(|b| b.as_str()), Some("block"));
}

#[test]
fn a_bridge_never_republishes_what_it_injected() {
    // One local object as both an Out source and an In target: refused.
    let e = Bridge::new({
        let mut c = Config::new(zenoh_config("tcp/127.0.0.1:0", None));
        c.route(Route::out("loop-x", "k/x").unwrap())
            .route(Route::into_local("k/y", "loop-x").unwrap());
        c
    })
    .unwrap_err();
    assert!(
        matches!(&e, Error::Route { .. }) && e.to_string().contains("also the target of"),
        "{e}"
    );

    // A bridge that publishes and subscribes on one key does not take its
    // own samples back, and ignores samples stamped with its own id (a
    // copy relayed back to it by someone else).
    let t = unique("loop");
    let (src, dst, seen) = (format!("{t}-src"), format!("{t}-dst"), format!("{t}-seen"));
    let key = format!("{t}/k");
    let port = free_port();
    let at = format!("tcp/127.0.0.1:{port}");
    let mut tx = broadcast::Sender::create(&src, 64, 64).unwrap();
    let mut own = broadcast::Receiver::create(&dst, 64, 64).unwrap();
    let mut far = broadcast::Receiver::create(&seen, 64, 64).unwrap();
    let a = bridge(
        &at,
        None,
        vec![
            Route::out(&src, &key).unwrap(),
            Route::into_local(&key, &dst).unwrap(),
        ],
    );
    let b = bridge(
        "tcp/127.0.0.1:0",
        Some(&at),
        vec![Route::into_local(&key, &seen).unwrap()],
    );
    let a_id: [u8; 16] = (0..16)
        .map(|i| u8::from_str_radix(&a.id()[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    with_bridges(&a, &b, || {
        wait_until("A's Out route matched by B", || {
            stats(&a.stats(), &src).matched == Some(true)
        });
        for i in 0..10u8 {
            tx.send(&[i]).unwrap();
        }
        for i in 0..10u8 {
            assert_eq!(far.recv_timeout(DEADLINE).unwrap().data, vec![i]);
        }
        // A forged relay: a plain session sends A's own stamp back to it.
        let relay = zenoh::open(zenoh_config("tcp/127.0.0.1:0", Some(&at)))
            .wait()
            .unwrap();
        let stamp = Stamp {
            origin: a_id,
            seq: 3,
        };
        // ...and, after it, one foreign sample, so that we know when the
        // forged one has been handled (samples from one session arrive in order).
        relay
            .put(key.clone(), vec![3u8])
            .attachment(stamp.encode())
            .wait()
            .unwrap();
        // Forged numbers from a made-up origin, near 2^63 and 2^64 (issue
        // 25: the route reported nine quintillion lost): delivered, and
        // counted as resets, not losses.
        for (payload, seq) in [(7u8, 0u64), (8, 1 << 63), (9, u64::MAX - 1)] {
            let forged = Stamp {
                origin: [0xee; 16],
                seq,
            };
            relay
                .put(key.clone(), vec![payload])
                .attachment(forged.encode())
                .wait()
                .unwrap();
        }
        relay.put(key.clone(), vec![99u8]).wait().unwrap();
        for want in [7u8, 8, 9, 99] {
            let got = own.recv_timeout(DEADLINE);
            assert_eq!(
                got.map(|m| m.data)
                    .map_err(|e| format!("{e}: {:?}", a.stats())),
                Ok(vec![want])
            );
        }
        relay.close().wait().unwrap();
    });
    let sa = a.stats();
    let own_route = stats(&sa, &dst);
    // Nothing of its own came back through Zenoh; the forged copy was dropped.
    assert_eq!(own_route.echoes, 1, "{own_route:?}");
    assert_eq!(
        (own_route.messages, own_route.foreign),
        (4, 1),
        "{own_route:?}"
    );
    assert_eq!(
        (own_route.lost, own_route.resets),
        (0, 2),
        "forged jumps are resets, not losses: {own_route:?}"
    );
    // Nothing more was written: the bridge has closed its end, and the
    // receiver says so only once nothing is left.
    assert!(
        matches!(own.try_recv(), Err(filemap::Error::PeerGone { .. })),
        "more in {dst}"
    );
}
