//! A container's storage mounts: `-v`/`--volume` and `--mount` parsed with
//! Docker's rules and error texts (moby `volume/mounts/linux_parser.go`,
//! docker/cli `opts/mount.go`), and mount targets made safe before the
//! container starts.
//!
//! - `-v /host:/ctr[:opts]` is a bind mount (a missing host directory is
//!   created, as Docker does for `-v`), `-v name:/ctr` a named volume,
//!   `-v /ctr` an anonymous one; opts are `ro`/`rw`, `z`/`Z`, `nocopy`, a
//!   propagation mode and a consistency mode, at most one of each.
//! - `--mount type=bind|volume|tmpfs,src=…,dst=…,…` (a missing bind source
//!   is an error there, as in Docker).
//!
//! A mount target is a path *inside the image*, which may hold symlinks.
//! [`resolve_target`] resolves it as if the rootfs were `/` (a symlink to
//! `/` or `../../..` stays inside), creates what is missing without
//! following any symlink, and returns the resolved path, which the spec
//! then uses as the destination: the runtime never meets a symlink on the
//! way. Call it after the rootfs is mounted and before [`crate::build_spec`].

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use berth_fs::{resolve_in_root, ResolveOptions};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::SpecError;
use crate::spec::{clean_path, TmpfsMount};

/// Bind propagation modes Docker accepts.
pub const PROPAGATION_MODES: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// The propagation of a bind mount when none is given.
pub const DEFAULT_PROPAGATION: &str = "rprivate";

/// One `-v` or `--mount`, parsed but not yet prepared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MountRequest {
    Bind(BindRequest),
    Volume(VolumeRequest),
    Tmpfs(TmpfsMount),
}

/// A host path bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BindRequest {
    /// Absolute host path, cleaned.
    pub source: PathBuf,
    /// Container path as given (cleaned).
    pub target: String,
    pub read_only: bool,
    /// One of [`PROPAGATION_MODES`].
    pub propagation: String,
    /// `rbind` (false with `bind-nonrecursive`).
    pub recursive: bool,
    /// Create a missing source directory (`-v`), or refuse it (`--mount`).
    pub create_source: bool,
}

/// A named or anonymous volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeRequest {
    /// `None`: an anonymous volume (a random name, removed with `--rm`).
    pub name: Option<String>,
    /// Container path as given (cleaned).
    pub target: String,
    pub read_only: bool,
    /// Do not copy the image's content at the target into a new volume.
    pub no_copy: bool,
    /// `volume-driver=` (only `local` exists in berth).
    pub driver: Option<String>,
    /// `volume-label=` for a volume this mount creates.
    pub labels: BTreeMap<String, String>,
    /// `volume-opt=` for a volume this mount creates.
    pub options: BTreeMap<String, String>,
}

impl MountRequest {
    /// The container path the mount is for, as requested.
    pub fn target(&self) -> &str {
        match self {
            MountRequest::Bind(b) => &b.target,
            MountRequest::Volume(v) => &v.target,
            MountRequest::Tmpfs(t) => &t.destination,
        }
    }
}

fn invalid_spec(raw: &str) -> String {
    format!("invalid volume specification: '{raw}'")
}

fn mount_config(kind: &str, detail: impl std::fmt::Display) -> String {
    format!("invalid mount config for type \"{kind}\": {detail}")
}

/// moby's `ValidMountMode`: comma-separated, at most one of each kind.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for option in mode.split(',') {
        let kind = match option {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            o if PROPAGATION_MODES.contains(&o) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        if let Some(count) = counts.get_mut(kind) {
            *count += 1;
        }
    }
    counts.iter().all(|c| *c <= 1)
}

/// Docker's checks on a mount target (`linuxValidateNotRoot`, `...Absolute`).
fn check_target(target: &str) -> Result<String, String> {
    if target.is_empty() {
        return Err("field Target must not be empty".into());
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ));
    }
    let cleaned = clean_path(target);
    if cleaned == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(cleaned)
}

/// Parses `-v`/`--volume`: `[SOURCE:]TARGET[:MODE]`.
pub fn parse_volume_flag(raw: &str) -> Result<MountRequest, SpecError> {
    let err = |detail: String| SpecError::Mount(format!("{}: {detail}", invalid_spec(raw)));
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [""] | ["", ..] => return Err(SpecError::Mount(invalid_spec(raw))),
        [target] => ("", *target, ""),
        [_, mode] if valid_mode(mode) && !mode.is_empty() => {
            // `/foo:rw` is a target and a mode: volumes need a source then.
            return Err(SpecError::Mount(invalid_spec(raw)));
        }
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(SpecError::Mount(invalid_spec(raw))),
    };
    if !valid_mode(mode) {
        return Err(SpecError::Mount(format!("invalid mode: {mode}")));
    }
    let options: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
    let read_only = options.contains(&"ro");
    let no_copy = options.contains(&"nocopy");
    let propagation = options
        .iter()
        .find(|o| PROPAGATION_MODES.contains(o))
        .map(|p| p.to_string());
    let is_bind = source.starts_with('/');
    let kind = if is_bind { "bind" } else { "volume" };
    let target = check_target(target).map_err(|e| err(mount_config(kind, e)))?;
    if is_bind {
        if no_copy {
            return Err(err(mount_config(
                kind,
                "field VolumeOptions must not be specified",
            )));
        }
        Ok(MountRequest::Bind(BindRequest {
            source: PathBuf::from(clean_path(source)),
            target,
            read_only,
            propagation: propagation.unwrap_or_else(|| DEFAULT_PROPAGATION.into()),
            recursive: true,
            create_source: true,
        }))
    } else {
        if propagation.is_some() {
            return Err(err(mount_config(
                kind,
                "field BindOptions must not be specified",
            )));
        }
        Ok(MountRequest::Volume(VolumeRequest {
            name: (!source.is_empty()).then(|| source.to_string()),
            target,
            read_only,
            no_copy,
            ..VolumeRequest::default()
        }))
    }
}

/// Splits one line as Go's `encoding/csv` does (quoted fields, `""`).
fn csv_fields(line: &str) -> Result<Vec<String>, SpecError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    let mut column = 0usize;
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            column += 1;
            loop {
                match chars.next() {
                    None => {
                        return Err(SpecError::Mount(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            column + 1
                        )))
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        column += 2;
                        field.push('"');
                    }
                    Some('"') => {
                        column += 1;
                        break;
                    }
                    Some(c) => {
                        column += 1;
                        field.push(c);
                    }
                }
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => {
                    return Err(SpecError::Mount(format!(
                    "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                    column + 1
                )))
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                column += 1;
                if c == '"' {
                    return Err(SpecError::Mount(format!(
                        "parse error on line 1, column {column}: bare \" in non-quoted-field"
                    )));
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => column += 1,
            _ => return Ok(fields),
        }
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `--mount`: comma-separated `key=value` fields (CSV quoting).
pub fn parse_mount_flag(raw: &str) -> Result<MountRequest, SpecError> {
    let fail = |m: String| Err(SpecError::Mount(m));
    let mut kind = "volume".to_string();
    let mut source = String::new();
    let mut target = String::new();
    let mut read_only = false;
    let mut no_copy = None;
    let mut non_recursive = None;
    let mut propagation = None;
    let mut driver = None;
    let mut labels = BTreeMap::new();
    let mut options = BTreeMap::new();
    let mut tmpfs_size = None;
    let mut tmpfs_mode = None;
    let put = |map: &mut BTreeMap<String, String>, value: &str| {
        let (k, v) = value.split_once('=').unwrap_or((value, ""));
        if !k.is_empty() {
            map.insert(k.to_string(), v.to_string());
        }
    };
    for field in csv_fields(raw)? {
        let Some((key, value)) = field.split_once('=') else {
            match field.to_ascii_lowercase().as_str() {
                "readonly" | "ro" => read_only = true,
                "volume-nocopy" => no_copy = Some(true),
                "bind-nonrecursive" => non_recursive = Some(true),
                _ => return fail(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let key = key.to_ascii_lowercase();
        let bad_value = || SpecError::Mount(format!("invalid value for {key}: {value}"));
        match key.as_str() {
            "type" => kind = value.to_ascii_lowercase(),
            "source" | "src" => source = value.to_string(),
            "target" | "dst" | "destination" => target = value.to_string(),
            "readonly" | "ro" => read_only = parse_bool(value).ok_or_else(bad_value)?,
            "consistency" => {}
            "bind-propagation" => propagation = Some(value.to_ascii_lowercase()),
            "bind-nonrecursive" => non_recursive = Some(parse_bool(value).ok_or_else(bad_value)?),
            "volume-nocopy" => {
                no_copy = Some(parse_bool(value).ok_or_else(|| {
                    SpecError::Mount(format!("invalid value for volume-nocopy: {value}"))
                })?)
            }
            "volume-label" => put(&mut labels, value),
            "volume-driver" => driver = Some(value.to_string()),
            "volume-opt" => put(&mut options, value),
            "tmpfs-size" => {
                tmpfs_size =
                    Some(crate::resources::parse_ram_bytes(value).map_err(|_| bad_value())?)
            }
            "tmpfs-mode" => {
                tmpfs_mode = Some(u32::from_str_radix(value, 8).map_err(|_| bad_value())?)
            }
            _ => return fail(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if kind.is_empty() {
        return fail("type is required".into());
    }
    if target.is_empty() {
        return fail("target is required".into());
    }
    let volume_options =
        no_copy.is_some() || driver.is_some() || !labels.is_empty() || !options.is_empty();
    let bind_options = propagation.is_some() || non_recursive.is_some();
    let tmpfs_options = tmpfs_size.is_some() || tmpfs_mode.is_some();
    for (set, prefix, owner) in [
        (volume_options, "volume", "volume"),
        (bind_options, "bind", "bind"),
        (tmpfs_options, "tmpfs", "tmpfs"),
    ] {
        if set && kind != owner {
            return fail(format!(
                "cannot mix '{prefix}-*' options with mount type '{kind}'"
            ));
        }
    }
    // The daemon's checks (`validateMountConfig`).
    let target = check_target(&target).map_err(|e| SpecError::Mount(mount_config(&kind, e)))?;
    match kind.as_str() {
        "bind" => {
            if source.is_empty() {
                return fail(mount_config(&kind, "field Source must not be empty"));
            }
            let propagation = propagation.unwrap_or_else(|| DEFAULT_PROPAGATION.into());
            if !PROPAGATION_MODES.contains(&propagation.as_str()) {
                return fail(mount_config(
                    &kind,
                    format!("invalid propagation mode: {propagation}"),
                ));
            }
            let source = absolute_source(&source);
            if !source.starts_with('/') {
                return fail(mount_config(
                    &kind,
                    format!("invalid mount path: '{source}' mount path must be absolute"),
                ));
            }
            Ok(MountRequest::Bind(BindRequest {
                source: PathBuf::from(clean_path(&source)),
                target,
                read_only,
                propagation,
                recursive: non_recursive != Some(true),
                create_source: false,
            }))
        }
        "volume" => {
            if source.is_empty() && read_only {
                return fail(mount_config(
                    &kind,
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            Ok(MountRequest::Volume(VolumeRequest {
                name: (!source.is_empty()).then_some(source),
                target,
                read_only,
                no_copy: no_copy == Some(true),
                driver,
                labels,
                options,
            }))
        }
        "tmpfs" => {
            if !source.is_empty() {
                return fail(mount_config(&kind, "field Source must not be specified"));
            }
            // moby's `ConvertTmpfsOptions`.
            let mut opts = Vec::new();
            if read_only {
                opts.push("ro".to_string());
            }
            if let Some(mode) = tmpfs_mode.filter(|m| *m != 0) {
                opts.push(format!("mode={mode:o}"));
            }
            if let Some(size) = tmpfs_size.filter(|s| *s != 0) {
                let (mut value, mut suffix) = (size, "");
                for (unit, divisor) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                    if size % divisor == 0 {
                        value = size / divisor;
                        suffix = unit;
                        break;
                    }
                }
                opts.push(format!("size={value}{suffix}"));
            }
            Ok(MountRequest::Tmpfs(TmpfsMount {
                destination: target,
                options: opts.join(","),
            }))
        }
        _ => fail(mount_config(&kind, "mount type unknown")),
    }
}

/// The CLI makes `.` and `./x` absolute against the working directory.
fn absolute_source(source: &str) -> String {
    if source == "." || source.starts_with("./") {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(source).to_string_lossy().into_owned();
        }
    }
    source.to_string()
}

/// What a mount source is, for the mount point made at its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Directory,
    File,
}

/// The kind of a prepared mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MountKind {
    Bind,
    Volume,
}

/// A bind or volume mount ready for the spec: a host source and a target
/// already resolved inside the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedMount {
    pub kind: MountKind,
    /// Host path: the bind source, or the volume's `_data` directory.
    pub source: PathBuf,
    /// The container path as requested (Docker's `Destination`).
    pub destination: String,
    /// The container path after resolving symlinks inside the rootfs; the
    /// spec's mount destination.
    pub target: String,
    pub read_only: bool,
    /// Bind propagation; `None` for volumes (the runtime's default).
    pub propagation: Option<String>,
    /// `rbind` rather than `bind`.
    pub recursive: bool,
    /// The volume's name (named or anonymous), `None` for binds.
    pub volume: Option<String>,
}

impl ResolvedMount {
    /// Prepares a bind mount: its source must exist (or is created for
    /// `-v`), its target is made inside `rootfs`.
    pub fn bind(rootfs: &Path, request: &BindRequest) -> Result<ResolvedMount, SpecError> {
        let source = &request.source;
        let metadata = match std::fs::metadata(source) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && request.create_source => {
                std::fs::create_dir_all(source).map_err(|e| SpecError::Io {
                    path: source.clone(),
                    source: e,
                })?;
                std::fs::metadata(source).map_err(|e| SpecError::Io {
                    path: source.clone(),
                    source: e,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SpecError::Mount(mount_config(
                    "bind",
                    format!("bind source path does not exist: {}", source.display()),
                )))
            }
            Err(e) => {
                return Err(SpecError::Io {
                    path: source.clone(),
                    source: e,
                })
            }
        };
        let kind = if metadata.is_dir() {
            TargetKind::Directory
        } else {
            TargetKind::File
        };
        Ok(ResolvedMount {
            kind: MountKind::Bind,
            source: source.clone(),
            destination: request.target.clone(),
            target: resolve_target(rootfs, &request.target, kind)?,
            read_only: request.read_only,
            propagation: Some(request.propagation.clone()),
            recursive: request.recursive,
            volume: None,
        })
    }

    /// Prepares a volume mount of `data` (the volume's `_data` directory)
    /// named `name`.
    pub fn volume(
        rootfs: &Path,
        name: &str,
        data: &Path,
        request: &VolumeRequest,
    ) -> Result<ResolvedMount, SpecError> {
        Ok(ResolvedMount {
            kind: MountKind::Volume,
            source: data.to_path_buf(),
            destination: request.target.clone(),
            target: resolve_target(rootfs, &request.target, TargetKind::Directory)?,
            read_only: request.read_only,
            propagation: None,
            recursive: true,
            volume: Some(name.to_string()),
        })
    }

    /// The spec's mount options (moby's `WithMounts`).
    pub fn options(&self) -> Vec<String> {
        let mut options = vec![if self.recursive { "rbind" } else { "bind" }.to_string()];
        if self.read_only {
            options.push("ro".into());
        }
        if let Some(p) = &self.propagation {
            options.push(p.clone());
        }
        options
    }
}

/// Resolves `target` inside `rootfs` (symlinks followed as if `rootfs` were
/// `/`), creates the missing directories (and, for a file source, an empty
/// file) without following any symlink, and returns the resolved container
/// path. A target that resolves to the root itself is refused, as Docker
/// refuses `/`.
pub fn resolve_target(rootfs: &Path, target: &str, kind: TargetKind) -> Result<String, SpecError> {
    let cleaned = check_target(target).map_err(SpecError::Mount)?;
    let resolved = resolve_in_root(rootfs, &cleaned, &ResolveOptions::default())?;
    let inside = resolved
        .strip_prefix(rootfs)
        .map_err(|_| SpecError::UnsafeRootfs(format!("mount target {target} escapes the root")))?
        .to_path_buf();
    let names: Vec<&std::ffi::OsStr> = inside
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Err(SpecError::Mount(format!(
            "invalid specification: destination can't be '/' ({target} resolves to it)"
        )));
    }
    make_mount_point(rootfs, target, &names, kind)?;
    let mut path = String::new();
    for name in &names {
        path.push('/');
        path.push_str(
            name.to_str()
                .ok_or_else(|| SpecError::NonUtf8Path(inside.clone()))?,
        );
    }
    Ok(path)
}

/// Walks `names` from `rootfs` with `O_NOFOLLOW`, creating what is missing.
fn make_mount_point(
    rootfs: &Path,
    target: &str,
    names: &[&std::ffi::OsStr],
    kind: TargetKind,
) -> Result<(), SpecError> {
    let io = |path: &Path, e: Errno| SpecError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let moved = |what: &str| {
        SpecError::UnsafeRootfs(format!(
            "mount target {target}: {what} changed while it was prepared"
        ))
    };
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir: OwnedFd =
        rustix::fs::open(rootfs, dir_flags, Mode::empty()).map_err(|e| io(rootfs, e))?;
    let mut walked = rootfs.to_path_buf();
    for (i, name) in names.iter().enumerate() {
        walked.push(name);
        let last = i + 1 == names.len();
        if last && kind == TargetKind::File {
            return match rustix::fs::statat(&dir, *name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    Err(moved(&walked.display().to_string()))
                }
                Ok(_) => Ok(()),
                Err(Errno::NOENT) => match rustix::fs::openat(
                    &dir,
                    *name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::WRONLY
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                ) {
                    Ok(_) | Err(Errno::EXIST) => Ok(()),
                    Err(e) => Err(io(&walked, e)),
                },
                Err(e) => Err(io(&walked, e)),
            };
        }
        dir = match rustix::fs::openat(&dir, *name, dir_flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io(&walked, e)),
                }
                rustix::fs::openat(&dir, *name, dir_flags, Mode::empty()).map_err(|e| match e {
                    Errno::LOOP | Errno::NOTDIR => moved(&walked.display().to_string()),
                    e => io(&walked, e),
                })?
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                // Resolution followed every symlink, so one here was swapped
                // in since: refuse rather than follow. Otherwise it is a file.
                let is_link = rustix::fs::statat(&dir, *name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                return Err(if is_link {
                    moved(&walked.display().to_string())
                } else {
                    SpecError::Mount(format!(
                        "mount target {target}: {} is not a directory in the image",
                        clean_path(
                            &walked
                                .strip_prefix(rootfs)
                                .unwrap_or(&walked)
                                .to_string_lossy()
                        )
                    ))
                });
            }
            Err(e) => return Err(io(&walked, e)),
        };
    }
    Ok(())
}

/// Resolves the destinations of tmpfs mounts inside `rootfs` as
/// [`resolve_target`] does for binds and volumes.
pub fn resolve_tmpfs_targets(rootfs: &Path, tmpfs: &mut [TmpfsMount]) -> Result<(), SpecError> {
    for mount in tmpfs {
        mount.destination = resolve_target(rootfs, &mount.destination, TargetKind::Directory)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(source: &str, target: &str, ro: bool, propagation: &str) -> MountRequest {
        MountRequest::Bind(BindRequest {
            source: source.into(),
            target: target.into(),
            read_only: ro,
            propagation: propagation.into(),
            recursive: true,
            create_source: true,
        })
    }

    fn err(result: Result<MountRequest, SpecError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn volume_flag() {
        assert_eq!(
            parse_volume_flag("/host:/ctr").unwrap(),
            bind("/host", "/ctr", false, "rprivate")
        );
        assert_eq!(
            parse_volume_flag("/host/:/ctr/./x/:ro,rshared").unwrap(),
            bind("/host", "/ctr/x", true, "rshared")
        );
        assert_eq!(
            parse_volume_flag("data:/var/lib/data:ro,nocopy").unwrap(),
            MountRequest::Volume(VolumeRequest {
                name: Some("data".into()),
                target: "/var/lib/data".into(),
                read_only: true,
                no_copy: true,
                ..VolumeRequest::default()
            })
        );
        assert_eq!(
            parse_volume_flag("/data").unwrap(),
            MountRequest::Volume(VolumeRequest {
                target: "/data".into(),
                ..VolumeRequest::default()
            })
        );
        assert_eq!(
            err(parse_volume_flag("/foo:rw")),
            "invalid volume specification: '/foo:rw'"
        );
        assert_eq!(
            err(parse_volume_flag("/a:/b:/c:/d")),
            "invalid volume specification: '/a:/b:/c:/d'"
        );
        assert_eq!(
            err(parse_volume_flag("")),
            "invalid volume specification: ''"
        );
        assert_eq!(err(parse_volume_flag("/a:/b:xyz")), "invalid mode: xyz");
        assert_eq!(err(parse_volume_flag("/a:/b:ro,rw")), "invalid mode: ro,rw");
        assert_eq!(
            err(parse_volume_flag("/a:b")),
            "invalid volume specification: '/a:b': invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute"
        );
        assert_eq!(
            err(parse_volume_flag("/a:/")),
            "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            err(parse_volume_flag("vol:/x:shared")),
            "invalid volume specification: 'vol:/x:shared': invalid mount config for type \"volume\": field BindOptions must not be specified"
        );
    }

    #[test]
    fn mount_flag() {
        assert_eq!(
            parse_mount_flag("type=bind,source=/h,target=/c,readonly").unwrap(),
            MountRequest::Bind(BindRequest {
                source: "/h".into(),
                target: "/c".into(),
                read_only: true,
                propagation: "rprivate".into(),
                recursive: true,
                create_source: false,
            })
        );
        assert_eq!(
            parse_mount_flag(
                "type=bind,src=/h,dst=/c,ro=false,bind-propagation=rslave,bind-nonrecursive"
            )
            .unwrap(),
            MountRequest::Bind(BindRequest {
                source: "/h".into(),
                target: "/c".into(),
                read_only: false,
                propagation: "rslave".into(),
                recursive: false,
                create_source: false,
            })
        );
        let MountRequest::Volume(v) = parse_mount_flag(
            "src=data,destination=/d,volume-nocopy,volume-label=a=b,\"volume-opt=o=x,y\"",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(v.name.as_deref(), Some("data"));
        assert!(v.no_copy);
        assert_eq!(v.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(v.options.get("o").map(String::as_str), Some("x,y"));
        assert_eq!(
            parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap(),
            MountRequest::Tmpfs(TmpfsMount {
                destination: "/t".into(),
                options: "mode=1770,size=64m".into()
            })
        );
        for (raw, message) in [
            ("type=bind,src=/h", "target is required"),
            ("type=bind,dst=/c", "invalid mount config for type \"bind\": field Source must not be empty"),
            ("type=bind,src=h,dst=/c", "invalid mount config for type \"bind\": invalid mount path: 'h' mount path must be absolute"),
            ("type=bind,src=/h,dst=c", "invalid mount config for type \"bind\": invalid mount path: 'c' mount path must be absolute"),
            ("type=bind,src=/h,dst=/c,bind-propagation=bogus", "invalid mount config for type \"bind\": invalid propagation mode: bogus"),
            ("type=volume,dst=/c,ro", "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"),
            ("type=tmpfs,src=x,dst=/c", "invalid mount config for type \"tmpfs\": field Source must not be specified"),
            ("type=nfs,dst=/c", "invalid mount config for type \"nfs\": mount type unknown"),
            ("type=bind,src=/h,dst=/c,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
            ("type=volume,dst=/c,bind-propagation=shared", "cannot mix 'bind-*' options with mount type 'volume'"),
            ("type=bind,src=/h,dst=/c,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'bind'"),
            ("type=bind,src=/h,dst=/c,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
            ("type=bind,src=/h,dst=/c,bogus", "invalid field 'bogus' must be a key=value pair"),
            ("type=bind,src=/h,dst=/c,ro=maybe", "invalid value for ro: maybe"),
            ("type=tmpfs,dst=/c,tmpfs-size=big", "invalid value for tmpfs-size: big"),
            ("type=tmpfs,dst=/c,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
            ("type=volume,dst=/c,volume-nocopy=x", "invalid value for volume-nocopy: x"),
            ("type=bind,src=/h,dst=/", "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
            ("type=bind,src=a\"b,dst=/", "parse error on line 1, column 16: bare \" in non-quoted-field"),
        ] {
            assert_eq!(err(parse_mount_flag(raw)), message, "{raw}");
        }
    }

    #[test]
    fn targets_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/", root.join("toroot")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/etc/target-file", root.join("filelink")).unwrap();
        assert_eq!(
            resolve_target(&root, "/toroot/mnt/a", TargetKind::Directory).unwrap(),
            "/mnt/a"
        );
        assert!(root.join("mnt/a").is_dir());
        assert_eq!(
            resolve_target(&root, "/up/up/tmp/x", TargetKind::Directory).unwrap(),
            "/tmp/x"
        );
        assert!(root.join("tmp/x").is_dir());
        assert_eq!(
            resolve_target(&root, "/filelink", TargetKind::File).unwrap(),
            "/etc/target-file"
        );
        assert!(root.join("etc/target-file").is_file());
        let e = resolve_target(&root, "/toroot", TargetKind::Directory).unwrap_err();
        assert!(e.to_string().contains("destination can't be '/'"), "{e}");
        std::fs::write(root.join("etc/plain"), "").unwrap();
        let e = resolve_target(&root, "/etc/plain/sub", TargetKind::Directory).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mount target /etc/plain/sub: /etc/plain is not a directory in the image"
        );
    }
}
