//! Work locks: a lock file that exists only while its owner holds an
//! exclusive `flock` on it, so another process can tell work in progress
//! (lock held) from work abandoned by a dead process (lock free, or no lock
//! file where one must exist).
//!
//! The file appears already locked: it is created under a temporary name,
//! locked, then hard-linked into place (which fails if another owner got
//! there first). Owners remove the file before they release the lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};

use crate::{Error, Result};

/// A held work lock.
#[derive(Debug)]
pub(crate) struct WorkLock {
    path: PathBuf,
    _file: File,
}

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A live owner holds it.
    Held,
    /// The file exists but nobody holds it: its owner died.
    Free,
    /// There is no lock file.
    Missing,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl WorkLock {
    /// Creates and holds the lock at `path`; `Ok(None)` if the file exists
    /// already (someone else's, live or abandoned).
    pub(crate) fn create(path: &Path) -> Result<Option<WorkLock>> {
        let tmp = path.with_file_name(format!(
            ".tmp-{}-{}.lock",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        flock(&file, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| Error::io(&tmp, e.into()))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Some(WorkLock {
                path: path.to_path_buf(),
                _file: file,
            })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Takes an existing lock: blocking (`wait`) until its owner is done, or
    /// not. `Ok(None)` when the file is missing, or held and not waiting.
    pub(crate) fn take(path: &Path, wait: bool) -> Result<Option<WorkLock>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let op = if wait {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        match flock(&file, op) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Ok(None),
            Err(e) => return Err(Error::io(path, e.into())),
        }
        // The owner may have finished (and removed the file) meanwhile.
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(WorkLock {
            path: path.to_path_buf(),
            _file: file,
        }))
    }

    /// Removes the lock file, then releases the lock.
    pub(crate) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Looks at a lock without taking it.
pub(crate) fn probe(path: &Path) -> Probe {
    let Ok(file) = File::open(path) else {
        return Probe::Missing;
    };
    if flock(&file, FlockOperation::NonBlockingLockShared).is_ok() {
        Probe::Free
    } else {
        Probe::Held
    }
}

/// Removes `.tmp-<pid>-<n>.lock` files in `dir` left by a process that died
/// between creating and publishing a lock: its pid is gone, or the file is
/// older than a minute (a reused pid).
pub(crate) fn sweep_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(middle) = name
            .strip_prefix(".tmp-")
            .and_then(|rest| rest.strip_suffix(".lock"))
        else {
            continue;
        };
        let owner_gone = middle
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
            });
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60);
        if owner_gone || old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
