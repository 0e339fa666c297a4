//! `berth exec`: a new process in a running container, started from the
//! calling (single-threaded) process with libcontainer's tenant builder,
//! using the container's own process settings (capabilities, rlimits,
//! no-new-privileges) with the command, environment, user and working
//! directory replaced.

use std::path::Path;

use berth_fs::read_in_root;
use berth_launch::Stdio;
use berth_runtime::{resolve_user, Spec};

use super::prepare::{runtime_id, Layout};
use super::runtime_cli::{is_embedded, CliRuntime};
use super::{exit, Container, RunFailure, Status};
use crate::{Error, Result};

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    /// `-e` values (`KEY=VALUE`; `KEY` alone unsets).
    pub env: Vec<String>,
    /// `-u`; empty is the container's user.
    pub user: String,
    /// `-w`; empty is the container's working directory.
    pub workdir: String,
    pub privileged: bool,
    /// `-t`: a pty (see [`ExecProcess::take_pty`]).
    pub tty: bool,
}

/// A started exec process.
#[derive(Debug)]
pub struct ExecProcess {
    inner: Inner,
    pty: Option<std::os::fd::OwnedFd>,
}

#[derive(Debug)]
enum Inner {
    Embedded(berth_launch::Exec),
    /// `runc exec` in the foreground; its process file goes once it exits.
    Cli {
        child: std::process::Child,
        process_file: std::path::PathBuf,
    },
    /// `runc exec -d` (`-t`): the process itself, the caller's child as
    /// its subreaper.
    Detached {
        pid: i32,
    },
}

impl ExecProcess {
    /// The master end of the process's terminal (`-t`).
    pub fn take_pty(&mut self) -> Option<std::os::fd::OwnedFd> {
        self.pty.take()
    }

    /// The process (under a runtime CLI: the runtime's `exec`, which
    /// exits with the process's status).
    pub fn pid(&self) -> i32 {
        match &self.inner {
            Inner::Embedded(e) => e.pid(),
            Inner::Cli { child, .. } => i32::try_from(child.id()).unwrap_or(0),
            Inner::Detached { pid } => *pid,
        }
    }

    /// Waits for the process; returns its exit code (128 + signal when killed).
    pub fn wait(&mut self) -> Result<i32> {
        match &mut self.inner {
            Inner::Embedded(e) => e
                .wait()
                .map(|s| s.code())
                .map_err(|e| Error::Invalid(e.to_string())),
            Inner::Detached { pid } => super::runtime_cli::wait_pid(*pid),
            Inner::Cli {
                child,
                process_file,
            } => {
                use std::os::unix::process::ExitStatusExt;
                let status = child
                    .wait()
                    .map_err(|e| Error::io("runtime exec".to_string(), e))?;
                let _ = std::fs::remove_file(&*process_file);
                Ok(status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(exit::ENGINE))
            }
        }
    }
}

/// Merges `-e` values into an environment list (replacing, appending,
/// or unsetting `KEY`).
fn merge_env(base: &mut Vec<String>, extra: &[String]) {
    for e in extra {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        base.retain(|b| b.split_once('=').map_or(b.as_str(), |(k, _)| k) != key);
        if e.contains('=') {
            base.push(e.clone());
        }
    }
}

/// Starts `opts.command` in `container`; `stdio` slots left `None` are
/// inherited from the caller.
pub fn exec(
    container: &Container,
    opts: &ExecOptions,
    stdio: Stdio,
) -> Result<ExecProcess, RunFailure> {
    if container.state.status != Status::Running {
        let what = if container.state.status == Status::Paused {
            format!(
                "Container {} is paused, unpause the container before exec",
                container.record.id
            )
        } else {
            format!("container {} is not running", container.record.id)
        };
        return Err(Error::Conflict(what).into());
    }
    exec_in(
        &container.dir,
        &container.record.id,
        &container.config.runtime,
        opts,
        stdio,
    )
}

/// Starts `opts.command` in the running container whose directory is
/// `dir` (the shim's health probes come this way).
pub(crate) fn exec_in(
    dir: &Path,
    id: &str,
    runtime: &str,
    opts: &ExecOptions,
    stdio: Stdio,
) -> Result<ExecProcess, RunFailure> {
    if opts.command.is_empty() {
        return Err(Error::Invalid("exec needs a command to run".to_string()).into());
    }
    let layout = Layout(dir);
    let bundle = layout.bundle().join("config.json");
    let bytes = std::fs::read(&bundle).map_err(|e| Error::io(bundle.display().to_string(), e))?;
    let spec = Spec::from_json(&bytes)
        .map_err(|e| Error::Invalid(format!("{}: {e}", bundle.display())))?;
    let mut process = spec.process.clone();
    process.args = opts.command.clone();
    merge_env(&mut process.env, &opts.env);
    let rootfs = layout.rootfs();
    if !opts.user.is_empty() {
        let user = resolve_user(
            &opts.user,
            &read_in_root(&rootfs, "/etc/passwd"),
            &read_in_root(&rootfs, "/etc/group"),
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        process.user.uid = user.uid;
        process.user.gid = user.gid;
        process.user.additional_gids = user.sgids;
    }
    if !opts.workdir.is_empty() {
        if !opts.workdir.starts_with('/') {
            return Err(Error::Invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                opts.workdir
            ))
            .into());
        }
        super::prepare::refuse_proc_workdir(&rootfs, &opts.workdir)?;
        process.cwd = opts.workdir.clone();
    }
    if opts.privileged {
        if let Some(caps) = &mut process.capabilities {
            caps.effective = caps.bounding.clone();
            caps.permitted = caps.bounding.clone();
        }
    }
    let mut stdio = stdio;
    let mut console = None;
    let console_name = format!("exec-console-{}.sock", std::process::id());
    if opts.tty {
        process.terminal = true;
        if !process.env.iter().any(|e| e.starts_with("TERM=")) {
            process.env.push("TERM=xterm".to_string());
        }
        console = Some(super::protocol::listen_at(dir, &console_name)?);
        stdio = Stdio {
            console_socket: Some(dir.join(&console_name)),
            ..Stdio::default()
        };
    }
    let json = serde_json::to_vec(&process).map_err(|e| Error::Invalid(e.to_string()))?;
    let process_file = dir.join(format!(
        "exec-{}-{}.json",
        std::process::id(),
        crate::time::wall_now_precise().1
    ));
    std::fs::write(&process_file, json)
        .map_err(|e| Error::io(process_file.display().to_string(), e))?;
    if !is_embedded(runtime) {
        let cli = CliRuntime::new(runtime, &layout.runtime_state(), runtime_id(id))?;
        if let (Some(listener), Some(socket)) = (&console, stdio.console_socket.as_ref()) {
            let started = cli.exec_detached(&process_file, socket);
            let _ = std::fs::remove_file(&process_file);
            let pty = started.and_then(|pid| super::pty::receive(listener).map(|pty| (pid, pty)));
            let _ = std::fs::remove_file(dir.join(&console_name));
            let (pid, pty) = pty?;
            return Ok(ExecProcess {
                inner: Inner::Detached { pid },
                pty: Some(pty),
            });
        }
        return match cli.exec(&process_file, stdio) {
            Ok(child) => Ok(ExecProcess {
                inner: Inner::Cli {
                    child,
                    process_file,
                },
                pty: None,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&process_file);
                Err(e.into())
            }
        };
    }
    let started = berth_launch::exec(
        &layout.runtime_state(),
        runtime_id(id),
        &process_file,
        stdio,
    );
    let _ = std::fs::remove_file(&process_file);
    let _ = std::fs::remove_file(dir.join(&console_name));
    match started {
        Ok(inner) => {
            let pty = match &console {
                Some(listener) => Some(super::pty::receive(listener)?),
                None => None,
            };
            Ok(ExecProcess {
                inner: Inner::Embedded(inner),
                pty,
            })
        }
        Err(e) => {
            let text = e.to_string();
            let status = if text.contains("No such file") || text.contains("not found") {
                exit::NOT_FOUND
            } else if text.contains("ermission denied") {
                exit::CANNOT_INVOKE
            } else {
                exit::ENGINE
            };
            Err(RunFailure {
                status,
                error: Error::Invalid(format!("OCI runtime exec failed: exec failed: {text}")),
            })
        }
    }
}
