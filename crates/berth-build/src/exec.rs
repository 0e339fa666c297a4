//! RUN: the step's command in a real container over the step's overlay
//! root, started with embedded libcontainer from this (single-threaded)
//! process, its stdout and stderr read through one pipe for the progress
//! output. Mount points the runtime had to create (`/etc/hosts`,
//! `/etc/resolv.conf`, `/proc`…) are removed again so they do not end up
//! in the layer.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::Path;

use berth_fs::{read_in_root, resolve_in_root, ResolveOptions};
use berth_launch::{launch, Stdio};
use berth_oci::ImageConfig;
use berth_runtime::{build_spec, NetworkNamespace, RunOptions};

use crate::history::RunCommand;
use crate::layer::StepDir;
use crate::run_mounts::PreparedMounts;
use crate::{Error, Result};

/// The hostname RUN steps see (BuildKit's).
pub(crate) const SANDBOX_HOSTNAME: &str = "buildkitsandbox";

/// Lines of output kept to show when the step fails.
pub(crate) const TAIL_LINES: usize = 20;

/// Mount targets the runtime creates when the image lacks them.
const MOUNT_STUBS: [&str; 8] = [
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/proc",
    "/sys",
    "/dev",
    "/dev/shm",
    "/dev/pts",
];

/// How a RUN ended.
#[derive(Debug)]
pub(crate) struct RunResult {
    pub code: i32,
    pub tail: Vec<String>,
}

/// Runs `argv` with `config`'s env, user and working dir in the mounted
/// step root, with the step's `--mount`s; `on_line` sees each output line.
pub(crate) fn run_step(
    step: &StepDir,
    config: &ImageConfig,
    command: &RunCommand,
    network: NetworkNamespace,
    net_files: Option<(&Path, &Path)>,
    mounts: &PreparedMounts,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunResult> {
    let rootfs = &step.rootfs;
    let id = step.id();
    let passwd = read_in_root(rootfs, "/etc/passwd");
    let group = read_in_root(rootfs, "/etc/group");
    let missing: Vec<&str> = MOUNT_STUBS
        .iter()
        .copied()
        .filter(|p| {
            resolve_in_root(rootfs, p, &ResolveOptions::default())
                .map(|h| std::fs::symlink_metadata(h).is_err())
                .unwrap_or(false)
        })
        .collect();
    let etc = |name: &str, text: String| -> Result<std::path::PathBuf> {
        let p = step.path().join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(p.display(), e))?;
        Ok(p)
    };
    // The bridge network wrote its own hosts and resolv.conf.
    let (hosts_file, resolv_conf) = match net_files {
        Some((hosts, resolv)) => (hosts.to_path_buf(), resolv.to_path_buf()),
        None => (
            etc(
                "hosts",
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_string(),
            )?,
            etc(
                "resolv.conf",
                std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )?,
        ),
    };
    let opts = RunOptions {
        entrypoint: Some(command.argv.clone()),
        network,
        hosts_file: Some(hosts_file),
        resolv_conf: Some(resolv_conf),
        hostname: Some(SANDBOX_HOSTNAME.into()),
        mounts: mounts.mounts.clone(),
        tmpfs: mounts.tmpfs.clone(),
        env: mounts.env.clone(),
        ..RunOptions::default()
    };
    let spec = build_spec(config, &opts, rootfs, &passwd, &group, &id)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let cwd = &spec.process.cwd;
    let in_root = resolve_in_root(rootfs, cwd, &ResolveOptions::default())?;
    std::fs::create_dir_all(&in_root).map_err(|e| Error::io(cwd, e))?;
    let json = spec.to_json().map_err(|e| Error::Invalid(e.to_string()))?;
    let config_path = step.path().join("config.json");
    std::fs::write(&config_path, json).map_err(|e| Error::io(config_path.display(), e))?;

    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("pipe", e.into()))?;
    let writer2: OwnedFd =
        rustix::io::fcntl_dupfd_cloexec(&writer, 3).map_err(|e| Error::io("pipe", e.into()))?;
    let stdin = match &command.stdin {
        Some(script) => {
            let path = step.path().join("script");
            std::fs::write(&path, script).map_err(|e| Error::io(path.display(), e))?;
            std::fs::File::open(&path).map_err(|e| Error::io(path.display(), e))?
        }
        None => std::fs::File::open("/dev/null").map_err(|e| Error::io("/dev/null", e))?,
    };
    let stdio = Stdio {
        stdin: Some(stdin.into()),
        stdout: Some(writer),
        stderr: Some(writer2),
        console_socket: None,
    };
    let mut running = launch(step.path(), &id, &step.path().join("state"), stdio)
        .map_err(|e| Error::StepFailed(format!("starting the RUN container: {e}")))?;
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut lines = BufReader::new(std::fs::File::from(reader));
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                on_line(line);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let status = running
        .wait()
        .map_err(|e| Error::StepFailed(format!("waiting for the RUN container: {e}")))?;
    let _ = running.delete();
    for stub in missing {
        if let Ok(host) = resolve_in_root(rootfs, stub, &ResolveOptions::default()) {
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir(&host);
                }
                Ok(m) if m.len() == 0 => {
                    let _ = std::fs::remove_file(&host);
                }
                _ => {}
            }
        }
    }
    Ok(RunResult {
        code: status.code(),
        tail: tail.into_iter().collect(),
    })
}

/// A RUN step's place on the default bridge network.
#[derive(Debug)]
pub(crate) struct StepNetwork {
    net: berth_net::ContainerNetwork,
}

impl StepNetwork {
    /// Attaches the step's container (its directory holds the namespace
    /// and the hosts and resolv.conf files) to the default bridge.
    pub fn setup(meta: &mut berth_store::Metadata, step: &StepDir) -> Result<StepNetwork> {
        let id = step.id();
        let mode = berth_net::NetworkMode::Bridge(vec![berth_net::Attachment {
            network: berth_net::DEFAULT_NETWORK.to_string(),
            aliases: Vec::new(),
            ip: None,
        }]);
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let net = berth_net::setup(
            meta,
            &berth_net::NetConfig::default(),
            &berth_net::ContainerNet {
                container_id: &id,
                name: &id,
                hostname: SANDBOX_HOSTNAME,
                dir: step.path(),
                mode: &mode,
                add_hosts: &[],
                dns: &berth_net::DnsOptions::default(),
                host_resolv_conf: &host_resolv,
                host_hosts: "",
                ports: &[],
            },
        )
        .map_err(|e| Error::Invalid(format!("RUN network: {e}")))?;
        if net.netns.is_none() {
            return Err(Error::Invalid("RUN network: no namespace".to_string()));
        }
        Ok(StepNetwork { net })
    }

    pub fn netns(&self) -> &Path {
        self.net.netns.as_deref().unwrap_or(Path::new(""))
    }

    /// The hosts and resolv.conf files to bind-mount.
    pub fn files(&self) -> (&Path, &Path) {
        (&self.net.hosts, &self.net.resolv_conf)
    }

    /// Leaves the network (the namespace goes, the address is freed).
    pub fn teardown(self, meta: &mut berth_store::Metadata, step: &StepDir) {
        drop(self.net);
        if let Err(e) = berth_net::teardown(meta, &step.id(), step.path()) {
            tracing::warn!("releasing a RUN step's network: {e}");
        }
    }
}
