//! `fm-helper`: a process that holds a filemap mapping and obeys one-line
//! commands on stdin, replying one line on stdout. Used by the cross-process
//! tests; see `tests/`.
//!
//! ```text
//! fm-helper [--wait-go] [--umask OCT] SETUP...
//! SETUP:  create NAME SIZE [persistent] [reserve] [large] [mode=OCT]
//!         create-or-open NAME SIZE
//!         open NAME r|rw
//!         file PATH SIZE r|rw
//!         named-file NAME PATH SIZE r|rw [persistent]
//!         anonymous SIZE
//!         serve-mapping PATH SIZE r|rw    (Unix: hand one over on a socket)
//!         receive-mapping PATH            (Unix: take one from a socket)
//!         inherited | inherited-twice     (token in FILEMAP_TOKEN)
//! then, one per line:
//!         write OFF HEX        write through a read-write view of OFF..OFF+len
//!         read OFF LEN         read through a read-only view of OFF..OFF+LEN
//!         cow OFF HEX          write through a copy-on-write view, reply its bytes
//!         add OFF N            atomic fetch_add on the u64 at OFF, reply the old value
//!         len                  reply the mapping's size
//!         commit OFF LEN       commit a range of a reserved mapping
//!         committed            reply the committed length
//!         large                reply the large page size and the bytes mapped with them
//!         backing              reply the backing and the file path
//!         dup PID r|rw         (Windows) duplicate into PID, reply the token
//!         adopt TOKEN          (Windows) adopt a duplicated handle
//!         follow ADDR          map at ADDR, follow the pointer stored at offset 0
//!         flush OFF LEN        flush_durable of a view
//!         exit                 reply "bye" and exit 0
//! Other roles take the whole command line instead of a SETUP: the channel,
//! cell, event, lock, WaitSet and async roles in `main`; the Unix roles
//! (`unix_role`: lock-attack, shrink, reopen-inherited, plant-record,
//! sweep-scenario, churn, fork-hold); the hostile peers (`hostile.rs`).
//! Each is documented where it is matched.
//! Replies: "ok ..." or "err KIND message" (`filemap::ErrorKind`).
//! ```

mod hostile;

use std::io::{BufRead, Write};
use std::sync::atomic::Ordering;

use filemap::{Access, Disposition, Error, Lifetime, Mapping, Options, ViewAccess};
use filemap_testkit::hex;

fn err_line(e: &Error) -> String {
    format!("err {} {}", e.kind(), e)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn num(s: Option<&str>) -> u64 {
    s.expect("missing number").parse().expect("number")
}

fn setup(args: &[String]) -> Result<(Mapping, &'static str), Error> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["create", name, size, rest @ ..] => {
            let mut o = Options::new();
            for r in rest {
                if *r == "persistent" {
                    o = o.lifetime(Lifetime::Persistent);
                } else if *r == "reserve" {
                    o = o.reserve(true);
                } else if *r == "large" {
                    o = o.large_pages(true);
                } else if let Some(m) = r.strip_prefix("mode=") {
                    o = o.mode(u32::from_str_radix(m, 8).expect("octal mode"));
                }
            }
            Ok((o.create(name, size.parse().expect("size"))?, "created"))
        }
        ["create-or-open", name, size] => {
            let (m, how) = Mapping::create_or_open(name, size.parse().expect("size"))?;
            Ok((
                m,
                if how == Disposition::Created {
                    "created"
                } else {
                    "opened"
                },
            ))
        }
        ["open", name, acc] => Ok((Mapping::open(name, access(acc))?, "opened")),
        ["file", path, size, acc] => Ok((
            Mapping::from_path(path, size.parse().expect("size"), access(acc))?,
            "mapped",
        )),
        // A named file mapping: NAME maps the file PATH (SIZE 0: its size).
        ["named-file", name, path, size, acc, rest @ ..] => {
            let mut o = Options::new().access(access(acc));
            if rest.contains(&"persistent") {
                o = o.lifetime(Lifetime::Persistent);
            }
            Ok((
                o.create_file(name, path, size.parse().expect("size"))?,
                "created",
            ))
        }
        ["anonymous", size] => Ok((Mapping::anonymous(size.parse().expect("size"))?, "created")),
        // Unix hand-over to an unrelated process: listen on PATH, say
        // `listening`, hand a fresh unnamed mapping of SIZE bytes to the
        // first process that connects, with ACCESS.
        #[cfg(unix)]
        ["serve-mapping", path, size, acc] => {
            use filemap::os::unix::MappingExt;
            let m = Mapping::anonymous(size.parse().expect("size"))?;
            let listener = std::os::unix::net::UnixListener::bind(path).expect("bind");
            println!("listening");
            std::io::stdout().flush().unwrap();
            let (conn, _) = listener.accept().expect("accept");
            let _ = std::fs::remove_file(path);
            m.send_over(&conn, access(acc))?;
            Ok((m, "served"))
        }
        // ...and the process that connects and receives it.
        #[cfg(unix)]
        ["receive-mapping", path] => {
            let conn = std::os::unix::net::UnixStream::connect(path).expect("connect");
            Ok((filemap::os::unix::receive_mapping(&conn)?, "received"))
        }
        ["inherited"] => {
            let token = std::env::var("FILEMAP_TOKEN").expect("FILEMAP_TOKEN");
            // SAFETY: the token comes from our parent's `inherit`, and is used once.
            Ok((unsafe { Mapping::from_inherited(&token) }?, "inherited"))
        }
        // Adopt the token, then try to adopt it again: the second must be
        // refused (`InvalidToken`), or both would own (and close) one fd.
        ["inherited-twice"] => {
            let token = std::env::var("FILEMAP_TOKEN").expect("FILEMAP_TOKEN");
            // SAFETY: the token comes from our parent's `inherit`; the second
            // adoption is the behaviour under test, and must be refused.
            let m = unsafe { Mapping::from_inherited(&token) }?;
            // SAFETY: as above.
            match unsafe { Mapping::from_inherited(&token) } {
                Err(Error::InvalidToken { reason, .. }) if reason.contains("adopted already") => {
                    Ok((m, "inherited-once"))
                }
                other => panic!("a second adoption of one token: {other:?}"),
            }
        }
        other => panic!("bad setup {other:?}"),
    }
}

fn access(s: &str) -> Access {
    match s {
        "r" => Access::Read,
        "rw" => Access::ReadWrite,
        _ => panic!("access must be r or rw"),
    }
}

fn command(m: &Mapping, line: &str) -> Result<String, Error> {
    let mut it = line.split_whitespace();
    let cmd = it.next().unwrap_or("");
    Ok(match cmd {
        "write" => {
            let off = num(it.next());
            let data = unhex(it.next().unwrap_or(""));
            let v = m.view(off..off + data.len() as u64, ViewAccess::ReadWrite)?;
            v.write_at(0, &data)?;
            "ok".into()
        }
        "read" => {
            let off = num(it.next());
            let len = num(it.next());
            let v = m.view(off..off + len, ViewAccess::Read)?;
            format!("ok {}", hex(&v.to_vec()))
        }
        "cow" => {
            let off = num(it.next());
            let data = unhex(it.next().unwrap_or(""));
            let v = m.view(off..off + data.len() as u64, ViewAccess::CopyOnWrite)?;
            v.write_at(0, &data)?;
            format!("ok {}", hex(&v.to_vec()))
        }
        "add" => {
            let off = num(it.next());
            let n = num(it.next());
            let v = m.view(off..off + 8, ViewAccess::ReadWrite)?;
            format!("ok {}", v.atomic_u64(0)?.fetch_add(n, Ordering::AcqRel))
        }
        "len" => format!("ok {}", m.len()),
        // Reserve-then-commit: commit a range; how much is committed.
        "commit" => {
            let off = num(it.next());
            let len = num(it.next());
            m.commit(off..off + len)?;
            "ok".into()
        }
        "committed" => format!("ok {}", m.committed_len()?),
        // Large pages: the size asked for (0: none), and how many bytes of a
        // view of the whole object the OS maps with large pages once every
        // page has been touched.
        "large" => {
            let v = m.view(.., ViewAccess::Read)?;
            let mut sum = 0u64;
            for at in (0..v.len()).step_by(4096) {
                sum = sum.wrapping_add(u64::from(v.load_u32(at & !3)? & 1));
            }
            std::hint::black_box(sum);
            format!(
                "ok {} {}",
                m.large_page_size().unwrap_or(0),
                v.large_page_bytes()?
            )
        }
        // What backs it, and the file's path where known.
        "backing" => format!(
            "ok {} {}",
            m.backing().as_str(),
            m.file_path().unwrap_or("-")
        ),
        // Windows hand-over to an unrelated process: duplicate this mapping
        // into process PID; the reply is the token for it.
        #[cfg(windows)]
        "dup" => {
            use filemap::os::windows::MappingExt;
            let pid = num(it.next()) as u32;
            let acc = access(it.next().unwrap_or("r"));
            format!("ok {}", m.duplicate_into(pid, acc)?)
        }
        // ...and, in that process, adopt it: read its first 6 bytes and try
        // writing `from B` at offset 8.
        "adopt" => {
            let token = it.next().unwrap_or("");
            // SAFETY: the token was made for this process by `dup`, and is
            // adopted once.
            let got = unsafe { Mapping::from_inherited(token) }?;
            let mut first = [0u8; 6];
            got.view(0..6, ViewAccess::Read)?.read_at(0, &mut first)?;
            let wrote = match got.view(8..14, ViewAccess::ReadWrite) {
                Ok(v) => v.write_at(0, b"from B").map(|()| "ok")?,
                Err(Error::AccessDenied { .. }) => "denied",
                Err(e) => return Err(e),
            };
            format!("ok {} write={wrote}", hex(&first))
        }
        "follow" => {
            // Map the whole object at ADDR, read the pointer stored at its
            // offset 0, and read 8 bytes where it points.
            let at: usize = num(it.next()) as usize;
            let v = m.map_at(0, 0, ViewAccess::Read, at)?;
            let p = v.load_u64(0)? as usize;
            assert!(
                p >= at && p + 8 <= at + v.len(),
                "the pointer {p:#x} is not inside the view"
            );
            // SAFETY: `p..p + 8` lies inside the live view `v` (checked), and
            // the test that wrote it writes nothing more meanwhile.
            let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, 8) }.to_vec();
            format!("ok {}", hex(&bytes))
        }
        "flush" => {
            let off = num(it.next());
            let len = num(it.next());
            m.view(off..off + len, ViewAccess::ReadWrite)?
                .flush_durable()?;
            "ok".into()
        }
        other => panic!("unknown command {other:?}"),
    })
}

/// This process's CPU time so far (user and system).
#[cfg(unix)]
fn cpu_time() -> std::time::Duration {
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid start.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(not(unix))]
fn cpu_time() -> std::time::Duration {
    std::time::Duration::ZERO
}

/// How many threads this process has (Linux: /proc/self/status; 0 elsewhere).
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Lets this process open as many descriptors as its hard limit allows
/// (a thousand channels hold a thousand descriptors).
#[cfg(unix)]
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

#[cfg(not(unix))]
fn raise_fd_limit() {}

#[cfg(unix)]
fn set_umask(octal: &str) {
    let m = u32::from_str_radix(octal, 8).expect("octal umask");
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(m as _));
}

#[cfg(not(unix))]
fn set_umask(_: &str) {
    panic!("--umask is for Unix only");
}

/// Channel roles: `spsc-send NAME COUNT [create=CAP]` (COUNT 0: for ever),
/// `spsc-recv NAME COUNT [create=CAP]`, `latest-write NAME [create]`,
/// `event-wait NAME TIMEOUT_MS`, `mutex-add NAME N`, `mutex-hold NAME`,
/// `bcast-send NAME COUNT [create=SLOTS,MAX]` (COUNT 0: for ever),
/// `bcast-recv NAME COUNT MAX`.
fn channel_role(args: &[String]) -> Option<Result<String, Error>> {
    use filemap::channel::spsc::{Receiver, Sender};
    use filemap::sync::LatestWriter;
    use filemap_testkit::{message_check, message_fill, message_len};
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let cap = |rest: &[&str]| {
        rest.iter()
            .find_map(|r| r.strip_prefix("create="))
            .map(|c| c.parse::<u64>().expect("capacity"))
    };
    let say = |line: &str| {
        println!("{line}");
        std::io::stdout().flush().unwrap();
    };
    const ROLES: [&str; 24] = [
        "spsc-take",
        "numbered-send",
        "numbered-recv",
        "latest-read",
        "latest-write-bytes",
        "async-echo",
        "async-idle",
        "spsc-send-paced",
        "spsc-hold-echo",
        "spsc-drain",
        "spsc-hold",
        "event-notify",
        "waitset-idle",
        "waitset-count",
        "mpmc-send",
        "mpmc-recv",
        "spsc-send",
        "spsc-recv",
        "latest-write",
        "event-wait",
        "mutex-add",
        "mutex-hold",
        "bcast-send",
        "bcast-recv",
    ];
    if !a.first().is_some_and(|r| ROLES.contains(r)) {
        return None;
    }
    Some((|| match a.as_slice() {
        ["spsc-send", name, count, rest @ ..] => {
            let mut tx = match cap(rest) {
                Some(c) => Sender::create(name, c)?,
                None => Sender::open(name)?,
            };
            say("ready");
            let count: u64 = count.parse().expect("count");
            let max = tx.max_message();
            let mut n = 0;
            while count == 0 || n < count {
                let len = message_len(n, max);
                let mut slot = tx.reserve(len)?;
                // SAFETY: a filemap receiver never writes unpublished bytes.
                message_fill(n, unsafe { slot.as_mut_slice() });
                slot.commit();
                n += 1;
            }
            Ok(format!("sent {n}"))
        }
        ["spsc-recv", name, count, rest @ ..] => {
            let mut rx = match cap(rest) {
                Some(c) => Receiver::create(name, c)?,
                None => Receiver::open(name)?,
            };
            say("ready");
            let count: u64 = count.parse().expect("count");
            let max = (rx.capacity() / 2 - 8) as usize;
            for n in 0..count {
                let m = rx.recv()?;
                if let Err(e) = message_check(n, max, &m.to_vec()) {
                    return Ok(format!("bad {e}"));
                }
            }
            Ok(format!("received {count}"))
        }
        ["latest-write", name, rest @ ..] => {
            let mut w = if rest.contains(&"create") {
                LatestWriter::<[u64; 16]>::create(name, &[0; 16])?
            } else {
                LatestWriter::<[u64; 16]>::open(name)?
            };
            w.write(&[1; 16]);
            say("ready");
            let mut n = 1u64;
            loop {
                n += 1;
                w.write(&[n; 16]);
            }
        }
        // Reads the 128-byte cell NAME (a `[u8; 128]`, as a byte cell of
        // another language makes it) until it has seen COUNT distinct values,
        // each whole (its 16 little-endian words equal) and none older.
        ["latest-read", name, count] => {
            let r = filemap::sync::LatestReader::<[u8; 128]>::open(name)?;
            say("ready");
            let count: u64 = count.parse().expect("count");
            let (mut seen, mut last) = (0u64, 0u64);
            let started = std::time::Instant::now();
            while seen < count && started.elapsed() < std::time::Duration::from_secs(60) {
                let raw = r.read()?;
                let v: Vec<u64> = raw
                    .chunks(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                if v.iter().any(|&w| w != v[0]) {
                    return Ok(format!("torn {v:?}"));
                }
                if v[0] < last {
                    return Ok(format!("older {} after {last}", v[0]));
                }
                if v[0] != last {
                    seen += 1;
                    last = v[0];
                }
            }
            Ok(format!("consistent {seen}"))
        }
        // Writes `[n; 16]` (little-endian u64 words) into the 128-byte cell
        // NAME, n = 1, 2, ... until killed.
        ["latest-write-bytes", name] => {
            let mut w = filemap::sync::LatestWriter::<[u8; 128]>::open(name)?;
            say("ready");
            let mut n = 0u64;
            loop {
                n += 1;
                let mut v = [0u8; 128];
                for c in v.chunks_mut(8) {
                    c.copy_from_slice(&n.to_le_bytes());
                }
                w.write(&v);
            }
        }
        ["event-wait", name, timeout_ms] => {
            let e = filemap::sync::Event::open(name)?;
            say("waiting");
            let t = std::time::Duration::from_millis(timeout_ms.parse().expect("ms"));
            Ok(if e.wait_timeout(t).is_ok() {
                "notified"
            } else {
                "timeout"
            }
            .to_owned())
        }
        ["mutex-add", name, n] => {
            let m = filemap::sync::Mutex::<[u64; 8]>::open(name)?;
            say("ready");
            for _ in 0..n.parse::<u64>().expect("count") {
                let mut g = m.lock()?;
                // Write the words one by one: a torn update shows as unequal words.
                let mut v = g.get();
                for w in v.iter_mut() {
                    *w += 1;
                }
                g.set(&v);
            }
            Ok("done".into())
        }
        ["mutex-hold", name] => {
            let m = filemap::sync::Mutex::<[u64; 8]>::open(name)?;
            let mut g = m.lock()?;
            g.set(&[7; 8]);
            say("locked");
            // Hold the lock until killed.
            loop {
                std::thread::park();
            }
        }
        ["bcast-send", name, count, rest @ ..] => {
            use filemap::channel::broadcast::Sender as BTx;
            let mut tx = match rest.iter().find_map(|r| r.strip_prefix("create=")) {
                Some(geo) => {
                    let (slots, max) = geo.split_once(',').expect("create=SLOTS,MAX");
                    BTx::create(
                        name,
                        slots.parse().expect("slots"),
                        max.parse().expect("max"),
                    )?
                }
                None => BTx::open(name)?,
            };
            say("ready");
            let max = tx.max_message();
            let count: u64 = count.parse().expect("count");
            let mut n = 0;
            let mut buf = vec![0; max];
            while count == 0 || n < count {
                let m = &mut buf[..message_len(n, max)];
                message_fill(n, m);
                tx.send(m)?;
                n += 1;
            }
            Ok(format!("sent {n}"))
        }
        ["bcast-recv", name, count, max] => {
            // Receives until `count` messages are accounted for (received or
            // reported missed), checking each received one against its number.
            let mut rx = filemap::channel::broadcast::Receiver::open(name)?;
            say("ready");
            let (count, max): (u64, usize) =
                (count.parse().expect("count"), max.parse().expect("max"));
            let (mut n, mut got, mut missed) = (0u64, 0u64, 0u64);
            while n < count {
                let r = rx.recv()?;
                missed += r.missed;
                n += r.missed;
                if let Err(e) = message_check(n, max, &r.data) {
                    return Ok(format!("bad {e}"));
                }
                got += 1;
                n += 1;
            }
            Ok(format!("received {got} missed {missed}"))
        }
        // The bridge tests' producer: creates the spsc channel NAME of CAP
        // bytes and sends COUNT numbered messages (1 B to 64 KiB; with
        // `min8` at least 8, so that each carries its number). A receiver
        // that dies is waited for: a new one takes its end over.
        ["numbered-send", name, count, cap, rest @ ..] => {
            use filemap_testkit::{numbered_fill, numbered_len};
            let mut tx = Sender::create(name, cap.parse().expect("capacity"))?;
            say("ready");
            let min8 = rest.contains(&"min8");
            let count: u64 = count.parse().expect("count");
            for n in 0..count {
                // A receiver that dies (a bridge killed) is waited for, for
                // up to 60 s: a new one takes its end over.
                let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
                let mut slot = loop {
                    match tx
                        .reserve_timeout(numbered_len(n, min8), std::time::Duration::from_secs(60))
                    {
                        Err(Error::PeerGone { .. }) if std::time::Instant::now() < until => {
                            // No wake-up comes from a receiver that is not
                            // there yet: look again shortly.
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                        r => break r?,
                    }
                };
                // SAFETY: a filemap receiver never writes unpublished bytes.
                numbered_fill(n, unsafe { slot.as_mut_slice() });
                slot.commit();
            }
            Ok(format!("sent {count}"))
        }
        // The bridge tests' consumer: creates the spsc channel NAME of CAP
        // bytes and receives numbered messages until it has message COUNT - 1,
        // or for IDLE ms nothing came, or 120 s passed. A sender that dies (a
        // bridge killed) is waited for: a new one takes its end over.
        // `exact`: every message, in order, byte-exact. `gaps` (min8
        // messages): in increasing order and byte-exact, gaps counted.
        // `pace=N`: 1 ms pause after every N messages (a slow consumer).
        ["numbered-recv", name, count, cap, mode, idle, rest @ ..] => {
            use filemap_testkit::{numbered_check, numbered_of};
            use std::time::{Duration, Instant};
            // `retry`: the name may still be held by a bridge that has not
            // yet noticed the last consumer died; create it once it is gone.
            let cap: u64 = cap.parse().expect("capacity");
            let until = Instant::now() + Duration::from_secs(60);
            let mut rx = loop {
                match Receiver::create(name, cap) {
                    Err(Error::AlreadyExists { .. })
                        if rest.contains(&"retry") && Instant::now() < until =>
                    {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    r => break r?,
                }
            };
            say("ready");
            let count: u64 = count.parse().expect("count");
            let idle = Duration::from_millis(idle.parse().expect("idle ms"));
            let exact = *mode == "exact";
            let pace: Option<u64> = rest
                .iter()
                .find_map(|r| r.strip_prefix("pace="))
                .map(|p| p.parse().expect("pace"));
            let started = Instant::now();
            let mut last_msg = Instant::now();
            let (mut got, mut missing, mut gaps) = (0u64, 0u64, 0u64);
            let (mut first, mut last): (Option<u64>, Option<u64>) = (None, None);
            // The widest gap: the last number before it and the first after.
            let mut widest = (0u64, 0u64, 0u64);
            while last.is_none_or(|l| l + 1 < count)
                && last_msg.elapsed() < idle
                && started.elapsed() < Duration::from_secs(120)
            {
                let m = match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(m) => m,
                    Err(Error::Timeout { .. }) => continue,
                    Err(Error::PeerGone { .. }) => {
                        // No wake-up comes from a sender that is not there
                        // yet: look again shortly.
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                last_msg = Instant::now();
                let bytes = m.to_vec();
                drop(m);
                let n = if exact {
                    got
                } else {
                    match numbered_of(&bytes) {
                        Some(n) => n,
                        None => return Ok(format!("bad a message of {} bytes", bytes.len())),
                    }
                };
                if let Err(e) = numbered_check(n, !exact, &bytes) {
                    return Ok(format!("bad {e}"));
                }
                let expected = last.map_or(0, |l| l + 1);
                if n < expected {
                    return Ok(format!("bad message {n} after {}", expected - 1));
                }
                if n > expected {
                    gaps += 1;
                    missing += n - expected;
                    if n - expected > widest.2 {
                        widest = (expected.wrapping_sub(1), n, n - expected);
                    }
                }
                first.get_or_insert(n);
                last = Some(n);
                got += 1;
                if pace.is_some_and(|p| got.is_multiple_of(p)) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Ok(format!(
                "got {got} first {} last {} missing {missing} gaps {gaps} widest {} {}",
                first.map_or(-1, |f| f as i64),
                last.map_or(-1, |l| l as i64),
                widest.0 as i64,
                widest.1
            ))
        }
        // Echoes COUNT messages from the spsc channel PING back on PONG,
        // awaiting both with filemap's futures on a tokio runtime (FLAVOR:
        // `current` or `multi`).
        ["async-echo", ping, pong, count, flavor] => {
            let rt = match *flavor {
                "multi" => tokio::runtime::Builder::new_multi_thread().build(),
                _ => tokio::runtime::Builder::new_current_thread().build(),
            }
            .expect("a tokio runtime");
            let mut rx = Receiver::open(ping)?;
            let mut tx = Sender::open(pong)?;
            say("ready");
            let count: u64 = count.parse().expect("count");
            rt.block_on(async move {
                let mut buf = Vec::new();
                for _ in 0..count {
                    let m = rx.recv_async().await?;
                    buf.clear();
                    buf.extend_from_slice(&m.to_vec());
                    drop(m);
                    tx.send_async(&buf).await?;
                }
                Ok::<_, Error>(())
            })?;
            Ok(format!("echoed {count}"))
        }
        // N idle spsc receivers, each awaited by its own task on a
        // current-thread tokio runtime for MILLIS; says the CPU time the
        // wait took and the threads the process has meanwhile.
        ["async-idle", n, millis] => {
            let n: usize = n.parse().expect("count");
            raise_fd_limit();
            let tag = format!("fmtest-aidle-{}", std::process::id());
            let rxs = (0..n)
                .map(|i| Receiver::create(&format!("{tag}-{i}"), 4096))
                .collect::<Result<Vec<_>, _>>()?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a tokio runtime");
            let millis: u64 = millis.parse().expect("ms");
            let (cpu, threads, pending) = rt.block_on(async move {
                let mut tasks = Vec::new();
                for mut rx in rxs {
                    tasks.push(tokio::spawn(async move {
                        let _ = rx.recv_async().await;
                    }));
                }
                // Let every task register, then measure.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let before = cpu_time();
                tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
                let cpu = cpu_time().saturating_sub(before);
                let pending = tasks.iter().filter(|t| !t.is_finished()).count();
                for t in &tasks {
                    t.abort();
                }
                (cpu, thread_count(), pending)
            });
            drop(rt);
            // The reactor's threads may still hold a few of the segments for
            // an instant (see filemap's `wait::reactor`), and this process
            // exits next: take the names now, so that none is left stale.
            for i in 0..n {
                let _ = filemap::Mapping::remove(&format!("{tag}-{i}"));
            }
            Ok(format!(
                "cpu_us {} threads {threads} pending {pending}",
                cpu.as_micros()
            ))
        }
        // Sends COUNT checked messages on the spsc channel NAME (opened as
        // sender), pausing MICROS between them.
        ["spsc-send-paced", name, count, micros] => {
            let mut tx = Sender::open(name)?;
            say("ready");
            let count: u64 = count.parse().expect("count");
            let pause = std::time::Duration::from_micros(micros.parse().expect("micros"));
            let max = tx.max_message();
            let mut buf = vec![0u8; max];
            for n in 0..count {
                let len = message_len(n, max);
                message_fill(n, &mut buf[..len]);
                tx.send(&buf[..len])?;
                std::thread::sleep(pause);
            }
            Ok(format!("sent {count}"))
        }
        // Blocking echo: COUNT messages from PING back on PONG.
        ["spsc-hold-echo", ping, pong, count] => {
            let mut rx = Receiver::open(ping)?;
            let mut tx = Sender::open(pong)?;
            say("ready");
            let count: u64 = count.parse().expect("count");
            for _ in 0..count {
                let m = rx.recv()?.to_vec();
                tx.send(&m)?;
            }
            Ok(format!("echoed {count}"))
        }
        // Opens the spsc channel NAME as its receiver and receives COUNT
        // messages, whatever they hold.
        ["spsc-drain", name, count] => {
            let mut rx = Receiver::open(name)?;
            say("ready");
            let count: u64 = count.parse().expect("count");
            for _ in 0..count {
                rx.recv()?;
            }
            Ok(format!("drained {count}"))
        }
        // Opens the spsc channel NAME as its receiver, receives COUNT
        // messages (then frees their space at once with `release`, or
        // leaves that to the batch with `keep`), says so, and holds the
        // channel, idle, until killed.
        ["spsc-take", name, count, how] => {
            let mut rx = Receiver::open(name)?;
            let count: u64 = count.parse().expect("count");
            for _ in 0..count {
                rx.recv()?;
            }
            if *how == "release" {
                rx.release();
            }
            say(&format!("took {count}"));
            loop {
                std::thread::park();
            }
        }
        // Opens the spsc channel NAME as its sender and holds it, idle,
        // until killed.
        ["spsc-hold", name] => {
            let _tx = Sender::open(name)?;
            say("holding");
            loop {
                std::thread::park();
            }
        }
        // Opens the event NAME and notifies it COUNT times (`notify_one`).
        ["event-notify", name, count] => {
            let e = filemap::sync::Event::open(name)?;
            say("ready");
            let count: u64 = count.parse().expect("count");
            for _ in 0..count {
                e.notify_one();
            }
            Ok(format!("notified {count}"))
        }
        // Creates N idle spsc receivers, waits on all of them with a
        // WaitSet for MILLIS, and says how much CPU time the wait took
        // (Unix: getrusage) and whether it timed out as it should.
        ["waitset-idle", n, millis] => {
            let n: usize = n.parse().expect("count");
            raise_fd_limit();
            let tag = format!("fmtest-idle-{}", std::process::id());
            let mut rxs = (0..n)
                .map(|i| Receiver::create(&format!("{tag}-{i}"), 4096))
                .collect::<Result<Vec<_>, _>>()?;
            say("waiting");
            let before = cpu_time();
            let mut set = filemap::wait::WaitSet::new();
            let mut refs: Vec<&mut dyn filemap::wait::Waitable> = rxs
                .iter_mut()
                .map(|r| r as &mut dyn filemap::wait::Waitable)
                .collect();
            let t = std::time::Duration::from_millis(millis.parse().expect("ms"));
            let outcome = match set.wait_timeout(&mut refs, t) {
                Err(Error::Timeout { .. }) => "timeout",
                Ok(_) => "ready",
                Err(_) => "error",
            };
            let used = cpu_time().saturating_sub(before);
            Ok(format!("{outcome} cpu_us {}", used.as_micros()))
        }
        // Opens the spsc channels NAME... as receiver and receives COUNT
        // messages in all (each checked against its number on its channel)
        // through one WaitSet.
        ["waitset-count", count, names @ ..] => {
            let count: u64 = count.parse().expect("count");
            let mut rxs = names
                .iter()
                .map(|n| Receiver::open(n))
                .collect::<Result<Vec<_>, _>>()?;
            say("ready");
            let mut next = vec![0u64; rxs.len()];
            let mut total = 0u64;
            let mut set = filemap::wait::WaitSet::new();
            while total < count {
                let ready: Vec<usize> = {
                    let mut refs: Vec<&mut dyn filemap::wait::Waitable> = rxs
                        .iter_mut()
                        .map(|r| r as &mut dyn filemap::wait::Waitable)
                        .collect();
                    set.wait_timeout(&mut refs, std::time::Duration::from_secs(60))?
                        .iter()
                        .map(|r| r.index)
                        .collect()
                };
                for i in ready {
                    let max = (rxs[i].capacity() / 2 - 8) as usize;
                    while let Some(m) = rxs[i].try_recv()? {
                        if let Err(e) = message_check(next[i], max, &m.to_vec()) {
                            return Ok(format!("bad {e}"));
                        }
                        next[i] += 1;
                        total += 1;
                    }
                }
            }
            Ok(format!("received {total}"))
        }
        ["mpmc-send", name, id, count] => {
            let ch = filemap::channel::mpmc::Sender::open(name)?;
            say("ready");
            let (id, count): (u32, u64) = (id.parse().expect("id"), count.parse().expect("count"));
            let mut buf = vec![0u8; ch.max_message()];
            // COUNT 0: for ever (until killed).
            let mut seq = 0;
            while count == 0 || seq < count {
                let len = mpmc_message(id, seq, &mut buf);
                ch.send(&buf[..len])?;
                seq += 1;
            }
            Ok(format!("sent {count}"))
        }
        ["mpmc-recv", name] => {
            // Until an empty message: per sender, count and sum of sequence
            // numbers, and whether each sender's messages came in order.
            let ch = filemap::channel::mpmc::Receiver::open(name)?;
            say("ready");
            let mut per: std::collections::BTreeMap<u32, (u64, u64, Option<u64>)> =
                Default::default();
            let mut want = vec![0u8; ch.max_message()];
            loop {
                let m = ch.recv_timeout(std::time::Duration::from_secs(120))?;
                if m.is_empty() {
                    break;
                }
                let id = u32::from_ne_bytes(m[..4].try_into().expect("id"));
                let seq = u64::from_ne_bytes(m[4..12].try_into().expect("seq"));
                let len = mpmc_message(id, seq, &mut want);
                if m[..] != want[..len] {
                    return Ok(format!("bad message {id}/{seq}"));
                }
                let e = per.entry(id).or_default();
                if e.2.is_some_and(|last| last >= seq) {
                    return Ok(format!("bad order {id}/{seq}"));
                }
                *e = (e.0 + 1, e.1 + seq, Some(seq));
            }
            let parts: Vec<String> = per
                .iter()
                .map(|(id, (n, sum, _))| format!("{id}:{n}:{sum}"))
                .collect();
            Ok(format!("got {}", parts.join(" ")))
        }
        other => panic!("bad channel role {other:?}"),
    })())
}

/// Writes MPMC test message `seq` of sender `id` into `buf`: the id, the
/// sequence number, then bytes that depend on both; returns its length.
fn mpmc_message(id: u32, seq: u64, buf: &mut [u8]) -> usize {
    let len = 12 + filemap_testkit::message_len(seq ^ u64::from(id), buf.len() - 12);
    buf[..4].copy_from_slice(&id.to_ne_bytes());
    buf[4..12].copy_from_slice(&seq.to_ne_bytes());
    filemap_testkit::message_fill(seq.wrapping_mul(31) ^ u64::from(id), &mut buf[12..len]);
    len
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Before stdin is locked below: these roles read it themselves.
    if let Some(code) = hostile::role(&args) {
        std::process::exit(code);
    }
    #[cfg(unix)]
    if let Some(code) = unix_role(&args) {
        std::process::exit(code);
    }
    if let ["inspect", name] = args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        // What `filemap::inspect` says of NAME, from this process (whose
        // user a test may have changed).
        match filemap::inspect::info(name) {
            Ok(o) => println!("state {}", o.state.as_str()),
            Err(e) => println!("{}", err_line(&e)),
        }
        return;
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    while let Some(flag) = args.first().cloned() {
        if flag == "--wait-go" {
            args.remove(0);
            let go = lines.next();
            assert!(
                matches!(go, Some(Ok(ref l)) if l.trim() == "go"),
                "expected go"
            );
        } else if flag == "--umask" {
            set_umask(&args[1]);
            args.drain(..2);
        } else {
            break;
        }
    }
    if let Some(r) = channel_role(&args) {
        match r {
            Ok(line) => {
                println!("{line}");
                // Stay until told to exit, so the end stays open meanwhile.
                for l in lines {
                    if l.map(|l| l.trim() == "exit").unwrap_or(true) {
                        println!("bye");
                        break;
                    }
                }
                return;
            }
            Err(e) => {
                println!("{}", err_line(&e));
                std::process::exit(1);
            }
        }
    }
    let m = match setup(&args) {
        Ok((m, how)) => {
            writeln!(out, "ok {how} {}", m.len()).unwrap();
            m
        }
        Err(e) => {
            writeln!(out, "{}", err_line(&e)).unwrap();
            std::process::exit(1);
        }
    };
    out.flush().unwrap();
    for line in lines {
        let line = line.expect("stdin");
        if line.trim() == "exit" {
            writeln!(out, "bye").unwrap();
            out.flush().unwrap();
            drop(m);
            return;
        }
        // `exit-at NANOS`: let go of the mapping at that instant (ns since
        // the Unix epoch, spinning for the last stretch so that two helpers
        // let go within microseconds of each other), then say `bye`.
        if let Some(at) = line.trim().strip_prefix("exit-at ") {
            let at: u128 = at.parse().expect("nanoseconds");
            let now = || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_nanos()
            };
            while now() < at {
                std::hint::spin_loop();
            }
            drop(m);
            writeln!(out, "bye").unwrap();
            out.flush().unwrap();
            return;
        }
        let reply = command(&m, &line).unwrap_or_else(|e| err_line(&e));
        writeln!(out, "{reply}").unwrap();
        out.flush().unwrap();
    }
}

/// Roles that attack or exercise the Unix lifetime protocol:
///
/// - `lock-attack PATH`: what a process that may only read an object can
///   try against its owner: open it read-only, take `flock(LOCK_EX)` and a
///   process-associated write lock (`F_SETLK`), say which it got
///   (`flock ok|refused fcntl ok|refused`), and hold them until `exit`.
/// - `shrink PATH SIZE`: what any process that may write an object can do
///   to its holders: open it and `ftruncate` it to `SIZE` (says `shrunk`).
/// - `reopen-inherited`: try to open the descriptor named by `FILEMAP_TOKEN`
///   again, read-write, through `/proc/self/fd` (`reopen ok|refused`).
/// - `plant-record NAME PATH`: write a file record naming PATH at
///   `/dev/shm/NAME` by hand, as any user can, with filemap's marks.
/// - `sweep-scenario N SIZE`: in a private `/dev/shm`, N holders of SIZE
///   bytes killed, then an unrelated `create` in a new process without and
///   with sweeping, while Python maps one of them and a foreign object
///   stands beside; says `killed L U unswept L U swept L U kept-mapped B
///   kept-foreign B` (names left, bytes of the tmpfs used, 1 for kept).
/// - `churn PREFIX MILLIS`: three threads create, write and drop names
///   `PREFIX-T-I` while a fourth runs `/bin/true`, for MILLIS ms; says
///   `made N spawned M` and exits cleanly.
/// - `fork-hold NAME`: open the mapping, `fork`; the parent drops its
///   `Mapping` at once and says `parent dropped`, then waits for `exit`; the
///   child keeps its copy of the mapping until the file `NAME.release`
///   appears in the temporary folder (at most 60 s), then writes what its
///   view reads at offset 0 to `NAME.seen`, drops it and exits.
#[cfg(unix)]
fn unix_role(args: &[String]) -> Option<i32> {
    use rustix::fs::{self as rfs, FlockOperation, Mode, OFlags};
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let wait_exit = || {
        for l in std::io::stdin().lines() {
            if l.map(|l| l.trim() == "exit").unwrap_or(true) {
                break;
            }
        }
    };
    match a.as_slice() {
        ["lock-attack", path] => {
            let fd = rfs::open(*path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
                .expect("open read-only");
            let word = |ok: bool| if ok { "ok" } else { "refused" };
            let flock = rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok();
            let fcntl = rfs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok();
            println!("flock {} fcntl {}", word(flock), word(fcntl));
            std::io::stdout().flush().unwrap();
            wait_exit();
            Some(0)
        }
        ["shrink", path, size] => {
            let fd = rfs::open(*path, OFlags::RDWR | OFlags::NONBLOCK, Mode::empty())
                .expect("open read-write");
            rfs::ftruncate(&fd, size.parse().expect("size")).expect("ftruncate");
            println!("shrunk");
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["plant-record", name, path] => {
            // What any user can do: write a well-formed file record by hand
            // (`sys/record.rs`'s layout) naming PATH, with filemap's marks
            // for a persistent file record (set-user-ID and set-group-ID).
            use std::os::unix::fs::MetadataExt;
            let md = std::fs::metadata(path).expect("stat the file");
            let mut b = b"FMFILE01".to_vec();
            b.extend_from_slice(&md.dev().to_le_bytes());
            b.extend_from_slice(&md.ino().to_le_bytes());
            b.extend_from_slice(&md.len().to_le_bytes());
            b.extend_from_slice(&(path.len() as u32).to_le_bytes());
            b.extend_from_slice(path.as_bytes());
            let sum = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
                (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            b.extend_from_slice(&sum.to_le_bytes());
            let shm = format!("/dev/shm/{name}");
            let fd = rfs::open(
                shm.as_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
                Mode::from_raw_mode(0o600),
            )
            .expect("create in /dev/shm");
            rustix::io::write(&fd, &b).expect("write the record");
            rfs::fchmod(&fd, Mode::from_raw_mode(0o6600)).expect("fchmod");
            println!("planted");
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["reopen-inherited"] => {
            let token = std::env::var("FILEMAP_TOKEN").expect("FILEMAP_TOKEN");
            let fd = token.split(':').nth(2).expect("a descriptor in the token");
            let reopened = rfs::open(
                format!("/proc/self/fd/{fd}").as_str(),
                OFlags::RDWR,
                Mode::empty(),
            );
            println!("reopen {}", if reopened.is_ok() { "ok" } else { "refused" });
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["sweep-scenario", n, size] => {
            // Run in a private /dev/shm (a mount namespace of its own): N
            // holders each create a name of SIZE bytes and are killed with
            // SIGKILL; then a new process makes one unrelated `create`, first
            // with sweeping turned off, then on. Says how many names were
            // left and how much of the tmpfs was used after each.
            use std::io::BufRead as _;
            use std::process::{Command, Stdio};
            let n: usize = n.parse().expect("count");
            let me = std::env::current_exe().expect("own path");
            let used = || {
                let st = rustix::fs::statvfs("/dev/shm").expect("statvfs /dev/shm");
                (st.f_blocks - st.f_bfree) * st.f_frsize
            };
            let left = || {
                std::fs::read_dir("/dev/shm")
                    .expect("read /dev/shm")
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("held-"))
                    .count()
            };
            let create = |name: &str, size: &str, sweep: bool| {
                let mut c = Command::new(&me);
                c.args(["create", name, size])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped());
                if sweep {
                    c.env_remove("FILEMAP_SWEEP");
                } else {
                    c.env("FILEMAP_SWEEP", "0");
                }
                let mut child = c.spawn().expect("spawn a holder");
                let mut line = String::new();
                std::io::BufReader::new(child.stdout.take().expect("stdout"))
                    .read_line(&mut line)
                    .expect("read its first line");
                assert!(line.starts_with("ok created"), "{line}");
                child
            };
            let mut holders: Vec<_> = (0..n)
                .map(|i| create(&format!("held-{i}"), size, false))
                .collect();
            for h in &mut holders {
                h.kill().expect("SIGKILL a holder");
                h.wait().expect("reap it");
            }
            // A foreign program maps one of them (without filemap's lock),
            // and a foreign object stands beside them: a sweep keeps both.
            let mut mapper = Command::new("python3")
                .args([
                    "-c",
                    "import mmap, os, sys\n\
                     fd = os.open('/dev/shm/held-0', os.O_RDWR)\n\
                     m = mmap.mmap(fd, 4096)\n\
                     print('mapped', flush=True)\n\
                     sys.stdin.read()",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("run python3");
            let mut line = String::new();
            std::io::BufReader::new(mapper.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("read");
            assert_eq!(line.trim(), "mapped");
            std::fs::write("/dev/shm/foreign-x", b"not filemap's").expect("a foreign object");
            let killed = (left(), used());
            // An unrelated create in a new process, sweeping off: all stay.
            let mut quiet = create("unrelated-a", "4096", false);
            drop(quiet.stdin.take());
            quiet.wait().expect("wait");
            let unswept = (left(), used());
            // The same with sweeping on (the default).
            let mut sweeper = create("unrelated-b", "4096", true);
            drop(sweeper.stdin.take());
            sweeper.wait().expect("wait");
            let swept = (left(), used());
            let kept_mapped = std::path::Path::new("/dev/shm/held-0").exists();
            let kept_foreign = std::path::Path::new("/dev/shm/foreign-x").exists();
            drop(mapper.stdin.take());
            mapper.wait().expect("wait for python3");
            println!(
                "killed {} {} unswept {} {} swept {} {} kept-mapped {} kept-foreign {}",
                killed.0,
                killed.1,
                unswept.0,
                unswept.1,
                swept.0,
                swept.1,
                u8::from(kept_mapped),
                u8::from(kept_foreign)
            );
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["churn", prefix, millis] => {
            // Three threads create a 64 KiB name, write a byte and drop it,
            // over and over, while a fourth runs `/bin/true` (any program
            // with subprocesses); then a clean exit.
            use std::sync::atomic::AtomicBool;
            let stop = AtomicBool::new(false);
            let run_for = std::time::Duration::from_millis(millis.parse().expect("millis"));
            let (made, spawned) = std::thread::scope(|s| {
                let spawner = s.spawn(|| {
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        std::process::Command::new("/bin/true")
                            .status()
                            .expect("run /bin/true");
                        n += 1;
                    }
                    n
                });
                let makers: Vec<_> = (0..3)
                    .map(|t| {
                        let stop = &stop;
                        s.spawn(move || {
                            let mut i = 0u32;
                            while !stop.load(Ordering::Relaxed) {
                                let m = Mapping::create(&format!("{prefix}-{t}-{i}"), 64 << 10)
                                    .expect("create");
                                m.view(0..1, ViewAccess::ReadWrite)
                                    .and_then(|v| v.write_at(0, &[1]))
                                    .expect("write");
                                drop(m);
                                i += 1;
                            }
                            i
                        })
                    })
                    .collect();
                std::thread::sleep(run_for);
                stop.store(true, Ordering::Relaxed);
                let made: u32 = makers.into_iter().map(|h| h.join().unwrap()).sum();
                (made, spawner.join().unwrap())
            });
            println!("made {made} spawned {spawned}");
            std::io::stdout().flush().unwrap();
            Some(0)
        }
        ["fork-hold", name] => {
            let m = Mapping::open(name, Access::ReadWrite).expect("open");
            // SAFETY: this process has one thread here (the helper starts
            // none before this role), so the child may go on running Rust.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let release = std::env::temp_dir().join(format!("{name}.release"));
                let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while !release.exists() && std::time::Instant::now() < end {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                // What the child's copy of the views reads now, for the test.
                let mut b = [0u8; 1];
                let seen = m
                    .view(0..1, ViewAccess::Read)
                    .and_then(|v| v.read_at(0, &mut b))
                    .map_or_else(|e| format!("{e}"), |()| b[0].to_string());
                let seen_path = std::env::temp_dir().join(format!("{name}.seen"));
                let _ = std::fs::write(seen_path.with_extension("tmp"), seen);
                let _ = std::fs::rename(seen_path.with_extension("tmp"), seen_path);
                drop(m);
                let _ = std::fs::remove_file(&release);
                // Skip the parent's stdio buffers and exit handlers.
                // SAFETY: `_exit` ends this process at once; nothing after runs.
                unsafe { libc::_exit(0) };
            }
            drop(m);
            println!("parent dropped");
            std::io::stdout().flush().unwrap();
            wait_exit();
            Some(0)
        }
        _ => None,
    }
}
