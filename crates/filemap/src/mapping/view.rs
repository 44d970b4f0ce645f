//! Views: a byte range of a mapping object, mapped into this process.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::{Shared, ViewAccess};
use crate::error::{Error, Result};
use crate::sys::{self, RawView, SharedAtomic};

/// A mapped range of a [`crate::Mapping`]: `MapViewOfFile`'s result.
///
/// Other processes may write the bytes at any moment, so the safe surface is
/// copies ([`View::read_at`], [`View::write_at`]) and atomics
/// ([`View::atomic_u64`] and friends); borrowing the bytes as a slice is
/// [`unsafe`](View::as_slice), because the caller must rule out concurrent writers.
///
/// The view keeps its mapping object alive. Dropping it unmaps it;
/// [`View::unmap`] does the same and reports an OS error.
pub struct View {
    raw: Option<RawView>,
    shared: Arc<Shared>,
    offset: u64,
    access: ViewAccess,
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("mapping", &self.shared.label)
            .field("offset", &self.offset)
            .field("len", &self.len())
            .field("access", &self.access)
            .finish()
    }
}

impl View {
    pub(crate) fn new(raw: RawView, shared: Arc<Shared>, offset: u64, access: ViewAccess) -> View {
        View {
            raw: Some(raw),
            shared,
            offset,
            access,
        }
    }

    /// Hints the CPU to fetch the cache line at `offset` (see `RawView::prefetch`).
    pub(crate) fn prefetch(&self, offset: usize) {
        self.raw().prefetch(offset);
    }

    /// Hints the CPU to fetch the cache line at `offset` for writing (see
    /// `RawView::prefetch_write`).
    #[inline]
    pub(crate) fn prefetch_write(&self, offset: usize) {
        self.raw().prefetch_write(offset);
    }

    #[inline]
    fn raw(&self) -> &RawView {
        self.raw
            .as_ref()
            .expect("a View is unmapped only when consumed")
    }

    /// Length in bytes: exactly what was asked for.
    pub fn len(&self) -> usize {
        self.raw().len()
    }

    /// Always false: views have at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the view starts in the mapping object.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The view's access.
    pub fn access(&self) -> ViewAccess {
        self.access
    }

    /// True for read-write and copy-on-write views.
    pub fn is_writable(&self) -> bool {
        self.access != ViewAccess::Read
    }

    fn out_of_range(&self, offset: usize, len: usize) -> Error {
        Error::OutOfRange {
            object: format!("{} (view at offset {})", self.shared.label, self.offset),
            offset: offset as u64,
            len: len as u64,
            size: self.len() as u64,
        }
    }

    #[inline]
    fn check_writable(&self) -> Result<()> {
        if self.is_writable() {
            Ok(())
        } else {
            Err(Error::AccessDenied {
                object: self.shared.label.clone(),
                reason: "this view is read-only; map a ReadWrite or CopyOnWrite view to write"
                    .into(),
            })
        }
    }

    /// How many bytes of this view the OS maps with large pages right now,
    /// as it reports them (Linux: `/proc/self/smaps`, huge pages mapped
    /// whole; Windows: `QueryWorkingSetEx`). Pages not touched yet in this
    /// process may not be mapped at all: touch them first to see what
    /// backs them. See [`crate::Options::large_pages`].
    ///
    /// # Errors
    /// [`Error::Unsupported`] on macOS, [`Error::Os`] when the OS cannot be
    /// asked.
    pub fn large_page_bytes(&self) -> Result<u64> {
        crate::sys::large_page_bytes(self.raw(), &self.shared.label)
    }

    /// Whether another process shrank the object under this view (or a page
    /// of it could not be backed): from then on the view's vanished pages
    /// read as zeros and writes to them reach no one, and the methods that
    /// return a `Result` report [`Error::Truncated`]. Accesses never crash
    /// (Unix: filemap's `SIGBUS` handler; Windows: sections cannot shrink).
    #[inline]
    pub fn is_truncated(&self) -> bool {
        self.raw().truncated()
    }

    /// `Err(Truncated)` once a page of the view lost its backing.
    #[inline]
    fn check_backed(&self) -> Result<()> {
        if self.raw().truncated() {
            return Err(self.truncated_error());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn truncated_error(&self) -> Error {
        Error::Truncated {
            object: self.shared.label.clone(),
        }
    }

    /// Copies `buf.len()` bytes from `offset` (relative to the view) into `buf`.
    /// If another process writes the range meanwhile, `buf` may hold a mix of
    /// old and new bytes; use a lock or a seqlock to get a consistent copy.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] if the range is not inside the view,
    /// [`Error::Truncated`] if another process shrank the object under it.
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.read_at_raw(offset, buf)?;
        self.check_backed()
    }

    /// Copies `data` into the view at `offset` (relative to the view).
    ///
    /// # Errors
    /// [`Error::AccessDenied`] for a read-only view, [`Error::OutOfRange`],
    /// [`Error::Truncated`].
    #[inline]
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.write_at_raw(offset, data)?;
        self.check_backed()
    }

    /// [`View::read_at`] without the truncation check, for the layers above
    /// (segments check on their slow paths, not on every copy).
    #[inline]
    pub(crate) fn read_at_raw(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        if self.raw().copy_out(offset, buf) {
            Ok(())
        } else {
            Err(self.out_of_range(offset, buf.len()))
        }
    }

    /// [`View::write_at`] without the access and truncation checks: for
    /// segments, which map read-write and check truncation on slow paths.
    #[inline]
    pub(crate) fn write_at_raw(&self, offset: usize, data: &[u8]) -> Result<()> {
        debug_assert!(self.is_writable());
        if self.raw().copy_in(offset, data) {
            Ok(())
        } else {
            Err(self.out_of_range(offset, data.len()))
        }
    }

    /// A copy of the whole view. Bytes of pages another process cut off by
    /// shrinking the object read as zeros; [`View::read_at`] reports that.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        let copied = self.raw().copy_out(0, &mut v);
        debug_assert!(copied);
        v
    }

    #[inline]
    fn atomic<T: SharedAtomic>(&self, offset: usize) -> Result<&T> {
        match self.raw().atomic::<T>(offset) {
            Some(Ok(a)) => Ok(a),
            Some(Err(())) => Err(Error::Misaligned {
                object: self.shared.label.clone(),
                offset: offset as u64,
                align: T::ALIGN as u64,
            }),
            None => Err(self.out_of_range(offset, T::ALIGN)),
        }
    }

    /// The `AtomicU32` at `offset` (relative to the view), shared with every
    /// process that maps the same bytes. Writable views only, since a store
    /// through a read-only view would fault; see [`View::load_u32`].
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let m = filemap::Mapping::anonymous(4096)?;
    /// let a = m.view(.., filemap::ViewAccess::ReadWrite)?;
    /// let b = m.view(.., filemap::ViewAccess::Read)?;
    /// a.atomic_u32(8)?.fetch_add(5, Ordering::AcqRel);
    /// assert_eq!(b.load_u32(8)?, 5);
    /// # Ok::<(), filemap::Error>(())
    /// ```
    ///
    /// If another process shrinks the object later, accesses through the
    /// reference still complete (on a zero page) and never crash;
    /// [`View::is_truncated`] tells.
    ///
    /// # Errors
    /// [`Error::AccessDenied`] on a read-only view, [`Error::Misaligned`] when
    /// `offset` is not a multiple of 4 (in the object), [`Error::OutOfRange`],
    /// [`Error::Truncated`].
    #[inline]
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        self.check_writable()?;
        self.check_backed()?;
        self.atomic(offset)
    }

    /// The `AtomicU64` at `offset`; as [`View::atomic_u32`] with 8-byte alignment.
    ///
    /// # Errors
    /// As [`View::atomic_u32`].
    #[inline]
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        self.check_writable()?;
        self.check_backed()?;
        self.atomic(offset)
    }

    /// Loads the `u32` at `offset` atomically (acquire), from any view.
    ///
    /// # Errors
    /// [`Error::Misaligned`], [`Error::OutOfRange`], [`Error::Truncated`].
    pub fn load_u32(&self, offset: usize) -> Result<u32> {
        let v = self.atomic::<AtomicU32>(offset)?.load(Ordering::Acquire);
        self.check_backed()?;
        Ok(v)
    }

    /// Loads the `u64` at `offset` atomically (acquire), from any view.
    ///
    /// # Errors
    /// [`Error::Misaligned`], [`Error::OutOfRange`], [`Error::Truncated`].
    pub fn load_u64(&self, offset: usize) -> Result<u64> {
        let v = self.atomic::<AtomicU64>(offset)?.load(Ordering::Acquire);
        self.check_backed()?;
        Ok(v)
    }

    /// The `AtomicU64` at `offset` for the layers above: no access or
    /// truncation check (segments map read-write, and check truncation on
    /// their slow paths).
    #[inline]
    pub(crate) fn atomic_u64_raw(&self, offset: usize) -> Result<&AtomicU64> {
        self.atomic(offset)
    }

    /// As [`View::atomic_u64_raw`], for an `AtomicU32`.
    #[inline]
    pub(crate) fn atomic_u32_raw(&self, offset: usize) -> Result<&AtomicU32> {
        self.atomic(offset)
    }

    /// The address of the first byte of the view. Using it is up to the caller
    /// (and `unsafe`); it stays valid while the view lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.raw().ptr()
    }

    /// Borrows the view's bytes.
    ///
    /// # Safety
    /// While the slice lives, no one may write these bytes: not this process
    /// through another view or pointer, and not another process. (Otherwise
    /// the slice's contents change under a shared reference, which is
    /// undefined behaviour.) Use a read-only object, or a protocol such as a
    /// lock, to guarantee it.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the pointer and length describe this live view; the caller
        // guarantees the absence of writers for the slice's lifetime.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }

    /// Borrows the view's bytes mutably.
    ///
    /// # Safety
    /// While the slice lives, no one else may read or write these bytes: not
    /// this process through another view or pointer, and not another process.
    ///
    /// # Errors
    /// [`Error::AccessDenied`] for a read-only view.
    pub unsafe fn as_mut_slice(&mut self) -> Result<&mut [u8]> {
        self.check_writable()?;
        // SAFETY: a live, writable view; `&mut self` rules out other borrows
        // through this View, and the caller rules out every other accessor.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.len()) })
    }

    /// Starts writing the view's changed pages back to the backing file
    /// (`msync(MS_ASYNC)`, `FlushViewOfFile`), without waiting. Does nothing
    /// useful, and costs little, for memory-backed mappings.
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn flush(&self) -> Result<()> {
        sys::flush(self.raw(), false, &self.shared.label)
    }

    /// Writes the view's changed pages to the backing file and waits until the
    /// file's data is on disk (`msync(MS_SYNC)` + `fsync`; `FlushViewOfFile` +
    /// `FlushFileBuffers`).
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn flush_durable(&self) -> Result<()> {
        sys::flush(self.raw(), true, &self.shared.label)?;
        self.shared.sync_backing()
    }

    /// Unmaps the view now, reporting an error from the OS (which dropping
    /// cannot). The mapping object lives on while other handles or views do.
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn unmap(mut self) -> Result<()> {
        let raw = self
            .raw
            .take()
            .expect("a View is unmapped only when consumed");
        sys::unmap(&raw, &self.shared.label)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            let _ = sys::unmap(&raw, &self.shared.label);
        }
    }
}
