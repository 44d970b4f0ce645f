//! async/await on filemap's channels and events, with real processes on
//! the other ends and a real runtime (tokio); run natively on Linux and
//! under Wine.

use std::time::{Duration, Instant};

use filemap::channel::{broadcast, mpmc, spsc};
use filemap::sync::Event;
use filemap::Error;
use filemap_testkit::{message_check, message_fill, message_len, unique, Helper};

const LONG: Duration = Duration::from_secs(30);

fn runtime(multi: bool) -> tokio::runtime::Runtime {
    if multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
    }
    .unwrap()
}

// Ping-pong between two processes, both awaiting filemap's futures, on a
// current-thread and on a multi-thread runtime.
#[test]
fn async_ping_pong_between_two_processes() {
    for (ours, theirs) in [(false, "current"), (true, "multi")] {
        const N: u64 = 2_000;
        let (ping, pong) = (unique("a-ping"), unique("a-pong"));
        let mut tx = spsc::Sender::create(&ping, 4096).unwrap();
        let mut rx = spsc::Receiver::create(&pong, 4096).unwrap();
        let peer = Helper::spawn(&["async-echo", &ping, &pong, &N.to_string(), theirs]);
        assert_eq!(peer.line(), "ready");
        runtime(ours).block_on(async {
            let max = tx.max_message();
            let mut buf = vec![0u8; max];
            for n in 0..N {
                let len = message_len(n, max);
                message_fill(n, &mut buf[..len]);
                tx.send_async(&buf[..len]).await.unwrap();
                let m = tokio::time::timeout(LONG, rx.recv_async())
                    .await
                    .expect("an answer in time")
                    .unwrap();
                message_check(n, max, &m.to_vec()).unwrap();
            }
        });
        assert_eq!(peer.line(), format!("echoed {N}"));
        peer.exit();
    }
}

// Round trips with an idle gap before each: both sides' futures go to
// sleep in the reactor every time, which re-checks their channels only once
// a second on its own (see the next test), so a wake-up lost between a
// sender and a sleeping future would cost a second or more (as filemap's
// old `membarrier` scheme's did, for ever before that re-check: see
// `park::Park::notify`).
// 64 KiB messages, so that the answer comes about when the waiting side's
// spin budget runs out, when the announcement and the answer meet. Each
// answer is awaited with a deadline: a lost wake-up fails the test rather
// than hanging it. (It did not catch the old scheme's race on this VM in
// 44 runs, debug and release, pinned or not; `filemap-bench --only
// async-idle --sizes 64,64K` did, in 4 of 8.)
#[test]
fn async_round_trips_after_idle_gaps_lose_no_wake_up() {
    const N: u64 = 400;
    const SIZE: usize = 64 << 10;
    let (ping, pong) = (unique("a-idle-ping"), unique("a-idle-pong"));
    let mut tx = spsc::Sender::create(&ping, 1 << 20).unwrap();
    let mut rx = spsc::Receiver::create(&pong, 1 << 20).unwrap();
    let peer = Helper::spawn(&["async-echo", &ping, &pong, &N.to_string(), "current"]);
    assert_eq!(peer.line(), "ready");
    let rt = runtime(false);
    let mut buf = vec![0u8; SIZE];
    for n in 0..N {
        // Not synchronisation: the idle time the case is about.
        std::thread::sleep(Duration::from_micros(500));
        message_fill(n, &mut buf);
        rt.block_on(async {
            tx.send_async(&buf).await.unwrap();
            let m = tokio::time::timeout(Duration::from_secs(10), rx.recv_async())
                .await
                .unwrap_or_else(|_| panic!("round trip {n}: no answer in 10 s (a lost wake-up)"))
                .unwrap();
            assert!(m.to_vec() == buf, "round trip {n}: the echo differs");
        });
    }
    assert_eq!(peer.line(), format!("echoed {N}"));
    peer.exit();
}

// A wake-up that never comes. A future of this process, polled by hand with
// no spin budget so that its first poll announces itself and goes to sleep
// in the reactor, then has the channel's `waiting` count zeroed, as any
// process that can write the channel may do; a helper process then makes the
// progress the future waits for, and wakes no one. The reactor's own
// re-check (every `ASYNC_LIVENESS`, one word per future) finds it anyway:
// the future is woken within about a second, not never. For an spsc
// receiver (the header where its next message goes), an spsc sender on a
// full ring (the receiver's index) and a broadcast receiver (the sender's
// index). Deterministic on every platform: the future is asleep before the
// count is zeroed, and the helper starts only after.
#[test]
fn async_waits_whose_wake_up_is_lost_still_end() {
    use filemap::{Access, Mapping, Options, ViewAccess};
    use std::future::Future;
    use std::sync::atomic::Ordering::SeqCst;
    use std::task::{Context, Poll, Waker};
    // The layouts (`channel::spsc::layout`, `channel::broadcast`): the
    // segment header is 128 bytes; after it, the spsc receiver's `waiting`
    // count is at 132, the spsc sender's (waiting for space) at 196, the
    // broadcast receivers' at 68.
    const SPSC_RX_WAITING: usize = 128 + 132;
    const SPSC_TX_WAITING: usize = 128 + 196;
    const BCAST_WAITING: usize = 128 + 68;
    let no_spin = Options::new().async_spin(Duration::ZERO);
    // Zeroes the count at `off` of `name`, which the future polled once has
    // just raised to 1.
    let zero = |name: &str, off: usize| {
        let m = Mapping::open(name, Access::ReadWrite).unwrap();
        let v = m.view(.., ViewAccess::ReadWrite).unwrap();
        assert_eq!(v.atomic_u32(off).unwrap().swap(0, SeqCst), 1, "{name}");
    };
    // Polls `fut` once (it must sleep), zeroes the count, runs the helper
    // (`args`, which must say `ready` and then `done`), and waits up to 10 s
    // for the waker; then polls again, which must end it.
    fn lost_wake_up<F: Future + Unpin>(
        what: &str,
        fut: &mut F,
        zero: impl FnOnce(),
        args: &[&str],
        done: &str,
    ) -> F::Output {
        let flag = std::sync::Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(
            std::pin::Pin::new(&mut *fut).poll(&mut cx).is_pending(),
            "{what}"
        );
        zero();
        let helper = Helper::spawn(args);
        assert_eq!(helper.line(), "ready");
        assert_eq!(helper.line(), done);
        let since = Instant::now();
        assert!(
            flag.wait(Duration::from_secs(10)),
            "{what}: not woken within 10 s of progress whose wake-up was lost"
        );
        eprintln!("{what}: woken after {:?}", since.elapsed());
        helper.exit();
        match std::pin::Pin::new(fut).poll(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => panic!("{what}: woken, yet still pending"),
        }
    }

    // An spsc receiver; the helper sends one message.
    let name = unique("a-lost-rx");
    let mut rx = spsc::Receiver::create_with(&name, 4096, &no_spin).unwrap();
    let got = lost_wake_up(
        "spsc recv_async",
        &mut rx.recv_async(),
        || zero(&name, SPSC_RX_WAITING),
        &["spsc-send", &name, "1"],
        "sent 1",
    )
    .unwrap()
    .to_vec();
    message_check(0, (rx.capacity() / 2 - 8) as usize, &got).unwrap();

    // An spsc sender on a full ring (four 1,000-byte messages fill 4 KiB);
    // the helper receives them, freeing the ring.
    let name = unique("a-lost-tx");
    let mut tx = spsc::Sender::create_with(&name, 4096, &no_spin).unwrap();
    let msg = [7u8; 1000];
    let mut queued = 0;
    while tx.try_send(&msg).unwrap() {
        queued += 1;
    }
    assert_eq!(queued, 4);
    let queued = queued.to_string();
    lost_wake_up(
        "spsc send_async",
        &mut tx.send_async(&msg),
        || zero(&name, SPSC_TX_WAITING),
        &["spsc-drain", &name, &queued],
        &format!("drained {queued}"),
    )
    .unwrap();

    // A broadcast receiver; the helper sends one message.
    let name = unique("a-lost-bcast");
    let mut brx = broadcast::Receiver::create_with(&name, 64, 256, &no_spin).unwrap();
    let got = lost_wake_up(
        "broadcast recv_async",
        &mut brx.recv_async(),
        || zero(&name, BCAST_WAITING),
        &["bcast-send", &name, "1"],
        "sent 1",
    )
    .unwrap();
    assert_eq!(got.seq, 0);
}

// A future asleep on a segment another process shrinks to nothing is woken
// by the reactor's look (every `ASYNC_LIVENESS`) and its next poll says
// `Truncated`, rather than sleeping until a word moves (none will). Linux:
// the object is shrunk through its `/dev/shm` path.
#[cfg(target_os = "linux")]
#[test]
fn an_async_receive_on_a_shrunk_segment_ends_with_truncated() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let name = unique("a-shrunk");
    let opts = filemap::Options::new().async_spin(Duration::ZERO);
    let mut rx = spsc::Receiver::create_with(&name, 4096, &opts).unwrap();
    let flag = std::sync::Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(rx.recv_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let path = format!("/dev/shm/{name}");
    let h = Helper::spawn(&["shrink", &path, "0"]);
    assert_eq!(h.line(), "shrunk");
    assert!(
        flag.wait(Duration::from_secs(10)),
        "not woken within 10 s of its segment being shrunk"
    );
    let outcome = match fut.as_mut().poll(&mut cx) {
        Poll::Ready(r) => r.map(|m| m.len()),
        Poll::Pending => panic!("woken, yet still pending"),
    };
    assert!(
        matches!(outcome, Err(Error::Truncated { .. })),
        "{outcome:?}"
    );
}

/// A waker that raises a flag, and a wait for it with a deadline.
#[derive(Default)]
struct Flag {
    raised: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        *self.raised.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

impl Flag {
    /// Whether the flag was raised within `within`.
    fn wait(&self, within: Duration) -> bool {
        let g = self.raised.lock().unwrap();
        let (g, _) = self.cv.wait_timeout_while(g, within, |r| !*r).unwrap();
        *g
    }
}

// Cancellation: a select! loop with a short timeout branch drops pending
// receive futures again and again; every message still arrives exactly
// once, in order.
#[test]
fn dropping_pending_receives_in_select_loses_no_message() {
    const N: u64 = 300;
    let name = unique("a-cancel");
    let mut rx = spsc::Receiver::create(&name, 4096).unwrap();
    let sender = Helper::spawn(&["spsc-send-paced", &name, &N.to_string(), "300"]);
    assert_eq!(sender.line(), "ready");
    let max = (rx.capacity() / 2 - 8) as usize;
    let (got, timeouts) = runtime(false).block_on(async {
        let (mut got, mut timeouts) = (0u64, 0u64);
        let started = Instant::now();
        while got < N {
            assert!(started.elapsed() < LONG, "stuck at {got}");
            tokio::select! {
                m = rx.recv_async() => {
                    message_check(got, max, &m.unwrap().to_vec()).unwrap();
                    got += 1;
                }
                _ = tokio::time::sleep(Duration::from_micros(100)) => timeouts += 1,
            }
        }
        (got, timeouts)
    });
    assert_eq!(got, N);
    assert!(
        timeouts > 0,
        "the timeout branch never won: nothing was cancelled"
    );
    assert_eq!(sender.line(), format!("sent {N}"));
    sender.exit();
}

// A sender killed while a task awaits: the task gets PeerGone naming the
// process, not a hang.
#[test]
fn a_killed_peer_surfaces_as_peer_gone_in_the_awaiting_task() {
    let name = unique("a-dead");
    let mut rx = spsc::Receiver::create(&name, 4096).unwrap();
    let victim = Helper::spawn(&["spsc-hold", &name]);
    assert_eq!(victim.line(), "holding");
    let pid = victim.pid();
    let rt = runtime(false);
    let started = Instant::now();
    let outcome = rt.block_on(async {
        let waiting = tokio::spawn(async move {
            match rx.recv_async().await {
                Ok(m) => Ok(m.to_vec()),
                Err(e) => Err(e),
            }
        });
        // Let the task start waiting, then kill the sender.
        tokio::time::sleep(Duration::from_millis(50)).await;
        victim.kill();
        tokio::time::timeout(LONG, waiting).await
    });
    match outcome {
        Ok(Ok(Err(Error::PeerGone { object, reason }))) => {
            assert_eq!(object, name);
            assert!(reason.contains(&pid.to_string()), "{reason}");
        }
        other => panic!("expected PeerGone, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

// Events, mpmc and broadcast await too, fed by other processes.
#[test]
fn events_mpmc_and_broadcast_await_other_processes() {
    let ev = unique("a-ev");
    let event = Event::create(&ev).unwrap();
    let mq = unique("a-mpmc");
    let mut mrx = mpmc::Receiver::create(&mq, 16, 64).unwrap();
    let bq = unique("a-bcast");
    let mut brx = broadcast::Receiver::create(&bq, 64, 256).unwrap();
    let rt = runtime(true);
    rt.block_on(async {
        let notifier = Helper::spawn(&["event-notify", &ev, "3"]);
        assert_eq!(notifier.line(), "ready");
        for _ in 0..3 {
            tokio::time::timeout(LONG, event.wait_async())
                .await
                .expect("notified in time")
                .unwrap();
        }
        notifier.exit();

        let sender = Helper::spawn(&["mpmc-send", &mq, "3", "500"]);
        assert_eq!(sender.line(), "ready");
        let mut last = None;
        for i in 0..500u32 {
            // In turn through the future, `poll_recv` (tokio's shape) and
            // the receiver's `Stream` (feature `stream`).
            let m = match i % 3 {
                0 => tokio::time::timeout(LONG, mrx.recv_async()).await,
                1 => tokio::time::timeout(LONG, std::future::poll_fn(|cx| mrx.poll_recv(cx))).await,
                _ => tokio::time::timeout(LONG, next(&mut mrx.stream()))
                    .await
                    .map(|item| item.expect("an mpmc stream does not end")),
            }
            .expect("a message in time")
            .unwrap();
            let seq = u64::from_ne_bytes(m[4..12].try_into().unwrap());
            assert!(last.is_none_or(|l| seq > l));
            last = Some(seq);
        }
        sender.exit();

        let sender = Helper::spawn(&["bcast-send", &bq, "500"]);
        assert_eq!(sender.line(), "ready");
        let mut n = 0u64;
        while n < 500 {
            let r = match n % 3 {
                0 => tokio::time::timeout(LONG, brx.recv_async()).await,
                1 => tokio::time::timeout(LONG, std::future::poll_fn(|cx| brx.poll_recv(cx))).await,
                _ => tokio::time::timeout(LONG, next(&mut brx.stream()))
                    .await
                    .map(|item| item.expect("the sender still runs")),
            }
            .expect("a message in time")
            .unwrap();
            n += r.missed;
            message_check(n, 256, &r.data).unwrap();
            n += 1;
        }
        sender.exit();
        // The sender gone, the broadcast stream ends.
        let end = tokio::time::timeout(LONG, next(&mut brx.stream()))
            .await
            .expect("the end in time");
        assert!(end.is_none(), "{end:?}");
    });
}

/// The next item of a stream (what `StreamExt::next` does).
async fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

// Ten thousand idle receivers, each awaited by its own task, cost a thread
// per 126 of them (and the ticker) and little CPU: the ticker's look, once
// a second, for a dead peer or a lost wake-up, one pass over the futures
// with no thread but the ticker woken. Measured here over the 2 s: 1.7 ms
// in a release build, 5-17 ms in this (debug) one, against 0.1 ms before
// the ticker (when nothing was looked at for receivers with no peer, and a
// lost wake-up was never recovered). Linux only: Wine's accounting of CPU
// time and threads is not the kernel's.
#[cfg(target_os = "linux")]
#[test]
fn ten_thousand_idle_async_receivers_cost_little_cpu_and_few_threads() {
    let h = Helper::spawn(&["async-idle", "10000", "2000"]);
    let line = h.line();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [_, cpu, _, threads, _, pending] = fields[..] else {
        panic!("{line}")
    };
    let (cpu, threads, pending): (u64, u64, u64) = (
        cpu.parse().unwrap(),
        threads.parse().unwrap(),
        pending.parse().unwrap(),
    );
    assert_eq!(pending, 10_000, "every task still waits: {line}");
    assert!(threads <= 10_000 / 126 + 10, "{line}");
    // 2 % of one CPU over the 2 s. Polling each future every tick instead
    // of reading one word for it (1-3 µs a poll) would cost 20-60 ms.
    assert!(cpu < 40_000, "{line}");
    h.exit();
}

// Back-to-back traffic never reaches the reactor: an async receiver that
// finds its channel empty keeps trying (yielding to the runtime) for its
// spin budget before it sleeps on a reactor thread. With a budget longer
// than any answer takes, 1,000 async round trips start no reactor thread;
// with none (`Options::async_spin(ZERO)`), the first wait does.
#[cfg(target_os = "linux")]
#[test]
fn back_to_back_async_traffic_never_reaches_the_reactor() {
    const N: u64 = 1_000;
    for (spin_us, reactor) in [("1000000", false), ("0", true)] {
        let (ping, pong) = (unique("a-spin-ping"), unique("a-spin-pong"));
        let mut tx = spsc::Sender::create(&ping, 4096).unwrap();
        let mut rx = spsc::Receiver::create(&pong, 4096).unwrap();
        let peer = Helper::spawn(&[
            "async-echo",
            &ping,
            &pong,
            &N.to_string(),
            "current",
            spin_us,
        ]);
        assert_eq!(peer.line(), "ready");
        for n in 0..N {
            tx.send(&n.to_le_bytes()).unwrap();
            let m = rx.recv_timeout(LONG).unwrap();
            assert_eq!(m.to_vec(), n.to_le_bytes());
        }
        let line = peer.line();
        let threads: usize = line
            .strip_prefix(&format!("echoed {N} reactor_threads "))
            .unwrap_or_else(|| panic!("{line}"))
            .parse()
            .unwrap();
        assert_eq!(threads > 0, reactor, "budget {spin_us} µs: {line}");
        peer.exit();
    }
}
