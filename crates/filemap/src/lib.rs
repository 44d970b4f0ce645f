//! Win32-style file mapping on every OS: named and unnamed mapping objects,
//! backed by memory or by a file, that processes create or open, and views of
//! them mapped into each process.
//!
//! ```
//! use filemap::{Access, Mapping, ViewAccess};
//!
//! // Process A: create a named mapping and write into it.
//! let a = Mapping::create("filemap-doc-hello", 4096)?;
//! let va = a.view(.., ViewAccess::ReadWrite)?;
//! va.write_at(0, b"Message from first process.")?;
//!
//! // Process B (here the same process, for brevity): open it by name and read.
//! let b = Mapping::open("filemap-doc-hello", Access::Read)?;
//! let vb = b.view(.., ViewAccess::Read)?;
//! let mut buf = [0u8; 27];
//! vb.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"Message from first process.");
//!
//! // The name lives while any handle or view does, in any process.
//! drop((va, vb, a, b));
//! assert!(matches!(
//!     Mapping::open("filemap-doc-hello", Access::Read),
//!     Err(filemap::Error::NotFound { .. })
//! ));
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! The `examples/` folder has the same scenario as two real processes
//! (`writer` and `reader`); `filemap demo` (the CLI) runs both, narrated.
//!
//! # From Win32 to filemap
//!
//! | Win32 | filemap |
//! |---|---|
//! | `CreateFileMapping(INVALID_HANDLE_VALUE, .., PAGE_READWRITE, hi, lo, name)` | [`Mapping::create`] (fails if it exists), [`Mapping::create_or_open`]; [`Options`] for mode, lifetime, timeouts |
//! | `GetLastError() == ERROR_ALREADY_EXISTS` | [`Disposition::Opened`] from `create_or_open`; the existing object is never resized |
//! | `CreateFileMapping(hFile, .., size, NULL)` | [`Mapping::from_file`], [`Mapping::from_path`] (size 0 = the file's size; larger grows it) |
//! | `CreateFileMapping(hFile, .., size, name)`, then `OpenFileMapping(name)` elsewhere | [`Mapping::create_file`], [`Options::create_file`] / [`Options::create_or_open_file`]; openers use [`Mapping::open`] and map the file's pages (Linux: a file record in `/dev/shm`; not on macOS yet) |
//! | `lpName = NULL` + handle inheritance | [`Mapping::anonymous`], [`Mapping::inherit`] → token → [`Mapping::from_inherited`] in the child |
//! | `DuplicateHandle` into another process | [`os`]: `os::windows::MappingExt::duplicate_into` → token → [`Mapping::from_inherited`]; on Unix `os::unix::MappingExt::send_over` a Unix socket → `os::unix::receive_mapping` |
//! | `OpenFileMapping(FILE_MAP_READ or FILE_MAP_WRITE, FALSE, name)` | [`Mapping::open`] with [`Access::Read`] / [`Access::ReadWrite`] |
//! | `MapViewOfFile(h, access, offset, n)` | [`Mapping::map`] (`n` = 0: to the end) or [`Mapping::view`] with a range; any offset |
//! | `MapViewOfFileEx(h, access, offset, n, base)` | [`Mapping::map_at`]: the view at that address, or [`Error::Placement`]; never replaces a mapping |
//! | `CreateFileMapping(.., SEC_RESERVE, ..)`, then `VirtualAlloc(MEM_COMMIT)` on a view | [`Options::reserve`], then [`Mapping::commit`] (for every process); [`Mapping::committed_len`] / [`Mapping::is_committed`] to follow growth; views of uncommitted pages are [`Error::NotCommitted`] (not on macOS) |
//! | `CreateFileMapping(.., SEC_COMMIT \| SEC_LARGE_PAGES, ..)`, `FILE_MAP_LARGE_PAGES` | [`Options::large_pages`] (Linux: transparent huge pages of `/dev/shm` for names, a huge-page memfd for [`Options::anonymous`]); [`Mapping::large_page_size`], and [`View::large_page_bytes`] reads back what the OS gave; [`Error::Unsupported`] names the missing setting |
//! | `FILE_MAP_READ` / `FILE_MAP_WRITE` / `FILE_MAP_COPY` | [`ViewAccess::Read`] / [`ViewAccess::ReadWrite`] / [`ViewAccess::CopyOnWrite`] |
//! | `UnmapViewOfFile` | drop the [`View`], or [`View::unmap`] to see errors |
//! | `FlushViewOfFile` (+ `FlushFileBuffers`) | [`View::flush`] (+ [`View::flush_durable`]) |
//! | `CloseHandle` | drop the [`Mapping`] |
//! | `Local\` / `Global\` | accepted prefixes (see [`name`]) |
//! | the object lives until its last handle closes | [`Lifetime::Transient`], the default everywhere, crash included; [`Lifetime::Persistent`] + [`Mapping::remove`] for POSIX semantics |
//!
//! # Beyond raw mappings
//!
//! - [`segment`]: a self-describing header for managed objects, checked on open.
//! - [`channel::spsc`]: a single-producer single-consumer byte channel between
//!   processes, copying or zero-copy, spinning or blocking, that reports a dead
//!   peer instead of hanging; [`channel::mpmc`] and [`channel::broadcast`].
//! - [`sync`]: a seqlock cell, a cross-process event, a robust mutex.
//! - [`wait`]: waiting on many channels and events at once
//!   ([`wait::WaitSet`], like `WaitForMultipleObjects`), and the reactor
//!   behind the async forms below.
//! - [`typed`]: the channels carrying values of a plain-old-data type, the
//!   type recorded and checked on open, written and read in place without
//!   `unsafe`; with the `serde` feature, any serde type as postcard bytes.
//! - [`rpc`]: request-response between processes: servers sharing the work,
//!   clients with many calls in flight, each answered once, crash-safe.
//! - [`inspect`]: what shared-memory objects exist and who holds them (Linux;
//!   on Windows, [`os`]'s `windows::sections`).
//!
//! ```
//! use filemap::channel::spsc::{Receiver, Sender};
//! use std::time::Duration;
//!
//! let mut tx = Sender::create("filemap-doc-lib-spsc", 4096)?; // one process
//! let mut rx = Receiver::open("filemap-doc-lib-spsc")?;       // another
//! tx.send(b"job 1")?;
//! assert_eq!(rx.recv_timeout(Duration::from_secs(1))?.to_vec(), b"job 1");
//! # Ok::<(), filemap::Error>(())
//! ```
//!
//! # One convention for everything that waits or is named
//!
//! Every type that can wait has the same four forms (crossbeam-channel's),
//! and every named type the same four constructors:
//!
//! | form | waits | on time-out |
//! |---|---|---|
//! | `try_x(..)` | never | — (`Ok(None)` / `Ok(false)` when not possible now) |
//! | `x(..)` | as long as it takes | — |
//! | `x_timeout(.., Duration)` | at most that long (`Duration::MAX`: no limit) | [`Error::Timeout`] naming the object |
//! | `x_deadline(.., Instant)` | until then | [`Error::Timeout`] naming the object |
//! | `x_async(..).await` | the task sleeps; no thread blocks, nothing spins | (use the runtime's timeout) |
//!
//! The async forms (`recv_async`, `send_async`, `reserve_async`,
//! `wait_async`) work with any executor (tokio, async-std, smol, ...): a
//! few threads of filemap's own sleep on the channels' words and wake the
//! tasks (see [`wait`]). They are cancel-safe: a dropped receive takes
//! nothing, a dropped send sends nothing.
//!
//! | type | waiting operations | constructors |
//! |---|---|---|
//! | [`channel::spsc::Sender`] | `send`, `reserve` (+ `_async`) | `create`, `create_with`, `open`, `open_with` |
//! | [`channel::spsc::Receiver`] | `recv` (+ `_async`) | the same |
//! | [`channel::mpmc::Sender`] | `send` (+ `_async`) | the same |
//! | [`channel::mpmc::Receiver`] | `recv` (+ `_async`), `recv_into` | the same |
//! | [`channel::broadcast::Sender`] | none: `send` never waits | the same |
//! | [`channel::broadcast::Receiver`] | `recv` (+ `_async`), `recv_into` | the same |
//! | [`sync::LatestWriter`] / [`sync::LatestReader`] | none: `write` and `read` never wait | the same |
//! | [`sync::Event`] | `wait` (+ `_async`) | the same |
//! | [`wait::WaitSet`] | `wait` on many sources at once | `new` |
//! | [`sync::Mutex`] | `lock` | the same |
//! | [`rpc::Client`] | `call` (+ `_async`), `response` (+ `_async`), `send_request` | `open`, `open_with` |
//! | [`rpc::Server`] | `recv_request` (+ `_async`) | `create`, `create_with`, `open`, `open_with` |
//!
//! `create` makes the named object (failing if the name exists) and attaches
//! in the type's role; `open` attaches to an existing one; the `_with` forms
//! take [`Options`] (mode, lifetime, how long to wait for a creator that has
//! not finished). Types are named by role: `Sender`/`Receiver` on every
//! channel, `LatestWriter`/`LatestReader` on the cell.
//!
//! # Platforms
//!
//! - **Linux**: `/dev/shm` (POSIX shm: a name `X` is the object Python's
//!   `SharedMemory("X")` and Boost's `shared_memory_object("X")` open), memfd for
//!   unnamed mappings, `mmap`, and open-file-description locks to know when the
//!   last holder is gone (a process that may only read an object can never lock
//!   its owner out; a child handed the mapping with [`Mapping::inherit`] keeps
//!   the name, a `fork`ed child shares the views but not the hold, so a clean
//!   exit leaves no name behind however many children are being started).
//!   A process's first `create` sweeps its user's stale names (`FILEMAP_SWEEP=0`
//!   turns that off), and a live name a foreign tool unlinks (Python's resource
//!   tracker) is put back by its holders. See the notes on the `sys` layer for
//!   the exact protocol.
//! - **Windows**: `CreateFileMappingW`, `OpenFileMappingW`, `MapViewOfFileEx` & co.
//!   [`Lifetime::Persistent`] is not available; [`Options::mode`] is ignored.
//! - **macOS**: `shm_open` with the 31-byte name limit handled as [`name`]
//!   describes. A transient object is removed when its creator releases it
//!   (a crashed creator leaves the name until [`Mapping::remove`]), and a
//!   read-only inheritable handle of a read-write mapping is not available.
//!   No locks keep the lifetime there, so no reader can lock anyone out; but
//!   the creator's release removes the name even while a `fork`ed child or
//!   another process still holds the object (which keeps its memory).
//!   Named file mappings ([`Options::create_file`]), reserve-then-commit
//!   ([`Options::reserve`]) and large pages ([`Options::large_pages`]) give
//!   [`Error::Unsupported`] there for now: macOS shm objects carry no mark
//!   an opener could read to tell them apart, cannot be committed in parts,
//!   and do not take superpages.
//!
//! # Safety
//!
//! Other processes can write shared memory at any time, so safe code gets
//! copies and atomics, never `&[u8]` over shared bytes; [`View::as_slice`] and
//! [`View::as_mut_slice`] are `unsafe` with the conditions spelled out.
//!
//! Another process may also *shrink* an object this process maps. On Unix a
//! `SIGBUS` handler (installed with the first view, chaining to any handler
//! installed before it) replaces the vanished pages with private zero pages,
//! so the access completes, and the safe call reports [`Error::Truncated`]
//! (see [`View::is_truncated`] for exactly what is covered). Windows cannot
//! shrink a mapped section.

#![warn(missing_docs)]
// `unsafe` is allowed only where it is needed: the `sys` layer, the escape
// hatches that lend shared bytes as slices (`View`, spsc's `Message` and
// `Reservation`, mpmc's `MessageRef` and `Reservation`, broadcast's
// `Reservation`: what the C API's zero-copy calls hand out), and adopting
// an inherited handle.
#![deny(unsafe_code)]

// Layers, bottom up (a module imports only from those below it in this
// list; `tests/layers.rs` checks the rule for every module):
// leaves (error, hash) < types, name < sys < mapping < segment < park
// < wait < sync, channel < inspect, os, typed < rpc.
mod error;
mod hash;
pub mod name;
mod types;

#[allow(unsafe_code)]
mod sys;

mod mapping;
pub mod segment;

mod park;

pub mod wait;

pub mod channel;
pub mod sync;

pub mod inspect;

pub mod os;

pub mod typed;

pub mod rpc;

pub use error::{Error, ErrorKind, Result};
pub use mapping::{
    Access, Backing, Disposition, Inheritable, Lifetime, Mapping, MessageType, Options, Owners,
    View, ViewAccess, DEFAULT_ASYNC_SPIN,
};

/// The README's Rust examples, run as doc tests so that they cannot drift
/// from the API (its Python blocks run in the Python package's tests).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The allocation granularity of this OS: the OS maps views from multiples of
/// it (64 KiB on Windows, the page size elsewhere). filemap aligns for you;
/// this is for callers who want to avoid the slack.
pub fn allocation_granularity() -> u64 {
    sys::granularity()
}
