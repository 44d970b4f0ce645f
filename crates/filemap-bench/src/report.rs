//! The text tables of a run.

use crate::{Row, Scenario, TransportKind};

/// An aligned text table of `rows`, each with its ratio to the floor of its
/// size (latency: p50 over the spinning cache-line p50; stream: GB/s over
/// memcpy GB/s).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let fmt_ns = |n: u64| {
        if n >= 1_000_000 {
            format!("{:.1} ms", n as f64 / 1e6)
        } else if n >= 1_000 {
            format!("{:.2} us", n as f64 / 1e3)
        } else {
            format!("{n} ns")
        }
    };
    let floor_p50 = |size: usize| {
        rows.iter()
            .find(|r| r.size == size && r.transport == TransportKind::FloorSpin.as_str())
            .and_then(|r| r.latency_ns)
            .map(|l| l[0])
    };
    let memcpy = |size: usize| {
        rows.iter()
            .find(|r| r.size == size && r.transport.starts_with("floor: memcpy"))
            .and_then(|r| r.gb_per_s)
    };
    let mut lat: Vec<[String; 8]> = Vec::new();
    let mut stream: Vec<[String; 7]> = Vec::new();
    for r in rows {
        match (r.scenario, r.latency_ns) {
            (Scenario::Latency, Some(l)) => lat.push([
                r.size.to_string(),
                r.transport.clone(),
                fmt_ns(l[0]),
                fmt_ns(l[1]),
                fmt_ns(l[2]),
                fmt_ns(l[3]),
                fmt_ns(l[4]),
                floor_p50(r.size).map_or("-".into(), |f| format!("{:.2}x", l[0] as f64 / f as f64)),
            ]),
            _ => stream.push([
                r.size.to_string(),
                r.transport.clone(),
                r.msgs_per_s
                    .map_or("-".into(), |m| format!("{:.2} M", m / 1e6)),
                r.gb_per_s.map_or("-".into(), |g| format!("{g:.2}")),
                memcpy(r.size)
                    .zip(r.gb_per_s)
                    .map_or("-".into(), |(m, g)| format!("{:.0}%", 100.0 * g / m)),
                r.count.to_string(),
                r.lost.map_or("-".into(), |l| {
                    format!("{l} ({:.1}%)", 100.0 * l as f64 / r.count.max(1) as f64)
                }),
            ]),
        }
    }
    out.push_str("Round-trip latency (two processes, ping-pong)\n");
    out.push_str(&aligned(
        &[
            "SIZE",
            "TRANSPORT",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "p50 / FLOOR",
        ],
        &lat,
    ));
    out.push_str("\nOne-way streaming throughput (two processes)\n");
    out.push_str(&aligned(
        &[
            "SIZE",
            "TRANSPORT",
            "MSG/S",
            "GB/S",
            "OF MEMCPY",
            "MESSAGES",
            "LOST",
        ],
        &stream,
    ));
    out
}

fn aligned<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut w = head.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 2 {
                    format!("{c:<w$}", w = w[i])
                } else {
                    format!("{c:>w$}", w = w[i])
                }
            })
            .collect();
        out.push_str(s.join("  ").trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}
