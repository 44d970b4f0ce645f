//! Any number of senders and receivers, in any processes: each message goes
//! to one receiver. Fixed slots, each holding a message of up to the
//! channel's `max_message` bytes.

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;

use filemap::channel::mpmc::{MessageRef as Message, Receiver, Reservation, Sender};

use super::{not_reserving, reserving, too_small, EMPTY, FULL};
use crate::handle::{body, bytes, bytes_mut, check_out, close, put_handle, text, Kind, Wait};
use crate::status::{run, FmStatus, Result};

/// The sending end of an mpmc channel. Close with `fm_mpmc_sender_close`.
pub struct FmMpmcSender {
    _opaque: [u8; 0],
}

/// The receiving end of an mpmc channel. Close with
/// `fm_mpmc_receiver_close`.
pub struct FmMpmcReceiver {
    _opaque: [u8; 0],
}

/// A sender, and the reservation it lends out (which borrows it: the
/// sender is boxed apart so that its address stays put, and the
/// reservation is dropped first).
pub(crate) struct SenderBody {
    tx: NonNull<Sender>,
    res: Option<Reservation<'static>>,
    label: String,
}

impl SenderBody {
    fn new(tx: Sender, label: &str) -> SenderBody {
        SenderBody {
            tx: NonNull::from(Box::leak(Box::new(tx))),
            res: None,
            label: label.to_owned(),
        }
    }

    /// The sender, when no reservation borrows it.
    fn tx(&mut self) -> Result<&mut Sender> {
        if self.res.is_some() {
            return Err(reserving(&self.label));
        }
        // SAFETY: `tx` is the box leaked in `new`, freed only in `drop`; no
        // reservation borrows it (checked), and `&mut self` is the only
        // way to it.
        Ok(unsafe { self.tx.as_mut() })
    }
}

impl Drop for SenderBody {
    fn drop(&mut self) {
        // The reservation borrows the sender: it goes first.
        self.res = None;
        // SAFETY: the box leaked in `new`, no longer borrowed.
        drop(unsafe { Box::from_raw(self.tx.as_ptr()) });
    }
}

/// What a receiver keeps of a message between calls.
enum Held {
    /// Found, not yet delivered (a buffer was too small).
    Pending(Message<'static>),
    /// Lent to C by a borrowed receive, until released.
    Lent(Message<'static>),
}

pub(crate) struct ReceiverBody {
    rx: NonNull<Receiver>,
    held: Option<Held>,
    label: String,
}

impl ReceiverBody {
    fn new(rx: Receiver, label: &str) -> ReceiverBody {
        ReceiverBody {
            rx: NonNull::from(Box::leak(Box::new(rx))),
            held: None,
            label: label.to_owned(),
        }
    }

    /// The next message: one kept from before, or a new one (a lent one is
    /// freed first).
    fn next(&mut self, wait: Wait) -> Result<Message<'static>> {
        match self.held.take() {
            Some(Held::Pending(m)) => return Ok(m),
            Some(Held::Lent(m)) => drop(m),
            None => {}
        }
        // SAFETY: the box leaked in `new`, freed only in `drop`; no message
        // borrows it any more (`held` is empty, and messages handed out
        // below are kept only in `held`). The 'static lifetime is this
        // body's: `drop` frees messages before the receiver.
        let rx: &'static mut Receiver = unsafe { &mut *self.rx.as_ptr() };
        Ok(match wait {
            Wait::No => rx.try_recv_ref()?.ok_or(EMPTY)?,
            Wait::Forever => rx.recv_ref()?,
            Wait::For(d) => rx.recv_ref_timeout(d)?,
        })
    }
}

impl Drop for ReceiverBody {
    fn drop(&mut self) {
        self.held = None;
        // SAFETY: the box leaked in `new`, no longer borrowed.
        drop(unsafe { Box::from_raw(self.rx.as_ptr()) });
    }
}

impl Kind for SenderBody {
    const MAGIC: u64 = 0x464d_4d50_4d43_0021;
    const NAME: &'static str = "FmMpmcSender";
    type Opaque = FmMpmcSender;
}
impl Kind for ReceiverBody {
    const MAGIC: u64 = 0x464d_4d50_4d43_0022;
    const NAME: &'static str = "FmMpmcReceiver";
    type Opaque = FmMpmcReceiver;
}

/// Creates the mpmc channel `name` of `slots` slots (a power of two) each
/// holding a message of up to `max_message` bytes, and becomes a sender of
/// it.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
/// Ownership: `*out` is the caller's; free it with `fm_mpmc_sender_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_sender_create(
    name: *const c_char,
    slots: u64,
    max_message: u64,
    out: *mut *mut FmMpmcSender,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let tx = Sender::create(name, slots, max_message)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, SenderBody::new(tx, name)) }
    })
}

/// Opens the existing mpmc channel `name` as one more sender.
///
/// # Safety
/// As `fm_mpmc_sender_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_sender_open(
    name: *const c_char,
    out: *mut *mut FmMpmcSender,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let tx = Sender::open(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, SenderBody::new(tx, name)) }
    })
}

/// Closes the sender (an open reservation is retired unsent: receivers
/// skip it). Senders and receivers come and go: an mpmc channel reports no
/// `FM_PEER_GONE`. NULL is accepted.
///
/// # Safety
/// `tx` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_sender_close(tx: *mut FmMpmcSender) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<SenderBody>(tx) })
}

/// The largest message the channel takes, in `*max`.
///
/// # Safety
/// `tx` is a handle from this API; `max` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_max_message(tx: *mut FmMpmcSender, max: *mut usize) -> FmStatus {
    run(|| {
        check_out(max, "max")?;
        // SAFETY: per this function's contract.
        let b = unsafe { body::<SenderBody>(tx)? };
        let m = b.tx()?.max_message();
        // SAFETY: checked non-null above.
        unsafe { max.write(m) };
        Ok(())
    })
}

fn send(tx: *mut FmMpmcSender, data: *const c_void, len: usize, wait: Wait) -> FmStatus {
    run(|| {
        // SAFETY: the exported callers' contract: a handle from this API.
        let b = unsafe { body::<SenderBody>(tx)? };
        // SAFETY: the exported callers' contract: `len` readable bytes.
        let msg = unsafe { bytes(data, len, "data")? };
        let tx = b.tx()?;
        match wait {
            Wait::No => {
                if !tx.try_send(msg)? {
                    return Err(FULL);
                }
            }
            Wait::Forever => tx.send(msg)?,
            Wait::For(d) => tx.send_timeout(msg, d)?,
        }
        Ok(())
    })
}

/// Sends the `len` bytes at `data` if a slot is free now;
/// `FM_WOULD_BLOCK` if not. `FM_INVALID_SIZE` over `max_message`.
///
/// # Safety
/// `tx` is a handle from this API; `data` is valid for `len` bytes (NULL
/// for 0).
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_try_send(
    tx: *mut FmMpmcSender,
    data: *const c_void,
    len: usize,
) -> FmStatus {
    send(tx, data, len, Wait::No)
}

/// Sends, waiting as long as it takes for a free slot.
///
/// # Safety
/// As `fm_mpmc_try_send`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_send(
    tx: *mut FmMpmcSender,
    data: *const c_void,
    len: usize,
) -> FmStatus {
    send(tx, data, len, Wait::Forever)
}

/// Sends, waiting at most `timeout_ms` milliseconds for a free
/// slot (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_mpmc_try_send`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_send_timeout(
    tx: *mut FmMpmcSender,
    data: *const c_void,
    len: usize,
    timeout_ms: u32,
) -> FmStatus {
    send(tx, data, len, Wait::ms(timeout_ms))
}

fn reserve(tx: *mut FmMpmcSender, n: usize, data: *mut *mut c_void, wait: Wait) -> FmStatus {
    run(|| {
        check_out(data, "data")?;
        // SAFETY: the exported callers' contract: a handle from this API.
        let b = unsafe { body::<SenderBody>(tx)? };
        b.tx()?; // no reservation open
                 // SAFETY: the box leaked in `SenderBody::new`, freed only after the
                 // reservation (its `Drop`); no other borrow of it is live (checked
                 // just above). The reservation is kept only in `b.res`.
        let tx: &'static mut Sender = unsafe { &mut *b.tx.as_ptr() };
        let mut r = match wait {
            Wait::No => tx.try_reserve(n)?.ok_or(FULL)?,
            Wait::Forever => tx.reserve(n)?,
            Wait::For(d) => tx.reserve_timeout(n, d)?,
        };
        // SAFETY: the slot is this reservation's until the commit or the
        // abort; no other process that follows the protocol touches it.
        let p = unsafe { r.as_mut_slice() }.as_mut_ptr();
        b.res = Some(r);
        // SAFETY: checked non-null above.
        unsafe { data.write(p.cast()) };
        Ok(())
    })
}

/// Reserves room for an `n`-byte message in place if there is some now
/// (`FM_WOULD_BLOCK` if not): `*data` points at its `n` bytes, to fill and
/// then `fm_mpmc_commit` (or `fm_mpmc_abort`). One reservation at a time;
/// sends meanwhile give `FM_INVALID_ARGUMENT`.
///
/// Ownership: `*data` is valid for `n` bytes of writes until the commit,
/// the abort or `fm_mpmc_sender_close`.
///
/// # Safety
/// `tx` is a handle from this API; `data` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_try_reserve(
    tx: *mut FmMpmcSender,
    n: usize,
    data: *mut *mut c_void,
) -> FmStatus {
    reserve(tx, n, data, Wait::No)
}

/// Reserves, waiting as long as it takes for a free slot.
///
/// # Safety
/// As `fm_mpmc_try_reserve`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_reserve(
    tx: *mut FmMpmcSender,
    n: usize,
    data: *mut *mut c_void,
) -> FmStatus {
    reserve(tx, n, data, Wait::Forever)
}

/// Reserves, waiting at most `timeout_ms` milliseconds (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_mpmc_try_reserve`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_reserve_timeout(
    tx: *mut FmMpmcSender,
    n: usize,
    data: *mut *mut c_void,
    timeout_ms: u32,
) -> FmStatus {
    reserve(tx, n, data, Wait::ms(timeout_ms))
}

/// Publishes the reserved message: the receiver can take it from now on.
/// `FM_INVALID_ARGUMENT` with no reservation open.
///
/// # Safety
/// `tx` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_commit(tx: *mut FmMpmcSender) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<SenderBody>(tx)? };
        b.res
            .take()
            .ok_or_else(|| not_reserving(&b.label))?
            .commit();
        Ok(())
    })
}

/// Retires the reservation unsent: receivers skip its slot.
///
/// # Safety
/// `tx` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_abort(tx: *mut FmMpmcSender) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<SenderBody>(tx)? };
        // Dropped unsent.
        b.res.take().ok_or_else(|| not_reserving(&b.label))?;
        Ok(())
    })
}

/// Creates the mpmc channel `name` (as `fm_mpmc_sender_create`) and
/// becomes a receiver of it.
///
/// # Safety
/// As `fm_mpmc_sender_create`; free `*out` with `fm_mpmc_receiver_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_receiver_create(
    name: *const c_char,
    slots: u64,
    max_message: u64,
    out: *mut *mut FmMpmcReceiver,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let rx = Receiver::create(name, slots, max_message)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, ReceiverBody::new(rx, name)) }
    })
}

/// Opens the existing mpmc channel `name` as one more receiver.
///
/// # Safety
/// As `fm_mpmc_receiver_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_receiver_open(
    name: *const c_char,
    out: *mut *mut FmMpmcReceiver,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let rx = Receiver::open(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, ReceiverBody::new(rx, name)) }
    })
}

/// Closes the receiver (a borrowed message is freed). NULL is accepted.
///
/// # Safety
/// `rx` is NULL or a handle from this API, not used afterwards, nor any
/// pointer a borrowed receive gave.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_receiver_close(rx: *mut FmMpmcReceiver) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<ReceiverBody>(rx) })
}

fn recv(
    rx: *mut FmMpmcReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    wait: Wait,
) -> FmStatus {
    run(|| {
        check_out(len, "len")?;
        // SAFETY: the exported callers' contract: a handle from this API.
        let b = unsafe { body::<ReceiverBody>(rx)? };
        // SAFETY: the exported callers' contract: `cap` writable bytes.
        let buf = unsafe { bytes_mut(buf, cap, "buf")? };
        let m = b.next(wait)?;
        let n = m.len();
        // SAFETY: checked non-null above.
        unsafe { len.write(n) };
        if n > cap {
            b.held = Some(Held::Pending(m));
            return Err(too_small(&b.label, n, cap));
        }
        m.read_at(0, &mut buf[..n])?;
        Ok(())
    })
}

/// Takes the next message if one is there (`FM_WOULD_BLOCK` if not),
/// copying it into `buf` (`cap` bytes) and its length into `*len`. A
/// message longer than `cap` gives `FM_BUFFER_TOO_SMALL` with its length in
/// `*len`, and stays queued for the next receive on this handle.
/// `FM_CORRUPT` when a slot holds what no sender writes.
///
/// # Safety
/// `rx` is a handle from this API; `buf` is valid for `cap` bytes of
/// writes (NULL for 0); `len` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_try_recv(
    rx: *mut FmMpmcReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> FmStatus {
    recv(rx, buf, cap, len, Wait::No)
}

/// Receives into `buf`, waiting as long as it takes.
///
/// # Safety
/// As `fm_mpmc_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_recv(
    rx: *mut FmMpmcReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> FmStatus {
    recv(rx, buf, cap, len, Wait::Forever)
}

/// Receives into `buf`, waiting at most `timeout_ms` milliseconds
/// (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_mpmc_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_recv_timeout(
    rx: *mut FmMpmcReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ms: u32,
) -> FmStatus {
    recv(rx, buf, cap, len, Wait::ms(timeout_ms))
}

fn borrow(
    rx: *mut FmMpmcReceiver,
    data: *mut *const c_void,
    len: *mut usize,
    wait: Wait,
) -> FmStatus {
    run(|| {
        check_out(data, "data")?;
        check_out(len, "len")?;
        // SAFETY: the exported callers' contract: a handle from this API.
        let b = unsafe { body::<ReceiverBody>(rx)? };
        let m = b.next(wait)?;
        // SAFETY: the slot is this receiver's until the message is dropped
        // (at `fm_mpmc_release`); no sender that follows the protocol
        // writes it meanwhile; the header tells C the bytes are shared.
        let s = unsafe { m.as_slice() };
        let (p, n) = (s.as_ptr(), s.len());
        b.held = Some(Held::Lent(m));
        // SAFETY: both checked non-null above.
        unsafe {
            data.write(p.cast());
            len.write(n);
        }
        Ok(())
    })
}

/// Takes the next message in place, if one is there (`FM_WOULD_BLOCK` if
/// not): `*data` points at its `*len` bytes inside its slot, with no copy.
///
/// Ownership: the bytes stay valid, and the slot this receiver's, until
/// `fm_mpmc_release`, the next receive on this handle (which releases it
/// first), or `fm_mpmc_receiver_close`. Hold it briefly: a sender a whole
/// ring ahead waits for the slot meanwhile.
///
/// # Safety
/// `rx` is a handle from this API; `data` and `len` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_try_recv_borrow(
    rx: *mut FmMpmcReceiver,
    data: *mut *const c_void,
    len: *mut usize,
) -> FmStatus {
    borrow(rx, data, len, Wait::No)
}

/// Takes the next message in place, waiting as long as it takes.
///
/// # Safety
/// As `fm_mpmc_try_recv_borrow`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_recv_borrow(
    rx: *mut FmMpmcReceiver,
    data: *mut *const c_void,
    len: *mut usize,
) -> FmStatus {
    borrow(rx, data, len, Wait::Forever)
}

/// Takes the next message in place, waiting at most `timeout_ms`
/// milliseconds (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_mpmc_try_recv_borrow`.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_recv_borrow_timeout(
    rx: *mut FmMpmcReceiver,
    data: *mut *const c_void,
    len: *mut usize,
    timeout_ms: u32,
) -> FmStatus {
    borrow(rx, data, len, Wait::ms(timeout_ms))
}

/// Frees the message a borrowed receive lent (its pointer is invalid from
/// now on). `FM_INVALID_ARGUMENT` when none is lent.
///
/// # Safety
/// `rx` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_mpmc_release(rx: *mut FmMpmcReceiver) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<ReceiverBody>(rx)? };
        match b.held.take() {
            Some(Held::Lent(m)) => {
                drop(m);
                Ok(())
            }
            other => {
                b.held = other;
                Err(crate::status::Fail::arg(format!(
                    "no borrowed message of `{}` to release",
                    b.label
                )))
            }
        }
    })
}
