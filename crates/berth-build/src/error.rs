//! The builder's error type.

use berth_oci::ErrorKind;

/// What went wrong in a build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    #[error(transparent)]
    Oci(#[from] berth_oci::Error),
    /// A Dockerfile problem, rendered with its file, line, column and text.
    #[error("{0}")]
    Dockerfile(String),
    /// A step failed; the message says which and how (Docker's wording).
    #[error("{0}")]
    StepFailed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    /// The image backend (the engine) failed.
    #[error("{0}")]
    Backend(String),
}

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    /// The broad class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Io { .. } | Error::Backend(_) => ErrorKind::Internal,
            Error::Store(e) => e.kind(),
            Error::Fs(e) => e.kind(),
            Error::Oci(e) => e.kind(),
            Error::Dockerfile(_) | Error::StepFailed(_) | Error::Invalid(_) => {
                ErrorKind::InvalidArgument
            }
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unsupported(_) => ErrorKind::Unsupported,
        }
    }
}

/// Results of build operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
