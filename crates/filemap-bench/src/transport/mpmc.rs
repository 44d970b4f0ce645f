//! filemap MPMC, busy-polling ([`TransportKind::Mpmc`]) or blocking
//! ([`TransportKind::MpmcBlocking`]), receiving into a reused buffer. Channels
//! as for SPSC: `ping` and `pong`, or `pong` only.
//!
//! With one sender and one receiver, the child sends on `pong` and the
//! parent receives. The 2 × 2 rows ([`TransportKind::Mpmc2x2`],
//! [`TransportKind::Mpmc2x2Blocking`], streaming only) put two senders on
//! `pong` in the child, each on its own thread with its own handle, and two
//! receivers in the parent: the timed thread's and a second thread's. Each
//! sender sends its half of the messages; the timed thread's iteration `i`
//! ends once the two receivers together hold `i + 1` messages, so the rate
//! is that of the channel, not of one receiver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use filemap::channel::mpmc::{Receiver, Sender};
use filemap::ErrorKind;

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};
use crate::TransportKind;

pub(crate) struct Mpmc;

pub(crate) struct Parent {
    ping: Option<Sender>,
    pong: Receiver,
    blocking: bool,
    buf: Vec<u8>,
    /// The second receiver of a 2 × 2 row.
    second: Option<Second>,
}

/// A second receiving thread, counting what it took.
struct Second {
    /// Messages the second thread received (it alone stores).
    got: Arc<AtomicU64>,
    /// Set by the timed thread when every message is in.
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
    /// Messages the timed thread received.
    mine: u64,
    total: u64,
}

/// How long a blocking receiver of a 2 × 2 row waits before it looks
/// whether the other one took the last message.
const POLL: Duration = Duration::from_millis(1);

fn slots(case: &Case) -> u64 {
    (case.ring_capacity() / case.size.max(64) as u64).clamp(4, 1024)
}

fn is_blocking(kind: TransportKind) -> bool {
    matches!(
        kind,
        TransportKind::MpmcBlocking | TransportKind::Mpmc2x2Blocking
    )
}

fn is_2x2(kind: TransportKind) -> bool {
    matches!(
        kind,
        TransportKind::Mpmc2x2 | TransportKind::Mpmc2x2Blocking
    )
}

impl Transport for Mpmc {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let (slots, size) = (slots(case), case.size as u64);
        let blocking = is_blocking(case.kind);
        let ping = match case.latency() {
            true => Some(Sender::create(&case.object("ping"), slots, size)?),
            false => None,
        };
        let pong = Receiver::create(&case.object("pong"), slots, size)?;
        let second = match is_2x2(case.kind) {
            true => Some(Second::start(
                Receiver::open(&case.object("pong"))?,
                blocking,
                case,
            )),
            false => None,
        };
        Ok(Parent {
            ping,
            pong,
            blocking,
            buf: vec![0; case.size],
            second,
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let blocking = is_blocking(case.kind);
        if is_2x2(case.kind) {
            let half = case.total / 2;
            let senders = [
                Sender::open(&case.object("pong"))?,
                Sender::open(&case.object("pong"))?,
            ];
            ready();
            return std::thread::scope(|s| {
                let threads: Vec<_> = senders
                    .iter()
                    .zip([half, case.total - half])
                    .map(|(tx, n)| {
                        s.spawn(move || {
                            let buf = vec![0u8; case.size];
                            (0..n).try_for_each(|_| send(tx, blocking, &buf))
                        })
                    })
                    .collect();
                threads.into_iter().try_for_each(|t| {
                    t.join()
                        .map_err(|_| BenchError::Peer("a sender thread panicked".into()))?
                })
            });
        }
        let mut buf = vec![0u8; case.size];
        let pong = Sender::open(&case.object("pong"))?;
        let ping = match case.latency() {
            true => Some(Receiver::open(&case.object("ping"))?),
            false => None,
        };
        ready();
        for _ in 0..case.total {
            if let Some(p) = &ping {
                recv(p, blocking, &mut buf)?;
            }
            send(&pong, blocking, &buf)?;
        }
        Ok(())
    }
}

impl Second {
    fn start(rx: Receiver, blocking: bool, case: &Case) -> Second {
        let got = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (g, d, size) = (got.clone(), done.clone(), case.size);
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; size];
            let mut n = 0;
            while !d.load(Ordering::Relaxed) {
                if recv_some(&rx, blocking, &mut buf)? {
                    n += 1;
                    g.store(n, Ordering::Release);
                }
            }
            Ok(())
        });
        Second {
            got,
            done,
            thread: Some(thread),
            mine: 0,
            total: case.total,
        }
    }

    /// Stops the thread and returns what it ended with.
    fn stop(&mut self) -> Result<()> {
        self.done.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(BenchError::Peer("the second receiver panicked".into())),
            Some(Ok(r)) => r,
            None => Ok(()),
        }
    }
}

impl Drop for Second {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl ParentSide for Parent {
    #[inline]
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        if let Some(p) = &self.ping {
            send(p, self.blocking, &self.buf)?;
        }
        recv(&self.pong, self.blocking, &mut self.buf)
    }

    #[inline]
    fn receive(&mut self, i: u64) -> Result<()> {
        let Some(second) = &mut self.second else {
            return recv(&self.pong, self.blocking, &mut self.buf);
        };
        while second.mine + second.got.load(Ordering::Acquire) <= i {
            if recv_some(&self.pong, self.blocking, &mut self.buf)? {
                second.mine += 1;
            }
        }
        if i + 1 == second.total {
            second.stop()?;
        }
        Ok(())
    }
}

/// Receives one message into `buf`, busy-polling or blocking (without
/// allocating: `buf` already has the message's size).
#[inline]
fn recv(rx: &Receiver, blocking: bool, buf: &mut Vec<u8>) -> Result<()> {
    if blocking {
        return Ok(rx.recv_into(buf)?);
    }
    Ok(super::spin(|| rx.try_recv_into(buf))?)
}

/// One try at a message for a receiver of a 2 × 2 row: `try_recv_into`
/// when spinning, waiting up to [`POLL`] when blocking.
#[inline]
fn recv_some(rx: &Receiver, blocking: bool, buf: &mut Vec<u8>) -> Result<bool> {
    if !blocking {
        return Ok(rx.try_recv_into(buf)?);
    }
    match rx.recv_into_timeout(buf, POLL) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Timeout => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sends one message, busy-polling or blocking.
#[inline]
fn send(tx: &Sender, blocking: bool, buf: &[u8]) -> Result<()> {
    if blocking {
        return Ok(tx.send(buf)?);
    }
    Ok(super::spin(|| tx.try_send(buf))?)
}
