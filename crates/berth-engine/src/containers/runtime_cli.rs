//! `--runtime NAME`: a container run by an OCI runtime CLI on PATH (`runc`)
//! instead of the embedded libcontainer. The shim drives it as containerd's
//! shim drives runc: `create` with the container's stdio handed over as the
//! runtime's own (runc passes it on to the init), `start`, wait on the init
//! (the shim is its subreaper, so it is the shim's child once `create`
//! exits), `kill`, `pause`/`resume`, `exec`, and `delete -f` at the end.
//!
//! [`Task`] is what the shim holds while the container runs, under either
//! runtime.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use berth_launch::{Running, Stdio};

use crate::{Error, Result};

/// Names that mean the embedded runtime.
pub fn is_embedded(name: &str) -> bool {
    matches!(name, "" | "berth")
}

/// The runtime's binary: a path, or a name looked up on PATH.
pub fn find_runtime(name: &str) -> Result<PathBuf> {
    let unknown = || Error::Invalid(format!("unknown or invalid runtime name: {name}"));
    if name.contains('/') {
        let path = PathBuf::from(name);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(unknown())
        };
    }
    let dirs = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&dirs)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(unknown)
}

/// A short name for a unix socket whose path may not fit `sun_path` (108
/// bytes; container directories under a deep root do not): a symlink in
/// `/run` (or the temp dir), which `connect` follows. Removed on drop.
struct ShortSocketPath(PathBuf);

impl ShortSocketPath {
    fn new(socket: &Path) -> Result<ShortSocketPath> {
        let name = format!(
            "berth-{}-{}.sock",
            std::process::id(),
            crate::time::wall_now_precise().1
        );
        let mut last = None;
        for dir in [PathBuf::from("/run"), std::env::temp_dir()] {
            let link = dir.join(&name);
            match std::os::unix::fs::symlink(socket, &link) {
                Ok(()) => return Ok(ShortSocketPath(link)),
                Err(e) => last = Some(Error::io(link.display().to_string(), e)),
            }
        }
        Err(last.unwrap_or_else(|| Error::Invalid("no directory for a socket link".to_string())))
    }
}

impl Drop for ShortSocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One container under a runtime CLI.
#[derive(Debug, Clone)]
pub struct CliRuntime {
    binary: PathBuf,
    /// The runtime's state root (`--root`).
    root: PathBuf,
    /// The log the runtime writes its errors to (`--log`, JSON lines).
    log: PathBuf,
    id: String,
}

impl CliRuntime {
    pub fn new(name: &str, root: &Path, id: &str) -> Result<CliRuntime> {
        Ok(CliRuntime {
            binary: find_runtime(name)?,
            root: root.to_path_buf(),
            log: root.with_extension("log"),
            id: id.to_string(),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// The last error the runtime logged.
    fn last_error(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["level"] == "error")
            .and_then(|v| v["msg"].as_str().map(str::to_string))
            .unwrap_or_else(|| "the runtime failed".to_string())
    }

    fn run(&self, op: &str, args: &[&str]) -> Result<()> {
        let status = self
            .command()
            .arg(op)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| Error::io(self.binary.display().to_string(), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "OCI runtime {op} failed: {}",
                self.last_error()
            )))
        }
    }

    /// `create` then `start`; returns the init's pid. The caller must be a
    /// child subreaper to wait for it.
    pub fn create_and_start(&self, bundle: &Path, stdio: Stdio) -> Result<i32> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| Error::io(self.root.display().to_string(), e))?;
        let pid_file = self.root.join(format!("{}.pid", self.id));
        let mut cmd = self.command();
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        let mut _socket_link = None;
        if let Some(socket) = &stdio.console_socket {
            // runc sends the pty's master end there during `create`.
            let link = ShortSocketPath::new(socket)?;
            cmd.arg("--console-socket").arg(&link.0);
            _socket_link = Some(link);
        }
        cmd.arg(&self.id);
        let io = |fd: Option<std::os::fd::OwnedFd>| {
            fd.map_or_else(std::process::Stdio::null, std::process::Stdio::from)
        };
        cmd.stdin(io(stdio.stdin))
            .stdout(io(stdio.stdout))
            .stderr(io(stdio.stderr));
        let status = cmd
            .status()
            .map_err(|e| Error::io(self.binary.display().to_string(), e))?;
        drop(cmd);
        if !status.success() {
            return Err(Error::Invalid(format!(
                "OCI runtime create failed: {}",
                self.last_error()
            )));
        }
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .ok_or_else(|| Error::Invalid(format!("{}: no pid", pid_file.display())))?;
        if let Err(e) = self.run("start", &[&self.id]) {
            self.delete();
            return Err(e);
        }
        Ok(pid)
    }

    pub fn pause(&self) -> Result<()> {
        self.run("pause", &[&self.id])
    }

    pub fn resume(&self) -> Result<()> {
        self.run("resume", &[&self.id])
    }

    /// `delete -f`: kills what is left and releases the runtime's state.
    pub fn delete(&self) {
        let _ = self.run("delete", &["-f", &self.id]);
    }

    /// `exec --process FILE` in the foreground: the returned child is the
    /// runtime, which exits with the process's status. With a console
    /// socket (`-t`) runc only hands the pty over when it detaches: use
    /// [`CliRuntime::exec_detached`].
    pub fn exec(&self, process_json: &Path, stdio: Stdio) -> Result<Child> {
        let mut cmd = self.command();
        cmd.arg("exec")
            .arg("--process")
            .arg(process_json)
            .arg(&self.id);
        if let Some(fd) = stdio.stdin {
            cmd.stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            cmd.stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            cmd.stderr(fd);
        }
        cmd.spawn()
            .map_err(|e| Error::io(self.binary.display().to_string(), e))
    }

    /// `exec -d --tty --console-socket`: runc sends the pty's master end to
    /// `console_socket` and exits; the process, orphaned, becomes the
    /// caller's child (this makes the caller a subreaper). Returns its pid.
    pub fn exec_detached(&self, process_json: &Path, console_socket: &Path) -> Result<i32> {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        let pid_file = process_json.with_extension("pid");
        let link = ShortSocketPath::new(console_socket)?;
        let status = self
            .command()
            .arg("exec")
            .arg("-d")
            .arg("--tty")
            .arg("--console-socket")
            .arg(&link.0)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--process")
            .arg(process_json)
            .arg(&self.id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| Error::io(self.binary.display().to_string(), e))?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        let _ = std::fs::remove_file(&pid_file);
        match pid {
            Some(pid) if status.success() => Ok(pid),
            _ => Err(Error::Invalid(format!(
                "OCI runtime exec failed: {}",
                self.last_error()
            ))),
        }
    }
}

/// Docker's status code for a wait status (128 + signal when killed).
fn code_of(status: rustix::process::WaitStatus) -> Option<i32> {
    status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
}

/// Reaps child `pid`; its exit code.
pub fn wait_pid(pid: i32) -> Result<i32> {
    let child =
        rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::Invalid(format!("pid {pid}")))?;
    loop {
        match rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = code_of(status) {
                    return Ok(code);
                }
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::Invalid(format!("wait for pid {pid}: {e}"))),
        }
    }
}

/// As subreaper the shim also inherits the runtime's short-lived helper
/// processes; once the init is reaped, those that exited are reaped too.
fn reap_orphans() {
    while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
}

/// The running container the shim holds.
#[derive(Debug)]
pub enum Task {
    Embedded(Running),
    Cli { runtime: CliRuntime, pid: i32 },
}

impl Task {
    pub fn pid(&self) -> i32 {
        match self {
            Task::Embedded(r) => r.pid(),
            Task::Cli { pid, .. } => *pid,
        }
    }

    /// Reaps the init; its exit code.
    pub fn wait(&mut self) -> Result<i32> {
        match self {
            Task::Embedded(r) => r
                .wait()
                .map(|s| s.code())
                .map_err(|e| Error::Invalid(e.to_string())),
            Task::Cli { pid, .. } => {
                let code = wait_pid(*pid)?;
                reap_orphans();
                Ok(code)
            }
        }
    }

    /// Releases the runtime's state.
    pub fn delete(self) {
        match self {
            Task::Embedded(r) => {
                let _ = r.delete();
            }
            Task::Cli { runtime, .. } => runtime.delete(),
        }
    }
}
