//! The store: where every image, layer and container of berth lives.
//!
//! Vocabulary: a *blob* is verified content addressed by its [`Digest`]
//! (`blobs/sha256/<hex>`, read-only, never rewritten); an *ingest* is a blob
//! being written (`ingest/<id>/`, swept at start-up when its writer died);
//! the *metadata DB* (`berth.db`, SQLite in WAL mode) records images, tags,
//! layers, snapshots, leases and volumes (`volumes/<name>/_data`). Layout and rules: `shared/DESIGN.md` §3.
//! [`Store::check`] re-verifies all of it (`berth system check`);
//! [`Store::gc`] removes what no image or lease reaches.
//!
//! ```no_run
//! let store = berth_store::Store::open("/var/lib/berth".as_ref()).unwrap();
//! let digest = store.content().write_blob(b"hello").unwrap();
//! assert!(store.content().size(&digest).unwrap().is_some());
//! ```

mod build_cache;
mod cache_prune;
mod check;
mod containers;
mod content;
mod error;
mod gc;
mod layout;
mod locks;
mod meta;
mod networks;
mod scratch;
mod snapshots;
mod volumes;

use std::path::{Path, PathBuf};

pub use berth_oci::{Digest, ErrorKind};
pub use build_cache::{CacheEntry, CacheRecord, MAX_CONTEXT_SUMS};
pub use cache_prune::{BuildCachePruneOptions, BuildCachePruned, BuildCacheUsage};
pub use check::{CheckReport, Fault, FaultKind};
pub use containers::ContainerRecord;
pub use content::{BlobFault, ContentStore, Ingest};
pub use error::Error;
pub use gc::{DiskUsage, GcOptions, GcReport, DEFAULT_GRACE};
pub use layout::Layout;
pub use meta::{ImageLayer, ImageRecord, LayerRecord, Metadata, SnapshotRow, SCHEMA_VERSION};
pub use networks::{EndpointRecord, NetworkRecord};
pub use scratch::ScratchDir;
pub use snapshots::{OverlaySpec, Snapshot, Snapshots, MAX_LAYER_BYTES, MOUNT_OPTIONS_MAX};
pub use volumes::VolumeRecord;

/// A container ID: 64 lowercase hex digits.
pub fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Results of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Held by an operation that writes content (see [`Store::begin_write`]).
#[derive(Debug)]
pub struct WriteGuard {
    _file: std::fs::File,
}

/// An opened store root.
#[derive(Debug)]
pub struct Store {
    layout: Layout,
    content: ContentStore,
    meta: Metadata,
    snapshots: Snapshots,
}

impl Store {
    /// Opens (creating if needed) the store at `root`: makes the layout,
    /// sweeps abandoned ingests and opens or migrates the metadata DB.
    pub fn open(root: &Path) -> Result<Store> {
        let layout = Layout::new(root);
        layout.create()?;
        let content = ContentStore::new(layout.clone());
        let swept = content.sweep_abandoned_ingests()?;
        if swept > 0 {
            tracing::debug!(swept, "removed abandoned partial ingests");
        }
        let scratch = scratch::sweep(&layout.tmp())?;
        if scratch > 0 {
            tracing::debug!(scratch, "removed abandoned scratch directories");
        }
        let mut meta = Metadata::open(&layout.db())?;
        let snapshots = Snapshots::new(layout.root().join("snapshots"));
        let abandoned = snapshots.sweep_abandoned(&mut meta)?;
        if abandoned > 0 {
            tracing::debug!(abandoned, "removed abandoned partial snapshots");
        }
        Ok(Store {
            layout,
            content,
            meta,
            snapshots,
        })
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn meta(&self) -> &Metadata {
        &self.meta
    }

    pub fn meta_mut(&mut self) -> &mut Metadata {
        &mut self.meta
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// Unpacks a layer blob as the snapshot of `chain_id` (see
    /// [`Snapshots::unpack`]).
    pub fn unpack_layer(
        &mut self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: &Digest,
    ) -> Result<Snapshot> {
        let file = self.content.open(blob)?;
        self.snapshots.unpack(
            &mut self.meta,
            chain_id,
            parent,
            diff_id,
            std::io::BufReader::new(file),
        )
    }

    /// Marks the start of an operation that writes content and records it
    /// afterwards (import, load, pull, build). GC waits until every such
    /// guard, in any process, is dropped; a killed process's guard goes
    /// with it.
    pub fn begin_write(&self) -> Result<WriteGuard> {
        self.lock_gc_file(rustix::fs::FlockOperation::LockShared)
            .map(|file| WriteGuard { _file: file })
    }

    fn lock_for_gc(&self) -> Result<std::fs::File> {
        self.lock_gc_file(rustix::fs::FlockOperation::LockExclusive)
    }

    fn lock_gc_file(&self, op: rustix::fs::FlockOperation) -> Result<std::fs::File> {
        let path = self.layout.root().join("gc.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        rustix::fs::flock(&file, op).map_err(|e| Error::io(&path, e.into()))?;
        Ok(file)
    }

    /// A scratch directory under `tmp/`, removed when dropped (and at the
    /// next start-up if this process dies).
    pub fn scratch_dir(&self, prefix: &str) -> Result<ScratchDir> {
        ScratchDir::create(&self.layout.tmp(), prefix)
    }

    /// A work directory `steps/<id>/` for one build step (its mounted root,
    /// the container a RUN step runs in), held with a work lock while it
    /// lives and removed when dropped; [`Store::sweep_steps`] removes the
    /// ones a killed build left.
    pub fn step_dir(&self, id: &str) -> Result<ScratchDir> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!("invalid step ID {id:?}")));
        }
        ScratchDir::create_named(&self.layout.root().join("steps"), id)
    }

    /// Removes step directories whose build is gone, calling `cleanup` on
    /// each first (to stop its processes and unmount its root).
    pub fn sweep_steps(&self, cleanup: impl FnMut(&Path)) -> Result<usize> {
        scratch::sweep_with(&self.layout.root().join("steps"), cleanup)
    }

    /// `containers/`: one directory per container record.
    pub fn containers_dir(&self) -> PathBuf {
        self.layout.root().join("containers")
    }

    /// Creates `containers/<id>/` for a container whose record was just
    /// inserted (record first: a directory without a record is debris that
    /// [`Store::sweep_containers`] removes).
    pub fn create_container_dir(&self, id: &str) -> Result<PathBuf> {
        if !is_container_id(id) {
            return Err(Error::Invalid(format!("invalid container ID {id:?}")));
        }
        let dir = self.containers_dir().join(id);
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(dir)
    }

    /// Removes entries of `containers/` that no record names (left by a
    /// killed create or remove), calling `cleanup` on each directory first so
    /// the caller can stop what is left of the container and unmount it.
    /// Returns how many.
    pub fn sweep_containers(&self, mut cleanup: impl FnMut(&Path)) -> Result<usize> {
        let dir = self.containers_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut removed = 0;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if is_container_id(&name) && self.meta.container(&name)?.is_some() {
                continue;
            }
            if path.is_dir() {
                cleanup(&path);
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
            } else {
                let _ = std::fs::remove_file(&path);
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// The path of the metadata DB.
    pub fn db_path(&self) -> PathBuf {
        self.layout.db()
    }
}
