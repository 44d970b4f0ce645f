//! Segments overwritten with random bytes (by a buggy or hostile process) give
//! errors, never a panic, a hang or an out-of-bounds access.

use std::time::Duration;

use filemap::channel::spsc::{Receiver, Sender};
use filemap::sync::LatestReader;
use filemap::{Access, Error, Mapping, Options, ViewAccess};
use filemap_testkit::unique;
use proptest::prelude::*;

/// Writes `bytes` at `offset` of the object `name` through a raw view.
fn scribble(name: &str, offset: usize, bytes: &[u8]) {
    let m = Mapping::open(name, Access::ReadWrite).unwrap();
    let v = m.view(.., ViewAccess::ReadWrite).unwrap();
    let end = (offset + bytes.len()).min(v.len());
    if offset < end {
        v.write_at(offset, &bytes[..end - offset]).unwrap();
    }
}

fn quick() -> Options {
    Options::new().ready_timeout(Duration::from_millis(20))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    // Corrupt the control area or ring of a live channel: both ends keep
    // answering with Ok or an error.
    #[test]
    fn corrupt_spsc_indices_and_records_give_errors(
        offset in 0usize..(128 + 320 + 1024),
        bytes in proptest::collection::vec(any::<u8>(), 1..24),
        sends in 0usize..40,
    ) {
        let name = unique("corrupt-spsc");
        let mut tx = Sender::create(&name, 1024).unwrap();
        let mut rx = Receiver::open(&name).unwrap();
        // Keeps the object alive after both ends are dropped, to open it again.
        let _keep = Mapping::open(&name, Access::Read).unwrap();
        for i in 0..sends {
            let _ = tx.try_send(&vec![i as u8; i * 3]);
        }
        scribble(&name, offset, &bytes);
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(Some(m)) => { let _ = m.to_vec(); }
                Ok(None) => break,
                Err(_) => break,
            }
        }
        for i in 0..64 {
            if !matches!(tx.try_send(&[i as u8; 50]), Ok(true)) {
                break;
            }
        }
        let _ = tx.send_timeout(&[1; 10], Duration::from_millis(1));
        let _ = rx.recv_timeout(Duration::from_millis(1)).map(|m| m.len());
        drop((tx, rx));
        // Opening it again checks the header: Ok (if only data was hit) or an error.
        match Receiver::open_with(&name, &quick()) {
            Ok(mut r) => { let _ = r.try_recv().map(|m| m.map(|m| m.len())); }
            Err(Error::Corrupt { .. } | Error::Incompatible { .. } | Error::NotReady { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }

    // Random bytes over the whole header: opening gives a clear error or works.
    #[test]
    fn random_headers_are_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 128)) {
        let name = unique("corrupt-header");
        let _tx = Sender::create(&name, 256).unwrap();
        scribble(&name, 0, &bytes);
        let r = Receiver::open_with(&name, &quick());
        prop_assert!(
            matches!(r, Err(Error::Corrupt { .. } | Error::Incompatible { .. } | Error::NotReady { .. } | Error::Busy { .. })),
            "{:?}", r.map(|_| ())
        );
        let l = LatestReader::<u64>::open(&name);
        prop_assert!(l.is_err());
    }
}

// The layout's offsets, as documented in channel/spsc.rs.
const HEAD: usize = 192;
const DATA: usize = 448;

#[test]
fn each_corrupted_index_or_record_is_detected() {
    // The first record's header is at DATA: length in the low 4 bytes, then
    // the stamp (1 in the first lap) with the padding flag in the top bit.
    let pad_stamp_1 = 1u32 | 1 << 31;
    let cases: [(&str, usize, &[u8]); 2] = [
        (
            "record length beyond the limit",
            DATA,
            &u32::MAX.to_ne_bytes(),
        ),
        (
            "padding record of the wrong length",
            DATA + 4,
            &pad_stamp_1.to_ne_bytes(),
        ),
    ];
    for (what, offset, bytes) in cases {
        let name = unique("corrupt-one");
        let mut tx = Sender::create(&name, 1024).unwrap();
        let mut rx = Receiver::open(&name).unwrap();
        assert!(tx.try_send(b"a message").unwrap());
        scribble(&name, offset, bytes);
        match rx.try_recv().map(|m| m.map(|m| m.len())) {
            Err(Error::Corrupt { reason, object }) => {
                assert_eq!(object, name);
                assert!(!reason.is_empty(), "{what}");
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }
    // An index that is not a record boundary: whoever opens the channel next
    // refuses it (it would address a record header mid-word).
    let name = unique("corrupt-odd");
    let tx = Sender::create(&name, 1024).unwrap();
    let _keep = Mapping::open(&name, Access::Read).unwrap();
    drop(tx);
    scribble(&name, HEAD, &3u64.to_ne_bytes());
    match Receiver::open_with(&name, &quick()) {
        Err(Error::Corrupt { reason, .. }) => {
            assert!(reason.contains("not a multiple of 8"), "{reason}")
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }

    // The receiver's index moved past the sender's: the sender detects it.
    let name = unique("corrupt-head");
    let mut tx = Sender::create(&name, 1024).unwrap();
    let _rx = Receiver::open(&name).unwrap();
    scribble(&name, HEAD, &4096u64.to_ne_bytes());
    for _ in 0..100 {
        match tx.try_send(&[0; 100]) {
            Ok(true) => continue,
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("receiver's index 4096"), "{reason}");
                return;
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    panic!("the corrupt receiver index was never noticed");
}
