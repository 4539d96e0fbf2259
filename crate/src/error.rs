//! One error type for the whole crate.
//!
//! Every variant renders as a single line that says what is wrong and how to fix it: the
//! command-line tool prints `error: {err}` and exits non-zero, never a panic trace.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the caller needs is not there.
    #[error("{path}: file not found; {hint}")]
    Missing { path: PathBuf, hint: String },

    /// A file is there but its content is not what its format promises
    /// (`msg` names the record or line where that can be told).
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },

    /// A file's decompressed content does not hash to the published checksum.
    #[error("{path}: sha256 mismatch (expected {expected}, got {actual}); delete it and run `digits data fetch` again")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A caller passed something that cannot work (a wrong image size, an unknown name, ...).
    #[error("{0}")]
    Invalid(String),

    /// Training produced a NaN or infinite loss.
    #[error("{0}")]
    NonFinite(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}
