//! One sender, one receiver: a byte ring of variable-length messages.

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;

use filemap::channel::spsc::{Message, Receiver, Reservation, Sender};

use super::{not_reserving, reserving, too_small, EMPTY, FULL};
use crate::handle::{body, bytes, bytes_mut, check_out, close, put_handle, text, Kind, Wait};
use crate::status::{run, FmStatus, Result};

/// The sending end of an spsc channel. Close with `fm_spsc_sender_close`.
pub struct FmSpscSender {
    _opaque: [u8; 0],
}

/// The receiving end of an spsc channel. Close with
/// `fm_spsc_receiver_close`.
pub struct FmSpscReceiver {
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
            Wait::No => rx.try_recv()?.ok_or(EMPTY)?,
            Wait::Forever => rx.recv()?,
            Wait::For(d) => rx.recv_timeout(d)?,
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
    const MAGIC: u64 = 0x464d_5350_5343_0011;
    const NAME: &'static str = "FmSpscSender";
    type Opaque = FmSpscSender;
}
impl Kind for ReceiverBody {
    const MAGIC: u64 = 0x464d_5350_5343_0012;
    const NAME: &'static str = "FmSpscReceiver";
    type Opaque = FmSpscReceiver;
}

/// Creates the spsc channel `name` with a ring of `capacity` bytes (a power
/// of two, at least 4096; a message may be up to half of it less 8 bytes)
/// and becomes its sender.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
/// Ownership: `*out` is the caller's; free it with `fm_spsc_sender_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_sender_create(
    name: *const c_char,
    capacity: u64,
    out: *mut *mut FmSpscSender,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let tx = Sender::create(name, capacity)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, SenderBody::new(tx, name)) }
    })
}

/// Opens the existing spsc channel `name` as its sender (`FM_BUSY` while
/// another live process holds that end).
///
/// # Safety
/// As `fm_spsc_sender_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_sender_open(
    name: *const c_char,
    out: *mut *mut FmSpscSender,
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

/// Closes the sender (an open reservation is dropped unsent); the
/// receiver sees `FM_PEER_GONE` once it has taken what was sent. NULL is
/// accepted.
///
/// # Safety
/// `tx` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_sender_close(tx: *mut FmSpscSender) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<SenderBody>(tx) })
}

/// The largest message the channel takes, in `*max`.
///
/// # Safety
/// `tx` is a handle from this API; `max` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_max_message(tx: *mut FmSpscSender, max: *mut usize) -> FmStatus {
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

fn send(tx: *mut FmSpscSender, data: *const c_void, len: usize, wait: Wait) -> FmStatus {
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

/// Sends the `len` bytes at `data` if the ring has room now;
/// `FM_WOULD_BLOCK` if not. `FM_INVALID_SIZE` over the channel's limit,
/// `FM_PEER_GONE` once the receiver closed or died.
///
/// # Safety
/// `tx` is a handle from this API; `data` is valid for `len` bytes (NULL
/// for 0).
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_try_send(
    tx: *mut FmSpscSender,
    data: *const c_void,
    len: usize,
) -> FmStatus {
    send(tx, data, len, Wait::No)
}

/// Sends, waiting as long as it takes for room.
///
/// # Safety
/// As `fm_spsc_try_send`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_send(
    tx: *mut FmSpscSender,
    data: *const c_void,
    len: usize,
) -> FmStatus {
    send(tx, data, len, Wait::Forever)
}

/// Sends, waiting at most `timeout_ms` milliseconds for room
/// (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_spsc_try_send`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_send_timeout(
    tx: *mut FmSpscSender,
    data: *const c_void,
    len: usize,
    timeout_ms: u32,
) -> FmStatus {
    send(tx, data, len, Wait::ms(timeout_ms))
}

fn reserve(tx: *mut FmSpscSender, n: usize, data: *mut *mut c_void, wait: Wait) -> FmStatus {
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
        // SAFETY: the receiver never touches unpublished bytes; C writes
        // them until the commit (the header's contract).
        let p = unsafe { r.as_mut_slice() }.as_mut_ptr();
        b.res = Some(r);
        // SAFETY: checked non-null above.
        unsafe { data.write(p.cast()) };
        Ok(())
    })
}

/// Reserves room for an `n`-byte message in place if there is some now
/// (`FM_WOULD_BLOCK` if not): `*data` points at its `n` bytes, to fill and
/// then `fm_spsc_commit` (or `fm_spsc_abort`). One reservation at a time;
/// sends meanwhile give `FM_INVALID_ARGUMENT`.
///
/// Ownership: `*data` is valid for `n` bytes of writes until the commit,
/// the abort or `fm_spsc_sender_close`.
///
/// # Safety
/// `tx` is a handle from this API; `data` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_try_reserve(
    tx: *mut FmSpscSender,
    n: usize,
    data: *mut *mut c_void,
) -> FmStatus {
    reserve(tx, n, data, Wait::No)
}

/// Reserves, waiting as long as it takes for room.
///
/// # Safety
/// As `fm_spsc_try_reserve`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_reserve(
    tx: *mut FmSpscSender,
    n: usize,
    data: *mut *mut c_void,
) -> FmStatus {
    reserve(tx, n, data, Wait::Forever)
}

/// Reserves, waiting at most `timeout_ms` milliseconds (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_spsc_try_reserve`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_reserve_timeout(
    tx: *mut FmSpscSender,
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
pub unsafe extern "C" fn fm_spsc_commit(tx: *mut FmSpscSender) -> FmStatus {
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

/// Drops the reservation unsent (the room is reused by the next message).
///
/// # Safety
/// `tx` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_abort(tx: *mut FmSpscSender) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<SenderBody>(tx)? };
        // Dropped unsent.
        b.res.take().ok_or_else(|| not_reserving(&b.label))?;
        Ok(())
    })
}

/// Creates the spsc channel `name` (as `fm_spsc_sender_create`) and
/// becomes its receiver.
///
/// # Safety
/// As `fm_spsc_sender_create`; free `*out` with `fm_spsc_receiver_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_receiver_create(
    name: *const c_char,
    capacity: u64,
    out: *mut *mut FmSpscReceiver,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let rx = Receiver::create(name, capacity)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, ReceiverBody::new(rx, name)) }
    })
}

/// Opens the existing spsc channel `name` as its receiver (`FM_BUSY`
/// while another live process holds that end).
///
/// # Safety
/// As `fm_spsc_receiver_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_receiver_open(
    name: *const c_char,
    out: *mut *mut FmSpscReceiver,
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
pub unsafe extern "C" fn fm_spsc_receiver_close(rx: *mut FmSpscReceiver) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<ReceiverBody>(rx) })
}

fn recv(
    rx: *mut FmSpscReceiver,
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
/// `FM_PEER_GONE` once the sender closed or died and the ring is empty;
/// `FM_CORRUPT` when the ring holds what no sender writes.
///
/// # Safety
/// `rx` is a handle from this API; `buf` is valid for `cap` bytes of
/// writes (NULL for 0); `len` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_try_recv(
    rx: *mut FmSpscReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> FmStatus {
    recv(rx, buf, cap, len, Wait::No)
}

/// Receives into `buf`, waiting as long as it takes.
///
/// # Safety
/// As `fm_spsc_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_recv(
    rx: *mut FmSpscReceiver,
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
/// As `fm_spsc_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_recv_timeout(
    rx: *mut FmSpscReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ms: u32,
) -> FmStatus {
    recv(rx, buf, cap, len, Wait::ms(timeout_ms))
}

fn borrow(
    rx: *mut FmSpscReceiver,
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
        // SAFETY: a sender that follows the protocol never writes a
        // message before the receiver frees it (at `fm_spsc_release`); the
        // header tells C the bytes are shared memory.
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
/// not): `*data` points at its `*len` bytes inside the ring, with no copy.
///
/// Ownership: the bytes stay valid, and the space the sender's, until
/// `fm_spsc_release`, the next receive on this handle (which releases it
/// first), or `fm_spsc_receiver_close`. Hold it briefly: the sender
/// cannot reuse its space meanwhile.
///
/// # Safety
/// `rx` is a handle from this API; `data` and `len` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_try_recv_borrow(
    rx: *mut FmSpscReceiver,
    data: *mut *const c_void,
    len: *mut usize,
) -> FmStatus {
    borrow(rx, data, len, Wait::No)
}

/// Takes the next message in place, waiting as long as it takes.
///
/// # Safety
/// As `fm_spsc_try_recv_borrow`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_recv_borrow(
    rx: *mut FmSpscReceiver,
    data: *mut *const c_void,
    len: *mut usize,
) -> FmStatus {
    borrow(rx, data, len, Wait::Forever)
}

/// Takes the next message in place, waiting at most `timeout_ms`
/// milliseconds (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_spsc_try_recv_borrow`.
#[no_mangle]
pub unsafe extern "C" fn fm_spsc_recv_borrow_timeout(
    rx: *mut FmSpscReceiver,
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
pub unsafe extern "C" fn fm_spsc_release(rx: *mut FmSpscReceiver) -> FmStatus {
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
