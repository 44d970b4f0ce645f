//! Sending and receiving allocate nothing per message: a counting global
//! allocator watches 10,000 messages through every channel and the seqlock
//! cell (both ends in this process, on this thread; allocations by other
//! threads, such as the reactor behind the futures, are not the messages'
//! and are not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use filemap::channel::broadcast::{self, Received};
use filemap::channel::{mpmc, spsc};
use filemap::sync::{LatestReader, LatestWriter};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocations are counted (set by `allocations`).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the counter has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout (see the impl).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: u64 = 10_000;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTED.with(|c| c.set(true));
    f();
    COUNTED.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
}

fn name(tag: &str) -> String {
    format!("fm-noalloc-{tag}-{}", std::process::id())
}

// One test function, so that nothing else runs on the measured thread.
#[test]
fn messages_cross_every_channel_without_allocating() {
    let msg = [7u8; 64];

    let mut tx = spsc::Sender::create(&name("spsc"), 4096).unwrap();
    let mut rx = spsc::Receiver::open(&name("spsc")).unwrap();
    let mut buf = [0u8; 64];
    let spsc = allocations(|| {
        for _ in 0..N {
            assert!(tx.try_send(&msg).unwrap());
            rx.try_recv()
                .unwrap()
                .unwrap()
                .read_at(0, &mut buf)
                .unwrap();
            let mut r = tx.try_reserve(64).unwrap().unwrap();
            r.write_at(0, &msg).unwrap();
            r.commit();
            rx.recv().unwrap().read_at(0, &mut buf).unwrap();
        }
    });
    assert_eq!(spsc, 0, "spsc send, reserve, receive");

    let ch = mpmc::Sender::create(&name("mpmc"), 16, 64).unwrap();
    let mrx = mpmc::Receiver::open(&name("mpmc")).unwrap();
    let mut v = Vec::with_capacity(64);
    let mpmc = allocations(|| {
        for _ in 0..N {
            assert!(ch.try_send(&msg).unwrap());
            assert!(mrx.try_recv_into(&mut v).unwrap());
            ch.send(&msg).unwrap();
            mrx.recv_into(&mut v).unwrap();
            ch.send_timeout(&msg, Duration::from_secs(60)).unwrap();
            mrx.recv_into_timeout(&mut v, Duration::from_secs(60))
                .unwrap();
        }
    });
    assert_eq!(mpmc, 0, "mpmc send, receive into a buffer");

    let mut btx = broadcast::Sender::create(&name("bcast"), 16, 64).unwrap();
    let mut brx = broadcast::Receiver::open(&name("bcast")).unwrap();
    let mut got = Received::default();
    got.data.reserve(64);
    let bcast = allocations(|| {
        for _ in 0..N {
            btx.send(&msg).unwrap();
            assert!(brx.try_recv_into(&mut got).unwrap());
            btx.send(&msg).unwrap();
            brx.recv_into(&mut got).unwrap();
            btx.send(&msg).unwrap();
            brx.recv_into_timeout(&mut got, Duration::from_secs(60))
                .unwrap();
        }
    });
    assert_eq!(bcast, 0, "broadcast send, receive into a Received");

    let mut w = LatestWriter::<[u64; 8]>::create(&name("latest"), &[0; 8]).unwrap();
    let r = LatestReader::<[u64; 8]>::open(&name("latest")).unwrap();
    let latest = allocations(|| {
        for i in 0..N {
            w.write(&[i; 8]);
            assert_eq!(r.read().unwrap(), [i; 8]);
        }
    });
    assert_eq!(latest, 0, "latest write, read");

    // The counter does see allocations: the Vec-returning forms allocate.
    let vec_forms = allocations(|| {
        ch.try_send(&msg).unwrap();
        std::hint::black_box(mrx.try_recv().unwrap());
    });
    assert!(vec_forms > 0, "the allocator is counting");
}
