//! The store's error type. `Corruption` (the bytes of a log are wrong) is kept apart from `Io`
//! (the machine said no) so callers can map them to different exit codes and hints.

use std::path::PathBuf;

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an operation on a path.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What pipetape was doing, e.g. "cannot open log".
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes of a log are not what the format says they must be.
    #[error("{path}: byte {offset}: {what}")]
    Corruption {
        /// The log file.
        path: PathBuf,
        /// Byte offset in the file where the problem starts.
        offset: u64,
        /// What was found and what was expected.
        what: String,
    },
    /// The log was written by a newer pipetape with a format this build cannot read.
    #[error(
        "{path}: format version {found} is newer than this pipetape understands (up to {supported}); upgrade pipetape"
    )]
    NewerFormat {
        /// The log file.
        path: PathBuf,
        /// Version found in the header.
        found: u16,
        /// Highest version this build reads.
        supported: u16,
    },
    /// A RUN argument matched no run.
    #[error("no run matches '{spec}'{hint}")]
    UnknownRun {
        /// What the user typed.
        spec: String,
        /// Extra guidance, starting with a separator, or empty.
        hint: String,
    },
    /// A RUN prefix matched several runs.
    #[error("'{spec}' is ambiguous: it matches {}; type more of the id", .candidates.join(", "))]
    AmbiguousRun {
        /// What the user typed.
        spec: String,
        /// Ids that match (at most a handful).
        candidates: Vec<String>,
    },
    /// The run catalog (sled) failed.
    #[error("run catalog at {path}: {message}")]
    Catalog {
        /// The catalog directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A remote (object storage) failed or is misconfigured.
    #[error("remote {url}: {message}")]
    Remote {
        /// The remote's URL (or an object's).
        url: String,
        /// What went wrong, and what to check.
        message: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// A caller broke an API rule (e.g. appending after close).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }

    /// Shorthand for [`Error::Corruption`].
    pub fn corruption(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.into(),
            offset,
            what: what.into(),
        }
    }

    /// True when the error says the data itself is damaged or unreadable by this version.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. } | Error::NewerFormat { .. })
    }
}
