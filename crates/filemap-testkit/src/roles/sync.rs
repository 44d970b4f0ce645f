//! `Latest` cells, events and the robust mutex.

#[allow(unused_imports)]
use super::*;

/// This family's role named by `a[0]`, run; `None` if it is not one of them.
pub(crate) fn role(a: &[&str]) -> Option<Result<String, Error>> {
    run(a).map_or_else(RoleError::into_option, |s| Some(Ok(s)))
}

fn run(a: &[&str]) -> Result<String, RoleError> {
    match a {
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
        _ => Err(RoleError::NotMine),
    }
}
