//! `berth-build`: builds images from Dockerfiles with BuildKit's semantics.
//!
//! It owns build contexts ([`Context`]: a directory read in place, a tar,
//! a git repository or URL ([`RemoteSource`]), or nothing, with
//! `.dockerignore`), the stage graph (from
//! `berth_dockerfile::stages`), step execution (COPY/ADD written straight
//! into an overlay over the parent snapshot chain, RUN in a real container
//! through `berth-launch`), layer commits (the step's overlay upper dir
//! diffed into a gzip blob and committed as the new chain's snapshot),
//! image-config assembly ([`config_edit`]), the build cache (keys from
//! the step's inputs, records in the store's metadata DB) and the progress
//! display ([`Progress`]: BuildKit's plain output, its live tty display, or
//! nothing). [`build_with_progress`] lets the caller show its own steps (an
//! export) in the same display; [`ReadView`] mounts a snapshot chain's
//! merged filesystem read-only.
//!
//! Vocabulary: a *stage* is a `FROM` and its instructions; a *step* is one
//! instruction that changes the filesystem (RUN, COPY, ADD, WORKDIR) and
//! commits one layer; metadata instructions only edit the config. A step's
//! *cache key* is the digest of its *inputs* (parent chain, expanded
//! instruction, environment, build args, source checksums), which are kept
//! so a miss can be explained.
//!
//! The engine calls the builder, never the reverse: images are found and
//! recorded through the [`ImageBackend`] trait the engine implements.
//! RUN steps start containers with `berth-launch`, so [`build`] must be
//! called from a single-threaded process.
//!
//! ```no_run
//! # fn demo(backend: &mut dyn berth_build::ImageBackend) -> berth_build::Result<()> {
//! let mut context = berth_build::Context::dir("app".as_ref())?;
//! let opts = berth_build::BuildOptions::default();
//! let out = berth_build::build(backend, &mut context, &opts, &mut std::io::stderr())?;
//! println!("{}", out.id);
//! # Ok(())
//! # }
//! ```

mod builder;
pub mod config_edit;
mod context;
mod copy;
mod error;
mod exec;
mod history;
mod layer;
mod progress;
mod remote;
mod run_mounts;
mod secrets;
pub mod time;

use std::collections::BTreeMap;

use berth_oci::{Digest, ImageConfig};
use berth_store::{LayerRecord, Store};

pub use builder::{build, build_for_parent, build_with_progress};
pub use context::{clean_relative, glob_match, Context, DockerfileSource};
pub use error::{Error, Result};
pub use layer::ReadView;
pub use progress::Progress;
pub use remote::{GitSource, RemoteContext, RemoteSource};
pub use run_mounts::{cache_dir_name, remove_cache_mounts, CACHE_MOUNTS_DIR};
pub use secrets::{parse_secret_flag, SecretSource, MAX_SECRET_BYTES};

/// What the builder needs from the engine: the store, and images by name.
pub trait ImageBackend {
    fn store(&self) -> &Store;
    fn store_mut(&mut self) -> &mut Store;
    /// The ID of a local image named `name`, `None` when there is none.
    fn find_image(&self, name: &str) -> Result<Option<Digest>>;
    /// The config of image `id`.
    fn image_config(&self, id: &Digest) -> Result<ImageConfig>;
    /// Records a built image (its layers are stored blobs with committed
    /// snapshots); returns its ID.
    fn store_image(
        &mut self,
        config_bytes: &[u8],
        config: &ImageConfig,
        layers: &[LayerRecord],
    ) -> Result<Digest>;
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// BuildKit's plain output, line by line.
    #[default]
    Plain,
    /// Nothing (`-q`).
    Quiet,
    /// BuildKit's live display, redrawn in place on a terminal.
    Tty,
}

/// `berth build --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildNetwork {
    /// The default bridge, with NAT to the outside (BuildKit's sandbox).
    #[default]
    Default,
    /// The network namespace berth runs in.
    Host,
    /// Loopback only.
    None,
}

/// The options of one build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub dockerfile: DockerfileSource,
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--no-cache`: reuse nothing (results are still recorded).
    pub no_cache: bool,
    /// `--label`: added to the image's labels.
    pub labels: BTreeMap<String, String>,
    /// `--platform`: only the host's platform is supported.
    pub platform: Option<String>,
    /// Say which input changed for each step that missed the cache.
    pub debug_cache: bool,
    /// `--network`: where RUN steps without their own `--network` run.
    pub network: BuildNetwork,
    pub progress: ProgressMode,
    /// `--secret`: the secrets `RUN --mount=type=secret` can read, by ID.
    pub secrets: BTreeMap<String, SecretSource>,
    /// How to start worker processes that build independent stages in
    /// parallel; `None` builds every stage in this process.
    pub parallel: Option<StageWorkers>,
    /// Set in a worker process: the stage it builds for its parent.
    pub worker: Option<WorkerTask>,
}

/// The command that re-runs this same build as a stage worker: the
/// builder appends `--stage-worker SPEC` (see [`WorkerTask`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageWorkers {
    pub program: std::path::PathBuf,
    pub args: Vec<std::ffi::OsString>,
}

/// A worker's job: build stage `stage` (and what it needs) into the store
/// and write the resulting stage states to `output` as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTask {
    pub stage: usize,
    /// Progress lines are numbered from here, so they don't collide with
    /// the parent's.
    pub progress_offset: usize,
    pub output: std::path::PathBuf,
}

impl WorkerTask {
    /// The `--stage-worker` flag's value: `STAGE,OFFSET,OUTPUT`.
    pub fn to_arg(&self) -> std::ffi::OsString {
        let mut arg = std::ffi::OsString::from(format!("{},{},", self.stage, self.progress_offset));
        arg.push(&self.output);
        arg
    }

    /// Parses [`WorkerTask::to_arg`]'s format.
    pub fn parse(arg: &str) -> Result<WorkerTask> {
        let bad = || Error::Invalid(format!("invalid --stage-worker value {arg:?}"));
        let mut parts = arg.splitn(3, ',');
        let stage = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let progress_offset = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let output = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
        Ok(WorkerTask {
            stage,
            progress_offset,
            output: output.into(),
        })
    }
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            dockerfile: DockerfileSource::Default,
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            labels: BTreeMap::new(),
            platform: None,
            debug_cache: false,
            network: BuildNetwork::Default,
            progress: ProgressMode::Plain,
            secrets: BTreeMap::new(),
            parallel: None,
            worker: None,
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    /// The image ID.
    pub id: Digest,
    /// Filesystem steps run or reused, and how many of them were reused.
    pub steps: usize,
    pub cached: usize,
}
