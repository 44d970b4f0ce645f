//! Errors on their way to Python: [`Error`] holds a filemap error or a
//! Python one, so that `?` works on both in every function, and becomes
//! the exception class of `filemap._errors` that matches its kind (each
//! also derives from the matching built-in: `NotFound` is a
//! `FileNotFoundError`, ...).

use pyo3::PyErr;

// The exception classes, defined in Python (`python/filemap/_errors.py`)
// and imported once.
pyo3::import_exception!(filemap._errors, Error);
pyo3::import_exception!(filemap._errors, NotFound);
pyo3::import_exception!(filemap._errors, AlreadyExists);
pyo3::import_exception!(filemap._errors, AccessDenied);
pyo3::import_exception!(filemap._errors, Timeout);
pyo3::import_exception!(filemap._errors, PeerGone);
pyo3::import_exception!(filemap._errors, Corrupt);
pyo3::import_exception!(filemap._errors, InvalidArgument);
pyo3::import_exception!(filemap._errors, Busy);
pyo3::import_exception!(filemap._errors, NoSpace);
pyo3::import_exception!(filemap._errors, Unsupported);
pyo3::import_exception!(filemap._errors, Truncated);

/// What a native function fails with.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The library's error: raised as the class of its kind.
    Filemap(filemap::Error),
    /// Already a Python exception.
    Python(PyErr),
}

/// The native module's result.
pub(crate) type Result<T, E = Fail> = std::result::Result<T, E>;

impl From<filemap::Error> for Fail {
    fn from(e: filemap::Error) -> Self {
        Fail::Filemap(e)
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Python(e)
    }
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> PyErr {
        use filemap::ErrorKind as K;
        let e = match f {
            Fail::Python(e) => return e,
            Fail::Filemap(e) => e,
        };
        let m = e.to_string();
        match e.kind() {
            K::NotFound => NotFound::new_err(m),
            K::AlreadyExists => AlreadyExists::new_err(m),
            K::AccessDenied => AccessDenied::new_err(m),
            K::InvalidArgument => InvalidArgument::new_err(m),
            K::Timeout => Timeout::new_err(m),
            K::PeerGone => PeerGone::new_err(m),
            // Python has one class for both: the bytes are not what was expected.
            K::Corrupt | K::Incompatible => Corrupt::new_err(m),
            K::Truncated => Truncated::new_err(m),
            K::Busy => Busy::new_err(m),
            K::NoSpace => NoSpace::new_err(m),
            K::Unsupported => Unsupported::new_err(m),
            _ => Error::new_err(m),
        }
    }
}
