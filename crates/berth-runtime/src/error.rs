//! The errors of spec generation. Messages that Docker users see match
//! Docker's own wording (`No command specified`, `unable to find user x: no
//! matching entries in passwd file`), so scripts that grep for them still work.

pub use berth_oci::ErrorKind;

/// Why a runtime spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Neither an entrypoint nor a command, from the image or the options.
    #[error("No command specified")]
    NoCommand,
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),
    /// A `--group-add` entry that is neither a group name nor a number.
    #[error("Unable to find group {0}: no matching entries in group file")]
    AdditionalGroupNotFound(String),
    #[error("uids and gids must be in range 0-2147483647")]
    IdOutOfRange,
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkingDir(String),
    #[error("invalid mount path {0:?}: it needs to be an absolute path")]
    RelativeMountPath(String),
    #[error("invalid tmpfs option {0:?}")]
    TmpfsOption(String),
    #[error("invalid container ID {0:?}")]
    ContainerId(String),
    #[error("path is not valid UTF-8: {0:?}")]
    NonUtf8Path(std::path::PathBuf),
    /// Assembling the root filesystem failed.
    #[error("{0}")]
    Rootfs(String),
    /// A `-v`/`--mount` value Docker refuses (Docker's own wording).
    #[error("{0}")]
    Mount(String),
    /// A `--memory`/`--cpus`/... value Docker refuses (Docker's own wording).
    #[error("{0}")]
    Resource(String),
    /// The image's root filesystem cannot be run safely (`/proc` a symlink).
    #[error("{0}")]
    UnsafeRootfs(String),
    /// Preparing a mount point or source failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    /// The built-in seccomp profile does not parse: a bug in berth.
    #[error("built-in seccomp profile: {0}")]
    SeccompProfile(#[source] serde_json::Error),
}

impl SpecError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SpecError::SeccompProfile(_) | SpecError::Rootfs(_) => ErrorKind::Internal,
            SpecError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            SpecError::Io { .. } => ErrorKind::Internal,
            SpecError::Fs(e) => e.kind(),
            SpecError::Mount(_) | SpecError::Resource(_) | SpecError::UnsafeRootfs(_) => {
                ErrorKind::InvalidArgument
            }
            SpecError::UserNotFound(_)
            | SpecError::GroupNotFound(_)
            | SpecError::AdditionalGroupNotFound(_) => ErrorKind::NotFound,
            SpecError::NoCommand
            | SpecError::IdOutOfRange
            | SpecError::UnknownCapability(_)
            | SpecError::RelativeWorkingDir(_)
            | SpecError::RelativeMountPath(_)
            | SpecError::TmpfsOption(_)
            | SpecError::ContainerId(_)
            | SpecError::NonUtf8Path(_) => ErrorKind::InvalidArgument,
        }
    }
}
