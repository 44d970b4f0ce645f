//! The C API from C and C++ programs, with real processes: the programs in
//! `tests/c/` and `examples/` are compiled with `-Wall -Wextra -Werror`
//! against the static library and run under AddressSanitizer (Linux), and
//! this test process is the Rust peer.
//!
//! On Windows (under Wine in CI) the programs cannot be compiled from
//! here: `.ci/test` builds them with mingw first and names their folder
//! in `FILEMAP_C_PROGRAMS`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use filemap::channel::{broadcast, mpmc, spsc};
use filemap::{Access, Error, Mapping};
use filemap_testkit::{unique, wait_until, Helper};

const COUNT: u64 = 100_000;
const MAX_MESSAGE: usize = 64;
const WAIT: Duration = Duration::from_secs(20);

/// The folder cargo builds this crate's libraries into (`target/<profile>`
/// or `target/<triple>/<profile>`): this test runs from its `deps/`.
#[cfg(not(windows))]
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

#[cfg(not(windows))]
fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds this crate's libraries (`libfilemap_c.a` and the shared one):
/// `cargo test` builds only the rlib the tests link, and the C programs
/// need the static library, current. The same profile, target and target
/// folder as this test.
#[cfg(not(windows))]
fn build_libraries() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = profile_dir();
        let profile = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let parent = dir.parent().unwrap();
        // target/<triple>/<profile> when built with --target.
        let (target_dir, triple) = match parent.file_name().and_then(|n| n.to_str()) {
            Some(t) if t.matches('-').count() >= 2 => (parent.parent().unwrap(), Some(t)),
            _ => (parent, None),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "filemap-c", "--lib"])
            .arg("--target-dir")
            .arg(target_dir);
        if profile == "release" {
            cmd.arg("--release");
        }
        if let Some(t) = triple {
            cmd.args(["--target", t]);
        }
        let st = cmd.status().expect("running cargo build -p filemap-c");
        assert!(st.success(), "cargo build -p filemap-c failed");
    });
}

/// `Libs.private` of the generated `filemap.pc`: the system libraries the
/// static library needs (so that the file's list is what gets tested).
#[cfg(not(windows))]
fn native_libs() -> Vec<String> {
    let pc = std::fs::read_to_string(profile_dir().join("filemap.pc")).expect("filemap.pc");
    let line = pc
        .lines()
        .find_map(|l| l.strip_prefix("Libs.private:"))
        .expect("a Libs.private line");
    line.split_whitespace().map(str::to_owned).collect()
}

/// Compiles `sources` into the program `name` (once per test run), C or
/// C++ (by the extension), with warnings as errors and AddressSanitizer.
#[cfg(not(windows))]
fn compile(name: &str, sources: &[&Path], std: &str) -> PathBuf {
    build_libraries();
    let out = profile_dir().join("c-tests");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join(name);
    let cpp = sources
        .iter()
        .any(|s| s.extension().is_some_and(|e| e == "cpp"));
    let compiler = if cpp { "g++" } else { "gcc" };
    let mut cmd = Command::new(compiler);
    cmd.arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-g", "-fsanitize=address"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .args(sources)
        .arg(profile_dir().join("libfilemap_c.a"))
        .args(native_libs())
        .arg("-o")
        .arg(&exe);
    let r = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    assert!(
        r.status.success(),
        "{compiler} failed on {sources:?}:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    exe
}

/// The program `name`, built once per test run.
fn program(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    #[cfg(windows)]
    let exe = {
        let dir = std::env::var_os("FILEMAP_C_PROGRAMS").unwrap_or_else(|| {
            panic!(
                "FILEMAP_C_PROGRAMS is not set: on Windows the C programs are built by \
                 .ci/test with mingw (see .ci/build-c-programs), not by this test"
            )
        });
        let exe = Path::new(&dir).join(format!("{name}.exe"));
        assert!(exe.exists(), "{} was not built", exe.display());
        exe
    };
    #[cfg(not(windows))]
    let exe = {
        let c = crate_dir();
        match name {
            "peer" => compile(name, &[&c.join("tests/c/peer.c")], "c11"),
            "selftest" => compile(name, &[&c.join("tests/c/selftest.c")], "c11"),
            "writer" => compile(name, &[&c.join("examples/writer.c")], "c11"),
            "reader" => compile(name, &[&c.join("examples/reader.c")], "c11"),
            "wrapper17" => compile(name, &[&c.join("tests/c/wrapper.cpp")], "c++17"),
            "wrapper20" => compile(name, &[&c.join("tests/c/wrapper.cpp")], "c++20"),
            _ => panic!("no program {name}"),
        }
    };
    built.insert(name.to_owned(), exe.clone());
    exe
}

/// Runs a program to its end (within the test's deadline) and insists on
/// success and a clean AddressSanitizer report.
fn run_ok(exe: &Path, args: &[&str]) -> String {
    let out: Output = Command::new(exe)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success() && !stderr.contains("Sanitizer"),
        "{} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        exe.display(),
        out.status
    );
    stdout
}

fn message_len(n: u64) -> usize {
    8 + ((n * 7) % 57) as usize
}

fn message_fill(n: u64, buf: &mut [u8]) {
    buf[..8].copy_from_slice(&n.to_le_bytes());
    for (k, b) in buf.iter_mut().enumerate().take(message_len(n)).skip(8) {
        *b = (n + k as u64) as u8;
    }
}

fn message(n: u64) -> Vec<u8> {
    let mut v = vec![0; message_len(n)];
    message_fill(n, &mut v);
    v
}

fn check(n: u64, got: &[u8]) {
    assert!(got == message(n), "message {n} arrived as {got:?}");
}

fn spawn_peer(args: &[&str]) -> Helper {
    Helper::spawn_cmd(Command::new(program("peer")).args(args), &args.join(" "))
}

// The whole API in one C process, with every documented bad input.
#[test]
fn every_call_and_every_bad_input_gives_its_documented_code() {
    let dir = std::env::temp_dir();
    let out = run_ok(
        &program("selftest"),
        &[&unique("c-self"), dir.to_str().unwrap()],
    );
    assert!(out.contains("checks passed"), "{out}");
}

#[cfg(not(windows))]
#[test]
fn the_cpp_wrapper_works_as_cpp17_and_cpp20() {
    for p in ["wrapper17", "wrapper20"] {
        let out = run_ok(&program(p), &[&unique(p)]);
        assert!(out.contains("checks passed"), "{out}");
    }
}

/// The C sender, this process the receiver: `COUNT` messages, each checked.
fn c_sends_rust_receives(kind: &str) {
    let name = unique(&format!("c2r-{kind}"));
    enum Rx {
        S(spsc::Receiver),
        M(mpmc::Receiver),
        B(broadcast::Receiver),
    }
    let rx = match kind {
        "spsc" => Rx::S(spsc::Receiver::create(&name, 1 << 16).unwrap()),
        "mpmc" => Rx::M(mpmc::Receiver::create(&name, 1024, MAX_MESSAGE as u64).unwrap()),
        _ => Rx::B(broadcast::Receiver::create(&name, 1 << 17, MAX_MESSAGE as u64).unwrap()),
    };
    let mut peer = spawn_peer(&["send", kind, &name, &COUNT.to_string()]);
    let mut rx = rx;
    let mut buf = Vec::new();
    for n in 0..COUNT {
        match &mut rx {
            Rx::S(r) => check(n, &r.recv_timeout(WAIT).unwrap().to_vec()),
            Rx::M(r) => {
                r.recv_into_timeout(&mut buf, WAIT).unwrap();
                check(n, &buf);
            }
            Rx::B(r) => {
                let m = r.recv_timeout(WAIT).unwrap();
                assert_eq!((m.seq, m.missed), (n, 0), "broadcast message {n}");
                check(n, &m.data);
            }
        }
    }
    assert_eq!(peer.line(), format!("sent {COUNT}"));
    assert!(peer.wait().success());
}

/// This process the sender (the odd messages reserved in place), the C
/// program the receiver (the odd ones borrowed in place).
fn rust_sends_c_receives(kind: &str) {
    let name = unique(&format!("r2c-{kind}"));
    let mut peer = spawn_peer(&["recv", kind, &name, &COUNT.to_string()]);
    assert_eq!(peer.line(), "ready");
    match kind {
        "spsc" => {
            let mut tx = spsc::Sender::open(&name).unwrap();
            for n in 0..COUNT {
                if n % 2 == 1 {
                    let mut r = tx.reserve_timeout(message_len(n), WAIT).unwrap();
                    r.write_at(0, &message(n)).unwrap();
                    r.commit();
                } else {
                    tx.send_timeout(&message(n), WAIT).unwrap();
                }
            }
        }
        "mpmc" => {
            let tx = mpmc::Sender::open(&name).unwrap();
            for n in 0..COUNT {
                if n % 2 == 1 {
                    let mut r = tx.reserve_timeout(message_len(n), WAIT).unwrap();
                    r.write_at(0, &message(n)).unwrap();
                    r.commit();
                } else {
                    tx.send_timeout(&message(n), WAIT).unwrap();
                }
            }
        }
        _ => {
            let mut tx = broadcast::Sender::open(&name).unwrap();
            for n in 0..COUNT {
                tx.send(&message(n)).unwrap();
            }
        }
    }
    let line = peer.line();
    assert!(
        line.starts_with(&format!("received {COUNT} checked")),
        "{line}"
    );
    assert!(peer.wait().success());
}

#[test]
fn spsc_c_writer_rust_reader_and_back_100000_messages() {
    c_sends_rust_receives("spsc");
    rust_sends_c_receives("spsc");
}

#[test]
fn mpmc_c_writer_rust_reader_and_back_100000_messages() {
    c_sends_rust_receives("mpmc");
    rust_sends_c_receives("mpmc");
}

#[test]
fn broadcast_c_writer_rust_reader_and_back_100000_messages() {
    c_sends_rust_receives("broadcast");
    rust_sends_c_receives("broadcast");
}

#[test]
fn a_c_holder_killed_leaves_no_name_behind() {
    let name = unique("c-hold");
    let peer = spawn_peer(&["hold", &name]);
    assert_eq!(peer.line(), "ready");
    drop(Mapping::open(&name, Access::Read).expect("the C holder's mapping"));
    peer.kill();
    wait_until(&format!("{name} is gone"), || {
        match Mapping::open(&name, Access::Read) {
            Err(Error::NotFound { .. }) => true,
            Ok(_) => false,
            Err(e) => panic!("{name}: expected NotFound, got {e:?}"),
        }
    });
}

#[test]
fn a_c_holder_killed_holding_the_mutex_is_reported_to_c() {
    let name = unique("c-mutex");
    let holder = spawn_peer(&["lock", &name]);
    assert_eq!(holder.line(), "locked");
    // This process keeps the name alive once the holder is gone (the same
    // mutex from Rust: it is held, and its value is the C holder's).
    let ours = filemap::sync::Mutex::<u64>::open(&name).unwrap();
    assert!(ours.try_lock().unwrap().is_none());
    holder.kill();
    let mut next = spawn_peer(&["relock", &name]);
    assert_eq!(next.line(), "owner_died=1 value=42");
    assert!(next.wait().success());
    // The robust mutex is whole again: a live holder is not reported.
    let mut again = spawn_peer(&["relock", &name]);
    assert_eq!(again.line(), "owner_died=0 value=42");
    assert!(again.wait().success());
    assert_eq!(ours.lock().unwrap().get(), 42);
}

// The Win32 tutorial, in C: the writer waits for Enter while the reader
// reads its message and leaves a reply.
#[test]
fn the_win32_tutorial_in_c_runs_as_two_processes() {
    let mut writer = Helper::spawn_cmd(&mut Command::new(program("writer")), "writer");
    let first = writer.line();
    assert_eq!(
        first,
        "created `Local\\MyFileMappingObject` (256 bytes) and wrote \"Message from first process.\""
    );
    assert_eq!(writer.line(), "run the reader now, then press Enter here");
    let out = run_ok(&program("reader"), &[]);
    assert_eq!(
        out.trim_end(),
        "read from `Local\\MyFileMappingObject`: \"Message from first process.\""
    );
    writer.send("");
    assert_eq!(
        writer.line(),
        "reply found in the mapping: \"Reply from second process.\""
    );
    assert!(writer.wait().success());
}

/// The generated pkg-config file and CMake package build the README's
/// three-line program, against the libraries of this build.
#[cfg(target_os = "linux")]
#[test]
fn pkg_config_and_cmake_build_the_readme_program() {
    build_libraries();
    let dir = profile_dir().join("c-tests").join(unique("pkg"));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("hello.c");
    std::fs::write(
        &src,
        "#include <filemap.h>\n\
         #include <stdio.h>\n\
         int main(void) {\n\
         \x20   FmMapping *m;\n\
         \x20   if (fm_mapping_create(\"hello-c\", 4096, &m) != FM_OK) { puts(fm_last_error_message()); return 1; }\n\
         \x20   puts(\"created hello-c\");\n\
         \x20   return fm_mapping_close(m);\n\
         }\n",
    )
    .unwrap();

    // pkg-config, static.
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "--static", "filemap"])
        .env("PKG_CONFIG_PATH", profile_dir())
        .output()
        .expect("pkg-config (installed by .ci/install)");
    assert!(flags.status.success(), "{flags:?}");
    let flags = String::from_utf8(flags.stdout).unwrap();
    let exe = dir.join("hello-pkg");
    // Static: the archive, not the shared library beside it.
    let flags = flags.replace("-lfilemap_c", "-l:libfilemap_c.a");
    let st = Command::new("gcc")
        .args(["-Wall", "-Wextra", "-Werror"])
        .arg(&src)
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(run_ok(&exe, &[]).trim(), "created hello-c");

    // pkg-config, shared, as the README shows it.
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "filemap"])
        .env("PKG_CONFIG_PATH", profile_dir())
        .output()
        .unwrap();
    let flags = String::from_utf8(flags.stdout).unwrap();
    let exe = dir.join("hello-shared");
    let st = Command::new("cc")
        .arg(&src)
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", profile_dir().display()))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(run_ok(&exe, &[]).trim(), "created hello-c");

    // CMake's find_package(filemap).
    std::fs::write(
        dir.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\n\
         project(hello C)\n\
         find_package(filemap 0.1 REQUIRED)\n\
         add_executable(hello hello.c)\n\
         target_link_libraries(hello filemap::filemap)\n",
    )
    .unwrap();
    let build = dir.join("build");
    let st = Command::new("cmake")
        .arg("-S")
        .arg(&dir)
        .arg("-B")
        .arg(&build)
        .arg(format!("-Dfilemap_DIR={}", profile_dir().display()))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("cmake (installed by .ci/install)");
    assert!(st.success(), "cmake configure");
    let st = Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "cmake build");
    assert_eq!(run_ok(&build.join("hello"), &[]).trim(), "created hello-c");
}
