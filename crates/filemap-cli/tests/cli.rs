//! The `filemap` binary driven as a user would: real processes, exit codes,
//! messages. Commands that Windows supports run under Wine too.

use std::process::{Command, Output, Stdio};

use filemap_testkit::{unique, Helper};

fn filemap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_filemap"));
    // A process's first `create` sweeps this user's stale names: it would
    // take away the stale object `list` and `clean` are tested with.
    c.env("FILEMAP_SWEEP", "0");
    c
}

/// Taken by the tests that create a name in this process (whose first
/// `create` sweeps stale names) and by the test of stale objects.
static STALE_TEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(args: &[&str]) -> Output {
    filemap()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run filemap")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "filemap {args:?} failed: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// `filemap create NAME --size SIZE`, holding the mapping until killed or stdin closes.
fn holder(name: &str, size: &str) -> Helper {
    let h = Helper::spawn_cmd(
        filemap().args(["create", name, "--size", size]),
        "filemap create",
    );
    let first = h.line();
    assert!(first.starts_with(&format!("created `{name}`")), "{first}");
    h
}

#[test]
fn create_holds_until_end_of_input_then_releases() {
    let name = unique("cli-hold");
    let mut h = holder(&name, "64K");
    assert!(ok(&["info", &name]).contains("65536 bytes"));
    // Closing stdin releases it; the process says so and exits 0.
    h.close_stdin();
    let bye = h.line();
    assert!(
        bye.starts_with(&format!("released `{name}` on end of input")),
        "{bye}"
    );
    assert!(h.wait().success());
    let o = run(&["info", &name]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn write_then_read_round_trips_bytes_across_processes() {
    let name = unique("cli-rw");
    let _h = holder(&name, "8K");
    assert!(ok(&["write", &name, "--text", "hello"]).contains("wrote 5 bytes"));
    ok(&["write", &name, "--offset", "4100", "--hex", "00ff10"]);
    let mut w = filemap()
        .args(["write", &name, "--offset", "6000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    w.stdin.take().unwrap().write_all(b"from stdin").unwrap();
    assert!(w.wait_with_output().unwrap().status.success());
    assert_eq!(run(&["read", &name, "--len", "5"]).stdout, b"hello");
    assert_eq!(
        run(&["read", &name, "--offset", "4100", "--len", "3"]).stdout,
        [0, 255, 16]
    );
    assert_eq!(
        run(&["read", &name, "--offset", "6000", "--len", "10"]).stdout,
        b"from stdin"
    );
    assert_eq!(
        run(&["read", &name]).stdout.len(),
        8192,
        "read defaults to the whole object"
    );
    let dump = ok(&["dump", &name, "--len", "16"]);
    assert_eq!(
        dump,
        "00000000: 6865 6c6c 6f00 0000 0000 0000 0000 0000  hello...........\n"
    );
    let dump = ok(&["dump", &name, "--offset", "4096", "--len", "8"]);
    assert_eq!(
        dump,
        "00001000: 0000 0000 00ff 1000                      ........\n"
    );
}

#[test]
fn errors_have_exit_codes_and_say_what_to_do() {
    let missing = unique("cli-missing");
    for args in [
        vec!["info", missing.as_str()],
        vec!["dump", missing.as_str()],
        vec!["read", missing.as_str()],
        vec!["write", missing.as_str(), "--text", "x"],
        vec!["rm", missing.as_str()],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!("no mapping named `{missing}`"))
                && e.contains("`filemap list` shows what exists"),
            "{args:?}: {e}"
        );
    }
    let name = unique("cli-err");
    let _h = holder(&name, "4K");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["create", "bad name", "--size", "4K"],
            "invalid mapping name `bad name`",
        ),
        (vec!["create", &name, "--size", "4K"], "already exists"),
        (vec!["create", "x", "--size", "12Q"], "unknown unit"),
        (vec!["create", "x", "--size", "0"], "at least 1 byte"),
        (
            vec!["create", "x", "--size", "4K", "--mode", "999"],
            "octal mode",
        ),
        (
            vec!["write", &name, "--offset", "4090", "--text", "too long!"],
            "outside",
        ),
        (vec!["write", &name, "--hex", "abc"], "odd number"),
        (vec!["dump", &name, "--offset", "5000"], "outside"),
        (vec!["bogus"], "unrecognized subcommand"),
    ];
    for (args, msg) in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn info_shows_a_segment_header_and_none_for_a_raw_mapping() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    let name = unique("cli-seg");
    let _tx = filemap::channel::spsc::Sender::create(&name, 4096).unwrap();
    let text = ok(&["info", &name]);
    assert!(
        text.contains("header:   filemap segment: kind spsc, format v1"),
        "{text}"
    );
    assert!(
        text.contains("capacity 4096")
            && text.contains(&format!("made by pid {}", std::process::id())),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&["info", &name, "--json"])).unwrap();
    assert_eq!(v["segment"]["kind"], "spsc");
    assert_eq!(v["segment"]["version"], 1);
    assert_eq!(v["segment"]["capacity"], 4096);
    assert_eq!(v["segment"]["creator_pid"], std::process::id());
    assert_eq!(v["segment"]["ready"], true);
    assert_eq!(v["segment"]["fingerprint"].as_str().unwrap().len(), 16);

    // One schema on every OS: every field present, null where the OS does
    // not tell (the README's table is checked against the same structs).
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "activity",
            "backing",
            "file",
            "handles",
            "holders",
            "lifetime",
            "mode",
            "name",
            "segment",
            "size",
            "state",
            "uid",
            "untrusted",
            "user"
        ]
    );
    assert_eq!(v["backing"], "memory");

    let raw = unique("cli-raw");
    let _h = holder(&raw, "4K");
    assert!(ok(&["info", &raw]).contains("header:   none (a raw mapping)"));
    let v: serde_json::Value = serde_json::from_str(&ok(&["info", &raw, "--json"])).unwrap();
    assert!(v["segment"].is_null(), "{v}");
}

/// A reader that goes away early (`filemap list | head -1`, `... | true`)
/// ends the command quietly with exit 0: no panic, no message. The pipe's
/// read end is closed before the command starts, so its first write fails.
#[cfg(target_os = "linux")]
#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let name = unique("cli-pipe");
    let _h = holder(&name, "64K");
    let created = unique("cli-pipe-new");
    let cases: Vec<Vec<&str>> = vec![
        vec!["info", &name],
        vec!["info", &name, "--json"],
        vec!["list"],
        vec!["list", "--json"],
        vec!["clean", "--dry-run"],
        vec!["read", &name],
        vec!["dump", &name],
        vec!["write", &name, "--text", "hi"],
        vec!["create", &created, "--size", "4K"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = filemap()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

/// A missing file is reported as a file, without the hint about mappings.
#[test]
fn a_missing_file_is_named_as_a_file() {
    let dir = std::env::temp_dir().join(unique("cli-no-dir"));
    let path = dir.join("f.bin");
    let o = run(&[
        "create",
        "x",
        "--size",
        "4K",
        "--file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("no file") && e.contains("f.bin"), "{e}");
    assert!(!e.contains("filemap list"), "{e}");
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in [
        "create", "info", "list", "dump", "read", "write", "rm", "clean", "demo",
    ] {
        let out = ok(&[sub, "--help"]);
        assert!(out.contains("Examples:"), "{sub}: {out}");
    }
    assert!(ok(&["--help"]).contains("Examples:"));
}

#[test]
fn persistent_create_returns_and_rm_removes() {
    let name = unique("cli-persist");
    if cfg!(windows) {
        let o = run(&["create", &name, "--size", "4K", "--persistent"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("not supported"), "{}", stderr(&o));
        return;
    }
    assert!(ok(&["create", &name, "--size", "4K", "--persistent"]).contains("persistent"));
    ok(&["write", &name, "--text", "kept"]);
    assert_eq!(run(&["read", &name, "--len", "4"]).stdout, b"kept");
    assert!(ok(&["rm", &name]).contains(&format!("removed `{name}`")));
    assert_eq!(run(&["info", &name]).status.code(), Some(1));
}

// Issue 11, item 1: `create NAME --file PATH` makes a name that other
// processes use; writes reach the file; `info` shows the file.
#[test]
fn a_named_file_mapping_is_used_by_name_from_other_commands() {
    let name = unique("cli-file");
    let path = std::env::temp_dir().join(format!("{}.bin", unique("cli-file")));
    let p = path.to_str().unwrap();
    let mut h = Helper::spawn_cmd(
        filemap().args(["create", &name, "--size", "10K", "--file", p]),
        "create --file",
    );
    let first = h.line();
    assert!(first.contains("mapping the file"), "{first}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 10240);
    ok(&[
        "write",
        &name,
        "--offset",
        "5000",
        "--text",
        "through the name",
    ]);
    assert_eq!(
        run(&["read", &name, "--offset", "5000", "--len", "16"]).stdout,
        b"through the name"
    );
    assert_eq!(
        &std::fs::read(&path).unwrap()[5000..5016],
        b"through the name"
    );
    let info = ok(&["info", &name]);
    assert!(info.contains("backing:  file"), "{info}");
    if cfg!(target_os = "linux") {
        let abs = std::fs::canonicalize(&path).unwrap();
        assert!(
            info.contains(&format!("backing:  file ({})", abs.display())),
            "{info}"
        );
        let list = ok(&["list"]);
        assert!(
            list.lines()
                .any(|l| l.starts_with(&name) && l.contains(&format!("file ({})", abs.display()))),
            "{list}"
        );
    }
    h.close_stdin();
    h.line();
    h.wait();
    assert_eq!(
        run(&["info", &name]).status.code(),
        Some(1),
        "the name is gone"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn demo_shares_a_mapping_between_two_processes() {
    let out = ok(&["demo"]);
    assert!(
        out.contains("read \"Message from first process.\""),
        "{out}"
    );
    assert!(
        out.contains("the reader's reply is in my view: \"Reply from second process ("),
        "{out}"
    );
    assert!(out.contains("opening it now gives NotFound"), "{out}");
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    fn json(args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&ok(args)).expect("valid JSON")
    }

    fn entry<'a>(list: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
        list["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
    }

    #[test]
    fn create_releases_on_sigterm_and_sigint() {
        for sig in ["TERM", "INT"] {
            let name = unique("cli-sig");
            let mut h = holder(&name, "4K");
            let pid = h.pid().to_string();
            assert!(Command::new("kill")
                .args([&format!("-{sig}"), &pid])
                .status()
                .unwrap()
                .success());
            let bye = h.line();
            assert!(
                bye.starts_with(&format!("released `{name}` on a signal")),
                "SIG{sig}: {bye}"
            );
            assert!(h.wait().success(), "SIG{sig}: exits 0");
            assert_eq!(
                run(&["info", &name]).status.code(),
                Some(1),
                "SIG{sig}: the name is gone"
            );
        }
    }

    #[test]
    fn json_names_the_file_of_a_named_file_mapping() {
        let name = unique("cli-file-json");
        let path = std::env::temp_dir().join(format!("{}.bin", unique("cli-file-json")));
        let p = path.to_str().unwrap();
        assert!(
            ok(&["create", &name, "--size", "4K", "--file", p, "--persistent"])
                .contains("persistent")
        );
        let abs = std::fs::canonicalize(&path).unwrap();
        let info = json(&["info", &name, "--json"]);
        assert_eq!(info["backing"], "file");
        assert_eq!(info["file"], abs.to_str().unwrap());
        assert_eq!(info["size"], 4096);
        let list = json(&["list", "--json"]);
        let e = entry(&list, &name).expect("listed");
        assert_eq!(e["file"], abs.to_str().unwrap());
        // A memory-backed object says null.
        let mem = unique("cli-mem-json");
        let _h = holder(&mem, "4K");
        assert!(json(&["info", &mem, "--json"])["file"].is_null());
        ok(&["rm", &name]);
        assert!(path.exists(), "rm takes the name, not the file");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn info_shows_holders_and_json_has_the_documented_fields() {
        let name = unique("cli-info");
        let h = holder(&name, "1MiB");
        let text = ok(&["info", &name]);
        for want in [
            "size:     1.0 MiB (1048576 bytes)",
            "mode:     0600",
            "lifetime: transient",
            "state:    live",
            "filemap (open)",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let v = json(&["info", &name, "--json"]);
        assert_eq!(v["name"], name.as_str());
        assert_eq!(v["size"], 1048576);
        assert_eq!(v["mode"], "0600");
        assert_eq!(v["backing"], "memory");
        assert_eq!(v["lifetime"], "transient");
        assert_eq!(v["state"], "live");
        assert!(v["uid"].is_u64() && v.get("user").is_some());
        let holders = v["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{v}");
        assert_eq!(holders[0]["command"], "filemap");
        assert_eq!(holders[0]["open"], true);
        assert!(holders[0]["pid"].as_u64().unwrap() > 0);
        drop(h);
    }

    // One test, because `clean` acts on the whole machine: run in parallel with
    // another test that makes a stale object, it would remove that one too.
    #[test]
    fn list_marks_python_segments_foreign_and_killed_holders_stale_and_clean_removes_only_stale() {
        let _stale = super::STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
        let foreign = unique("cli-py");
        let py = format!(
            "from multiprocessing import shared_memory, resource_tracker\n\
             s = shared_memory.SharedMemory(name='{foreign}', create=True, size=5000)\n\
             resource_tracker.unregister(s._name, 'shared_memory')\ns.close()"
        );
        assert!(Command::new("python3")
            .args(["-c", &py])
            .status()
            .unwrap()
            .success());
        let live = unique("cli-live");
        let _live = holder(&live, "4K");
        let stale = unique("cli-stale");
        holder(&stale, "8K").kill();
        // Killed too, but a foreign process (Python, without filemap's lock)
        // maps it: clean must keep it while that process lives.
        let mapped = unique("cli-mapped");
        holder(&mapped, "4K").kill();
        let py = format!(
            "import sys\nfrom multiprocessing import shared_memory, resource_tracker\n\
             s = shared_memory.SharedMemory(name='{mapped}')\n\
             resource_tracker.unregister(s._name, 'shared_memory')\n\
             print('mapped', flush=True)\nsys.stdin.read()\ns.close()"
        );
        let mut p = Helper::spawn_cmd(Command::new("python3").args(["-c", &py]), "python holder");
        assert_eq!(p.line(), "mapped");

        let v = json(&["list", "--json"]);
        assert_eq!(entry(&v, &foreign).unwrap()["state"], "foreign");
        assert_eq!(entry(&v, &foreign).unwrap()["lifetime"], "foreign");
        assert_eq!(entry(&v, &live).unwrap()["state"], "live");
        assert_eq!(entry(&v, &stale).unwrap()["state"], "stale");
        assert_eq!(
            entry(&v, &stale).unwrap()["holders"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            entry(&v, &mapped).unwrap()["state"],
            "live",
            "a mapper makes it live"
        );
        assert_eq!(entry(&v, &mapped).unwrap()["holders"][0]["mapped"], true);
        let table = ok(&["list"]);
        assert!(table.lines().next().unwrap().starts_with("NAME"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&stale) && l.contains("stale")),
            "{table}"
        );

        let dry = ok(&["clean", "--dry-run"]);
        assert!(dry.contains(&format!("would remove {stale}")), "{dry}");
        let v = json(&["list", "--json"]);
        assert!(entry(&v, &stale).is_some(), "--dry-run removed nothing");

        let out = ok(&["clean"]);
        assert!(out.contains(&format!("removed {stale}")), "{out}");
        assert!(out.contains(&format!("kept    {live}: live")), "{out}");
        assert!(
            out.contains(&format!("kept    {foreign}: foreign")),
            "{out}"
        );
        assert!(out.contains(&format!("kept    {mapped}: live")), "{out}");
        let v = json(&["list", "--json"]);
        assert!(entry(&v, &stale).is_none());
        assert!(
            entry(&v, &live).is_some()
                && entry(&v, &foreign).is_some()
                && entry(&v, &mapped).is_some()
        );
        ok(&["rm", &foreign]);
        // Once the mapper is gone, the object is stale and clean removes it.
        p.close_stdin();
        p.wait();
        assert!(ok(&["clean"]).contains(&format!("removed {mapped}")));
    }

    /// `clean --watch` cleans again and again: an object that becomes
    /// stale while it runs is removed by a later pass, and it stops cleanly
    /// at the end of its input.
    #[test]
    fn clean_watch_removes_what_becomes_stale_until_stopped() {
        let _stale = super::STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
        let mut w = Helper::spawn_cmd(
            filemap().args(["clean", "--watch", "0.05"]),
            "clean --watch",
        );
        assert!(w.line().starts_with("cleaning every 0.05 s"));
        let stale = unique("cli-watch");
        holder(&stale, "4K").kill();
        loop {
            let l = w.line();
            if l.starts_with(&format!("removed {stale}: stale")) {
                break;
            }
        }
        let v = json(&["list", "--json"]);
        assert!(entry(&v, &stale).is_none(), "removed");
        w.close_stdin();
        loop {
            if w.line() == "stopped on end of input" {
                break;
            }
        }
        assert!(w.wait().success());
    }
}

/// A build without the `bridge` feature says what `filemap bridge` needs and
/// the exact line that builds it, instead of "unrecognized subcommand" with
/// a tip towards `write`.
#[cfg(not(feature = "bridge"))]
#[test]
fn bridge_without_the_feature_says_how_to_build_it() {
    let o = run(&[
        "bridge",
        "--out",
        "jobs:demo/jobs",
        "--connect",
        "tcp/127.0.0.1:7447",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("needs the `bridge` feature"), "{e}");
    assert!(
        e.contains("cargo install --path crates/filemap-cli --features bridge"),
        "{e}"
    );
    assert!(!e.contains("similar subcommand"), "{e}");
    let help = stdout(&run(&["--help"]));
    assert!(help.contains("bridge"), "{help}");
}

#[test]
fn info_shows_a_services_types_servers_and_clients_and_a_channels_type() {
    use filemap::rpc::{Client, Config, Server};
    let name = unique("cli-service");
    let server = Server::create(
        &name,
        &Config::new().max_request(24).max_response(8).message_types(
            filemap::MessageType::named::<[u64; 3]>("calc.Request/v1"),
            filemap::MessageType::named::<u64>("calc.Sum/v1"),
        ),
    )
    .unwrap();
    let client = Client::open(&name).unwrap();
    let me = std::process::id().to_string();
    let text = ok(&["info", &name]);
    assert!(
        text.contains("type:     calc.Request/v1 (24 bytes, alignment 8)"),
        "{text}"
    );
    assert!(
        text.contains("responses of type calc.Sum/v1 (8 bytes)"),
        "{text}"
    );
    assert!(text.contains(&format!("servers:  {me}")), "{text}");
    assert!(
        text.contains(&format!("clients:  {me} (of 64 slots)")),
        "{text}"
    );
    let json = ok(&["info", &name, "--json"]);
    assert!(json.contains("\"kind\":\"service\""), "{json}");
    assert!(json.contains(&format!("\"servers\":[{me}]")), "{json}");
    drop((client, server));
    // A typed channel shows its type.
    let ch = unique("cli-typed");
    let _tx = filemap::typed::mpmc::Sender::<u32>::create(&ch, 4).unwrap();
    let text = ok(&["info", &ch]);
    assert!(
        text.contains("type:     u32 (4 bytes, alignment 4)"),
        "{text}"
    );
}

/// Windows: `--help` marks what has nothing to do there, and `clean` says
/// so (exit 0); `list` no longer says "not here".
#[cfg(windows)]
#[test]
fn on_windows_help_marks_clean_which_says_there_is_nothing_to_do() {
    let help = ok(&["--help"]);
    assert!(help.contains("(Nothing to do on Windows"), "{help}");
    assert!(!help.contains("Linux only"), "{help}");
    let clean = ok(&["clean"]);
    assert!(clean.contains("nothing to clean on Windows"), "{clean}");
}

/// Windows: `list` shows the sections other processes made, plain ones
/// (`CreateFileMappingW` with no header) and filemap's (a service's
/// registry and queue), with sizes, headers and handle counts, in the
/// schema Linux uses; `info` counts handles too.
#[cfg(windows)]
#[test]
fn on_windows_list_and_info_show_sections_other_processes_made() {
    let raw = unique("win-raw");
    let _raw_holder = holder(&raw, "8192");
    let svc = unique("win-svc");
    let server = Helper::spawn(&["rpc-serve", &svc, "create"]);
    assert_eq!(server.line(), "ready");
    let text = ok(&["list"]);
    assert!(text.contains(&raw) && text.contains(&svc), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(&["list", "--json"])).unwrap();
    let objects = v["objects"].as_array().expect("objects");
    let find = |n: &str| {
        objects
            .iter()
            .find(|o| o["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed: {v}"))
    };
    let r = find(&raw);
    assert_eq!(
        (r["size"].as_u64(), r["backing"].as_str()),
        (Some(8192), Some("memory"))
    );
    assert!(r["segment"].is_null(), "{r}");
    assert!(r["handles"].as_u64().is_some_and(|n| n >= 1), "{r}");
    assert_eq!(r["state"], "live");
    let s = find(&svc);
    assert_eq!(s["segment"]["kind"], "service", "{s}");
    assert!(s["handles"].as_u64().is_some_and(|n| n >= 1), "{s}");
    let q = find(&format!("{svc}.requests"));
    assert_eq!(q["segment"]["kind"], "mpmc", "{q}");
    let info = ok(&["info", &raw]);
    assert!(info.contains("handles:  1 ("), "{info}");
    drop(server);
}

/// The README's shell blocks: the first runs the demo (run above, as
/// `demo_shares_a_mapping_between_two_processes` does with this binary)
/// and the suite (`.ci/run`, which CI runs, executes `bash .ci/test`).
/// The others need a second host (the bridge), the network (installing,
/// the benchmark with its peers) or Wine (run by `.ci/test` itself).
#[test]
fn the_readmes_first_commands_are_the_demo_and_the_suite_ci_runs() {
    // Tests run in the package's folder (relative paths work under Wine too).
    let root = "../..";
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README");
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a first shell block");
    let commands: Vec<&str> = first
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .collect();
    assert_eq!(
        commands,
        ["cargo run -q -p filemap-cli -- demo", "bash .ci/test"]
    );
    let ci = std::fs::read_to_string(format!("{root}/.ci/run")).expect(".ci/run");
    assert!(ci.lines().any(|l| l.trim() == "exec bash .ci/test"), "{ci}");
    let out = ok(&["demo"]);
    assert!(out.contains("opening it now gives NotFound"), "{out}");
}

/// A producer on its own thread: `tx` sends a message every `every`, on an
/// absolute schedule, until the returned flag is set; the thread gives
/// back how many it sent and in how long (its own count, to compare a
/// measured rate with).
fn paced_producer(
    mut tx: filemap::channel::spsc::Sender,
    every: std::time::Duration,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<(u64, std::time::Duration)>,
) {
    use std::time::{Duration, Instant};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let start = Instant::now();
        let mut n: u64 = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let due = start + every * n as u32;
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            tx.send(&n.to_le_bytes()).unwrap();
            n += 1;
            assert!(start.elapsed() < Duration::from_secs(60), "bounded");
        }
        (n, start.elapsed())
    });
    (stop, thread)
}

/// `info --json`'s `activity`, parsed.
fn activity(name: &str) -> serde_json::Value {
    let json = ok(&["info", name, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("info --json is JSON");
    v["activity"].clone()
}

/// The `list --json` entry of `name`.
#[cfg(target_os = "linux")]
fn listed(name: &str) -> serde_json::Value {
    let json = ok(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("list --json is JSON");
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {json}"))
        .clone()
}

fn end<'a>(a: &'a serde_json::Value, role: &str) -> &'a serde_json::Value {
    a["ends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == role)
        .unwrap_or_else(|| panic!("no {role} end in {a}"))
}

// Channel state from outside: counts exact once the receiver waits, ends
// and their holders, live then dead; the same figures in `list`.
#[test]
fn info_and_list_show_an_spsc_channels_counts_and_ends() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    use filemap::channel::spsc::Sender;
    let name = unique("cli-spsc-state");
    let mut tx = Sender::create(&name, 4096).unwrap();
    for i in 0..10u8 {
        tx.send(&[i; 12]).unwrap();
    }
    // A helper takes 4 and frees them at once; then it idles.
    let rx = Helper::spawn(&["spsc-take", &name, "4", "release"]);
    assert_eq!(rx.line(), "took 4");
    let a = activity(&name);
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(
        (&a["sent"], &a["received"], &a["queued"]),
        (&10.into(), &4.into(), &6.into()),
        "{a}"
    );
    // Six records of 8 + 16 bytes.
    assert_eq!(a["queued_bytes"], 6 * 24, "{a}");
    assert_eq!(
        (&a["capacity"], &a["max_message"]),
        (&4096.into(), &2040.into())
    );
    let me = std::process::id();
    assert_eq!(end(&a, "sender")["pid"], me, "{a}");
    assert_eq!(end(&a, "sender")["state"], "live", "{a}");
    assert_eq!(end(&a, "receiver")["pid"], rx.pid(), "{a}");
    assert_eq!(end(&a, "receiver")["state"], "live", "{a}");
    #[cfg(target_os = "linux")]
    {
        assert_eq!(end(&a, "receiver")["command"], "fm-helper", "{a}");
        let l = listed(&name);
        assert_eq!(l["activity"]["queued"], 6, "{l}");
        let table = ok(&["list"]);
        let line = table.lines().find(|l| l.starts_with(&name)).unwrap();
        assert!(line.contains("6 queued"), "{line}");
    }
    let text = ok(&["info", &name]);
    assert!(
        text.contains("queued:   6 messages, 144 of 4096 ring bytes [#"),
        "{text}"
    );
    assert!(text.contains("messages: 10 sent, 4 received"), "{text}");
    assert!(
        text.contains(&format!("receiver: pid {}", rx.pid())),
        "{text}"
    );
    // The receiver dies: its end says so; nothing was taken meanwhile.
    let pid = rx.pid();
    rx.kill();
    let a = activity(&name);
    assert_eq!(end(&a, "receiver")["state"], "dead", "{a}");
    assert_eq!(end(&a, "receiver")["pid"], pid, "{a}");
    assert_eq!(a["queued"], 6, "{a}");
    drop(tx);
}

#[test]
fn info_shows_mpmc_broadcast_latest_event_and_mutex_state() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    use filemap::channel::{broadcast, mpmc};
    use filemap::sync::{Event, LatestBytesWriter, Mutex};
    // mpmc: a helper sends 5, this process takes 2.
    let q = unique("cli-mpmc-state");
    let rx = mpmc::Receiver::create(&q, 8, 64).unwrap();
    let mut tx = Helper::spawn(&["mpmc-send", &q, "1", "5"]);
    assert_eq!(tx.line(), "ready");
    assert_eq!(tx.line(), "sent 5");
    tx.close_stdin();
    assert!(tx.wait().success());
    rx.recv().unwrap();
    rx.recv().unwrap();
    let a = activity(&q);
    assert_eq!(
        (&a["sent"], &a["received"], &a["queued"], &a["slots"]),
        (&5.into(), &2.into(), &3.into(), &8.into()),
        "{a}"
    );
    let text = ok(&["info", &q]);
    assert!(text.contains("queued:   3 of 8 slots [#"), "{text}");
    // Its handles are its ends: this process's receiver; the helper's
    // sender gave its lane back when it ended.
    let ends = a["ends"].as_array().unwrap();
    assert_eq!(ends.len(), 1, "{a}");
    assert_eq!(end(&a, "receiver")["pid"], std::process::id(), "{a}");
    assert_eq!(end(&a, "receiver")["state"], "live", "{a}");
    // A sender that is killed stays as a dead end until its lane is taken over.
    let doomed = Helper::spawn(&["mpmc-send", &q, "2", "0"]); // sends until killed
    assert_eq!(doomed.line(), "ready");
    let pid = doomed.pid();
    doomed.kill();
    let a = activity(&q);
    assert_eq!(end(&a, "sender")["pid"], pid, "{a}");
    assert_eq!(end(&a, "sender")["state"], "dead", "{a}");
    let text = ok(&["info", &q]);
    assert!(
        text.contains(&format!("sender:   pid {pid}, dead")),
        "{text}"
    );

    // broadcast: what was sent, and the sender's end.
    let b = unique("cli-bcast-state");
    let mut btx = broadcast::Sender::create(&b, 4, 16).unwrap();
    for _ in 0..7 {
        btx.send(b"x").unwrap();
    }
    let a = activity(&b);
    assert_eq!((&a["sent"], &a["slots"]), (&7.into(), &4.into()), "{a}");
    assert!(a["received"].is_null() && a["queued"].is_null(), "{a}");
    assert_eq!(end(&a, "sender")["state"], "live", "{a}");

    // Latest: its version; event: its permits.
    let l = unique("cli-latest-state");
    let mut w = LatestBytesWriter::create(&l, &[0; 8]).unwrap();
    for i in 1..=3u8 {
        w.write(&[i; 8]).unwrap();
    }
    let a = activity(&l);
    assert_eq!(
        (&a["version"], &a["writing"], &a["size"]),
        (&3.into(), &false.into(), &8.into()),
        "{a}"
    );
    let e = unique("cli-event-state");
    let ev = Event::create(&e).unwrap();
    ev.notify_one();
    ev.notify_one();
    assert_eq!(activity(&e)["permits"], 2);
    assert!(ok(&["info", &e]).contains("permits:  2"));

    // Mutex: free, held by a helper, then its holder died.
    let m = unique("cli-mutex-state");
    let mx = Mutex::<[u64; 8]>::create(&m, &[0; 8]).unwrap();
    assert_eq!(activity(&m)["lock"], "free");
    let holder = Helper::spawn(&["mutex-hold", &m]);
    assert_eq!(holder.line(), "locked");
    let a = activity(&m);
    assert_eq!(
        (&a["lock"], &a["holder"]),
        (&"held".into(), &holder.pid().into()),
        "{a}"
    );
    let pid = holder.pid();
    holder.kill();
    let a = activity(&m);
    assert_eq!(
        (&a["lock"], &a["holder"]),
        (&"owner died".into(), &pid.into()),
        "{a}"
    );
    assert!(ok(&["info", &m]).contains(&format!("lock:     owner died (pid {pid})")));
    // Observing took nothing: the next locker is the one told.
    assert!(mx.lock().unwrap().previous_owner_died());
}

// A hostile writer's words: `info` says corrupt and why, and does not fail.
#[test]
fn info_shows_a_corrupt_channel_as_corrupt_with_the_reason() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    use filemap::{Access, Mapping, ViewAccess};
    let name = unique("cli-corrupt-state");
    let _tx = filemap::channel::spsc::Sender::create(&name, 4096).unwrap();
    let m = Mapping::open(&name, Access::ReadWrite).unwrap();
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    // The receiver's index (header + 64) made odd: no receiver writes that.
    v.write_at(128 + 64, &3u64.to_ne_bytes()).unwrap();
    let a = activity(&name);
    assert_eq!(a["status"], "corrupt", "{a}");
    let reason = a["reason"].as_str().unwrap();
    assert!(reason.contains("receiver's index 3"), "{reason}");
    let text = ok(&["info", &name]);
    assert!(
        text.contains("activity: corrupt: the receiver's index 3"),
        "{text}"
    );
    // More taken than sent.
    v.write_at(128 + 64, &0u64.to_ne_bytes()).unwrap();
    v.write_at(128 + 72, &5u64.to_ne_bytes()).unwrap();
    let a = activity(&name);
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("5 messages taken of 0 sent"),
        "{a}"
    );
}

/// `top --once --json`: the producer's rate, within 20 % of what the
/// producer itself counted; and a corrupt header shown as corrupt.
#[cfg(target_os = "linux")]
#[test]
fn top_once_json_gives_the_producers_rate_and_shows_corruption() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    use std::time::Duration;
    let name = unique("cli-top-rate");
    let tx = filemap::channel::spsc::Sender::create(&name, 1 << 16).unwrap();
    let rx = Helper::spawn(&["spsc-drain", &name, "100000000"]);
    assert_eq!(rx.line(), "ready");
    // The producer: 5,000 messages a second, for as long as `top` takes,
    // counting what it sends.
    let (stop, producer) = paced_producer(tx, Duration::from_micros(200));
    std::thread::sleep(Duration::from_millis(300)); // the schedule is running
    let json = ok(&[
        "top",
        "--once",
        "--json",
        "--interval",
        "1",
        "--filter",
        &name,
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, took) = producer.join().unwrap();
    let own = sent as f64 / took.as_secs_f64();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let objects = v["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{json}");
    let o = &objects[0];
    assert_eq!(
        (&o["name"], &o["kind"]),
        (&name.clone().into(), &"spsc".into()),
        "{o}"
    );
    let rate = o["msgs_per_s"].as_f64().expect("a rate");
    assert!(
        (rate - own).abs() <= 0.2 * own,
        "top says {rate:.0} msg/s, the producer counted {own:.0} ({sent} in {took:?})"
    );
    // 8-byte messages take 16 ring bytes each.
    let bytes = o["bytes_per_s"].as_f64().unwrap();
    assert!((bytes - 16.0 * rate).abs() <= 0.2 * 16.0 * rate, "{o}");
    assert_eq!(o["status"], "ok", "{o}");
    assert_eq!(o["stalled"], false, "{o}");
    drop(rx);

    // A torn header: corrupt, with the reason, in the same listing.
    let bad = unique("cli-top-corrupt");
    let _keep = filemap::channel::spsc::Sender::create(&bad, 4096).unwrap();
    let m = filemap::Mapping::open(&bad, filemap::Access::ReadWrite).unwrap();
    m.view(.., filemap::ViewAccess::ReadWrite)
        .unwrap()
        .write_at(128 + 64, &5u64.to_ne_bytes())
        .unwrap();
    let json = ok(&[
        "top",
        "--once",
        "--json",
        "--interval",
        "0.1",
        "--filter",
        &bad,
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let o = &v["objects"][0];
    assert_eq!(o["status"], "corrupt", "{o}");
    assert!(o["reason"].as_str().unwrap().contains("index 5"), "{o}");
    let text = ok(&["top", "--once", "--interval", "0.1", "--filter", &bad]);
    assert!(
        text.contains(&format!("!{bad}")) && text.contains("corrupt"),
        "{text}"
    );
}

/// A stalled receiver: messages queued, none taken between two readings.
#[cfg(target_os = "linux")]
#[test]
fn top_marks_a_stalled_receiver() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    let name = unique("cli-top-stall");
    let mut tx = filemap::channel::spsc::Sender::create(&name, 4096).unwrap();
    for i in 0..5u8 {
        tx.send(&[i; 4]).unwrap();
    }
    let rx = Helper::spawn(&["spsc-take", &name, "2", "release"]);
    assert_eq!(rx.line(), "took 2");
    let json = ok(&[
        "top",
        "--once",
        "--json",
        "--interval",
        "0.2",
        "--filter",
        &name,
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let o = &v["objects"][0];
    assert_eq!(
        (&o["stalled"], &o["queued"]),
        (&true.into(), &3.into()),
        "{o}"
    );
    assert_eq!(o["msgs_per_s"], 0.0, "{o}");
}

/// The live view in a real terminal (tmux): drawn, redrawn at 80x24,
/// and the terminal given back after `q` and after a panic.
#[cfg(target_os = "linux")]
#[test]
fn top_draws_in_a_terminal_fits_80x24_and_restores_it_on_q_and_on_panic() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    use std::time::{Duration, Instant};
    // Short enough to show whole at 80 columns.
    let name = unique("top");
    let mut tx = filemap::channel::spsc::Sender::create(&name, 4096).unwrap();
    tx.send(b"hello").unwrap();
    let socket = std::env::temp_dir().join(unique("tmux"));
    let tmux = |args: &[&str]| -> String {
        let o = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
            .expect("tmux (installed by .ci/install)");
        assert!(o.status.success(), "tmux {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let end = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < end, "tmux: {what} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let exe = env!("CARGO_BIN_EXE_filemap");
    // A session that outlives the others, so that the server does not end
    // (and race the next session) when one is killed.
    tmux(&["new-session", "-d", "-s", "keep", "sleep 600"]);
    for panic in [false, true] {
        // A shell stays after `top` ends, so that the terminal's state can
        // be asked of tmux.
        let cmd = format!(
            "sh -c '{}FILEMAP_SWEEP=0 {exe} top --interval 0.3 --filter {name}; echo EXITED; sleep 120'",
            if panic { "FILEMAP_TOP_TEST_PANIC=1 " } else { "" }
        );
        tmux(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ]);
        let screen = || tmux(&["capture-pane", "-p", "-t", "top"]);
        let exited = || screen().contains("EXITED");
        if !panic {
            wait_for("the first screen", &|| screen().contains(&name));
            let first = screen();
            assert!(first.contains("filemap top: 1 object,"), "{first}");
            assert!(first.contains("MSG/S") && first.contains("spsc"), "{first}");
            // While it runs: the alternate screen, the cursor hidden.
            let state = tmux(&[
                "display",
                "-p",
                "-t",
                "top",
                "#{alternate_on} #{cursor_flag}",
            ]);
            assert_eq!(state.trim(), "1 0");
            tmux(&["resize-window", "-t", "top", "-x", "80", "-y", "24"]);
            wait_for("a redraw at 80x24", &|| {
                let s = screen();
                s.lines().count() <= 24 && s.contains(&name) && s.contains("q quit")
            });
            let small = screen();
            assert!(small.lines().all(|l| l.chars().count() <= 80), "{small}");
            assert!(small.contains("LAST MINUTE"), "{small}");
            // Keys: sort, detail (any key closes it), filter.
            tmux(&["send-keys", "-t", "top", "s"]);
            wait_for("sort by fill", &|| screen().contains("sort fill"));
            tmux(&["send-keys", "-t", "top", "Enter"]);
            wait_for("the detail", &|| {
                let s = screen();
                s.contains("messages: 1 sent, 0 received") && s.contains("any key closes")
            });
            tmux(&["send-keys", "-t", "top", "x"]);
            wait_for("the detail closed", &|| {
                !screen().contains("any key closes")
            });
            // The filter line starts with the filter in force: erase it.
            tmux(&["send-keys", "-t", "top", "/"]);
            tmux(&["send-keys", "-t", "top", "-N", "40", "BSpace"]);
            tmux(&["send-keys", "-t", "top", "-l", "no-such-*"]);
            tmux(&["send-keys", "-t", "top", "Enter"]);
            wait_for("the filter", &|| {
                let s = screen();
                s.contains("filter no-such-*") && s.contains("0 objects") && !s.contains(&name)
            });
            tmux(&["send-keys", "-t", "top", "q"]);
        }
        wait_for("top to end", &|| exited());
        // The terminal is given back: the alternate screen left, the cursor
        // shown.
        let state = tmux(&[
            "display",
            "-p",
            "-t",
            "top",
            "#{alternate_on} #{cursor_flag}",
        ]);
        assert_eq!(
            state.trim(),
            "0 1",
            "alternate screen, cursor (panic: {panic})"
        );
        if panic {
            let s = screen();
            assert!(
                s.contains("FILEMAP_TOP_TEST_PANIC"),
                "the panic message: {s}"
            );
        }
        tmux(&["kill-session", "-t", "top"]);
    }
    // `c` removes stale objects, after asking; Ctrl-C quits.
    let stale = unique("topst");
    holder(&stale, "8K").kill();
    let cmd = format!(
        "sh -c 'FILEMAP_SWEEP=0 {exe} top --interval 0.3 --filter {stale}; echo EXITED; sleep 120'"
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "80",
        "-y",
        "24",
        &cmd,
    ]);
    let screen = || tmux(&["capture-pane", "-p", "-t", "top"]);
    wait_for("the stale object", &|| screen().contains(&stale));
    tmux(&["send-keys", "-t", "top", "c"]);
    wait_for("the question", &|| {
        screen().contains(&format!("remove 1 stale object ({stale})? y/n"))
    });
    tmux(&["send-keys", "-t", "top", "y"]);
    wait_for("the removal", &|| {
        screen().contains("removed 1 of 1 stale objects")
    });
    assert!(matches!(
        filemap::Mapping::open(&stale, filemap::Access::Read),
        Err(filemap::Error::NotFound { .. })
    ));
    tmux(&["send-keys", "-t", "top", "C-c"]);
    wait_for("top to end on Ctrl-C", &|| screen().contains("EXITED"));
    let state = tmux(&[
        "display",
        "-p",
        "-t",
        "top",
        "#{alternate_on} #{cursor_flag}",
    ]);
    assert_eq!(state.trim(), "0 1", "after Ctrl-C");
    tmux(&["kill-session", "-t", "top"]);
    // The terminal goes away under it (the tmux server killed, as a dropped
    // SSH session): top ends, and does not spin on a dead terminal.
    let cmd = format!("FILEMAP_SWEEP=0 {exe} top --interval 0.3 --filter {name}");
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "gone",
        "-x",
        "80",
        "-y",
        "24",
        &cmd,
    ]);
    wait_for("the view", &|| {
        tmux(&["capture-pane", "-p", "-t", "gone"]).contains("q quit")
    });
    let pid = tmux(&["display", "-p", "-t", "gone", "#{pane_pid}"]);
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(std::path::Path::new(&proc_dir).exists(), "{proc_dir}");
    let _ = Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .arg("kill-server")
        .stderr(Stdio::null())
        .status();
    wait_for("top to end with its terminal", &|| {
        // Gone, or a zombie its dead parent left.
        std::fs::read_to_string(format!("{proc_dir}/stat"))
            .map_or(true, |st| st.split_whitespace().nth(2) == Some("Z"))
    });
    let _ = Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .arg("kill-server")
        .stderr(Stdio::null())
        .status();
}

// `hz`: the rate from the counters, any channel kind, nothing taken.
#[test]
fn hz_prints_a_channels_rate_window_by_window() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    use std::time::Duration;
    let name = unique("cli-hz");
    let tx = filemap::channel::spsc::Sender::create(&name, 1 << 16).unwrap();
    let rx = Helper::spawn(&["spsc-drain", &name, "100000000"]);
    assert_eq!(rx.line(), "ready");
    let (stop, producer) = paced_producer(tx, Duration::from_micros(250));
    let out = ok(&["hz", &name, "--window", "0.5", "--count", "3"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, took) = producer.join().unwrap();
    let own = sent as f64 / took.as_secs_f64();
    let rates: Vec<f64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("rate: "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rates.len(), 3, "{out}");
    let mean = rates.iter().sum::<f64>() / 3.0;
    assert!(
        (mean - own).abs() <= 0.2 * own,
        "hz says {mean:.0} msg/s, the producer counted {own:.0}: {out}"
    );
    assert!(out.contains("bytes: "), "{out}");
    drop(rx);
    // Not a channel: refused, saying what it measures.
    let ev = unique("cli-hz-event");
    let _e = filemap::sync::Event::create(&ev).unwrap();
    let o = run(&["hz", &ev, "--count", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not a channel or a Latest cell"),
        "{}",
        stderr(&o)
    );
}

// `echo`: a broadcast channel's messages as one more receiver (the others
// still get them), a Latest cell's value; spsc and mpmc refused.
#[test]
fn echo_prints_broadcast_messages_and_latest_values_and_refuses_spsc() {
    let _stale = STALE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    use filemap::channel::broadcast;
    let name = unique("cli-echo");
    let mut tx = broadcast::Sender::create(&name, 16, 64).unwrap();
    let mut other = broadcast::Receiver::open(&name).unwrap();
    let echo = Helper::spawn_cmd(
        filemap().args(["echo", &name, "--count", "3"]),
        "filemap echo",
    );
    assert_eq!(
        echo.line(),
        format!("echoing `{name}` (broadcast, as one more receiver)")
    );
    tx.send(b"hello").unwrap();
    tx.send(&[0, 1, 0xff]).unwrap();
    tx.send(b"third").unwrap();
    assert_eq!(echo.line(), "[0] hello");
    assert_eq!(echo.line(), "[1] 00 01 ff");
    assert_eq!(echo.line(), "[2] third");
    // The channel's own receiver got all three as well.
    for want in [&b"hello"[..], &[0, 1, 0xff], b"third"] {
        assert_eq!(other.try_recv().unwrap().unwrap().data, want);
    }
    let mut echo = echo;
    assert!(echo.wait().success());
    let hex = unique("cli-echo-hex");
    let mut t2 = broadcast::Sender::create(&hex, 4, 8).unwrap();
    let e2 = Helper::spawn_cmd(
        filemap().args(["echo", &hex, "--count", "1", "--hex"]),
        "echo --hex",
    );
    e2.line();
    t2.send(b"AB").unwrap();
    assert_eq!(e2.line(), "[0] 41 42");

    // Latest: the current value and its version, then the next.
    let cell = unique("cli-echo-latest");
    let mut w = filemap::sync::LatestBytesWriter::create(&cell, b"v-one").unwrap();
    w.write(b"v-two").unwrap();
    let e3 = Helper::spawn_cmd(
        filemap().args(["echo", &cell, "--count", "2"]),
        "echo latest",
    );
    assert_eq!(e3.line(), "version 1: v-two");
    w.write(b"v-3!!").unwrap();
    assert_eq!(e3.line(), "version 2: v-3!!");

    // spsc: refused, saying why and what to use.
    let q = unique("cli-echo-spsc");
    let _s = filemap::channel::spsc::Sender::create(&q, 4096).unwrap();
    let o = run(&["echo", &q]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("is an spsc channel")
            && e.contains("take messages from its consumer")
            && e.contains("filemap hz"),
        "{e}"
    );
}
