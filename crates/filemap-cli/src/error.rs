//! The CLI's errors, their exit codes and what to do next; `main` reports
//! them in one place.

use std::io;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The library refused (the message names the object).
    #[error("{}", with_hint(.0))]
    Filemap(#[from] filemap::Error),
    /// Reading stdin or writing stdout failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Arguments that parse but do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// 1 for "not found", 2 for everything else (usage, access, OS errors).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Filemap(e) if e.kind() == filemap::ErrorKind::NotFound => 1,
            _ => 2,
        }
    }

    /// True when stdout was closed under us (`filemap list | head -1`): the
    /// reader has what it wanted, so the command ends quietly, exit 0.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// The library's message and what to do next.
fn with_hint(e: &filemap::Error) -> String {
    use filemap::ErrorKind as K;
    let hint = match (e.kind(), e) {
        // Hints about names, where the error is about a name.
        (K::NotFound, filemap::Error::NotFound { .. }) => "; `filemap list` shows what exists",
        (K::AlreadyExists, filemap::Error::AlreadyExists { .. }) => {
            "; `filemap info` shows it, `filemap rm` removes it"
        }
        (K::AccessDenied, _) => "; check the object's owner and mode with `filemap info`",
        (K::InvalidArgument, filemap::Error::OutOfRange { .. }) => {
            "; `filemap info` shows its size"
        }
        _ => "",
    };
    format!("{e}{hint}")
}

/// The result of a command.
pub type Result<T = ()> = std::result::Result<T, CliError>;
