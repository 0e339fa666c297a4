//! Creates, starts, waits for and deletes one OCI container with youki's
//! `libcontainer`, embedded in the calling process (the `berth shim`).
//!
//! # Process model
//!
//! [`launch`] must be called from a **single-threaded** process: libcontainer
//! `clone(2)`s an intermediate process that runs ordinary Rust code
//! (allocations, file I/O), which is only sound when no other thread can hold
//! a lock at the time of the clone. This crate spawns no threads and uses no
//! async runtime. libcontainer 0.7 itself spawns a thread in one case only:
//! an OCI hook with a `timeout` (it waits for the hook process on a helper
//! thread). Its other `thread::spawn`s are in its unit tests.
//!
//! The processes: the caller clones the intermediate process
//! (`youki:[1:INTER]`), which joins/creates the namespaces and clones the
//! container's init with `CLONE_PARENT`, so **the init process is a child of
//! the caller** and the caller reaps it with [`Running::wait`]. The
//! intermediate process is reaped by libcontainer before [`launch`] returns.
//!
//! When creating fails, libcontainer leaves those two processes unreaped
//! (and the init possibly alive); [`launch`] then SIGKILLs and reaps every
//! child of the caller that appeared during the attempt.
//!
//! Side effects of [`launch`] on the calling process, done by libcontainer:
//! - `prctl(PR_SET_DUMPABLE, 0)` whenever the spec has namespaces (kept
//!   afterwards: the shim is not ptrace-able by non-root and its `/proc/PID`
//!   entries belong to root);
//! - `process.oomScoreAdj` from the spec is written to the *caller's*
//!   `/proc/self/oom_score_adj` (inherited by the container).
//!
//! # Cgroups
//!
//! libcontainer detects the host's cgroup layout itself. On a hybrid host
//! (cgroup v1 controllers + a v2 `unified` hierarchy) it uses the **v1**
//! manager; on a pure v2 host the v2 (cgroupfs) manager, since we never ask
//! for systemd. The spec should carry `linux.cgroupsPath` (e.g.
//! `/berth/<id>`): without it libcontainer uses `:youki:<id>`, which is a
//! systemd-style name and becomes a literal directory name under cgroupfs.
//!
//! # Stdio
//!
//! The descriptors in [`Stdio`] are handed to the container's init as fds
//! 0/1/2 and closed in the caller when [`launch`] returns, so a pipe's read
//! end sees EOF once the container (and anything it forked holding the pipe)
//! exits. A `None` slot means the container inherits the caller's own fd.
//!
//! # Spec rules (libcontainer 0.7)
//!
//! - Omit `process.noNewPrivileges` when it is false (as moby does): an
//!   explicit `false` makes libcontainer load the seccomp filter after
//!   dropping capabilities without `no_new_privs`, which the kernel refuses
//!   (the container fails to start). libcontainer tests presence, not value.
//! - Set `linux.cgroupsPath` (see above).
//!
//! # Building
//!
//! seccomp comes from libseccomp through `libseccomp-sys`, which reads two
//! environment variables at build time (Debian: `apt-get install
//! libseccomp-dev`):
//!
//! ```text
//! LIBSECCOMP_LINK_TYPE=static                     # default: dylib
//! LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu   # where libseccomp.a is
//! ```
//!
//! With both set the binary needs no `libseccomp.so.2` at run time. Without
//! them it links `libseccomp.so` dynamically (still needs `libseccomp-dev`
//! to build). libcontainer needs Rust 1.85 (edition 2024).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;
use libcontainer::signal::Signal as LcSignal;
use libcontainer::syscall::syscall::SyscallType;
use rustix::io::Errno;
use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions};

/// The version of the libcontainer crate this was built and tested with.
pub const LIBCONTAINER_VERSION: &str = "0.7.0";

/// Errors from launching or managing a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libcontainer refused or failed (spec, namespaces, cgroups, seccomp, exec…).
    #[error("container {id}: {op}: {source}")]
    Container {
        /// The container id.
        id: String,
        /// What was being done.
        op: &'static str,
        /// libcontainer's error (boxed: it is large).
        #[source]
        source: Box<LibcontainerError>,
    },
    /// The state root could not be created.
    #[error("state root {path}: {source}")]
    StateRoot {
        /// The state root.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// libcontainer reported no or an invalid pid for the container's init.
    #[error("container {0}: no init pid after create")]
    NoPid(String),
    /// `waitpid` on the container's init failed.
    #[error("container {id}: waitpid({pid}): {source}")]
    Wait {
        /// The container id.
        id: String,
        /// The init pid.
        pid: i32,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// A signal number libcontainer does not know.
    #[error("invalid signal {0}")]
    InvalidSignal(i32),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The container's standard streams. Each `Some` fd becomes the container
/// init's fd 0, 1 or 2 (pipes, files, sockets, `/dev/null`…).
#[derive(Debug, Default)]
pub struct Stdio {
    /// Becomes fd 0 in the container.
    pub stdin: Option<OwnedFd>,
    /// Becomes fd 1 in the container.
    pub stdout: Option<OwnedFd>,
    /// Becomes fd 2 in the container.
    pub stderr: Option<OwnedFd>,
    /// For a spec with `process.terminal`: a listening unix socket to which
    /// the container's init sends the master end of its new pty
    /// (`SCM_RIGHTS`); fds 0–2 then are the pty's slave end.
    pub console_socket: Option<PathBuf>,
}

impl Stdio {
    /// Hands the descriptors (and the console socket) to a container builder.
    fn apply(self, mut builder: ContainerBuilder) -> ContainerBuilder {
        if let Some(fd) = self.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = self.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = self.stderr {
            builder = builder.with_stderr(fd);
        }
        if let Some(path) = self.console_socket {
            builder = builder.with_console_socket(Some(path));
        }
        builder
    }
}

/// How the container's init process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The exit code as Docker reports it: the code itself, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => 128 + signal,
        }
    }
}

/// A created and started container whose init has not been reaped yet (or
/// has, if [`Running::wait`] returned).
#[derive(Debug)]
pub struct Running {
    container: Container,
    pid: i32,
    status: Option<ExitStatus>,
}

fn container_error<'a>(
    id: &'a str,
    op: &'static str,
) -> impl FnOnce(LibcontainerError) -> Error + 'a {
    move |source| Error::Container {
        id: id.to_owned(),
        op,
        source: Box::new(source),
    }
}

/// Creates the container described by the OCI bundle at `bundle`
/// (`config.json` + rootfs), with its state under `state_root/<id>`, and
/// starts it. Returns once the container's process has been told to exec.
///
/// `id` must be made of `[A-Za-z0-9_+.-]`. On failure libcontainer removes
/// the state directory and cgroup it created.
pub fn launch(bundle: &Path, id: &str, state_root: &Path, stdio: Stdio) -> Result<Running> {
    std::fs::create_dir_all(state_root).map_err(|source| Error::StateRoot {
        path: state_root.to_owned(),
        source,
    })?;
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .validate_id()
        .map_err(container_error(id, "invalid id"))?
        .with_root_path(state_root)
        .map_err(container_error(id, "state root"))?;
    builder = stdio.apply(builder);
    let before = children();
    let mut container = match builder
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
    {
        Ok(container) => container,
        Err(source) => {
            reap_new_children(&before);
            return Err(Error::Container {
                id: id.to_owned(),
                op: "create",
                source: Box::new(source),
            });
        }
    };
    let pid = match container.pid() {
        Some(pid) if pid.as_raw() > 0 => pid.as_raw(),
        _ => {
            // Best effort: don't leave a created container behind.
            let _ = container.delete(true);
            reap_new_children(&before);
            return Err(Error::NoPid(id.to_owned()));
        }
    };
    if let Err(source) = container.start() {
        let _ = container.delete(true);
        // The init was SIGKILLed by delete; reap it so it is no zombie.
        reap_new_children(&before);
        return Err(Error::Container {
            id: id.to_owned(),
            op: "start",
            source: Box::new(source),
        });
    }
    Ok(Running {
        container,
        pid,
        status: None,
    })
}

/// The caller's children (`/proc/self/task/<tid>/children`; this process is
/// single-threaded, so its pid is its only tid). Empty where the kernel lacks
/// `CONFIG_PROC_CHILDREN`.
fn children() -> Vec<i32> {
    let path = format!("/proc/self/task/{}/children", std::process::id());
    std::fs::read_to_string(path)
        .map(|text| {
            text.split_ascii_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// When `build()` fails, libcontainer returns without reaping the
/// intermediate process and the container's init (both our children, the
/// init through `CLONE_PARENT`), and the init may still be alive waiting on
/// its channel. Kill and reap every child that was not there before.
fn reap_new_children(before: &[i32]) {
    for pid in children() {
        if before.contains(&pid) {
            continue;
        }
        if let Some(child) = Pid::from_raw(pid) {
            let _ = kill_process(child, Signal::KILL);
            let _ = reap(pid);
        }
    }
}

/// Blocks until `pid` (a child of ours) exits; retries on EINTR.
fn reap(pid: i32) -> std::io::Result<ExitStatus> {
    let child = Pid::from_raw(pid).ok_or_else(|| std::io::Error::from(Errno::INVAL))?;
    loop {
        match waitpid(Some(child), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return Ok(ExitStatus::Exited(code));
                }
                if let Some(signal) = status.terminating_signal() {
                    return Ok(ExitStatus::Signaled(signal));
                }
                // Stopped/continued are not reported without WUNTRACED /
                // WCONTINUED; wait again if they ever are.
            }
            Ok(None) => {}
            Err(Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

impl Running {
    /// The container's init pid, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The container id.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// Blocks until the container's init exits and reaps it. Calling it
    /// again returns the same status.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = reap(self.pid).map_err(|source| Error::Wait {
            id: self.container.id().to_owned(),
            pid: self.pid,
            source,
        })?;
        self.status = Some(status);
        Ok(status)
    }

    /// Sends `signal` to the container's init. A no-op once it was reaped.
    pub fn kill(&mut self, signal: i32) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let sig = LcSignal::try_from(signal).map_err(|_| Error::InvalidSignal(signal))?;
        let id = self.container.id().to_owned();
        self.container
            .kill(sig, false)
            .map_err(container_error(&id, "kill"))
    }

    /// Removes the container's state directory and cgroup. A container still
    /// running is SIGKILLed (every process in its cgroup) and reaped first.
    pub fn delete(mut self) -> Result<()> {
        let id = self.container.id().to_owned();
        if self.status.is_none() {
            let sig = LcSignal::try_from(9).map_err(|_| Error::InvalidSignal(9))?;
            self.container
                .kill(sig, true)
                .map_err(container_error(&id, "kill before delete"))?;
            self.wait()?;
        }
        self.container
            .delete(false)
            .map_err(container_error(&id, "delete"))
    }
}

/// A process started in a running container by [`exec`]; a child of the
/// caller until [`Exec::wait`] reaps it.
#[derive(Debug)]
pub struct Exec {
    pid: i32,
    status: Option<ExitStatus>,
}

impl Exec {
    /// The process's pid, in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Blocks until the process exits and reaps it.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = reap(self.pid).map_err(|source| Error::Wait {
            id: "exec".to_owned(),
            pid: self.pid,
            source,
        })?;
        self.status = Some(status);
        Ok(status)
    }
}

/// Starts the OCI process described by `process_json` (a `process` object
/// of the runtime spec: args, env, cwd, user, capabilities…) inside the
/// running container `id` whose state is under `state_root`. Like
/// [`launch`], call it from a single-threaded process.
pub fn exec(state_root: &Path, id: &str, process_json: &Path, stdio: Stdio) -> Result<Exec> {
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(container_error(id, "state root"))?;
    builder = stdio.apply(builder);
    let before = children();
    match builder
        .as_tenant()
        .with_process(Some(process_json))
        .with_detach(true)
        .build()
    {
        Ok(pid) => Ok(Exec {
            pid: pid.as_raw(),
            status: None,
        }),
        Err(source) => {
            reap_new_children(&before);
            Err(Error::Container {
                id: id.to_owned(),
                op: "exec",
                source: Box::new(source),
            })
        }
    }
}

fn load(state_root: &Path, id: &str) -> Result<Container> {
    Container::load(state_root.join(id)).map_err(container_error(id, "load state"))
}

/// Freezes every process of the container (`docker pause`).
pub fn pause(state_root: &Path, id: &str) -> Result<()> {
    load(state_root, id)?
        .pause()
        .map_err(container_error(id, "pause"))
}

/// Thaws a paused container (`docker unpause`).
pub fn resume(state_root: &Path, id: &str) -> Result<()> {
    load(state_root, id)?
        .resume()
        .map_err(container_error(id, "resume"))
}
