//! Bytes-like objects in and out: any contiguous buffer as input, and
//! receiving into a caller's writable buffer.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::Result;

/// A raw destination for a message, handed to the thread that runs with
/// the GIL released.
pub(crate) struct Dest(pub(crate) *mut u8, pub(crate) usize);
// SAFETY: the pointer is into a Python buffer that a `PyBuffer` holds (so
// it stays valid) for the whole blocking call; only that call writes it.
unsafe impl Send for Dest {}

/// Any bytes-like object (bytes, bytearray, memoryview, NumPy array,
/// filemap View), read in place: C-contiguous, held for the call.
pub(crate) struct Bytes(pub(crate) pyo3::buffer::PyBuffer<u8>);

impl<'py> FromPyObject<'_, 'py> for Bytes {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let buf = match pyo3::buffer::PyBuffer::<u8>::get(&obj) {
            Ok(b) => b,
            // Items of another type (a float32 array): its bytes, through
            // `memoryview(obj).cast("B")` (contiguous buffers only).
            Err(_) => {
                let bytes = obj
                    .py()
                    .import("builtins")?
                    .getattr("memoryview")?
                    .call1((obj,))?
                    .call_method1("cast", ("B",))?;
                pyo3::buffer::PyBuffer::<u8>::get(&bytes)?
            }
        };
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "a contiguous bytes-like object is needed",
            ));
        }
        Ok(Bytes(buf))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a C-contiguous buffer of `len_bytes` bytes, which the
        // `PyBuffer` keeps exported (so not resized nor freed) while `self`
        // lives. Python threads may change its bytes meanwhile, as with any
        // buffer handed to C; the copy then sees some mix.
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr().cast::<u8>(), self.0.len_bytes()) }
    }
}

/// `out` as a writable, C-contiguous buffer of bytes.
pub(crate) fn writable(out: &Bound<'_, PyAny>) -> Result<pyo3::buffer::PyBuffer<u8>> {
    let buf = pyo3::buffer::PyBuffer::<u8>::get(out)?;
    if buf.readonly() || !buf.is_c_contiguous() {
        return Err(PyValueError::new_err(
            "recv_into needs a writable, contiguous buffer of bytes (a bytearray, a \
             writable memoryview, a NumPy uint8 array)",
        )
        .into());
    }
    Ok(buf)
}

/// Copies `msg` into a writable, C-contiguous buffer `out`; returns the length.
pub(crate) fn fill_buffer(out: &Bound<'_, PyAny>, msg: &[u8]) -> Result<usize> {
    let buf = writable(out)?;
    if buf.len_bytes() < msg.len() {
        return Err(PyValueError::new_err(format!(
            "the buffer holds {} bytes, the message has {}",
            buf.len_bytes(),
            msg.len()
        ))
        .into());
    }
    // SAFETY: the buffer is writable, contiguous and at least `msg.len()`
    // bytes long (checked), and stays valid while `buf` holds it.
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.buf_ptr().cast::<u8>(), msg.len()) };
    Ok(msg.len())
}
