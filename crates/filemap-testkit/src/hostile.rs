//! Helper roles for the hostile-peer tests (`tests/hostile.rs`):
//!
//! - `scribble NAME MILLIS SEED`: writes random bytes at random offsets of
//!   the object `NAME` (raw, through a read-write view) for `MILLIS` ms,
//!   mostly over the first KiB where the control words are, often whole
//!   words with values that break arithmetic (0, 1, 5, `u64::MAX`, ...).
//!   Prints `scribbled N`.
//! - `hostile KIND ROLE NAME MILLIS`: an honest user of a segment of `KIND`
//!   (spsc, mpmc, broadcast, latest, mutex, event); role `a` creates it and
//!   says `ready`, role `b` opens it and says `ready`. Then it calls the
//!   kind's operations for `MILLIS` ms, every waiting one with a 20 ms
//!   timeout, accepting any error, and prints `ok ops=N errors=M
//!   worst_over_us=U`: `U` is the most any call outlived its timeout (a call
//!   that does not wait counts its whole duration). A panic ends the process
//!   with an error status, which the test reports.

use std::io::Write;
use std::time::{Duration, Instant};

use filemap::channel::{broadcast, mpmc, spsc};
use filemap::sync::{Event, LatestReader, LatestWriter, Mutex};
use filemap::{Access, Mapping, ViewAccess};

/// The timeout of every waiting call.
pub const TIMEOUT: Duration = Duration::from_millis(20);

/// xorshift64*: a tiny deterministic generator (no dependency for a test).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs a hostile-test role if `args` names one; returns its exit code.
pub fn role(args: &[String]) -> Option<i32> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["scribble", name, millis, seed] => Some(scribble(
            name,
            Duration::from_millis(millis.parse().expect("millis")),
            seed.parse().expect("seed"),
        )),
        ["hostile", kind, role, name, millis] => Some(honest(
            kind,
            *role == "a",
            name,
            Duration::from_millis(millis.parse().expect("millis")),
        )),
        _ => None,
    }
}

fn scribble(name: &str, how_long: Duration, seed: u64) -> i32 {
    let m = match Mapping::open(name, Access::ReadWrite) {
        Ok(m) => m,
        Err(e) => {
            say(&format!("error {e}"));
            return 1;
        }
    };
    let v = m.view(.., ViewAccess::ReadWrite).expect("a view");
    let len = v.len() as u64;
    let mut rng = Rng(seed | 1);
    let nasty = [0u64, 1, 2, 5, 7, u64::MAX, u64::MAX - 1, 1 << 63, 1 << 32];
    let end = Instant::now() + how_long;
    let mut n = 0u64;
    while Instant::now() < end {
        // Three quarters of the writes land in the first KiB: the header
        // and the control words; the rest anywhere.
        let span = if rng.below(4) < 3 { len.min(1024) } else { len };
        if rng.below(2) == 0 {
            let off = rng.below(span / 8) * 8;
            let word = if rng.below(2) == 0 {
                nasty[rng.below(nasty.len() as u64) as usize]
            } else {
                rng.next() >> rng.below(64)
            };
            if off + 8 <= len {
                let _ = v.write_at(off as usize, &word.to_ne_bytes());
            }
        } else {
            let off = rng.below(span);
            let k = 1 + rng.below(8).min(len - off - 1) as usize;
            let bytes: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
            let _ = v.write_at(off as usize, &bytes);
        }
        n += 1;
        if n.is_multiple_of(64) {
            // Let the honest processes run between bursts.
            std::thread::yield_now();
        }
    }
    say(&format!("scribbled {n}"));
    0
}

/// Counts calls, errors, and the worst overrun of a timeout.
#[derive(Default)]
struct Tally {
    ops: u64,
    errors: u64,
    worst_over: Duration,
}

impl Tally {
    /// Times `f`, which may wait up to `allowed`.
    fn call<T, E>(&mut self, allowed: Duration, f: impl FnOnce() -> Result<T, E>) {
        let t = Instant::now();
        let r = f();
        let over = t.elapsed().saturating_sub(allowed);
        self.worst_over = self.worst_over.max(over);
        self.ops += 1;
        if r.is_err() {
            self.errors += 1;
        }
    }
}

/// Opens (role b) until it works or time runs out: a scribbled header or
/// owner word can refuse an opener for a while, which is fine.
fn attach<T>(end: Instant, mut open: impl FnMut() -> filemap::Result<T>) -> Option<T> {
    loop {
        match open() {
            Ok(t) => return Some(t),
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => {
                say(&format!("never opened: {e}"));
                return None;
            }
        }
    }
}

fn honest(kind: &str, creator: bool, name: &str, how_long: Duration) -> i32 {
    let open_until = Instant::now() + Duration::from_secs(10);
    let mut t = Tally::default();
    let msg = [0x5au8; 40];
    macro_rules! made {
        ($create:expr, $open:expr) => {{
            let h = if creator {
                match $create {
                    Ok(h) => h,
                    Err(e) => {
                        say(&format!("error {e}"));
                        return 1;
                    }
                }
            } else {
                match attach(open_until, || $open) {
                    Some(h) => h,
                    None => return 1,
                }
            };
            say("ready");
            h
        }};
    }
    // Both honest processes start together once the test says go (the
    // scribbler is started then too).
    let mut line = String::new();
    match kind {
        "spsc" => {
            if creator {
                let mut tx = made!(spsc::Sender::create(name, 4096), spsc::Sender::open(name));
                go(&mut line);
                run(how_long, || {
                    t.call(TIMEOUT, || tx.send_timeout(&msg, TIMEOUT))
                });
            } else {
                let mut rx = made!(
                    spsc::Receiver::create(name, 4096),
                    spsc::Receiver::open(name)
                );
                go(&mut line);
                run(how_long, || {
                    t.call(TIMEOUT, || rx.recv_timeout(TIMEOUT).map(|m| m.to_vec()))
                });
            }
        }
        "mpmc" => {
            if creator {
                let tx = made!(mpmc::Sender::create(name, 16, 64), mpmc::Sender::open(name));
                go(&mut line);
                run(how_long, || {
                    t.call(TIMEOUT, || tx.send_timeout(&msg, TIMEOUT))
                });
            } else {
                let rx = made!(
                    mpmc::Receiver::create(name, 16, 64),
                    mpmc::Receiver::open(name)
                );
                let mut buf = Vec::new();
                go(&mut line);
                run(how_long, || {
                    t.call(TIMEOUT, || rx.recv_into_timeout(&mut buf, TIMEOUT))
                });
            }
        }
        "broadcast" => {
            if creator {
                let mut tx = made!(
                    broadcast::Sender::create(name, 16, 64),
                    broadcast::Sender::open(name)
                );
                go(&mut line);
                run(how_long, || t.call(Duration::ZERO, || tx.send(&msg)));
            } else {
                let mut rx = made!(
                    broadcast::Receiver::create(name, 16, 64),
                    broadcast::Receiver::open(name)
                );
                let mut got = broadcast::Received::default();
                go(&mut line);
                run(how_long, || {
                    t.call(TIMEOUT, || rx.recv_into_timeout(&mut got, TIMEOUT))
                });
            }
        }
        "latest" => {
            if creator {
                let mut w = made!(
                    LatestWriter::<[u64; 8]>::create(name, &[0; 8]),
                    LatestWriter::<[u64; 8]>::open(name)
                );
                let mut i = 0u64;
                go(&mut line);
                run(how_long, || {
                    i += 1;
                    t.call(Duration::ZERO, || {
                        w.write(&[i; 8]);
                        Ok::<(), ()>(())
                    })
                });
            } else {
                let r = made!(
                    LatestReader::<[u64; 8]>::create(name, &[0; 8]),
                    LatestReader::<[u64; 8]>::open(name)
                );
                go(&mut line);
                run(how_long, || t.call(Duration::ZERO, || r.read()));
            }
        }
        "mutex" => {
            let m = made!(
                Mutex::<[u64; 4]>::create(name, &[0; 4]),
                Mutex::<[u64; 4]>::open(name)
            );
            go(&mut line);
            run(how_long, || {
                t.call(TIMEOUT, || {
                    m.lock_timeout(TIMEOUT).map(|mut g| {
                        let v = g.get();
                        g.set(&[v[0].wrapping_add(1); 4]);
                    })
                })
            });
        }
        "event" => {
            let e = made!(Event::create(name), Event::open(name));
            go(&mut line);
            if creator {
                run(how_long, || {
                    t.call(Duration::ZERO, || {
                        e.notify_one();
                        Ok::<(), ()>(())
                    })
                });
            } else {
                run(how_long, || t.call(TIMEOUT, || e.wait_timeout(TIMEOUT)));
            }
        }
        other => panic!("unknown kind {other}"),
    }
    say(&format!(
        "ok ops={} errors={} worst_over_us={}",
        t.ops,
        t.errors,
        t.worst_over.as_micros()
    ));
    0
}

/// Waits for the test's `go` on stdin.
fn go(line: &mut String) {
    line.clear();
    let _ = std::io::stdin().read_line(line);
    assert_eq!(line.trim(), "go", "expected go");
}

/// Calls `step` until `how_long` has passed.
fn run(how_long: Duration, mut step: impl FnMut()) {
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        step();
    }
}
