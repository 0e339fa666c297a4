//! The content store: blobs are written to an ingest directory, hashed while
//! they stream, verified against the expected digest and size, then fsynced
//! and renamed into `blobs/<algo>/<hex>` (read-only) with the directory
//! fsynced. Nothing half-written is ever visible under `blobs/`.
//!
//! Each ingest `ingest/<id>/` holds the work lock `ingest/<id>.lock` (see
//! `locks`) for its whole life, taken before the directory exists, so
//! start-up can tell abandoned ingests (writer died) from live ones in
//! another process.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_oci::{Algorithm, Digest, DigestWriter};

use crate::locks::{self, Probe, WorkLock};
use crate::{Error, Layout, Result};

/// Reads and writes blobs.
#[derive(Debug, Clone)]
pub struct ContentStore {
    layout: Layout,
}

/// A blob that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobFault {
    /// The file's content hashes to another digest.
    Corrupt { actual: Digest },
    /// A file under `blobs/` whose name is not a digest.
    StrayFile { path: PathBuf },
    /// The blob is writable (blobs must be read-only).
    Writable,
}

impl ContentStore {
    pub fn new(layout: Layout) -> Self {
        ContentStore { layout }
    }

    /// Path of a blob (it may not exist).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }

    /// The size of a committed blob, or `None` if it is absent.
    pub fn size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.path(digest);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Opens a committed blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(format!("blob {digest}")),
            _ => Error::io(path, e),
        })
    }

    /// Reads a whole (small) blob, such as a config or manifest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let path = self.path(digest);
        self.open(digest)?
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        Ok(buf)
    }

    /// Starts writing a blob. With `expected`, the content must hash to that
    /// digest and have that size (writing past the size fails at once).
    pub fn ingest(&self, expected: Option<(Digest, u64)>) -> Result<Ingest> {
        Ingest::start(&self.layout, expected)
    }

    /// Writes a blob from memory and returns its sha256 digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let mut ingest = self.ingest(None)?;
        ingest
            .write_all(bytes)
            .map_err(|e| Error::io(ingest.data_path(), e))?;
        Ok(ingest.commit()?.0)
    }

    /// Writes a blob from a reader and returns its digest and size.
    pub fn write_from(
        &self,
        reader: &mut impl Read,
        expected: Option<(Digest, u64)>,
    ) -> Result<(Digest, u64)> {
        let mut ingest = self.ingest(expected)?;
        io::copy(reader, &mut ingest).map_err(|e| Error::io(ingest.data_path(), e))?;
        ingest.commit()
    }

    /// Removes a blob (a no-op if absent).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Every committed blob, and every stray file found under `blobs/`.
    pub fn list(&self) -> Result<(Vec<Digest>, Vec<PathBuf>)> {
        let mut digests = Vec::new();
        let mut strays = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.layout.root().join("blobs").join(algorithm.name());
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                match Digest::new(algorithm, name) {
                    Ok(d) => digests.push(d),
                    Err(_) => strays.push(entry.path()),
                }
            }
        }
        digests.sort();
        Ok((digests, strays))
    }

    /// Re-hashes a blob; `Ok(None)` when it is sound.
    pub fn verify(&self, digest: &Digest) -> Result<Option<BlobFault>> {
        let path = self.path(digest);
        let mut file = self.open(digest)?;
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        let mut hasher = DigestWriter::new(digest.algorithm());
        io::copy(&mut file, &mut hasher).map_err(|e| Error::io(&path, e))?;
        let (actual, _) = hasher.finish();
        if actual != *digest {
            return Ok(Some(BlobFault::Corrupt { actual }));
        }
        if meta.permissions().mode() & 0o222 != 0 {
            return Ok(Some(BlobFault::Writable));
        }
        Ok(None)
    }

    /// Removes ingests whose writer is gone. Returns how many.
    pub fn sweep_abandoned_ingests(&self) -> Result<usize> {
        let root = self.layout.ingest_root();
        locks::sweep_temporaries(&root);
        let mut removed = 0;
        for dir in self.ingests()? {
            if is_abandoned(&dir) {
                let lock = WorkLock::take(&lock_path(&dir), false)?;
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    removed += 1;
                }
                if let Some(lock) = lock {
                    lock.remove();
                }
            }
        }
        // Lock files whose directory is already gone.
        let entries = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&root, e))?.path();
            let is_lock = path.extension().is_some_and(|e| e == "lock")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"));
            if is_lock && !path.with_extension("").exists() {
                if let Some(lock) = WorkLock::take(&path, false)? {
                    lock.remove();
                }
            }
        }
        Ok(removed)
    }

    /// Ingest directories present now (live or abandoned).
    pub fn ingests(&self) -> Result<Vec<PathBuf>> {
        let root = self.layout.ingest_root();
        let entries = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&root, e))?.path();
            if path.is_dir() {
                out.push(path);
            }
        }
        Ok(out)
    }
}

/// The work lock of an ingest directory.
fn lock_path(dir: &Path) -> PathBuf {
    dir.with_extension("lock")
}

/// True when the ingest's writer is gone (its lock is not held).
pub(crate) fn is_abandoned(dir: &Path) -> bool {
    locks::probe(&lock_path(dir)) != Probe::Held
}

static INGEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A blob being written. Dropping it without [`Ingest::commit`] removes it.
#[derive(Debug)]
pub struct Ingest {
    dir: PathBuf,
    file: Option<File>,
    hasher: DigestWriter,
    expected: Option<(Digest, u64)>,
    layout: Layout,
    /// Held for the ingest's life; see the module docs.
    lock: Option<WorkLock>,
}

impl Ingest {
    fn start(layout: &Layout, expected: Option<(Digest, u64)>) -> Result<Ingest> {
        let id = format!(
            "{}-{}-{}",
            std::process::id(),
            INGEST_COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let dir = layout.ingest_root().join(id);
        let lock = WorkLock::create(&lock_path(&dir))?
            .ok_or_else(|| Error::Conflict(format!("ingest {} exists", dir.display())))?;
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let data = dir.join("data");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&data)
            .map_err(|e| Error::io(&data, e))?;
        let algorithm = expected
            .as_ref()
            .map_or(Algorithm::Sha256, |(d, _)| d.algorithm());
        Ok(Ingest {
            dir,
            file: Some(file),
            hasher: DigestWriter::new(algorithm),
            expected,
            layout: layout.clone(),
            lock: Some(lock),
        })
    }

    fn data_path(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.written()
    }

    /// Verifies and publishes the blob; returns its digest and size. If the
    /// blob already exists, the new copy is discarded.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let data = self.data_path();
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::Invalid("ingest already finished".into()))?;
        file.sync_all().map_err(|e| Error::io(&data, e))?;
        let hasher = std::mem::replace(&mut self.hasher, DigestWriter::sha256());
        let (digest, size) = hasher.finish();
        if let Some((expected, expected_size)) = &self.expected {
            if size != *expected_size {
                return Err(Error::SizeMismatch {
                    digest: expected.to_string(),
                    expected: *expected_size,
                    actual: size,
                });
            }
            if digest != *expected {
                return Err(Error::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                    size,
                });
            }
        }
        let target = self.layout.blob(&digest);
        if !target.exists() {
            file.set_permissions(std::fs::Permissions::from_mode(0o444))
                .map_err(|e| Error::io(&data, e))?;
            drop(file);
            std::fs::rename(&data, &target).map_err(|e| Error::io(&target, e))?;
            let blobs_dir = self.layout.blobs_dir(&digest);
            berth_fs::sync_dir(&blobs_dir)?;
        }
        Ok((digest, size))
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((digest, size)) = &self.expected {
            if self.hasher.written() + buf.len() as u64 > *size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("content {digest} is larger than its expected {size} bytes"),
                ));
            }
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("ingest already finished"))?;
        let n = file.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(lock) = self.lock.take() {
            lock.remove();
        }
    }
}
