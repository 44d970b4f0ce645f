//! Waiting from Python: timeouts, and blocking calls that release the GIL
//! and come back every 100 ms to run signal handlers (Ctrl-C).

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::Result;

/// How often a blocking call comes back to Python to run signal handlers.
pub(crate) const SIGNAL_SLICE: Duration = Duration::from_millis(100);

/// A call's time limit: when it ends, and the timeout it was given (what
/// a time-out reports).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    asked: Duration,
}

pub(crate) fn timeout_of(t: Option<f64>) -> Result<Option<Deadline>> {
    match t {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => {
            let asked = Duration::from_secs_f64(s);
            // Beyond what an `Instant` can hold: as good as no limit.
            Ok(Instant::now()
                .checked_add(asked)
                .map(|at| Deadline { at, asked }))
        }
        Some(s) => Err(PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds, not {s}"
        ))
        .into()),
    }
}

/// Runs `f` with the GIL released, in slices of at most 100 ms until it
/// succeeds, fails with something other than a time-out, or `deadline`
/// passes (then its time-out error is raised); between slices Python's
/// signal handlers run (Ctrl-C).
pub(crate) fn blocking<T: Send>(
    py: Python<'_>,
    deadline: Option<Deadline>,
    f: impl FnMut(Duration) -> filemap::Result<T> + Send,
) -> Result<T> {
    match blocking_until(py, deadline, f)? {
        Ok(v) => Ok(v),
        Err(timeout) => Err(timeout.into()),
    }
}

/// As [`blocking`], giving back the time-out error instead of raising it.
/// The time-out is the whole wait's: it says the timeout the call was
/// given, not the last slice's.
pub(crate) fn blocking_until<T: Send>(
    py: Python<'_>,
    deadline: Option<Deadline>,
    mut f: impl FnMut(Duration) -> filemap::Result<T> + Send,
) -> Result<Result<T, filemap::Error>> {
    loop {
        let slice = match deadline {
            None => SIGNAL_SLICE,
            Some(d) => {
                d.at.saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE)
            }
        };
        match py.detach(|| f(slice)) {
            Ok(v) => return Ok(Ok(v)),
            Err(filemap::Error::Timeout { object, what, .. })
                if deadline.is_some_and(|d| Instant::now() >= d.at) =>
            {
                let asked = deadline.map_or(Duration::ZERO, |d| d.asked);
                return Ok(Err(filemap::Error::Timeout {
                    object,
                    what,
                    waited: asked,
                }));
            }
            Err(filemap::Error::Timeout { .. }) => py.check_signals()?,
            Err(e) => return Err(e.into()),
        }
    }
}
