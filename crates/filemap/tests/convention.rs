//! The one blocking convention, on every type that waits: `try_x` never
//! waits, `x` waits as long as it takes, `x_timeout(Duration)` and
//! `x_deadline(Instant)` give up with `Error::Timeout` naming the object;
//! and `create`, `create_with`, `open`, `open_with` on every named type.
//! (What the waiting looks like across processes is in filemap-testkit's
//! tests; here each form's contract.)

use std::time::{Duration, Instant};

use filemap::channel::{broadcast, mpmc, spsc};
use filemap::sync::{Event, LatestReader, LatestWriter, Mutex};
use filemap::{Error, Options};

fn name(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "fm-conv-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

const SHORT: Duration = Duration::from_millis(30);

/// `f` gives `Error::Timeout` naming `object`, after about `SHORT` (not
/// before it, and not much after: a generous bound for a loaded machine).
fn times_out<T: std::fmt::Debug>(object: &str, f: impl FnOnce() -> filemap::Result<T>) {
    let t = Instant::now();
    match f() {
        Err(Error::Timeout { object: o, .. }) => assert_eq!(o, object),
        other => panic!("{object}: expected a timeout, got {other:?}"),
    }
    let took = t.elapsed();
    assert!(took >= SHORT, "{object}: gave up early, after {took:?}");
    assert!(took < Duration::from_secs(10), "{object}: took {took:?}");
}

/// A deadline already past gives `Error::Timeout` at once.
fn past_deadline_times_out<T: std::fmt::Debug>(
    object: &str,
    f: impl FnOnce() -> filemap::Result<T>,
) {
    let t = Instant::now();
    assert!(
        matches!(f(), Err(Error::Timeout { .. })),
        "{object}: a past deadline"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn spsc_try_timeout_and_deadline_forms() {
    let n = name("spsc");
    let mut tx = spsc::Sender::create(&n, 64).unwrap();
    let mut rx = spsc::Receiver::open(&n).unwrap();
    assert!(rx.try_recv().unwrap().is_none(), "try_recv never waits");
    times_out(&n, || rx.recv_timeout(SHORT).map(|m| m.len()));
    times_out(&n, || {
        rx.recv_deadline(Instant::now() + SHORT).map(|m| m.len())
    });
    past_deadline_times_out(&n, || rx.recv_deadline(Instant::now()).map(|m| m.len()));
    // Fill the ring: the sender's forms time out the same way.
    while tx.try_send(&[7; 8]).unwrap() {}
    assert!(
        tx.try_reserve(8).unwrap().is_none(),
        "try_reserve never waits"
    );
    times_out(&n, || tx.send_timeout(&[7; 8], SHORT));
    times_out(&n, || tx.send_deadline(&[7; 8], Instant::now() + SHORT));
    times_out(&n, || tx.reserve_timeout(8, SHORT).map(|r| r.len()));
    times_out(&n, || {
        tx.reserve_deadline(8, Instant::now() + SHORT)
            .map(|r| r.len())
    });
    // A timeout too large for the clock means no limit, not a panic.
    assert_eq!(rx.recv_timeout(Duration::MAX).unwrap().to_vec(), [7; 8]);
    tx.send_timeout(&[1; 8], Duration::MAX).unwrap();
    assert_eq!(rx.recv().unwrap().len(), 8);
}

#[test]
fn spsc_receiver_can_create_and_both_ends_open_with_options() {
    let n = name("spsc-rx");
    let opts = Options::new().ready_timeout(Duration::from_millis(500));
    let mut rx = spsc::Receiver::create_with(&n, 64, &opts).unwrap();
    let mut tx = spsc::Sender::open_with(&n, &opts).unwrap();
    tx.send(b"hi").unwrap();
    assert_eq!(rx.recv().unwrap().to_vec(), b"hi");
    drop((tx, rx));
    let n = name("spsc-tx");
    let _tx = spsc::Sender::create_with(&n, 64, &opts).unwrap();
    let _rx = spsc::Receiver::open_with(&n, &opts).unwrap();
}

#[test]
fn mpmc_try_timeout_and_deadline_forms() {
    let n = name("mpmc");
    let opts = Options::new();
    let rx = mpmc::Receiver::create_with(&n, 2, 8, &opts).unwrap();
    let tx = mpmc::Sender::open_with(&n, &opts).unwrap();
    let mut buf = Vec::new();
    assert_eq!(rx.try_recv().unwrap(), None);
    assert!(!rx.try_recv_into(&mut buf).unwrap());
    times_out(&n, || rx.recv_timeout(SHORT));
    times_out(&n, || rx.recv_deadline(Instant::now() + SHORT));
    times_out(&n, || rx.recv_into_timeout(&mut buf, SHORT));
    times_out(&n, || {
        rx.recv_into_deadline(&mut buf, Instant::now() + SHORT)
    });
    past_deadline_times_out(&n, || rx.recv_deadline(Instant::now()));
    assert!(tx.try_send(b"a").unwrap() && tx.try_send(b"b").unwrap());
    assert!(!tx.try_send(b"c").unwrap(), "full: try_send never waits");
    times_out(&n, || tx.send_timeout(b"c", SHORT));
    times_out(&n, || tx.send_deadline(b"c", Instant::now() + SHORT));
    assert_eq!(rx.recv().unwrap(), b"a");
    rx.recv_into(&mut buf).unwrap();
    assert_eq!(buf, b"b");
    tx.send(b"c").unwrap();
    assert_eq!(rx.recv_timeout(Duration::MAX).unwrap(), b"c");
    // The other creator and opener.
    let n = name("mpmc2");
    let tx = mpmc::Sender::create(&n, 2, 8).unwrap();
    let rx = mpmc::Receiver::open(&n).unwrap();
    tx.send(b"x").unwrap();
    assert_eq!(rx.recv().unwrap(), b"x");
}

#[test]
fn broadcast_try_timeout_and_deadline_forms() {
    let n = name("bcast");
    let opts = Options::new();
    // A receiver may create the channel; the sender opens it.
    let mut rx = broadcast::Receiver::create_with(&n, 4, 8, &opts).unwrap();
    let mut tx = broadcast::Sender::open_with(&n, &opts).unwrap();
    let mut got = broadcast::Received::default();
    assert!(rx.try_recv().unwrap().is_none());
    assert!(!rx.try_recv_into(&mut got).unwrap());
    times_out(&n, || rx.recv_timeout(SHORT));
    times_out(&n, || rx.recv_deadline(Instant::now() + SHORT));
    times_out(&n, || rx.recv_into_timeout(&mut got, SHORT));
    times_out(&n, || {
        rx.recv_into_deadline(&mut got, Instant::now() + SHORT)
    });
    past_deadline_times_out(&n, || rx.recv_deadline(Instant::now()));
    tx.send(b"one").unwrap();
    assert_eq!(rx.recv().unwrap().data, b"one");
    tx.send(b"two").unwrap();
    rx.recv_into(&mut got).unwrap();
    assert_eq!(got.data, b"two");
    let mut rx2 = broadcast::Receiver::open(&n).unwrap();
    tx.send(b"three").unwrap();
    assert_eq!(rx2.recv_timeout(Duration::MAX).unwrap().data, b"three");
}

#[test]
fn event_try_timeout_and_deadline_forms() {
    let n = name("event");
    let opts = Options::new();
    let e = Event::create_with(&n, &opts).unwrap();
    let other = Event::open_with(&n, &opts).unwrap();
    assert!(
        !other.try_wait().unwrap(),
        "no permit: try_wait never waits"
    );
    times_out(&n, || other.wait_timeout(SHORT));
    times_out(&n, || other.wait_deadline(Instant::now() + SHORT));
    past_deadline_times_out(&n, || other.wait_deadline(Instant::now()));
    e.notify_one();
    assert!(other.try_wait().unwrap(), "try_wait takes the permit");
    assert!(!other.try_wait().unwrap(), "and only one");
    e.notify_one();
    other.wait().unwrap();
    e.notify_one();
    other.wait_timeout(Duration::MAX).unwrap();
}

#[test]
fn mutex_try_timeout_and_deadline_forms() {
    let n = name("mutex");
    let opts = Options::new();
    let m = Mutex::<u64>::create_with(&n, &5, &opts).unwrap();
    let other = Mutex::<u64>::open_with(&n, &opts).unwrap();
    let mut g = m.try_lock().unwrap().expect("free");
    g.set(&6);
    // Held by this process through `m`: `other` (same process, another
    // handle) sees it taken.
    assert!(other.try_lock().unwrap().is_none(), "try_lock never waits");
    drop(g);
    let g = other.lock_deadline(Instant::now() + SHORT).unwrap();
    assert_eq!(g.get(), 6);
    drop(g);
    assert_eq!(m.lock_timeout(Duration::MAX).unwrap().get(), 6);
}

#[test]
fn latest_both_ends_create_and_open_with_options() {
    let n = name("latest");
    let opts = Options::new();
    // A reader may create the cell; the writer opens it later.
    let r = LatestReader::<u64>::create_with(&n, &1, &opts).unwrap();
    let mut w = LatestWriter::<u64>::open_with(&n, &opts).unwrap();
    assert_eq!(r.read().unwrap(), 1);
    w.write(&2);
    assert_eq!(
        LatestReader::<u64>::open_with(&n, &opts)
            .unwrap()
            .read()
            .unwrap(),
        2
    );
    let n = name("latest2");
    let _w = LatestWriter::<u64>::create(&n, &3).unwrap();
    assert_eq!(LatestReader::<u64>::open(&n).unwrap().read().unwrap(), 3);
    assert!(matches!(
        LatestWriter::<u64>::open(&n),
        Err(Error::Busy { .. })
    ));
    let n = name("latest3");
    let _r = LatestReader::<u64>::create(&n, &4).unwrap();
    assert!(LatestWriter::<u64>::open(&n).is_ok());
}

#[test]
fn rpc_and_typed_channels_follow_the_convention() {
    use filemap::rpc::{Client, Config, Server};
    let svc = name("rpc");
    let server = Server::create(&svc, &Config::new().request_slots(1)).unwrap();
    let mut client = Client::open(&svc).unwrap();
    assert!(
        server.try_recv_request().unwrap().is_none(),
        "try_ never waits"
    );
    times_out(&svc, || server.recv_request_timeout(SHORT).map(|_| ()));
    times_out(&svc, || {
        server
            .recv_request_deadline(Instant::now() + SHORT)
            .map(|_| ())
    });
    // One slot asked for: an mpmc queue has two at least.
    let id = client.try_call(b"one").unwrap().expect("room");
    client.try_call(b"two").unwrap().expect("room");
    assert!(
        client.try_call(b"three").unwrap().is_none(),
        "the queue is full: None, no wait"
    );
    assert_eq!(client.try_response(id).unwrap(), None);
    times_out(&svc, || client.response_timeout(id, SHORT));
    times_out(&svc, || {
        client.response_deadline(id, Instant::now() + SHORT)
    });
    // Typed channels: the same forms, the same errors.
    let t = name("typed");
    let mut tx = filemap::typed::spsc::Sender::<u64>::create(&t, 4).unwrap();
    let mut rx = filemap::typed::spsc::Receiver::<u64>::open(&t).unwrap();
    assert_eq!(rx.try_recv().unwrap(), None);
    times_out(&t, || rx.recv_timeout(SHORT));
    times_out(&t, || rx.recv_deadline(Instant::now() + SHORT));
    assert!(tx.try_send(&7).unwrap());
    assert_eq!(rx.recv().unwrap(), 7);
}
