//! Volumes with Docker's rules: names (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, or 64
//! random hex digits), the `local` driver only, `inspect`'s JSON, removal
//! refused while a container uses the volume, prune of unused anonymous
//! volumes (all unused ones with `--all`, as Docker 23+), and copy-up: an
//! empty volume mounted over a directory of the image is first seeded with
//! that directory's content.
//!
//! Which containers use a volume is the caller's knowledge (its container
//! records): the functions that need it take an `in_use` closure that
//! returns the IDs of the containers using a volume.
//!
//! [`Engine::prepare_mounts`] turns a container's `-v`/`--mount`/`--tmpfs`
//! requests and its image's `VOLUME`s into mounts for the runtime spec.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_fs::{resolve_in_root, ResolveOptions};
use berth_oci::ImageConfig;
use berth_runtime::mounts::{
    resolve_target, MountRequest, ResolvedMount, TargetKind, VolumeRequest,
};
use berth_runtime::rootfs::check_special_dirs;
use berth_runtime::TmpfsMount;
use berth_store::VolumeRecord;
use serde_json::{json, Value};

use crate::time::{rfc3339, wall_now};
use crate::{Engine, Error, Result};

/// The label Docker 23+ puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only volume driver.
pub const LOCAL_DRIVER: &str = "local";

/// Driver options the local driver knows (`-o type=… -o device=… -o o=…`).
const LOCAL_OPTIONS: [&str; 4] = ["type", "device", "o", "size"];

/// A volume, as `volume ls` and `volume inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub record: VolumeRecord,
    /// `<root>/volumes/<name>/_data`.
    pub mountpoint: PathBuf,
}

impl VolumeInfo {
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Docker's `Volume` JSON (`docker volume inspect`).
    pub fn to_json(&self) -> Value {
        json!({
            "CreatedAt": rfc3339(self.record.created_at, 0),
            "Driver": self.record.driver,
            "Labels": self.record.labels,
            "Mountpoint": self.mountpoint.to_string_lossy(),
            "Name": self.record.name,
            "Options": self.record.options,
            "Scope": "local",
        })
    }
}

/// Filters of `volume ls` and `volume prune` (`--filter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeFilter {
    /// `dangling=true|false`: used by no container, or used.
    pub dangling: Option<bool>,
    /// `name=`: any of these is a substring of the name.
    pub names: Vec<String>,
    /// `label=KEY` or `label=KEY=VALUE`: all must match.
    pub labels: Vec<(String, Option<String>)>,
    /// `label!=KEY[=VALUE]`: none may match.
    pub not_labels: Vec<(String, Option<String>)>,
    /// `driver=`.
    pub drivers: Vec<String>,
}

impl VolumeFilter {
    /// Parses `--filter` values (`dangling=true`, `name=x`, `label=a=b`,
    /// `label!=a`, `driver=local`) with Docker's error texts.
    pub fn parse(filters: &[String]) -> Result<VolumeFilter> {
        let mut out = VolumeFilter::default();
        let label = |v: &str| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (v.to_string(), None),
        };
        for f in filters {
            if let Some(v) = f.strip_prefix("label!=") {
                out.not_labels.push(label(v));
                continue;
            }
            let Some((key, value)) = f.split_once('=') else {
                return Err(Error::Invalid(
                    "bad format of filter (expected name=value)".into(),
                ));
            };
            match key {
                "dangling" => {
                    out.dangling = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(Error::Invalid(format!(
                                "invalid filter 'dangling={value}'"
                            )))
                        }
                    })
                }
                "name" => out.names.push(value.to_string()),
                "label" => out.labels.push(label(value)),
                "driver" => out.drivers.push(value.to_string()),
                _ => return Err(Error::Invalid(format!("invalid filter '{key}'"))),
            }
        }
        Ok(out)
    }

    fn matches(&self, volume: &VolumeRecord, used: bool) -> bool {
        let has = |(k, v): &(String, Option<String>)| match (volume.labels.get(k), v) {
            (Some(_), None) => true,
            (Some(actual), Some(want)) => actual == want,
            (None, _) => false,
        };
        self.dangling.is_none_or(|d| d != used)
            && (self.names.is_empty()
                || self.names.iter().any(|n| volume.name.contains(n.as_str())))
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
            && (self.drivers.is_empty() || self.drivers.contains(&volume.driver))
    }
}

/// Docker's local-driver name rule, with its error texts.
pub fn validate_volume_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    if name.len() == 1 && first_ok {
        return Err(Error::Invalid(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok || name.len() < 2 {
        return Err(Error::Invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

/// 64 random hex digits, the name of an unnamed volume.
fn random_name() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn no_such_volume(name: &str) -> Error {
    Error::NotFound(format!("get {name}: no such volume"))
}

/// Bytes under `dir` (files counted once per inode), never following
/// symlinks.
fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(md) = entry.metadata() else { continue };
            if md.is_dir() {
                stack.push(entry.path());
            } else if md.is_file() && seen.insert((md.dev(), md.ino())) {
                total += md.len();
            }
        }
    }
    total
}

impl Engine {
    fn volume_info(&self, record: VolumeRecord) -> Result<VolumeInfo> {
        let mountpoint = self.store().volume_data(&record.name)?;
        Ok(VolumeInfo { record, mountpoint })
    }

    /// `volume create`: a `local` volume named `name` (64 random hex
    /// digits when `None`). Creating a volume that exists returns it, as
    /// Docker does.
    pub fn create_volume(
        &mut self,
        name: Option<&str>,
        driver: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<VolumeInfo> {
        self.create_volume_record(name, driver, labels, options, false)
    }

    /// An anonymous volume for a container's mount (Docker's label on it).
    pub fn create_anonymous_volume(&mut self) -> Result<VolumeInfo> {
        let labels = BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]);
        self.create_volume_record(None, None, labels, BTreeMap::new(), true)
    }

    fn create_volume_record(
        &mut self,
        name: Option<&str>,
        driver: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<VolumeInfo> {
        let driver = match driver {
            None | Some("") => LOCAL_DRIVER,
            Some(LOCAL_DRIVER) => LOCAL_DRIVER,
            Some(other) => {
                return Err(Error::NotFound(format!(
                    "error looking up volume plugin {other}: plugin \"{other}\" not found"
                )))
            }
        };
        if let Some(key) = options
            .keys()
            .find(|k| !LOCAL_OPTIONS.contains(&k.as_str()))
        {
            return Err(Error::Invalid(format!("invalid option key: {key:?}")));
        }
        let name = match name {
            Some(n) if !n.is_empty() => {
                validate_volume_name(n)?;
                n.to_string()
            }
            _ => random_name()?,
        };
        if let Some(existing) = self.store().meta().volume(&name)? {
            return self.volume_info(existing);
        }
        let record = VolumeRecord {
            name,
            driver: driver.to_string(),
            created_at: wall_now(),
            labels,
            options,
            anonymous,
        };
        match self.store_mut().create_volume(&record) {
            Ok(_) => self.volume_info(record),
            // Another process made it meanwhile.
            Err(e) if e.kind() == berth_oci::ErrorKind::Conflict => {
                match self.store().meta().volume(&record.name)? {
                    Some(existing) => self.volume_info(existing),
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `volume ls`, by name; `in_use` gives the containers using a volume.
    pub fn list_volumes(
        &self,
        filter: &VolumeFilter,
        in_use: impl Fn(&str) -> Vec<String>,
    ) -> Result<Vec<VolumeInfo>> {
        let mut out = Vec::new();
        for record in self.store().meta().volumes()? {
            let used = !in_use(&record.name).is_empty();
            if filter.matches(&record, used) {
                out.push(self.volume_info(record)?);
            }
        }
        Ok(out)
    }

    /// `volume inspect NAME`.
    pub fn inspect_volume(&self, name: &str) -> Result<VolumeInfo> {
        match self.store().meta().volume(name)? {
            Some(record) => self.volume_info(record),
            None => Err(no_such_volume(name)),
        }
    }

    /// `volume rm [-f] NAME`: refused while a container uses it; `force`
    /// makes a missing volume no error.
    pub fn remove_volume(
        &mut self,
        name: &str,
        force: bool,
        in_use: impl Fn(&str) -> Vec<String>,
    ) -> Result<()> {
        if self.store().meta().volume(name)?.is_none() {
            return if force {
                Ok(())
            } else {
                Err(no_such_volume(name))
            };
        }
        let users = in_use(name);
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.store_mut().remove_volume(name)?;
        Ok(())
    }

    /// `volume prune`: unused anonymous volumes (every unused volume with
    /// `all`) that pass `filter`. Returns the names removed and the bytes
    /// freed.
    pub fn prune_volumes(
        &mut self,
        all: bool,
        filter: &VolumeFilter,
        in_use: impl Fn(&str) -> Vec<String>,
    ) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for record in self.store().meta().volumes()? {
            if !all && !record.anonymous && !record.labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !in_use(&record.name).is_empty() || !filter.matches(&record, false) {
                continue;
            }
            let data = self.store().volume_data(&record.name)?;
            let size = disk_usage(&data);
            if self.store_mut().remove_volume(&record.name)? {
                freed += size;
                removed.push(record.name);
            }
        }
        Ok((removed, freed))
    }

    /// Turns a container's mount requests into mounts for the spec, on its
    /// mounted `rootfs`: refuses an image whose `/proc`, `/dev` or `/sys`
    /// is a symlink; adds an anonymous volume for each image `VOLUME` that
    /// no request covers; creates missing named volumes; seeds empty
    /// volumes from the image (unless `nocopy`); resolves every target
    /// (binds, volumes, `tmpfs`) inside the rootfs. Call after the rootfs is
    /// mounted and before [`berth_runtime::build_spec`]; put `mounts` and
    /// `tmpfs` of the result into `RunOptions`.
    pub fn prepare_mounts(
        &mut self,
        rootfs: &Path,
        image: &ImageConfig,
        requests: &[MountRequest],
        tmpfs: &[TmpfsMount],
    ) -> Result<PreparedMounts> {
        check_special_dirs(rootfs).map_err(runtime_error)?;
        let mut seen: HashSet<String> = HashSet::new();
        let mut all: Vec<MountRequest> = Vec::new();
        let tmpfs_requests = tmpfs.iter().cloned().map(MountRequest::Tmpfs);
        for request in requests.iter().cloned().chain(tmpfs_requests) {
            let target = berth_runtime::spec::clean_path(request.target());
            if !seen.insert(target.clone()) {
                return Err(Error::Invalid(format!("Duplicate mount point: {target}")));
            }
            all.push(request);
        }
        if let Some(config) = &image.config {
            for volume in &config.volumes {
                let target = berth_runtime::spec::clean_path(volume);
                if seen.insert(target.clone()) {
                    all.push(MountRequest::Volume(VolumeRequest {
                        target,
                        ..VolumeRequest::default()
                    }));
                }
            }
        }
        let mut prepared = PreparedMounts::default();
        match self.prepare_each(rootfs, &all, &mut prepared) {
            Ok(()) => Ok(prepared),
            Err(e) => {
                for name in &prepared.anonymous {
                    let _ = self.store_mut().remove_volume(name);
                }
                Err(e)
            }
        }
    }

    fn prepare_each(
        &mut self,
        rootfs: &Path,
        requests: &[MountRequest],
        prepared: &mut PreparedMounts,
    ) -> Result<()> {
        for request in requests {
            match request {
                MountRequest::Bind(bind) => prepared
                    .mounts
                    .push(ResolvedMount::bind(rootfs, bind).map_err(runtime_error)?),
                MountRequest::Tmpfs(t) => {
                    let destination = resolve_target(rootfs, &t.destination, TargetKind::Directory)
                        .map_err(runtime_error)?;
                    prepared.tmpfs.push(TmpfsMount {
                        destination,
                        options: t.options.clone(),
                    });
                }
                MountRequest::Volume(v) => {
                    let info = match &v.name {
                        Some(name) => self.create_volume(
                            Some(name),
                            v.driver.as_deref(),
                            v.labels.clone(),
                            v.options.clone(),
                        )?,
                        None => {
                            let info = self.create_anonymous_volume()?;
                            prepared.anonymous.push(info.name().to_string());
                            info
                        }
                    };
                    if !info.record.options.is_empty() {
                        return Err(Error::Invalid(format!(
                            "volume {}: mounting a local volume with driver options (-o) is not supported yet",
                            info.name()
                        )));
                    }
                    let mount = ResolvedMount::volume(rootfs, info.name(), &info.mountpoint, v)
                        .map_err(runtime_error)?;
                    if !v.no_copy {
                        seed_volume(rootfs, &mount.target, &info.mountpoint)?;
                    }
                    prepared.mounts.push(mount);
                }
            }
        }
        Ok(())
    }
}

/// What [`Engine::prepare_mounts`] made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreparedMounts {
    /// For `RunOptions::mounts`.
    pub mounts: Vec<ResolvedMount>,
    /// For `RunOptions::tmpfs` (targets resolved).
    pub tmpfs: Vec<TmpfsMount>,
    /// Anonymous volumes made for this container (removed with `--rm`).
    pub anonymous: Vec<String>,
}

fn runtime_error(e: berth_runtime::SpecError) -> Error {
    match e.kind() {
        berth_oci::ErrorKind::NotFound => Error::NotFound(e.to_string()),
        berth_oci::ErrorKind::InvalidArgument => Error::Invalid(e.to_string()),
        _ => Error::Io {
            path: "mount".into(),
            source: std::io::Error::other(e.to_string()),
        },
    }
}

/// Docker's copy-up: when the volume at `data` is empty, copies the
/// image's content at `target` (a path inside `rootfs`, resolved there)
/// into it — owners, modes, times, symlinks as symlinks (their targets
/// untouched: they are read inside the container), hard links kept,
/// devices and fifos recreated — and gives the volume's root the owner and
/// mode of that directory. Extended attributes are not copied. Returns
/// whether anything was copied.
///
/// Nothing is followed out of `rootfs`: the target is resolved in it, the
/// tree is walked with `lstat`, files are opened with `O_NOFOLLOW`. The
/// image does not change while this runs (no container uses it yet).
pub fn seed_volume(rootfs: &Path, target: &str, data: &Path) -> Result<bool> {
    let mut entries = std::fs::read_dir(data).map_err(|e| io_at(data, e))?;
    if entries.next().is_some() {
        return Ok(false);
    }
    let source = resolve_in_root(rootfs, target, &ResolveOptions::default())?;
    let metadata = match std::fs::symlink_metadata(&source) {
        Ok(m) if m.is_dir() => m,
        _ => return Ok(false),
    };
    let mut copy = TreeCopy::default();
    copy.dir_contents(&source, data)?;
    copy.attributes(data, &metadata)?;
    // Directory times last: creating their children changed them.
    for (dir, md) in copy.dirs.iter().rev() {
        set_times(dir, md)?;
    }
    Ok(copy.entries > 0)
}

fn io_at(path: &Path, e: std::io::Error) -> Error {
    Error::io(path.display().to_string(), e)
}

fn errno_at(path: &Path, e: rustix::io::Errno) -> Error {
    io_at(path, e.into())
}

/// The state of one copy-up: hard links seen, directories to date.
#[derive(Default)]
struct TreeCopy {
    /// (device, inode) of a multiply-linked source file → its copy.
    links: std::collections::HashMap<(u64, u64), PathBuf>,
    dirs: Vec<(PathBuf, std::fs::Metadata)>,
    entries: u64,
}

impl TreeCopy {
    fn dir_contents(&mut self, from: &Path, to: &Path) -> Result<()> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let mut names: Vec<_> = std::fs::read_dir(from)
            .map_err(|e| io_at(from, e))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| io_at(from, e))?;
        names.sort();
        for name in names {
            let src = from.join(&name);
            let dst = to.join(&name);
            let md = std::fs::symlink_metadata(&src).map_err(|e| io_at(&src, e))?;
            let kind = md.file_type();
            self.entries += 1;
            if kind.is_dir() {
                std::fs::create_dir(&dst).map_err(|e| io_at(&dst, e))?;
                self.dir_contents(&src, &dst)?;
                self.attributes(&dst, &md)?;
                continue;
            }
            if md.nlink() > 1 && !kind.is_symlink() {
                if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                    std::fs::hard_link(first, &dst).map_err(|e| io_at(&dst, e))?;
                    continue;
                }
                self.links.insert((md.dev(), md.ino()), dst.clone());
            }
            if kind.is_symlink() {
                let link = std::fs::read_link(&src).map_err(|e| io_at(&src, e))?;
                std::os::unix::fs::symlink(&link, &dst).map_err(|e| io_at(&dst, e))?;
            } else if kind.is_file() {
                copy_file(&src, &dst)?;
            } else if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
                let file_type = rustix::fs::FileType::from_raw_mode(md.mode());
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &dst,
                    file_type,
                    rustix::fs::Mode::from_raw_mode(md.mode() & 0o7777),
                    md.rdev(),
                )
                .map_err(|e| errno_at(&dst, e))?;
            } else {
                // Sockets: nothing to copy.
                continue;
            }
            self.attributes(&dst, &md)?;
        }
        Ok(())
    }

    /// Owner, mode and times of `md` onto `path` (never through a symlink).
    fn attributes(&mut self, path: &Path, md: &std::fs::Metadata) -> Result<()> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::os::unix::fs::lchown(path, Some(md.uid()), Some(md.gid()))
            .map_err(|e| io_at(path, e))?;
        if md.file_type().is_symlink() {
            return set_times(path, md);
        }
        // After chown, which clears set-id bits.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(|e| io_at(path, e))?;
        if md.is_dir() {
            self.dirs.push((path.to_path_buf(), md.clone()));
            Ok(())
        } else {
            set_times(path, md)
        }
    }
}

fn copy_file(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut input = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(src)
        .map_err(|e| io_at(src, e))?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(|e| io_at(dst, e))?;
    std::io::copy(&mut input, &mut output).map_err(|e| io_at(dst, e))?;
    Ok(())
}

fn set_times(path: &Path, md: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let stamp = |secs: i64, nanos: i64| rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    let times = rustix::fs::Timestamps {
        last_access: stamp(md.atime(), md.atime_nsec()),
        last_modification: stamp(md.mtime(), md.mtime_nsec()),
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| errno_at(path, e))
}
