//! The benchmark's one error type.

/// Why a case, or the whole run, failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A filemap call failed.
    #[error(transparent)]
    Filemap(#[from] filemap::Error),
    /// An I/O call failed (pipes, sockets, starting the peer, writing output).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer process failed: what it printed, or how it exited.
    #[error("the peer failed: {0}")]
    Peer(String),
    /// A case that cannot run in this build or on this OS, or arguments
    /// that do not fit.
    #[error("{0}")]
    Unsupported(String),
    /// Another library the bench drives (iceoryx2, hdrhistogram, plotters).
    #[error("{library}: {message}")]
    Library {
        /// Which library.
        library: &'static str,
        /// What it said.
        message: String,
    },
    /// A case failed: which one, and why.
    #[error("{case}: {source}")]
    Case {
        /// The case (`latency filemap spsc, spin, copy 64 B`).
        case: String,
        /// Why it failed.
        #[source]
        source: Box<BenchError>,
    },
}

impl BenchError {
    /// An error reported by `library`.
    pub fn library(library: &'static str, e: impl std::fmt::Display) -> BenchError {
        BenchError::Library {
            library,
            message: e.to_string(),
        }
    }
}

/// The benchmark's result type.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
