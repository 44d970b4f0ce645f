//! Sharing values between processes safely.
//!
//! - The seqlock cell `Latest<T>` of the design: [`LatestWriter`] publishes,
//!   [`LatestReader`]s read the last whole value.
//!
//! - [`Event`]: wait for a notification from another process.
//!
//! (The robust mutex is not built yet.)

mod event;
mod latest;

pub use event::Event;
pub use latest::{LatestReader, LatestWriter};
