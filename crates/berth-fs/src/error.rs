//! The crate's one error type and its coarse [`ErrorKind`].
//!
//! Every I/O failure carries the path it happened on; hostile or malformed
//! archive entries say which entry and why they were refused.

use std::io;
use std::path::{Path, PathBuf};

/// Coarse classification shared by every berth library crate (DESIGN §6).
pub use berth_oci::ErrorKind;

/// The error type of `berth-fs`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An archive entry was refused (it would escape the target, or it is malformed).
    #[error("invalid layer entry {entry:?}: {reason}")]
    InvalidEntry {
        /// The entry name as found in the archive (lossily decoded).
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A path could not be resolved: too many symlink hops.
    #[error("{}: too many levels of symbolic links", path.display())]
    SymlinkLoop {
        /// The path being resolved.
        path: PathBuf,
    },
    /// The layer expands beyond `max_bytes`.
    #[error("layer exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// The tar (or compressed) stream itself is corrupt.
    #[error("corrupt archive stream: {0}")]
    Archive(#[source] io::Error),
    /// A format or feature that is recognised but not supported.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                    ErrorKind::InvalidArgument
                }
                io::ErrorKind::Unsupported => ErrorKind::Unsupported,
                io::ErrorKind::WouldBlock
                | io::ErrorKind::Interrupted
                | io::ErrorKind::ResourceBusy
                | io::ErrorKind::StorageFull
                | io::ErrorKind::QuotaExceeded => ErrorKind::Unavailable,
                io::ErrorKind::DirectoryNotEmpty => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
            Error::InvalidEntry { .. }
            | Error::SymlinkLoop { .. }
            | Error::TooLarge { .. }
            | Error::Archive(_) => ErrorKind::InvalidArgument,
            Error::Unsupported(_) => ErrorKind::Unsupported,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        Error::Io {
            path: path.into(),
            source: source.into(),
        }
    }

    pub(crate) fn entry(entry: &[u8], reason: impl Into<String>) -> Self {
        Error::InvalidEntry {
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an I/O result.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let e = Error::io("/x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().starts_with("/x: "));
        assert_eq!(
            Error::TooLarge { limit: 1 }.kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Error::entry(b"../x", "escapes").kind(),
            ErrorKind::InvalidArgument
        );
    }
}
