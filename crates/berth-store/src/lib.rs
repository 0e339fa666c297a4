//! The store: where every image, layer and container of berth lives.
//!
//! Vocabulary: a *blob* is verified content addressed by its [`Digest`]
//! (`blobs/sha256/<hex>`, read-only, never rewritten); an *ingest* is a blob
//! being written (`ingest/<id>/`, swept at start-up when its writer died);
//! the *metadata DB* (`berth.db`, SQLite in WAL mode) records images, tags,
//! layers, snapshots and leases. Layout and rules: `shared/DESIGN.md` §3.
//! [`Store::check`] re-verifies all of it (`berth system check`);
//! [`Store::gc`] removes what no image or lease reaches.
//!
//! ```no_run
//! let store = berth_store::Store::open("/var/lib/berth".as_ref()).unwrap();
//! let digest = store.content().write_blob(b"hello").unwrap();
//! assert!(store.content().size(&digest).unwrap().is_some());
//! ```

mod build_cache;
mod check;
mod content;
mod error;
mod gc;
mod layout;
mod locks;
mod meta;
mod scratch;
mod snapshots;

use std::path::{Path, PathBuf};

pub use berth_oci::{Digest, ErrorKind};
pub use build_cache::{CacheRecord, MAX_CONTEXT_SUMS};
pub use check::{CheckReport, Fault, FaultKind};
pub use content::{BlobFault, ContentStore, Ingest};
pub use error::Error;
pub use gc::{DiskUsage, GcOptions, GcReport, DEFAULT_GRACE};
pub use layout::Layout;
pub use meta::{ImageLayer, ImageRecord, LayerRecord, Metadata, SnapshotRow, SCHEMA_VERSION};
pub use scratch::ScratchDir;
pub use snapshots::{OverlaySpec, Snapshot, Snapshots, MAX_LAYER_BYTES, MOUNT_OPTIONS_MAX};

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

    /// The work directory `containers/<id>/` of a running container, held
    /// (and removed when dropped) by this process.
    pub fn container_dir(&self, id: &str) -> Result<ScratchDir> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!("invalid container ID {id:?}")));
        }
        ScratchDir::create_named(&self.layout.root().join("containers"), id)
    }

    /// Removes container directories whose process is gone (killed berth),
    /// calling `cleanup` on each first so the caller can stop what is left
    /// of the container and unmount its root. Returns how many.
    pub fn sweep_containers(&self, cleanup: impl FnMut(&Path)) -> Result<usize> {
        scratch::sweep_with(&self.layout.root().join("containers"), cleanup)
    }

    /// The path of the metadata DB.
    pub fn db_path(&self) -> PathBuf {
        self.layout.db()
    }
}
