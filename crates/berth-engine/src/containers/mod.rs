//! Containers: records in the metadata DB (ID, unique name, image), their
//! creation settings and run state in `containers/<id>/`, and the
//! lifecycle Docker's verbs drive — create, start (through a `berth shim`
//! per container, see [`shim`]), attach, wait, kill, stop, pause, rename,
//! remove, prune.

pub mod cleanup;
pub mod config;
pub mod copy;
pub mod exec;
pub mod health;
pub mod inspect;
pub mod logs;
mod names;
mod prepare;
pub mod protocol;
pub mod pty;
pub mod runtime_cli;
pub mod shim;
pub mod state;
pub mod stats;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_oci::{chain_ids, Digest};
use berth_store::{is_container_id, ContainerRecord};

pub use config::{ContainerConfig, RestartPolicy};
pub use protocol::{Reply, Request};
pub use state::{State, Status};

use crate::time::{now, rfc3339};
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

/// A container as `ps` and `inspect` see it.
#[derive(Debug, Clone)]
pub struct Container {
    pub record: ContainerRecord,
    pub config: ContainerConfig,
    /// The observed state (a running state whose shim died reads `dead`).
    pub state: State,
    pub dir: PathBuf,
}

impl Container {
    pub fn short_id(&self) -> &str {
        self.record.id.get(..12).unwrap_or(&self.record.id)
    }
}

/// Removes a container directory, never through a mounted root (that would
/// delete image content): the root is unmounted first, and a root that
/// stays mounted stops the removal.
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    prepare::unmount_rootfs(dir);
    let rootfs = prepare::Layout(dir).rootfs();
    if prepare::is_mounted(&rootfs) {
        return Err(Error::Conflict(format!(
            "{} is still mounted; not removing the container directory",
            rootfs.display()
        )));
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir.display().to_string(), e)),
    }
}

impl Engine {
    /// The directory of a container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.store().containers_dir().join(id)
    }

    /// Creates a container from `config.image` with `name` (generated when
    /// `None`); fills in the ID, image ID, creation time and snapshot
    /// chain. Returns the new ID.
    pub fn create_container(
        &mut self,
        mut config: ContainerConfig,
        name: Option<&str>,
    ) -> Result<String> {
        let image_id = self.resolve_image(&config.image)?;
        let image = self.image_config(&image_id)?;
        let chain = chain_ids(image.diff_ids());
        let lower = match chain.last() {
            Some(top) => {
                self.store()
                    .snapshots()
                    .overlay(self.store().meta(), top)?
                    .lower
            }
            None => {
                return Err(Error::Invalid(format!(
                    "image {} has no layers",
                    config.image
                )))
            }
        };
        let (secs, nanos) = now();
        let (wall, wall_nanos) = crate::time::wall_now_precise();
        let seed = format!(
            "{wall}.{wall_nanos}.{}.{}.{}",
            std::process::id(),
            config.image,
            name.unwrap_or("")
        );
        let id = Digest::sha256_of(seed.as_bytes()).hex().to_string();
        let name = match name {
            Some(n) => names::validate(n)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    ))
                })?
                .to_string(),
            None => self.generated_name(&id)?,
        };
        if config.stop_signal.is_empty() {
            config.stop_signal = image
                .config
                .as_ref()
                .map(|c| c.stop_signal.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "SIGTERM".to_string());
        }
        config.healthcheck = health::merge_healthcheck(
            config.healthcheck.take(),
            image.config.as_ref().and_then(|c| c.healthcheck.as_ref()),
        );
        if config.network.is_empty() {
            config.network = "bridge".to_string();
        }
        config.id = id.clone();
        config.image_id = image_id.to_string();
        config.created = rfc3339(secs, nanos);
        config.lower = lower;
        config.snapshots_dir = self.store().snapshots().dir().to_path_buf();
        let record = ContainerRecord {
            id: id.clone(),
            name,
            image_id,
            created_at: secs
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(nanos)),
        };
        self.store_mut().meta_mut().insert_container(&record)?;
        let made = self
            .store()
            .create_container_dir(&id)
            .map_err(Error::from)
            .and_then(|dir| {
                prepare::create_dirs(&dir)?;
                config.write(&dir)?;
                State::default().write(&dir)
            });
        if let Err(e) = made {
            let _ = remove_dir(&self.container_dir(&id));
            let _ = self.store_mut().meta_mut().remove_container(&id);
            return Err(e);
        }
        Ok(id)
    }

    fn generated_name(&self, id: &str) -> Result<String> {
        let taken: std::collections::HashSet<String> = self
            .store()
            .meta()
            .containers()?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let seed = u64::from_str_radix(id.get(..16).unwrap_or("0"), 16).unwrap_or(0);
        let base = names::generate(seed);
        if !taken.contains(&base) {
            return Ok(base);
        }
        Ok((2..)
            .map(|n| format!("{base}{n}"))
            .find(|n| !taken.contains(n))
            .unwrap_or(base))
    }

    /// Finds a container by full ID, name, or unique ID prefix (Docker's
    /// order).
    pub fn resolve_container(&self, name_or_id: &str) -> Result<ContainerRecord> {
        let meta = self.store().meta();
        if is_container_id(name_or_id) {
            if let Some(c) = meta.container(name_or_id)? {
                return Ok(c);
            }
        }
        let all = meta.containers()?;
        let wanted = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(c) = all.iter().find(|c| c.name == wanted) {
            return Ok(c.clone());
        }
        let matches: Vec<&ContainerRecord> = if name_or_id.is_empty() {
            Vec::new()
        } else {
            all.iter()
                .filter(|c| c.id.starts_with(name_or_id))
                .collect()
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(format!("No such container: {name_or_id}"))),
            _ => Err(Error::Invalid(format!(
                "multiple IDs found with provided prefix: {name_or_id}"
            ))),
        }
    }

    /// A container with its config and observed state.
    pub fn container(&self, name_or_id: &str) -> Result<Container> {
        let record = self.resolve_container(name_or_id)?;
        self.load_container(record)
    }

    fn load_container(&self, record: ContainerRecord) -> Result<Container> {
        let dir = self.container_dir(&record.id);
        let config = if dir.is_dir() {
            ContainerConfig::read(&dir)?
        } else {
            ContainerConfig::default()
        };
        let state = if dir.is_dir() {
            State::observed(&dir)?
        } else {
            // A record whose directory never appeared (a killed create).
            State {
                status: Status::Dead,
                ..State::default()
            }
        };
        Ok(Container {
            record,
            config,
            state,
            dir,
        })
    }

    /// Every container, newest first.
    pub fn list_containers(&self) -> Result<Vec<Container>> {
        self.store()
            .meta()
            .containers()?
            .into_iter()
            .map(|r| self.load_container(r))
            .collect()
    }

    /// Starts the shim of a stopped container and waits until it listens;
    /// the caller then attaches and sends [`Request::Start`].
    pub fn spawn_shim(&self, container: &Container) -> Result<()> {
        if container.state.status.needs_shim() {
            return Err(Error::Conflict(format!(
                "container {} is already running",
                container.record.id
            )));
        }
        if container.state.status == Status::Dead {
            cleanup::cleanup_abandoned(&container.dir);
        }
        let exe = std::env::current_exe()
            .map_err(|e| Error::io("the berth executable".to_string(), e))?;
        let log = container.dir.join("shim.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::io(log.display().to_string(), e))?;
        let mut child = Command::new(exe)
            // mimalloc keeps freed and reserved memory by default; an idle
            // shim should hold only what it uses (~2 MiB instead of ~9).
            // Freed memory goes back half a second later, not at once: the
            // launch allocates a lot and purging every free slows it.
            .env("MIMALLOC_PURGE_DELAY", "500")
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
            .env("MIMALLOC_ALLOW_LARGE_OS_PAGES", "0")
            .env("MIMALLOC_RESERVE_OS_MEMORY", "0")
            .arg("shim")
            .arg(&container.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| Error::io("spawning berth shim".to_string(), e))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        match line.trim_end() {
            "ready" => Ok(()),
            "" => {
                let _ = child.wait();
                Err(Error::Invalid(format!(
                    "berth shim exited before it was ready (see {})",
                    log.display()
                )))
            }
            other => {
                let _ = child.wait();
                Err(Error::Conflict(
                    other.strip_prefix("error: ").unwrap_or(other).to_string(),
                ))
            }
        }
    }

    /// Sends `start` to a shim that is ready.
    pub fn start_spawned(&self, container: &Container) -> Result<(), RunFailure> {
        let reply = protocol::call(&container.dir, &Request::Start)?;
        if reply.error.is_empty() {
            Ok(())
        } else {
            Err(RunFailure {
                status: if reply.status == 0 {
                    exit::ENGINE
                } else {
                    reply.status
                },
                error: Error::Invalid(reply.error),
            })
        }
    }

    /// `berth start` without attaching: spawn the shim and start.
    pub fn start_container(&self, container: &Container) -> Result<(), RunFailure> {
        if container.state.status.needs_shim() {
            return Ok(());
        }
        self.spawn_shim(container)?;
        self.start_spawned(container)
    }

    /// Sends a signal to a running container.
    pub fn kill_container(&self, container: &Container, signal: i32) -> Result<()> {
        if !container.state.status.needs_shim() {
            return Err(Error::Conflict(format!(
                "Cannot kill container: {}: container {} is not running",
                container.record.name, container.record.id
            )));
        }
        let reply = protocol::call(&container.dir, &Request::Kill { signal })?;
        if reply.error.is_empty() {
            Ok(())
        } else {
            Err(Error::Conflict(reply.error))
        }
    }

    /// Docker's stop: the stop signal, then SIGKILL after `timeout`
    /// seconds; returns once the container has exited. A stopped
    /// container is left alone.
    pub fn stop_container(&self, container: &Container, timeout: Option<i64>) -> Result<()> {
        if !container.state.status.needs_shim() {
            return Ok(());
        }
        let signal = signal_number(&container.config.stop_signal).unwrap_or(15);
        let timeout = timeout.unwrap_or_else(|| container.config.stop_timeout());
        let reply = protocol::call(&container.dir, &Request::Stop { signal, timeout })?;
        if reply.error.is_empty() {
            Ok(())
        } else {
            Err(Error::Conflict(reply.error))
        }
    }

    /// Blocks until the container has exited; returns its exit code.
    pub fn wait_container(&self, container: &Container) -> Result<i32> {
        if container.state.status.needs_shim() {
            if let Ok(reply) = protocol::call(&container.dir, &Request::Wait) {
                if reply.error.is_empty() {
                    return Ok(reply.exit_code);
                }
            }
        }
        Ok(State::observed(&container.dir)
            .map(|s| s.exit_code)
            .unwrap_or(container.state.exit_code))
    }

    /// `pause` (`true`) or `unpause`.
    pub fn pause_container(&self, container: &Container, pause: bool) -> Result<()> {
        if !container.state.status.needs_shim() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                container.record.id
            )));
        }
        let request = if pause {
            Request::Pause
        } else {
            Request::Resume
        };
        let reply = protocol::call(&container.dir, &request)?;
        if reply.error.is_empty() {
            Ok(())
        } else {
            Err(Error::Conflict(reply.error))
        }
    }

    /// `berth rm [-f] [-v]`: a running container needs `force` (then it is
    /// killed); a dead one (its shim killed) is cleaned up; with `volumes`
    /// its anonymous volumes go too.
    pub fn remove_container(
        &mut self,
        container: &Container,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let id = &container.record.id;
        if container.state.status.needs_shim() {
            if !force {
                let verb = if container.state.status == Status::Paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is {verb}: stop the container before removing or force remove",
                    container.record.name
                )));
            }
            if container.state.status == Status::Paused {
                let _ = protocol::call(&container.dir, &Request::Resume);
            }
            let _ = protocol::call(
                &container.dir,
                &Request::Stop {
                    signal: 9,
                    timeout: 0,
                },
            );
        }
        if container.state.status == Status::Dead {
            cleanup::cleanup_abandoned(&container.dir);
        }
        // A container that ran may hold a network namespace and endpoints.
        if let Err(e) = berth_net::teardown(self.store_mut().meta_mut(), id, &container.dir) {
            tracing::warn!("releasing the network of {id}: {e}");
        }
        // The record goes first: a directory left by a crash here has no
        // record and is swept at the next start-up.
        self.store_mut().meta_mut().remove_container(id)?;
        remove_dir(&container.dir)?;
        if volumes {
            for name in &container.config.anonymous_volumes {
                if let Err(e) = self.remove_volume(name, true, |_| Vec::new()) {
                    tracing::warn!("removing volume {name}: {e}");
                }
            }
        }
        Ok(())
    }

    /// For each volume some container mounts, the IDs of those containers.
    pub fn volume_users(&self) -> Result<std::collections::HashMap<String, Vec<String>>> {
        use berth_runtime::mounts::MountRequest;
        let mut users: std::collections::HashMap<String, Vec<String>> = Default::default();
        for c in self.list_containers()? {
            let named = c.config.mounts.iter().filter_map(|m| match m {
                MountRequest::Volume(v) => v.name.clone(),
                _ => None,
            });
            let mut names: Vec<String> = named
                .chain(c.config.anonymous_volumes.iter().cloned())
                .collect();
            names.sort();
            names.dedup();
            for n in names {
                users.entry(n).or_default().push(c.record.id.clone());
            }
        }
        Ok(users)
    }

    /// `berth rename`.
    pub fn rename_container(&mut self, container: &Container, new_name: &str) -> Result<()> {
        let name = names::validate(new_name).ok_or_else(|| {
            Error::Invalid(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            ))
        })?;
        if name == container.record.name {
            return Err(Error::Invalid(
                "Renaming a container with the same name as its current name".to_string(),
            ));
        }
        self.store_mut()
            .meta_mut()
            .rename_container(&container.record.id, name)?;
        Ok(())
    }

    /// `berth container prune`: removes every stopped container; returns
    /// their IDs.
    pub fn prune_containers(&mut self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for c in self.list_containers()? {
            if matches!(
                c.state.status,
                Status::Created | Status::Exited | Status::Dead
            ) {
                self.remove_container(&c, false, false)?;
                removed.push(c.record.id);
            }
        }
        Ok(removed)
    }
}

/// A signal by name (`SIGTERM`, `TERM`, `term`) or number.
pub fn signal_number(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            let rt = name.strip_prefix("RTMIN+")?.parse::<i32>().ok()?;
            return (rt <= 30).then_some(34 + rt);
        }
    };
    Some(n)
}
