//! Sharing values between processes safely.
//!
//! - The seqlock cell `Latest<T>` of the design: [`LatestWriter`] publishes,
//!   [`LatestReader`]s read the last whole value.
//!
//! (The robust mutex and the cross-process event are not built yet.)

mod latest;

pub use latest::{LatestReader, LatestWriter};
