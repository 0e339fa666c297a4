//! Snapshots: each layer unpacked once into `snapshots/<n>/fs`, keyed by its
//! chain ID and shared by every image that has it. Layers are unpacked with
//! overlayfs-form whiteouts, so a chain's directories stack directly as
//! overlay lower dirs.
//!
//! A snapshot is recorded uncommitted before it is unpacked and committed
//! after; the unpacker holds the work lock `snapshots/locks/<chain>.lock`
//! (taken before the record exists) meanwhile, so an uncommitted snapshot
//! whose lock is not held was abandoned by a dead process and is swept at
//! start-up.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_fs::{decompress, ApplyOptions, WhiteoutMode};
use berth_oci::{Digest, DigestWriter};
use rusqlite::{params, OptionalExtension};

use crate::locks::{self, Probe, WorkLock};
use crate::{Error, Metadata, Result};

/// A committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub chain_id: Digest,
    pub id: i64,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    pub size: u64,
}

/// How a chain mounts with overlayfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySpec {
    /// Top layer first, as overlayfs wants them.
    pub lower: Vec<PathBuf>,
}

/// The kernel's limit on a mount option string (one page).
pub const MOUNT_OPTIONS_MAX: usize = 4095;

impl OverlaySpec {
    /// `lowerdir=…` with paths relative to `base` (the snapshots dir, which
    /// the mounter makes its working directory), keeping the option string
    /// under the page-size limit; `None` when even that is too long.
    pub fn lowerdir_option(&self, base: &Path) -> Option<String> {
        let parts: Vec<String> = self
            .lower
            .iter()
            .map(|p| {
                p.strip_prefix(base)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let option = format!("lowerdir={}", parts.join(":"));
        (option.len() <= MOUNT_OPTIONS_MAX).then_some(option)
    }
}

/// Snapshot operations over a store root.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

/// Most a layer may unpack to (a bound against decompression bombs).
pub const MAX_LAYER_BYTES: u64 = 64 << 30;

impl Snapshots {
    pub fn new(dir: PathBuf) -> Self {
        Snapshots { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of snapshot `id`.
    pub fn fs_dir(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string()).join("fs")
    }

    /// The committed snapshot for `chain_id`.
    pub fn get(&self, meta: &Metadata, chain_id: &Digest) -> Result<Option<Snapshot>> {
        let row = meta
            .conn()
            .query_row(
                "SELECT id, parent, diff_id, size FROM snapshots WHERE chain_id = ?1 AND committed = 1",
                params![chain_id.to_string()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, parent, diff_id, size)) = row else {
            return Ok(None);
        };
        Ok(Some(Snapshot {
            chain_id: chain_id.clone(),
            id,
            parent: parent.map(|p| parse_digest(&p)).transpose()?,
            diff_id: parse_digest(&diff_id)?,
            size: size.unwrap_or(0).max(0) as u64,
        }))
    }

    /// Every committed snapshot.
    pub fn list(&self, meta: &Metadata) -> Result<Vec<Snapshot>> {
        let mut stmt = meta
            .conn()
            .prepare_cached("SELECT chain_id FROM snapshots WHERE committed = 1 ORDER BY id")?;
        let chains = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        for c in chains {
            if let Some(s) = self.get(meta, &parse_digest(&c)?)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Unpacks `layer` (compressed or not) as the snapshot of `chain_id` on
    /// top of `parent`, verifying that its uncompressed content hashes to
    /// `diff_id`. Returns the existing snapshot when there is one.
    pub fn unpack(
        &self,
        meta: &mut Metadata,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        layer: impl Read,
    ) -> Result<Snapshot> {
        self.create_with(meta, chain_id, parent, diff_id, |fs_dir| {
            std::fs::create_dir_all(fs_dir).map_err(|e| Error::io(fs_dir, e))?;
            let (_, stream) = decompress(layer)?;
            let mut hashing = HashingReader {
                inner: stream,
                hasher: DigestWriter::new(diff_id.algorithm()),
            };
            let opts = ApplyOptions {
                whiteout_mode: WhiteoutMode::Overlay,
                allow_devices: true,
                max_bytes: Some(MAX_LAYER_BYTES),
                ..ApplyOptions::default()
            };
            berth_fs::apply_layer(&mut hashing, fs_dir, &opts)?;
            io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::io(fs_dir, e))?;
            let (actual, size) = hashing.hasher.finish();
            if actual != *diff_id {
                return Err(Error::DigestMismatch {
                    expected: diff_id.clone(),
                    actual,
                    size,
                });
            }
            berth_fs::sync_dir(fs_dir)?;
            Ok(size)
        })
    }

    /// Commits the prepared directory `dir` (an overlay upper dir, overlay
    /// whiteouts and all, on the store's filesystem) as the snapshot of
    /// `chain_id` on top of `parent`, by renaming it into place; `size` is
    /// its layer's uncompressed size. The snapshot is marked committed only
    /// after the rename, so a crash leaves an uncommitted snapshot that
    /// start-up sweeps. When the chain exists already, `dir`
    /// is left alone and the existing snapshot returned.
    pub fn commit_dir(
        &self,
        meta: &mut Metadata,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        dir: &Path,
        size: u64,
    ) -> Result<Snapshot> {
        self.create_with(meta, chain_id, parent, diff_id, |fs_dir| {
            // As for unpacked layers, the directory entries are synced and
            // the file data is left to the kernel: the layer blob, which is
            // fsynced, is the durable copy (a syncfs here cost seconds on
            // a busy disk).
            std::fs::rename(dir, fs_dir).map_err(|e| Error::io(fs_dir, e))?;
            berth_fs::sync_dir(fs_dir)?;
            if let Some(parent_dir) = fs_dir.parent() {
                berth_fs::sync_dir(parent_dir)?;
            }
            Ok(size)
        })
    }

    /// The shared life of a new snapshot: an existing chain is returned as
    /// is; otherwise the chain is reserved (recorded uncommitted, locked),
    /// `fill` makes `snapshots/<n>/fs` and returns its size, and the
    /// snapshot is marked committed — or discarded when `fill` fails.
    fn create_with(
        &self,
        meta: &mut Metadata,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        fill: impl FnOnce(&Path) -> Result<u64>,
    ) -> Result<Snapshot> {
        if let Some(existing) = self.get(meta, chain_id)? {
            return Ok(existing);
        }
        if let Some(p) = parent {
            if self.get(meta, p)?.is_none() {
                return Err(Error::NotFound(format!("parent snapshot {p}")));
            }
        }
        let (id, lock) = self.reserve(meta, chain_id, parent, diff_id)?;
        let Some(id) = id else {
            // Another process committed it while we waited.
            lock.remove();
            return self
                .get(meta, chain_id)?
                .ok_or_else(|| Error::Conflict(format!("snapshot {chain_id} vanished")));
        };
        match fill(&self.fs_dir(id)) {
            Ok(size) => {
                meta.write(|tx| {
                    tx.execute(
                        "UPDATE snapshots SET committed = 1, size = ?2 WHERE chain_id = ?1",
                        params![chain_id.to_string(), size as i64],
                    )?;
                    Ok(())
                })?;
                lock.remove();
                self.get(meta, chain_id)?
                    .ok_or_else(|| Error::Conflict(format!("snapshot {chain_id} vanished")))
            }
            Err(e) => {
                self.discard(meta, chain_id, id)?;
                lock.remove();
                Err(e)
            }
        }
    }

    /// Records an uncommitted snapshot and takes its lock. `Ok((None, _))`
    /// when another process committed the chain meanwhile.
    fn reserve(
        &self,
        meta: &mut Metadata,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
    ) -> Result<(Option<i64>, WorkLock)> {
        let lock_path = self.lock_path(chain_id);
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        loop {
            // Hold the chain's lock: create it, or wait for its owner.
            let lock = match WorkLock::create(&lock_path)? {
                Some(lock) => lock,
                None => match WorkLock::take(&lock_path, true)? {
                    Some(lock) => lock,
                    None => continue,
                },
            };
            let existing = meta
                .conn()
                .query_row(
                    "SELECT id, committed FROM snapshots WHERE chain_id = ?1",
                    params![chain_id.to_string()],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?;
            match existing {
                Some((_, 1)) => return Ok((None, lock)),
                Some((id, _)) => {
                    // Abandoned by a dead unpacker: take it over.
                    let dir = self.dir.join(id.to_string());
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    }
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    return Ok((Some(id), lock));
                }
                None => {
                    let id = meta.write(|tx| {
                        let next: i64 = tx.query_row(
                            "SELECT COALESCE(MAX(id), 0) + 1 FROM snapshots",
                            [],
                            |r| r.get(0),
                        )?;
                        tx.execute(
                            "INSERT INTO snapshots (chain_id, id, parent, diff_id, committed)
                             VALUES (?1, ?2, ?3, ?4, 0)",
                            params![
                                chain_id.to_string(),
                                next,
                                parent.map(Digest::to_string),
                                diff_id.to_string()
                            ],
                        )?;
                        Ok(next)
                    })?;
                    let dir = self.dir.join(id.to_string());
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    return Ok((Some(id), lock));
                }
            }
        }
    }

    /// The work lock of a chain's unpack.
    pub(crate) fn lock_path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join("locks").join(format!(
            "{}-{}.lock",
            chain_id.algorithm().name(),
            chain_id.hex()
        ))
    }

    /// True when nobody is unpacking `chain_id` now.
    pub(crate) fn unpacker_gone(&self, chain_id: &Digest) -> bool {
        locks::probe(&self.lock_path(chain_id)) != Probe::Held
    }

    /// Removes a snapshot's row and directory.
    pub(crate) fn discard(&self, meta: &mut Metadata, chain_id: &Digest, id: i64) -> Result<()> {
        meta.write(|tx| {
            tx.execute(
                "DELETE FROM snapshots WHERE chain_id = ?1",
                params![chain_id.to_string()],
            )?;
            Ok(())
        })?;
        let dir = self.dir.join(id.to_string());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(dir, e)),
        }
    }

    /// Removes uncommitted snapshots whose unpacker is gone. Returns how many.
    pub fn sweep_abandoned(&self, meta: &mut Metadata) -> Result<usize> {
        let locks_dir = self.dir.join("locks");
        std::fs::create_dir_all(&locks_dir).map_err(|e| Error::io(&locks_dir, e))?;
        locks::sweep_temporaries(&locks_dir);
        let mut stmt = meta
            .conn()
            .prepare("SELECT chain_id, id FROM snapshots WHERE committed = 0")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        let mut removed = 0;
        for (chain, id) in rows {
            let chain = parse_digest(&chain)?;
            let path = self.lock_path(&chain);
            let lock = match locks::probe(&path) {
                Probe::Held => continue,
                Probe::Free => match WorkLock::take(&path, false)? {
                    Some(lock) => lock,
                    None => continue,
                },
                Probe::Missing => match WorkLock::create(&path)? {
                    Some(lock) => lock,
                    None => continue,
                },
            };
            // Under the lock: still uncommitted?
            let deleted = meta.write(|tx| {
                Ok(tx.execute(
                    "DELETE FROM snapshots WHERE chain_id = ?1 AND committed = 0",
                    params![chain.to_string()],
                )? > 0)
            })?;
            if deleted {
                let dir = self.dir.join(id.to_string());
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                }
                removed += 1;
            }
            lock.remove();
        }
        Ok(removed)
    }

    /// The overlay lower dirs for a chain (top first).
    pub fn overlay(&self, meta: &Metadata, top: &Digest) -> Result<OverlaySpec> {
        let mut lower = Vec::new();
        let mut next = Some(top.clone());
        while let Some(chain) = next {
            let snap = self
                .get(meta, &chain)?
                .ok_or_else(|| Error::NotFound(format!("snapshot {chain}")))?;
            lower.push(self.fs_dir(snap.id));
            next = snap.parent;
            if lower.len() > 500 {
                return Err(Error::Invalid(format!(
                    "snapshot chain of {top} is too deep"
                )));
            }
        }
        Ok(OverlaySpec { lower })
    }
}

fn parse_digest(s: &str) -> Result<Digest> {
    s.parse()
        .map_err(|e| Error::Schema(format!("corrupt digest in metadata: {e}")))
}

/// Hashes what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: DigestWriter,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}
