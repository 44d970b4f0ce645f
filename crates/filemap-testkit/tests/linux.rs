//! Linux-only behaviour: /dev/shm details, permissions, other users, foreign
//! objects, and interoperation with Python's `multiprocessing.shared_memory`.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use filemap::{Access, Error, Lifetime, Mapping, Options, ViewAccess};
use filemap_testkit::{helper_path, hex, unique, Helper, OtherUser};

fn shm(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name)
}

// 8. new objects get exactly the mode asked for (default 0600), whatever the umask;
// transient ones carry the sticky bit that marks them for lifetime tracking.
#[test]
fn modes_are_exact_and_independent_of_umask() {
    for (umask, extra, want) in [
        ("000", None, 0o600),
        ("077", Some("mode=640"), 0o640),
        ("000", Some("mode=604"), 0o604),
    ] {
        let name = unique("mode");
        let mut args = vec!["--umask", umask, "create", &name, "4096"];
        args.extend(extra);
        let h = Helper::spawn(&args);
        assert_eq!(h.line(), "ok created 4096");
        let md = std::fs::metadata(shm(&name)).unwrap();
        assert_eq!(
            md.permissions().mode() & 0o777,
            want,
            "umask {umask} {extra:?}"
        );
        assert_eq!(
            md.permissions().mode() & 0o1000,
            0o1000,
            "transient objects carry S_ISVTX"
        );
        assert_eq!(md.len(), 4096);
        h.exit();
    }
    let name = unique("mode-p");
    let m = Options::new()
        .lifetime(Lifetime::Persistent)
        .create(&name, 4096)
        .unwrap();
    assert_eq!(m.lifetime(), Some(Lifetime::Persistent));
    assert_eq!(
        std::fs::metadata(shm(&name)).unwrap().permissions().mode() & 0o7777,
        0o2600,
        "persistent objects carry S_ISGID"
    );
    Mapping::remove(&name).unwrap();
}

// 4. read-only works on an object the caller cannot write.
#[test]
fn read_only_open_works_where_write_is_not_permitted() {
    let name = unique("perm");
    // Readable by all, writable by the owner only.
    let m = Options::new().mode(0o644).create(&name, 4096).unwrap();
    m.view(.., ViewAccess::ReadWrite)
        .unwrap()
        .write_at(0, b"owner's")
        .unwrap();
    // As `nobody` (who may read but not write it) when root...
    let as_other = OtherUser::new();
    let mut other = as_other.command();
    if !as_other.is_other {
        // ...else take write permission away from ourselves instead.
        std::fs::set_permissions(shm(&name), std::fs::Permissions::from_mode(0o1444)).unwrap();
    }
    let mut rw = Helper::spawn_cmd(other.args(["open", &name, "rw"]), "open rw as another user");
    let line = rw.line();
    assert!(
        line.starts_with("err AccessDenied") && line.contains(&name) && line.contains("open"),
        "{line}"
    );
    rw.wait();
    let mut other = as_other.command();
    let mut ro = Helper::spawn_cmd(other.args(["open", &name, "r"]), "open r as another user");
    assert_eq!(ro.line(), "ok opened 4096");
    assert_eq!(ro.ok("read 0 7"), hex(b"owner's"));
    assert!(ro
        .ask(&format!("write 0 {}", hex(b"x")))
        .starts_with("err AccessDenied"));
    assert!(ro.ask("add 0 1").starts_with("err AccessDenied"));
    // Copy-on-write is allowed read-only, and private.
    assert_eq!(ro.ok(&format!("cow 0 {}", hex(b"x"))), hex(b"x"));
    ro.exit();
    assert_eq!(m.view(0..7, ViewAccess::Read).unwrap().to_vec(), b"owner's");
}

// 8. an opener never takes a size-0 object as ready.
#[test]
fn size_zero_object_is_not_ready_then_times_out() {
    let name = unique("zero");
    std::fs::File::create(shm(&name)).unwrap();
    let t = std::time::Instant::now();
    match Options::new()
        .ready_timeout(Duration::from_millis(200))
        .open(&name)
    {
        Err(e @ Error::NotReady { .. }) => {
            assert!(
                e.to_string().contains("size 0") && e.to_string().contains(&name),
                "{e}"
            );
            assert!(t.elapsed() >= Duration::from_millis(200));
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    std::fs::remove_file(shm(&name)).unwrap();
}

#[test]
fn opener_waits_for_a_foreign_creator_to_set_the_size() {
    let name = unique("later");
    let f = std::fs::File::create(shm(&name)).unwrap();
    let n2 = name.clone();
    let opener = std::thread::spawn(move || {
        Options::new()
            .ready_timeout(Duration::from_secs(60))
            .open(&n2)
    });
    // The opener is polling; give the object its size now.
    f.set_len(8192).unwrap();
    let m = opener.join().unwrap().unwrap();
    assert_eq!(m.len(), 8192);
    drop(m);
    // Foreign objects (no sticky bit) are never removed by filemap's lifetime rule.
    assert!(shm(&name).exists());
    std::fs::remove_file(shm(&name)).unwrap();
}

// 6. after a crash the stale name is removed by the next filemap call that meets it.
#[test]
fn stale_name_left_by_a_killed_holder_is_cleaned_on_next_open() {
    let name = unique("stale");
    let h = Helper::spawn(&["create", &name, "4096"]);
    h.line();
    h.kill();
    // The kernel cannot unlink for a killed process: the name stays, stale,
    // unless another test's process swept it meanwhile (its first `create`
    // sweeps this user's stale names). Either way it is absent to an opener.
    assert!(matches!(
        Mapping::open(&name, Access::Read),
        Err(Error::NotFound { .. })
    ));
    assert!(!shm(&name).exists(), "the stale name is removed");
}

#[test]
fn symlinks_in_dev_shm_are_not_followed() {
    let name = unique("link");
    std::os::unix::fs::symlink("/etc/hostname", shm(&name)).unwrap();
    match Mapping::open(&name, Access::Read) {
        Err(Error::AccessDenied { reason, .. }) => {
            assert!(reason.contains("symbolic link"), "{reason}")
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    std::fs::remove_file(shm(&name)).unwrap();
}

#[test]
fn os_errors_name_the_object_and_the_call() {
    let dir = std::env::temp_dir();
    match Mapping::from_path(&dir, 0, Access::ReadWrite) {
        Err(e @ Error::Os { call: "open", .. }) => {
            assert_eq!(e.os_code(), Some(21), "EISDIR");
            let msg = e.to_string();
            assert!(
                msg.contains(&dir.display().to_string()) && msg.contains("open failed"),
                "{msg}"
            );
        }
        other => panic!("expected Os, got {other:?}"),
    }
}

// 7. Python's SharedMemory and filemap open the same bytes, both ways.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const PY_ATTACH: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1])
# Attaching registers the name with the tracker (Python < 3.13), which would
# unlink it at exit: we only attached, so unregister.
resource_tracker.unregister(shm._name, "shared_memory")
print(bytes(shm.buf[:16]).hex(), shm.size)
shm.buf[100:112] = b"from python!"
shm.close()
"#;

const PY_CREATE: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=int(sys.argv[2]))
shm.buf[:13] = b"python wrote!"
# Keep the object after this process exits.
resource_tracker.unregister(shm._name, "shared_memory")
shm.close()
"#;

#[test]
fn python_reads_what_filemap_wrote_and_the_reverse() {
    let name = unique("py");
    let m = Mapping::create(&name, 4096).unwrap();
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    v.write_at(0, b"filemap wrote it").unwrap();
    let out = python(PY_ATTACH, &[&name]);
    assert_eq!(out, format!("{} 4096", hex(b"filemap wrote it")));
    let mut buf = [0u8; 12];
    v.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from python!");

    let name = unique("py2");
    python(PY_CREATE, &[&name, "12345"]);
    let m = Mapping::open(&name, Access::ReadWrite).unwrap();
    assert_eq!(m.len(), 12345);
    assert_eq!(
        m.view(0..13, ViewAccess::Read).unwrap().to_vec(),
        b"python wrote!"
    );
    drop(m);
    assert!(
        shm(&name).exists(),
        "a Python-made object is not filemap's to remove"
    );
    Mapping::remove(&name).unwrap();
    assert!(!shm(&name).exists());
}

/// Anyone may `mkfifo /dev/shm/NAME`: opening it must not block (a FIFO's
/// open waits for a writer), and every way in refuses it with a clear error.
/// The helpers run in processes of their own, so a regression fails the
/// test at the deadline instead of hanging it.
#[test]
fn a_fifo_at_a_name_is_refused_not_waited_on() {
    let name = unique("fifo");
    let path = shm(&name);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
    for setup in [vec!["open", &name, "r"], vec!["open", &name, "rw"]] {
        let h = Helper::spawn(&setup);
        let line = h.line();
        assert!(
            line.starts_with("err AccessDenied") && line.contains("a FIFO (named pipe)"),
            "{setup:?}: {line}"
        );
    }
    let h = Helper::spawn(&["create-or-open", &name, "4096"]);
    let line = h.line();
    assert!(
        line.contains("a FIFO (named pipe)"),
        "create-or-open: {line}"
    );
    // Inspection skips it (it is no shared-memory object) without blocking.
    let t = std::time::Instant::now();
    assert!(matches!(
        filemap::inspect::info(&name),
        Err(Error::NotFound { .. })
    ));
    assert!(filemap::inspect::list()
        .unwrap()
        .iter()
        .all(|o| o.name != name));
    assert!(t.elapsed() < Duration::from_secs(10));
    std::fs::remove_file(&path).unwrap();
}

/// Another user's object that this user may not open: whether it is held
/// cannot be told, so it is `unknown` (it used to show as `stale`), and
/// clean keeps it.
#[test]
fn an_object_this_user_may_not_open_is_unknown_not_stale() {
    use filemap::inspect::State;
    let name = unique("unknown");
    let m = Options::new().mode(0o600).create(&name, 4096).unwrap();
    let as_other = OtherUser::new();
    let mut other = as_other.command();
    if !as_other.is_other {
        // Without root: take our own read permission away instead.
        std::fs::set_permissions(shm(&name), std::fs::Permissions::from_mode(0o1000)).unwrap();
    }
    let mut h = Helper::spawn_cmd(other.args(["inspect", &name]), "inspect as another user");
    let line = h.line();
    assert_eq!(line, "state unknown", "{line}");
    h.wait();
    // Where this process can look, it is live (we hold it).
    if as_other.is_other {
        assert_eq!(filemap::inspect::info(&name).unwrap().state, State::Live);
    }
    drop(m);
}

/// A size the system cannot give is refused at once with NoSpace naming
/// the size and what is available; it used to go on reserving pages (1.1
/// GiB after 140 ms for 1 TiB of memfd) toward the OOM killer.
#[test]
fn sizes_beyond_memory_and_swap_are_refused_up_front() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb = |field: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| {
                v.trim_start_matches(':')
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    // Twice all the memory and swap there is, and at least 1 TiB.
    let huge = (2 * 1024 * (kb("MemTotal") + kb("SwapTotal"))).max(1 << 40);
    let t = std::time::Instant::now();
    match Mapping::anonymous(huge) {
        Err(e @ Error::NoSpace { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&huge.to_string()) && msg.contains("can give about"),
                "{msg}"
            );
        }
        other => panic!("anonymous({huge}): expected NoSpace, got {other:?}"),
    }
    let name = unique("huge");
    assert!(
        matches!(Mapping::create(&name, huge), Err(Error::NoSpace { .. })),
        "create"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(!shm(&name).exists(), "nothing is left under the name");
}

/// A process that may only read an object cannot lock its owner out: with
/// `flock`, it could take the lifetime lock exclusively on a stale object
/// (or upgrade its shared lock once the owner's holders were gone), and the
/// owner's open, create and create_or_open then failed with NotReady. Now
/// the lifetime lock needs write access for its exclusive step.
#[test]
fn a_reader_cannot_lock_the_owner_out() {
    let name = unique("lockout");
    // Readable by all, writable by the owner only.
    let m = Options::new().mode(0o644).create(&name, 4096).unwrap();
    let as_other = OtherUser::new();
    let mut other = as_other.command();
    let path = shm(&name);
    let mut attacker = Helper::spawn_cmd(
        other.args(["lock-attack", path.to_str().unwrap()]),
        "lock-attack as a reader",
    );
    // flock still works (it needs no write access), but filemap no longer
    // uses it; a write lock is refused.
    assert_eq!(attacker.line(), "flock ok fcntl refused");
    // The owner's holders exit: the object is stale, whatever the reader holds.
    drop(m);
    let quick = Options::new().ready_timeout(Duration::from_millis(500));
    let t = std::time::Instant::now();
    // Whatever the reader holds, the owner is never refused with NotReady (a
    // reader's flock used to make these fail). The object is stale and is
    // removed, unless a child that another test thread is forking right now
    // briefly shares our descriptor; either way the calls succeed.
    let r = quick.clone().access(Access::Read).open(&name);
    assert!(
        matches!(r, Ok(_) | Err(Error::NotFound { .. })),
        "the owner's open: {r:?}"
    );
    drop(r);
    let (again, _) = quick
        .create_or_open(&name, 8192)
        .expect("the owner makes or opens the name again");
    drop(again);
    let again = quick.create(&unique("lockout-new"), 4096);
    assert!(again.is_ok(), "{again:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    attacker.send("exit");
    attacker.wait();
}

/// A forked child shares its parent's views but not its hold on the name
/// (as a Win32 child gets no handle that was not made inheritable): once
/// the parent and a third holder let go, the name is gone although the
/// child still maps the object, and the child's views keep the memory.
/// (A child that should keep the name opens it, or is handed it with
/// `inherit`: see the next test.) Before issue 19 the child's copy of the
/// lock kept the name, which is also how a child between `fork` and `exec`
/// leaked names.
#[test]
fn a_forked_child_keeps_its_views_but_not_the_name() {
    let name = unique("fork");
    let third = Mapping::create(&name, 4096).unwrap();
    third
        .view(0..1, ViewAccess::ReadWrite)
        .unwrap()
        .write_at(0, &[42])
        .unwrap();
    let mut h = Helper::spawn(&["fork-hold", &name]);
    assert_eq!(h.line(), "parent dropped");
    assert!(shm(&name).exists(), "the third holder keeps the name");
    drop(third);
    // Gone with the last hold (at once, unless a child another test thread
    // is starting copied a descriptor of ours: then within milliseconds).
    filemap_testkit::wait_until("the name goes with the last hold", || !shm(&name).exists());
    let fresh = Mapping::create(&name, 4096).expect("the name is free again");
    let tmp = std::env::temp_dir();
    std::fs::write(tmp.join(format!("{name}.release")), b"").unwrap();
    let seen = tmp.join(format!("{name}.seen"));
    filemap_testkit::wait_until("the child reports its view", || seen.exists());
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "42",
        "the child's view still maps the old object"
    );
    std::fs::remove_file(&seen).unwrap();
    drop(fresh);
    h.send("exit");
    h.wait();
}

/// A named mapping handed to a child (`inherit`, read-only or read-write)
/// keeps its name while the child holds it, after the parent let go: no
/// fresh `create` can make a second object under the name meanwhile.
#[test]
fn an_inherited_named_mapping_keeps_its_name_while_the_child_holds_it() {
    for access in [Access::Read, Access::ReadWrite] {
        let name = unique("inherit-named");
        let m = Mapping::create(&name, 4096).unwrap();
        let inh = m.inherit(access).unwrap();
        let mut cmd = Command::new(helper_path());
        cmd.arg("inherited").env("FILEMAP_TOKEN", inh.token());
        let mut child = Helper::spawn_cmd(&mut cmd, "inherited named");
        assert_eq!(child.line(), "ok inherited 4096", "{access:?}");
        drop(inh);
        drop(m);
        assert!(shm(&name).exists(), "{access:?}: the name lives");
        assert!(
            matches!(
                Mapping::create(&name, 4096),
                Err(Error::AlreadyExists { .. })
            ),
            "{access:?}: no split brain"
        );
        child.send("exit");
        child.wait();
        // The child held it without its name: once it is gone the object is
        // stale, and the next call that meets the name removes it (at once,
        // unless a child another test thread is forking briefly shares one
        // of our descriptors).
        filemap_testkit::wait_until("the stale name is removed", || {
            matches!(
                Mapping::open(&name, Access::Read),
                Err(Error::NotFound { .. })
            )
        });
        assert!(!shm(&name).exists());
    }
}

/// A child given a read-only hand-over of an unnamed mapping cannot open
/// the descriptor again read-write through `/proc/self/fd` and write into the
/// parent's object (the memfd's mode becomes 0400 on a read-only
/// hand-over). As root the child runs as `nobody`: root bypasses file
/// permissions, which is the documented limit of this guarantee.
#[test]
fn a_read_only_hand_over_cannot_be_reopened_for_writing() {
    let m = Mapping::anonymous(4096).unwrap();
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    v.write_at(0, b"parent").unwrap();
    let inh = m.inherit(Access::Read).unwrap();
    let as_other = OtherUser::new();
    let mut cmd = as_other.command();
    cmd.arg("reopen-inherited")
        .env("FILEMAP_TOKEN", inh.token());
    let mut child = Helper::spawn_cmd(&mut cmd, "reopen an inherited read-only descriptor");
    assert_eq!(child.line(), "reopen refused");
    child.wait();
    drop(inh);
    // The parent keeps writing, through its view and through new ones.
    v.write_at(0, b"still").unwrap();
    m.view(.., ViewAccess::ReadWrite)
        .unwrap()
        .write_at(8, b"new view")
        .unwrap();
}

// Issue 11, item 1 on Linux: the file record. An opener needs the file's own
// permissions; a replaced, shrunk or removed file is reported, never mapped;
// a damaged record is refused; foreign tools see the record.
#[test]
fn a_named_file_mapping_checks_the_file_and_its_permissions() {
    let name = unique("nfile-perm");
    let dir = std::env::temp_dir().join(unique("nfile-dir"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("data.bin");
    let m = Options::new()
        .mode(0o644)
        .create_file(&name, &path, 8192)
        .unwrap();
    assert_eq!(
        m.file_path(),
        Some(std::fs::canonicalize(&path).unwrap().to_str().unwrap())
    );
    // What foreign tools see: a small record with the set-user-ID mark.
    let md = std::fs::metadata(shm(&name)).unwrap();
    assert!(md.len() < 200, "the record is small: {}", md.len());
    assert_eq!(md.permissions().mode() & 0o7777, 0o5644);
    let info = filemap::inspect::info(&name).unwrap();
    assert_eq!(info.backing, filemap::Backing::File);
    assert_eq!(info.size, 8192);
    assert_eq!(info.file.as_deref(), m.file_path());

    // The file is 0600 (ours): another user may open the record (0644) but
    // not the file, and is told so, naming the file.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let as_other = OtherUser::new();
    if as_other.is_other {
        let mut h = Helper::spawn_cmd(
            as_other.command().args(["open", &name, "r"]),
            "open a named file mapping as another user",
        );
        let line = h.line();
        assert!(
            line.starts_with("err AccessDenied")
                && line.contains("data.bin")
                && line.contains("file's own permissions"),
            "{line}"
        );
        h.wait();
    }

    // Shrunk below the mapping: refused, naming the file.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(100).unwrap();
    match Mapping::open(&name, Access::Read) {
        Err(Error::FileChanged { object, reason, .. }) => {
            assert_eq!(object, name);
            assert!(reason.contains("smaller"), "{reason}");
        }
        other => panic!("shrunk file: expected FileChanged, got {other:?}"),
    }
    // Replaced by another file at the same path: refused.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    match Mapping::open(&name, Access::Read) {
        Err(Error::FileChanged {
            path: p, reason, ..
        }) => {
            assert!(p.ends_with("data.bin"), "{p}");
            assert!(reason.contains("another file"), "{reason}");
        }
        other => panic!("replaced file: expected FileChanged, got {other:?}"),
    }
    // Removed: refused.
    std::fs::remove_file(&path).unwrap();
    match Mapping::open(&name, Access::Read) {
        Err(Error::FileChanged { reason, .. }) => assert!(reason.contains("no longer"), "{reason}"),
        other => panic!("removed file: expected FileChanged, got {other:?}"),
    }
    // A damaged record is refused as corrupt, not followed.
    let mut rec = std::fs::read(shm(&name)).unwrap();
    rec[40] ^= 1;
    std::fs::write(shm(&name), &rec).unwrap();
    std::fs::set_permissions(shm(&name), std::fs::Permissions::from_mode(0o5644)).unwrap();
    match Mapping::open(&name, Access::Read) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("file record"), "{reason}"),
        other => panic!("damaged record: expected Corrupt, got {other:?}"),
    }
    drop(m);
    std::fs::remove_dir_all(&dir).unwrap();
}

// A persistent named file mapping outlives its creator, and `remove` takes
// the name, never the file.
#[test]
fn a_persistent_named_file_mapping_stays_until_removed() {
    let name = unique("nfile-pers");
    let path = std::env::temp_dir().join(format!("{}.bin", unique("nfile-pers")));
    let p = path.to_str().unwrap();
    let mut h = Helper::spawn(&["named-file", &name, p, "4096", "rw", "persistent"]);
    assert_eq!(h.line(), "ok created 4096");
    h.ok(&format!("write 100 {}", hex(b"kept")));
    h.kill();
    let m = Mapping::open(&name, Access::Read).unwrap();
    assert_eq!(
        m.view(100..104, ViewAccess::Read).unwrap().to_vec(),
        b"kept"
    );
    drop(m);
    Mapping::remove(&name).unwrap();
    assert!(matches!(
        Mapping::open(&name, Access::Read),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(&std::fs::read(&path).unwrap()[100..104], b"kept");
    std::fs::remove_file(&path).unwrap();
}

// Issue 11, item 5 on Linux: a reserve-only object takes no memory at
// creation, so a size far beyond memory is fine; the memory is taken per
// committed range, and a commit the system cannot give fails cleanly.
#[test]
fn reserving_takes_no_memory_and_a_commit_too_large_fails_cleanly() {
    use std::os::unix::fs::MetadataExt;
    const TIB: u64 = 1 << 40;
    let name = unique("reserve-big");
    match Mapping::create(&unique("commit-big"), TIB) {
        Err(Error::NoSpace { .. }) => {}
        other => panic!("1 TiB committed up front: expected NoSpace, got {other:?}"),
    }
    let m = Options::new().reserve(true).create(&name, TIB).unwrap();
    let md = std::fs::metadata(shm(&name)).unwrap();
    assert_eq!(md.blocks(), 0, "nothing is taken at creation");
    assert_eq!(
        md.mode() & 0o7777,
        0o1700,
        "transient mark and reserve mark"
    );
    m.commit(0..1 << 20).unwrap();
    assert!(std::fs::metadata(shm(&name)).unwrap().blocks() * 512 >= 1 << 20);
    m.view(0..1 << 20, ViewAccess::ReadWrite)
        .unwrap()
        .write_at(4000, b"kept")
        .unwrap();
    // At least what was asked (a mount with huge pages commits whole ones).
    let committed = m.committed_len().unwrap();
    assert!(committed >= 1 << 20, "{committed}");
    match m.commit(..) {
        Err(Error::NoSpace { object, .. }) => assert_eq!(object, name),
        other => panic!("committing 1 TiB: expected NoSpace, got {other:?}"),
    }
    assert_eq!(
        m.committed_len().unwrap(),
        committed,
        "nothing more was taken"
    );
    assert_eq!(
        m.view(4000..4004, ViewAccess::Read).unwrap().to_vec(),
        b"kept"
    );
    // The mode bits asked for never include execute (that bit is the mark).
    let plain = unique("reserve-mode");
    let _p = Options::new().mode(0o755).create(&plain, 4096).unwrap();
    assert_eq!(
        std::fs::metadata(shm(&plain)).unwrap().mode() & 0o7777,
        0o1644
    );
}

/// Whether `/dev/shm` gives transparent huge pages, read here the way an
/// administrator would (not through the library).
fn shm_thp_enabled() -> bool {
    let sys = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .unwrap_or_default();
    if sys.contains("[deny]") {
        return false;
    }
    if sys.contains("[force]") {
        return true;
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let last = mounts
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/dev/shm"))
        .unwrap_or("");
    ["huge=always", "huge=within_size", "huge=advise"]
        .iter()
        .any(|o| last.contains(o))
}

fn meminfo(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// Issue 11, item 4: large pages for a named object. Where `/dev/shm` gives
// transparent huge pages, a creator and an opener (another process) both
// read back huge pages from the OS; where it does not, the error names the
// setting.
#[test]
fn large_pages_for_a_named_object_are_read_back_or_refused_naming_the_setting() {
    const SIZE: u64 = 8 << 20;
    let name = unique("large");
    let made = Options::new().large_pages(true).create(&name, SIZE);
    if !shm_thp_enabled() {
        match made {
            Err(Error::Unsupported { object, what }) => {
                assert_eq!(object, name);
                assert!(
                    what.contains("huge=") && what.contains("/dev/shm"),
                    "{what}"
                );
            }
            other => panic!("huge pages off in /dev/shm: expected Unsupported, got {other:?}"),
        }
        assert!(matches!(
            Mapping::open(&name, Access::Read),
            Err(Error::NotFound { .. })
        ));
        return;
    }
    let m = made.unwrap();
    assert_eq!(m.large_page_size(), Some(2 << 20));
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    for at in (0..v.len()).step_by(4096) {
        v.write_at(at, &[1]).unwrap();
    }
    assert!(v.large_page_bytes().unwrap() > 0, "no huge page was mapped");
    let mut h = Helper::spawn(&["open", &name, "r"]);
    h.line();
    let got = h.ok("large");
    let (page, bytes) = got.split_once(' ').unwrap();
    assert_eq!(page, (2u64 << 20).to_string(), "the opener sees the mark");
    assert!(
        bytes.parse::<u64>().unwrap() > 0,
        "the opener maps huge pages: {got}"
    );
    h.exit();
}

// Large pages for an unnamed object: a huge-page memfd from the pages set
// aside in vm.nr_hugepages (`.ci/run` sets some aside as root); where none
// are, the error names the setting.
#[test]
fn large_pages_for_an_unnamed_object_are_read_back_or_refused_naming_the_setting() {
    let page = meminfo("Hugepagesize") * 1024;
    let made = Options::new().large_pages(true).anonymous(3 << 20);
    if meminfo("HugePages_Total") == 0 {
        match made {
            Err(Error::Unsupported { what, .. }) => {
                assert!(what.contains("nr_hugepages"), "{what}")
            }
            other => panic!("no huge pages set aside: expected Unsupported, got {other:?}"),
        }
        return;
    }
    if meminfo("HugePages_Free") * page < 4 << 20 {
        // Set aside, but in use by others: too few to test with.
        assert!(matches!(made, Err(Error::NoSpace { .. })), "{made:?}");
        return;
    }
    let m = made.unwrap();
    assert_eq!(m.large_page_size(), Some(page));
    assert_eq!(
        m.len(),
        (3u64 << 20).next_multiple_of(page),
        "whole huge pages"
    );
    assert_eq!(m.granularity(), page);
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    v.write_at(0, b"huge").unwrap();
    v.write_at(v.len() - 4, b"tail").unwrap();
    assert_eq!(v.large_page_bytes().unwrap(), m.len(), "every page is huge");
    // A view at an unaligned offset works (aligned down to the huge page).
    let tail = m.view(m.len() - 4..m.len(), ViewAccess::Read).unwrap();
    assert_eq!(tail.to_vec(), b"tail");
    // Handed to a child, it is still huge there.
    let h = m.inherit(Access::ReadWrite).unwrap();
    let mut child = Helper::spawn_cmd(
        Command::new(helper_path())
            .arg("inherited")
            .env("FILEMAP_TOKEN", h.token()),
        "inherit a huge-page memfd",
    );
    drop(h);
    child.line();
    assert_eq!(child.ok("read 0 4"), hex(b"huge"));
    assert_eq!(child.ok("large"), format!("{page} {}", m.len()));
    child.exit();
    // Too many asked for: NoSpace naming the setting, nothing taken.
    let free_before = meminfo("HugePages_Free");
    match Options::new().large_pages(true).anonymous(1 << 40) {
        Err(Error::NoSpace { source, .. }) => {
            assert!(source.to_string().contains("nr_hugepages"), "{source}")
        }
        other => panic!("1 TiB of huge pages: expected NoSpace, got {other:?}"),
    }
    assert_eq!(meminfo("HugePages_Free"), free_before);
}

// Two holders that let go at the same instant: the name goes with them
// (at least one of them removes it), and is not left stale for the next
// filemap call to find. Checked on /dev/shm itself, which no filemap call
// cleans on the way.
#[test]
fn holders_letting_go_at_once_leave_no_stale_name() {
    for round in 0..40 {
        let name = unique("let-go");
        let mut a = Helper::spawn(&["create", &name, "4096"]);
        a.line();
        let mut b = Helper::spawn(&["open", &name, "rw"]);
        b.line();
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            + 30_000_000;
        a.send(&format!("exit-at {at}"));
        b.send(&format!("exit-at {at}"));
        assert_eq!(a.line(), "bye");
        assert_eq!(b.line(), "bye");
        a.wait();
        b.wait();
        assert!(
            !shm(&name).exists(),
            "round {round}: {name} was left behind by two holders letting go at once"
        );
    }
}

// Issue 19, item 1: a file record planted by another user. `nobody` writes
// a well-formed record by hand naming a root-owned 0644 file (with its real
// device and inode, and filemap's marks); root's opener must not write
// there for them: `AccessDenied` naming the record's owner and the file,
// the file unchanged, and `inspect` marks the record untrusted.
#[test]
fn a_file_record_planted_by_another_user_is_not_followed() {
    let as_other = OtherUser::new();
    if !as_other.is_other {
        eprintln!("skipped: needs root, to plant the record as another user");
        return;
    }
    let dir = std::env::temp_dir().join(unique("planted-dir"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.join("root-owned.conf");
    std::fs::write(&target, b"precious contents\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let name = unique("planted");
    let mut h = Helper::spawn_cmd(
        as_other
            .command()
            .args(["plant-record", &name, target.to_str().unwrap()]),
        "plant a record as nobody",
    );
    assert_eq!(h.line(), "planted");
    h.wait();
    for access in [Access::ReadWrite, Access::Read] {
        match Mapping::open(&name, access) {
            Err(Error::AccessDenied { reason, .. }) => {
                assert!(reason.contains("uid 65534"), "{reason}");
                assert!(reason.contains("root-owned.conf"), "{reason}");
            }
            other => panic!("{access:?}: a planted record was followed: {other:?}"),
        }
    }
    let r = Options::new().create_or_open(&name, 4096);
    assert!(matches!(r, Err(Error::AccessDenied { .. })), "{r:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious contents\n");
    let info = filemap::inspect::info(&name).unwrap();
    let why = info.untrusted.expect("inspect marks the record untrusted");
    assert!(why.contains("uid 65534"), "{why}");

    // The same record made by the file's owner is followed: a name grants
    // what its creator could open.
    std::fs::remove_file(shm(&name)).unwrap();
    rustix::fs::chown(&target, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
    let mut h = Helper::spawn_cmd(
        as_other
            .command()
            .args(["plant-record", &name, target.to_str().unwrap()]),
        "plant a record as the file's owner",
    );
    assert_eq!(h.line(), "planted");
    h.wait();
    assert!(filemap::inspect::info(&name).unwrap().untrusted.is_none());
    let m = Mapping::open(&name, Access::ReadWrite).expect("the owner's own record");
    m.view(0..4, ViewAccess::ReadWrite)
        .unwrap()
        .write_at(0, b"PWN")
        .unwrap();
    drop(m);
    assert!(std::fs::read(&target).unwrap().starts_with(b"PWN"));
    std::fs::remove_file(shm(&name)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

// Issue 19, item 3: a clean exit leaves no name behind, even while another
// thread of the process starts children. A child between `fork` and `exec`
// holds copies of every descriptor of its parent, close-on-exec or not; the
// hold that keeps a name alive must not be among them, or the releasing
// thread sees a holder and keeps the name (3,012 of 60,606 names were left
// in 5 s). A helper churns for 2 s and exits; nothing may be left, at once.
#[test]
fn names_are_not_left_behind_while_another_thread_spawns_children() {
    let prefix = unique("forkleak");
    let mut h = Helper::spawn(&["churn", &prefix, "2000"]);
    let line = h.line();
    h.wait();
    let counts: Vec<u32> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        counts.len() == 2 && counts[0] > 100 && counts[1] > 10,
        "the churn ran: {line}"
    );
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    for n in &left {
        let _ = std::fs::remove_file(shm(n));
    }
    assert!(
        left.is_empty(),
        "{} names left behind after a clean exit ({line}): {:?}",
        left.len(),
        &left[..left.len().min(5)]
    );
}

// Issue 19, item 4: crashed holders' memory does not wait for someone to
// meet the name. 100 holders of 1 MiB are killed with SIGKILL; a new
// process's unrelated `create` sweeps their names, and the tmpfs's pages
// are free again (with sweeping turned off, all 100 stay), except the one a
// Python process maps; a foreign object beside them is kept. Run in a private
// `/dev/shm` (a mount namespace of its own, which needs root), so that the
// figures are exact and no other test's name is touched.
#[test]
fn a_create_sweeps_the_names_that_killed_holders_left() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root, for a private /dev/shm");
        return;
    }
    let script = format!(
        "mount -t tmpfs -o size=512m filemap-test /dev/shm && exec {} sweep-scenario 100 1048576",
        helper_path().display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_remove("FILEMAP_SWEEP")
        .output()
        .expect("run unshare (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [killed, killed_used, unswept, unswept_used, swept, swept_used, kept_mapped, kept_foreign] =
        f[..]
    else {
        panic!("unexpected report: {text}");
    };
    // One of them is mapped by a Python process (no filemap lock), as in
    // `filemap clean`: kept while it lives. A foreign object: never touched.
    assert_eq!(kept_mapped, 1, "a name a live process maps is kept: {text}");
    assert_eq!(kept_foreign, 1, "a foreign object is kept: {text}");
    assert_eq!(killed, 100, "{text}");
    assert!(
        killed_used >= 100 << 20,
        "the killed holders' pages: {text}"
    );
    assert_eq!(
        unswept, 100,
        "without sweeping, every stale name stays: {text}"
    );
    assert!(unswept_used >= 100 << 20, "{text}");
    assert_eq!(swept, 1, "the sweep removed every other stale name: {text}");
    assert!(
        swept_used < 2 << 20,
        "their memory is free ({swept_used} bytes still used, 1 MiB of it mapped): {text}"
    );
}

// Issue 19, item 2: squatting. Another user (`nobody`) creates a name first,
// with mode 0666 so that anyone may open it. A process that trusts only its
// own user (and root) refuses it, naming the owner, on open and on
// create-or-open; by default (any owner), or trusting that uid, it opens.
#[test]
fn a_name_squatted_by_another_user_is_refused_when_owners_are_restricted() {
    use filemap::Owners;
    let as_other = OtherUser::new();
    if !as_other.is_other {
        eprintln!("skipped: needs root, to create the name as another user");
        return;
    }
    let name = unique("squat");
    let mut squatter = Helper::spawn_cmd(
        as_other
            .command()
            .args(["create", &name, "4096", "mode=666"]),
        "a squatter's create",
    );
    assert_eq!(squatter.line(), "ok created 4096");
    let mine = Options::new().trusted_owners(Owners::CurrentUser);
    for r in [
        mine.open(&name).map(drop),
        mine.create_or_open(&name, 4096).map(drop),
        filemap::channel::spsc::Receiver::open_with(&name, &mine).map(drop),
    ] {
        match r {
            Err(Error::AccessDenied { reason, .. }) => {
                assert!(reason.contains("uid 65534"), "{reason}");
                assert!(reason.contains("trusted_owners"), "{reason}");
            }
            other => panic!("a squatted name was accepted: {other:?}"),
        }
    }
    // The squatter's object is untouched, and the defaults open it.
    let m = Options::new().open(&name).expect("any owner, by default");
    assert_eq!(m.len(), 4096);
    Options::new()
        .trusted_owners(Owners::Uids(vec![65534]))
        .open(&name)
        .expect("trusting that uid");
    drop(m);
    squatter.send("exit");
    squatter.wait();
}

// Issue 19, item 5: a foreign tool unlinks a live name. Python 3.11's
// `SharedMemory(name)` registers the object with its resource tracker,
// which unlinks the name when Python exits, while a filemap process still
// holds it. The holder puts it back: afterwards the name is the very same
// object (its bytes, its inode), and `create` cannot make a second one.
// The test watches /dev/shm itself, to prove the name was really unlinked.
#[test]
fn a_name_python_unlinks_while_filemap_holds_it_is_put_back() {
    use rustix::fs::inotify;
    let name = unique("pyunlink");
    let mut holder = Helper::spawn(&["create", &name, "4096"]);
    assert_eq!(holder.line(), "ok created 4096");
    holder.ok(&format!("write 0 {}", hex(b"one object")));
    let ino_of = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(p).ok().map(|m| m.ino())
    };
    let inode = ino_of(&shm(&name)).expect("the name exists");
    let watch = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .expect("inotify");
    inotify::add_watch(&watch, "/dev/shm", inotify::WatchFlags::DELETE).expect("watch /dev/shm");

    // Attach, read, exit: the tracker unlinks the name and says so.
    let py = format!(
        "from multiprocessing import shared_memory\n\
         s = shared_memory.SharedMemory(name='{name}')\n\
         print(bytes(s.buf[:10]).decode(), flush=True)\n\
         s.close()\n"
    );
    let out = Command::new("python3")
        .args(["-W", "always", "-c", &py])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "one object");
    // (`output` returns once the tracker, which shares stderr, is done too.)
    let mut unlinked = false;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut events = inotify::Reader::new(&watch, &mut buf);
    while let Ok(ev) = events.next() {
        unlinked |= ev.file_name().and_then(|n| n.to_str().ok()) == Some(name.as_str());
    }
    assert!(
        unlinked,
        "Python's resource tracker did not unlink the name: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Put back by its holder, as the very same object.
    filemap_testkit::wait_until("the name is back", || shm(&name).exists());
    assert_eq!(ino_of(&shm(&name)), Some(inode), "the same inode");
    let m = Mapping::open(&name, Access::Read).expect("open after Python's unlink");
    assert_eq!(
        m.view(0..10, ViewAccess::Read).unwrap().to_vec(),
        b"one object"
    );
    assert!(
        matches!(
            Mapping::create(&name, 4096),
            Err(Error::AlreadyExists { .. })
        ),
        "no second object under the name"
    );
    drop(m);

    // How long the name is missing: unlink it the way the tracker does and
    // time its return, from Python (looking every 10 us, so as not to hold
    // the CPU the holder's thread wakes on).
    let py = format!(
        "import os, time, _posixshmem\n\
         t = time.perf_counter_ns()\n\
         _posixshmem.shm_unlink('/{name}')\n\
         end = t + 5_000_000_000\n\
         while not os.path.exists('/dev/shm/{name}') and time.perf_counter_ns() < end:\n\
         \x20   time.sleep(0.00001)\n\
         print(os.path.exists('/dev/shm/{name}'), (time.perf_counter_ns() - t) // 1000)\n"
    );
    let out = python(&py, &[]);
    let mut f = out.split_whitespace();
    assert_eq!(f.next(), Some("True"), "put back after shm_unlink: {out}");
    eprintln!("the name was back after {} us", f.next().unwrap_or("?"));

    // What filemap removes stays removed: the holder lets go, the name goes.
    holder.send("exit");
    holder.wait();
    filemap_testkit::wait_until("the name goes with its last holder", || {
        !shm(&name).exists()
    });
    let leftovers: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".filemap-") && ino_of(&shm(n)) == Some(inode))
        .collect();
    assert!(leftovers.is_empty(), "its shadow went too: {leftovers:?}");
}
