//! One filesystem step's working directory: an overlay of the parent
//! snapshot chain with a fresh upper dir, mounted at `rootfs`; and the
//! commit that turns the upper dir into a layer blob and the new chain's
//! snapshot. The directory is a store step dir (work-locked), so a
//! killed build leaves nothing that start-up does not clean.

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_oci::{chain_ids, media_type, Digest, DigestWriter};
use berth_runtime::rootfs::{unmount_root, OverlayRoot};
use berth_store::{LayerRecord, ScratchDir, Store};

use crate::{Error, Result};

/// Gzip level of built layers (zlib-rs level 1 is fast and compresses well).
const LAYER_GZIP_LEVEL: u32 = 1;

/// A mounted step root.
#[derive(Debug)]
pub(crate) struct StepDir {
    pub path: PathBuf,
    pub rootfs: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
    held: Option<ScratchDir>,
}

/// A random-enough hex ID for a step's container.
pub(crate) fn step_id(what: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Digest::sha256_of(format!("{what}.{}.{n}.{nanos}", std::process::id()).as_bytes())
        .hex()
        .to_string()
}

impl StepDir {
    /// Mounts an overlay of `chain` (or of nothing) with a fresh upper dir.
    pub fn mount(store: &Store, chain: Option<&Digest>) -> Result<StepDir> {
        let id = step_id("step");
        let held = store.step_dir(&id)?;
        let path = held.path().to_path_buf();
        for sub in ["upper", "work", "rootfs", "state", "empty"] {
            let p = path.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(p.display(), e))?;
        }
        let lower = match chain {
            Some(c) => store.snapshots().overlay(store.meta(), c)?.lower,
            None => vec![path.join("empty")],
        };
        let root = OverlayRoot {
            lower,
            base: store.snapshots().dir().to_path_buf(),
            upper: path.join("upper"),
            work: path.join("work"),
            target: path.join("rootfs"),
        };
        // `volatile`: no syncs through the overlay (unmounting would sync
        // the whole upper filesystem); the layer blob is what is fsynced.
        root.mount_with_options("volatile")
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(StepDir {
            rootfs: path.join("rootfs"),
            upper: path.join("upper"),
            path,
            mounted: true,
            held: Some(held),
        })
    }

    /// The step's container ID (its directory name).
    pub fn id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            unmount_root(&self.rootfs).map_err(|e| Error::Invalid(e.to_string()))?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Diffs the upper dir into a layer blob and commits it as the snapshot
    /// of the chain `parent_diff_ids + [diff_id]`. `None` when the step
    /// changed nothing.
    pub fn commit(
        mut self,
        store: &mut Store,
        parent_diff_ids: &[Digest],
        source_date_epoch: Option<i64>,
    ) -> Result<Option<Committed>> {
        self.unmount()?;
        let ingest = store.content().ingest(None)?;
        let gz = berth_fs::ParallelGzWriter::new(ingest, LAYER_GZIP_LEVEL)
            .map_err(|e| Error::io("gzip threads", e))?;
        let tee = Tee {
            hasher: DigestWriter::sha256(),
            gz,
        };
        let opts = berth_fs::TarOptions {
            source_date_epoch,
            xattrs: true,
        };
        let (tee, stats) = berth_fs::diff_overlay_upper(&self.upper, tee, &opts)?;
        if stats.entries == 0 {
            return Ok(None);
        }
        let ingest = tee
            .gz
            .finish()
            .map_err(|e| Error::io(self.upper.display(), e))?;
        let (blob, size) = ingest.commit()?;
        let (diff_id, tar_size) = tee.hasher.finish();
        let mut diff_ids = parent_diff_ids.to_vec();
        diff_ids.push(diff_id.clone());
        let chain = chain_ids(&diff_ids);
        let chain_id = chain
            .last()
            .cloned()
            .ok_or_else(|| Error::Invalid("empty chain".into()))?;
        let parent = chain.len().checked_sub(2).and_then(|i| chain.get(i));
        let snapshots = store.snapshots().clone();
        snapshots.commit_dir(
            store.meta_mut(),
            &chain_id,
            parent,
            &diff_id,
            &self.upper,
            tar_size,
        )?;
        Ok(Some(Committed {
            chain_id,
            layer: LayerRecord {
                diff_id,
                blob,
                media_type: media_type::OCI_LAYER_TAR_GZIP.to_string(),
                size,
            },
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StepDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount_root(&self.rootfs);
        }
        drop(self.held.take());
    }
}

/// A committed layer.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    pub chain_id: Digest,
    pub layer: LayerRecord,
}

/// Hashes the uncompressed tar (the diff ID) while compressing it.
struct Tee<W: Write> {
    hasher: DigestWriter,
    gz: W,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.gz.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.gz.flush()
    }
}

/// A read-only view of another stage's or image's filesystem (for
/// `COPY --from`, and for exporting a build's result), unmounted when
/// dropped.
#[derive(Debug)]
pub struct ReadView {
    /// The directory the filesystem appears in.
    pub root: PathBuf,
    _held: Option<ScratchDir>,
    mounted: bool,
}

impl ReadView {
    /// The view of `chain` (nothing: an empty directory). A one-layer
    /// chain is its snapshot directory as is.
    pub fn of(store: &Store, chain: Option<&Digest>) -> Result<ReadView> {
        Self::open(store, chain, false)
    }

    /// The view of `chain` always through overlayfs, so that no snapshot
    /// shows its whiteouts, even alone.
    pub fn merged(store: &Store, chain: Option<&Digest>) -> Result<ReadView> {
        Self::open(store, chain, true)
    }

    fn open(store: &Store, chain: Option<&Digest>, always_mount: bool) -> Result<ReadView> {
        // A step dir: start-up unmounts `rootfs` in one a killed build left.
        let held = store.step_dir(&step_id("view"))?;
        let empty = held.path().join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| Error::io(empty.display(), e))?;
        let Some(chain) = chain else {
            return Ok(ReadView {
                root: empty,
                _held: Some(held),
                mounted: false,
            });
        };
        let mut lower = store.snapshots().overlay(store.meta(), chain)?.lower;
        if let [only] = lower.as_slice() {
            if !always_mount {
                return Ok(ReadView {
                    root: only.clone(),
                    _held: Some(held),
                    mounted: false,
                });
            }
            // overlayfs wants two lower dirs when it has no upper one.
            lower.push(empty);
        }
        let target = held.path().join("rootfs");
        std::fs::create_dir_all(&target).map_err(|e| Error::io(target.display(), e))?;
        let base = store.snapshots().dir().to_path_buf();
        let parts: Vec<String> = lower
            .iter()
            .map(|p| {
                p.strip_prefix(&base)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let options = format!("lowerdir={}", parts.join(":"));
        let options = std::ffi::CString::new(options)
            .map_err(|_| Error::Invalid("overlay options contain a NUL byte".into()))?;
        let previous = std::env::current_dir().ok();
        std::env::set_current_dir(&base).map_err(|e| Error::io(base.display(), e))?;
        let result = rustix::mount::mount(
            "overlay",
            &target,
            "overlay",
            rustix::mount::MountFlags::RDONLY,
            Some(options.as_c_str()),
        );
        if let Some(dir) = previous {
            let _ = std::env::set_current_dir(dir);
        }
        result.map_err(|e| Error::io(target.display(), e.into()))?;
        Ok(ReadView {
            root: target,
            _held: Some(held),
            mounted: true,
        })
    }
}

impl Drop for ReadView {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount_root(&self.root);
        }
    }
}
