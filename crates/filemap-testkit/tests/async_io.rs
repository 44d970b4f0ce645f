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

// A wake-up that never comes: while the helper's receive future sleeps in
// its reactor, this process, as any process that can write the channel may,
// zeroes the channel's `waiting` count, so the next send wakes no one. The
// reactor's own re-check (every `ASYNC_LIVENESS`, the header where the next
// message goes) finds the message anyway: the echo comes within seconds,
// not never. The same for a sender asleep on a full ring, whose receiver's
// wake-up is lost the same way.
#[test]
fn async_waits_whose_wake_up_is_lost_still_end() {
    use filemap::{Access, Mapping, ViewAccess};
    use std::future::Future;
    use std::sync::atomic::Ordering::SeqCst;
    // The spsc layout (`channel::spsc::layout`): the segment header is 128
    // bytes; the receiver's `waiting` count is at 132 after it, the
    // sender's (waiting for space) at 196.
    const RX_WAITING: usize = 128 + 132;
    const TX_WAITING: usize = 128 + 196;
    // Waits until the helper's future has announced itself and gone to
    // sleep (on Linux, every thread of the helper sleeps: its re-check is
    // over, so the wake-up about to be lost cannot be caught by it), then
    // zeroes the count.
    fn wait_then_zero(name: &str, off: usize, who: &str, pid: u32) {
        let m = Mapping::open(name, Access::ReadWrite).unwrap();
        let v = m.view(.., ViewAccess::ReadWrite).unwrap();
        let waiting = v.atomic_u32(off).unwrap();
        let deadline = Instant::now() + LONG;
        while waiting.load(SeqCst) == 0 || !all_asleep(pid) {
            assert!(Instant::now() < deadline, "the helper's {who} never slept");
            std::thread::yield_now();
        }
        waiting.store(0, SeqCst);
    }
    #[cfg(target_os = "linux")]
    fn all_asleep(pid: u32) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.flatten().all(|t| {
            // "pid (comm) S ...": the state follows the last ')'.
            std::fs::read_to_string(t.path().join("stat")).is_ok_and(|st| {
                st.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
            })
        })
    }
    #[cfg(not(target_os = "linux"))]
    fn all_asleep(_pid: u32) -> bool {
        true // no such look under Wine: the wake-up may then be caught anyway
    }

    // A receiver.
    let (ping, pong) = (unique("a-lost-ping"), unique("a-lost-pong"));
    let mut tx = spsc::Sender::create(&ping, 4096).unwrap();
    let mut rx = spsc::Receiver::create(&pong, 4096).unwrap();
    let peer = Helper::spawn(&["async-echo", &ping, &pong, "1", "current"]);
    assert_eq!(peer.line(), "ready");
    wait_then_zero(&ping, RX_WAITING, "receive future", peer.pid());
    let sent = Instant::now();
    tx.send(b"nobody is told").unwrap();
    let echo = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the echo within 10 s although the wake-up was lost")
        .to_vec();
    assert_eq!(echo, b"nobody is told");
    eprintln!("receiver: echo after {:?}", sent.elapsed());
    assert_eq!(peer.line(), "echoed 1");
    peer.exit();

    // A sender waiting for space: the helper echoes three messages of
    // 1,500 bytes into `pong` (4 KiB), which this process leaves unread; two
    // fit, so its third send future sleeps until space is freed, and
    // freeing it wakes no one.
    let (ping, pong) = (unique("a-lost-ping2"), unique("a-lost-pong2"));
    let mut tx = spsc::Sender::create(&ping, 4096).unwrap();
    let mut rx = spsc::Receiver::create(&pong, 4096).unwrap();
    let peer = Helper::spawn(&["async-echo", &ping, &pong, "3", "current"]);
    assert_eq!(peer.line(), "ready");
    let msg = vec![7u8; 1500];
    for _ in 0..3 {
        tx.send(&msg).unwrap();
    }
    wait_then_zero(&pong, TX_WAITING, "send future", peer.pid());
    let freed = Instant::now();
    for _ in 0..2 {
        assert_eq!(rx.recv_timeout(LONG).unwrap().to_vec(), msg);
    }
    rx.release();
    let third = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the third echo within 10 s although the wake-up was lost")
        .to_vec();
    assert_eq!(third, msg);
    eprintln!("sender: last echo after {:?}", freed.elapsed());
    assert_eq!(peer.line(), "echoed 3");
    peer.exit();

    // A broadcast receiver, its future polled by hand here with no spin
    // budget, so that its first poll sleeps at once (on Wine too): then
    // the count is zeroed, and a helper process sends one message.
    const BCAST_WAITING: usize = 128 + 68;
    let name = unique("a-lost-bcast");
    let opts = filemap::Options::new().async_spin(Duration::ZERO);
    let mut brx = broadcast::Receiver::create_with(&name, 64, 256, &opts).unwrap();
    let flag = std::sync::Arc::new(Flag::default());
    let waker = std::task::Waker::from(flag.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(brx.recv_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let m = Mapping::open(&name, Access::ReadWrite).unwrap();
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    assert_eq!(v.atomic_u32(BCAST_WAITING).unwrap().swap(0, SeqCst), 1);
    let sender = Helper::spawn(&["bcast-send", &name, "1"]);
    assert_eq!(sender.line(), "ready");
    assert_eq!(sender.line(), "sent 1");
    let sent = Instant::now();
    assert!(
        flag.wait(Duration::from_secs(10)),
        "a broadcast future not woken within 10 s of a message whose wake-up was lost"
    );
    eprintln!("broadcast: woken after {:?}", sent.elapsed());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => assert_eq!(r.unwrap().seq, 0),
        std::task::Poll::Pending => panic!("woken, yet no message"),
    }
    sender.exit();
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
