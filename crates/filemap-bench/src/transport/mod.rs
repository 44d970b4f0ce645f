//! One module per transport, each behind [`Transport`]: what the parent
//! makes before the child starts, the parent's side of each iteration, and
//! the child's whole side. The driver ([`crate::run`]) times the parent's
//! iterations the same way for every transport; [`TransportKind`] picks the module
//! with a one-line dispatch ([`with_transport`]). Adding a transport is a
//! module here, a [`TransportKind`] variant and one row of [`crate::TRANSPORTS`].

pub(crate) mod asyncio;
pub(crate) mod broadcast;
#[cfg(feature = "c")]
pub(crate) mod c_api;
pub(crate) mod client;
pub(crate) mod floor;
#[cfg(all(feature = "iceoryx2", target_os = "linux"))]
pub(crate) mod iceoryx2;
#[cfg(all(feature = "iceoryx2", target_os = "linux"))]
pub(crate) mod iceoryx2_rpc;
pub(crate) mod mpmc;
pub(crate) mod pipe;
pub(crate) mod rpc;
pub(crate) mod spsc;
#[cfg(unix)]
pub(crate) mod unix_socket;
#[cfg(unix)]
pub(crate) mod unix_socket_rpc;
pub(crate) mod waitset;
#[cfg(feature = "zenoh")]
pub(crate) mod zenoh;

use std::process::Child;

use crate::error::Result;
use crate::{Scenario, TransportKind};

/// One case as both processes see it.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    /// The transport and its mode (spin, blocking, ...).
    pub kind: TransportKind,
    /// Round trips or one-way streaming.
    pub scenario: Scenario,
    /// Message size in bytes.
    pub size: usize,
    /// Iterations, warm-up included.
    pub total: u64,
    /// A name unique to the case, for the objects it makes.
    pub name: String,
}

impl Case {
    /// `{name}.{suffix}`: the name of one of the case's objects.
    pub fn object(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.name)
    }

    /// True for round trips (the parent sends, the child answers).
    pub fn latency(&self) -> bool {
        self.scenario == Scenario::Latency
    }

    /// The ring capacity of a byte channel for this size.
    pub fn ring_capacity(&self) -> u64 {
        crate::ring_capacity(self.size)
    }
}

/// A transport's two sides.
pub(crate) trait Transport {
    /// What the parent holds during a case.
    type Parent: ParentSide;

    /// The parent's preparation, before the child starts (for example
    /// creating the channels the child then opens).
    fn setup(case: &Case) -> Result<Self::Parent>;

    /// The child process's side of a whole case: attach, call `ready()`,
    /// then answer (latency) or send (stream) `case.total` messages.
    fn child(case: &Case, ready: &dyn Fn()) -> Result<()>;
}

/// The parent's side of each iteration; the driver times these calls.
pub(crate) trait ParentSide {
    /// After the child said it is ready: anything that needs the child
    /// (accepting its connection, opening a channel it created, taking its
    /// stdin and stdout).
    fn attach(&mut self, _child: &mut Child, _case: &Case) -> Result<()> {
        Ok(())
    }

    /// Round trip `i`: send a message, receive the answer.
    fn round_trip(&mut self, i: u64) -> Result<()>;

    /// Streaming: receive message `i`, reading every byte. A transport that
    /// can lose messages returns at once for one it already knows lost.
    fn receive(&mut self, i: u64) -> Result<()>;

    /// Messages lost so far, for a transport that can lose them (broadcast:
    /// its sender never waits); `None` for one that cannot.
    fn lost(&self) -> Option<u64> {
        None
    }

    /// Streaming, for a transport that can lose messages: how many of the
    /// first messages (numbered from 0) are already received or known lost,
    /// which may be more than `receive` was called for (a receiver that
    /// fell behind jumps ahead). `None`: exactly those `receive` was called
    /// for.
    fn handled(&self) -> Option<u64> {
        None
    }
}

/// Calls `f::<T>()` with the transport of `peer`.
macro_rules! with_transport {
    ($peer:expr, $f:ident ( $($arg:expr),* )) => {{
        use $crate::transport as t;
        use $crate::Family;
        match $peer.family() {
            Family::Floor => $f::<t::floor::Floor>($($arg),*),
            Family::Spsc => $f::<t::spsc::Spsc>($($arg),*),
            #[cfg(feature = "c")]
            Family::CApi => $f::<t::c_api::CApi>($($arg),*),
            Family::Mpmc => $f::<t::mpmc::Mpmc>($($arg),*),
            Family::Broadcast => $f::<t::broadcast::Broadcast>($($arg),*),
            Family::Pipe => $f::<t::pipe::Pipe>($($arg),*),
            Family::WaitSet => $f::<t::waitset::WaitSetRt>($($arg),*),
            Family::Async => $f::<t::asyncio::Async>($($arg),*),
            Family::Rpc => $f::<t::rpc::Rpc>($($arg),*),
            #[cfg(unix)]
            Family::UnixSocketRpc => $f::<t::unix_socket_rpc::UnixSocketRpc>($($arg),*),
            #[cfg(all(feature = "iceoryx2", target_os = "linux"))]
            Family::Iceoryx2Rpc => $f::<t::iceoryx2_rpc::Iceoryx2Rpc>($($arg),*),
            #[cfg(unix)]
            Family::UnixSocket => $f::<t::unix_socket::UnixSocket>($($arg),*),
            #[cfg(all(feature = "iceoryx2", target_os = "linux"))]
            Family::Iceoryx2 => $f::<t::iceoryx2::Iceoryx2>($($arg),*),
            #[cfg(feature = "zenoh")]
            Family::Zenoh => $f::<t::zenoh::Zenoh>($($arg),*),
            #[allow(unreachable_patterns)]
            other => Err($crate::error::BenchError::Unsupported(format!(
                "{other:?} is not in this build"
            ))),
        }
    }};
}
pub(crate) use with_transport;

/// Busy-polls `f` until it says done.
#[inline]
pub(crate) fn spin(mut f: impl FnMut() -> filemap::Result<bool>) -> filemap::Result<()> {
    while !f()? {
        std::hint::spin_loop();
    }
    Ok(())
}
