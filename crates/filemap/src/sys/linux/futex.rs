//! Sleeping and waking across processes: futexes, `futex_waitv`.

use std::time::Duration;

use rustix::io::Errno;

/// Sleeping and waking across processes on words of one segment: a futex on
/// the shared word (not PRIVATE, so it works across processes).
#[derive(Debug)]
pub(crate) struct Parker;

impl Parker {
    /// For the segment mapped under `name` (unused here: the futex is keyed
    /// by the word's physical page).
    pub(crate) fn new(_name: Option<&str>) -> Parker {
        Parker
    }

    /// Blocks while `*word == expected`, for at most `timeout`; returns early
    /// on a wake-up or spuriously. `word` is the segment's word at `off`.
    pub(crate) fn wait(
        &self,
        _off: usize,
        word: &std::sync::atomic::AtomicU32,
        expected: u32,
        timeout: Duration,
    ) {
        use rustix::thread::futex;
        let ts = futex::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // EAGAIN (value changed), EINTR and ETIMEDOUT all mean "look again".
        let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
    }

    /// Wakes up to `n` sleepers on `word`, in any process.
    pub(crate) fn wake(&self, _off: usize, word: &std::sync::atomic::AtomicU32, n: u32) {
        let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), n);
    }
}

/// Whether this kernel has `futex_waitv` (Linux 5.16+), and the
/// environment does not ask to behave as if it had not (`FILEMAP_NO_WAITV`).
/// Asked once: an empty list is `EINVAL` where the call exists, `ENOSYS`
/// where it does not.
pub(crate) fn waits_natively() -> bool {
    use rustix::thread::futex;
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::env::var_os("FILEMAP_NO_WAITV").is_none()
            && !matches!(
                futex::waitv(
                    &[],
                    futex::WaitvFlags::empty(),
                    None,
                    rustix::time::ClockId::Monotonic
                ),
                Err(Errno::NOSYS)
            )
    })
}

/// How many words one `futex_waitv` takes (`FUTEX_WAITV_MAX`).
pub(super) const WAITV_MAX: usize = 128;

/// Sleeps until one of `words` moves or is woken, or `timeout` passes
/// (spurious returns allowed; callers re-check). One `futex_waitv` for up
/// to 127 words; for more, a thread per further 127 words, all woken
/// together through a private futex word when the first returns. Without
/// `futex_waitv` (Linux before 5.16) it polls: sleeps of at most 1 ms.
pub(crate) fn wait_any(words: &[crate::sys::WaitWord<'_>], timeout: Duration) {
    use std::sync::atomic::AtomicU32;
    if words.iter().any(|w| w.moved()) {
        return;
    }
    if let [w] = words {
        return w.parker.wait(w.off, w.word, w.expected, timeout);
    }
    if !waits_natively() {
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
        return;
    }
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let add = |t: rustix::time::Timespec| {
        let nanos = (t.tv_nsec as u64).saturating_add(u64::from(timeout.subsec_nanos()));
        rustix::thread::futex::Timespec {
            tv_sec: t
                .tv_sec
                .saturating_add(timeout.as_secs().min(i64::MAX as u64 / 2) as i64)
                .saturating_add((nanos / 1_000_000_000) as i64),
            tv_nsec: (nanos % 1_000_000_000) as _,
        }
    };
    let until = add(now);
    let cancel = AtomicU32::new(0);
    let chunk = WAITV_MAX - 1;
    let wait_chunk = |part: &[crate::sys::WaitWord<'_>]| {
        use rustix::thread::futex::{self, Wait, WaitFlags, WaitPtr};
        let mut list: Vec<Wait> = part
            .iter()
            .map(|w| {
                let mut e = Wait::new();
                e.val = u64::from(w.expected);
                e.uaddr = WaitPtr::new(w.word.as_ptr().cast());
                e.flags = WaitFlags::SIZE_U32;
                e
            })
            .collect();
        let mut c = Wait::new();
        c.uaddr = WaitPtr::new(cancel.as_ptr().cast());
        c.flags = WaitFlags::SIZE_U32 | WaitFlags::PRIVATE;
        list.push(c);
        // Returns on a wake-up, a word that differs (EAGAIN), the absolute
        // deadline (ETIMEDOUT) or a signal (EINTR): all mean "look again".
        let _ = futex::waitv(
            &list,
            futex::WaitvFlags::empty(),
            Some(&until),
            rustix::time::ClockId::Monotonic,
        );
        cancel.store(1, std::sync::atomic::Ordering::Release);
        let _ = futex::wake(&cancel, futex::Flags::PRIVATE, u32::MAX);
    };
    if words.len() <= chunk {
        return wait_chunk(words);
    }
    std::thread::scope(|s| {
        let mut parts = words.chunks(chunk);
        let first = parts.next().unwrap_or_default();
        for part in parts {
            let wait_chunk = &wait_chunk;
            // Without a thread this part is not waited on: the caller's
            // slice (and its re-check) still bounds how late it is seen.
            let _ = std::thread::Builder::new()
                .name("filemap-waitset".into())
                .spawn_scoped(s, move || wait_chunk(part));
        }
        wait_chunk(first);
    });
}
