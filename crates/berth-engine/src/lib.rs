//! The one facade that the CLI and the API call: images (import, list, tag,
//! remove, inspect, history, save, load), containers (create, start through
//! a shim, attach, stop, remove, exec, inspect), volumes, and later networks.
//! It owns policy (Docker's rules for names, tags and removal); the store
//! below it owns mechanisms.
//!
//! ```no_run
//! let mut engine = berth_engine::Engine::open("/var/lib/berth".as_ref()).unwrap();
//! let tar = std::fs::File::open("rootfs.tar").unwrap();
//! let opts = berth_engine::ImportOptions { reference: Some("app:1".into()), ..Default::default() };
//! let id = engine.import(tar, &opts).unwrap();
//! println!("{id}");
//! ```

#![recursion_limit = "256"]

mod archive;
mod build;
pub mod containers;
mod error;
mod export;
mod images;
pub mod volumes;

use std::path::Path;

use berth_store::Store;

pub use archive::{
    Loaded, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MAX_ARCHIVE_BYTES, MAX_ENTRIES,
    MAX_ENTRY_BYTES, MAX_JSON_BYTES,
};
pub use berth_build::{config_edit, time};
pub use berth_build::{parse_secret_flag, SecretSource};
pub use berth_build::{
    BuildNetwork, BuildOptions, BuildOutput, Context as BuildContext, DockerfileSource,
    ProgressMode, StageWorkers, WorkerTask,
};
pub use berth_store::{BuildCachePruneOptions, BuildCachePruned, BuildCacheUsage};
pub use build::BuildRequest;
pub use error::{Error, Result};
pub use export::{BuildExport, ExportDest};
pub use images::{oci_manifest, HistoryRow, ImageSummary, ImportOptions, NewImage, Removed};
pub use volumes::{PreparedMounts, VolumeFilter, VolumeInfo};

/// An opened engine over one store root.
#[derive(Debug)]
pub struct Engine {
    store: Store,
}

impl Engine {
    /// Opens the store at `root` (creating it if needed).
    pub fn open(root: &Path) -> Result<Engine> {
        let mut store = Store::open(root)?;
        let mut swept = Vec::new();
        store.sweep_containers(|dir| {
            containers::cleanup::cleanup_abandoned(dir);
            if let Some(name) = dir.file_name() {
                swept.push(name.to_string_lossy().into_owned());
            }
        })?;
        store.sweep_steps(|dir| {
            containers::cleanup::cleanup_abandoned(dir);
            if let Some(name) = dir.file_name() {
                swept.push(name.to_string_lossy().into_owned());
            }
        })?;
        for id in &swept {
            // Their namespaces are gone with them; forget their endpoints.
            let _ = berth_net::release_all_after_netns_removed(store.meta_mut(), id);
        }
        if !swept.is_empty() {
            tracing::debug!(
                swept = swept.len(),
                "cleaned up containers a killed berth left"
            );
        }
        Ok(Engine { store })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}
