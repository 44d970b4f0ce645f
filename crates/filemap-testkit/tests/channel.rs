//! SPSC channel and seqlock cell across real processes: streams checked message
//! by message, peers killed at random points, and corrupt segments.

use std::time::Duration;

use filemap::channel::spsc::{Receiver, Sender};
use filemap::sync::{LatestReader, LatestWriter};
use filemap::{Error, Mapping, Options, ViewAccess};
use filemap_testkit::{message_check, unique, Helper};

/// Receives and checks messages `from..` until `until` of them have arrived
/// (`Ok`) or a receive fails (`Err`, with how many had arrived).
fn drain(rx: &mut Receiver, from: u64, until: Option<u64>) -> Result<u64, (u64, Error)> {
    let max = (rx.capacity() / 2 - 8) as usize;
    let mut n = from;
    while Some(n) != until {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(m) => message_check(n, max, &m.to_vec()).unwrap_or_else(|e| panic!("{e}")),
            Err(e) => return Err((n, e)),
        }
        n += 1;
    }
    Ok(n)
}

#[test]
fn a_million_messages_cross_processes_none_lost_duplicated_or_torn() {
    let name = unique("spsc-stream");
    let mut rx = Receiver::create(&name, 1 << 16).unwrap();
    let count: u64 = if cfg!(windows) { 50_000 } else { 1_000_000 };
    let tx = Helper::spawn(&["spsc-send", &name, &count.to_string()]);
    assert_eq!(tx.line(), "ready");
    assert_eq!(drain(&mut rx, 0, Some(count)).unwrap(), count);
    assert_eq!(tx.line(), format!("sent {count}"));
    // The sender exits: its end closes, and an empty ring then reports it.
    tx.exit();
    let end = rx.recv_timeout(Duration::from_secs(60)).map(|m| m.to_vec());
    match end {
        Err(Error::PeerGone { reason, .. }) => {
            assert!(reason.contains("sender closed"), "{reason}")
        }
        other => panic!("expected PeerGone, got {other:?}"),
    }
}

/// Sends messages `0..count`, each of `message_len` bytes filled by
/// `message_fill`, blocking for room (what `spsc-recv` checks).
fn send_numbered(tx: &mut Sender, count: u64) {
    let max = tx.max_message();
    for n in 0..count {
        let mut buf = vec![0; filemap_testkit::message_len(n, max)];
        filemap_testkit::message_fill(n, &mut buf);
        tx.send_timeout(&buf, Duration::from_secs(60)).unwrap();
    }
}

#[test]
fn receiver_in_another_process_checks_every_message() {
    let name = unique("spsc-rx");
    let mut tx = Sender::create(&name, 4096).unwrap();
    let count = 20_000u64;
    let rx = Helper::spawn(&["spsc-recv", &name, &count.to_string()]);
    assert_eq!(rx.line(), "ready");
    send_numbered(&mut tx, count);
    assert_eq!(rx.line(), format!("received {count}"));
    rx.exit();
    // The receiver is gone: once the ring is full, the sender learns it.
    let err = loop {
        match tx.send_timeout(&[7; 100], Duration::from_secs(60)) {
            Ok(()) => continue,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, Error::PeerGone { reason, .. } if reason.contains("receiver closed")),
        "{err:?}"
    );
}

/// Every process fences on its hot path (the `membarrier` scheme was given
/// up: the kernel can leave a registered process out of the barrier), and
/// each one that attaches a channel to write sets the segment's fence flag,
/// so that a process of an older filemap, which skips its fences while the
/// flag is clear, fences too. Blocking transfers between two processes then
/// lose no wake-up.
#[cfg(target_os = "linux")]
#[test]
fn every_writer_sets_the_fence_flag_and_transfers_lose_no_wake_up() {
    const FENCE_FLAG: usize = 72;
    let name = unique("spsc-fences");
    let mut tx = Sender::create(&name, 1024).unwrap();
    let raw = Mapping::open(&name, filemap::Access::Read).unwrap();
    let header = raw.view(..128, ViewAccess::Read).unwrap();
    assert_eq!(
        header.load_u32(FENCE_FLAG).unwrap(),
        1,
        "the creator asked older processes to fence"
    );
    let count = 5_000u64;
    let rx = Helper::spawn(&["spsc-recv", &name, &count.to_string()]);
    assert_eq!(rx.line(), "ready");
    // A small ring: the sender often waits for space and the receiver for
    // data, so both sides park and are woken many times.
    send_numbered(&mut tx, count);
    assert_eq!(rx.line(), format!("received {count}"));
    rx.exit();
}

#[test]
fn sender_killed_mid_stream_leaves_only_whole_messages_then_an_error() {
    // Kill the sender at several points; each time every message received is
    // whole and in order, and the receiver ends with PeerGone, not a hang.
    for (round, kill_after) in [1u64, 37, 1_000, 25_000].into_iter().enumerate() {
        let name = unique("spsc-kill-tx");
        let mut rx = Receiver::create(&name, 1 << 12).unwrap();
        let tx = Helper::spawn(&["spsc-send", &name, "0"]);
        assert_eq!(tx.line(), "ready");
        let n = drain(&mut rx, 0, Some(kill_after)).unwrap();
        tx.kill();
        let (total, err) = drain(&mut rx, n, None).unwrap_err();
        assert!(total >= kill_after, "round {round}");
        match err {
            Error::PeerGone { reason, .. } => {
                assert!(reason.contains("died"), "round {round}: {reason}")
            }
            other => panic!("round {round}: expected PeerGone, got {other:?}"),
        }
        // A new sender may take over the dead one's end and go on.
        let mut tx2 = Sender::open(&name).unwrap();
        assert!(tx2.try_send(b"after").unwrap());
        assert_eq!(rx.try_recv().unwrap().unwrap().to_vec(), b"after");
    }
}

#[test]
fn receiver_killed_leaves_the_sender_an_error_and_a_live_one_is_exclusive() {
    let name = unique("spsc-kill-rx");
    let mut tx = Sender::create(&name, 1 << 12).unwrap();
    let rx = Helper::spawn(&["spsc-recv", &name, "1000000000"]);
    assert_eq!(rx.line(), "ready");
    // A second receiver is refused while the first lives.
    match Receiver::open(&name) {
        Err(Error::Busy { reason, .. }) => assert!(reason.contains("receiver"), "{reason}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    let max = tx.max_message();
    for n in 0..500 {
        let mut buf = vec![0; filemap_testkit::message_len(n, max)];
        filemap_testkit::message_fill(n, &mut buf);
        tx.send_timeout(&buf, Duration::from_secs(60)).unwrap();
    }
    rx.kill();
    let err = loop {
        if let Err(e) = tx.send_timeout(&[1; 64], Duration::from_secs(60)) {
            break e;
        }
    };
    assert!(
        matches!(&err, Error::PeerGone { reason, .. } if reason.contains("died")),
        "{err:?}"
    );
    // The dead receiver's end can be taken over.
    let mut rx2 = Receiver::open(&name).unwrap();
    assert!(rx2.try_recv().unwrap().is_some());
}

/// A receiver that takes over a dead one's end resumes after the last space
/// the dead one freed: without `release`, what it received since (less than
/// a quarter of the ring here) comes again; with `release`, nothing does.
#[test]
fn a_receiver_taking_over_resumes_after_the_dead_ones_last_release() {
    for (how, first) in [("keep", 0u8), ("release", 3u8)] {
        let name = unique("spsc-takeover");
        let mut tx = Sender::create(&name, 1 << 12).unwrap();
        for i in 0..10u8 {
            tx.send(&[i; 8]).unwrap();
        }
        let taker = Helper::spawn(&["spsc-take", &name, "3", how]);
        assert_eq!(taker.line(), "took 3");
        taker.kill();
        let mut rx = Receiver::open(&name).unwrap();
        let m = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(m.to_vec(), vec![first; 8], "{how}");
    }
}

#[test]
fn message_sizes_from_zero_to_the_limit_and_beyond() {
    let name = unique("spsc-sizes");
    let mut tx = Sender::create(&name, 1000).unwrap(); // rounded up to 1024
    let mut rx = Receiver::open(&name).unwrap();
    assert_eq!(tx.capacity(), 1024);
    assert_eq!(tx.max_message(), 504);
    for len in [0usize, 1, 7, 8, 9, 255, 503, 504] {
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        // Several rounds, so that records wrap around the ring's end.
        for _ in 0..3 {
            assert!(tx.try_send(&msg).unwrap(), "len {len}");
            let got = rx.try_recv().unwrap().expect("message");
            assert_eq!(got.len(), len);
            assert_eq!(got.to_vec(), msg);
        }
    }
    match tx.try_send(&[0; 505]) {
        Err(Error::InvalidSize { reason, .. }) => {
            assert!(reason.contains("limit of 504"), "{reason}")
        }
        other => panic!("expected InvalidSize, got {other:?}"),
    }
    // A full ring: try_send says so; a timed send times out.
    while tx.try_send(&[1; 200]).unwrap() {}
    match tx.send_timeout(&[1; 200], Duration::from_millis(50)) {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    // An empty ring: try_recv gives None; a timed receive times out.
    while rx.try_recv().unwrap().is_some() {}
    assert!(rx.try_recv().unwrap().is_none());
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(50)),
        Err(Error::Timeout { .. })
    ));
    // Zero-copy: reserve, write in place, commit; an abandoned reservation publishes nothing.
    let mut slot = tx.try_reserve(5).unwrap().unwrap();
    slot.write_at(0, b"hello").unwrap();
    assert!(matches!(
        slot.write_at(3, b"xyz"),
        Err(Error::OutOfRange { .. })
    ));
    slot.commit();
    assert!(
        tx.try_reserve(9).unwrap().is_some(),
        "reserved, then dropped uncommitted"
    );
    let m = rx.try_recv().unwrap().unwrap();
    let mut part = [0u8; 3];
    m.read_at(1, &mut part).unwrap();
    assert_eq!(&part, b"ell");
    assert!(matches!(
        m.read_at(4, &mut part),
        Err(Error::OutOfRange { .. })
    ));
    drop(m);
    assert!(rx.try_recv().unwrap().is_none());
}

#[test]
fn opening_the_wrong_kind_or_a_raw_mapping_is_refused() {
    let raw = unique("spsc-raw");
    let m = Mapping::create(&raw, 4096).unwrap();
    m.view(.., ViewAccess::ReadWrite)
        .unwrap()
        .write_at(0, b"not a segment")
        .unwrap();
    assert!(matches!(Receiver::open(&raw), Err(Error::Corrupt { .. })));
    let cell = unique("latest");
    let _w = LatestWriter::<u64>::create(&cell, &5).unwrap();
    match Receiver::open(&cell) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("latest"), "{reason}"),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    match LatestReader::<u32>::open(&cell) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(reason.contains("fingerprint"), "{reason}")
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    let small = unique("spsc-small");
    let _s = Mapping::create(&small, 64).unwrap();
    let quick = Options::new().ready_timeout(Duration::from_millis(100));
    let r = Receiver::open_with(&small, &quick);
    if cfg!(windows) {
        // An opener sees whole pages on Windows: 4 KiB of zeros, which look
        // like a segment whose creator has not written its header yet.
        assert!(matches!(r, Err(Error::NotReady { .. })), "{r:?}");
    } else {
        assert!(
            matches!(r, Err(Error::Corrupt { ref reason, .. }) if reason.contains("too small")),
            "{r:?}"
        );
    }
}

#[test]
fn latest_readers_never_see_a_torn_value_and_survive_a_killed_writer() {
    let name = unique("latest");
    let w = Helper::spawn(&["latest-write", &name, "create"]);
    assert_eq!(w.line(), "ready");
    let r = LatestReader::<[u64; 16]>::open(&name).unwrap();
    let mut last = 0;
    let mut changes = 0;
    // At least 200,000 reads, and until the writer was seen to make progress
    // (it may not be scheduled during the first ones when other tests keep
    // both CPUs busy).
    let deadline = std::time::Instant::now() + filemap_testkit::DEADLINE;
    let mut reads = 0u64;
    while reads < 200_000 || changes < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer made no progress in {reads} reads"
        );
        let v = r.read().unwrap();
        assert!(v.iter().all(|&x| x == v[0]), "torn value {v:?}");
        assert!(v[0] >= last, "went backwards");
        changes += u32::from(v[0] != last);
        last = v[0];
        reads += 1;
    }
    // Killed at whatever point of a write it was in: readers still get the
    // last whole value, however often they read.
    w.kill();
    let v = r.read().unwrap();
    assert!(v.iter().all(|&x| x == v[0]) && v[0] >= last, "{v:?}");
    for _ in 0..1000 {
        assert_eq!(r.read().unwrap(), v);
    }
    // A writer is exclusive while alive, and can be replaced once dead.
    let mut w2 = LatestWriter::<[u64; 16]>::open(&name).unwrap();
    assert!(matches!(
        LatestWriter::<[u64; 16]>::open(&name),
        Err(Error::Busy { .. })
    ));
    w2.write(&[u64::MAX; 16]);
    assert_eq!(r.read().unwrap(), [u64::MAX; 16]);
}

#[test]
fn event_permits_wake_one_waiter_each_and_pulses_wake_all() {
    use filemap::sync::Event;
    let name = unique("event");
    let e = Event::create(&name).unwrap();
    // Two permits for three waiters: exactly two are notified, one times out.
    let waiters: Vec<Helper> = (0..3)
        .map(|_| Helper::spawn(&["event-wait", &name, "3000"]))
        .collect();
    for w in &waiters {
        assert_eq!(w.line(), "waiting");
    }
    e.notify_one();
    e.notify_one();
    let mut results: Vec<String> = waiters.iter().map(|w| w.line()).collect();
    results.sort();
    assert_eq!(results, ["notified", "notified", "timeout"]);
    drop(waiters);

    // A pulse wakes every waiter present. A waiter that prints "waiting" has
    // not necessarily begun its wait yet, so pulse until all have woken.
    let waiters: Vec<Helper> = (0..3)
        .map(|_| Helper::spawn(&["event-wait", &name, "60000"]))
        .collect();
    for w in &waiters {
        assert_eq!(w.line(), "waiting");
    }
    let mut woken = 0;
    let end = std::time::Instant::now() + filemap_testkit::DEADLINE;
    while woken < 3 {
        assert!(std::time::Instant::now() < end, "not all waiters woke");
        e.notify_all();
        for w in &waiters {
            if let Some(l) = w.line_within(Duration::from_millis(5)) {
                assert_eq!(l, "notified");
                woken += 1;
            }
        }
    }
    // A pulse leaves nothing behind: a later wait times out.
    assert!(matches!(
        e.wait_timeout(Duration::from_millis(20)),
        Err(Error::Timeout { .. })
    ));
}

#[test]
fn robust_mutex_excludes_across_processes_and_reports_a_dead_holder() {
    use filemap::sync::Mutex;
    let name = unique("mutex");
    let m = Mutex::<[u64; 8]>::create(&name, &[0; 8]).unwrap();
    // Four processes each add 1 to every word 5000 times under the lock.
    let n = if cfg!(windows) { 500 } else { 5000 };
    let adders: Vec<Helper> = (0..4)
        .map(|_| Helper::spawn(&["mutex-add", &name, &n.to_string()]))
        .collect();
    for a in &adders {
        assert_eq!(a.line(), "ready");
    }
    for a in &adders {
        assert_eq!(a.line(), "done");
    }
    assert_eq!(
        m.lock().unwrap().get(),
        [4 * n; 8],
        "no update lost or torn"
    );
    drop(adders);

    // A holder killed while holding the lock: the next locker gets it, learns
    // the owner died, and sees what it left.
    let h = Helper::spawn(&["mutex-hold", &name]);
    assert_eq!(h.line(), "locked");
    assert!(m.try_lock().unwrap().is_none(), "held by a live process");
    assert!(matches!(
        m.lock_timeout(Duration::from_millis(30)),
        Err(Error::Timeout { .. })
    ));
    let t = std::time::Instant::now();
    assert!(matches!(
        m.lock_deadline(t + Duration::from_millis(30)),
        Err(Error::Timeout { .. })
    ));
    assert!(
        t.elapsed() >= Duration::from_millis(30),
        "waited to the deadline"
    );
    h.kill();
    let mut g = m.lock_timeout(Duration::from_secs(60)).unwrap();
    assert!(g.previous_owner_died());
    assert_eq!(g.get(), [7; 8]);
    g.set(&[0; 8]);
    drop(g);
    let g = m.lock().unwrap();
    assert!(!g.previous_owner_died(), "a clean unlock reports nothing");
    // Locking again from this process while it holds the lock would never return.
    assert!(matches!(m.lock(), Err(Error::Busy { .. })));
}

#[test]
fn broadcast_reaches_every_receiver_and_a_lagging_one_learns_what_it_missed() {
    use filemap::channel::broadcast::{Receiver as BRx, Sender as BTx};
    use filemap_testkit::{message_fill, message_len};
    let name = unique("bcast");
    let mut tx = BTx::create(&name, 1 << 12, 200).unwrap();
    // A receiver in this process that reads nothing until the end: it falls behind.
    let mut slow = BRx::open(&name).unwrap();
    let count: u64 = if cfg!(windows) { 20_000 } else { 200_000 };
    let receivers: Vec<Helper> = (0..3)
        .map(|_| Helper::spawn(&["bcast-recv", &name, &count.to_string(), "200"]))
        .collect();
    for r in &receivers {
        assert_eq!(r.line(), "ready");
    }
    let mut buf = [0u8; 200];
    for n in 0..count {
        let m = &mut buf[..message_len(n, 200)];
        message_fill(n, m);
        tx.send(m).unwrap();
    }
    for r in &receivers {
        let line = r.line();
        // Every message is accounted for; each received one was whole and in order.
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!((parts[0], parts[2]), ("received", "missed"), "{line}");
        let (got, missed): (u64, u64) = (parts[1].parse().unwrap(), parts[3].parse().unwrap());
        assert_eq!(got + missed, count, "{line}");
        assert!(got > 0, "{line}");
    }
    // The slow receiver: only the last ring's worth is left, the rest is missed.
    let first = slow.try_recv().unwrap().expect("a message");
    assert_eq!(first.missed, count - (1 << 12));
    message_check(count - (1 << 12), 200, &first.data).unwrap();
    for _ in 1..(1 << 12) {
        assert_eq!(
            slow.try_recv()
                .unwrap()
                .expect("the rest of the ring")
                .missed,
            0
        );
    }
    // The sender closes: once drained, the receiver learns it.
    drop(tx);
    assert!(
        matches!(slow.try_recv(), Err(Error::PeerGone { reason, .. }) if reason.contains("closed"))
    );
}

#[test]
fn broadcast_sender_killed_mid_stream_never_delivers_a_torn_message() {
    use filemap::channel::broadcast::{Receiver as BRx, Sender as BTx};
    for kill_after in [10u64, 5_000] {
        let name = unique("bcast-kill");
        let sender = Helper::spawn(&["bcast-send", &name, "0", "create=64,500"]);
        assert_eq!(sender.line(), "ready");
        let mut rx = BRx::open(&name).unwrap();
        // Every message received is whole (its bytes are those of its number),
        // in order, and any gap is reported as missed.
        let mut received = 0u64;
        let mut next: Option<u64> = None;
        let err = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(r) => {
                    if let Some(want) = next {
                        assert_eq!(r.seq, want + r.missed, "numbered in order, gaps reported");
                    }
                    message_check(r.seq, 500, &r.data).unwrap_or_else(|e| panic!("{e}"));
                    next = Some(r.seq + 1);
                    received += 1;
                    if received == kill_after {
                        // Not reaped until the end: a zombie must count as dead.
                        sender.kill_in_place();
                    }
                }
                Err(e) => break e,
            }
        };
        assert!(received >= kill_after);
        assert!(
            matches!(&err, Error::PeerGone { reason, .. } if reason.contains("died")),
            "{err:?}"
        );
        // A new sender takes over; the receiver gets what it sends next.
        let mut tx2 = BTx::open(&name).unwrap();
        tx2.send(b"again").unwrap();
        let last = loop {
            let r = rx.recv_timeout(Duration::from_secs(60)).unwrap();
            if r.data == b"again" {
                break r;
            }
            // At most the one message the dead sender finished but never counted.
            message_check(r.seq, 500, &r.data).unwrap_or_else(|e| panic!("{e}"));
        };
        assert!(last.seq >= next.unwrap_or(0));
        drop(sender);
    }
}

/// Parses an `mpmc-recv` report into (sender id, count, sum of sequence numbers).
fn mpmc_report(line: &str) -> Vec<(u32, u64, u64)> {
    let rest = line.strip_prefix("got").unwrap_or_else(|| panic!("{line}"));
    rest.split_whitespace()
        .map(|p| {
            let v: Vec<u64> = p.split(':').map(|x| x.parse().unwrap()).collect();
            (v[0] as u32, v[1], v[2])
        })
        .collect()
}

fn mpmc_totals(receivers: &[Helper]) -> std::collections::BTreeMap<u32, (u64, u64)> {
    let mut total = std::collections::BTreeMap::new();
    for r in receivers {
        for (id, n, sum) in mpmc_report(&r.line()) {
            let e: &mut (u64, u64) = total.entry(id).or_default();
            *e = (e.0 + n, e.1 + sum);
        }
    }
    total
}

#[test]
fn mpmc_four_senders_four_receivers_lose_nothing_and_duplicate_nothing() {
    use filemap::channel::mpmc::Sender;
    let name = unique("mpmc");
    let ch = Sender::create(&name, 1024, 128).unwrap();
    let per_sender: u64 = if cfg!(windows) { 5_000 } else { 250_000 };
    let receivers: Vec<Helper> = (0..4)
        .map(|_| Helper::spawn(&["mpmc-recv", &name]))
        .collect();
    let senders: Vec<Helper> = (0..4u32)
        .map(|id| Helper::spawn(&["mpmc-send", &name, &id.to_string(), &per_sender.to_string()]))
        .collect();
    for h in receivers.iter().chain(&senders) {
        assert_eq!(h.line(), "ready");
    }
    for s in &senders {
        assert_eq!(s.line(), format!("sent {per_sender}"));
    }
    for _ in &receivers {
        ch.send(b"").unwrap(); // one stop message each
    }
    let total = mpmc_totals(&receivers);
    for id in 0..4u32 {
        // Every message exactly once: the count, and the sum of 0..n.
        assert_eq!(
            total.get(&id),
            Some(&(per_sender, per_sender * (per_sender - 1) / 2)),
            "sender {id}"
        );
    }
}

#[test]
fn mpmc_survives_a_sender_and_a_receiver_killed_mid_stream() {
    use filemap::channel::mpmc::Sender;
    let name = unique("mpmc-kill");
    let ch = Sender::create(&name, 64, 64).unwrap();
    let per_sender: u64 = if cfg!(windows) { 2_000 } else { 50_000 };
    // A receiver that will be killed, and two that stay.
    let doomed_rx = Helper::spawn(&["mpmc-recv", &name]);
    let receivers: Vec<Helper> = (0..2)
        .map(|_| Helper::spawn(&["mpmc-recv", &name]))
        .collect();
    let doomed_tx = Helper::spawn(&["mpmc-send", &name, "9", "0"]); // sends for ever
    let senders: Vec<Helper> = (0..2u32)
        .map(|id| Helper::spawn(&["mpmc-send", &name, &id.to_string(), &per_sender.to_string()]))
        .collect();
    for h in receivers
        .iter()
        .chain(&senders)
        .chain([&doomed_rx, &doomed_tx])
    {
        assert_eq!(h.line(), "ready");
    }
    doomed_rx.kill_in_place();
    doomed_tx.kill_in_place();
    for s in &senders {
        assert_eq!(
            s.line(),
            format!("sent {per_sender}"),
            "the others are not stuck"
        );
    }
    for _ in &receivers {
        ch.send_timeout(b"", Duration::from_secs(60)).unwrap();
    }
    // The survivors finished (above: nothing stalled on the dead processes'
    // slots). What the killed receiver took is gone with it; the rest arrived
    // once each, whole and in order (the receivers check that), so no sender
    // is over-counted.
    let total = mpmc_totals(&receivers);
    for id in 0..2u32 {
        let (n, _) = total.get(&id).copied().unwrap_or_default();
        assert!(
            n <= per_sender,
            "sender {id}: {n} messages, more than it sent"
        );
    }
    drop((doomed_rx, doomed_tx));
}

// The mpmc layout (channel/mpmc/queue.rs): enq at 128, deq at 192, 32 lanes
// of a line each from 384 (owner, send intent, receive intent: position + 1),
// slots from 2432; a slot of 8 bytes is 32: sequence, claimer, length, bytes.
const MPMC_ENQ: usize = 128;
const MPMC_DEQ: usize = 192;
const MPMC_LANES: usize = 384;
const MPMC_SLOTS: usize = 2432;
const MPMC_STRIDE: usize = 32;

/// Writes the word `v` at `off` in the mapping `name`.
fn poke_word(name: &str, off: usize, v: u64) {
    let m = Mapping::open(name, filemap::Access::ReadWrite).unwrap();
    m.view(.., ViewAccess::ReadWrite)
        .unwrap()
        .write_at(off, &v.to_ne_bytes())
        .unwrap();
}

/// Reads the word at `off` in the mapping `name`.
fn peek_word(name: &str, off: usize) -> u64 {
    let m = Mapping::open(name, filemap::Access::Read).unwrap();
    let mut b = [0u8; 8];
    m.view(.., ViewAccess::Read)
        .unwrap()
        .read_at(off, &mut b)
        .unwrap();
    u64::from_ne_bytes(b)
}

/// The owner word of a process that no longer runs.
fn gone_owner() -> u64 {
    let mut h = Helper::spawn(&["open", "no-such-mapping-for-this-test", "r"]);
    let pid = u64::from(h.pid());
    h.wait();
    pid
}

/// Positions a dead process took and did not finish, recorded in a slot's
/// claim word (`lane` None) or in a lane of its own, are repaired: a sender's
/// skipped, a receiver's freed.
fn mpmc_repairs_dead_claimers(lane: Option<usize>) {
    use filemap::channel::mpmc::{Receiver, Sender};
    let gone = gone_owner();
    // Records `gone` as having taken position `pos` (as a receiver if `recv`).
    let record = |name: &str, pos: u64, recv: bool| match lane {
        None => poke_word(
            name,
            MPMC_SLOTS + (pos as usize % 8) * MPMC_STRIDE + 8,
            gone,
        ),
        Some(l) => {
            poke_word(name, MPMC_LANES + 64 * l, gone);
            poke_word(
                name,
                MPMC_LANES + 64 * l + if recv { 16 } else { 8 },
                pos + 1,
            );
        }
    };

    // A sender took position 1 and died before publishing it.
    let name = unique("mpmc-dead-tx");
    let ch = Sender::create(&name, 8, 8).unwrap();
    let rx = Receiver::open(&name).unwrap();
    assert!(ch.try_send(b"first").unwrap());
    poke_word(&name, MPMC_ENQ, 2);
    record(&name, 1, false);
    assert!(ch.try_send(b"third").unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), b"first");
    // The dead sender's slot is skipped (its half-made message never delivered).
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), b"third");

    // A receiver took position 0 of a full channel and died before freeing it.
    let name = unique("mpmc-dead-rx");
    let ch = Sender::create(&name, 2, 8).unwrap();
    let rx = Receiver::open(&name).unwrap();
    assert!(ch.try_send(b"a").unwrap() && ch.try_send(b"b").unwrap());
    assert!(!ch.try_send(b"c").unwrap(), "full");
    poke_word(&name, MPMC_DEQ, 1);
    record(&name, 0, true);
    // The slot is freed for the sender; the dead receiver's message is lost with it.
    ch.send_timeout(b"c", Duration::from_secs(60)).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), b"b");
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), b"c");
}

#[test]
fn mpmc_retires_slots_left_claimed_by_dead_processes() {
    mpmc_repairs_dead_claimers(None);
}

#[test]
fn mpmc_repairs_positions_a_dead_process_named_in_its_lane() {
    // Lane 31: the handles of the test take lanes 0 and 1.
    mpmc_repairs_dead_claimers(Some(31));
}

/// A live process's lane naming a stuck position keeps it from being
/// repaired (it may be the one working on it); once it is gone, the position
/// is repaired. Lanes of the dead are taken over by handles that find none
/// free, and lanes are given back when handles are dropped.
#[test]
fn mpmc_lanes_are_respected_taken_over_and_given_back() {
    use filemap::channel::mpmc::{Receiver, Sender};
    let name = unique("mpmc-lanes");
    let ch = Sender::create(&name, 8, 8).unwrap();
    let rx = Receiver::open(&name).unwrap();
    let me_lane = |n: &str| {
        (0..32)
            .filter(|l| peek_word(n, MPMC_LANES + 64 * l) != 0)
            .count()
    };
    assert_eq!(me_lane(&name), 2, "each handle holds a lane");

    // A live helper process is recorded as having taken position 0 to send.
    let live = Helper::spawn(&["open", &name, "r"]);
    assert!(live.line().starts_with("ok opened"));
    poke_word(&name, MPMC_ENQ, 1);
    poke_word(&name, MPMC_LANES + 64 * 30, u64::from(live.pid()));
    poke_word(&name, MPMC_LANES + 64 * 30 + 8, 1);
    assert!(ch.try_send(b"after").unwrap());
    // Nothing arrives while it runs: its message may still come.
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(100)),
        Err(Error::Timeout { .. })
    ));
    live.kill();
    // Then its position is retired and the next message arrives.
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), b"after");

    // Every free lane taken by dead owners: a new handle takes one over
    // (once what it names is repaired) and works.
    let gone = gone_owner();
    for l in 0..32 {
        if peek_word(&name, MPMC_LANES + 64 * l) == 0 || l == 30 {
            poke_word(&name, MPMC_LANES + 64 * l, gone);
        }
    }
    let tx2 = Sender::open(&name).unwrap();
    let dead = |n: &str| {
        (0..32)
            .filter(|l| peek_word(n, MPMC_LANES + 64 * l) == gone)
            .count()
    };
    assert_eq!(dead(&name), 29, "one dead lane taken over");
    assert!(tx2.try_send(b"x").unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), b"x");

    // Every lane held by a live process: handles claim through the claim
    // words, and messages flow all the same.
    let me = u64::from(std::process::id());
    for l in 0..32 {
        if peek_word(&name, MPMC_LANES + 64 * l) == gone {
            poke_word(&name, MPMC_LANES + 64 * l, me);
        }
    }
    let tx3 = Sender::open(&name).unwrap();
    let rx3 = Receiver::open(&name).unwrap();
    for i in 0..20u8 {
        assert!(tx3.try_send(&[i]).unwrap());
        assert_eq!(rx3.recv_timeout(Duration::from_secs(60)).unwrap(), [i]);
    }
    // Dropped handles give their lanes back.
    let held = me_lane(&name);
    drop((tx2, ch));
    assert_eq!(me_lane(&name), held - 2);
}

/// Senders and receivers killed at arbitrary points, round after round, never
/// stall the queue: after each round a message from this process still goes
/// through. (A process killed between taking a position and recording
/// itself, which under load means while descheduled there, used to leave a
/// slot naming the slot's previous user, often alive, and the queue stalled
/// for good; now the claim word is taken first.)
#[test]
fn mpmc_keeps_flowing_while_senders_and_receivers_are_killed() {
    use filemap::channel::mpmc::{Receiver, Sender};
    let name = unique("mpmc-chaos");
    let tx = Sender::create(&name, 8, 64).unwrap();
    let rx = Receiver::open(&name).unwrap();
    let rounds = if cfg!(windows) { 5 } else { 40 };
    for round in 0..rounds {
        let s = Helper::spawn(&["mpmc-send", &name, "7", "0"]); // sends for ever
        let r = Helper::spawn(&["mpmc-recv", &name]); // receives for ever
        assert_eq!(s.line(), "ready");
        assert_eq!(r.line(), "ready");
        // Race them for a while, then kill both wherever they are.
        for _ in 0..20 {
            let _ = rx.recv_timeout(Duration::from_millis(100));
        }
        s.kill();
        r.kill();
        // The queue still flows both ways: this process's marker goes in
        // (once the killed sender's messages, which may fill the queue, are
        // drained) and comes out, past whatever the dead processes left.
        let marker = format!("marker {round}");
        let end = std::time::Instant::now() + Duration::from_secs(20);
        let mut sent = false;
        loop {
            if !sent {
                sent = tx.try_send(marker.as_bytes()).unwrap();
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(m) if m == marker.as_bytes() => break,
                Ok(_) | Err(Error::Timeout { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
            assert!(
                std::time::Instant::now() < end,
                "round {round}: the queue stalled (marker sent: {sent})"
            );
        }
    }
}
