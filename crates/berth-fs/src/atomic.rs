//! Atomic file replacement: temp file in the same directory → write → fsync
//! the file → rename over the destination → fsync the directory.
//!
//! Readers see either the old content or the new content, never a mix, and
//! after a successful return the new content survives a crash. A failed or
//! abandoned write leaves no temp file behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, IoContext, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replace `path` with `bytes` atomically (mode 0644 before umask for a new file).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path.as_ref())?;
    f.write_all(bytes).at(&f.tmp)?;
    f.commit()
}

/// Replace `path` with `bytes` atomically but not durably: readers see the
/// old or the new content, never a part, but after a crash the file may
/// hold its previous version. For state that is rewritten often and
/// re-checked on use (a container's run state), where an fsync per write
/// would cost more than it is worth.
pub fn replace_volatile(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path.as_ref())?;
    f.write_all(bytes).at(&f.tmp)?;
    f.commit_volatile()
}

/// Replace `path` with everything read from `reader`, atomically; returns the
/// number of bytes written. The content is streamed, never held in memory.
pub fn write_atomic_from(path: impl AsRef<Path>, reader: &mut impl Read) -> Result<u64> {
    let mut f = AtomicFile::create(path.as_ref())?;
    let n = io::copy(reader, &mut f).at(&f.tmp)?;
    f.commit()?;
    Ok(n)
}

/// A file being written in place of `dst`; nothing is visible at `dst` until
/// [`AtomicFile::commit`]. Dropping it without committing removes the temp file.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    dst: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Start writing a replacement for `dst` (mode 0644 before umask).
    pub fn create(dst: impl AsRef<Path>) -> Result<Self> {
        Self::create_with_mode(dst, 0o644)
    }

    /// Start writing a replacement for `dst` with the given permission bits
    /// (applied exactly, not subject to the umask).
    pub fn create_with_mode(dst: impl AsRef<Path>, mode: u32) -> Result<Self> {
        let dst = dst.as_ref().to_path_buf();
        let name = dst
            .file_name()
            .ok_or_else(|| Error::io(&dst, io::Error::from(io::ErrorKind::InvalidInput)))?;
        let dir = parent_dir(&dst);
        let mut last_err = None;
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".tmp-{}-{n}-{nanos:x}", std::process::id()));
            let tmp = dir.join(tmp_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(rustix::fs::OFlags::CLOEXEC.bits() as i32)
                .open(&tmp)
            {
                Ok(file) => {
                    rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(mode)).at(&tmp)?;
                    return Ok(AtomicFile {
                        tmp,
                        dst,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(Error::io(&tmp, e)),
            }
        }
        Err(Error::io(
            &dst,
            last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
        ))
    }

    /// The temporary path being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// The open temp file, e.g. for `set_len` or metadata calls.
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// Rename the file over the destination without any fsync (see
    /// [`replace_volatile`]).
    pub fn commit_volatile(mut self) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::io(&self.tmp, io::Error::other("already committed")))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dst).at(&self.dst)?;
        self.tmp = PathBuf::new();
        Ok(())
    }

    /// fsync the file, rename it over the destination, fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::io(&self.tmp, io::Error::other("already committed")))?;
        file.sync_all().at(&self.tmp)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dst).at(&self.dst)?;
        // The temp name is gone now; nothing to clean up on drop.
        self.tmp = PathBuf::new();
        sync_dir(parent_dir(&self.dst))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("atomic file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// fsync a directory so that renames and creations inside it are durable.
pub fn sync_dir(dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    let f = File::open(dir).at(dir)?;
    f.sync_all().at(dir)
}

fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}
