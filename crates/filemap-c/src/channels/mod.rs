//! The channels: spsc, mpmc and broadcast.

mod broadcast;
mod mpmc;
mod spsc;

pub use broadcast::*;
pub use mpmc::*;
pub use spsc::*;

use crate::status::{Fail, FmStatus};

/// `FM_WOULD_BLOCK` for a receive that found nothing (a fixed message: a
/// hot path, polled in loops).
pub(crate) const EMPTY: Fail = Fail::fixed(
    FmStatus::FM_WOULD_BLOCK,
    c"no message is queued in the channel now",
);

/// `FM_WOULD_BLOCK` for a send or reservation that found no room.
pub(crate) const FULL: Fail = Fail::fixed(
    FmStatus::FM_WOULD_BLOCK,
    c"the channel has no room for the message now",
);

/// `FM_BUFFER_TOO_SMALL`: the message stays queued for the handle.
pub(crate) fn too_small(label: &str, need: usize, have: usize) -> Fail {
    Fail::new(
        FmStatus::FM_BUFFER_TOO_SMALL,
        format!(
            "the next message in `{label}` is {need} bytes, the buffer {have}: it stays queued for this handle; receive it with a larger buffer"
        ),
    )
}

/// A call out of order on a handle with an open reservation.
pub(crate) fn reserving(label: &str) -> Fail {
    Fail::arg(format!(
        "a reservation on `{label}` is open: commit or abort it first"
    ))
}

/// A commit or abort with no reservation open.
pub(crate) fn not_reserving(label: &str) -> Fail {
    Fail::arg(format!("no reservation on `{label}` is open"))
}
