//! A container's run state (`containers/<id>/state.json`), written
//! atomically by its shim while the shim lives and by the CLI otherwise,
//! and whether the shim is alive (it holds `shim.lock` for its lifetime).

use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Docker's machine states (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// States in which a shim must be alive.
    pub fn needs_shim(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The health of a container with a health check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthProbe>,
}

/// One health-check run, as `docker inspect` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// A published port as bound by the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

/// What `state.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub status: Status,
    /// The container's init in the host's pid namespace; 0 when not running.
    pub pid: i32,
    /// The shim's pid while it lives.
    pub shim_pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Why the last start failed.
    pub error: String,
    /// RFC 3339; empty when never.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    pub health: Option<Health>,
    pub ports: Vec<PublishedPort>,
    /// The address on the container's network, when it has one.
    pub ip_address: String,
    pub gateway: String,
    pub ip_prefix_len: u8,
    pub mac_address: String,
    /// The binds and volumes of the last start (`inspect`'s `Mounts`).
    pub mounts: Vec<berth_runtime::mounts::ResolvedMount>,
    /// Set by `stop`/`kill` through the shim: the restart policy does not
    /// apply to this exit.
    pub stopped_by_user: bool,
}

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const SHIM_LOCK: &str = "shim.lock";

impl State {
    /// Reads `dir/state.json`; a container without one was never started.
    pub fn read(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io(path.display().to_string(), e)),
        }
    }

    /// Replaces `dir/state.json` atomically. Not fsynced: it changes at
    /// every start and exit, and [`State::observed`] checks it against the
    /// shim's lock anyway.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let bytes =
            serde_json::to_vec(self).map_err(|e| Error::Invalid(format!("encoding state: {e}")))?;
        berth_fs::replace_volatile(dir.join(STATE_FILE), &bytes)?;
        Ok(())
    }

    /// The state as it really is: a state that needs a shim whose shim is
    /// gone (killed) is `dead`.
    pub fn observed(dir: &Path) -> Result<State> {
        let mut state = State::read(dir)?;
        if state.status.needs_shim() && !shim_alive(dir) {
            state.status = Status::Dead;
        }
        Ok(state)
    }
}

/// Takes the shim lock of `dir` without waiting; `None` when a live shim
/// holds it. The lock goes with the returned file (and with a killed
/// process).
pub fn try_lock_shim(dir: &Path) -> Result<Option<File>> {
    let path = dir.join(SHIM_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(Error::io(path.display().to_string(), e.into())),
    }
}

/// Whether a shim holds `dir/shim.lock`.
pub fn shim_alive(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(SHIM_LOCK)) else {
        return false;
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(_) => true,
    }
}
