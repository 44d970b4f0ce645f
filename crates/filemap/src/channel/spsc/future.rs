//! async/await (`crate::wait::reactor`): the futures of `recv_async`,
//! `send_async` and `reserve_async`.

use crate::error::Result;

use super::*;

use crate::wait::reactor::{Recheck, Step, Waiter};
use crate::wait::Sleep;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

impl Receiver {
    /// Receives the next message asynchronously: `rx.recv_async().await`.
    /// No thread is blocked: the task tries for a moment
    /// ([`Options::async_spin`](crate::Options::async_spin), 20 µs by
    /// default, yielding to the runtime in between), then sleeps until a
    /// message comes, the sender closes its end or dies ([`Error::PeerGone`]).
    /// Works with any executor.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no message; the next
    /// receive gets it (so it may be a branch of `tokio::select!`).
    ///
    /// ```no_run
    /// # async fn f() -> filemap::Result<()> {
    /// let mut rx = filemap::channel::spsc::Receiver::open("jobs")?;
    /// let msg = rx.recv_async().await?;
    /// println!("{} bytes", msg.len());
    /// # Ok(()) }
    /// ```
    pub fn recv_async(&mut self) -> RecvFuture<'_> {
        RecvFuture {
            rx: Some(self),
            waiter: Waiter::default(),
        }
    }
}

/// The future of [`Receiver::recv_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a> {
    rx: Option<&'a mut Receiver>,
    waiter: Waiter,
}

impl<'a> Future for RecvFuture<'a> {
    type Output = Result<Message<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let rx = this
            .rx
            .as_deref_mut()
            .expect("a RecvFuture polled after it completed");
        let found = this.waiter.poll_op(
            cx,
            rx,
            |rx| match rx.poll()? {
                Some(found) => Ok(Some(found)),
                None => rx.empty_async().map(|()| None),
            },
            |w, cx, rx| {
                let (seg, ring) = (&rx.seg, &rx.ring);
                // Re-checked now and then: the header where the next
                // message goes.
                let header = Recheck::Word(DATA + ring.head_offset());
                w.pend(
                    cx,
                    seg,
                    Sleep::Park(DATA_PARK),
                    Some(TX),
                    header,
                    &mut || ring.ready(seg),
                )
            },
        );
        match found {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                let rx = this.rx.take().expect("present");
                Poll::Ready(r.map(|found| rx.message(found)))
            }
        }
    }
}

impl Receiver {
    /// The ring is empty, for a future: what `found_empty` does, with the
    /// sender's last message still taken when it is seen closed.
    fn empty_async(&mut self) -> Result<()> {
        self.seg.check_backed()?;
        self.publish();
        if let Err(gone) = TX.check_peer(&self.seg, false) {
            if !self.ring.ready(&self.seg) {
                return Err(gone);
            }
        }
        Ok(())
    }
}

impl Sender {
    /// Sends `msg` asynchronously: `tx.send_async(b"...").await`; while the
    /// ring is full the task tries for a moment, then sleeps (no thread
    /// blocked; see [`Options::async_spin`](crate::Options::async_spin)).
    ///
    /// # Cancel safety
    /// A message is sent whole or not at all; dropping the future before it
    /// completes sends nothing.
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub fn send_async<'a>(&'a mut self, msg: &'a [u8]) -> SendFuture<'a> {
        SendFuture {
            tx: self,
            msg,
            waiter: Waiter::default(),
        }
    }

    /// Reserves room for an `n`-byte message asynchronously; write it in
    /// place, then [`commit`](Reservation::commit).
    ///
    /// # Cancel safety
    /// Dropping the future before it completes reserves nothing.
    ///
    /// # Errors
    /// As [`Sender::reserve`].
    pub fn reserve_async(&mut self, n: usize) -> ReserveFuture<'_> {
        ReserveFuture {
            tx: Some(self),
            n,
            waiter: Waiter::default(),
        }
    }
}

/// The future of [`Sender::send_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a> {
    tx: &'a mut Sender,
    msg: &'a [u8],
    waiter: Waiter,
}

impl Future for SendFuture<'_> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let msg = this.msg;
        this.waiter.poll_op(
            cx,
            &mut *this.tx,
            |tx| Ok(tx.try_send(msg)?.then_some(())),
            |w, cx, tx| space_pend(w, cx, tx, msg.len()),
        )
    }
}

/// A send's or a reservation's wait for room for `n` bytes: on the
/// sender's park, re-checked now and then by the receiver's index.
fn space_pend(w: &mut Waiter, cx: &mut Context<'_>, tx: &Sender, n: usize) -> Result<Step> {
    w.pend(
        cx,
        &tx.seg,
        Sleep::Park(SPACE_PARK),
        Some(RX),
        Recheck::Word(HEAD),
        &mut || tx.fits(n),
    )
}

/// The future of [`Sender::reserve_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct ReserveFuture<'a> {
    tx: Option<&'a mut Sender>,
    n: usize,
    waiter: Waiter,
}

/// The former name of [`RecvFuture`] (every future of the crate is now
/// named `...Future`).
#[deprecated(note = "renamed to `RecvFuture`")]
pub type Recv<'a> = RecvFuture<'a>;

/// The former name of [`ReserveFuture`].
#[deprecated(note = "renamed to `ReserveFuture`")]
pub type Reserve<'a> = ReserveFuture<'a>;

impl<'a> Future for ReserveFuture<'a> {
    type Output = Result<Reservation<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let n = this.n;
        let tx = this
            .tx
            .as_deref_mut()
            .expect("a ReserveFuture polled after it completed");
        let slot = this.waiter.poll_op(
            cx,
            tx,
            |tx| {
                tx.check_len(n)?;
                match tx.try_reserve_slot(n)? {
                    Some(slot) => Ok(Some(slot)),
                    None => tx.found_full().map(|_| None),
                }
            },
            |w, cx, tx| space_pend(w, cx, tx, n),
        );
        match slot {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                let tx = this.tx.take().expect("present");
                Poll::Ready(r.map(|slot| Reservation { tx, slot }))
            }
        }
    }
}
