//! Writing and reading mpmc messages in place (reservations and borrowed
//! receives, and their typed loans and samples): a reservation dropped or
//! left by a killed process is never delivered, and never stalls the queue.

use std::time::Duration;

use filemap::channel::mpmc::{Receiver, Sender};
use filemap_testkit::{unique, Helper, Reading};

#[test]
fn a_dropped_reservation_is_skipped_and_a_borrowed_message_frees_its_slot() {
    let name = unique("mpmc-in-place");
    let tx = Sender::create(&name, 2, 16).unwrap();
    let rx = Receiver::open(&name).unwrap();
    let mut r = tx.try_reserve(4).unwrap().expect("a slot");
    r.write_at(0, b"gone").unwrap();
    assert!(r.write_at(2, b"xyz").is_err(), "past the reserved length");
    drop(r); // retired: receivers skip it
    tx.send(b"kept").unwrap();
    let m = rx.recv_ref_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(m.to_vec(), b"kept");
    let mut four = [0u8; 2];
    m.read_at(2, &mut four).unwrap();
    assert_eq!(&four, b"pt");
    // Two slots: while `m` holds one, a sender a lap ahead can fill one more.
    assert!(tx.try_send(b"a").unwrap());
    drop(m);
    assert!(tx.try_send(b"b").unwrap(), "the borrowed slot was freed");
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), b"a");
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), b"b");
}

#[test]
fn a_process_killed_holding_a_reservation_does_not_stall_the_queue() {
    let name = unique("mpmc-reserve-killed");
    let tx = Sender::create(&name, 4, 16).unwrap();
    let rx = Receiver::open(&name).unwrap();
    let holder = Helper::spawn(&["mpmc-reserve-hold", &name]);
    assert_eq!(holder.line(), "held");
    holder.kill();
    // More messages than slots: the dead process's slot must be retired
    // (by a blocked sender or receiver) for these to get through.
    let t = std::thread::spawn(move || {
        for i in 0..20u8 {
            tx.send_timeout(&[i; 3], Duration::from_secs(30)).unwrap();
        }
    });
    for i in 0..20u8 {
        let m = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(m, [i; 3], "never the half-written one");
    }
    t.join().unwrap();
}

#[test]
fn typed_loans_and_samples_over_mpmc() {
    use filemap::typed::mpmc::{Receiver, Sender};
    let name = unique("typed-mpmc-in-place");
    let tx = Sender::<Reading>::create(&name, 4).unwrap();
    let rx = Receiver::<Reading>::open(&name).unwrap();
    let want = Reading::numbered(9);
    let mut loan = tx.loan_timeout(Duration::from_secs(5)).unwrap();
    loan.write_field(std::mem::offset_of!(Reading, sensor), &want.sensor)
        .unwrap();
    loan.write_field(std::mem::offset_of!(Reading, flags), &want.flags)
        .unwrap();
    loan.write_field(std::mem::offset_of!(Reading, value), &want.value)
        .unwrap();
    loan.write_field(std::mem::offset_of!(Reading, n), &want.n)
        .unwrap();
    assert!(loan.write_field(20, &0u64).is_err(), "past the value");
    loan.commit();
    let s = rx.sample_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(0).unwrap(), want);
    assert_eq!(
        s.read_field::<f64>(0, std::mem::offset_of!(Reading, value))
            .unwrap(),
        4.5
    );
}

#[test]
fn a_broadcast_reservation_is_received_whole_or_not_at_all() {
    use filemap::channel::broadcast::{Receiver, Sender};
    let name = unique("bcast-in-place");
    let mut tx = Sender::create(&name, 4, 16).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    {
        let mut r = tx.reserve(4).unwrap();
        r.write_at(0, b"junk").unwrap();
        assert!(r.write_at(3, b"xy").is_err(), "past the reserved length");
        assert_eq!(rx.try_recv().unwrap(), None, "not before its commit");
    } // dropped uncommitted: nothing sent; the next message takes its number
    tx.send(b"real").unwrap();
    let m = rx.try_recv().unwrap().unwrap();
    assert_eq!((m.seq, m.data.as_slice()), (0, &b"real"[..]));
    let mut r = tx.reserve(3).unwrap();
    r.write_at(0, b"abc").unwrap();
    r.commit();
    let m = rx.try_recv().unwrap().unwrap();
    assert_eq!((m.seq, m.data.as_slice(), m.sender), (1, &b"abc"[..], 0));
}

#[test]
fn an_mpmc_channel_asked_for_one_slot_has_two_and_never_overwrites() {
    let name = unique("mpmc-one-slot");
    let tx = Sender::create(&name, 1, 8).unwrap();
    let rx = Receiver::open(&name).unwrap();
    assert!(tx.try_send(b"a").unwrap());
    assert!(tx.try_send(b"b").unwrap());
    assert!(!tx.try_send(b"c").unwrap(), "full at two, not overwriting");
    assert_eq!(rx.try_recv().unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(rx.try_recv().unwrap().as_deref(), Some(&b"b"[..]));
}
