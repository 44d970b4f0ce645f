//! One sender, any number of receivers, each getting every message: a
//! sender never waits, and a receiver that falls a ring behind loses the
//! oldest messages (and is told how many).

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;

use filemap::channel::broadcast::{Received, Receiver, Reservation, Sender};

use super::{not_reserving, reserving, too_small, EMPTY};
use crate::handle::{
    body, bytes, bytes_mut, check_out, close, put_handle, put_opt, text, Kind, Wait,
};
use crate::status::{run, FmStatus, Result};

/// The sending end of a broadcast channel. Close with
/// `fm_broadcast_sender_close`.
pub struct FmBroadcastSender {
    _opaque: [u8; 0],
}

/// A receiving end of a broadcast channel. Close with
/// `fm_broadcast_receiver_close`.
pub struct FmBroadcastReceiver {
    _opaque: [u8; 0],
}

/// What a broadcast receive says of the message besides its bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FmBroadcastInfo {
    /// The message's number: messages are numbered from 0 in the order sent.
    pub seq: u64,
    /// How many messages this receiver missed just before this one (it fell
    /// more than a ring behind the sender).
    pub missed: u64,
}

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

    fn tx(&mut self) -> Result<&mut Sender> {
        if self.res.is_some() {
            return Err(reserving(&self.label));
        }
        // SAFETY: the box leaked in `new`, freed only in `drop`; no
        // reservation borrows it (checked); `&mut self` is the only way in.
        Ok(unsafe { self.tx.as_mut() })
    }
}

impl Drop for SenderBody {
    fn drop(&mut self) {
        self.res = None;
        // SAFETY: the box leaked in `new`, no longer borrowed.
        drop(unsafe { Box::from_raw(self.tx.as_ptr()) });
    }
}

pub(crate) struct ReceiverBody {
    rx: Receiver,
    /// The last message received, its buffer reused.
    msg: Received,
    /// `msg` is found but not yet delivered (a buffer was too small).
    pending: bool,
    label: String,
}

impl Kind for SenderBody {
    const MAGIC: u64 = 0x464d_4243_4153_0031;
    const NAME: &'static str = "FmBroadcastSender";
    type Opaque = FmBroadcastSender;
}
impl Kind for ReceiverBody {
    const MAGIC: u64 = 0x464d_4243_4153_0032;
    const NAME: &'static str = "FmBroadcastReceiver";
    type Opaque = FmBroadcastReceiver;
}

/// Creates the broadcast channel `name` of `slots` slots (a power of two)
/// each holding a message of up to `max_message` bytes, and becomes its
/// sender.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
/// Ownership: `*out` is the caller's; free it with
/// `fm_broadcast_sender_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_sender_create(
    name: *const c_char,
    slots: u64,
    max_message: u64,
    out: *mut *mut FmBroadcastSender,
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

/// Opens the existing broadcast channel `name` as its sender (`FM_BUSY`
/// while another live process holds that end).
///
/// # Safety
/// As `fm_broadcast_sender_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_sender_open(
    name: *const c_char,
    out: *mut *mut FmBroadcastSender,
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

/// Closes the sender (an open reservation sends nothing). NULL is
/// accepted.
///
/// # Safety
/// `tx` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_sender_close(tx: *mut FmBroadcastSender) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<SenderBody>(tx) })
}

/// Sends the `len` bytes at `data` to every receiver. Never waits (the
/// oldest message is overwritten), so it has one form. `FM_INVALID_SIZE`
/// over `max_message`.
///
/// # Safety
/// `tx` is a handle from this API; `data` is valid for `len` bytes (NULL
/// for 0).
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_send(
    tx: *mut FmBroadcastSender,
    data: *const c_void,
    len: usize,
) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<SenderBody>(tx)? };
        // SAFETY: per this function's contract.
        let msg = unsafe { bytes(data, len, "data")? };
        Ok(b.tx()?.send(msg)?)
    })
}

/// Reserves the next slot for an `n`-byte message, written in place:
/// `*data` points at its `n` bytes, to fill and then
/// `fm_broadcast_commit` (or `fm_broadcast_abort`). Never waits.
///
/// Ownership: `*data` is valid for `n` bytes of writes until the commit,
/// the abort or `fm_broadcast_sender_close`.
///
/// # Safety
/// `tx` is a handle from this API; `data` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_reserve(
    tx: *mut FmBroadcastSender,
    n: usize,
    data: *mut *mut c_void,
) -> FmStatus {
    run(|| {
        check_out(data, "data")?;
        // SAFETY: per this function's contract.
        let b = unsafe { body::<SenderBody>(tx)? };
        b.tx()?; // no reservation open
                 // SAFETY: the box leaked in `SenderBody::new`, freed only after the
                 // reservation; no other borrow of it is live (checked above).
        let tx: &'static mut Sender = unsafe { &mut *b.tx.as_ptr() };
        let mut r = tx.reserve(n)?;
        // SAFETY: the slot is marked as being written until the commit:
        // receivers that follow the protocol never take its bytes.
        let p = unsafe { r.as_mut_slice() }.as_mut_ptr();
        b.res = Some(r);
        // SAFETY: checked non-null above.
        unsafe { data.write(p.cast()) };
        Ok(())
    })
}

/// Publishes the reserved message to every receiver.
/// `FM_INVALID_ARGUMENT` with no reservation open.
///
/// # Safety
/// `tx` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_commit(tx: *mut FmBroadcastSender) -> FmStatus {
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

/// Drops the reservation: nothing is sent, the next message takes its
/// number.
///
/// # Safety
/// `tx` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_abort(tx: *mut FmBroadcastSender) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<SenderBody>(tx)? };
        // Dropped unsent.
        b.res.take().ok_or_else(|| not_reserving(&b.label))?;
        Ok(())
    })
}

/// Creates the broadcast channel `name` (as `fm_broadcast_sender_create`)
/// and becomes a receiver of it, from its first message.
///
/// # Safety
/// As `fm_broadcast_sender_create`; free `*out` with
/// `fm_broadcast_receiver_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_receiver_create(
    name: *const c_char,
    slots: u64,
    max_message: u64,
    out: *mut *mut FmBroadcastReceiver,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let rx = Receiver::create(name, slots, max_message)?;
        // SAFETY: checked non-null above.
        unsafe { put_receiver(out, rx, name) }
    })
}

/// Opens the existing broadcast channel `name` as one more receiver: it
/// gets the messages sent from now on.
///
/// # Safety
/// As `fm_broadcast_receiver_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_receiver_open(
    name: *const c_char,
    out: *mut *mut FmBroadcastReceiver,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let rx = Receiver::open(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_receiver(out, rx, name) }
    })
}

/// # Safety
/// `out` is non-null and valid for a pointer write.
unsafe fn put_receiver(out: *mut *mut FmBroadcastReceiver, rx: Receiver, name: &str) -> Result<()> {
    let b = ReceiverBody {
        rx,
        msg: Received::default(),
        pending: false,
        label: name.to_owned(),
    };
    // SAFETY: per this function's contract.
    unsafe { put_handle(out, b) }
}

/// Closes the receiver. NULL is accepted.
///
/// # Safety
/// `rx` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_receiver_close(rx: *mut FmBroadcastReceiver) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<ReceiverBody>(rx) })
}

fn recv(
    rx: *mut FmBroadcastReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    info: *mut FmBroadcastInfo,
    wait: Wait,
) -> FmStatus {
    run(|| {
        check_out(len, "len")?;
        // SAFETY: the exported callers' contract: a handle from this API.
        let b = unsafe { body::<ReceiverBody>(rx)? };
        // SAFETY: the exported callers' contract: `cap` writable bytes.
        let buf = unsafe { bytes_mut(buf, cap, "buf")? };
        if !b.pending {
            match wait {
                Wait::No => {
                    if !b.rx.try_recv_into(&mut b.msg)? {
                        return Err(EMPTY);
                    }
                }
                Wait::Forever => b.rx.recv_into(&mut b.msg)?,
                Wait::For(d) => b.rx.recv_into_timeout(&mut b.msg, d)?,
            }
        }
        let n = b.msg.data.len();
        // SAFETY: `len` checked non-null; `info` is NULL or writable.
        unsafe {
            len.write(n);
            put_opt(
                info,
                FmBroadcastInfo {
                    seq: b.msg.seq,
                    missed: b.msg.missed,
                },
            );
        }
        if n > cap {
            b.pending = true;
            return Err(too_small(&b.label, n, cap));
        }
        b.pending = false;
        buf[..n].copy_from_slice(&b.msg.data);
        Ok(())
    })
}

/// Takes the next message if one is there (`FM_WOULD_BLOCK` if not),
/// copying it into `buf` (`cap` bytes), its length into `*len`, and its
/// number and the count of messages missed before it into `*info` (if not
/// NULL). A message longer than `cap` gives `FM_BUFFER_TOO_SMALL` with its
/// length in `*len`, kept for the next receive on this handle. A broadcast
/// message is always copied: the sender may overwrite its slot at any
/// time, so there is no borrowed receive. `FM_PEER_GONE` once the sender
/// closed or died and every message was taken.
///
/// # Safety
/// `rx` is a handle from this API; `buf` is valid for `cap` bytes of
/// writes (NULL for 0); `len` is valid for a write; `info` is NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_try_recv(
    rx: *mut FmBroadcastReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    info: *mut FmBroadcastInfo,
) -> FmStatus {
    recv(rx, buf, cap, len, info, Wait::No)
}

/// Receives into `buf`, waiting as long as it takes.
///
/// # Safety
/// As `fm_broadcast_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_recv(
    rx: *mut FmBroadcastReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    info: *mut FmBroadcastInfo,
) -> FmStatus {
    recv(rx, buf, cap, len, info, Wait::Forever)
}

/// Receives into `buf`, waiting at most `timeout_ms` milliseconds
/// (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_broadcast_try_recv`.
#[no_mangle]
pub unsafe extern "C" fn fm_broadcast_recv_timeout(
    rx: *mut FmBroadcastReceiver,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    info: *mut FmBroadcastInfo,
    timeout_ms: u32,
) -> FmStatus {
    recv(rx, buf, cap, len, info, Wait::ms(timeout_ms))
}
