//! [`TransportKind::SpscC`]: the "spin, copy" spsc row with both sides in C
//! (`c_api.c`, compiled by the build script with the C compiler's `-O2`)
//! calling filemap's C API (`filemap-c`): what the FFI costs next to the
//! Rust row. The channels are made through the C API too; the driver
//! times the parent's calls into the C code as it times the Rust rows.

use std::ffi::{c_void, CString};

use filemap_c::{
    fm_last_error_message, fm_spsc_receiver_close, fm_spsc_receiver_create, fm_spsc_receiver_open,
    fm_spsc_sender_close, fm_spsc_sender_create, fm_spsc_sender_open, FmSpscReceiver, FmSpscSender,
    FmStatus,
};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};

// The C client's functions (`c_api.c`). The handles are the C API's
// opaque pointers, passed through as `void *`.
extern "C" {
    fn fmb_c_round_trip(tx: *mut c_void, rx: *mut c_void, buf: *mut c_void, len: usize)
        -> FmStatus;
    fn fmb_c_receive(rx: *mut c_void, buf: *mut c_void, len: usize) -> FmStatus;
    fn fmb_c_child(
        rx: *mut c_void,
        tx: *mut c_void,
        buf: *mut c_void,
        len: usize,
        total: u64,
    ) -> FmStatus;
}

pub(crate) struct CApi;

/// The C handles, closed when dropped.
pub(crate) struct Parent {
    tx: *mut FmSpscSender,
    rx: *mut FmSpscReceiver,
    buf: Vec<u8>,
}

impl Drop for Parent {
    fn drop(&mut self) {
        // SAFETY: handles from the C API (or NULL), closed once.
        unsafe {
            fm_spsc_sender_close(self.tx);
            fm_spsc_receiver_close(self.rx);
        }
    }
}

/// `Ok` for `FM_OK`, else the C API's message.
fn ok(st: FmStatus, what: &str) -> Result<()> {
    if st == FmStatus::FM_OK {
        return Ok(());
    }
    // SAFETY: fm_last_error_message returns a valid C string.
    let msg = unsafe { std::ffi::CStr::from_ptr(fm_last_error_message()) };
    Err(BenchError::Peer(format!(
        "the C client: {what}: {st:?}: {}",
        msg.to_string_lossy()
    )))
}

fn cname(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| BenchError::Peer(format!("a name with a NUL: {s:?}")))
}

impl Transport for CApi {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        let cap = case.ring_capacity();
        let mut p = Parent {
            tx: std::ptr::null_mut(),
            rx: std::ptr::null_mut(),
            buf: vec![0; case.size],
        };
        let pong = cname(&case.object("pong"))?;
        // SAFETY: a NUL-terminated name and a place for the handle.
        ok(
            unsafe { fm_spsc_receiver_create(pong.as_ptr(), cap, &mut p.rx) },
            "create pong",
        )?;
        if case.latency() {
            let ping = cname(&case.object("ping"))?;
            // SAFETY: as above.
            ok(
                unsafe { fm_spsc_sender_create(ping.as_ptr(), cap, &mut p.tx) },
                "create ping",
            )?;
        }
        Ok(p)
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut ends = Parent {
            tx: std::ptr::null_mut(),
            rx: std::ptr::null_mut(),
            buf: vec![0; case.size],
        };
        let pong = cname(&case.object("pong"))?;
        // SAFETY: a NUL-terminated name and a place for the handle.
        ok(
            unsafe { fm_spsc_sender_open(pong.as_ptr(), &mut ends.tx) },
            "open pong",
        )?;
        if case.latency() {
            let ping = cname(&case.object("ping"))?;
            // SAFETY: as above.
            ok(
                unsafe { fm_spsc_receiver_open(ping.as_ptr(), &mut ends.rx) },
                "open ping",
            )?;
        }
        ready();
        let len = ends.buf.len();
        // SAFETY: live handles (rx NULL for a stream: the C code only
        // sends then), a buffer of `len` bytes.
        let st = unsafe {
            fmb_c_child(
                ends.rx.cast(),
                ends.tx.cast(),
                ends.buf.as_mut_ptr().cast(),
                len,
                case.total,
            )
        };
        ok(st, "echo")
    }
}

impl ParentSide for Parent {
    #[inline]
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        let len = self.buf.len();
        // SAFETY: live handles made in `setup`, a buffer of `len` bytes.
        let st = unsafe {
            fmb_c_round_trip(
                self.tx.cast(),
                self.rx.cast(),
                self.buf.as_mut_ptr().cast(),
                len,
            )
        };
        ok(st, "round trip")
    }

    #[inline]
    fn receive(&mut self, _i: u64) -> Result<()> {
        let len = self.buf.len();
        // SAFETY: as `round_trip`.
        let st = unsafe { fmb_c_receive(self.rx.cast(), self.buf.as_mut_ptr().cast(), len) };
        ok(st, "receive")
    }
}
