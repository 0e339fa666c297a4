//! Paths inside a store root (DESIGN.md §3). Blob paths are built only from
//! validated [`Digest`]s.

use std::path::{Path, PathBuf};

use berth_oci::Digest;

use crate::{Error, Result};

/// The directory layout of one store root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates every top-level directory (private to root: 0700).
    pub fn create(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        for dir in [
            self.root.clone(),
            self.root.join("blobs"),
            self.root.join("blobs/sha256"),
            self.root.join("blobs/sha512"),
            self.ingest_root(),
            self.root.join("snapshots"),
            self.root.join("containers"),
            self.root.join("volumes"),
            self.tmp(),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }

    pub fn blobs_dir(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().name())
    }

    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir(digest).join(digest.hex())
    }

    pub fn ingest_root(&self) -> PathBuf {
        self.root.join("ingest")
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("berth.db")
    }
}
