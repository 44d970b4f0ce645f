//! Events, `Latest` cells of bytes, and the robust mutex.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use filemap::sync::{Event, LatestBytesReader, LatestBytesWriter, Mutex, OwnedMutexGuard};

use crate::handle::{
    body, bytes, bytes_mut, check_out, close, put_handle, put_opt, text, Kind, Wait,
};
use crate::status::{run, Fail, FmStatus, Result};

/// A cross-process event (`CreateEvent`). Close with `fm_event_close`.
pub struct FmEvent {
    _opaque: [u8; 0],
}

/// The writing end of a `Latest` cell. Close with
/// `fm_latest_writer_close`.
pub struct FmLatestWriter {
    _opaque: [u8; 0],
}

/// A reading end of a `Latest` cell. Close with `fm_latest_reader_close`.
pub struct FmLatestReader {
    _opaque: [u8; 0],
}

/// A robust cross-process mutex (`CreateMutex`) guarding a 64-bit value.
/// Close with `fm_mutex_close`.
pub struct FmMutex {
    _opaque: [u8; 0],
}

pub(crate) struct EventBody {
    ev: Event,
}
pub(crate) struct WriterBody(LatestBytesWriter);
pub(crate) struct ReaderBody(LatestBytesReader);
pub(crate) struct MutexBody {
    /// Dropped before `mutex` (fields drop in order; the guard keeps its
    /// own `Arc` anyway).
    guard: Option<OwnedMutexGuard<u64>>,
    mutex: Arc<Mutex<u64>>,
    label: String,
}

impl Kind for EventBody {
    const MAGIC: u64 = 0x464d_4556_4e54_0041;
    const NAME: &'static str = "FmEvent";
    type Opaque = FmEvent;
}
impl Kind for WriterBody {
    const MAGIC: u64 = 0x464d_4c41_5445_0051;
    const NAME: &'static str = "FmLatestWriter";
    type Opaque = FmLatestWriter;
}
impl Kind for ReaderBody {
    const MAGIC: u64 = 0x464d_4c41_5445_0052;
    const NAME: &'static str = "FmLatestReader";
    type Opaque = FmLatestReader;
}
impl Kind for MutexBody {
    const MAGIC: u64 = 0x464d_4d55_5445_0061;
    const NAME: &'static str = "FmMutex";
    type Opaque = FmMutex;
}

// Events.

/// Creates the event `name` (`CreateEvent`): `fm_event_notify_one` leaves
/// a permit one waiter takes, `fm_event_notify_all` wakes every waiter.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
/// Ownership: `*out` is the caller's; free it with `fm_event_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_event_create(name: *const c_char, out: *mut *mut FmEvent) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let ev = Event::create(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, EventBody { ev }) }
    })
}

/// Opens the existing event `name` (`OpenEvent`).
///
/// # Safety
/// As `fm_event_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_event_open(name: *const c_char, out: *mut *mut FmEvent) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let ev = Event::open(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, EventBody { ev }) }
    })
}

/// Closes the event handle. NULL is accepted.
///
/// # Safety
/// `ev` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_event_close(ev: *mut FmEvent) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<EventBody>(ev) })
}

/// Adds a permit (they add up, as a semaphore's) and wakes one waiter to
/// take it (`SetEvent` on an auto-reset event, counted).
///
/// # Safety
/// `ev` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_event_notify_one(ev: *mut FmEvent) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        unsafe { body::<EventBody>(ev)? }.ev.notify_one();
        Ok(())
    })
}

/// Wakes every waiter now, leaving no permit (`PulseEvent` on a
/// manual-reset event, without its race).
///
/// # Safety
/// `ev` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_event_notify_all(ev: *mut FmEvent) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        unsafe { body::<EventBody>(ev)? }.ev.notify_all();
        Ok(())
    })
}

fn event_wait(ev: *mut FmEvent, wait: Wait) -> FmStatus {
    run(|| {
        // SAFETY: the exported callers' contract: a handle from this API.
        let b = unsafe { body::<EventBody>(ev)? };
        match wait {
            Wait::No => {
                if !b.ev.try_wait()? {
                    return Err(Fail::fixed(
                        FmStatus::FM_WOULD_BLOCK,
                        c"the event has no permit now",
                    ));
                }
            }
            Wait::Forever => b.ev.wait()?,
            Wait::For(d) => b.ev.wait_timeout(d)?,
        }
        Ok(())
    })
}

/// Takes a permit if one is there (`FM_WOULD_BLOCK` if not).
///
/// # Safety
/// `ev` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_event_try_wait(ev: *mut FmEvent) -> FmStatus {
    event_wait(ev, Wait::No)
}

/// Waits as long as it takes for a permit or a `notify_all`
/// (`WaitForSingleObject(h, INFINITE)`).
///
/// # Safety
/// `ev` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_event_wait(ev: *mut FmEvent) -> FmStatus {
    event_wait(ev, Wait::Forever)
}

/// Waits at most `timeout_ms` milliseconds (`FM_TIMEOUT`).
///
/// # Safety
/// `ev` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_event_wait_timeout(ev: *mut FmEvent, timeout_ms: u32) -> FmStatus {
    event_wait(ev, Wait::ms(timeout_ms))
}

// Latest cells.

/// Creates the `Latest` cell `name` holding the `len` bytes at `initial`
/// (`len` is the cell's size for good) and becomes its writer. Readers in
/// any process get the last whole value written, never a torn one, and the
/// writer never waits.
///
/// # Safety
/// `name` is a NUL-terminated string; `initial` is valid for `len` bytes;
/// `out` is valid for a pointer write. Ownership: `*out` is the caller's;
/// free it with `fm_latest_writer_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_writer_create(
    name: *const c_char,
    initial: *const c_void,
    len: usize,
    out: *mut *mut FmLatestWriter,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let (name, initial) = unsafe { (text(name, "name")?, bytes(initial, len, "initial")?) };
        let w = LatestBytesWriter::create(name, initial)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, WriterBody(w)) }
    })
}

/// Opens the existing cell `name` as its writer (`FM_BUSY` while another
/// live process is its writer).
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_writer_open(
    name: *const c_char,
    out: *mut *mut FmLatestWriter,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let w = LatestBytesWriter::open(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, WriterBody(w)) }
    })
}

/// Closes the writer. NULL is accepted.
///
/// # Safety
/// `w` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_writer_close(w: *mut FmLatestWriter) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<WriterBody>(w) })
}

/// Publishes the `len` bytes at `data` (exactly the cell's size, else
/// `FM_INVALID_SIZE`). Never waits.
///
/// # Safety
/// `w` is a handle from this API; `data` is valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_write(
    w: *mut FmLatestWriter,
    data: *const c_void,
    len: usize,
) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<WriterBody>(w)? };
        // SAFETY: per this function's contract.
        let data = unsafe { bytes(data, len, "data")? };
        Ok(b.0.write(data)?)
    })
}

/// Opens the existing cell `name` as a reader.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
/// Ownership: `*out` is the caller's; free it with
/// `fm_latest_reader_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_reader_open(
    name: *const c_char,
    out: *mut *mut FmLatestReader,
) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let r = LatestBytesReader::open(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_handle(out, ReaderBody(r)) }
    })
}

/// Closes the reader. NULL is accepted.
///
/// # Safety
/// `r` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_reader_close(r: *mut FmLatestReader) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<ReaderBody>(r) })
}

/// The cell's size in bytes, in `*size`.
///
/// # Safety
/// `r` is a handle from this API; `size` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_size(r: *mut FmLatestReader, size: *mut usize) -> FmStatus {
    run(|| {
        check_out(size, "size")?;
        // SAFETY: per this function's contract.
        let b = unsafe { body::<ReaderBody>(r)? };
        // SAFETY: checked non-null above.
        unsafe { size.write(b.0.size()) };
        Ok(())
    })
}

/// Copies the latest whole value into `buf` (exactly the cell's size,
/// else `FM_INVALID_SIZE`) and its version into `*version` if not NULL:
/// how many writes the cell had had when this value was written (0 for the
/// value it was created with), so a reader that polls learns how many
/// values it skipped. Never waits for the writer.
///
/// # Safety
/// `r` is a handle from this API; `buf` is valid for `len` bytes of
/// writes; `version` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_latest_read(
    r: *mut FmLatestReader,
    buf: *mut c_void,
    len: usize,
    version: *mut u64,
) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<ReaderBody>(r)? };
        // SAFETY: per this function's contract.
        let buf = unsafe { bytes_mut(buf, len, "buf")? };
        let v = b.0.read_versioned(buf)?;
        // SAFETY: NULL or writable per the contract.
        unsafe { put_opt(version, v) };
        Ok(())
    })
}

// The robust mutex.

/// Creates the mutex `name` guarding a 64-bit value, 0 at first.
///
/// Robust: a holder that dies while holding it does not block anyone; the
/// next lock gets it and says so (`*previous_owner_died`, as Win32's
/// `WAIT_ABANDONED`).
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is valid for a pointer write.
/// Ownership: `*out` is the caller's; free it with `fm_mutex_close`.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_create(name: *const c_char, out: *mut *mut FmMutex) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let m = Mutex::create(name, &0u64)?;
        // SAFETY: checked non-null above.
        unsafe { put_mutex(out, m, name) }
    })
}

/// Opens the existing mutex `name` (`OpenMutex`).
///
/// # Safety
/// As `fm_mutex_create`.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_open(name: *const c_char, out: *mut *mut FmMutex) -> FmStatus {
    run(|| {
        check_out(out, "out")?;
        // SAFETY: per this function's contract.
        let name = unsafe { text(name, "name")? };
        let m = Mutex::open(name)?;
        // SAFETY: checked non-null above.
        unsafe { put_mutex(out, m, name) }
    })
}

/// # Safety
/// `out` is non-null and valid for a pointer write.
unsafe fn put_mutex(out: *mut *mut FmMutex, m: Mutex<u64>, name: &str) -> Result<()> {
    let b = MutexBody {
        guard: None,
        mutex: Arc::new(m),
        label: name.to_owned(),
    };
    // SAFETY: per this function's contract.
    unsafe { put_handle(out, b) }
}

/// Closes the mutex handle, unlocking it first if this handle holds it.
/// NULL is accepted.
///
/// # Safety
/// `m` is NULL or a handle from this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_close(m: *mut FmMutex) -> FmStatus {
    // SAFETY: per this function's contract.
    run(|| unsafe { close::<MutexBody>(m) })
}

fn lock(m: *mut FmMutex, previous_owner_died: *mut bool, wait: Wait) -> FmStatus {
    run(|| {
        // SAFETY: the exported callers' contract: a handle from this API.
        let b = unsafe { body::<MutexBody>(m)? };
        if b.guard.is_some() {
            return Err(Fail::arg(format!(
                "mutex `{}` is held by this handle already (it is not recursive)",
                b.label
            )));
        }
        let g = match wait {
            Wait::No => b.mutex.try_lock_owned()?.ok_or(Fail::fixed(
                FmStatus::FM_WOULD_BLOCK,
                c"the mutex is held by another holder",
            ))?,
            Wait::Forever => b.mutex.lock_owned()?,
            Wait::For(d) => b.mutex.lock_owned_timeout(d)?,
        };
        // SAFETY: NULL or writable per the exported callers' contract.
        unsafe { put_opt(previous_owner_died, g.previous_owner_died()) };
        b.guard = Some(g);
        Ok(())
    })
}

/// Locks the mutex if it is free now (`FM_WOULD_BLOCK` if not).
/// `*previous_owner_died` (if not NULL) says whether its last holder died
/// holding it (its value may be half-updated: check it).
///
/// # Safety
/// `m` is a handle from this API; `previous_owner_died` is NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_try_lock(
    m: *mut FmMutex,
    previous_owner_died: *mut bool,
) -> FmStatus {
    lock(m, previous_owner_died, Wait::No)
}

/// Locks the mutex, waiting as long as it takes.
///
/// # Safety
/// As `fm_mutex_try_lock`.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_lock(
    m: *mut FmMutex,
    previous_owner_died: *mut bool,
) -> FmStatus {
    lock(m, previous_owner_died, Wait::Forever)
}

/// Locks the mutex, waiting at most `timeout_ms` milliseconds
/// (`FM_TIMEOUT`).
///
/// # Safety
/// As `fm_mutex_try_lock`.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_lock_timeout(
    m: *mut FmMutex,
    previous_owner_died: *mut bool,
    timeout_ms: u32,
) -> FmStatus {
    lock(m, previous_owner_died, Wait::ms(timeout_ms))
}

/// Unlocks the mutex (`ReleaseMutex`). `FM_INVALID_ARGUMENT` if this handle
/// does not hold it.
///
/// # Safety
/// `m` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_unlock(m: *mut FmMutex) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<MutexBody>(m)? };
        b.guard
            .take()
            .map(drop)
            .ok_or_else(|| Fail::arg(format!("mutex `{}` is not held by this handle", b.label)))
    })
}

/// The guarded value, in `*value`, while this handle holds the lock
/// (`FM_INVALID_ARGUMENT` if not).
///
/// # Safety
/// `m` is a handle from this API; `value` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_get(m: *mut FmMutex, value: *mut u64) -> FmStatus {
    run(|| {
        check_out(value, "value")?;
        // SAFETY: per this function's contract.
        let b = unsafe { body::<MutexBody>(m)? };
        let g = b.guard.as_ref().ok_or_else(|| not_held(&b.label))?;
        // SAFETY: checked non-null above.
        unsafe { value.write(g.get()) };
        Ok(())
    })
}

/// Sets the guarded value while this handle holds the lock
/// (`FM_INVALID_ARGUMENT` if not).
///
/// # Safety
/// `m` is a handle from this API.
#[no_mangle]
pub unsafe extern "C" fn fm_mutex_set(m: *mut FmMutex, value: u64) -> FmStatus {
    run(|| {
        // SAFETY: per this function's contract.
        let b = unsafe { body::<MutexBody>(m)? };
        let label = &b.label;
        b.guard.as_mut().ok_or_else(|| not_held(label))?.set(&value);
        Ok(())
    })
}

fn not_held(label: &str) -> Fail {
    Fail::arg(format!("mutex `{label}` is not held by this handle"))
}
