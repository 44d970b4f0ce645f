//! A third process that can write a segment writes garbage into it, at
//! random offsets and all the time, while two honest processes use it: no
//! honest process may crash, panic, or outlive a call's timeout by more than
//! a parking slice (plus what a shared two-CPU machine adds to scheduling).
//! Errors (`Corrupt`, `Timeout`, `PeerGone`, `Busy`) are what the honest
//! processes should see. CI runs this in the debug profile (overflow checks
//! on) and in release.

use std::time::Duration;

use filemap_testkit::{unique, Helper};

/// How long the scribbler scribbles.
const MILLIS: u64 = 1500;

/// The most a call may outlive its 20 ms timeout: a 10 ms parking slice, and
/// the rest for a machine with two CPUs shared by four processes. (Before
/// the hardening, calls hung for ever or took 2 s.)
const WORST_OVER: Duration = Duration::from_millis(400);

fn attack(kind: &str, seed: u64) {
    let name = unique(&format!("hostile-{kind}"));
    let millis = MILLIS.to_string();
    let mut a = Helper::spawn(&["hostile", kind, "a", &name, &millis]);
    assert_eq!(a.line(), "ready", "{kind}: the creator");
    let mut b = Helper::spawn(&["hostile", kind, "b", &name, &millis]);
    assert_eq!(b.line(), "ready", "{kind}: the opener");
    let s = Helper::spawn(&["scribble", &name, &millis, &seed.to_string()]);
    a.send("go");
    b.send("go");
    for (who, h) in [("creator", &mut a), ("opener", &mut b)] {
        let line = h.line();
        // Shown with --nocapture: how close the worst call came to the bound.
        eprintln!("{kind} {who}: {line}");
        let over: u64 = line
            .strip_prefix("ok ")
            .and_then(|rest| rest.split("worst_over_us=").nth(1))
            .and_then(|us| us.trim().parse().ok())
            .unwrap_or_else(|| panic!("{kind} {who}: {line}"));
        assert!(
            Duration::from_micros(over) <= WORST_OVER,
            "{kind} {who}: a call outlived its timeout by {over} us ({line})"
        );
        assert!(h.wait().success(), "{kind} {who} exited with an error");
    }
    let done = s.line();
    assert!(done.starts_with("scribbled "), "{kind}: {done}");
}

#[test]
fn spsc_survives_a_scribbler() {
    attack("spsc", 0x5eed_0001);
}

#[test]
fn mpmc_survives_a_scribbler() {
    attack("mpmc", 0x5eed_0002);
}

#[test]
fn broadcast_survives_a_scribbler() {
    attack("broadcast", 0x5eed_0003);
}

#[test]
fn latest_survives_a_scribbler() {
    attack("latest", 0x5eed_0004);
}

#[test]
fn mutex_survives_a_scribbler() {
    attack("mutex", 0x5eed_0005);
}

#[test]
fn event_survives_a_scribbler() {
    attack("event", 0x5eed_0006);
}

// The specific attacks that broke filemap before: each value written by
// another process (an `fm-helper` holding the object open read-write).

use std::time::Instant;

use filemap::channel::{broadcast, mpmc, spsc};
use filemap::sync::{LatestReader, LatestWriter};
use filemap::Error;
use filemap_testkit::hex;

/// Another process that writes `value` as a native-endian u64 at `off` of `name`.
fn poke(name: &str, off: u64, value: u64) {
    poke_many(name, &[(off, value)]);
}

/// `f` returns (Ok or an error) within `limit`; gives what it returned.
/// It runs on a thread of its own, so that a regression that spins for ever
/// fails the test (after `limit` and a grace period) instead of hanging it.
fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let r = f();
        let _ = tx.send((r, t.elapsed()));
    });
    let (r, took) = rx
        .recv_timeout(limit + Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: still running after {limit:?} and 10 s more"));
    assert!(took <= limit, "{what}: took {took:?}, more than {limit:?}");
    r
}

const SHORT: Duration = Duration::from_millis(100);

#[test]
fn mpmc_sequence_words_out_of_step_are_errors_not_spins() {
    // Layout (channel/mpmc/queue.rs): slots from 2432 (after 32 lanes of a
    // line each, from 384); slot 0's sequence word first.
    const SLOT0_SEQ: u64 = 2432;
    let name = unique("hostile-mpmc-seq");
    let tx = std::sync::Arc::new(mpmc::Sender::create(&name, 4, 8).unwrap());
    let rx = std::sync::Arc::new(mpmc::Receiver::open(&name).unwrap());
    // Idle queue, slot 0 says "sent into, lap 1": both claim loops used to
    // spin for ever at 100 % CPU.
    poke(&name, SLOT0_SEQ, 5);
    let r = within("try_recv", SHORT, {
        let rx = rx.clone();
        move || rx.try_recv()
    });
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    let r = within("try_send", SHORT, {
        let tx = tx.clone();
        move || tx.try_send(b"x")
    });
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    // Slot 0 says "full" while the indices say there is room: a timed send
    // used to spin past its deadline for ever.
    poke(&name, SLOT0_SEQ, u64::MAX);
    let r = within("send_timeout", SHORT + WORST_OVER, {
        let tx = tx.clone();
        move || tx.send_timeout(b"x", SHORT)
    });
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let r = within("recv_timeout", SHORT + WORST_OVER, move || {
        rx.recv_timeout(SHORT)
    });
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn a_latest_sequence_near_the_end_of_u64_is_corrupt_not_a_hang() {
    const SEQ: u64 = 128;
    let name = unique("hostile-latest");
    let _w = LatestWriter::<u64>::create(&name, &7).unwrap();
    let r = LatestReader::<u64>::open(&name).unwrap();
    assert_eq!(r.read().unwrap(), 7);
    // Used to retry for ever in release and overflow in debug.
    poke(&name, SEQ, u64::MAX - 1);
    let got = within("read", SHORT, move || r.read());
    assert!(matches!(got, Err(Error::Corrupt { .. })), "{got:?}");
}

#[test]
fn an_spsc_padding_record_over_a_whole_lap_is_corrupt() {
    // Layout (channel/spsc.rs): the ring from 448; a record header is
    // length | stamp << 32 | padding bit; lap 0's stamp is 1.
    const DATA: u64 = 448;
    let name = unique("hostile-spsc-pad");
    let _tx = spsc::Sender::create(&name, 4096).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    let pad = (4096 - 8) | (1 << 32) | (1 << 63);
    poke(&name, DATA, pad);
    let r = within("recv_timeout", SHORT + WORST_OVER, move || {
        rx.recv_timeout(SHORT).map(|m| m.len())
    });
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
}

#[test]
fn a_broadcast_tail_ahead_of_its_slots_is_reported_within_the_timeout() {
    // Layout (channel/broadcast.rs): the message count at 128.
    const TAIL: u64 = 128;
    let name = unique("hostile-bcast-tail");
    let _tx = broadcast::Sender::create(&name, 4, 8).unwrap();
    let mut rx = broadcast::Receiver::open(&name).unwrap();
    poke(&name, TAIL, 3);
    // Used to take 2 s whatever the timeout.
    let r = within("recv_timeout", SHORT + WORST_OVER, move || {
        rx.recv_timeout(SHORT)
    });
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
}

/// Another process that writes each `(offset, value)` of `words` (as
/// native-endian u64s) in `name`.
fn poke_many(name: &str, words: &[(u64, u64)]) {
    let mut h = Helper::spawn(&["open", name, "rw"]);
    assert!(h.line().starts_with("ok opened"));
    for (off, value) in words {
        assert_eq!(
            h.ask(&format!("write {off} {}", hex(&value.to_ne_bytes()))),
            "ok"
        );
    }
    h.exit();
}

#[test]
fn mpmc_lanes_full_of_garbage_cost_the_fast_path_only() {
    // Layout (channel/mpmc/queue.rs): enq at 128; 32 lanes of a line each
    // from 384: owner, send intent, receive intent (position + 1), kind.
    const ENQ: u64 = 128;
    const LANES: u64 = 384;
    let name = unique("hostile-mpmc-lanes");
    let tx = std::sync::Arc::new(mpmc::Sender::create(&name, 4, 8).unwrap());
    let rx = std::sync::Arc::new(mpmc::Receiver::open(&name).unwrap());
    // Every lane: owners that run (this process), that never ran, or are
    // nonsense; intents naming positions near and far, and u64::MAX.
    let me = u64::from(std::process::id());
    let owners = [me, u64::MAX, 1, 0x7fff_ffff, me | (12345 << 32)];
    let intents = [u64::MAX, 1, 2, 1 << 40, 0];
    let mut words = Vec::new();
    for l in 0..32u64 {
        let at = LANES + 64 * l;
        words.push((at, owners[l as usize % owners.len()]));
        words.push((at + 8, intents[l as usize % intents.len()]));
        words.push((at + 16, intents[(l as usize + 2) % intents.len()]));
        words.push((at + 24, l.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    }
    poke_many(&name, &words);
    // Handles opened now find no free lane, or take over one of a process
    // that never ran: either way they work, at once.
    let tx2 = within("open a sender", SHORT, {
        let name = name.clone();
        move || mpmc::Sender::open(&name).unwrap()
    });
    let rx2 = within("open a receiver", SHORT, {
        let name = name.clone();
        move || mpmc::Receiver::open(&name).unwrap()
    });
    for i in 0..50u8 {
        let (a, b) = if i % 2 == 0 {
            (&*tx, &rx2)
        } else {
            (&tx2, &*rx)
        };
        assert!(a.try_send(&[i]).unwrap());
        assert_eq!(b.recv_timeout(SHORT).unwrap(), [i]);
    }
    // A position taken by nobody (enq moved on by hand) and named by a lane
    // of a live process (this one) is never repaired: receives wait, and
    // their deadline holds.
    assert!(tx.try_send(b"x").unwrap());
    assert_eq!(rx.try_recv().unwrap().as_deref(), Some(&b"x"[..]));
    // 51 messages went through: position 51 is next.
    poke_many(&name, &[(ENQ, 52), (LANES + 8, 52)]);
    let r = within("recv_timeout", SHORT + WORST_OVER, {
        let rx = rx.clone();
        move || rx.recv_timeout(SHORT)
    });
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let r = within("try_recv", SHORT, move || rx.try_recv());
    assert!(matches!(r, Ok(None)), "{r:?}");
    drop((tx2, rx2));
}
