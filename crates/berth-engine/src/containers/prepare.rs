//! Turning a container's record into something to launch: the overlay root
//! (image snapshots + the container's upper dir), `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf` in the container directory, the OCI
//! runtime spec (`bundle/config.json`), the working directory, and Docker's
//! 126/127 checks on the command.

use std::path::{Path, PathBuf};

use berth_fs::{read_in_root, resolve_in_root, ResolveOptions};
use berth_oci::ImageConfig;
use berth_runtime::rootfs::{unmount_root, OverlayRoot};
use berth_runtime::{build_spec, RunOptions, Spec};

use super::config::ContainerConfig;
use super::{exit, RunFailure};
use crate::{Error, Result};

/// Paths inside a container's directory.
pub(crate) struct Layout<'a>(pub &'a Path);

impl Layout<'_> {
    pub fn rootfs(&self) -> PathBuf {
        self.0.join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.0.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.0.join("work")
    }
    pub fn bundle(&self) -> PathBuf {
        self.0.join("bundle")
    }
    /// libcontainer's state root.
    pub fn runtime_state(&self) -> PathBuf {
        self.0.join("runtime")
    }
}

/// The ID libcontainer knows the container by (the short ID).
pub(crate) fn runtime_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::Invalid(e.to_string())
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path.display().to_string(), e)
}

/// Creates the directories a new container needs.
pub(crate) fn create_dirs(dir: &Path) -> Result<()> {
    let layout = Layout(dir);
    for p in [
        layout.upper(),
        layout.work(),
        layout.rootfs(),
        layout.bundle(),
    ] {
        std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// Whether `path` is a mount point (its device differs from its parent's).
pub(crate) fn is_mounted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(me), Some(Ok(parent))) => me.dev() != parent.dev(),
        _ => false,
    }
}

/// Mounts the container's root (once; a restart finds it mounted).
pub(crate) fn mount_rootfs(dir: &Path, config: &ContainerConfig) -> Result<()> {
    let layout = Layout(dir);
    if is_mounted(&layout.rootfs()) {
        return Ok(());
    }
    OverlayRoot {
        lower: config.lower.clone(),
        base: config.snapshots_dir.clone(),
        upper: layout.upper(),
        work: layout.work(),
        target: layout.rootfs(),
    }
    .mount()
    .map_err(invalid)
}

/// Unmounts the container's root if it is mounted.
pub(crate) fn unmount_rootfs(dir: &Path) {
    let _ = unmount_root(&Layout(dir).rootfs());
}

/// Writes `/etc/hostname` and the runtime spec for `opts` (whose network,
/// mounts, hosts and resolv.conf files the caller has prepared); returns
/// the spec. The root must be mounted.
pub(crate) fn write_bundle(
    dir: &Path,
    config: &ContainerConfig,
    image: &ImageConfig,
    mut opts: RunOptions,
) -> Result<Spec, RunFailure> {
    let layout = Layout(dir);
    let rootfs = layout.rootfs();
    let passwd = read_in_root(&rootfs, "/etc/passwd");
    let group = read_in_root(&rootfs, "/etc/group");
    let hostname = hostname(config);
    let path = dir.join("hostname");
    std::fs::write(&path, format!("{hostname}\n")).map_err(|e| io(&path, e))?;
    opts.hostname_file = Some(path);
    opts.cgroups_path = Some(format!("/berth/{}", config.id));
    let spec = build_spec(image, &opts, &rootfs, &passwd, &group, &config.id).map_err(invalid)?;

    // Docker creates a missing working directory (inside the root).
    let cwd = &spec.process.cwd;
    refuse_proc_workdir(&rootfs, cwd)?;
    let in_root = resolve_in_root(&rootfs, cwd, &ResolveOptions::default())
        .map_err(|e| invalid(format!("working directory {cwd}: {e}")))?;
    std::fs::create_dir_all(&in_root).map_err(|e| Error::io(cwd.clone(), e))?;

    check_command(&rootfs, &spec)?;
    let json = spec.to_json().map_err(invalid)?;
    let path = layout.bundle().join("config.json");
    std::fs::write(&path, json).map_err(|e| io(&path, e))?;
    Ok(spec)
}

/// Refuses a working directory inside a process's `/proc` entry
/// (`/proc/self/fd/N`, `/proc/1/cwd`, ...), as written or once the
/// container's symlinks are resolved: those are magic links that can name
/// a descriptor the runtime leaked, i.e. a directory on the host
/// (CVE-2024-21626). libcontainer verifies the directory after `chdir`
/// too; refusing here gives a clear error and creates nothing under
/// `/proc` in the container's upper dir.
pub(crate) fn refuse_proc_workdir(rootfs: &Path, cwd: &str) -> Result<()> {
    let resolved = resolve_in_root(rootfs, cwd, &ResolveOptions::default())
        .ok()
        .and_then(|p| p.strip_prefix(rootfs).ok().map(Path::to_path_buf))
        .unwrap_or_default();
    for path in [Path::new(cwd), resolved.as_path()] {
        let mut clean: Vec<&std::ffi::OsStr> = Vec::new();
        for c in path.components() {
            match c {
                std::path::Component::Normal(n) => clean.push(n),
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                _ => {}
            }
        }
        if let [first, second, ..] = clean.as_slice() {
            let second = second.to_string_lossy();
            let magic = second == "self"
                || second == "thread-self"
                || second.bytes().all(|b| b.is_ascii_digit());
            if *first == "proc" && magic {
                return Err(Error::Invalid(format!(
                    "the working directory '{cwd}' is invalid: it is inside /proc/{second}, which can lead outside the container"
                )));
            }
        }
    }
    Ok(())
}

/// The container's hostname: `-h`, else the short ID.
pub(crate) fn hostname(config: &ContainerConfig) -> String {
    config
        .run
        .hostname
        .clone()
        .unwrap_or_else(|| runtime_id(&config.id).to_string())
}

/// Docker's 127/126 for a command that is missing or not executable,
/// found the way the container's `execve` would (PATH from its env).
fn check_command(rootfs: &Path, spec: &Spec) -> Result<(), RunFailure> {
    use std::os::unix::fs::PermissionsExt;
    // With `--init` the init is bind-mounted; the command to find follows `--`.
    let args = match spec.process.args.as_slice() {
        [init, dashes, rest @ ..] if init == berth_runtime::spec::INIT_PATH && dashes == "--" => {
            rest
        }
        all => all,
    };
    let Some(cmd) = args.first() else {
        return Err(invalid("No command specified").into());
    };
    let candidates: Vec<String> = if cmd.contains('/') {
        vec![cmd.clone()]
    } else {
        let path = spec
            .process
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(berth_runtime::DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{cmd}"))
            .collect()
    };
    let mut found_not_executable = false;
    for candidate in &candidates {
        let absolute = if candidate.starts_with('/') {
            candidate.clone()
        } else {
            format!("{}/{candidate}", spec.process.cwd.trim_end_matches('/'))
        };
        let Ok(path) = resolve_in_root(rootfs, &absolute, &ResolveOptions::default()) else {
            continue;
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return Ok(()),
            Ok(_) => found_not_executable = true,
            Err(_) => {}
        }
    }
    if found_not_executable {
        return Err(RunFailure {
            status: exit::CANNOT_INVOKE,
            error: invalid(format!(
                "failed to create task for container: exec: \"{cmd}\": permission denied"
            )),
        });
    }
    Err(RunFailure {
        status: exit::NOT_FOUND,
        error: invalid(format!(
            "failed to create task for container: exec: \"{cmd}\": executable file not found in $PATH"
        )),
    })
}
