//! Cross-process barriers: `membarrier`.

use std::sync::atomic::{AtomicU8, Ordering};

/// Whether this system offers cross-process barriers
/// (`MEMBARRIER_CMD_GLOBAL_EXPEDITED`) to this process. False when
/// `FILEMAP_NO_MEMBARRIER` is set (to anything) in the environment: the
/// process then behaves as if the system refused, which is how the fallback
/// is tested.
pub(crate) fn barriers_available() -> bool {
    use rustix::thread::{membarrier_query, MembarrierCommand};
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let q = membarrier_query();
        std::env::var_os("FILEMAP_NO_MEMBARRIER").is_none()
            && q.contains_command(MembarrierCommand::GlobalExpedited)
            && q.contains_command(MembarrierCommand::RegisterGlobalExpedited)
    })
}

/// Whether this process is registered for cross-process barriers, so that
/// a [`heavy_barrier`] in any process orders this process's memory accesses
/// as a fence would and its hot paths may skip their fences (see
/// `channel::Park`).
///
/// The first call starts the registration on a short-lived thread and
/// answers false until it is done: in a process with more than one thread
/// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` waits for an RCU grace period
/// (18 ms measured here), which opening a channel should not.
#[inline(always)]
pub(crate) fn barrier_registered() -> bool {
    // The answer once registered, inline: every send asks.
    REGISTRATION.load(Ordering::Acquire) == DONE || register_barrier()
}

const IDLE: u8 = 0;
const STARTED: u8 = 1;
const DONE: u8 = 2;
static REGISTRATION: AtomicU8 = AtomicU8::new(IDLE);

/// [`barrier_registered`] before the registration is done: starts it once.
#[cold]
#[inline(never)]
fn register_barrier() -> bool {
    match REGISTRATION.load(Ordering::Acquire) {
        DONE => true,
        STARTED => false,
        _ => {
            if barriers_available()
                && REGISTRATION
                    .compare_exchange(IDLE, STARTED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                let register = || {
                    use rustix::thread::{membarrier, MembarrierCommand};
                    if membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok() {
                        REGISTRATION.store(DONE, Ordering::Release);
                    }
                };
                // Without a thread, stay unregistered: this process fences.
                let _ = std::thread::Builder::new()
                    .name("filemap-membarrier".into())
                    .spawn(register);
            }
            false
        }
    }
}

/// A barrier in every running thread of every registered process
/// (`MEMBARRIER_CMD_GLOBAL_EXPEDITED`; the caller need not be registered):
/// once it returns, what any of them stored before it is visible here, and
/// what they load after it sees what this thread stored before the call.
/// False if the system refused it.
pub(crate) fn heavy_barrier() -> bool {
    use rustix::thread::{membarrier, MembarrierCommand};
    barriers_available() && membarrier(MembarrierCommand::GlobalExpedited).is_ok()
}
