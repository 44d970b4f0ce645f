//! Sharing values between processes safely.
//!
//! - The seqlock cell `Latest<T>` of the design: [`LatestWriter`] publishes,
//!   [`LatestReader`]s read the last whole value.
//!
//! - [`Event`]: wait for a notification from another process.
//! - [`Mutex`]: a robust lock over a value; a holder's death is reported to
//!   the next locker instead of blocking everyone.

mod event;
mod latest;
mod mutex;

pub use event::Event;
pub use latest::{LatestBytesReader, LatestBytesWriter, LatestReader, LatestWriter};
pub use mutex::{Mutex, MutexGuard, OwnedMutexGuard};

/// The observers `crate::inspect::observe` dispatches to.
pub(crate) mod observe {
    pub(crate) use super::event::observe as event;
    pub(crate) use super::latest::observe as latest;
    pub(crate) use super::mutex::observe as mutex;
}
