//! `berth system check`: re-verifies the whole store without changing it.
//!
//! Every blob is re-hashed; every image is followed from its config through
//! its layers (and its manifest, when recorded); every tag must name an
//! image; every snapshot must have its directory, a committed parent and the
//! chain ID its parent and diff ID give. Leftovers of dead writers (partial
//! ingests, uncommitted snapshots whose lock is free) and directories nothing
//! records are reported too. Work in progress in another process (its lock
//! held) is not a fault.
//!
//! Problems found in the store are [`Fault`]s in the report; only failures
//! to read the store at all are errors.

use std::collections::{HashMap, HashSet};
use std::fmt;

use std::io;

use berth_oci::{chain_ids, Digest, ImageConfig, Manifest};

use crate::{BlobFault, Error, ImageRecord, Result, SnapshotRow, Store};

/// Configs and manifests larger than this are reported rather than read.
const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// A blob's content hashes to another digest.
    CorruptBlob,
    /// A blob is writable (blobs are read-only).
    WritableBlob,
    /// A file under `blobs/` whose name is not a digest.
    StrayBlobFile,
    /// A blob an image needs (config, layer or manifest) is absent.
    MissingBlob,
    /// An image's config blob is not a readable image config.
    BadConfig,
    /// An image's config diff IDs differ from its recorded layers.
    LayerMismatch,
    /// An image's manifest is unreadable or describes other content.
    BadManifest,
    /// A tag names an image that is not stored.
    DanglingTag,
    /// A committed snapshot has no `fs` directory.
    MissingSnapshotDir,
    /// A snapshot's parent is absent or uncommitted.
    MissingParent,
    /// A snapshot's chain ID does not follow from its parent and diff ID.
    ChainMismatch,
    /// An uncommitted snapshot whose unpacker is gone.
    AbandonedSnapshot,
    /// An ingest directory whose writer is gone.
    AbandonedIngest,
    /// A directory under `snapshots/` that no snapshot row owns.
    StraySnapshotDir,
    /// A directory under `volumes/` that no volume row owns.
    StrayVolumeDir,
    /// A recorded volume without its `volumes/<name>/_data` directory.
    MissingVolumeDir,
}

impl FaultKind {
    /// A short, stable name (for JSON output and tests).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::CorruptBlob => "corrupt-blob",
            FaultKind::WritableBlob => "writable-blob",
            FaultKind::StrayBlobFile => "stray-blob-file",
            FaultKind::MissingBlob => "missing-blob",
            FaultKind::BadConfig => "bad-config",
            FaultKind::LayerMismatch => "layer-mismatch",
            FaultKind::BadManifest => "bad-manifest",
            FaultKind::DanglingTag => "dangling-tag",
            FaultKind::MissingSnapshotDir => "missing-snapshot-dir",
            FaultKind::MissingParent => "missing-parent",
            FaultKind::ChainMismatch => "chain-mismatch",
            FaultKind::AbandonedSnapshot => "abandoned-snapshot",
            FaultKind::AbandonedIngest => "abandoned-ingest",
            FaultKind::StraySnapshotDir => "stray-snapshot-dir",
            FaultKind::StrayVolumeDir => "stray-volume-dir",
            FaultKind::MissingVolumeDir => "missing-volume-dir",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found by [`Store::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// What is faulty: `blob sha256:…`, `image sha256:…`, `tag name`,
    /// `snapshot 3 (sha256:…)`, `ingest <path>`, `path <path>`.
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.detail)
    }
}

/// The outcome of [`Store::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub faults: Vec<Fault>,
    pub blobs_checked: usize,
    pub images_checked: usize,
    /// Snapshot rows, committed or not.
    pub snapshots_checked: usize,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.faults.is_empty()
    }

    /// The faults of one kind.
    pub fn of_kind(&self, kind: FaultKind) -> impl Iterator<Item = &Fault> {
        self.faults.iter().filter(move |f| f.kind == kind)
    }

    fn fault(&mut self, kind: FaultKind, subject: impl Into<String>, detail: impl Into<String>) {
        self.faults.push(Fault {
            kind,
            subject: subject.into(),
            detail: detail.into(),
        });
    }
}

impl Store {
    /// Verifies every blob, image, tag, snapshot and ingest (`berth system
    /// check`). Read-only.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        self.check_blobs(&mut report)?;
        self.check_images(&mut report)?;
        self.check_tags(&mut report)?;
        self.check_snapshots(&mut report)?;
        self.check_ingests(&mut report)?;
        self.check_volumes(&mut report)?;
        Ok(report)
    }

    fn check_blobs(&self, report: &mut CheckReport) -> Result<()> {
        let (digests, strays) = self.content().list()?;
        for digest in digests {
            let fault = match self.content().verify(&digest) {
                Ok(fault) => fault,
                // Removed (by a GC elsewhere) since it was listed.
                Err(e) if e.kind() == berth_oci::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            report.blobs_checked += 1;
            let subject = format!("blob {digest}");
            match fault {
                None => {}
                Some(BlobFault::Corrupt { actual }) => report.fault(
                    FaultKind::CorruptBlob,
                    subject,
                    format!("content hashes to {actual}"),
                ),
                Some(BlobFault::Writable) => {
                    report.fault(FaultKind::WritableBlob, subject, "blob is writable")
                }
                Some(BlobFault::StrayFile { path }) => report.fault(
                    FaultKind::StrayBlobFile,
                    format!("path {}", path.display()),
                    "not a blob",
                ),
            }
        }
        for path in strays {
            report.fault(
                FaultKind::StrayBlobFile,
                format!("path {}", path.display()),
                "file under blobs/ whose name is not a digest",
            );
        }
        Ok(())
    }

    fn check_images(&self, report: &mut CheckReport) -> Result<()> {
        for id in self.meta().image_ids()? {
            let Some(image) = self.meta().image(&id)? else {
                // Removed since it was listed.
                continue;
            };
            report.images_checked += 1;
            self.check_image(&image, report)?;
        }
        Ok(())
    }

    fn check_image(&self, image: &ImageRecord, report: &mut CheckReport) -> Result<()> {
        let subject = format!("image {}", image.id);
        let recorded: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        match self.read_document(&image.id)? {
            Document::Missing => report.fault(
                FaultKind::MissingBlob,
                subject.clone(),
                format!("config blob {} is missing", image.id),
            ),
            Document::TooLarge(size) => report.fault(
                FaultKind::BadConfig,
                subject.clone(),
                format!("config blob is {size} bytes"),
            ),
            Document::Bytes(bytes) => match ImageConfig::from_slice(&bytes) {
                Err(e) => report.fault(FaultKind::BadConfig, subject.clone(), e.to_string()),
                Ok(config) => {
                    if config.diff_ids() != recorded.as_slice() {
                        report.fault(
                            FaultKind::LayerMismatch,
                            subject.clone(),
                            format!(
                                "config lists diff IDs [{}] but the store records [{}]",
                                join(config.diff_ids()),
                                join(&recorded)
                            ),
                        );
                    }
                }
            },
        }
        for (idx, layer) in image.layers.iter().enumerate() {
            if self.content().size(&layer.blob)?.is_none() {
                report.fault(
                    FaultKind::MissingBlob,
                    subject.clone(),
                    format!("layer {idx} blob {} is missing", layer.blob),
                );
            }
        }
        let Some(manifest_digest) = &image.manifest else {
            return Ok(());
        };
        let manifest = match self.read_document(manifest_digest)? {
            Document::Missing => {
                report.fault(
                    FaultKind::MissingBlob,
                    subject,
                    format!("manifest blob {manifest_digest} is missing"),
                );
                return Ok(());
            }
            Document::TooLarge(size) => {
                report.fault(
                    FaultKind::BadManifest,
                    subject,
                    format!("manifest {manifest_digest} is {size} bytes"),
                );
                return Ok(());
            }
            Document::Bytes(bytes) => match Manifest::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    report.fault(
                        FaultKind::BadManifest,
                        subject,
                        format!("manifest {manifest_digest}: {e}"),
                    );
                    return Ok(());
                }
            },
        };
        if manifest.config.digest != image.id {
            report.fault(
                FaultKind::BadManifest,
                subject.clone(),
                format!(
                    "manifest {manifest_digest} names config {}",
                    manifest.config.digest
                ),
            );
        }
        let listed: Vec<Digest> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        let blobs: Vec<Digest> = image.layers.iter().map(|l| l.blob.clone()).collect();
        if listed != blobs {
            report.fault(
                FaultKind::BadManifest,
                subject,
                format!(
                    "manifest {manifest_digest} lists layers [{}] but the store records [{}]",
                    join(&listed),
                    join(&blobs)
                ),
            );
        }
        Ok(())
    }

    /// Reads a config or manifest blob, refusing absurd sizes.
    fn read_document(&self, digest: &Digest) -> Result<Document> {
        let Some(size) = self.content().size(digest)? else {
            return Ok(Document::Missing);
        };
        if size > MAX_DOCUMENT_BYTES {
            return Ok(Document::TooLarge(size));
        }
        match self.content().read(digest) {
            Ok(bytes) => Ok(Document::Bytes(bytes)),
            Err(Error::NotFound(_)) => Ok(Document::Missing),
            Err(e) => Err(e),
        }
    }

    fn check_tags(&self, report: &mut CheckReport) -> Result<()> {
        for (name, id) in self.meta().tags()? {
            if self.meta().image(&id)?.is_none() {
                report.fault(
                    FaultKind::DanglingTag,
                    format!("tag {name}"),
                    format!("points at image {id}, which is not stored"),
                );
            }
        }
        Ok(())
    }

    fn check_snapshots(&self, report: &mut CheckReport) -> Result<()> {
        let rows = self.meta().snapshot_rows()?;
        let by_chain: HashMap<&Digest, &SnapshotRow> =
            rows.iter().map(|r| (&r.chain_id, r)).collect();
        for row in &rows {
            report.snapshots_checked += 1;
            let subject = format!("snapshot {} ({})", row.id, row.chain_id);

            if !row.committed {
                if self.snapshots().unpacker_gone(&row.chain_id) {
                    report.fault(
                        FaultKind::AbandonedSnapshot,
                        subject,
                        "partial unpack left behind (its unpacker is gone)",
                    );
                }
                continue;
            }
            let fs_dir = self.snapshots().fs_dir(row.id);
            if !fs_dir.is_dir() {
                report.fault(
                    FaultKind::MissingSnapshotDir,
                    subject.clone(),
                    format!("{} is missing", fs_dir.display()),
                );
            }
            let expected = match &row.parent {
                None => row.diff_id.clone(),
                Some(parent) => {
                    match by_chain.get(parent) {
                        Some(p) if p.committed => {}
                        Some(_) => report.fault(
                            FaultKind::MissingParent,
                            subject.clone(),
                            format!("parent {parent} is not committed"),
                        ),
                        None => report.fault(
                            FaultKind::MissingParent,
                            subject.clone(),
                            format!("parent {parent} is not stored"),
                        ),
                    }
                    let chain = chain_ids(&[parent.clone(), row.diff_id.clone()]);
                    match chain.last() {
                        Some(c) => c.clone(),
                        None => continue,
                    }
                }
            };
            if expected != row.chain_id {
                report.fault(
                    FaultKind::ChainMismatch,
                    subject,
                    format!(
                        "parent {} and diff ID {} give chain ID {expected}",
                        row.parent
                            .as_ref()
                            .map_or_else(|| "(none)".to_string(), Digest::to_string),
                        row.diff_id
                    ),
                );
            }
        }
        let owned: HashSet<String> = rows.iter().map(|r| r.id.to_string()).collect();
        let root = self.snapshots().dir();
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(root, e)),
        };
        let mut strays = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // `locks/` holds the unpackers' work locks.
            if name != "locks" && !owned.contains(&name) {
                strays.push(entry.path());
            }
        }
        strays.sort();
        for path in strays {
            report.fault(
                FaultKind::StraySnapshotDir,
                format!("path {}", path.display()),
                "no snapshot record owns it",
            );
        }
        Ok(())
    }

    fn check_ingests(&self, report: &mut CheckReport) -> Result<()> {
        let mut ingests = self.content().ingests()?;
        ingests.sort();
        for dir in ingests {
            if crate::content::is_abandoned(&dir) {
                report.fault(
                    FaultKind::AbandonedIngest,
                    format!("ingest {}", dir.display()),
                    "partial ingest left behind (its writer is gone)",
                );
            }
        }
        Ok(())
    }
}

impl Store {
    /// Volume rows and `volumes/` directories must match one to one.
    fn check_volumes(&self, report: &mut CheckReport) -> Result<()> {
        let records = self.meta().volumes()?;
        let names: HashSet<&str> = records.iter().map(|v| v.name.as_str()).collect();
        for volume in &records {
            let data = self.volume_data(&volume.name)?;
            if !data.is_dir() {
                report.fault(
                    FaultKind::MissingVolumeDir,
                    format!("volume {}", volume.name),
                    format!("{} is missing", data.display()),
                );
            }
        }
        for name in self.volume_dirs()? {
            if !names.contains(name.as_str()) {
                report.fault(
                    FaultKind::StrayVolumeDir,
                    format!("path {}", self.volumes_dir().join(&name).display()),
                    "no volume record owns it",
                );
            }
        }
        Ok(())
    }
}

enum Document {
    Missing,
    TooLarge(u64),
    Bytes(Vec<u8>),
}

fn join(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(Digest::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
