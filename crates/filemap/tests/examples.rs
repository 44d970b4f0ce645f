//! The examples run as a user would run them (`cargo run --example X`),
//! so that they cannot rot: each starts its second process itself.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/NAME`, which `cargo test` builds.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    dir.join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn run(name: &str) -> String {
    let out = Command::new(example(name))
        .output()
        .unwrap_or_else(|e| panic!("run the {name} example: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn async_echo_answers_every_line_across_two_processes() {
    let out = run("async_echo");
    for line in ["hello", "shared", "memory", "across", "processes"] {
        let upper = line.to_uppercase();
        assert!(
            out.contains(&format!("client: {line:?} -> {upper:?}")),
            "{out}"
        );
    }
    assert!(out.contains("the client closed its end"), "{out}");
}

#[test]
fn waitset_handles_data_and_the_stop_event() {
    let out = run("waitset");
    for i in 0..5 {
        assert!(out.contains(&format!("data: message {i}")), "{out}");
    }
    assert!(out.contains("stop: the producer says it is done"), "{out}");
}

#[test]
fn typed_receives_readings_and_refuses_another_type() {
    let out = run("typed");
    for seq in 0..5 {
        assert!(
            out.contains(&format!("reading {seq}: sensor 7 at")),
            "{out}"
        );
    }
    assert!(out.contains("reading 4: sensor 7 at 21.00 °C"), "{out}");
    assert!(out.contains("as u64:") && out.contains("Reading"), "{out}");
}

#[test]
fn rpc_answers_each_call_matched_to_its_request() {
    let out = run("rpc");
    for line in [
        "1 + 2 + 3 = 6",
        "-5 + 5 = 0",
        "10 + 20 = 30",
        "100 + 200 = 300",
    ] {
        assert!(out.contains(line), "{out}");
    }
}
