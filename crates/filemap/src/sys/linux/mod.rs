//! Linux: named objects in `/dev/shm` with the Win32 lifetime (a shared
//! open-file-description lock per holder), memfd for unnamed objects,
//! futexes for waiting, through `rustix` (and `libc` for the OFD locks
//! rustix does not wrap). The parts shared with macOS are in `posix.rs`.
//!
//! # Lifetime of named objects on Linux (the Win32 model)
//!
//! A named object is the tmpfs file `/dev/shm/NAME` (what `shm_open("/NAME")`
//! opens). Every filemap process that holds it keeps a *shared* lock
//! (`F_OFD_SETLK`, `F_RDLCK`, whole file) on its own open file description,
//! for as long as its `Mapping` or any `View` lives. The kernel drops such a
//! lock when the last descriptor of that description closes: when the process
//! exits, `kill -9` included (and a child that copied the descriptor closes
//! its copy, or `exec`s); a process letting go drops it itself (below).
//!
//! Open-file-description locks rather than `flock`, for two reasons:
//! - An exclusive one (`F_WRLCK`) needs a descriptor open for writing, so a
//!   process that may only read the object can hold it like anyone else but
//!   never lock the owner out (with `flock`, a reader could take the
//!   exclusive lock on a stale object and keep every writer from opening it).
//! - Changing a shared lock to an exclusive one is atomic, and a refused
//!   change leaves the shared lock as it was: how a releasing process asks
//!   "does any other description hold it?" without letting go first.
//!   (`flock`'s conversion drops the lock first.)
//!
//! "Does anyone else hold it?" is `F_OFD_GETLK` for a write lock, which any
//! reader may ask; taking the exclusive lock is how a writer makes sure, for
//! the moment it removes a name, that nobody does.
//!
//! Transient objects (the default) carry the sticky bit (`S_ISVTX`) in their
//! mode; persistent ones carry `S_ISGID` instead, and objects made by other
//! programs carry neither. Only transient objects are ever removed behind
//! anyone's back.
//!
//! - **Creating**: the object is made complete before it gets its name: an
//!   unnamed `O_TMPFILE` in `/dev/shm` is sized, its pages reserved with
//!   `fallocate` (so a full `/dev/shm` fails here, not as SIGBUS later), its mode
//!   set with `fchmod` (independent of umask), a shared lock taken, and only
//!   then is it linked to the name with `linkat`, which fails if the name exists.
//!   No one can see a half-made object, and create-new is atomic.
//! - **Releasing**: when the last `Mapping`/`View` of the object in a process is
//!   dropped, the process first tries to turn its own shared lock into the
//!   exclusive one (atomic; a refusal leaves the shared lock as it was). That
//!   works when no *other* description holds a lock, whoever else shares
//!   this one (module docs, "Children"). Then it unlinks the name (after
//!   checking that the name still refers to this very file) and closes.
//!   Otherwise it lets go of its lock (`F_UNLCK`), closes its descriptor,
//!   opens the name afresh read-write and tries the exclusive lock there:
//!   two holders that let go at the same instant each refuse the other's
//!   upgrade, and after letting go at least one of them gets the lock. A process that may not write the object leaves
//!   that to the next one that can.
//! - **Crashes**: when the last holder dies, nobody is left to unlink; the name
//!   is then *stale*. Every filemap call that meets the name (open, create,
//!   create-or-open) sees that nobody else holds the transient object,
//!   removes it as a releaser would, and behaves as if it were absent. (So does
//!   `filemap clean`.) And so that their memory does not wait for someone to
//!   meet the name, a process's first `create` (and then one at most every
//!   minute) *sweeps* `/dev/shm`: every transient object of this user that
//!   nobody holds is removed the same way (the exclusive lock, taken only
//!   when no holder is left, is the test; live, persistent, foreign and
//!   other users' objects are never touched), within bounds (4,096 entries
//!   looked at, 20 ms). `FILEMAP_SWEEP=0` in the environment turns it off
//!   (`sweep`).
//! - **Opening**: an opener takes its shared lock and then checks that the name
//!   still refers to the file it opened; if a releaser unlinked it in between,
//!   the opener starts over and finds the name gone. A releaser's short
//!   exclusive lock is waited out.
//!
//! # Children
//!
//! A `fork`ed child shares its parent's open file description, and so the
//! lock on it, but is not a holder of its own, as a Win32 child gets no
//! handle that was not made inheritable: a child between `fork` and `exec`
//! holds a copy of every descriptor of its parent, close-on-exec or not, and
//! were it to count, a thread letting go of a name while another thread
//! starts a child (as any program with subprocesses does) would leave the
//! name behind. So a releasing process upgrades its own description's lock
//! (which copies of it do not hinder), and when that is refused it lets go
//! of the lock on the description (`F_UNLCK`, for every copy) before it
//! closes; and a child dropping its copy of a `Mapping` (the process that
//! took the lock is another) only closes its descriptor. The child keeps its
//! views. A child that should hold the name opens it, or is handed it with
//! `Mapping::inherit`, which hands over a new description, locked before it
//! is handed over (read-only or read-write); the name then lives until both
//! have let go. Descriptors are close-on-exec.
//!
//! Unlinking only ever happens while holding the exclusive lock on that very
//! file and after checking the name still refers to it, and nobody can replace
//! the name while that lock is held, so one process never removes another's
//! fresh object.
//!
//! Processes of filemap builds from before the switch to these locks (which
//! used `flock`) do not see these locks, nor these processes theirs: the two
//! must not share names.
//!
//! The parts, one file each: `names` (the lifetime protocol), `locks`,
//! `sweep` and `procs` (stale names), `file_record`, `commit`, `huge`,
//! `memory`, `futex`.

mod commit;
mod file_record;
mod futex;
mod huge;
mod locks;
mod memory;
mod names;
mod procs;
pub(crate) mod sweep;

pub(crate) use commit::*;
pub(crate) use file_record::*;
pub(crate) use futex::*;
pub(crate) use huge::*;
pub(crate) use locks::*;
pub(crate) use memory::*;
pub(crate) use names::*;
pub(crate) use procs::*;

/// The start time of process `pid` in clock ticks since boot (`/proc/PID/stat`
/// field 22), which with the pid names a process uniquely (pids are reused);
/// `None` if it does not run (gone, or a zombie).
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past it.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    // Field 3, the state: a zombie (exited, not yet reaped by its parent) or a
    // dead process no longer runs, even though its /proc entry remains.
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The faulting address in the `siginfo_t` of a `SIGBUS` (for `sigbus.rs`).
///
/// # Safety
/// `info` points to the `siginfo_t` the kernel passed to a `SIGBUS` handler.
pub(in crate::sys) unsafe fn fault_addr(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: for SIGBUS the union holds the fault fields (the caller's promise).
    unsafe { (*info).si_addr() as usize }
}

/// `MAP_FIXED_NOREPLACE`: place a view at an address, failing (`EEXIST`) rather
/// than replace what is mapped there (Linux 4.17+; older kernels take it as a
/// hint, which `posix::map` checks).
pub(in crate::sys) const NO_REPLACE: rustix::mm::MapFlags = rustix::mm::MapFlags::FIXED_NOREPLACE;

/// Flags for sending a hand-over: no `SIGPIPE` for a closed peer where the
/// system offers that per call (Linux); elsewhere the error comes back and
/// the signal follows its disposition.
pub(in crate::sys) const SEND_FLAGS: rustix::net::SendFlags = rustix::net::SendFlags::NOSIGNAL;

/// Flags for receiving a hand-over: received descriptors close on exec where
/// the system can do it at once (Linux); `receive_over` sets it otherwise.
pub(in crate::sys) const RECV_FLAGS: rustix::net::RecvFlags = rustix::net::RecvFlags::CMSG_CLOEXEC;
