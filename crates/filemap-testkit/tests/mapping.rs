//! Cross-process behaviour of the core mapping, run natively on Linux and under
//! Wine for Windows. Each numbered item refers to issue "filemap core".

use std::sync::atomic::Ordering;

use filemap::{Access, Disposition, Error, Lifetime, Mapping, Options, ViewAccess};
use filemap_testkit::{hex, unique, Helper};

/// The size an opener sees for an object created with `size` bytes: exact on
/// POSIX systems; on Windows the kernel keeps only whole pages for a section.
fn opened_len(size: u64) -> u64 {
    if cfg!(windows) {
        size.div_ceil(4096) * 4096
    } else {
        size
    }
}

/// Waits (with a deadline) for the name to be gone. Not at once: a process
/// that another test thread is spawning right then shares this process's
/// descriptors, and with them its hold, until it reaches `exec`.
fn assert_gone(name: &str) {
    filemap_testkit::wait_until(&format!("{name} is gone"), || {
        match Mapping::open(name, Access::Read) {
            Err(Error::NotFound { name: n }) => {
                assert_eq!(n, name);
                true
            }
            Ok(_) => false,
            Err(e) => panic!("{name}: expected NotFound, got {e:?}"),
        }
    });
}

// 1. create-new, open-existing; 5. views at unaligned offsets across processes.
#[test]
fn created_mapping_is_seen_by_another_process_at_unaligned_offsets() {
    let name = unique("basic");
    let size: u64 = 200_003; // not a multiple of any page size, crosses 64 KiB
    let m = Mapping::create(&name, size).unwrap();
    assert_eq!(m.len(), size);
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    assert!(
        v.to_vec().iter().all(|&b| b == 0),
        "new mapping is zero-filled"
    );
    let at = 65_536 + 4_097; // past Windows' allocation granularity, unaligned
    v.write_at(at, b"hello from the creator").unwrap();

    let mut h = Helper::spawn(&["open", &name, "rw"]);
    assert_eq!(
        h.line(),
        format!("ok opened {}", opened_len(size)),
        "opener sees the creator's size"
    );
    assert_eq!(
        h.ok(&format!("read {at} 22")),
        hex(b"hello from the creator")
    );
    // The helper writes through its own unaligned view; we read through ours.
    h.ok(&format!("write {} {}", size - 5, hex(b"tail!")));
    let mut buf = [0u8; 5];
    v.read_at((size - 5) as usize, &mut buf).unwrap();
    assert_eq!(&buf, b"tail!");
    // A view that starts at an unaligned offset sees the same bytes.
    let w = m
        .view(at as u64 + 6..at as u64 + 10, ViewAccess::Read)
        .unwrap();
    assert_eq!(w.to_vec(), b"from");
    h.exit();
}

// 1. create-new fails when the name exists; create-or-open never resizes.
#[test]
fn create_new_refuses_existing_and_create_or_open_keeps_size_and_bytes() {
    let name = unique("exists");
    let mut h = Helper::spawn(&["create", &name, "10000"]);
    assert_eq!(h.line(), "ok created 10000");
    h.ok(&format!("write 9000 {}", hex(b"kept")));
    match Mapping::create(&name, 4096) {
        Err(Error::AlreadyExists { name: n }) => assert_eq!(n, name),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let (m, how) = Mapping::create_or_open(&name, 50).unwrap();
    assert_eq!(how, Disposition::Opened);
    assert_eq!(m.len(), opened_len(10000), "existing object is not resized");
    let mut buf = [0u8; 4];
    m.view(.., ViewAccess::Read)
        .unwrap()
        .read_at(9000, &mut buf)
        .unwrap();
    assert_eq!(&buf, b"kept", "existing object is not truncated");
    assert_eq!(h.ok("len"), "10000");
    h.exit();
}

// 1. several processes race create-or-open: exactly one creates, all share bytes.
#[test]
fn racing_create_or_open_creates_exactly_once() {
    let name = unique("race");
    const N: usize = 6;
    let mut hs: Vec<Helper> = (0..N)
        .map(|_| Helper::spawn(&["--wait-go", "create-or-open", &name, "4096"]))
        .collect();
    for h in &mut hs {
        h.send("go");
    }
    let answers: Vec<String> = hs.iter().map(|h| h.line()).collect();
    let created = answers.iter().filter(|a| *a == "ok created 4096").count();
    let opened = answers.iter().filter(|a| *a == "ok opened 4096").count();
    assert_eq!((created, opened), (1, N - 1), "{answers:?}");
    for h in &mut hs {
        h.ok("add 64 1");
    }
    let m = Mapping::open(&name, Access::Read).unwrap();
    assert_eq!(
        m.view(.., ViewAccess::Read).unwrap().load_u64(64).unwrap(),
        N as u64
    );
    for h in hs {
        h.exit();
    }
}

// 4. read-only access never yields a writable view.
#[test]
fn read_only_open_cannot_write() {
    let name = unique("ro");
    let mut h = Helper::spawn(&["create", &name, "4096"]);
    h.line();
    h.ok(&format!("write 0 {}", hex(b"original")));
    let m = Mapping::open(&name, Access::Read).unwrap();
    assert_eq!(m.access(), Access::Read);
    for r in [
        m.view(.., ViewAccess::ReadWrite).map(|_| ()),
        m.map(0, 0, ViewAccess::ReadWrite).map(|_| ()),
    ] {
        match r {
            Err(Error::AccessDenied { reason, .. }) => {
                assert!(reason.contains("read-only"), "{reason}")
            }
            other => panic!("expected AccessDenied, got {other:?}"),
        }
    }
    let v = m.view(.., ViewAccess::Read).unwrap();
    assert!(!v.is_writable());
    assert!(matches!(
        v.write_at(0, b"x"),
        Err(Error::AccessDenied { .. })
    ));
    assert!(matches!(v.atomic_u64(0), Err(Error::AccessDenied { .. })));
    assert!(matches!(
        m.inherit(Access::ReadWrite),
        Err(Error::AccessDenied { .. })
    ));
    // SAFETY: the slice is only checked for its type here, not read.
    assert!(matches!(
        unsafe {
            m.view(.., ViewAccess::Read)
                .unwrap()
                .as_mut_slice()
                .map(|_| ())
        },
        Err(Error::AccessDenied { .. })
    ));
    assert_eq!(h.ok("read 0 8"), hex(b"original"), "nothing changed");
    // Read-only helper: same refusal in another process.
    let mut r = Helper::spawn(&["open", &name, "r"]);
    r.line();
    assert!(r
        .ask(&format!("write 0 {}", hex(b"x")))
        .starts_with("err AccessDenied"));
    r.exit();
    h.exit();
}

// 5. copy-on-write views stay private.
#[test]
fn copy_on_write_changes_stay_private() {
    let name = unique("cow");
    let mut h = Helper::spawn(&["create", &name, "70000"]);
    h.line();
    h.ok(&format!("write 66000 {}", hex(b"shared")));
    // Another process writes through a copy-on-write view and sees its own bytes...
    let mut o = Helper::spawn(&["open", &name, "r"]);
    o.line();
    assert_eq!(
        o.ok(&format!("cow 66000 {}", hex(b"PRIVAT"))),
        hex(b"PRIVAT")
    );
    // ...which nobody else sees.
    assert_eq!(h.ok("read 66000 6"), hex(b"shared"));
    let m = Mapping::open(&name, Access::ReadWrite).unwrap();
    let cow = m.view(66_000..66_006, ViewAccess::CopyOnWrite).unwrap();
    cow.write_at(0, b"mine!!").unwrap();
    assert_eq!(cow.to_vec(), b"mine!!");
    assert_eq!(
        m.view(66_000..66_006, ViewAccess::Read).unwrap().to_vec(),
        b"shared"
    );
    assert_eq!(o.ok("read 66000 6"), hex(b"shared"));
    o.exit();
    h.exit();
}

// 2. file-backed: size 0 = file size, larger grows, data reaches the file, durable flush.
#[test]
fn file_backed_mapping_shares_and_persists_data() {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("{}.bin", unique("file")));
    std::fs::write(&path, b"").unwrap();
    match Mapping::from_path(&path, 0, Access::ReadWrite) {
        Err(Error::InvalidSize { reason, .. }) => assert!(reason.contains("empty"), "{reason}"),
        other => panic!("empty file with size 0: expected InvalidSize, got {other:?}"),
    }
    std::fs::write(&path, vec![7u8; 1000]).unwrap();
    let whole = Mapping::from_path(&path, 0, Access::Read).unwrap();
    assert_eq!(whole.len(), 1000, "size 0 means the file's size");
    match Mapping::from_path(&path, 5000, Access::Read) {
        Err(Error::InvalidSize { reason, .. }) => assert!(reason.contains("read-only"), "{reason}"),
        other => panic!("growing read-only: expected InvalidSize, got {other:?}"),
    }
    let m = Mapping::from_path(&path, 100_000, Access::ReadWrite).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        100_000,
        "a larger size grows the file"
    );
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    let mut first = [0u8; 3];
    v.read_at(0, &mut first).unwrap();
    assert_eq!(first, [7, 7, 7], "existing contents are kept");
    v.write_at(70_001, b"parent").unwrap();
    v.flush().unwrap();
    // Another process maps the same file and sees and writes the same bytes.
    let p = path.to_str().unwrap();
    let mut h = Helper::spawn(&["file", p, "0", "rw"]);
    assert_eq!(h.line(), "ok mapped 100000");
    assert_eq!(h.ok("read 70001 6"), hex(b"parent"));
    h.ok(&format!("write 99990 {}", hex(b"child")));
    h.ok("flush 99990 5");
    h.exit();
    v.flush_durable().unwrap();
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[70_001..70_007], b"parent");
    assert_eq!(&on_disk[99_990..99_995], b"child");
    // A copy-on-write view of the file never reaches it.
    let cow = m.view(0..3, ViewAccess::CopyOnWrite).unwrap();
    cow.write_at(0, b"cow").unwrap();
    cow.flush_durable().unwrap();
    drop((cow, v, m, whole));
    assert_eq!(&std::fs::read(&path).unwrap()[..3], &[7, 7, 7]);
    std::fs::remove_file(&path).unwrap();
}

// 3. an unnamed mapping handed to a child.
#[test]
fn child_receives_unnamed_mapping() {
    let m = Mapping::anonymous(100_000).unwrap();
    assert_eq!(m.name(), None);
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    v.write_at(65_540, b"for the child").unwrap();
    let rw = m.inherit(Access::ReadWrite).unwrap();
    let mut cmd = std::process::Command::new(filemap_testkit::helper_path());
    cmd.arg("inherited").env("FILEMAP_TOKEN", rw.token());
    let mut h = Helper::spawn_cmd(&mut cmd, "inherited rw");
    drop(rw);
    assert_eq!(h.line(), "ok inherited 100000");
    assert_eq!(h.ok("read 65540 13"), hex(b"for the child"));
    h.ok(&format!("write 3 {}", hex(b"from child")));
    let mut buf = [0u8; 10];
    v.read_at(3, &mut buf).unwrap();
    assert_eq!(&buf, b"from child");
    h.exit();

    // Read-only hand-over: the child cannot write.
    let ro = m.inherit(Access::Read).unwrap();
    let mut cmd = std::process::Command::new(filemap_testkit::helper_path());
    cmd.arg("inherited").env("FILEMAP_TOKEN", ro.token());
    let mut h = Helper::spawn_cmd(&mut cmd, "inherited r");
    drop(ro);
    h.line();
    assert_eq!(h.ok("read 3 10"), hex(b"from child"));
    let r = h.ask(&format!("write 0 {}", hex(b"no")));
    assert!(r.starts_with("err AccessDenied"), "{r}");
    h.exit();
}

/// A token is adopted once: the second adoption in the same process is
/// refused, so one descriptor (or handle) is never owned, and closed, twice.
#[test]
fn an_inheritance_token_is_adopted_once() {
    let m = Mapping::anonymous(4096).unwrap();
    m.view(.., ViewAccess::ReadWrite)
        .unwrap()
        .write_at(0, b"once")
        .unwrap();
    let rw = m.inherit(Access::ReadWrite).unwrap();
    let mut cmd = std::process::Command::new(filemap_testkit::helper_path());
    cmd.arg("inherited-twice").env("FILEMAP_TOKEN", rw.token());
    let mut h = Helper::spawn_cmd(&mut cmd, "inherited twice");
    drop(rw);
    assert_eq!(h.line(), "ok inherited-once 4096");
    // The first adoption still works: its descriptor was not closed.
    assert_eq!(h.ok("read 0 4"), hex(b"once"));
    h.exit();
}

#[test]
fn bad_inheritance_tokens_are_refused() {
    for (token, why) in [
        ("garbage", "filemap-inherit:v1:"),
        ("filemap-inherit:v1:1:2", "expected"),
        ("filemap-inherit:v1:x:4096:rw", "handle is not a number"),
        ("filemap-inherit:v1:5:0:rw", "length is 0"),
        ("filemap-inherit:v1:5:4096:wx", "access"),
        ("filemap-inherit:v1:987654:4096:rw", "987654"),
    ] {
        // SAFETY: every token is refused before anything is adopted.
        match unsafe { Mapping::from_inherited(token) } {
            Err(Error::InvalidToken { reason, token: t }) => {
                assert_eq!(t, token);
                assert!(reason.contains(why), "{token}: {reason}");
            }
            other => panic!("{token}: expected InvalidToken, got {other:?}"),
        }
    }
}

// 6. lifetime: the name goes with the last holder, closed or killed.
#[test]
fn name_disappears_when_last_holder_exits() {
    let name = unique("life");
    let h = Helper::spawn(&["create", &name, "4096"]);
    h.line();
    let o = Helper::spawn(&["open", &name, "rw"]);
    assert_eq!(o.line(), "ok opened 4096");
    h.exit();
    // The opener still holds it: the name lives.
    let m = Mapping::open(&name, Access::Read).unwrap();
    drop(m);
    o.exit();
    assert_gone(&name);
}

#[test]
fn name_disappears_when_last_holder_is_killed() {
    let name = unique("kill");
    let h = Helper::spawn(&["create", &name, "4096"]);
    h.line();
    let mut o = Helper::spawn(&["open", &name, "rw"]);
    o.line();
    h.kill();
    // One holder left: still there, bytes intact.
    o.ok(&format!("write 0 {}", hex(b"alive")));
    let m = Mapping::open(&name, Access::Read).unwrap();
    assert_eq!(m.view(0..5, ViewAccess::Read).unwrap().to_vec(), b"alive");
    drop(m);
    o.kill();
    assert_gone(&name);
    // No orphan trips a restart: the name can be created afresh.
    let again = Mapping::create(&name, 8192).unwrap();
    assert_eq!(again.len(), 8192);
    assert!(again
        .view(.., ViewAccess::Read)
        .unwrap()
        .to_vec()
        .iter()
        .all(|&b| b == 0));
}

#[test]
fn views_keep_the_object_alive_after_the_mapping_is_dropped() {
    let name = unique("views");
    let m = Mapping::create(&name, 4096).unwrap();
    let v = m.view(100..200, ViewAccess::ReadWrite).unwrap();
    drop(m);
    v.write_at(0, b"still here").unwrap();
    let mut h = Helper::spawn(&["open", &name, "r"]);
    h.line();
    assert_eq!(h.ok("read 100 10"), hex(b"still here"));
    h.exit();
    v.unmap().unwrap();
    assert_gone(&name);
}

// 6. persistent mode (POSIX semantics), and remove-by-name.
#[test]
fn persistent_mode_survives_its_creator_and_is_removable() {
    let name = unique("persist");
    if cfg!(windows) {
        match Options::new()
            .lifetime(Lifetime::Persistent)
            .create(&name, 4096)
        {
            Err(Error::Unsupported { what, .. }) => assert!(what.contains("persistent"), "{what}"),
            other => panic!("expected Unsupported on Windows, got {other:?}"),
        }
        let m = Mapping::create(&name, 4096).unwrap();
        assert!(matches!(
            Mapping::remove(&name),
            Err(Error::Unsupported { .. })
        ));
        drop(m);
        assert!(matches!(
            Mapping::remove(&name),
            Err(Error::NotFound { .. })
        ));
        return;
    }
    let mut h = Helper::spawn(&["create", &name, "4096", "persistent"]);
    h.line();
    h.ok(&format!("write 10 {}", hex(b"durable")));
    h.kill();
    let m = Mapping::open(&name, Access::ReadWrite).unwrap();
    assert_eq!(
        m.view(10..17, ViewAccess::Read).unwrap().to_vec(),
        b"durable"
    );
    drop(m);
    // Still there after our handle closed, too.
    let m = Mapping::open(&name, Access::Read).unwrap();
    Mapping::remove(&name).unwrap();
    // Holders keep their bytes after removal; the name is free.
    assert_eq!(
        m.view(10..17, ViewAccess::Read).unwrap().to_vec(),
        b"durable"
    );
    assert_gone(&name);
    assert!(matches!(
        Mapping::remove(&name),
        Err(Error::NotFound { .. })
    ));
}

// 7. names: the rule, and Local\ / Global\ prefixes.
#[test]
fn names_are_checked_and_prefixes_name_the_same_object() {
    for bad in ["", "a/b", "with space", ".dot", "Other\\x"] {
        assert!(
            matches!(Mapping::create(bad, 4096), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(
                Mapping::open(bad, Access::Read),
                Err(Error::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    let base = unique("prefix");
    let m = Mapping::create(&format!("Local\\{base}"), 4096).unwrap();
    m.view(.., ViewAccess::ReadWrite)
        .unwrap()
        .write_at(0, b"L")
        .unwrap();
    let mut h = Helper::spawn(&["open", &base, "r"]);
    assert_eq!(h.line(), "ok opened 4096");
    assert_eq!(h.ok("read 0 1"), hex(b"L"));
    h.exit();
    if !cfg!(windows) {
        // On POSIX systems both scopes are the one shm namespace.
        let g = Mapping::open(&format!("Global\\{base}"), Access::Read).unwrap();
        assert_eq!(g.view(0..1, ViewAccess::Read).unwrap().to_vec(), b"L");
    }
}

// 8. sizes and arithmetic.
#[test]
fn sizes_ranges_and_offsets_are_checked_without_overflow() {
    let name = unique("sizes");
    for size in [0, u64::MAX, i64::MAX as u64 + 1] {
        match Mapping::create(&name, size) {
            Err(Error::InvalidSize { object, .. }) => assert_eq!(object, name),
            other => panic!("size {size}: expected InvalidSize, got {other:?}"),
        }
    }
    assert!(matches!(
        Mapping::anonymous(0),
        Err(Error::InvalidSize { .. })
    ));
    let m = Mapping::create(&name, 10_000).unwrap();
    let cases: [(u64, u64); 6] = [
        (10_000, 0),
        (9_999, 2),
        (u64::MAX, 1),
        (1, u64::MAX),
        (u64::MAX, 0),
        (20_000, 0),
    ];
    for (off, len) in cases {
        match m.map(off, len, ViewAccess::Read) {
            Err(Error::OutOfRange { size, .. }) => assert_eq!(size, 10_000),
            other => panic!("map({off}, {len}): expected OutOfRange, got {other:?}"),
        }
    }
    assert!(matches!(
        m.view(5..5, ViewAccess::Read),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        m.view(u64::MAX.., ViewAccess::Read),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        m.view(..=u64::MAX, ViewAccess::Read),
        Err(Error::OutOfRange { .. })
    ));
    // Length 0 and `..` mean "to the end".
    assert_eq!(m.map(9_000, 0, ViewAccess::Read).unwrap().len(), 1_000);
    assert_eq!(m.view(9_000.., ViewAccess::Read).unwrap().len(), 1_000);
    assert_eq!(m.view(..=99, ViewAccess::Read).unwrap().len(), 100);
    // In-view ranges.
    let v = m.view(1..101, ViewAccess::ReadWrite).unwrap();
    assert!(matches!(
        v.write_at(99, b"xx"),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        v.read_at(usize::MAX, &mut [0u8; 2]),
        Err(Error::OutOfRange { .. })
    ));
    // The view starts at object offset 1, so view offset 7 is object offset 8.
    assert!(matches!(
        v.atomic_u64(8),
        Err(Error::Misaligned { align: 8, .. })
    ));
    v.atomic_u64(7).unwrap().store(42, Ordering::Release);
    assert_eq!(
        m.view(8..16, ViewAccess::Read)
            .unwrap()
            .load_u64(0)
            .unwrap(),
        42
    );
    assert!(matches!(v.atomic_u32(98), Err(Error::OutOfRange { .. })));
}

#[test]
fn create_fails_cleanly_when_the_backing_store_is_too_small() {
    let name = unique("nospace");
    // Larger than any /dev/shm or commit limit this machine can have.
    let huge = 1u64 << 50;
    match Mapping::create(&name, huge) {
        Err(e @ Error::NoSpace { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&name) && msg.contains(&huge.to_string()),
                "{msg}"
            );
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert_gone(&name);
}

/// Messages say what is wrong with what was given.
#[test]
fn messages_name_files_as_files_and_escape_control_characters() {
    // A missing file is a missing file, not a missing mapping.
    let missing = std::env::temp_dir()
        .join(unique("no-such-dir"))
        .join("f.bin");
    match Mapping::from_path(&missing, 0, Access::Read) {
        Err(e @ Error::FileNotFound { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("no file") && msg.contains(&*missing.to_string_lossy()),
                "{msg}"
            );
            assert!(!msg.contains("mapping named"), "{msg}");
        }
        other => panic!("expected FileNotFound, got {other:?}"),
    }
    // A read-write mapping of a file in a missing folder: the same.
    assert!(matches!(
        Mapping::from_path(&missing, 4096, Access::ReadWrite),
        Err(Error::FileNotFound { .. })
    ));
    // A NUL or a newline in a name is shown escaped, on one line.
    for bad in ["a\nb", "a\0b"] {
        let msg = Mapping::create(bad, 1).unwrap_err().to_string();
        assert!(!msg.contains('\n') && !msg.contains('\0'), "{msg:?}");
        assert!(msg.contains("a\\nb") || msg.contains("a\\0b"), "{msg:?}");
    }
}

/// `create_or_open(name, 0)`: "whatever size it has" for an object that
/// exists; creating one needs a size.
#[test]
fn create_or_open_with_size_zero_opens_at_the_existing_size() {
    let name = unique("coo0");
    let h = Helper::spawn(&["create", &name, "12345"]);
    assert!(h.line().starts_with("ok created"));
    let (m, how) = Mapping::create_or_open(&name, 0).unwrap();
    assert_eq!(how, Disposition::Opened);
    assert_eq!(m.len(), opened_len(12345));
    let missing = unique("coo0-missing");
    match Mapping::create_or_open(&missing, 0) {
        Err(Error::InvalidSize { object, reason }) => {
            assert_eq!(object, missing);
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("expected InvalidSize, got {other:?}"),
    }
    drop(h);
}

/// `MapViewOfFileEx` with a base address: two processes map one object at
/// the same address and follow a pointer stored in it; a range already in
/// use, or an address that does not fit the granularity, is refused and
/// nothing already mapped changes.
#[test]
fn two_processes_map_at_one_address_and_follow_a_stored_pointer() {
    // Free in every test process on every OS we run (x86-64 user space is
    // 128 TiB on Linux and Windows; this is 60 TiB, 64 KiB-aligned).
    const AT: usize = 0x3c60_0000_0000;
    let name = unique("place");
    let m = Mapping::create(&name, 1 << 16).unwrap();
    let v = m.map_at(0, 0, ViewAccess::ReadWrite, AT).unwrap();
    assert_eq!(v.as_ptr() as usize, AT);
    // A node at 4096 and, at 0, an absolute pointer to it.
    v.write_at(4096, b"followed").unwrap();
    v.write_at(0, &((AT + 4096) as u64).to_ne_bytes()).unwrap();
    let mut h = Helper::spawn(&["open", &name, "r"]);
    assert!(h.line().starts_with("ok opened"));
    assert_eq!(h.ok(&format!("follow {AT}")), hex(b"followed"));
    h.exit();
    // Taken here: refused, and the view there is untouched.
    match m.map_at(0, 4096, ViewAccess::Read, AT) {
        Err(Error::Placement {
            address, reason, ..
        }) => {
            assert_eq!(address, AT);
            assert!(reason.contains("in use"), "{reason}");
        }
        other => panic!("expected Placement, got {other:?}"),
    }
    let mut node = [0u8; 8];
    v.read_at(4096, &mut node).unwrap();
    assert_eq!(&node, b"followed");
    // Not a multiple of the granularity: refused, saying what would do.
    match m.map_at(0, 4096, ViewAccess::Read, AT + (1 << 20) + 8) {
        Err(Error::Placement { reason, .. }) => assert!(reason.contains("multiple"), "{reason}"),
        other => panic!("expected Placement, got {other:?}"),
    }
    // An offset with a remainder: the address carries the same remainder.
    let g = filemap::allocation_granularity() as usize;
    let at2 = AT + (1 << 24) + 100;
    let w = m.map_at(100, 10, ViewAccess::Read, at2).unwrap();
    assert_eq!(w.as_ptr() as usize, at2);
    assert_eq!(at2 % g, 100);
}

/// Handing a mapping to an unrelated process (neither the parent of the
/// other: both are children of this test), with at most the access chosen:
/// over a Unix socket (`SCM_RIGHTS`), or `DuplicateHandle` into the other
/// process on Windows. The receiver sees the sender's bytes, and writes only
/// if it was given write access.
#[test]
fn an_unrelated_process_receives_a_mapping_with_the_access_chosen() {
    for acc in ["r", "rw"] {
        let (mut a, mut b) = unrelated_pair(acc);
        a.ok(&format!("write 0 {}", hex(b"from A")));
        let (first, wrote) = b.adopt_and_write();
        assert_eq!(first, hex(b"from A"), "{acc}");
        if acc == "rw" {
            assert_eq!(wrote, "ok");
            assert_eq!(a.ok("read 8 6"), hex(b"from B"), "the same object");
        } else {
            assert_eq!(wrote, "denied", "a read-only hand-over cannot write");
            assert_eq!(a.ok("read 8 6"), hex(&[0; 6]));
        }
        a.exit();
        b.helper.exit();
    }
}

/// The receiving end, as each OS gets there.
struct Receiver {
    helper: Helper,
    #[cfg(windows)]
    token: String,
}

impl Receiver {
    /// Reads the first 6 bytes, tries to write `from B` at 8: (hex, "ok"|"denied").
    fn adopt_and_write(&mut self) -> (String, String) {
        #[cfg(unix)]
        let (first, wrote) = {
            let first = self.helper.ok("read 0 6");
            let w = self.helper.ask(&format!("write 8 {}", hex(b"from B")));
            let wrote = if w == "ok" {
                "ok".to_owned()
            } else {
                assert!(w.starts_with("err AccessDenied"), "{w}");
                "denied".to_owned()
            };
            (first, wrote)
        };
        #[cfg(windows)]
        let (first, wrote) = {
            let line = self.helper.ok(&format!("adopt {}", self.token));
            let (first, wrote) = line.split_once(" write=").expect("adopt reply");
            (first.to_owned(), wrote.to_owned())
        };
        (first, wrote)
    }
}

#[cfg(unix)]
fn unrelated_pair(acc: &str) -> (Helper, Receiver) {
    let path = std::env::temp_dir().join(format!("{}.sock", unique("handover")));
    let path = path.to_str().unwrap();
    let a = Helper::spawn(&["serve-mapping", path, "4096", acc]);
    assert_eq!(a.line(), "listening");
    let b = Helper::spawn(&["receive-mapping", path]);
    assert_eq!(b.line(), "ok received 4096");
    assert_eq!(a.line(), "ok served 4096");
    (a, Receiver { helper: b })
}

#[cfg(windows)]
fn unrelated_pair(acc: &str) -> (Helper, Receiver) {
    let mut a = Helper::spawn(&["anonymous", "4096"]);
    assert_eq!(a.line(), "ok created 4096");
    // B holds a mapping of its own; it adopts A's when given the token.
    let b = Helper::spawn(&["anonymous", "16"]);
    assert_eq!(b.line(), "ok created 16");
    let token = a.ok(&format!("dup {} {acc}", b.pid()));
    (a, Receiver { helper: b, token })
}

/// Whatever else arrives on the socket is refused, and nothing leaks.
#[cfg(unix)]
#[test]
fn a_socket_that_does_not_carry_a_hand_over_is_refused() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"not a hand-over!").unwrap();
    match filemap::os::unix::receive_mapping(&b) {
        Err(Error::InvalidToken { reason, .. }) => {
            assert!(reason.contains("not a filemap hand-over"), "{reason}")
        }
        other => panic!("expected InvalidToken, got {other:?}"),
    }
    drop(a);
    match filemap::os::unix::receive_mapping(&b) {
        Err(Error::InvalidToken { reason, .. }) => assert!(reason.contains("closed"), "{reason}"),
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

// Issue 11, item 1: a file-backed mapping with a name. The creator and the
// openers are other processes; the file receives every write; the name goes
// with its last holder (killed included) and the file stays.
#[test]
fn a_named_file_mapping_is_opened_by_name_from_other_processes() {
    let name = unique("nfile");
    let path = std::env::temp_dir().join(format!("{}.bin", unique("nfile")));
    std::fs::write(&path, vec![5u8; 100]).unwrap();
    let p = path.to_str().unwrap();
    let creator = Helper::spawn(&["named-file", &name, p, "20000", "rw"]);
    assert_eq!(creator.line(), "ok created 20000");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        20_000,
        "the file grows to the mapping's size"
    );
    // This process opens the name: the file's pages, the file's bytes.
    let m = Mapping::open(&name, Access::ReadWrite).unwrap();
    assert_eq!(m.backing(), filemap::Backing::File);
    // Exact everywhere: Windows keeps a file section's size in bytes.
    assert_eq!(m.len(), 20_000);
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    assert_eq!(v.to_vec()[..100], [5u8; 100], "the file's contents");
    v.write_at(12_345, b"by name").unwrap();
    // A second opener sees it and writes too.
    let mut opener = Helper::spawn(&["open", &name, "rw"]);
    opener.line();
    assert_eq!(opener.ok("read 12345 7"), hex(b"by name"));
    opener.ok(&format!("write 19990 {}", hex(b"opener")));
    opener.ok("flush 19990 6");
    let mut creator = creator;
    assert_eq!(creator.ok("read 19990 6"), hex(b"opener"));
    let backing = creator.ok("backing");
    assert!(backing.starts_with("file "), "{backing}");
    if cfg!(target_os = "linux") {
        let abs = std::fs::canonicalize(&path).unwrap();
        assert_eq!(backing, format!("file {}", abs.display()));
    }
    v.flush_durable().unwrap();
    drop((v, m));
    creator.kill();
    // The opener still holds the name.
    let again = Mapping::open(&name, Access::Read).unwrap();
    assert_eq!(again.backing(), filemap::Backing::File);
    drop(again);
    opener.kill();
    assert_gone(&name);
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[12_345..12_352], b"by name");
    assert_eq!(&on_disk[19_990..19_996], b"opener");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn create_or_open_of_a_named_file_mapping_needs_the_same_file() {
    let name = unique("nfile-co");
    let dir = std::env::temp_dir();
    let a = dir.join(format!("{}-a.bin", unique("nfile")));
    let b = dir.join(format!("{}-b.bin", unique("nfile")));
    let (m, how) = Options::new().create_or_open_file(&name, &a, 4096).unwrap();
    assert_eq!(how, Disposition::Created);
    m.view(.., ViewAccess::ReadWrite)
        .unwrap()
        .write_at(0, b"A")
        .unwrap();
    let (same, how) = Options::new().create_or_open_file(&name, &a, 4096).unwrap();
    assert_eq!(how, Disposition::Opened);
    assert_eq!(same.view(0..1, ViewAccess::Read).unwrap().to_vec(), b"A");
    match Options::new().create_file(&name, &a, 4096) {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("create-new of a taken name: {other:?}"),
    }
    // Another file under the same name: refused, naming both (Windows does
    // not say which file a section maps, so it cannot tell these apart).
    if !cfg!(windows) {
        match Options::new().create_or_open_file(&name, &b, 4096) {
            Err(Error::Conflict { name: n, reason }) => {
                assert_eq!(n, name);
                let a_abs = std::fs::canonicalize(&a).unwrap();
                assert!(reason.contains(a_abs.to_str().unwrap()), "{reason}");
                assert!(reason.contains(b.to_str().unwrap()), "{reason}");
            }
            other => panic!("another file: expected Conflict, got {other:?}"),
        }
    }
    // A memory-backed name is not a file mapping.
    let mem = unique("nfile-mem");
    let _held = Mapping::create(&mem, 4096).unwrap();
    match Options::new().create_or_open_file(&mem, &b, 4096) {
        Err(Error::Conflict { reason, .. }) => assert!(reason.contains("memory"), "{reason}"),
        other => panic!("a memory name: expected Conflict, got {other:?}"),
    }
    drop((m, same));
    assert_gone(&name);
    assert_eq!(&std::fs::read(&a).unwrap()[..1], b"A", "the file stays");
    std::fs::remove_file(&a).unwrap();
    let _ = std::fs::remove_file(&b);
}

// Issue 11, item 5: reserve, then commit. A writer process commits and fills
// one range after another while a reader process follows; nobody can view a
// range before it is committed (an error, never SIGBUS or an access
// violation), and every process sees the same commits.
#[test]
fn a_reserved_segment_grows_while_a_reader_follows() {
    // Steps of 2 MiB: where /dev/shm has huge pages, commits are whole ones.
    const MIB: u64 = 1 << 20;
    const STEP: u64 = 2 * MIB;
    let name = unique("grow");
    let size = 64 * MIB;
    let mut writer = Helper::spawn(&["create", &name, &size.to_string(), "reserve"]);
    assert_eq!(writer.line(), format!("ok created {size}"));
    let mut reader = Helper::spawn(&["open", &name, "r"]);
    assert_eq!(reader.line(), format!("ok opened {size}"));
    assert_eq!(reader.ok("committed"), "0");
    let early = reader.ask("read 0 16");
    assert!(
        early.starts_with("err InvalidArgument") && early.contains("not all committed"),
        "{early}"
    );
    // This process too: an opener knows the object is reserve-only.
    let m = Mapping::open(&name, Access::Read).unwrap();
    assert!(m.is_reserved());
    match m.commit(0..4096) {
        Err(Error::AccessDenied { reason, .. }) => {
            assert!(reason.contains("read-only"), "{reason}")
        }
        other => panic!("commit from a read-only handle: {other:?}"),
    }
    for i in 0..6u64 {
        let at = i * STEP;
        writer.ok(&format!("commit {at} {STEP}"));
        let mark = format!("range {i}");
        writer.ok(&format!("write {} {}", at + 100, hex(mark.as_bytes())));
        // The reader follows: the committed start has grown, the new range
        // maps and holds what the writer wrote, the next one does not map.
        assert_eq!(reader.ok("committed"), ((i + 1) * STEP).to_string());
        assert_eq!(
            reader.ok(&format!("read {} {}", at + 100, mark.len())),
            hex(mark.as_bytes())
        );
        let next = reader.ask(&format!("read {} 1", at + STEP));
        assert!(
            next.starts_with("err InvalidArgument") && next.contains("not all committed"),
            "{next}"
        );
        assert!(m.is_committed(at..at + STEP).unwrap());
        assert!(!m.is_committed(at..at + STEP + 1).unwrap());
    }
    assert_eq!(m.committed_len().unwrap(), 6 * STEP);
    // A range committed out of order counts, but not in the committed start.
    writer.ok(&format!("commit {} 4096", 40 * MIB));
    assert!(m.is_committed(40 * MIB..40 * MIB + 4096).unwrap());
    assert_eq!(m.committed_len().unwrap(), 6 * STEP);
    let v = m.view(40 * MIB..40 * MIB + 4096, ViewAccess::Read).unwrap();
    assert!(v.to_vec().iter().all(|&b| b == 0));
    // Committing again keeps the bytes.
    writer.ok(&format!("commit 0 {}", 2 * MIB));
    assert_eq!(reader.ok("read 100 7"), hex(b"range 0"));
    drop((v, m));
    writer.exit();
    reader.exit();
    assert_gone(&name);
}

// A segment that is not reserve-only is committed whole, and commit is a
// no-op there.
#[test]
fn an_ordinary_mapping_is_committed_whole() {
    let name = unique("commit-all");
    let m = Mapping::create(&name, 100_000).unwrap();
    assert!(!m.is_reserved());
    assert_eq!(m.committed_len().unwrap(), 100_000);
    assert!(m.is_committed(..).unwrap());
    m.commit(..).unwrap();
    match m.commit(0..200_000) {
        Err(Error::OutOfRange { .. }) => {}
        other => panic!("commit past the end: {other:?}"),
    }
}

// Issue 11, item 4 on Windows: SEC_LARGE_PAGES needs the "Lock pages in
// memory" right; without it the error names the right, with it the OS
// reports large pages in the view. (Linux: tests/linux.rs, which reads the
// settings independently.)
#[cfg(windows)]
#[test]
fn large_pages_on_windows_are_read_back_or_refused_naming_the_right() {
    let name = unique("large-win");
    for made in [
        Options::new().large_pages(true).anonymous(3 << 20),
        Options::new().large_pages(true).create(&name, 3 << 20),
    ] {
        match made {
            Err(Error::Unsupported { what, .. }) => {
                assert!(
                    what.contains("SeLockMemoryPrivilege") || what.contains("without them"),
                    "{what}"
                )
            }
            Ok(m) => {
                let page = m.large_page_size().expect("a large page size");
                assert_eq!(m.len() % page, 0, "whole large pages");
                let v = m.view(.., ViewAccess::ReadWrite).unwrap();
                v.write_at(0, b"large").unwrap();
                assert!(v.large_page_bytes().unwrap() >= page);
            }
            Err(e) => panic!("large pages: unexpected {e:?}"),
        }
    }
}

/// Issue 19, item 2, on every OS: a process that trusts only its own user
/// accepts what another process of that user made (Windows: the section's
/// owner SID is the token's user or its default owner). `Owners::Uids` is
/// Unix only. (The refusal of another user's name is in `linux.rs`.)
#[test]
fn objects_of_this_user_are_trusted_with_current_user_owners() {
    use filemap::Owners;
    let name = unique("owners");
    let mut h = Helper::spawn(&["create", &name, "4096"]);
    assert_eq!(h.line(), "ok created 4096");
    h.ok(&format!("write 0 {}", hex(b"mine")));
    let mine = Options::new().trusted_owners(Owners::CurrentUser);
    let m = mine.open(&name).expect("this user's own object");
    let mut b = [0u8; 4];
    m.view(0..4, ViewAccess::Read)
        .unwrap()
        .read_at(0, &mut b)
        .unwrap();
    assert_eq!(&b, b"mine");
    let (_again, how) = mine.create_or_open(&name, 4096).unwrap();
    assert_eq!(how, Disposition::Opened);
    let by_uid = Options::new()
        .trusted_owners(Owners::Uids(vec![]))
        .open(&name);
    if cfg!(windows) {
        assert!(
            matches!(by_uid, Err(Error::Unsupported { .. })),
            "{by_uid:?}"
        );
    } else {
        by_uid.expect("this user is always trusted");
    }
    h.exit();
}
