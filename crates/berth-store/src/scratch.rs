//! Scratch directories under `tmp/` for work that spools data before it
//! reaches the store (a load's archive, a build context). Each holds the
//! work lock `tmp/<name>.lock` while it lives, so start-up removes the ones
//! a killed process left behind and keeps live ones of other processes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::locks::{self, Probe, WorkLock};
use crate::{Error, Result};

/// A scratch directory, removed with its lock when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    lock: Option<WorkLock>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl ScratchDir {
    /// Creates `tmp/<prefix>-<unique>/`.
    pub(crate) fn create(tmp: &Path, prefix: &str) -> Result<ScratchDir> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self::create_named(tmp, &name)
    }

    /// Creates `parent/<name>/` (which must not be in use).
    pub(crate) fn create_named(parent: &Path, name: &str) -> Result<ScratchDir> {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let path = parent.join(name);
        let lock = WorkLock::create(&path.with_extension("lock"))?
            .ok_or_else(|| Error::Conflict(format!("{} exists", path.display())))?;
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        std::fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
        Ok(ScratchDir {
            path,
            lock: Some(lock),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(lock) = self.lock.take() {
            lock.remove();
        }
    }
}

/// Removes scratch directories (and stray entries) under `tmp/` whose owner
/// is gone. Returns how many.
pub(crate) fn sweep(tmp: &Path) -> Result<usize> {
    sweep_with(tmp, |_| {})
}

/// [`sweep`] for any directory of work dirs; `before_remove` runs on each
/// abandoned one first (to unmount or stop what it holds).
pub(crate) fn sweep_with(tmp: &Path, mut before_remove: impl FnMut(&Path)) -> Result<usize> {
    locks::sweep_temporaries(tmp);
    let entries = match std::fs::read_dir(tmp) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(tmp, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(tmp, e))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with(".tmp-") {
            continue;
        }
        if path.extension().is_some_and(|e| e == "lock") {
            // A lock whose directory never appeared (its owner died first).
            if !path.with_extension("").exists() {
                if let Some(lock) = WorkLock::take(&path, false)? {
                    lock.remove();
                }
            }
            continue;
        }
        let lock_path = path.with_extension("lock");
        if locks::probe(&lock_path) == Probe::Held {
            continue;
        }
        let lock = WorkLock::take(&lock_path, false)?;
        before_remove(&path);
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.map_err(|e| Error::io(&path, e))?;
        removed += 1;
        if let Some(lock) = lock {
            lock.remove();
        }
    }
    Ok(removed)
}
