//! The OCI runtime spec for a container, built from the image config and the
//! `docker run` options the way Docker builds it (moby `daemon/oci_linux.go`,
//! `oci/defaults.go`, `container.CreateDaemonEnvironment`):
//!
//! - args: ENTRYPOINT + CMD; a command replaces CMD; `--entrypoint` replaces
//!   ENTRYPOINT and drops the image's CMD; nothing at all is an error;
//! - env: `PATH` (default), `HOSTNAME`, `TERM=xterm` with a tty, then the
//!   `-e` values followed by the image values they do not override, each
//!   replacing a default in place or appended; `KEY` without `=` unsets;
//! - mounts, masked and read-only paths, device rules, namespaces and
//!   capabilities as Docker's defaults; `--privileged` lifts the confinement.
//!
//! Two things differ from Docker on purpose: `noNewPrivileges` is on unless
//! privileged (Docker needs `--security-opt no-new-privileges`), and
//! `RLIMIT_NOFILE` is set explicitly to 1048576 or the host's hard limit,
//! whichever is lower, since berth may run without `CAP_SYS_RESOURCE`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_oci::{ContainerConfig, ImageConfig};

use crate::caps;
use crate::error::SpecError;
use crate::mounts::ResolvedMount;
use crate::oci::{
    self, Capabilities, DeviceRule, Linux, Mount, Namespace, Process, Rlimit, Root, Spec, User,
    OCI_VERSION,
};
use crate::resources::Resources;
use crate::seccomp::{self, Target};
use crate::user;

/// The `PATH` a container gets when neither the image nor `-e` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init` puts the init binary inside the container (Docker's path,
/// so that tools that look for it find it).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The `RLIMIT_NOFILE` containers get, lowered to the host's hard limit.
pub const NOFILE_LIMIT: u64 = 1_048_576;

/// `/dev/shm` size with a private IPC namespace (Docker's `--shm-size` default).
pub const SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Paths hidden from unprivileged containers (Docker's list).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only in unprivileged containers (Docker's list).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The network namespace a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetworkNamespace {
    /// A fresh, empty namespace (loopback only until someone adds a veth).
    #[default]
    New,
    /// Join a namespace prepared by the caller (`/run/netns/...`, `/proc/N/ns/net`).
    Join(PathBuf),
    /// `--network host`: no network namespace.
    Host,
}

/// One `--tmpfs DEST[:OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TmpfsMount {
    pub destination: String,
    /// Comma-separated mount options as given (`rw,size=64m`), may be empty.
    pub options: String,
}

impl TmpfsMount {
    /// Parses the value of `--tmpfs`.
    pub fn parse(value: &str) -> Result<TmpfsMount, SpecError> {
        let (destination, options) = value.split_once(':').unwrap_or((value, ""));
        if !destination.starts_with('/') {
            return Err(SpecError::RelativeMountPath(destination.to_string()));
        }
        Ok(TmpfsMount {
            destination: clean_path(destination),
            options: options.to_string(),
        })
    }
}

/// Facts about the host that bound what the spec may ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// The hard `RLIMIT_NOFILE`; `None` is unlimited.
    pub nofile_hard_limit: Option<u64>,
    /// The kernel's `(major, minor)`, for seccomp's `minKernel` rules.
    pub kernel: Option<(u32, u32)>,
    /// This process's capability bounding set (`CapBnd`); `--privileged` and
    /// `--cap-add ALL` grant only these (a container cannot get more than
    /// its creator has). `None` is every capability.
    pub cap_bounding: Option<u64>,
}

impl HostInfo {
    /// Reads this process's limits and the running kernel's version.
    pub fn detect() -> HostInfo {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let uname = rustix::system::uname();
        let release = uname.release().to_string_lossy();
        let cap_bounding = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("CapBnd:"))
                    .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            });
        HostInfo {
            nofile_hard_limit: limit.maximum,
            kernel: seccomp::parse_kernel_release(&release),
            cap_bounding,
        }
    }
}

/// The `docker run` options that shape the runtime spec (kept in the
/// container's record, so they serialise).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunOptions {
    /// `--entrypoint`: `Some` replaces the image's ENTRYPOINT and drops its
    /// CMD; `Some(vec![])` (or `vec![""]`, as `--entrypoint ""` sends it)
    /// leaves no entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name; replaces the image's CMD.
    pub command: Vec<String>,
    /// `-e`/`--env-file` values, already resolved against the caller's
    /// environment (see [`resolve_env_flag`]); `KEY` without `=` unsets KEY.
    pub env: Vec<String>,
    /// `-w`; empty or `None` takes the image's `WorkingDir`.
    pub workdir: Option<String>,
    /// `-u`; empty or `None` takes the image's `USER`.
    pub user: Option<String>,
    /// `-h`; `None` is the short container ID.
    pub hostname: Option<String>,
    pub group_add: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `--read-only`: the rootfs and the `/etc/hosts`-like files are read-only.
    pub read_only: bool,
    pub tmpfs: Vec<TmpfsMount>,
    /// `--init`: the host path of the init binary, bind-mounted at [`INIT_PATH`].
    pub init: Option<PathBuf>,
    /// `-t`.
    pub tty: bool,
    pub network: NetworkNamespace,
    /// Host files bind-mounted at `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub hosts_file: Option<PathBuf>,
    pub hostname_file: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
    /// `linux.cgroupsPath`; `None` is `/berth/<container id>`.
    pub cgroups_path: Option<String>,
    /// `None` reads the running host ([`HostInfo::detect`]).
    #[serde(skip)]
    pub host: Option<HostInfo>,
    /// `-v`/`--mount` binds and volumes, targets already resolved inside
    /// the rootfs ([`crate::mounts::resolve_target`]).
    pub mounts: Vec<ResolvedMount>,
    /// cgroup limits, already validated ([`Resources::validate`]).
    pub resources: Resources,
}

/// `-e KEY` → `KEY=value` from the caller's environment, or `KEY` (which
/// unsets KEY in the container) when the caller has none; `-e KEY=VAL` as is.
pub fn resolve_env_flag(flag: &str, lookup: impl FnOnce(&str) -> Option<String>) -> String {
    if flag.contains('=') {
        return flag.to_string();
    }
    match lookup(flag) {
        Some(value) => format!("{flag}={value}"),
        None => flag.to_string(),
    }
}

/// Builds the spec for a container with ID `container_id` whose assembled
/// root filesystem is at `rootfs`; `passwd` and `group` are the texts of the
/// image's `/etc/passwd` and `/etc/group` (empty when missing).
pub fn build_spec(
    image: &ImageConfig,
    opts: &RunOptions,
    rootfs: &Path,
    passwd: &str,
    group: &str,
    container_id: &str,
) -> Result<Spec, SpecError> {
    if container_id.is_empty() || !container_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SpecError::ContainerId(container_id.to_string()));
    }
    let empty = ContainerConfig::default();
    let config = image.config.as_ref().unwrap_or(&empty);
    let host = opts.host.unwrap_or_else(HostInfo::detect);

    let hostname = match opts.hostname.as_deref() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => container_id.chars().take(12).collect(),
    };

    let mut args = process_args(config, opts)?;
    if opts.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }

    let user_spec = match opts.user.as_deref() {
        Some(u) if !u.is_empty() => u,
        _ => config.user.as_str(),
    };
    let exec_user = user::resolve_user(user_spec, passwd, group)?;
    let mut additional_gids = vec![exec_user.gid];
    additional_gids.extend(exec_user.sgids.iter().copied());
    additional_gids.extend(user::resolve_additional_groups(&opts.group_add, group)?);
    let mut seen = Vec::with_capacity(additional_gids.len());
    additional_gids.retain(|g| {
        let new = !seen.contains(g);
        seen.push(*g);
        new
    });

    let mut caps = caps::capabilities(&opts.cap_add, &opts.cap_drop, opts.privileged)?;
    let grants_all = opts.privileged || opts.cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    if let (true, Some(bounding)) = (grants_all, host.cap_bounding) {
        caps.retain(|cap| caps::number(cap).is_none_or(|n| n < 64 && bounding & (1 << n) != 0));
    }
    let seccomp = if opts.privileged {
        None
    } else {
        Some(seccomp::default_profile(
            &caps,
            &Target::native(host.kernel),
        )?)
    };
    let nofile = host
        .nofile_hard_limit
        .map_or(NOFILE_LIMIT, |hard| hard.min(NOFILE_LIMIT));

    let process = Process {
        terminal: opts.tty,
        user: User {
            uid: exec_user.uid,
            gid: exec_user.gid,
            additional_gids,
        },
        args,
        env: process_env(&config.env, &opts.env, &hostname, opts.tty),
        cwd: working_dir(config, opts)?,
        capabilities: Some(Capabilities {
            bounding: caps.clone(),
            effective: caps.clone(),
            permitted: caps,
            inheritable: Vec::new(),
            ambient: Vec::new(),
        }),
        rlimits: vec![Rlimit {
            kind: "RLIMIT_NOFILE".to_string(),
            hard: nofile,
            soft: nofile,
        }],
        no_new_privileges: !opts.privileged,
    };

    let mut sysctl = BTreeMap::new();
    if opts.network != NetworkNamespace::Host {
        // Docker lets unprivileged processes bind low ports and ping inside
        // their own network namespace.
        sysctl.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        sysctl.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
    }

    let mut resources = oci::Resources {
        devices: device_rules(opts.privileged),
        ..oci::Resources::default()
    };
    opts.resources.apply_to(&mut resources);
    let linux = Linux {
        sysctl,
        resources: Some(resources),
        cgroups_path: Some(
            opts.cgroups_path
                .clone()
                .unwrap_or_else(|| format!("/berth/{container_id}")),
        ),
        namespaces: namespaces(&opts.network),
        seccomp,
        masked_paths: if opts.privileged {
            Vec::new()
        } else {
            MASKED_PATHS.iter().map(|p| p.to_string()).collect()
        },
        readonly_paths: if opts.privileged {
            Vec::new()
        } else {
            READONLY_PATHS.iter().map(|p| p.to_string()).collect()
        },
        rootfs_propagation: rootfs_propagation(&opts.mounts),
    };

    Ok(Spec {
        oci_version: OCI_VERSION.to_string(),
        process,
        root: Root {
            path: rootfs.to_path_buf(),
            readonly: opts.read_only,
        },
        hostname,
        mounts: mounts(opts)?,
        linux,
    })
}

/// The process's argv by Docker's ENTRYPOINT/CMD rules.
pub fn process_args(config: &ContainerConfig, opts: &RunOptions) -> Result<Vec<String>, SpecError> {
    let (entrypoint, cmd): (&[String], &[String]) = match &opts.entrypoint {
        Some(entrypoint) if matches!(entrypoint.as_slice(), [e] if e.is_empty()) => {
            (&[], &opts.command)
        }
        Some(entrypoint) => (entrypoint, &opts.command),
        None if opts.command.is_empty() => (&config.entrypoint, &config.cmd),
        None => (&config.entrypoint, &opts.command),
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// The process's environment by Docker's rules (see the module docs).
pub fn process_env(
    image_env: &[String],
    user_env: &[String],
    hostname: &str,
    tty: bool,
) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    // The container's Env: the user's values, then the image's not overridden.
    let mut config_env: Vec<String> = user_env.to_vec();
    for entry in image_env {
        let k = key(entry);
        if !user_env.iter().any(|u| key(u) == k) {
            config_env.push(entry.clone());
        }
    }

    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    replace_or_append_env(env, &config_env)
}

/// moby's `ReplaceOrAppendEnvValues`: an override replaces the default with
/// the same key in place, or is appended; `KEY` alone removes the default.
fn replace_or_append_env(defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut env: Vec<Option<String>> = defaults.into_iter().map(Some).collect();
    let default_count = env.len();
    let index_of = |env: &[Option<String>], k: &str| {
        env[..default_count].iter().position(|e| {
            e.as_deref()
                .and_then(|e| e.split_once('='))
                .is_some_and(|(ek, _)| ek == k)
        })
    };
    for value in overrides {
        match value.split_once('=') {
            None => {
                if let Some(i) = index_of(&env, value) {
                    env[i] = None;
                }
            }
            Some((k, _)) => match index_of(&env, k) {
                Some(i) => env[i] = Some(value.clone()),
                None => env.push(Some(value.clone())),
            },
        }
    }
    env.into_iter().flatten().collect()
}

fn working_dir(config: &ContainerConfig, opts: &RunOptions) -> Result<String, SpecError> {
    let dir = match opts.workdir.as_deref() {
        Some(w) if !w.is_empty() => w,
        _ => config.working_dir.as_str(),
    };
    if dir.is_empty() {
        return Ok("/".to_string());
    }
    if !dir.starts_with('/') {
        return Err(SpecError::RelativeWorkingDir(dir.to_string()));
    }
    Ok(clean_path(dir))
}

/// Go's `path.Clean` for absolute paths: no `.`, `..`, `//` or trailing `/`.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn namespaces(network: &NetworkNamespace) -> Vec<Namespace> {
    let ns = |kind: &str, path: Option<PathBuf>| Namespace {
        kind: kind.to_string(),
        path,
    };
    let mut list = vec![ns("mount", None)];
    match network {
        NetworkNamespace::New => list.push(ns("network", None)),
        NetworkNamespace::Join(path) => list.push(ns("network", Some(path.clone()))),
        NetworkNamespace::Host => {}
    }
    list.extend([
        ns("uts", None),
        ns("pid", None),
        ns("ipc", None),
        ns("cgroup", None),
    ]);
    list
}

fn device_rules(privileged: bool) -> Vec<DeviceRule> {
    let rule = |allow: bool, major: i64, minor: i64| DeviceRule {
        allow,
        kind: Some("c".to_string()),
        major: Some(major),
        minor: Some(minor),
        access: Some("rwm".to_string()),
    };
    let all = |allow: bool| DeviceRule {
        allow,
        kind: None,
        major: None,
        minor: None,
        access: Some("rwm".to_string()),
    };
    if privileged {
        return vec![all(true)];
    }
    vec![
        all(false),
        rule(true, 1, 5),     // zero
        rule(true, 1, 3),     // null
        rule(true, 1, 9),     // urandom
        rule(true, 1, 8),     // random
        rule(true, 5, 0),     // tty
        rule(true, 5, 1),     // console
        rule(false, 10, 229), // fuse
    ]
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: destination.to_string(),
        kind: kind.to_string(),
        source: source.to_string(),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

fn utf8(path: &Path) -> Result<String, SpecError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| SpecError::NonUtf8Path(path.to_path_buf()))
}

fn mounts(opts: &RunOptions) -> Result<Vec<Mount>, SpecError> {
    // Docker's defaults; /sys and the cgroup mount are writable when privileged.
    let sys_ro = if opts.privileged { "rw" } else { "ro" };
    let shm_size = format!("size={SHM_SIZE}");
    let defaults = [
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[sys_ro, "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ];

    // The user's mounts: network files, then --tmpfs; parents before children.
    let mut user: Vec<Mount> = Vec::new();
    let bind_options: &[&str] = if opts.read_only {
        &["rbind", "ro", "rprivate"]
    } else {
        &["rbind", "rprivate"]
    };
    for (destination, source) in [
        ("/etc/resolv.conf", &opts.resolv_conf),
        ("/etc/hostname", &opts.hostname_file),
        ("/etc/hosts", &opts.hosts_file),
    ] {
        if let Some(source) = source {
            user.push(mount(destination, "bind", &utf8(source)?, bind_options));
        }
    }
    for tmpfs in &opts.tmpfs {
        if !tmpfs.destination.starts_with('/') {
            return Err(SpecError::RelativeMountPath(tmpfs.destination.clone()));
        }
        let mut options = vec!["noexec", "nosuid", "nodev", "rprivate"];
        options.extend(tmpfs.options.split(',').filter(|o| !o.is_empty()));
        let merged = merge_tmpfs_options(&options)?;
        user.push(Mount {
            destination: clean_path(&tmpfs.destination),
            kind: "tmpfs".to_string(),
            source: "tmpfs".to_string(),
            options: merged,
        });
    }
    for m in &opts.mounts {
        user.push(Mount {
            destination: m.target.clone(),
            kind: "bind".to_string(),
            source: utf8(&m.source)?,
            options: m.options(),
        });
    }
    user.sort_by_key(|m| m.destination.split('/').filter(|p| !p.is_empty()).count());

    // A user mount replaces the default at its destination; a user /dev
    // replaces everything under /dev too.
    let user_dev = user.iter().any(|m| m.destination == "/dev");
    let mut all: Vec<Mount> = defaults
        .into_iter()
        .filter(|d| !user.iter().any(|m| m.destination == d.destination))
        .filter(|d| !(user_dev && d.destination.starts_with("/dev/")))
        .collect();
    all.extend(user);

    if let Some(init) = &opts.init {
        all.push(mount(INIT_PATH, "bind", &utf8(init)?, &["bind", "ro"]));
    }
    Ok(all)
}

/// moby: a shared bind needs a shared rootfs, a slave bind a slave one.
fn rootfs_propagation(mounts: &[ResolvedMount]) -> Option<String> {
    let modes: Vec<&str> = mounts
        .iter()
        .filter_map(|m| m.propagation.as_deref())
        .collect();
    if modes.iter().any(|p| matches!(*p, "shared" | "rshared")) {
        Some("shared".to_string())
    } else if modes.iter().any(|p| matches!(*p, "slave" | "rslave")) {
        Some("rslave".to_string())
    } else {
        None
    }
}

/// The collision group of a mount flag: options in one group override each
/// other (`ro`/`rw`, `exec`/`noexec`, all propagation modes, ...).
fn flag_group(option: &str) -> Option<&'static str> {
    Some(match option {
        "ro" | "rw" => "rdonly",
        "suid" | "nosuid" => "nosuid",
        "dev" | "nodev" => "nodev",
        "exec" | "noexec" => "noexec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "remount" => "remount",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "noatime",
        "diratime" | "nodiratime" => "nodiratime",
        "bind" => "bind",
        "rbind" => "rbind",
        "unbindable" => "unbindable",
        "runbindable" => "runbindable",
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => "propagation",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        _ => return None,
    })
}

/// moby's `MergeTmpfsOptions`: the last of each kind of option wins and keeps
/// its position; data options must be tmpfs ones (`size`, `mode`, ...).
pub fn merge_tmpfs_options(options: &[&str]) -> Result<Vec<String>, SpecError> {
    const DATA: [&str; 7] = [
        "size",
        "mode",
        "uid",
        "gid",
        "nr_inodes",
        "nr_blocks",
        "mpol",
    ];
    let mut seen: Vec<&str> = Vec::new();
    let mut merged: Vec<String> = Vec::new();
    for option in options.iter().rev() {
        if *option == "defaults" {
            continue;
        }
        let group = match flag_group(option) {
            Some(group) => group,
            None => match option.split_once('=') {
                Some((key, _)) if DATA.contains(&key) => key,
                _ => return Err(SpecError::TmpfsOption(option.to_string())),
            },
        };
        if !seen.contains(&group) {
            seen.push(group);
            merged.push(option.to_string());
        }
    }
    merged.reverse();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replace_in_place() {
        let env = process_env(
            &["PATH=/img".into(), "A=img".into(), "B=img".into()],
            &["B=user".into(), "C=user".into(), "A".into()],
            "h",
            true,
        );
        assert_eq!(
            env,
            ["PATH=/img", "HOSTNAME=h", "TERM=xterm", "B=user", "C=user"]
        );
        // `-e HOSTNAME=x` and `-e PATH` (unset in the caller) act on defaults.
        let env = process_env(&[], &["HOSTNAME=x".into(), "PATH".into()], "h", false);
        assert_eq!(env, ["HOSTNAME=x"]);
    }

    #[test]
    fn tmpfs_options() {
        let merged = merge_tmpfs_options(&[
            "noexec", "nosuid", "nodev", "rprivate", "rw", "exec", "size=64m",
        ])
        .unwrap();
        assert_eq!(
            merged,
            ["nosuid", "nodev", "rprivate", "rw", "exec", "size=64m"]
        );
        let merged = merge_tmpfs_options(&["size=1m", "mode=1777", "size=2m", "shared"]).unwrap();
        assert_eq!(merged, ["mode=1777", "size=2m", "shared"]);
        assert!(merge_tmpfs_options(&["bogus=1"]).is_err());
        assert!(merge_tmpfs_options(&["nonsense"]).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(clean_path("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean_path("/../.."), "/");
        assert_eq!(
            TmpfsMount::parse("/run:rw,size=1m").unwrap(),
            TmpfsMount {
                destination: "/run".into(),
                options: "rw,size=1m".into()
            }
        );
        assert!(TmpfsMount::parse("run").is_err());
    }

    #[test]
    fn env_flag() {
        assert_eq!(resolve_env_flag("A=1", |_| None), "A=1");
        assert_eq!(resolve_env_flag("A", |_| Some("x".into())), "A=x");
        assert_eq!(resolve_env_flag("A", |_| None), "A");
    }
}
