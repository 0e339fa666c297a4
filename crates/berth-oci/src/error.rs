//! The crate's one error type and the kinds that callers (the API's status
//! mapping, the CLI's exit codes) branch on.

use crate::digest::DigestError;
use crate::reference::ReferenceError;

/// What went wrong, coarsely, as DESIGN §6 lists the kinds. Higher crates
/// reuse this vocabulary for their own errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    Conflict,
    Unavailable,
    Unsupported,
    Internal,
}

/// Errors from parsing and writing image formats.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("invalid platform {spec:?}: {reason}")]
    Platform { spec: String, reason: &'static str },
    #[error("invalid {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported {what} schema version {version}")]
    SchemaVersion { what: &'static str, version: u32 },
    #[error("unsupported media type {0}")]
    MediaType(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Digest(_)
            | Error::Reference(_)
            | Error::Platform { .. }
            | Error::Json { .. } => ErrorKind::InvalidArgument,
            Error::SchemaVersion { .. } | Error::MediaType(_) => ErrorKind::Unsupported,
        }
    }

    pub(crate) fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
        move |source| Error::Json { what, source }
    }
}
