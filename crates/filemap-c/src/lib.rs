//! filemap's C ABI: the Win32 file-mapping model, channels, events,
//! `Latest` cells and the robust mutex for C, C++ and every language that
//! can call C.
//!
//! The header is `include/filemap.h` (generated from this crate by
//! cbindgen; a test fails when it is out of date), and
//! `include/filemap.hpp` wraps it for C++17. `cargo build -p filemap-c
//! --release` writes `libfilemap_c.a`, `libfilemap_c.so` (`filemap_c.dll`
//! on Windows), `filemap.pc` and `filemap-config.cmake` to
//! `target/release`.
//!
//! ```c
//! #include <filemap.h>
//! int main(void) {
//!     FmMapping *m;
//!     if (fm_mapping_create("jobs", 4096, &m) != FM_OK) return 1;
//!     fm_mapping_close(m);
//! }
//! ```
//!
//! The same from Rust, through this crate's functions (what the C program
//! calls):
//!
//! ```
//! use filemap_c::*;
//! let mut m = std::ptr::null_mut();
//! // SAFETY: a NUL-terminated name and a place for the handle.
//! let st = unsafe { fm_mapping_create(c"filemap-c-doc".as_ptr(), 4096, &mut m) };
//! assert_eq!(st, FmStatus::FM_OK);
//! // SAFETY: `m` came from fm_mapping_create and is closed once.
//! unsafe { fm_mapping_close(m) };
//! ```
//!
//! # Rules every function follows
//!
//! - It returns an [`FmStatus`]: `FM_OK`, or why not. After any other
//!   status, [`fm_last_error_message`] says what happened on this thread,
//!   naming the object and, for an OS failure, the call and its code.
//! - No panic crosses into C: one becomes `FM_PANIC` (a bug in filemap).
//! - A null pointer where one is needed, a handle of another kind (or one
//!   closed already, while its memory still reads as closed), a bad flag,
//!   or a name that is not UTF-8 gives `FM_INVALID_ARGUMENT`, never a crash.
//! - Handles are opaque pointers. Each `*_create`/`*_open` gives one to the
//!   caller, who frees it with its `*_close` (which accepts NULL). A handle
//!   is used by one thread at a time (open another per thread).
//! - Output parameters are written only on `FM_OK` (and, for
//!   `FM_BUFFER_TOO_SMALL`, the length needed).
//! - Waiting calls come in three forms, as in the Rust crate: `*_try_*`
//!   never waits (`FM_WOULD_BLOCK` when it would), the plain form waits as
//!   long as it takes, and `*_timeout` waits at most the given milliseconds
//!   (`FM_TIMEOUT`).

mod channels;
mod handle;
mod mapping;
mod status;
mod sync;

pub use channels::*;
pub use mapping::*;
pub use status::*;
pub use sync::*;
