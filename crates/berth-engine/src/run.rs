//! `berth run` in the foreground: the image's snapshot chain under a fresh
//! overlay, Docker's runtime spec, the container started with embedded
//! libcontainer and waited for, then everything removed.
//!
//! This is the first increment of the runtime: no shim yet (the container
//! does not outlive the command), no container records (the container is
//! always removed, as with `--rm`), and no bridge network (the container
//! gets an empty network namespace, or the host's with `--network host`).

use std::path::{Path, PathBuf};

use berth_fs::{resolve_in_root, ResolveOptions};
use berth_launch::{launch, Stdio};
use berth_oci::{chain_ids, Digest};
use berth_runtime::rootfs::{unmount_root, OverlayRoot};
use berth_runtime::{build_spec, RunOptions};

use crate::time::now;
use crate::{Engine, Error, Result};

/// Exit statuses berth itself returns, as the docker CLI does.
pub mod exit {
    /// berth failed before the container ran.
    pub const ENGINE: i32 = 125;
    /// The command exists but cannot be run.
    pub const CANNOT_INVOKE: i32 = 126;
    /// The command was not found.
    pub const NOT_FOUND: i32 = 127;
}

/// A failure with the exit status `docker run` would give it.
#[derive(Debug)]
pub struct RunFailure {
    pub status: i32,
    pub error: Error,
}

impl From<Error> for RunFailure {
    fn from(error: Error) -> Self {
        RunFailure {
            status: exit::ENGINE,
            error,
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::Invalid(e.to_string())
}

impl Engine {
    /// Runs `image` with `opts` in the foreground, its stdio inherited;
    /// returns the container's exit status.
    pub fn run_foreground(&mut self, image: &str, opts: &RunOptions) -> Result<i32, RunFailure> {
        let id_digest = self.resolve_image(image)?;
        let config = self.image_config(&id_digest)?;
        let chain = chain_ids(config.diff_ids());
        let top = chain
            .last()
            .ok_or_else(|| invalid(format!("image {image} has no layers")))?;
        let overlay = self
            .store()
            .snapshots()
            .overlay(self.store().meta(), top)
            .map_err(Error::from)?;
        let (secs, nanos) = now();
        let container_id =
            Digest::sha256_of(format!("{secs}.{nanos}.{}.{image}", std::process::id()).as_bytes())
                .hex()
                .to_string();
        let held = self
            .store()
            .container_dir(&container_id)
            .map_err(Error::from)?;
        let container = ContainerDir::create(held)?;
        let root = OverlayRoot {
            lower: overlay.lower.clone(),
            base: self.store().snapshots().dir().to_path_buf(),
            upper: container.path.join("upper"),
            work: container.path.join("work"),
            target: container.path.join("rootfs"),
        };
        root.mount().map_err(invalid)?;
        let mounted = MountedRoot(root.target.clone());
        let status = run_in(&container, &mounted.0, &config, &container_id, opts);
        drop(mounted);
        drop(container);
        status
    }
}

/// The container's directory (held with a work lock, removed when
/// dropped; after a crash, [`cleanup_abandoned`] at the next start-up).
struct ContainerDir {
    path: PathBuf,
    _held: berth_store::ScratchDir,
}

impl ContainerDir {
    fn create(held: berth_store::ScratchDir) -> Result<ContainerDir> {
        let path = held.path().to_path_buf();
        for sub in ["upper", "work", "rootfs", "state"] {
            let p = path.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(p.display().to_string(), e))?;
        }
        Ok(ContainerDir { path, _held: held })
    }
}

/// What a killed `berth run` leaves: the container's processes (in its
/// cgroup `/berth/<id>`), its mounted root. Stops and unmounts them before
/// the directory is removed.
pub fn cleanup_abandoned(dir: &Path) {
    let Some(id) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let cgroups = cgroup_dirs(&id);
    for cg in &cgroups {
        if let Ok(procs) = std::fs::read_to_string(cg.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
    let _ = unmount_root(&dir.join("rootfs"));
    // The killed processes leave their cgroups empty shortly after.
    for _ in 0..50 {
        let mut left = 0;
        for cg in &cgroups {
            if cg.exists() && std::fs::remove_dir(cg).is_err() {
                left += 1;
            }
        }
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The container's cgroup directories in every mounted hierarchy.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    let direct = root.join("berth").join(id);
    if direct.is_dir() {
        out.push(direct);
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let cg = entry.path().join("berth").join(id);
            if cg.is_dir() {
                out.push(cg);
            }
        }
    }
    out
}

/// The mounted root filesystem, unmounted when dropped.
struct MountedRoot(PathBuf);

impl Drop for MountedRoot {
    fn drop(&mut self) {
        let _ = unmount_root(&self.0);
    }
}

/// Reads a file of the image through the root, never leaving it.
fn read_in_root(rootfs: &Path, path: &str) -> String {
    resolve_in_root(rootfs, path, &ResolveOptions::default())
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

fn run_in(
    container: &ContainerDir,
    rootfs: &Path,
    config: &berth_oci::ImageConfig,
    container_id: &str,
    opts: &RunOptions,
) -> Result<i32, RunFailure> {
    let passwd = read_in_root(rootfs, "/etc/passwd");
    let group = read_in_root(rootfs, "/etc/group");
    let short = container_id.get(..12).unwrap_or(container_id);
    let hostname = opts.hostname.clone().unwrap_or_else(|| short.to_string());
    let etc = |name: &str, text: String| -> Result<PathBuf> {
        let p = container.path.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(p.display().to_string(), e))?;
        Ok(p)
    };
    let mut opts = opts.clone();
    opts.hostname_file = Some(etc("hostname", format!("{hostname}\n"))?);
    opts.hosts_file = Some(etc(
        "hosts",
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
    )?);
    opts.resolv_conf = Some(etc(
        "resolv.conf",
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    )?);
    let spec = build_spec(config, &opts, rootfs, &passwd, &group, container_id).map_err(invalid)?;

    // Docker creates a missing working directory (inside the root).
    let cwd = &spec.process.cwd;
    let in_root = resolve_in_root(rootfs, cwd, &ResolveOptions::default())
        .map_err(|e| invalid(format!("working directory {cwd}: {e}")))?;
    std::fs::create_dir_all(&in_root).map_err(|e| Error::io(cwd.clone(), e))?;

    check_command(rootfs, &spec)?;
    let bundle = &container.path;
    let json = spec.to_json().map_err(invalid)?;
    std::fs::write(bundle.join("config.json"), json)
        .map_err(|e| Error::io("config.json".to_string(), e))?;
    let mut running = launch(bundle, short, &bundle.join("state"), Stdio::default())
        .map_err(|e| invalid(format!("starting container: {e}")))?;
    // Docker's sig-proxy: signals berth receives go to the container.
    let proxy = SignalProxy::start(running.pid());
    let status = running.wait();
    drop(proxy);
    let status = status.map_err(|e| invalid(format!("waiting for container: {e}")))?;
    let _ = running.delete();
    Ok(status.code())
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the
/// container's init while it runs (berth itself then no longer dies of them).
/// The forwarding thread starts after the container was created, when the
/// single-threaded launch is over.
struct SignalProxy {
    handle: Option<signal_hook::iterator::Handle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SignalProxy {
    fn start(pid: i32) -> SignalProxy {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([
            SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
        ]) else {
            return SignalProxy {
                handle: None,
                thread: None,
            };
        };
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            for sig in signals.forever() {
                if let (Some(pid), Some(sig)) = (
                    rustix::process::Pid::from_raw(pid),
                    rustix::process::Signal::from_named_raw(sig),
                ) {
                    let _ = rustix::process::kill_process(pid, sig);
                }
            }
        });
        SignalProxy {
            handle: Some(handle),
            thread: Some(thread),
        }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Docker's 127/126 for a command that is missing or not executable,
/// found the way the container's `execve` would (PATH from its env).
fn check_command(rootfs: &Path, spec: &berth_runtime::Spec) -> Result<(), RunFailure> {
    use std::os::unix::fs::PermissionsExt;
    let Some(cmd) = spec.process.args.first() else {
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
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
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
            error: invalid(format!("exec: \"{cmd}\": permission denied")),
        });
    }
    Err(RunFailure {
        status: exit::NOT_FOUND,
        error: invalid(format!(
            "exec: \"{cmd}\": executable file not found in $PATH"
        )),
    })
}
