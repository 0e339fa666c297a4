//! `RUN --mount`, with BuildKit's semantics:
//!
//! - `bind` (the default): a path of the build context (after
//!   `.dockerignore`), of another stage or of an image, read-only unless
//!   `rw`, whose writes are then discarded (an overlay, or a private copy);
//! - `cache`: a directory kept between builds in `<root>/build-mounts/`,
//!   shared, locked (`flock`) or private, created once (seeded from `from`
//!   when given) under `tmp/` and renamed into place, so a killed build
//!   never leaves a half-made one;
//! - `tmpfs`; `secret`: `berth build --secret` bytes as a read-only file
//!   on a private tmpfs and/or an environment variable;
//! - `ssh` is refused.
//!
//! A mount's host side lives in a store step dir (swept, its `rootfs`
//! unmounted, when a build is killed). Mount points the step had to create
//! are removed after it, when still empty, as BuildKit's stub cleaner does,
//! so they never reach the layer. The cache key records each mount's
//! options and, for binds, its source's content; never a cache mount's
//! content nor a secret's.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_dockerfile::instructions::{Mount, MountType, Sharing};
use berth_fs::{resolve_in_root, ResolveOptions};
use berth_oci::Digest;
use berth_runtime::mounts::{BindRequest, ResolvedMount};
use berth_runtime::rootfs::{unmount_root, OverlayRoot};
use berth_runtime::spec::{clean_path, TmpfsMount};
use berth_store::{ScratchDir, Store};
use rustix::fs::{AtFlags, FlockOperation, Timespec, Timestamps, CWD};

use crate::context::{clean_relative, walk, SourceEntry};
use crate::copy::{self, CopyPlan};
use crate::layer::{step_id, ReadView};
use crate::secrets::SecretSource;
use crate::{Error, Result};

/// Where cache mounts live, under the store root.
pub const CACHE_MOUNTS_DIR: &str = "build-mounts";

/// Where a bind or cache mount's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountFrom {
    /// The build context, as `.dockerignore` leaves it.
    Context,
    /// A stage or an image: its snapshot chain (`None`: empty).
    Chain(Option<Digest>),
}

/// One `--mount`, with BuildKit's defaults filled in.
#[derive(Debug)]
pub(crate) struct PlannedMount {
    pub kind: MountType,
    /// Absolute and clean; `None` for a secret given as `env` only.
    pub target: Option<String>,
    pub read_only: bool,
    /// `from` (binds default to the context; caches to nothing).
    pub from: Option<MountFrom>,
    /// The path inside `from`, relative and clean (`""`: its root).
    pub source: String,
    /// A bind's context entries (the top first), checksummed already.
    pub entries: Vec<SourceEntry>,
    /// What the source holds, for the cache key (a digest or a chain).
    pub content: String,
    /// The cache or secret ID.
    pub id: String,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    pub size: Option<u64>,
    pub env: Option<String>,
}

fn kind_name(kind: MountType) -> &'static str {
    match kind {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

/// `target` made absolute against the working directory, as BuildKit does.
fn absolute_target(target: &str, workdir: &str) -> String {
    if target.starts_with('/') {
        clean_path(target)
    } else {
        clean_path(&format!("/{workdir}/{target}"))
    }
}

fn basename(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Checks one `--mount` and fills in BuildKit's defaults: a relative
/// target is below the working directory, a cache ID is its target, a
/// secret's ID is `source` or the target's base name and its file is
/// `/run/secrets/<id>` unless it only sets `env`. `from` and the source's
/// content are the caller's to resolve.
pub(crate) fn plan_mount(m: &Mount, workdir: &str) -> std::result::Result<PlannedMount, String> {
    let kind = m.kind;
    let name = kind_name(kind);
    if kind == MountType::Ssh {
        return Err(
            "RUN --mount=type=ssh is not supported (berth does not forward an SSH agent)".into(),
        );
    }
    let file_info = matches!(kind, MountType::Cache | MountType::Secret);
    for (set, key) in [
        (m.mode.is_some(), "mode"),
        (m.uid.is_some(), "uid"),
        (m.gid.is_some(), "gid"),
    ] {
        if set && !file_info {
            return Err(format!("{key} not allowed for \"{name}\" type mounts"));
        }
    }
    for (set, key, allowed) in [
        (m.required, "required", MountType::Secret),
        (m.size.is_some(), "size", MountType::Tmpfs),
        (m.env.is_some(), "env", MountType::Secret),
    ] {
        if set && kind != allowed {
            return Err(format!("unexpected key '{key}' for mount type '{name}'"));
        }
    }
    if m.sharing != Sharing::Shared && kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {name} mount"));
    }
    if m.from.is_some() && matches!(kind, MountType::Tmpfs | MountType::Secret) {
        return Err(format!("{name} mount should not have a from"));
    }
    let target = m
        .target
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| absolute_target(t, workdir));
    if target.as_deref() == Some("/") {
        return Err("invalid mount target \"/\"".into());
    }
    let mut source = String::new();
    let mut id = String::new();
    match kind {
        MountType::Secret => {
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".into());
            }
            id =
                m.id.clone()
                    .or_else(|| m.source.clone())
                    .or_else(|| target.as_deref().map(|t| basename(t).to_string()))
                    .unwrap_or_default();
            if id.is_empty() {
                return Err("invalid secret mount. one of source, target required".into());
            }
        }
        _ => {
            if target.is_none() {
                return Err("mount target must be set".into());
            }
            source =
                clean_relative(m.source.as_deref().unwrap_or("")).map_err(|e| e.to_string())?;
            if kind == MountType::Cache {
                id = m.id.clone().or_else(|| target.clone()).unwrap_or_default();
            }
        }
    }
    let target = match (kind, target, &m.env) {
        (MountType::Secret, None, None) => Some(format!("/run/secrets/{}", basename(&id))),
        (_, target, _) => target,
    };
    Ok(PlannedMount {
        kind,
        target,
        read_only: m.read_only,
        from: None,
        source,
        entries: Vec::new(),
        content: String::new(),
        id,
        sharing: m.sharing,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        required: m.required,
        size: m.size,
        env: m.env.clone(),
    })
}

/// The cache-key text of a RUN's mounts: every option, and what a bind
/// (or a cache's seed) reads; never a cache's content nor a secret.
pub(crate) fn cache_key(mounts: &[PlannedMount]) -> String {
    let parts: Vec<String> = mounts
        .iter()
        .map(|m| {
            let from = match &m.from {
                None => "none".to_string(),
                Some(MountFrom::Context) => "context".to_string(),
                Some(MountFrom::Chain(_)) => "chain".to_string(),
            };
            format!(
                "{} target={:?} ro={} from={from} source={:?} content={} id={:?} sharing={:?} mode={:?} uid={:?} gid={:?} required={} size={:?} env={:?}",
                kind_name(m.kind),
                m.target.as_deref().unwrap_or(""),
                m.read_only,
                m.source,
                m.content,
                m.id,
                m.sharing,
                m.mode,
                m.uid,
                m.gid,
                m.required,
                m.size,
                m.env,
            )
        })
        .collect();
    serde_json::to_string(&parts).unwrap_or_default()
}

/// A store step dir for one mount's host side; something may be mounted
/// at its `rootfs`, which is unmounted when this is dropped (and by the
/// sweep after a killed build).
#[derive(Debug)]
struct WorkDir {
    held: ScratchDir,
    mounted: bool,
}

impl WorkDir {
    fn new(store: &Store, what: &str) -> Result<WorkDir> {
        let held = store.step_dir(&step_id(what))?;
        let root = held.path().join("rootfs");
        std::fs::create_dir(&root).map_err(|e| Error::io(root.display(), e))?;
        Ok(WorkDir {
            held,
            mounted: false,
        })
    }

    fn path(&self) -> &Path {
        self.held.path()
    }

    fn root(&self) -> PathBuf {
        self.held.path().join("rootfs")
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount_root(&self.root());
        }
    }
}

/// A RUN step's mounts, ready for its runtime spec; dropping it unmounts
/// and removes their host side and releases cache locks.
#[derive(Default)]
pub(crate) struct PreparedMounts {
    pub mounts: Vec<ResolvedMount>,
    pub tmpfs: Vec<TmpfsMount>,
    /// `NAME=value` of secrets exposed as environment variables.
    pub env: Vec<String>,
    /// Mount points the step creates (removed after it).
    stubs: Stubs,
    // Dropped in this order: overlays and copies before the views below them.
    dirs: Vec<WorkDir>,
    views: Vec<ReadView>,
    locks: Vec<File>,
}

/// Secret values never print: `env` shows its names only.
impl std::fmt::Debug for PreparedMounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self
            .env
            .iter()
            .map(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k))
            .collect();
        f.debug_struct("PreparedMounts")
            .field("mounts", &self.mounts)
            .field("tmpfs", &self.tmpfs)
            .field("env", &env)
            .field("stubs", &self.stubs)
            .finish_non_exhaustive()
    }
}

impl PreparedMounts {
    /// Removes the mount points the step created that are still empty.
    pub fn remove_stubs(&mut self, rootfs: &Path) {
        std::mem::take(&mut self.stubs).remove(rootfs);
    }
}

/// Mount points made in the step root: the container paths created, and
/// the existing directories they were made in (*anchors*) with their
/// times before and after, so that removing the stubs can give an anchor
/// its times back when nothing else changed it (reproducible layers).
#[derive(Debug, Default)]
struct Stubs {
    paths: Vec<String>,
    anchors: Vec<Anchor>,
}

#[derive(Debug)]
struct Anchor {
    path: String,
    before: Timestamps,
    /// Its mtime once every mount point exists.
    after: Option<Timespec>,
}

fn times_of(meta: &std::fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    }
}

/// The metadata of the container path `path`, resolved inside `rootfs`
/// (its last component not followed), with its host path.
fn lstat_in_root(rootfs: &Path, path: &str) -> Option<(PathBuf, std::fs::Metadata)> {
    let (parent, name) = match path.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => return None,
    };
    let parent_host = resolve_in_root(rootfs, parent, &ResolveOptions::default()).ok()?;
    let host = if name.is_empty() {
        parent_host
    } else {
        parent_host.join(name)
    };
    let meta = std::fs::symlink_metadata(&host).ok()?;
    Some((host, meta))
}

impl Stubs {
    /// Records the missing components of `target` (resolved inside
    /// `rootfs`), before its mount point is made.
    fn record(&mut self, rootfs: &Path, target: &str) {
        let Ok(host) = resolve_in_root(rootfs, target, &ResolveOptions::default()) else {
            return;
        };
        let Ok(rel) = host.strip_prefix(rootfs) else {
            return;
        };
        let mut path = PathBuf::from("/").join(rel);
        let mut missing = false;
        loop {
            let text = path.to_string_lossy().into_owned();
            match std::fs::symlink_metadata(rootfs.join(path.strip_prefix("/").unwrap_or(&path))) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    self.paths.push(text);
                    missing = true;
                }
                Ok(meta) => {
                    if missing && !self.anchors.iter().any(|a| a.path == text) {
                        self.anchors.push(Anchor {
                            path: text,
                            before: times_of(&meta),
                            after: None,
                        });
                    }
                    break;
                }
                Err(_) => break,
            }
            if !path.pop() {
                break;
            }
        }
    }

    /// Notes the anchors' mtimes once every mount point is made.
    fn settle(&mut self, rootfs: &Path) {
        for anchor in &mut self.anchors {
            anchor.after =
                lstat_in_root(rootfs, &anchor.path).map(|(_, m)| times_of(&m).last_modification);
        }
    }

    /// Removes the stubs that are still empty, deepest first (BuildKit's
    /// stub cleaner); an anchor the step did not change otherwise gets its
    /// times from before the mount points back.
    fn remove(mut self, rootfs: &Path) {
        let untouched: Vec<&Anchor> = self
            .anchors
            .iter()
            .filter(|a| {
                let now = lstat_in_root(rootfs, &a.path).map(|(_, m)| times_of(&m).last_modification);
                matches!((now, a.after), (Some(n), Some(t)) if n.tv_sec == t.tv_sec && n.tv_nsec == t.tv_nsec)
            })
            .collect();
        self.paths
            .sort_by_key(|s| std::cmp::Reverse(s.matches('/').count()));
        self.paths.dedup();
        for stub in &self.paths {
            remove_stub(rootfs, stub);
        }
        for anchor in untouched {
            if let Some((host, _)) = lstat_in_root(rootfs, &anchor.path) {
                let _ =
                    rustix::fs::utimensat(CWD, &host, &anchor.before, AtFlags::SYMLINK_NOFOLLOW);
            }
        }
    }
}

fn remove_stub(rootfs: &Path, stub: &str) {
    let Some((host, meta)) = lstat_in_root(rootfs, stub) else {
        return;
    };
    let removable = if meta.is_dir() {
        std::fs::read_dir(&host).is_ok_and(|mut d| d.next().is_none())
    } else {
        meta.is_file() && meta.len() == 0
    };
    if !removable {
        return;
    }
    let parent = host.parent().map(Path::to_path_buf);
    let parent_times = parent
        .as_deref()
        .and_then(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| times_of(&m));
    let removed = if meta.is_dir() {
        std::fs::remove_dir(&host)
    } else {
        std::fs::remove_file(&host)
    };
    if let Err(e) = removed {
        tracing::warn!("removing mount point {stub}: {e}");
        return;
    }
    // The removal does not change the parent's times (moby/buildkit#3148).
    if let (Some(parent), Some(times)) = (parent, parent_times) {
        let _ = rustix::fs::utimensat(CWD, &parent, &times, AtFlags::SYMLINK_NOFOLLOW);
    }
}

/// What `prepare` reads besides the plan.
pub(crate) struct MountInputs<'a> {
    pub store: &'a Store,
    /// The step's mounted root.
    pub rootfs: &'a Path,
    pub context_root: Option<&'a Path>,
    /// The context has `.dockerignore` patterns: binds of it get a copy
    /// of what the patterns let through.
    pub context_filtered: bool,
    pub secrets: &'a BTreeMap<String, SecretSource>,
}

/// Makes the host side of every planned mount and its mount point in the
/// step root. A missing secret is skipped unless `required`.
pub(crate) fn prepare(
    planned: &[PlannedMount],
    inputs: &MountInputs<'_>,
) -> Result<PreparedMounts> {
    let mut out = PreparedMounts::default();
    let mut secrets_dir: Option<PathBuf> = None;
    // Cache mounts already open for this step, by directory name.
    let mut caches: HashMap<String, PathBuf> = HashMap::new();
    for (index, m) in planned.iter().enumerate() {
        match m.kind {
            MountType::Bind => {
                let source = bind_source(m, inputs, &mut out)?;
                let target = m.target.as_deref().unwrap_or_default();
                out.bind(inputs.rootfs, source, target, m.read_only)?;
            }
            MountType::Cache => {
                let name = cache_dir_name(&m.id);
                let source = match caches.get(&name) {
                    Some(dir) => dir.clone(),
                    None => {
                        let dir = open_cache(m, &name, inputs, &mut out)?;
                        caches.insert(name, dir.clone());
                        dir
                    }
                };
                let target = m.target.as_deref().unwrap_or_default();
                out.bind(inputs.rootfs, source, target, m.read_only)?;
            }
            MountType::Tmpfs => {
                let target = m.target.as_deref().unwrap_or_default();
                out.stubs.record(inputs.rootfs, target);
                let destination = berth_runtime::mounts::resolve_target(
                    inputs.rootfs,
                    target,
                    berth_runtime::mounts::TargetKind::Directory,
                )
                .map_err(|e| Error::Invalid(e.to_string()))?;
                // BuildKit's tmpfs: only `nosuid` (programs may run from it).
                let mut options = "exec,dev".to_string();
                if let Some(size) = m.size {
                    options.push_str(&format!(",size={size}"));
                }
                out.tmpfs.push(TmpfsMount {
                    destination,
                    options,
                });
            }
            MountType::Secret => {
                let Some(secret) = inputs.secrets.get(&m.id) else {
                    if m.required {
                        return Err(Error::NotFound(format!(
                            "secret {}: not found (give it with --secret id={},src=PATH or env=VAR)",
                            m.id, m.id
                        )));
                    }
                    continue;
                };
                let bytes = secret.read(&m.id)?;
                if let Some(var) = &m.env {
                    let value = String::from_utf8(bytes.clone()).map_err(|_| {
                        Error::Invalid(format!(
                            "secret {} is not UTF-8 text and cannot be the value of {var}",
                            m.id
                        ))
                    })?;
                    out.env.push(format!("{var}={value}"));
                }
                if let Some(target) = &m.target {
                    let dir = match &secrets_dir {
                        Some(d) => d.clone(),
                        None => {
                            let d = secrets_tmpfs(inputs.store, &mut out)?;
                            secrets_dir = Some(d.clone());
                            d
                        }
                    };
                    let file = dir.join(index.to_string());
                    write_secret(&file, &bytes, m)?;
                    out.bind(inputs.rootfs, file, target, true)?;
                }
            }
            MountType::Ssh => {
                return Err(Error::Unsupported(
                    "RUN --mount=type=ssh is not supported".into(),
                ))
            }
        }
    }
    out.stubs.settle(inputs.rootfs);
    Ok(out)
}

impl PreparedMounts {
    fn bind(
        &mut self,
        rootfs: &Path,
        source: PathBuf,
        target: &str,
        read_only: bool,
    ) -> Result<()> {
        self.stubs.record(rootfs, target);
        let mount = ResolvedMount::bind(
            rootfs,
            &BindRequest {
                source,
                target: target.to_string(),
                read_only,
                propagation: berth_runtime::mounts::DEFAULT_PROPAGATION.into(),
                recursive: false,
                create_source: false,
            },
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        self.mounts.push(mount);
        Ok(())
    }
}

/// The host path a bind mounts: the source itself when read-only, else a
/// private overlay or copy whose writes go with it; a filtered context's
/// sources are always a copy.
fn bind_source(
    m: &PlannedMount,
    inputs: &MountInputs<'_>,
    out: &mut PreparedMounts,
) -> Result<PathBuf> {
    let not_found = || {
        Error::NotFound(format!(
            "failed to compute cache key: \"/{}\": not found",
            m.source
        ))
    };
    let root = match &m.from {
        Some(MountFrom::Chain(chain)) => {
            let view = ReadView::of(inputs.store, chain.as_ref())?;
            let root = view.root.clone();
            out.views.push(view);
            root
        }
        _ => {
            let root = inputs
                .context_root
                .ok_or_else(|| Error::NotFound("the build has no context to bind".into()))?;
            if inputs.context_filtered {
                let (copy, path) = copy_entries(inputs.store, &m.entries, &m.source)?;
                out.dirs.push(copy);
                return Ok(path);
            }
            root.to_path_buf()
        }
    };
    let host = resolve_in_root(&root, &m.source, &ResolveOptions::default())?;
    let meta = std::fs::symlink_metadata(&host).map_err(|_| not_found())?;
    if m.read_only {
        return Ok(host);
    }
    if meta.is_dir() {
        if let Some(dir) = overlay_over(inputs.store, &host) {
            let merged = dir.root();
            out.dirs.push(dir);
            return Ok(merged);
        }
    }
    let entries = walk(&root, &m.source, None)?;
    let (copy, path) = copy_entries(inputs.store, &entries, &m.source)?;
    out.dirs.push(copy);
    Ok(path)
}

/// A writable overlay over the directory `lower`; `None` when overlayfs
/// will not take it (a path its option syntax cannot carry, a lower dir
/// on a filesystem it refuses), for the caller to copy instead.
fn overlay_over(store: &Store, lower: &Path) -> Option<WorkDir> {
    let text = lower.to_str()?;
    if text.contains([':', ',', '\\']) {
        return None;
    }
    let mut dir = WorkDir::new(store, "bind").ok()?;
    for sub in ["upper", "work"] {
        std::fs::create_dir(dir.path().join(sub)).ok()?;
    }
    let overlay = OverlayRoot {
        lower: vec![lower.to_path_buf()],
        base: PathBuf::from("/"),
        upper: dir.path().join("upper"),
        work: dir.path().join("work"),
        target: dir.root(),
    };
    match overlay.mount_with_options("volatile") {
        Ok(()) => {
            dir.mounted = true;
            Some(dir)
        }
        Err(e) => {
            tracing::debug!("read-write bind over {text}: {e}; copying instead");
            None
        }
    }
}

/// Copies `entries` (a walked source, the top first) into a new work dir;
/// returns it and the copy's path (its root for a directory source).
fn copy_entries(store: &Store, entries: &[SourceEntry], name: &str) -> Result<(WorkDir, PathBuf)> {
    let dir = WorkDir::new(store, "copy")?;
    let root = dir.root();
    let path = fill_dir(&root, entries, name)?;
    Ok((dir, path))
}

/// Copies a walked source into the existing directory `root`: a
/// directory's contents (and its mode and owner) into `root` itself, a
/// file into `root/<name>`. Returns what stands for the source.
fn fill_dir(root: &Path, entries: &[SourceEntry], name: &str) -> Result<PathBuf> {
    let Some(top) = entries.first() else {
        return Ok(root.to_path_buf());
    };
    let plan = CopyPlan::whole_source(name, entries.to_vec());
    copy::apply(root, &plan)?;
    if top.meta.is_dir() {
        set_owner_mode(
            root,
            top.meta.uid(),
            top.meta.gid(),
            top.meta.mode() & 0o7777,
        )?;
        return Ok(root.to_path_buf());
    }
    let file_name = top
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(root.join(file_name))
}

fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: u32) -> Result<()> {
    copy::chown(path, uid, gid)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode))
        .map_err(|e| Error::io(path.display(), e.into()))
}

/// A cache ID as a directory name: `[A-Za-z0-9_.-]` kept (not a leading
/// dot), other bytes `%XX`; a long one becomes `%sha256-<hex>` (which no
/// escaped name can be).
pub fn cache_dir_name(id: &str) -> String {
    let mut out = String::new();
    for (i, b) in id.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.len() > 200 {
        return format!("%sha256-{}", Digest::sha256_of(id.as_bytes()).hex());
    }
    out
}

/// Opens the cache directory `build-mounts/<name>/data` for one step:
/// takes its lock (`shared`: shared; `locked`: exclusive, waiting;
/// `private`: exclusive, or a throwaway directory when another step has
/// it) and creates it on first use (under `tmp/`, then renamed in).
fn open_cache(
    m: &PlannedMount,
    name: &str,
    inputs: &MountInputs<'_>,
    out: &mut PreparedMounts,
) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = inputs.store.root().join(CACHE_MOUNTS_DIR).join(name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)
        .map_err(|e| Error::io(base.display(), e))?;
    let lock_path = base.join("lock");
    let lock = open_lock(&lock_path)?;
    let op = match m.sharing {
        Sharing::Shared => FlockOperation::LockShared,
        Sharing::Locked => FlockOperation::LockExclusive,
        Sharing::Private => FlockOperation::NonBlockingLockExclusive,
    };
    match rustix::fs::flock(&lock, op) {
        Ok(()) => out.locks.push(lock),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let dir = WorkDir::new(inputs.store, "cache")?;
            let path = dir.root();
            out.dirs.push(dir);
            std::fs::remove_dir(&path).map_err(|e| Error::io(path.display(), e))?;
            init_cache_dir(&path, m, inputs, out)?;
            return Ok(path);
        }
        Err(e) => return Err(Error::io(lock_path.display(), e.into())),
    }
    let data = base.join("data");
    if std::fs::symlink_metadata(&data).is_err() {
        let scratch = inputs.store.scratch_dir("cache-mount")?;
        let fresh = scratch.path().join("data");
        init_cache_dir(&fresh, m, inputs, out)?;
        match std::fs::rename(&fresh, &data) {
            Ok(()) => berth_fs::sync_dir(&base)?,
            // Another build made it first: use theirs.
            Err(e) if data.is_dir() => tracing::debug!("cache mount {name}: {e}"),
            Err(e) => return Err(Error::io(data.display(), e)),
        }
    }
    Ok(data)
}

/// A cache mount's lock file, created when missing.
fn open_lock(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path.display(), e))
}

/// Empties every cache mount no build is using (their contents leave
/// at once: renamed under `tmp/`, then deleted); a build that opens one
/// afterwards starts it afresh. Returns how many were removed. For
/// `builder prune`, which removes cache mounts with the build cache.
pub fn remove_cache_mounts(store: &Store) -> Result<usize> {
    let dir = store.root().join(CACHE_MOUNTS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(dir.display(), e)),
    };
    let mut removed = 0;
    for entry in entries {
        let base = entry.map_err(|e| Error::io(dir.display(), e))?.path();
        let data = base.join("data");
        if std::fs::symlink_metadata(&data).is_err() {
            continue;
        }
        let lock_path = base.join("lock");
        let lock = open_lock(&lock_path)?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => continue,
            Err(e) => return Err(Error::io(lock_path.display(), e.into())),
        }
        let scratch = store.scratch_dir("cache-prune")?;
        let doomed = scratch.path().join("data");
        std::fs::rename(&data, &doomed).map_err(|e| Error::io(data.display(), e))?;
        berth_fs::sync_dir(&base)?;
        removed += 1;
    }
    Ok(removed)
}

/// Makes a new cache directory at `path`: seeded from `from`'s source
/// when given, with `mode` (default 0755, or the seed's), `uid`, `gid`.
fn init_cache_dir(
    path: &Path,
    m: &PlannedMount,
    inputs: &MountInputs<'_>,
    out: &mut PreparedMounts,
) -> Result<()> {
    std::fs::create_dir(path).map_err(|e| Error::io(path.display(), e))?;
    let (mut uid, mut gid, mut mode) = (0, 0, 0o755);
    let seed = match &m.from {
        None => None,
        Some(MountFrom::Context) => Some(m.entries.clone()),
        Some(MountFrom::Chain(chain)) => {
            let view = ReadView::of(inputs.store, chain.as_ref())?;
            let host = resolve_in_root(&view.root, &m.source, &ResolveOptions::default())?;
            let entries = if host.is_dir() {
                walk(&view.root, &m.source, None)?
            } else {
                Vec::new()
            };
            out.views.push(view);
            Some(entries)
        }
    };
    if let Some(entries) = seed.filter(|e| e.first().is_some_and(|t| t.meta.is_dir())) {
        fill_dir(path, &entries, &m.source)?;
        if let Some(top) = entries.first() {
            (uid, gid, mode) = (top.meta.uid(), top.meta.gid(), top.meta.mode() & 0o7777);
        }
    }
    set_owner_mode(
        path,
        m.uid.unwrap_or(uid),
        m.gid.unwrap_or(gid),
        m.mode.map_or(mode, |m| m & 0o7777),
    )
}

/// A private tmpfs for the step's secret files (never on disk).
fn secrets_tmpfs(store: &Store, out: &mut PreparedMounts) -> Result<PathBuf> {
    use rustix::mount::MountFlags;
    let mut dir = WorkDir::new(store, "secrets")?;
    let root = dir.root();
    rustix::mount::mount(
        "tmpfs",
        &root,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(c"mode=0700"),
    )
    .map_err(|e| Error::io(root.display(), e.into()))?;
    dir.mounted = true;
    out.dirs.push(dir);
    Ok(root)
}

fn write_secret(path: &Path, bytes: &[u8], m: &PlannedMount) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path.display(), e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io(path.display(), e))?;
    rustix::fs::fchown(
        &file,
        Some(rustix::fs::Uid::from_raw(m.uid.unwrap_or(0))),
        Some(rustix::fs::Gid::from_raw(m.gid.unwrap_or(0))),
    )
    .map_err(|e| Error::io(path.display(), e.into()))?;
    rustix::fs::fchmod(
        &file,
        rustix::fs::Mode::from_raw_mode(m.mode.map_or(0o400, |m| m & 0o7777)),
    )
    .map_err(|e| Error::io(path.display(), e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::instructions::{parse_instruction, Command};

    fn plan(spec: &str, workdir: &str) -> std::result::Result<PlannedMount, String> {
        let df = berth_dockerfile::parse_str(&format!("RUN --mount={spec} true\n")).unwrap();
        let Command::Run(run) = parse_instruction(&df.instructions[0]).unwrap() else {
            panic!("not a RUN");
        };
        plan_mount(&run.mounts[0], workdir)
    }

    #[test]
    fn defaults_follow_buildkit() {
        let m = plan("target=src", "/app").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert_eq!(m.target.as_deref(), Some("/app/src"));
        assert!(m.read_only);
        assert_eq!(m.source, "");

        let m = plan("type=cache,target=/root/.cache", "/").unwrap();
        assert_eq!(m.id, "/root/.cache");
        assert!(!m.read_only);

        let m = plan("type=secret,id=tok", "/").unwrap();
        assert_eq!(m.target.as_deref(), Some("/run/secrets/tok"));
        let m = plan("type=secret,target=/etc/npmrc", "/").unwrap();
        assert_eq!(m.id, "npmrc");
        let m = plan("type=secret,id=tok,env=TOKEN", "/").unwrap();
        assert_eq!(m.target, None, "env only: no file");
        let m = plan("type=secret,id=tok,env=TOKEN,target=/t", "/").unwrap();
        assert_eq!(m.target.as_deref(), Some("/t"));
    }

    #[test]
    fn invalid_mounts_are_refused() {
        assert!(plan("target=/x,source=../etc", "/")
            .unwrap_err()
            .contains("outside the build context"));
        assert!(plan("type=ssh", "/").unwrap_err().contains("not supported"));
        assert!(plan("target=/x,mode=0700", "/")
            .unwrap_err()
            .contains("mode not allowed"));
        assert!(plan("target=/x,required", "/").is_err());
        assert!(plan("type=tmpfs,target=/", "/").is_err());
        assert!(plan("type=secret,id=a,source=b", "/").is_err());
        assert!(plan("type=bind,target=/x,sharing=locked", "/").is_err());
    }

    #[test]
    fn cache_names_are_safe_and_distinct() {
        assert_eq!(cache_dir_name("go-build"), "go-build");
        assert_eq!(cache_dir_name("/root/.cache"), "%2Froot%2F.cache");
        assert_eq!(cache_dir_name(".."), "%2E.");
        assert_ne!(cache_dir_name("a/b"), cache_dir_name("a%2Fb"));
        let long = cache_dir_name(&"x".repeat(300));
        assert!(long.starts_with("%sha256-") && long.len() < 100);
    }

    #[test]
    fn unused_cache_mounts_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(remove_cache_mounts(&store).unwrap(), 0);
        let base = dir.path().join(CACHE_MOUNTS_DIR);
        for name in ["idle", "busy"] {
            std::fs::create_dir_all(base.join(name).join("data/sub")).unwrap();
            std::fs::write(base.join(name).join("data/sub/f"), "x").unwrap();
        }
        let busy = File::create(base.join("busy/lock")).unwrap();
        rustix::fs::flock(&busy, FlockOperation::LockShared).unwrap();
        assert_eq!(remove_cache_mounts(&store).unwrap(), 1);
        assert!(!base.join("idle/data").exists());
        assert!(
            base.join("busy/data/sub/f").exists(),
            "a cache in use stays"
        );
        assert!(std::fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn stubs_are_removed_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/kept")).unwrap();
        let old = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(CWD, root, &old, AtFlags::empty()).unwrap();
        let mut stubs = Stubs::default();
        stubs.record(root, "/run/secrets/a");
        assert_eq!(stubs.paths, ["/run/secrets/a", "/run/secrets", "/run"]);
        assert_eq!(stubs.anchors.len(), 1, "the root is the anchor");
        std::fs::create_dir_all(root.join("run/secrets")).unwrap();
        std::fs::write(root.join("run/secrets/a"), "").unwrap();
        stubs.record(root, "/run/secrets/b");
        std::fs::write(root.join("run/secrets/b"), "").unwrap();
        stubs.record(root, "/etc/kept/x");
        std::fs::create_dir(root.join("etc/kept/x")).unwrap();
        stubs.settle(root);
        std::fs::write(root.join("etc/kept/x/file"), "written by the step").unwrap();
        stubs.remove(root);
        assert!(!root.join("run").exists());
        assert!(
            root.join("etc/kept/x/file").exists(),
            "a non-empty stub stays"
        );
        let mtime = std::fs::metadata(root).unwrap().mtime();
        assert_eq!(mtime, 1_000_000, "the untouched anchor has its time back");
    }
}
