//! Broadcast and mpmc senders and receivers.

#[allow(unused_imports)]
use super::*;

/// This family's role named by `a[0]`, run; `None` if it is not one of them.
pub(crate) fn role(a: &[&str]) -> Option<Result<String, Error>> {
    run(a).map_or_else(RoleError::into_option, |s| Some(Ok(s)))
}

fn run(a: &[&str]) -> Result<String, RoleError> {
    match a {
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
        // A shared sender of NAME (creating it with create=SLOTS,MAX):
        // says `ready ID`, sends COUNT messages `shared_message(TAG, n)`
        // (TAG from tag=TAG, else its id; COUNT 0: until killed), then
        // `sent COUNT`. (Ids are reused once a sender leaves; tags are the
        // test's own.)
        ["bcast-shared-send", name, count, rest @ ..] => {
            use filemap::channel::broadcast::SharedSender;
            let mut tx = match rest.iter().find_map(|r| r.strip_prefix("create=")) {
                Some(geo) => {
                    let (slots, max) = geo.split_once(',').expect("create=SLOTS,MAX");
                    SharedSender::create(
                        name,
                        slots.parse().expect("slots"),
                        max.parse().expect("max"),
                    )?
                }
                None => SharedSender::open(name)?,
            };
            say(&format!("ready {}", tx.id()));
            let tag = rest
                .iter()
                .find_map(|r| r.strip_prefix("tag="))
                .map_or(tx.id(), |t| t.parse().expect("tag"));
            let count: u64 = count.parse().expect("count");
            let mut n = 0;
            while count == 0 || n < count {
                tx.send(&filemap_testkit::shared_message(tag, n))?;
                n += 1;
            }
            Ok(format!("sent {n}"))
        }
        // Opens the mpmc channel NAME, reserves a slot, writes half of a
        // message in place, says `held`, and never commits (the test kills it).
        ["mpmc-reserve-hold", name] => {
            let tx = filemap::channel::mpmc::Sender::open(name)?;
            let mut r = tx.reserve(8)?;
            r.write_at(0, b"HALF")?;
            say("held");
            loop {
                std::thread::park();
            }
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
        _ => Err(RoleError::NotMine),
    }
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
