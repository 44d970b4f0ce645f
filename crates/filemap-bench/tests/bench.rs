//! The `filemap-bench` binary run as a user would: every transport as two
//! real processes, the tables, the JSON and the SVG.

use std::process::{Command, Stdio};

use filemap_testkit::unique;

fn ok(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_filemap-bench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run filemap-bench");
    assert!(
        o.status.success(),
        "filemap-bench {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `filemap-bench ARGS --json FILE`: its output and the JSON it wrote (the
/// file removed).
fn ok_json(args: &[&str]) -> (String, serde_json::Value) {
    let path = std::env::temp_dir().join(format!("{}.json", unique("bench")));
    let mut all = args.to_vec();
    all.extend(["--json", path.to_str().unwrap()]);
    let out = ok(&all);
    let v = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    (out, v)
}

#[test]
fn bench_runs_every_transport_as_two_processes_and_writes_json() {
    let svg = std::env::temp_dir().join(format!("{}.svg", unique("bench")));
    let (out, v) = ok_json(&[
        "--sizes",
        "64,4K",
        "--count",
        "300",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("Round trip, p50") && chart.contains("pipe"),
        "svg"
    );
    std::fs::remove_file(&svg).unwrap();
    assert!(
        out.contains("Round-trip latency") && out.contains("One-way streaming throughput"),
        "{out}"
    );
    assert!(
        out.contains("p50 / FLOOR") && out.contains("1.00x"),
        "{out}"
    );
    let ops = v["operations"].as_array().unwrap();
    assert!(ops.iter().any(|o| o["op"] == "open + close"
        && o["via"] == "filemap"
        && o["p50_ns"].as_u64().unwrap() > 0));
    let rows = v["rows"].as_array().unwrap();
    for transport in [
        "floor: cache line, spin",
        "filemap spsc, spin, copy",
        "filemap spsc, blocking",
        "filemap broadcast, spin",
        "filemap mpmc, spin",
        "pipe",
    ] {
        for size in [64, 4096] {
            let lat = rows
                .iter()
                .find(|r| {
                    r["transport"] == transport && r["size"] == size && r["scenario"] == "latency"
                })
                .unwrap_or_else(|| panic!("no latency row for {transport} {size}"));
            let l = &lat["latency_ns"];
            assert!(
                l["p50"].as_u64().unwrap() > 0 && l["p50"].as_u64() <= l["p99"].as_u64(),
                "{lat}"
            );
            assert_eq!(lat["count"], 300);
        }
    }
    // The large-pages row is measured where the OS gives large pages, and
    // otherwise said not to be, naming why.
    let large = "filemap spsc, spin, copy, large pages";
    let measured = rows.iter().any(|r| r["transport"] == large);
    let refused = out
        .lines()
        .any(|l| l.starts_with(&format!("not measured: {large}: ")) && l.contains("large pages"));
    assert!(measured != refused, "{out}");
    let stream = rows
        .iter()
        .find(|r| {
            r["transport"] == "filemap spsc, spin, copy"
                && r["scenario"] == "stream"
                && r["size"] == 64
        })
        .expect("a stream row");
    assert!(
        stream["msgs_per_s"].as_f64().unwrap() > 0.0 && stream["gb_per_s"].as_f64().unwrap() > 0.0
    );
    assert!(stream["lost"].is_null(), "spsc loses nothing: {stream}");
    // The client written as the docs show: its own two programs, every
    // message of the stream timed (no warm-up), stream only.
    let stream_of = |transport: &str| {
        rows.iter()
            .find(|r| r["transport"] == transport && r["scenario"] == "stream" && r["size"] == 64)
            .unwrap_or_else(|| panic!("no stream row for {transport}: {out}"))
    };
    let client = stream_of("filemap spsc, a client as in the docs");
    assert_eq!(client["count"], 300, "{client}");
    assert!(client["msgs_per_s"].as_f64().unwrap() > 0.0, "{client}");
    assert!(
        !rows.iter().any(
            |r| r["transport"] == "filemap spsc, a client as in the docs"
                && r["scenario"] == "latency"
        ),
        "the client row is a stream only"
    );
    // The 2 x 2 mpmc rows: every message sent by the two senders is received
    // by the two receivers together, streaming only.
    for transport in [
        "filemap mpmc, 2 senders x 2 receivers, spin",
        "filemap mpmc, 2 senders x 2 receivers, blocking",
    ] {
        let row = stream_of(transport);
        assert_eq!(row["count"], 300, "{row}");
        assert!(row["msgs_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["lost"].is_null(), "mpmc loses nothing: {row}");
        assert!(
            !rows
                .iter()
                .any(|r| r["transport"] == transport && r["scenario"] == "latency"),
            "{transport} is a stream only"
        );
    }
    // Broadcast streams say how many messages the receiver missed, of all
    // those sent.
    for transport in ["filemap broadcast, spin", "filemap broadcast, blocking"] {
        let row = stream_of(transport);
        let lost = row["lost"].as_u64().unwrap_or_else(|| panic!("{row}"));
        assert!(lost < 300, "{row}");
    }
    assert!(out.contains("LOST"), "{out}");
}

/// Every run of the floor is kept, so that a run whose machine changed under
/// it says so; each row is still its case's median run.
#[test]
fn every_floor_run_is_recorded_and_an_unsteady_run_says_so() {
    let (out, v) = ok_json(&[
        "--only",
        "floor-spin",
        "--sizes",
        "64,4K",
        "--rounds",
        "2",
        "--count",
        "300",
    ]);
    let floors: Vec<u64> = v["floor_p50_ns"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|f| f.as_u64().unwrap())
        .collect();
    assert_eq!(floors.len(), 4, "two sizes, two rounds: {floors:?}");
    assert!(floors.iter().all(|&f| f > 0), "{floors:?}");
    for row in v["rows"].as_array().unwrap() {
        if row["scenario"] == "latency" {
            let p50 = row["latency_ns"]["p50"].as_u64().unwrap();
            assert!(floors.contains(&p50), "{row} is one of the runs {floors:?}");
        }
    }
    let (min, max) = (floors.iter().min().unwrap(), floors.iter().max().unwrap());
    match v["unsteady"].as_str() {
        Some(w) => {
            assert!(max * 2 > min * 3, "{w} for {floors:?}");
            assert!(
                out.contains(w) && w.starts_with("warning: the floor"),
                "{out}"
            );
        }
        None => {
            assert!(max * 2 <= min * 3, "no warning for {floors:?}");
            assert!(!out.contains("warning"), "{out}");
        }
    }
}

#[test]
fn an_unknown_transport_lists_the_known_ones() {
    let o = Command::new(env!("CARGO_BIN_EXE_filemap-bench"))
        .args(["--only", "carrier-pigeon"])
        .output()
        .expect("run filemap-bench");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no transport `carrier-pigeon`") && err.contains("spsc-spin"),
        "{err}"
    );
}

/// The Zenoh rows (feature `zenoh`): plain pub/sub and the two bridges,
/// both scenarios, each as two real processes over loopback TCP.
#[cfg(feature = "zenoh")]
#[test]
fn zenoh_rows_run_plain_and_bridged() {
    let (out, v) = ok_json(&[
        "--only",
        "zenoh,zenoh-bridge",
        "--sizes",
        "64,64K",
        "--count",
        "300",
    ]);
    let rows = v["rows"].as_array().unwrap();
    for transport in [
        "zenoh pub-sub, TCP loopback",
        "filemap spsc via 2 zenoh bridges",
    ] {
        for size in [64, 65536] {
            for scenario in ["latency", "stream"] {
                let row = rows
                    .iter()
                    .find(|r| {
                        r["transport"] == transport
                            && r["size"] == size
                            && r["scenario"] == scenario
                    })
                    .unwrap_or_else(|| panic!("no {scenario} row for {transport} {size}: {out}"));
                assert_eq!(row["count"], 300, "{row}");
                let figure = match scenario {
                    "latency" => row["latency_ns"]["p50"].as_f64(),
                    _ => row["msgs_per_s"].as_f64(),
                };
                assert!(figure.is_some_and(|f| f > 0.0), "{row}");
            }
        }
    }
}

/// The C client row (feature `c`): C code on filemap's C API, both
/// scenarios, as two real processes.
#[cfg(feature = "c")]
#[test]
fn the_c_api_row_runs_round_trips_and_a_stream() {
    let (out, v) = ok_json(&["--only", "spsc-c", "--sizes", "64,4K", "--count", "300"]);
    let rows = v["rows"].as_array().unwrap();
    for size in [64, 4096] {
        for scenario in ["latency", "stream"] {
            let row = rows
                .iter()
                .find(|r| {
                    r["transport"] == "filemap spsc, spin, copy, from C (C API)"
                        && r["size"] == size
                        && r["scenario"] == scenario
                })
                .unwrap_or_else(|| panic!("no {scenario} row for size {size}: {out}"));
            assert_eq!(row["count"], 300, "{row}");
            let figure = match scenario {
                "latency" => row["latency_ns"]["p50"].as_f64(),
                _ => row["msgs_per_s"].as_f64(),
            };
            assert!(figure.is_some_and(|f| f > 0.0), "{row}");
        }
    }
}
