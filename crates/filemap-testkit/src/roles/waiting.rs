//! Waiting on many sources and async/await: WaitSet and tokio roles.

#[allow(unused_imports)]
use super::*;

/// This family's role named by `a[0]`, run; `None` if it is not one of them.
pub(crate) fn role(a: &[&str]) -> Option<Result<String, Error>> {
    run(a).map_or_else(RoleError::into_option, |s| Some(Ok(s)))
}

fn run(a: &[&str]) -> Result<String, RoleError> {
    match a {
        // Echoes COUNT messages from PING to PONG with recv_async and
        // send_async on a tokio runtime (FLAVOR: current or multi). With
        // SPIN_US, the channels are opened with `Options::async_spin` of it,
        // and the answer also says how many reactor threads
        // (`filemap-async-*`) the process started (Linux: /proc).
        ["async-echo", ping, pong, count, flavor, spin @ ..] => {
            let rt = match *flavor {
                "multi" => tokio::runtime::Builder::new_multi_thread().build(),
                _ => tokio::runtime::Builder::new_current_thread().build(),
            }
            .expect("a tokio runtime");
            let mut opts = filemap::Options::new();
            if let [us] = spin {
                let us = us.parse().expect("µs");
                opts = opts.async_spin(std::time::Duration::from_micros(us));
            }
            let mut rx = Receiver::open_with(ping, &opts)?;
            let mut tx = Sender::open_with(pong, &opts)?;
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
            if spin.is_empty() {
                return Ok(format!("echoed {count}"));
            }
            let reactors = std::fs::read_dir("/proc/self/task")
                .map(|d| {
                    d.flatten()
                        .filter(|t| {
                            std::fs::read_to_string(t.path().join("comm"))
                                .is_ok_and(|c| c.starts_with("filemap-async"))
                        })
                        .count()
                })
                .unwrap_or(0);
            Ok(format!("echoed {count} reactor_threads {reactors}"))
        }
        // A blocking receive of KIND (spsc or mpmc) that waits MILLIS with
        // nothing coming, right after a 1 MiB message (which makes the wait
        // poll longer before it parks); says how it ended and the CPU time
        // the wait took.
        ["idle-after-large", kind, millis] => {
            let name = format!("fmtest-idle-large-{}", std::process::id());
            let wait = std::time::Duration::from_millis(millis.parse().expect("ms"));
            let big = vec![7u8; 1 << 20];
            let (outcome, used) = match *kind {
                "spsc" => {
                    let mut rx = Receiver::create(&name, 4 << 20)?;
                    let mut tx = Sender::open(&name)?;
                    tx.send(&big)?;
                    assert_eq!(rx.recv()?.len(), big.len());
                    let before = cpu_time();
                    let r = rx.recv_timeout(wait).map(|m| m.len());
                    (r, cpu_time().saturating_sub(before))
                }
                _ => {
                    use filemap::channel::mpmc;
                    let tx = mpmc::Sender::create(&name, 4, 1 << 20)?;
                    let rx = mpmc::Receiver::open(&name)?;
                    tx.send(&big)?;
                    assert_eq!(rx.recv()?.len(), big.len());
                    let before = cpu_time();
                    let r = rx.recv_timeout(wait).map(|m| m.len());
                    (r, cpu_time().saturating_sub(before))
                }
            };
            let outcome = match outcome {
                Err(Error::Timeout { .. }) => "timeout",
                Ok(_) => "message",
                Err(_) => "error",
            };
            Ok(format!("{outcome} cpu_us {}", used.as_micros()))
        }
        // N idle spsc receivers (with `senders`, each with a live sender,
        // this process), each awaited by its own task on a current-thread
        // tokio runtime for MILLIS; says the CPU time the wait took and the
        // threads the process has meanwhile.
        ["async-idle", n, millis, rest @ ..] => {
            let n: usize = n.parse().expect("count");
            raise_fd_limit();
            let tag = format!("fmtest-aidle-{}", std::process::id());
            let rxs = (0..n)
                .map(|i| Receiver::create(&format!("{tag}-{i}"), 4096))
                .collect::<Result<Vec<_>, _>>()?;
            // `senders`: every channel has a live sender (this process), so
            // that the reactor has a peer to look at for each.
            let _txs = if rest == ["senders"] {
                (0..n)
                    .map(|i| Sender::open(&format!("{tag}-{i}")))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
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
                // Let every task register, then measure. Each first polls
                // for its spin budget (`Options::async_spin`), then sleeps on
                // the reactor, whose threads come one per 126 sleepers: once
                // there are enough of them (Linux: `thread_count`), every
                // task sleeps (this thread and one per 126). Elsewhere, a
                // fixed grace period.
                let all_asleep = n.div_ceil(126) + 1;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    let enough = cfg!(target_os = "linux") && thread_count() >= all_asleep;
                    if enough || std::time::Instant::now() > deadline {
                        break;
                    }
                    if !cfg!(target_os = "linux") {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        break;
                    }
                }
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
                let ready = ready_in(&mut set, &mut rxs)?;
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
        // Answers COUNT messages that come on any of the channels NAMES,
        // waited on with one WaitSet, on REPLY: the channel's index (u32,
        // little-endian), then the message.
        ["waitset-echo", reply, count, names @ ..] => {
            let count: u64 = count.parse().expect("count");
            let mut rxs = names
                .iter()
                .map(|n| Receiver::open(n))
                .collect::<Result<Vec<_>, _>>()?;
            let mut tx = Sender::open(reply)?;
            say("ready");
            let mut set = filemap::wait::WaitSet::new();
            let mut done = 0u64;
            let mut buf = Vec::new();
            while done < count {
                let ready = ready_in(&mut set, &mut rxs)?;
                for i in ready {
                    while let Some(m) = rxs[i].try_recv()? {
                        buf.clear();
                        buf.extend_from_slice(&(i as u32).to_le_bytes());
                        buf.extend_from_slice(&m.to_vec());
                        drop(m);
                        tx.send(&buf)?;
                        done += 1;
                    }
                }
            }
            Ok(format!("echoed {done}"))
        }
        _ => Err(RoleError::NotMine),
    }
}

/// Waits (up to a minute) on all of `rxs` with `set`: the indices ready.
fn ready_in(
    set: &mut filemap::wait::WaitSet,
    rxs: &mut [Receiver],
) -> Result<Vec<usize>, filemap::Error> {
    let mut refs: Vec<&mut dyn filemap::wait::Waitable> = rxs
        .iter_mut()
        .map(|r| r as &mut dyn filemap::wait::Waitable)
        .collect();
    Ok(set
        .wait_timeout(&mut refs, std::time::Duration::from_secs(60))?
        .iter()
        .map(|r| r.index)
        .collect())
}
