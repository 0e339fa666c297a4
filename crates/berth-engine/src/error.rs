//! The engine's error type.

use berth_oci::ErrorKind;

/// What went wrong in an engine operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    #[error(transparent)]
    Format(#[from] berth_oci::Error),
    #[error(transparent)]
    Build(#[from] berth_build::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(e) => e.kind(),
            Error::Fs(e) => e.kind(),
            Error::Format(e) => e.kind(),
            Error::Build(e) => e.kind(),
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Io { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Results of engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
