//! One module per command: its arguments (`Args`, with its help and
//! examples) and its `run`. Output goes to the writer `main` passes in, so
//! that a closed stdout is an error `main` handles, not a panic.

#[cfg(feature = "bridge")]
pub mod bridge;
pub mod clean;
pub mod create;
pub mod demo;
pub mod dump;
pub mod echo;
pub mod hz;
pub mod info;
pub mod list;
pub mod read;
pub mod rm;
pub mod top;
pub mod write;
