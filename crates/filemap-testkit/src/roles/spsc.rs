//! spsc roles: senders and receivers of test messages (checked, numbered,
//! paced), holders, takers and drainers of an end.

#[allow(unused_imports)]
use super::*;

/// This family's role named by `a[0]`, run; `None` if it is not one of them.
pub(crate) fn role(a: &[&str]) -> Option<Result<String, Error>> {
    run(a).map_or_else(RoleError::into_option, |s| Some(Ok(s)))
}

fn run(a: &[&str]) -> Result<String, RoleError> {
    match a {
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
                    Err(e) => return Err(e.into()),
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
        _ => Err(RoleError::NotMine),
    }
}
