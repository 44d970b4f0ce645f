//! Another process shrinks an object this process has mapped (`ftruncate`,
//! as Python's `os.ftruncate` or the `truncate` command do): every safe
//! accessor, a view mapped afterwards, and a channel give errors
//! (`Error::Truncated`), never SIGBUS. (Unix: Windows cannot shrink a mapped
//! section.)
#![cfg(unix)]

use std::path::Path;
use std::sync::atomic::Ordering;

use filemap::{Access, Error, Mapping, ViewAccess};
use filemap_testkit::{unique, Helper};

/// Another process shrinks the object at `path` to `size` bytes.
fn shrink(path: &Path, size: u64) {
    let h = Helper::spawn(&["shrink", path.to_str().unwrap(), &size.to_string()]);
    assert_eq!(h.line(), "shrunk");
}

fn truncated<T: std::fmt::Debug>(what: &str, r: filemap::Result<T>) {
    assert!(
        matches!(r, Err(Error::Truncated { .. })),
        "{what}: expected Truncated, got {r:?}"
    );
}

/// Every safe accessor of `m`, after another process shrank it to `now`
/// bytes (from 64 KiB), with a view and an atomic taken before.
fn check_accessors(m: &Mapping, shrink_to: impl FnOnce()) {
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    v.write_at(0, b"before").unwrap();
    let early = v.atomic_u64(40 * 1024).unwrap();
    early.store(1, Ordering::Relaxed);
    shrink_to();
    let far = 32 * 1024;
    let mut buf = [0u8; 16];
    truncated("read_at", v.read_at(far, &mut buf));
    assert!(v.is_truncated());
    truncated("write_at", v.write_at(far, b"after"));
    truncated("load_u64", v.load_u64(far));
    truncated("load_u32", v.load_u32(far + 8));
    truncated("atomic_u64", v.atomic_u64(far + 16));
    // A reference taken before the shrink still works (on a private page).
    early.store(7, Ordering::Relaxed);
    assert_eq!(early.load(Ordering::Relaxed), 7);
    // Vanished bytes read as zero (a write after the shrink lands in this
    // process's private page, and reaches no one).
    let all = v.to_vec();
    assert_eq!(
        all[far + 1024..far + 1040],
        [0; 16],
        "vanished bytes read as zero"
    );
    assert_eq!(&all[far..far + 5], b"after");
    // A view mapped after the shrink, reaching past the end: refused up front.
    truncated("a new view", m.view(.., ViewAccess::Read));
    truncated("a new view", m.view(48 * 1024.., ViewAccess::ReadWrite));
}

#[test]
fn a_mapped_file_shrunk_by_another_process_gives_errors() {
    for to in [0u64, 4096] {
        let path = std::env::temp_dir().join(format!("{}.bin", unique("shrink-file")));
        let m = Mapping::from_path(&path, 64 * 1024, Access::ReadWrite).unwrap();
        check_accessors(&m, || shrink(&path, to));
        drop(m);
        std::fs::remove_file(&path).unwrap();
    }
}

/// Named objects are paths on Linux (`/dev/shm/NAME`), which the shrinking
/// process opens.
#[cfg(target_os = "linux")]
mod named {
    use std::time::{Duration, Instant};

    use filemap::channel::spsc;
    use filemap::{Error, Mapping, ViewAccess};
    use filemap_testkit::unique;

    use super::{check_accessors, shrink};

    fn shm(name: &str) -> std::path::PathBuf {
        std::path::Path::new("/dev/shm").join(name)
    }

    #[test]
    fn a_named_object_shrunk_to_zero_or_one_page_gives_errors() {
        for to in [0u64, 4096] {
            let name = unique("shrink");
            let m = Mapping::create(&name, 64 * 1024).unwrap();
            check_accessors(&m, || shrink(&shm(&name), to));
            if to == 4096 {
                // What is left can be viewed anew.
                let v = m.view(..4096, ViewAccess::Read).unwrap();
                assert!(!v.is_truncated());
            }
        }
    }

    #[test]
    fn a_channel_whose_segment_is_shrunk_gives_errors_within_its_timeout() {
        for to in [0u64, 4096] {
            let name = unique("shrink-spsc");
            let mut tx = spsc::Sender::create(&name, 64 * 1024).unwrap();
            let mut rx = spsc::Receiver::open(&name).unwrap();
            tx.send(b"one").unwrap();
            assert_eq!(rx.recv().unwrap().to_vec(), b"one");
            shrink(&shm(&name), to);
            let t = Instant::now();
            let r = rx.recv_timeout(Duration::from_millis(200)).map(|m| m.len());
            assert!(r.is_err(), "recv after the shrink: {r:?}");
            // The sender fills what it thinks is the ring (private pages now),
            // then learns.
            let err = loop {
                match tx.send_timeout(&[1; 1000], Duration::from_millis(200)) {
                    Ok(()) => assert!(t.elapsed() < Duration::from_secs(10), "never failed"),
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(err, Error::Truncated { .. }),
                "to {to}: the sender got {err:?}"
            );
            assert!(t.elapsed() < Duration::from_secs(10));
        }
    }
}
