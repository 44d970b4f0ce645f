//! async/await (`crate::wait::reactor`): the futures of `recv_async` and
//! `send_async`, and `poll_recv`.

use std::sync::atomic::Ordering;

use crate::error::Result;

use super::*;

use crate::wait::reactor::{Recheck, Step, Waiter};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

impl Receiver {
    /// Receives the next message asynchronously (`rx.recv_async().await`):
    /// no thread blocked; the task tries for a moment
    /// ([`Options::async_spin`](crate::Options::async_spin)), then sleeps.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no message.
    pub fn recv_async(&self) -> RecvFuture<'_> {
        RecvFuture {
            q: &self.q,
            waiter: Waiter::default(),
        }
    }
}

impl Receiver {
    /// Polls for the next message, as a `Future` would (tokio's
    /// `poll_recv` shape): `Ready` with it, or `Pending` with `cx`'s waker
    /// registered to be woken when one may have come. What a `Stream` is
    /// built from:
    /// `futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(Some))`.
    ///
    /// # Cancel safety
    /// A message is taken only by a `Ready` result; between polls the
    /// receiver only keeps its registration (withdrawn once ready).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>>> {
        let mut q = &self.q;
        self.polled.poll_op(cx, &mut q, recv_attempt, recv_pend)
    }
}

/// A receive's attempt, for the futures and `poll_recv`.
pub(super) fn recv_attempt(q: &mut &Queue) -> Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    Ok(q.try_recv_into(&mut buf)?.then_some(buf))
}

/// A receive's wait, for the futures and `poll_recv`: woken every
/// ASYNC_LIVENESS too, since each attempt frees slots that crashed
/// processes claimed (as blocking waits do).
pub(super) fn recv_pend(w: &mut Waiter, cx: &mut Context<'_>, q: &mut &Queue) -> Result<Step> {
    let (q, seg) = (*q, &q.seg);
    let step = w.pend(
        cx,
        seg,
        crate::wait::Sleep::Park(DATA_PARK),
        None,
        Recheck::Poke,
        &mut || {
            let pos = seg.a64(DEQ).load(Ordering::Acquire);
            q.seq(pos) == pos.wrapping_add(1)
        },
    )?;
    if matches!(step, Step::Pending) {
        q.recover();
    }
    Ok(step)
}

impl Sender {
    /// Sends `msg` asynchronously, sleeping while every slot is full.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes sends nothing.
    pub fn send_async<'a>(&'a self, msg: &'a [u8]) -> SendFuture<'a> {
        SendFuture {
            q: &self.q,
            msg,
            waiter: Waiter::default(),
        }
    }
}

/// The future of [`Receiver::recv_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a> {
    q: &'a Queue,
    waiter: Waiter,
}

impl Future for RecvFuture<'_> {
    type Output = Result<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>>> {
        let this = self.get_mut();
        let mut q = this.q;
        this.waiter.poll_op(cx, &mut q, recv_attempt, recv_pend)
    }
}

/// The future of [`Sender::send_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a> {
    q: &'a Queue,
    msg: &'a [u8],
    waiter: Waiter,
}

impl Future for SendFuture<'_> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let (mut q, msg) = (this.q, this.msg);
        this.waiter.poll_op(
            cx,
            &mut q,
            |q| Ok(q.try_send(msg)?.then_some(())),
            |w, cx, q| {
                let (q, seg) = (*q, &q.seg);
                let step = w.pend(
                    cx,
                    seg,
                    crate::wait::Sleep::Park(SPACE_PARK),
                    None,
                    Recheck::Poke,
                    &mut || {
                        let enq = seg.a64(ENQ).load(Ordering::Acquire);
                        q.seq(enq) == enq
                    },
                )?;
                if matches!(step, Step::Pending) {
                    q.recover();
                }
                Ok(step)
            },
        )
    }
}

#[cfg(feature = "stream")]
impl Receiver {
    /// The messages as a `Stream` (feature `stream`): each item is what
    /// [`Receiver::poll_recv`] gives; it never ends (senders may come at
    /// any time).
    ///
    /// # Cancel safety
    /// As [`Receiver::poll_recv`]: a message is taken only when yielded.
    pub fn stream(&mut self) -> RecvStream<'_> {
        RecvStream { rx: self }
    }
}

/// The stream of [`Receiver::stream`] (feature `stream`).
#[cfg(feature = "stream")]
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct RecvStream<'a> {
    rx: &'a mut Receiver,
}

#[cfg(feature = "stream")]
impl futures_core::Stream for RecvStream<'_> {
    type Item = Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_recv(cx).map(Some)
    }
}
