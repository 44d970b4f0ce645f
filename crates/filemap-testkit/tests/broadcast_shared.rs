//! Several senders on one broadcast channel, in real processes: every
//! message whole and told apart by sender, each sender's in order; senders
//! killed mid-write never deliver a torn message and never stall the
//! others; exclusive and shared senders exclude each other.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use filemap::channel::broadcast::{Receiver, Sender, SharedSender};
use filemap::Error;
use filemap_testkit::{shared_message_check, unique, Helper};

fn ready_id(h: &Helper) -> u32 {
    let line = h.line();
    line.strip_prefix("ready ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("expected `ready ID`, got {line:?}"))
}

#[test]
fn three_sender_processes_every_message_whole_and_attributed() {
    let name = unique("bcast-shared");
    let count = if cfg!(windows) { 500u64 } else { 3000 };
    // Room for everything: no receiver is lapped, so nothing is missed.
    let mut rx = Receiver::create(&name, 16384, 256).unwrap();
    // Each sender tags its messages with its number here (100, 101, 102);
    // the channel's sender ids are slots, reused once a sender leaves, so
    // each is checked against the id its sender reported while attached.
    let senders: Vec<Helper> = (0..3)
        .map(|t| {
            let tag = format!("tag={}", 100 + t);
            Helper::spawn(&["bcast-shared-send", &name, &count.to_string(), &tag])
        })
        .collect();
    let ids: HashMap<u32, u32> = senders
        .iter()
        .enumerate()
        .map(|(t, h)| (100 + t as u32, ready_id(h)))
        .collect();
    let mut next: HashMap<u32, u64> = ids.keys().map(|&tag| (tag, 0)).collect();
    for _ in 0..3 * count {
        let m = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(m.missed, 0);
        let (tag, n) = shared_message_check(&m.data).unwrap();
        assert_eq!(
            m.sender, ids[&tag],
            "the channel names the sender of tag {tag}"
        );
        let want = next
            .get_mut(&tag)
            .unwrap_or_else(|| panic!("unknown tag {tag}"));
        assert_eq!(n, *want, "sender {tag}'s messages in order, none lost");
        *want += 1;
    }
    for s in senders {
        assert_eq!(s.line(), format!("sent {count}"));
    }
}

#[test]
fn a_sender_killed_mid_write_delivers_nothing_torn_and_the_others_go_on() {
    let name = unique("bcast-shared-kill");
    let mut rx = Receiver::create(&name, 64, 256).unwrap();
    let steady = Helper::spawn(&["bcast-shared-send", &name, "0"]);
    let steady_id = ready_id(&steady);
    let (mut whole, mut by_victims) = (0u64, 0u64);
    for round in 0..5 {
        let victim = Helper::spawn(&["bcast-shared-send", &name, "0"]);
        let _ = ready_id(&victim);
        // Let both send a while (each receive is one message), then kill
        // the victim wherever it is, quite likely inside a send.
        for _ in 0..2000 {
            let m = rx.recv_timeout(Duration::from_secs(60)).unwrap();
            shared_message_check(&m.data).unwrap_or_else(|e| panic!("round {round}: {e}"));
            whole += 1;
            by_victims += u64::from(m.sender != steady_id);
        }
        victim.kill();
        // The steady sender goes on (it takes the lock over if the victim
        // died holding it): fresh messages of it keep coming.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        while seen < 1000 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the steady sender stalled"
            );
            let m = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            shared_message_check(&m.data).unwrap_or_else(|e| panic!("round {round}: {e}"));
            seen += u64::from(m.sender == steady_id);
        }
    }
    assert!(
        whole >= 10_000 && by_victims > 0,
        "{whole} whole, {by_victims} from victims"
    );
    steady.kill();
}

#[test]
fn exclusive_and_shared_senders_exclude_each_other() {
    let name = unique("bcast-excl");
    let tx = Sender::create(&name, 8, 16).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    let e = SharedSender::open(&name).unwrap_err();
    assert!(
        matches!(e, Error::Busy { .. }) && e.to_string().contains("exclusive"),
        "{e}"
    );
    drop(tx);
    let mut shared = SharedSender::open(&name).unwrap();
    let e = Sender::open(&name).unwrap_err();
    assert!(matches!(e, Error::Busy { .. }), "{e}");
    assert_eq!(rx.try_recv().unwrap(), None, "a shared sender is there");
    shared.send(b"s").unwrap();
    assert_eq!(rx.try_recv().unwrap().unwrap().sender, shared.id());
    drop(shared);
    // With every sender gone, receivers hear it; an exclusive one may come.
    assert!(matches!(rx.try_recv(), Err(Error::PeerGone { .. })));
    let mut tx = Sender::open(&name).unwrap();
    tx.send(b"x").unwrap();
    assert_eq!(rx.try_recv().unwrap().unwrap().sender, 0);
}
