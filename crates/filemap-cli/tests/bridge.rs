//! `filemap bridge` between two "hosts" on this machine: each host is a
//! bridge process with its own producer and consumer processes, and its own
//! channel names (`hA-...`, `hB-...`), so that nothing is shared but what the
//! bridges carry over Zenoh. Loopback endpoints only, multicast scouting off.
//! (The `bridge` feature: `cargo test -p filemap-cli --features bridge --test bridge`.)

#![cfg(unix)]

use std::process::Command;
use std::time::Instant;

use filemap_testkit::{free_port, unique, Helper, DEADLINE};
use serde_json::Value;

/// Messages per stream.
const COUNT: u64 = 100_000;
/// Channel capacity: room for a few 64 KiB messages.
const CAP: &str = "1048576";

/// A running `filemap bridge --json`.
struct Bridge {
    h: Helper,
    what: String,
}

impl Bridge {
    fn start<S: AsRef<str>>(args: &[S]) -> Bridge {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_filemap"));
        cmd.args([
            "bridge",
            "--json",
            "--interval",
            "0.2",
            "--no-multicast-scouting",
        ])
        .args(&args);
        let what = format!("filemap bridge {}", args.join(" "));
        Bridge {
            h: Helper::spawn_cmd(&mut cmd, &what),
            what,
        }
    }

    /// Reports until one satisfies `cond`; returns it.
    fn until(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = self
                .h
                .line_within(left)
                .unwrap_or_else(|| panic!("{}: no report with {what} in time", self.what));
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.what));
            if cond(&v) {
                return v;
            }
        }
    }

    /// SIGTERM; returns the final report.
    fn stop(self) -> Value {
        let st = Command::new("kill")
            .args(["-TERM", &self.h.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success());
        self.until("final: true", |v| v["final"] == true)
    }

    /// SIGKILL, mid-stream.
    fn kill(self) {
        self.h.kill();
    }
}

fn route<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["local"] == name))
        .unwrap_or_else(|| panic!("no route for {name} in {report}"))
}

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {field} in {v}"))
}

/// The consumer's reply: `got G first F last L missing M gaps K widest X Y`.
#[derive(Debug)]
struct Got {
    got: u64,
    last: i64,
    missing: u64,
    gaps: u64,
    widest: (i64, u64),
}

fn parse_got(line: &str) -> Got {
    let w: Vec<&str> = line.split_whitespace().collect();
    let at = |key: &str| -> &str {
        let i = w
            .iter()
            .position(|x| *x == key)
            .unwrap_or_else(|| panic!("consumer said {line:?}"));
        w[i + 1]
    };
    let widest = w
        .iter()
        .position(|x| *x == "widest")
        .unwrap_or_else(|| panic!("consumer said {line:?}"));
    Got {
        got: at("got").parse().unwrap(),
        last: at("last").parse().unwrap(),
        missing: at("missing").parse().unwrap(),
        gaps: at("gaps").parse().unwrap(),
        widest: (
            w[widest + 1].parse().unwrap(),
            w[widest + 2].parse().unwrap(),
        ),
    }
}

fn ready(h: &Helper) {
    assert_eq!(h.line(), "ready");
}

/// One stream from a producer on host A to a consumer on host B: the
/// channel names, the key, and A's endpoint, which B connects to.
struct OneWay {
    src: String,
    dst: String,
    key: String,
    listen: String,
}

impl OneWay {
    fn new(what: &str) -> OneWay {
        let t = unique("br");
        OneWay {
            src: format!("hA-{t}-src"),
            dst: format!("hB-{t}-dst"),
            key: format!("test/{t}/{what}"),
            listen: format!("tcp/127.0.0.1:{}", free_port()),
        }
    }

    /// Bridge A's arguments: publish `src`, listen; then `extra`.
    fn a_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec![
            "--out".to_owned(),
            format!("{}:{}", self.src, self.key),
            "--listen".into(),
            self.listen.clone(),
        ];
        v.extend(extra.iter().map(|e| e.to_string()));
        v
    }

    /// Bridge B's arguments: write into `dst`, connect to A; then `extra`.
    fn b_args(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec![
            "--in".to_owned(),
            format!("{}:{}", self.key, self.dst),
            "--connect".into(),
            self.listen.clone(),
            "--listen".into(),
            "tcp/127.0.0.1:0".into(),
        ];
        v.extend(extra.iter().map(|e| e.to_string()));
        v
    }

    /// The consumer of `dst` (`numbered-recv`), once ready.
    fn consumer(&self, cap: &str, extra: &[&str]) -> Helper {
        let count = COUNT.to_string();
        let mut args = vec!["numbered-recv", &self.dst, &count, cap];
        args.extend_from_slice(extra);
        let h = Helper::spawn(&args);
        ready(&h);
        h
    }

    /// The producer of `src` (`numbered-send`, numbered messages), once ready.
    fn producer(&self, cap: &str) -> Helper {
        let h = Helper::spawn(&["numbered-send", &self.src, &COUNT.to_string(), cap, "min8"]);
        ready(&h);
        h
    }
}

/// Block mode, both directions at once: 100,000 numbered messages of 1 B to
/// 64 KiB from a producer on host A to a consumer on host B, and as many
/// from B to A, every one delivered, in order, byte-exact.
#[test]
fn block_mode_delivers_every_message_both_ways() {
    let t = unique("br");
    let (a_src, a_dst, b_src, b_dst) = (
        format!("hA-{t}-src"),
        format!("hA-{t}-dst"),
        format!("hB-{t}-src"),
        format!("hB-{t}-dst"),
    );
    let (k_ab, k_ba) = (format!("test/{t}/ab"), format!("test/{t}/ba"));
    let port = free_port();
    let listen = format!("tcp/127.0.0.1:{port}");
    let count = COUNT.to_string();

    // Consumers first: they create the channels the bridges write into.
    let cons_b = Helper::spawn(&["numbered-recv", &b_dst, &count, CAP, "exact", "30000"]);
    let cons_a = Helper::spawn(&["numbered-recv", &a_dst, &count, CAP, "exact", "30000"]);
    ready(&cons_b);
    ready(&cons_a);
    let bridge_a = Bridge::start(&[
        "--out",
        &format!("{a_src}:{k_ab}"),
        "--in",
        &format!("{k_ba}:{a_dst}"),
        "--listen",
        &listen,
    ]);
    let bridge_b = Bridge::start(&[
        "--in",
        &format!("{k_ab}:{b_dst}"),
        "--out",
        &format!("{b_src}:{k_ba}"),
        "--connect",
        &listen,
        "--listen",
        "tcp/127.0.0.1:0",
    ]);
    let prod_a = Helper::spawn(&["numbered-send", &a_src, &count, CAP]);
    let prod_b = Helper::spawn(&["numbered-send", &b_src, &count, CAP]);
    ready(&prod_a);
    ready(&prod_b);

    let want = format!("got {COUNT} first 0 last {} missing 0 gaps 0", COUNT - 1);
    for (c, which) in [(&cons_b, "A to B"), (&cons_a, "B to A")] {
        let said = c.line();
        assert!(said.starts_with(&want), "{which}: {said}");
    }
    assert_eq!(prod_a.line(), format!("sent {COUNT}"));
    assert_eq!(prod_b.line(), format!("sent {COUNT}"));

    let (ra, rb) = (bridge_a.stop(), bridge_b.stop());
    for (r, name) in [(&ra, &a_src), (&ra, &a_dst), (&rb, &b_src), (&rb, &b_dst)] {
        let x = route(r, name);
        assert_eq!(n(x, "messages"), COUNT, "{x}");
        assert_eq!(n(x, "lost"), 0, "{x}");
        assert_eq!(x["backpressure"], "block", "{x}");
    }
    // Each In route heard one origin: the other bridge, never itself.
    for (r, name, other) in [(&rb, &b_dst, &ra), (&ra, &a_dst, &rb)] {
        let x = route(r, name);
        let origins = x["origins"].as_array().unwrap();
        assert_eq!(origins.len(), 1, "{x}");
        assert_eq!(origins[0]["origin"], other["bridge"], "{x}");
        assert_eq!(n(&origins[0], "received"), COUNT);
        assert_eq!(n(x, "echoes"), 0);
    }
}

/// Drop mode under overload (a consumer slower than the producer, a small
/// channel): messages are lost, and the receiving bridge's count of them
/// (gaps in sequence numbers, plus those it dropped at a full channel)
/// equals the gaps in the numbers the consumer received.
#[test]
fn drop_mode_counts_what_it_loses() {
    let w = OneWay::new("drop");
    let (src, dst) = (&w.src, &w.dst);
    // 256 KiB: room for two of the largest messages.
    let cons = w.consumer("262144", &["gaps", "3000", "pace=5"]);
    let bridge_a = Bridge::start(&w.a_args(&["--backpressure", "drop"]));
    let bridge_b = Bridge::start(&w.b_args(&["--backpressure", "drop"]));
    // Produce once B subscribes (drop mode does not wait for subscribers;
    // what is published before B's subscription reaches A is not counted,
    // and the check below looks only at what B saw).
    bridge_b.until("the In route running", |v| {
        route(v, dst)["state"] == "running"
    });
    let prod = w.producer("262144");
    assert_eq!(prod.line(), format!("sent {COUNT}"));
    let got = parse_got(&cons.line());

    let rb = bridge_b.stop();
    let ra = bridge_a.stop();
    assert_eq!(n(route(&ra, src), "messages"), COUNT, "{ra}");
    let x = route(&rb, dst);
    let origins = x["origins"].as_array().unwrap();
    assert_eq!(origins.len(), 1, "{x}");
    let (first, last) = (n(&origins[0], "first_seq"), n(&origins[0], "last_seq"));
    let counted = n(x, "lost") + n(x, "dropped");
    eprintln!(
        "drop mode: B saw {first}..={last}, lost {} dropped {}; the consumer got {} ({got:?})",
        n(x, "lost"),
        n(x, "dropped"),
        got.got
    );
    assert!(counted > 0, "no loss under overload: {x} {got:?}");
    // Everything the bridge wrote reached the consumer; what the consumer
    // misses between the first and last number the bridge saw is what the
    // bridge counted as lost or dropped.
    assert_eq!(n(x, "messages"), got.got, "{x} {got:?}");
    assert_eq!((last - first + 1) - got.got, counted, "{x} {got:?}");
    assert_eq!(n(x, "lost"), n(&origins[0], "lost"));
}

/// Killing the receiving bridge mid-stream: a new one takes over the
/// consumer's channel, the stream resumes by itself, and the gap is what
/// the new bridge reports as where it joined.
#[test]
fn a_killed_bridge_is_replaced_and_the_stream_resumes() {
    let w = OneWay::new("restart");
    let (src, dst) = (&w.src, &w.dst);
    let cons = w.consumer(CAP, &["gaps", "30000"]);
    let bridge_a = Bridge::start(&w.a_args(&[]));
    let bridge_b = Bridge::start(&w.b_args(&[]));
    let prod = w.producer(CAP);
    bridge_b.until("20,000 messages delivered", |v| {
        n(route(v, dst), "messages") >= 20_000
    });
    bridge_b.kill();
    let bridge_b2 = Bridge::start(&w.b_args(&[]));

    let got = parse_got(&cons.line());
    assert_eq!(prod.line(), format!("sent {COUNT}"));
    assert_eq!(got.last, COUNT as i64 - 1, "{got:?}");
    assert_eq!(got.got + got.missing, COUNT, "{got:?}");
    let rb = bridge_b2.stop();
    let ra = bridge_a.stop();
    let x = route(&rb, dst);
    let origins = x["origins"].as_array().unwrap();
    assert_eq!(origins.len(), 1, "{x}");
    let first = n(&origins[0], "first_seq");
    eprintln!("restart: the new bridge joined at {first}; the consumer: {got:?}");
    // Nothing lost after the new bridge joined...
    assert_eq!(n(x, "lost"), 0, "{x}");
    assert_eq!(n(x, "messages"), COUNT - first, "{x}");
    // ...and the only gap the consumer saw ends where the new bridge joined.
    if got.missing > 0 {
        assert_eq!(got.gaps, 1, "{got:?}");
        assert_eq!(got.widest.1, first, "{got:?} {x}");
        assert_eq!(got.missing, first - 1 - got.widest.0 as u64, "{got:?}");
    }
    // The sending bridge noticed, waited, and carried on by itself.
    assert_eq!(n(route(&ra, src), "messages"), COUNT, "{ra}");
    assert!(first > 0 && first < COUNT, "{x}");
}

/// The consumer behind a bridge dies: the bridge notices, lets the channel
/// go, and writes into the new channel a new consumer makes under the same
/// name, by itself.
#[test]
fn a_dead_consumer_is_replaced_and_the_bridge_reopens_its_channel() {
    let w = OneWay::new("reopen");
    let (src, dst) = (&w.src, &w.dst);
    let cons = w.consumer(CAP, &["gaps", "30000"]);
    let bridge_a = Bridge::start(&w.a_args(&[]));
    let bridge_b = Bridge::start(&w.b_args(&[]));
    let prod = w.producer(CAP);
    bridge_b.until("10,000 messages delivered", |v| {
        n(route(v, dst), "messages") >= 10_000
    });
    cons.kill();
    let cons2 = w.consumer(CAP, &["gaps", "30000", "retry"]);
    let got = parse_got(&cons2.line());
    assert_eq!(prod.line(), format!("sent {COUNT}"));
    // The new consumer gets every message from where it came in to the end.
    // (Its only gap is before its first message: those went to the first
    // consumer, or were lost in its ring when it died.)
    assert_eq!(got.last, COUNT as i64 - 1, "{got:?}");
    assert_eq!(got.widest.0, -1, "{got:?}");
    assert!(got.gaps <= 1, "{got:?}");
    assert_eq!(got.got, COUNT - got.widest.1, "{got:?}");
    let rb = bridge_b.stop();
    let ra = bridge_a.stop();
    let x = route(&rb, dst);
    eprintln!("reopen: the new consumer got {got:?}; bridge B: {x}");
    assert!(n(x, "reopened") >= 1, "{x}");
    assert_eq!(n(x, "lost"), 0, "{x}");
    assert_eq!(n(route(&ra, src), "messages"), COUNT, "{ra}");
}

/// Killing the sending bridge mid-stream (the one that listens): a new one
/// takes over the producer's channel, the receiving bridge reconnects by
/// itself, and the stream resumes, as a new origin numbered from 0.
#[test]
fn a_killed_sending_bridge_is_replaced_and_the_stream_resumes() {
    let w = OneWay::new("restart-a");
    let (src, dst) = (&w.src, &w.dst);
    let cons = w.consumer(CAP, &["gaps", "30000"]);
    let bridge_a = Bridge::start(&w.a_args(&[]));
    let bridge_b = Bridge::start(&w.b_args(&[]));
    let prod = w.producer(CAP);
    bridge_b.until("20,000 messages delivered", |v| {
        n(route(v, dst), "messages") >= 20_000
    });
    bridge_a.kill();
    let bridge_a2 = Bridge::start(&w.a_args(&[]));

    let got = parse_got(&cons.line());
    assert_eq!(prod.line(), format!("sent {COUNT}"));
    eprintln!("sender restart: the consumer: {got:?}");
    assert_eq!(got.last, COUNT as i64 - 1, "{got:?}");
    assert!(got.gaps <= 1, "{got:?}");
    assert_eq!(got.got + got.missing, COUNT, "{got:?}");
    let ra = bridge_a2.stop();
    let rb = bridge_b.stop();
    let x = route(&rb, dst);
    // Two origins, the first bridge's run and the second's, each without a
    // gap; the second numbered what it read from 0.
    let origins = x["origins"].as_array().unwrap();
    assert_eq!(origins.len(), 2, "{x}");
    let new = origins
        .iter()
        .find(|o| o["origin"] == ra["bridge"])
        .unwrap_or_else(|| panic!("no origin for the new bridge: {x}"));
    assert_eq!(n(new, "first_seq"), 0, "{x}");
    assert_eq!(n(x, "lost"), 0, "{x}");
    assert_eq!(n(x, "messages"), got.got, "{x}");
    assert_eq!(n(route(&ra, src), "messages"), n(new, "received"), "{ra}");
}
