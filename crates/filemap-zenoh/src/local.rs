//! The local ends of routes: filemap channels and cells opened by name, their
//! kind read from their header.

use std::time::Duration;

use filemap::channel::{broadcast, mpmc, spsc};
use filemap::segment::Kind;
use filemap::sync::{LatestBytesReader, LatestBytesWriter};
use filemap::Error as FmError;

use crate::route::LocalKind;

/// How long one local wait lasts before the route looks at its stop flag.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// The kind of the object `name`, read from its header.
///
/// `Err(Some(e))` for an object that is there but cannot be bridged (or
/// cannot be read), `Err(None)` when it does not exist (yet).
pub(crate) fn kind_of(name: &str) -> Result<LocalKind, Option<String>> {
    match filemap::segment::inspect(name) {
        Ok(Some(h)) => match h.kind {
            Kind::Spsc => Ok(LocalKind::Spsc),
            Kind::Mpmc => Ok(LocalKind::Mpmc),
            Kind::Broadcast => Ok(LocalKind::Broadcast),
            Kind::Latest => Ok(LocalKind::Latest),
            other => Err(Some(format!(
                "`{name}` is a {} object, not a channel or a Latest cell",
                other.as_str()
            ))),
        },
        Ok(None) => Err(Some(format!(
            "`{name}` is a plain mapping, not a channel or a Latest cell"
        ))),
        Err(FmError::NotFound { .. }) => Err(None),
        // Created but not ready yet: look again.
        Err(FmError::NotReady { .. }) => Err(None),
        Err(e) => Err(Some(e.to_string())),
    }
}

/// A message read from a local source.
pub(crate) struct Got {
    /// Messages the source skipped just before this one (a broadcast
    /// receiver lapped by its sender, `Latest` values overwritten between two
    /// looks).
    pub skipped: u64,
}

/// Where an Out route reads.
pub(crate) enum Source {
    Spsc(spsc::Receiver),
    Mpmc(mpmc::Receiver, Vec<u8>),
    Broadcast(broadcast::Receiver, broadcast::Received),
    /// The reader, the value buffer and the version last published.
    Latest(LatestBytesReader, Vec<u8>, Option<u64>),
}

impl Source {
    pub(crate) fn open(name: &str, kind: LocalKind) -> filemap::Result<Source> {
        Ok(match kind {
            LocalKind::Spsc => Source::Spsc(spsc::Receiver::open(name)?),
            LocalKind::Mpmc => Source::Mpmc(mpmc::Receiver::open(name)?, Vec::new()),
            LocalKind::Broadcast => {
                Source::Broadcast(broadcast::Receiver::open(name)?, Default::default())
            }
            LocalKind::Latest => {
                let r = LatestBytesReader::open(name)?;
                let buf = vec![0; r.size()];
                Source::Latest(r, buf, None)
            }
        })
    }

    /// Waits up to `slice` (for a `Latest` cell: `poll`) for the next
    /// message and hands its bytes to `f`, as an owned buffer (copied once,
    /// out of the ring, or moved out of the receive buffer). `Ok(None)` when
    /// none came.
    pub(crate) fn next<R>(
        &mut self,
        slice: Duration,
        poll: Duration,
        f: impl FnOnce(u64, Vec<u8>) -> R,
    ) -> filemap::Result<Option<(Got, R)>> {
        let got = |skipped| Got { skipped };
        match self {
            Source::Spsc(rx) => {
                // The message is borrowed in place; one copy, into the
                // sample Zenoh sends.
                let bytes = match rx.recv_timeout(slice) {
                    Ok(m) => m.to_vec(),
                    Err(FmError::Timeout { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                };
                // Free it now: a bridge that takes over this channel after
                // this one died must not publish it again.
                rx.release();
                Ok(Some((got(0), f(0, bytes))))
            }
            Source::Mpmc(rx, buf) => match rx.recv_into_timeout(buf, slice) {
                Ok(()) => Ok(Some((got(0), f(0, std::mem::take(buf))))),
                Err(FmError::Timeout { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            Source::Broadcast(rx, m) => match rx.recv_into_timeout(m, slice) {
                Ok(()) => Ok(Some((
                    got(m.missed),
                    f(m.missed, std::mem::take(&mut m.data)),
                ))),
                Err(FmError::Timeout { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            Source::Latest(r, buf, last) => {
                // A cell has no wake-up: look every `poll`, within the slice.
                let deadline = std::time::Instant::now() + slice;
                loop {
                    if Some(r.version()) != *last {
                        let v = r.read_versioned(buf)?;
                        if Some(v) != *last {
                            // Versions grow by one per write: the values
                            // between two looks were never published.
                            let skipped = match *last {
                                Some(l) if v > l => v - l - 1,
                                _ => 0,
                            };
                            *last = Some(v);
                            return Ok(Some((got(skipped), f(skipped, buf.clone()))));
                        }
                    }
                    if std::time::Instant::now() >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(poll);
                }
            }
        }
    }
}

/// What became of a message handed to a [`Sink`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Put {
    /// Written.
    Done,
    /// Not written: the channel was full and the route drops.
    Dropped,
    /// Not written yet: still full after one slice (block mode; try again).
    Full,
}

/// Where an In route writes.
pub(crate) enum Sink {
    Spsc(spsc::Sender),
    Mpmc(mpmc::Sender),
    Broadcast(broadcast::Sender),
    Latest(LatestBytesWriter),
}

impl Sink {
    pub(crate) fn open(name: &str, kind: LocalKind) -> filemap::Result<Sink> {
        Ok(match kind {
            LocalKind::Spsc => Sink::Spsc(spsc::Sender::open(name)?),
            LocalKind::Mpmc => Sink::Mpmc(mpmc::Sender::open(name)?),
            LocalKind::Broadcast => Sink::Broadcast(broadcast::Sender::open(name)?),
            LocalKind::Latest => Sink::Latest(LatestBytesWriter::open(name)?),
        })
    }

    /// Writes `msg`: `block` waits up to one slice for room, else a full
    /// channel drops it. Broadcast channels and cells never wait.
    pub(crate) fn put(&mut self, msg: &[u8], block: bool) -> filemap::Result<Put> {
        let sent = |ok: bool| {
            if ok {
                Put::Done
            } else {
                Put::Dropped
            }
        };
        match self {
            Sink::Spsc(tx) if block => match tx.send_timeout(msg, SLICE) {
                Ok(()) => Ok(Put::Done),
                Err(FmError::Timeout { .. }) => Ok(Put::Full),
                Err(e) => Err(e),
            },
            Sink::Spsc(tx) => tx.try_send(msg).map(sent),
            Sink::Mpmc(tx) if block => match tx.send_timeout(msg, SLICE) {
                Ok(()) => Ok(Put::Done),
                Err(FmError::Timeout { .. }) => Ok(Put::Full),
                Err(e) => Err(e),
            },
            Sink::Mpmc(tx) => tx.try_send(msg).map(sent),
            Sink::Broadcast(tx) => tx.send(msg).map(|()| Put::Done),
            Sink::Latest(w) => w.write(msg).map(|()| Put::Done),
        }
    }
}

/// Whether an error from a local object means "its peer or the object went
/// away: reopen it", as opposed to "this message cannot be written".
pub(crate) fn is_gone(e: &FmError) -> bool {
    use filemap::ErrorKind as K;
    matches!(
        e.kind(),
        K::PeerGone | K::NotFound | K::Corrupt | K::Truncated | K::Busy
    )
}
