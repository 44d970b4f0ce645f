//! In-process checks of a wait set's doorbell (`park::bell`) over spsc
//! receivers: registration, ringing, order, sharing a source with another
//! set, and hostile registrations. The cross-process cases are in the
//! testkit's `waitset` tests.

use super::{Receiver, Sender};
use crate::error::Error;
use crate::park::bell;
use crate::wait::{Sleep, Source, WaitSet, Waitable};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn unique(tag: &str, i: usize) -> String {
    format!("fm-bell-{tag}{i}-{}", std::process::id())
}

/// `n` channels: receivers and the senders on them.
fn channels(tag: &str, n: usize) -> (Vec<Receiver>, Vec<Sender>) {
    let rxs: Vec<Receiver> = (0..n)
        .map(|i| Receiver::create(&unique(tag, i), 4096).unwrap())
        .collect();
    let txs = (0..n)
        .map(|i| Sender::open(&unique(tag, i)).unwrap())
        .collect();
    (rxs, txs)
}

/// The registration word of a receiver's segment.
fn reg_of(rx: &Receiver) -> u64 {
    let (seg, sleep, _) = Source::sleep_on(rx);
    let Sleep::Park(p) = sleep else {
        unreachable!("a receiver parks")
    };
    seg.a64(p.bell).load(Ordering::Acquire)
}

/// Waits a little on `rxs`, expecting nothing.
fn idle_wait(set: &mut WaitSet, rxs: &mut [&mut Receiver]) {
    let mut refs: Vec<&mut dyn Waitable> = rxs.iter_mut().map(|r| &mut **r as _).collect();
    let r = set.wait_timeout(&mut refs, Duration::from_millis(5));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
}

fn wait_all(set: &mut WaitSet, rxs: &mut [&mut Receiver]) -> Vec<usize> {
    let mut refs: Vec<&mut dyn Waitable> = rxs.iter_mut().map(|r| &mut **r as _).collect();
    set.wait_timeout(&mut refs, Duration::from_secs(10))
        .unwrap()
        .iter()
        .map(|r| r.index)
        .collect()
}

#[test]
fn a_set_of_many_registers_its_doorbell_and_a_sender_rings_its_bit() {
    let (mut rxs, mut txs) = channels("reg", 16);
    let mut set = WaitSet::new();
    idle_wait(&mut set, &mut rxs.iter_mut().collect::<Vec<_>>());
    let bell = set.doorbell().expect("a set of 16 has a doorbell");
    for (i, rx) in rxs.iter().enumerate() {
        assert_eq!(reg_of(rx), bell.reg_for(i), "source {i}");
    }
    txs[5].send(b"five").unwrap();
    let mut rung = Vec::new();
    bell.take(|b| rung.push(b));
    assert_eq!(rung, [5]);
    assert_eq!(rxs[5].try_recv().unwrap().unwrap().to_vec(), b"five");
    // Waiting on other sources takes the registrations back; so does
    // dropping the set.
    idle_wait(&mut set, &mut rxs[..10].iter_mut().collect::<Vec<_>>());
    assert!(rxs[10..].iter().all(|r| reg_of(r) == 0));
    assert_eq!(reg_of(&rxs[3]), set.doorbell().unwrap().reg_for(3));
    drop(set);
    assert!(rxs.iter().all(|r| reg_of(r) == 0));
    // A small set polls its sources and registers nothing.
    let (small, _t) = channels("small", 3);
    let mut s2 = WaitSet::new();
    let mut small = small;
    idle_wait(&mut s2, &mut small.iter_mut().collect::<Vec<_>>());
    assert!(s2.doorbell().is_none());
    assert!(small.iter().all(|r| reg_of(r) == 0));
}

#[test]
fn sources_rung_in_any_order_come_back_in_the_order_given_and_again_until_taken() {
    let (mut rxs, mut txs) = channels("order", 12);
    let mut set = WaitSet::new();
    idle_wait(&mut set, &mut rxs.iter_mut().collect::<Vec<_>>());
    txs[9].send(b"nine").unwrap();
    txs[2].send(b"two").unwrap();
    // Both may be found in one round or in two; either way, in order, and
    // each is returned until its message is taken.
    let mut seen = wait_all(&mut set, &mut rxs.iter_mut().collect::<Vec<_>>());
    if seen == [9] || seen == [2] {
        seen = wait_all(&mut set, &mut rxs.iter_mut().collect::<Vec<_>>());
    }
    assert_eq!(seen, [2, 9]);
    assert_eq!(rxs[2].try_recv().unwrap().unwrap().to_vec(), b"two");
    assert_eq!(
        wait_all(&mut set, &mut rxs.iter_mut().collect::<Vec<_>>()),
        [9]
    );
    assert_eq!(rxs[9].try_recv().unwrap().unwrap().to_vec(), b"nine");
    idle_wait(&mut set, &mut rxs.iter_mut().collect::<Vec<_>>());
}

#[test]
fn a_source_another_live_set_registered_is_polled_not_taken() {
    let (mut a_rxs, mut a_txs) = channels("ownera", 10);
    let (mut b_rxs, _b_txs) = channels("ownerb", 9);
    let mut a = WaitSet::new();
    idle_wait(&mut a, &mut a_rxs.iter_mut().collect::<Vec<_>>());
    let a_reg = reg_of(&a_rxs[0]);
    assert_ne!(a_reg, 0);
    // Set B waits on A's first source and nine of its own.
    let mut b = WaitSet::new();
    let mut list: Vec<&mut Receiver> = vec![&mut a_rxs[0]];
    list.extend(b_rxs.iter_mut());
    idle_wait(&mut b, &mut list);
    assert_eq!(reg_of(list[0]), a_reg, "B took A's registration");
    assert_eq!(b.polled(), [0]);
    a_txs[0].send(b"shared").unwrap();
    assert_eq!(wait_all(&mut b, &mut list), [0]);
    assert_eq!(list[0].try_recv().unwrap().unwrap().to_vec(), b"shared");
    // Once A is gone, its registrations are gone too, and B takes them.
    drop(a);
    assert_eq!(reg_of(list[0]), 0, "A's registration outlived it");
    let mut other: Vec<&mut Receiver> = list.into_iter().rev().collect();
    idle_wait(&mut b, &mut other);
    assert_eq!(reg_of(other[9]), b.doorbell().unwrap().reg_for(9));
}

#[test]
fn a_hostile_registration_costs_nothing_but_the_hint() {
    let (mut rxs, mut txs) = channels("hostile", 8);
    let pid = std::process::id();
    // Something of another kind under a doorbell's name: a sender told to
    // ring it opens nothing and writes nothing there.
    let decoy = format!("filemap-bell-{pid}-fff0");
    let mut decoy_rx = Receiver::create(&decoy, 4096).unwrap();
    let before = crate::segment::inspect(&decoy).unwrap();
    for (k, reg) in [
        bell::reg_word(pid, 0xfff0, 3),
        bell::reg_word(pid, 0xfff1, 2), // no such name
        u64::MAX,
        bell::reg_word(1, 0, 0xffff), // another process, bit past any doorbell
    ]
    .into_iter()
    .enumerate()
    {
        let (seg, sleep, _) = Source::sleep_on(&rxs[k]);
        let Sleep::Park(p) = sleep else {
            unreachable!()
        };
        seg.a64(p.bell).store(reg, Ordering::Release);
        txs[k].send(b"through").unwrap();
    }
    assert!(
        decoy_rx.try_recv().unwrap().is_none(),
        "the decoy got a message"
    );
    assert_eq!(crate::segment::inspect(&decoy).unwrap(), before);
    // A set finds every message all the same, and registers where the
    // words were left by no live set of this process.
    let mut set = WaitSet::new();
    let mut got = Vec::new();
    while got.len() < 4 {
        for i in wait_all(&mut set, &mut rxs.iter_mut().collect::<Vec<_>>()) {
            assert_eq!(rxs[i].try_recv().unwrap().unwrap().to_vec(), b"through");
            got.push(i);
        }
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);
    // A bit past the doorbell's end wraps around it instead of writing
    // past the segment.
    let bell = set.doorbell().unwrap();
    let (seg, sleep, _) = Source::sleep_on(&rxs[4]);
    let Sleep::Park(p) = sleep else {
        unreachable!()
    };
    let reg = bell.reg_for(4) | 0xffff;
    seg.a64(p.bell).store(reg, Ordering::Release);
    txs[4].send(b"wrapped").unwrap();
    let mut rung = Vec::new();
    bell.take(|b| rung.push(b));
    assert_eq!(rung, [0xffff % bell.bits()]);
}
