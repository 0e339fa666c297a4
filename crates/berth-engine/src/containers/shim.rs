//! `berth shim`: the process that owns one running container. Started by
//! `start`/`run` (berth re-executed, in its own session), it outlives the
//! CLI: it creates and starts the container with embedded libcontainer (so
//! it stays single-threaded: no threads, no async runtime), is the parent of
//! its init, holds its stdio, writes the json-file log, serves the socket
//! (attach, wait, kill, stop, pause), records the state atomically, applies
//! the restart policy, and at the end unmounts the root and, with `--rm`,
//! removes the container.
//!
//! Start-up handshake: the shim binds its socket, prints `ready` on stdout
//! (a pipe the CLI reads) and waits for a `start` request, so a client can
//! attach before the container writes anything.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_launch::{launch, Stdio};
use berth_net::{Attachment, ContainerNet, ContainerNetwork, DnsOptions, NetConfig, NetworkMode};
use berth_oci::ImageConfig;
use berth_runtime::mounts::{MountRequest, VolumeRequest};
use berth_runtime::NetworkNamespace;
use rustix::event::{poll, PollFd, PollFlags};

use super::config::ContainerConfig;
use super::health::{self, HealthSettings, Monitor, ProbeEvent};
use super::logs::{log_path, LogWriter};
use super::prepare::{self, runtime_id, Layout};
use super::protocol::{self, frame_header, Reply, Request, STDERR, STDOUT};
use super::pty;
use super::runtime_cli::{is_embedded, CliRuntime, Task};
use super::state::{try_lock_shim, PublishedPort, State, Status};
use super::{exit, RunFailure};
use crate::time::wall_rfc3339;
use crate::{Engine, Error, Result};

/// Where a `-t` container's init sends its pty (in the container directory).
const CONSOLE_SOCKET: &str = "console.sock";

/// How long after a start the shim keeps its store connection.
const STORE_IDLE_AFTER: Duration = Duration::from_secs(2);

/// How long a shim waits for its first `start` before giving up.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The shim's main; returns its process exit status.
pub fn main(dir: &Path) -> i32 {
    let _ = rustix::process::setsid();
    let notify = std::io::stdout();
    match Shim::new(dir) {
        Ok(mut shim) => {
            let _ = writeln!(notify.lock(), "ready");
            detach_stdout();
            shim.run();
            0
        }
        Err(e) => {
            let _ = writeln!(notify.lock(), "error: {e}");
            1
        }
    }
}

/// Points stdout at /dev/null once the CLI has read `ready`, so the CLI's
/// pipe closes.
fn detach_stdout() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// An attached client.
struct Client {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
    /// Still sending stdin.
    stdin_open: bool,
}

/// A client waiting for the container to exit.
struct Waiter {
    stream: UnixStream,
}

/// The container's stdio ends held by the shim.
#[derive(Default)]
struct Pipes {
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    stdin_buf: VecDeque<u8>,
    /// The attached stdin ended (`stdin_once`): close the container's
    /// stdin once the buffer is written.
    close_stdin_when_flushed: bool,
}

struct Shim {
    dir: PathBuf,
    config: ContainerConfig,
    image: ImageConfig,
    state: State,
    _lock: std::fs::File,
    listener: UnixListener,
    log: LogWriter,
    clients: Vec<Client>,
    waiters: Vec<Waiter>,
    /// Replies owed once the container has exited (stop requests).
    running: Option<Task>,
    pidfd: Option<OwnedFd>,
    pipes: Pipes,
    /// When a `stop` escalates to SIGKILL.
    kill_at: Option<Instant>,
    started_once: bool,
    /// The store, opened at the first start (volumes, network records).
    engine: Option<Engine>,
    /// The container's network while it runs (port proxies included).
    net: Option<ContainerNetwork>,
    /// The health check while the container runs.
    health: Option<Monitor>,
    /// The master end of a `-t` container's pty (for resizing).
    pty: Option<OwnedFd>,
    /// When the container last started.
    started_at: Instant,
}

fn root_of(dir: &Path) -> Result<PathBuf> {
    dir.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Invalid(format!("{} is not a container directory", dir.display())))
}

fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
        let _ = rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK);
    }
}

impl Shim {
    fn new(dir: &Path) -> Result<Shim> {
        let lock = lock_with_retries(dir)?;
        let config = ContainerConfig::read(dir)?;
        let image_id: berth_oci::Digest = config
            .image_id
            .parse()
            .map_err(|e| Error::Invalid(format!("image ID {}: {e}", config.image_id)))?;
        let blob = berth_store::Layout::new(&root_of(dir)?).blob(&image_id);
        let bytes = std::fs::read(&blob).map_err(|e| Error::io(blob.display().to_string(), e))?;
        let image = ImageConfig::from_slice(&bytes)?;
        let listener = protocol::listen(dir)?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("shim socket".to_string(), e))?;
        let log = LogWriter::open(&log_path(dir, &config.id))?;
        let mut state = State::read(dir)?;
        state.shim_pid = std::process::id() as i32;
        Ok(Shim {
            dir: dir.to_path_buf(),
            config,
            image,
            state,
            _lock: lock,
            listener,
            log,
            clients: Vec::new(),
            waiters: Vec::new(),
            running: None,
            pidfd: None,
            pipes: Pipes::default(),
            kill_at: None,
            started_once: false,
            engine: None,
            net: None,
            health: None,
            pty: None,
            started_at: Instant::now(),
        })
    }

    fn save_state(&self) {
        if let Err(e) = self.state.write(&self.dir) {
            tracing::error!("recording state: {e}");
        }
    }

    /// Serves until the container is gone for good.
    fn run(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        // Before the first start: attach and wait requests queue up.
        while !self.started_once {
            if Instant::now() > deadline {
                tracing::warn!("no start request; the shim gives up");
                self.finish(false);
                return;
            }
            self.poll_once(Some(Duration::from_millis(500)));
        }
        loop {
            while self.running.is_some() {
                // A shim that stays idle holds no store connection (SQLite's
                // page cache is most of its memory); a short-lived container
                // keeps it for its exit.
                let close_store_at = self
                    .engine
                    .as_ref()
                    .map(|_| self.started_at + STORE_IDLE_AFTER);
                if close_store_at.is_some_and(|t| Instant::now() >= t) {
                    self.engine = None;
                }
                let timeout = [self.kill_at, close_store_at]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|t| t.saturating_duration_since(Instant::now()));
                self.poll_once(timeout);
                if let Some(t) = self.kill_at {
                    if Instant::now() >= t {
                        self.kill_at = None;
                        self.signal(9);
                    }
                }
            }
            let code = self.state.exit_code;
            if !self.config.restart.restarts_after(
                code,
                self.state.restart_count,
                self.state.stopped_by_user,
            ) {
                break;
            }
            // Docker's back-off: 100 ms doubling, reset after 10 s of running.
            let delay = Duration::from_millis(100u64 << self.state.restart_count.min(10));
            self.state.status = Status::Restarting;
            self.save_state();
            let resume_at = Instant::now() + delay;
            while Instant::now() < resume_at && !self.state.stopped_by_user {
                self.poll_once(Some(resume_at.saturating_duration_since(Instant::now())));
            }
            if self.state.stopped_by_user {
                self.state.status = Status::Exited;
                self.save_state();
                break;
            }
            self.state.restart_count += 1;
            if let Err(failure) = self.start() {
                self.record_start_failure(&failure);
                break;
            }
        }
        self.finish(true);
    }

    /// One round of the event loop.
    fn poll_once(&mut self, timeout: Option<Duration>) {
        // Indices: 0 listener, then optional pidfd/stdout/stderr/stdin, then clients.
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        let mut kinds: Vec<Source> = Vec::new();
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        kinds.push(Source::Listener);
        if let Some(fd) = &self.pidfd {
            fds.push(PollFd::new(fd, PollFlags::IN));
            kinds.push(Source::Exit);
        }
        if let Some(fd) = &self.pipes.stdout {
            fds.push(PollFd::new(fd, PollFlags::IN));
            kinds.push(Source::Output(STDOUT));
        }
        if let Some(fd) = &self.pipes.stderr {
            fds.push(PollFd::new(fd, PollFlags::IN));
            kinds.push(Source::Output(STDERR));
        }
        if let Some(fd) = &self.pipes.stdin {
            if !self.pipes.stdin_buf.is_empty() {
                fds.push(PollFd::new(fd, PollFlags::OUT));
                kinds.push(Source::StdinPipe);
            }
        }
        if let Some(net) = &self.net {
            for (fd, flags) in net.proxies.poll_fds() {
                fds.push(PollFd::from_borrowed_fd(fd, flags));
                kinds.push(Source::Proxy(std::os::fd::AsRawFd::as_raw_fd(&fd)));
            }
        }
        if let Some(monitor) = &self.health {
            for (fd, event) in monitor.poll_fds() {
                fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
                kinds.push(Source::Probe(event));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            if c.stdin_open {
                fds.push(PollFd::new(&c.stream, PollFlags::IN));
                kinds.push(Source::ClientStdin(i));
            }
        }
        let proxy_timeout = self.net.as_ref().and_then(|n| n.proxies.poll_timeout());
        let health_timeout = self.health.as_ref().map(Monitor::poll_timeout);
        let timeout = [timeout, proxy_timeout, health_timeout]
            .into_iter()
            .flatten()
            .min();
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        match poll(&mut fds, ts.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return,
            Err(e) => {
                tracing::error!("poll: {e}");
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
        let ready: Vec<(Source, PollFlags)> = fds
            .iter()
            .zip(kinds)
            .map(|(fd, kind)| (kind, fd.revents()))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        let mut exited = false;
        for (kind, revents) in ready {
            match kind {
                Source::Proxy(fd) => {
                    if let Some(net) = &mut self.net {
                        net.proxies.on_ready(fd, revents);
                    }
                }
                Source::Listener => self.accept(),
                Source::Exit => exited = true,
                Source::Output(stream) => self.read_output(stream),
                Source::StdinPipe => self.flush_stdin(),
                Source::ClientStdin(i) => self.read_client_stdin(i),
                Source::Probe(event) => self.on_probe(Some(event)),
            }
        }
        if exited {
            self.on_exit();
        } else {
            self.on_probe(None);
        }
    }

    /// Health-check work: a probe's output or exit (`event`), else
    /// starting a due probe or killing a late one.
    fn on_probe(&mut self, event: Option<ProbeEvent>) {
        let (Some(monitor), Some(state)) = (&mut self.health, &mut self.state.health) else {
            return;
        };
        let changed = match event {
            Some(event) => monitor.on_ready(event, state),
            None => {
                let paused = self.state.status == Status::Paused;
                monitor.tick(
                    &self.dir,
                    &self.config.id,
                    &self.config.runtime,
                    paused,
                    state,
                )
            }
        };
        if changed {
            self.save_state();
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.handle(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::error!("accept: {e}");
                    return;
                }
            }
        }
    }

    fn handle(&mut self, stream: UnixStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let leftover = reader.buffer().to_vec();
        let stream = reader.into_inner();
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                reply(
                    &stream,
                    &Reply::failed(exit::ENGINE, format!("bad request: {e}")),
                );
                return;
            }
        };
        match request {
            Request::Start => {
                if self.running.is_some() {
                    reply(&stream, &Reply::ok());
                    return;
                }
                match self.start() {
                    Ok(()) => reply(&stream, &Reply::ok()),
                    Err(failure) => {
                        reply(
                            &stream,
                            &Reply::failed(failure.status, failure.error.to_string()),
                        );
                        self.record_start_failure(&failure);
                    }
                }
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let _ = stream.set_read_timeout(None);
                let stdin = stdin && self.config.open_stdin;
                if !leftover.is_empty() && stdin {
                    self.pipes.stdin_buf.extend(leftover);
                }
                if stdin {
                    let _ = stream.set_nonblocking(true);
                }
                self.clients.push(Client {
                    stream,
                    stdout,
                    stderr,
                    stdin_open: stdin,
                });
            }
            Request::Wait => {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                self.waiters.push(Waiter { stream });
            }
            Request::Kill { signal } => {
                if self.running.is_none() {
                    reply(
                        &stream,
                        &Reply::failed(
                            exit::ENGINE,
                            format!("container {} is not running", self.config.id),
                        ),
                    );
                    return;
                }
                if signal == 9 || signal == 15 || signal == 2 {
                    self.state.stopped_by_user = true;
                }
                self.signal(signal);
                reply(&stream, &Reply::ok());
            }
            Request::Stop { signal, timeout } => {
                self.state.stopped_by_user = true;
                if self.running.is_none() {
                    reply(&stream, &Reply::exited(self.state.exit_code));
                    return;
                }
                self.signal(signal);
                let secs = u64::try_from(timeout.max(0)).unwrap_or(0);
                let at = Instant::now() + Duration::from_secs(secs);
                self.kill_at = Some(self.kill_at.map_or(at, |t| t.min(at)));
                self.waiters.push(Waiter { stream });
            }
            Request::Pause | Request::Resume => {
                let result = self.pause_or_resume(matches!(request, Request::Pause));
                match result {
                    Ok(()) => reply(&stream, &Reply::ok()),
                    Err(e) => reply(&stream, &Reply::failed(exit::ENGINE, e.to_string())),
                }
            }
            Request::Resize { height, width } => {
                if let Some(pty) = &self.pty {
                    let size = rustix::termios::Winsize {
                        ws_row: height,
                        ws_col: width,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    let _ = rustix::termios::tcsetwinsize(pty, size);
                }
                reply(&stream, &Reply::ok());
            }
        }
    }

    fn pause_or_resume(&mut self, pause: bool) -> Result<()> {
        if self.running.is_none() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                self.config.id
            )));
        }
        let layout = Layout(&self.dir);
        let id = runtime_id(&self.config.id);
        if pause {
            if self.state.status == Status::Paused {
                return Err(Error::Conflict(format!(
                    "Container {} is already paused",
                    self.config.id
                )));
            }
            match &self.running {
                Some(Task::Cli { runtime, .. }) => runtime.pause()?,
                _ => berth_launch::pause(&layout.runtime_state(), id)
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            }
            self.state.status = Status::Paused;
        } else {
            if self.state.status != Status::Paused {
                return Err(Error::Conflict(format!(
                    "Container {} is not paused",
                    self.config.id
                )));
            }
            match &self.running {
                Some(Task::Cli { runtime, .. }) => runtime.resume()?,
                _ => berth_launch::resume(&layout.runtime_state(), id)
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            }
            self.state.status = Status::Running;
        }
        self.save_state();
        Ok(())
    }

    fn signal(&mut self, signal: i32) {
        let Some(running) = &self.running else {
            return;
        };
        if let (Some(pid), Some(sig)) = (
            rustix::process::Pid::from_raw(running.pid()),
            rustix::process::Signal::from_named_raw(signal),
        ) {
            // A paused container gets the signal once thawed; SIGKILL works
            // on frozen tasks too.
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// Mounts, prepares and launches the container.
    fn start(&mut self) -> Result<(), RunFailure> {
        self.started_once = true;
        self.state.stopped_by_user = false;
        self.kill_at = None;
        prepare::mount_rootfs(&self.dir, &self.config)?;
        let opts = self.prepare_run_options()?;
        prepare::write_bundle(&self.dir, &self.config, &self.image, opts)?;
        let layout = Layout(&self.dir);
        let tty = self.config.run.tty;
        let mut stdio = Stdio::default();
        let mut console = None;
        let mut output = None;
        if tty {
            // The container's init makes a pty and sends us its master end.
            console = Some(protocol::listen_at(&self.dir, CONSOLE_SOCKET)?);
            stdio.console_socket = Some(self.dir.join(CONSOLE_SOCKET));
        } else {
            let (stdout_r, stdout_w) = pipe()?;
            let (stderr_r, stderr_w) = pipe()?;
            stdio.stdout = Some(stdout_w);
            stdio.stderr = Some(stderr_w);
            if self.config.open_stdin {
                let (r, w) = pipe()?;
                set_nonblocking(&w);
                stdio.stdin = Some(r);
                self.pipes.stdin = Some(w);
            } else {
                stdio.stdin = Some(dev_null()?);
            }
            set_nonblocking(&stdout_r);
            set_nonblocking(&stderr_r);
            output = Some((stdout_r, stderr_r));
        }
        let running = if is_embedded(&self.config.runtime) {
            Task::Embedded(
                launch(
                    &layout.bundle(),
                    runtime_id(&self.config.id),
                    &layout.runtime_state(),
                    stdio,
                )
                .map_err(|e| Error::Invalid(format!("starting container: {e}")))?,
            )
        } else {
            // The init outlives `runc create`: as subreaper the shim
            // becomes its parent and can wait for it.
            let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
            let runtime = CliRuntime::new(
                &self.config.runtime,
                &layout.runtime_state(),
                runtime_id(&self.config.id),
            )?;
            let pid = runtime.create_and_start(&layout.bundle(), stdio)?;
            Task::Cli { runtime, pid }
        };
        let pidfd = rustix::process::Pid::from_raw(running.pid())
            .and_then(|pid| {
                rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
            })
            .ok_or_else(|| Error::Invalid("pidfd_open on the container's init".to_string()))?;
        if let Some(listener) = console {
            let _ = std::fs::remove_file(self.dir.join(CONSOLE_SOCKET));
            let master = pty::receive(&listener)?;
            set_nonblocking(&master);
            let dup = |fd: &OwnedFd| -> Result<OwnedFd> {
                rustix::io::fcntl_dupfd_cloexec(fd, 3)
                    .map_err(|e| Error::io("pty".to_string(), e.into()))
            };
            self.pipes.stdout = Some(dup(&master)?);
            if self.config.open_stdin {
                self.pipes.stdin = Some(dup(&master)?);
            }
            self.pty = Some(master);
        } else if let Some((stdout_r, stderr_r)) = output {
            self.pipes.stdout = Some(stdout_r);
            self.pipes.stderr = Some(stderr_r);
        }
        self.pidfd = Some(pidfd);
        self.started_at = Instant::now();
        self.state.status = Status::Running;
        self.state.pid = running.pid();
        self.state.started_at = wall_rfc3339();
        self.state.error.clear();
        self.state.exit_code = 0;
        self.state.oom_killed = false;
        self.running = Some(running);
        let shell = self
            .image
            .config
            .as_ref()
            .map(|c| c.shell.clone())
            .unwrap_or_default();
        self.health =
            HealthSettings::from_config(self.config.healthcheck.as_ref(), &shell).map(Monitor::new);
        self.state.health = self.health.as_ref().map(|_| {
            let log = self.state.health.take().map(|h| h.log).unwrap_or_default();
            super::state::Health {
                status: health::STARTING.to_string(),
                failing_streak: 0,
                log,
            }
        });
        self.save_state();
        Ok(())
    }

    fn engine(&mut self) -> Result<&mut Engine> {
        if self.engine.is_none() {
            self.engine = Some(Engine::open(&root_of(&self.dir)?)?);
        }
        self.engine
            .as_mut()
            .ok_or_else(|| Error::Invalid("store not open".to_string()))
    }

    /// Mounts (volumes made and seeded, targets resolved inside the root)
    /// and the network (namespace, endpoint, hosts, resolv.conf, ports).
    fn prepare_run_options(&mut self) -> Result<berth_runtime::RunOptions> {
        let rootfs = Layout(&self.dir).rootfs();
        let image = self.image.clone();
        let requests = self.config.mounts.clone();
        let tmpfs = self.config.run.tmpfs.clone();
        let prepared = self
            .engine()?
            .prepare_mounts(&rootfs, &image, &requests, &tmpfs)?;
        if !prepared.anonymous.is_empty() {
            // Restarts reuse them: record them by name.
            for m in &prepared.mounts {
                if let Some(name) = m.volume.as_ref().filter(|v| prepared.anonymous.contains(v)) {
                    self.config.mounts.push(MountRequest::Volume(VolumeRequest {
                        name: Some(name.clone()),
                        target: m.destination.clone(),
                        read_only: m.read_only,
                        no_copy: true,
                        ..VolumeRequest::default()
                    }));
                }
            }
            self.config
                .anonymous_volumes
                .extend(prepared.anonymous.iter().cloned());
            self.config.write(&self.dir)?;
        }
        let mut opts = self.config.run.clone();
        self.state.mounts = prepared.mounts.clone();
        opts.mounts = prepared.mounts;
        opts.tmpfs = prepared.tmpfs;

        let net = self.setup_network()?;
        opts.network = match (&net.netns, self.config.network.as_str()) {
            (Some(ns), _) => NetworkNamespace::Join(ns.clone()),
            (None, "host") => NetworkNamespace::Host,
            (None, _) => NetworkNamespace::New,
        };
        opts.hosts_file = Some(net.hosts.clone());
        opts.resolv_conf = Some(net.resolv_conf.clone());
        self.state.ports = net
            .proxies
            .bound()
            .iter()
            .map(|b| PublishedPort {
                host_ip: b.host.ip().to_string(),
                host_port: b.host.port(),
                container_port: b.binding.container_port,
                proto: b.binding.protocol.to_string(),
            })
            .collect();
        if let Some(ep) = net.endpoints.first() {
            self.state.ip_address = ep.ip.to_string();
            self.state.ip_prefix_len = ep.prefix_len;
            self.state.gateway = ep.gateway.map(|g| g.to_string()).unwrap_or_default();
            self.state.mac_address = ep.mac.clone();
        }
        self.net = Some(net);
        Ok(opts)
    }

    fn setup_network(&mut self) -> Result<ContainerNetwork> {
        let config = self.config.clone();
        let mode = match config.network.as_str() {
            "host" => NetworkMode::Host,
            "none" => NetworkMode::None,
            name => NetworkMode::Bridge(vec![Attachment {
                network: name.to_string(),
                aliases: config.network_aliases.clone(),
                ip: None,
            }]),
        };
        let mut add_hosts = Vec::new();
        for h in &config.add_hosts {
            add_hosts.push(berth_net::parse_add_host(h, None).map_err(net_error)?);
        }
        let mut ports = Vec::new();
        for p in &config.publish {
            ports.extend(berth_net::parse_publish(p).map_err(net_error)?);
        }
        if config.publish_all {
            let mut exposed = Vec::new();
            if let Some(c) = &self.image.config {
                for key in &c.exposed_ports {
                    exposed.extend(berth_net::parse_exposed(key).map_err(net_error)?);
                }
            }
            ports.extend(berth_net::publish_all(&exposed));
        }
        let dns = DnsOptions {
            servers: config.dns.clone(),
            search: config.dns_search.clone(),
            options: config.dns_options.clone(),
        };
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let hostname = prepare::hostname(&config);
        let dir = self.dir.clone();
        let name = self
            .engine()?
            .store()
            .meta()
            .container(&config.id)?
            .map(|r| r.name)
            .unwrap_or_default();
        let engine = self.engine()?;
        berth_net::setup(
            engine.store_mut().meta_mut(),
            &NetConfig::default(),
            &ContainerNet {
                container_id: &config.id,
                name: &name,
                hostname: &hostname,
                dir: &dir,
                mode: &mode,
                add_hosts: &add_hosts,
                dns: &dns,
                host_resolv_conf: &host_resolv,
                host_hosts: &host_hosts,
                ports: &ports,
            },
        )
        .map_err(net_error)
    }

    /// Releases the network of a container that stopped.
    fn teardown_network(&mut self) {
        self.net = None;
        let id = self.config.id.clone();
        let dir = self.dir.clone();
        if let Ok(engine) = self.engine() {
            if let Err(e) = berth_net::teardown(engine.store_mut().meta_mut(), &id, &dir) {
                tracing::error!("releasing the network: {e}");
            }
        }
    }

    fn record_start_failure(&mut self, failure: &RunFailure) {
        self.teardown_network();
        self.state.error = failure.error.to_string();
        self.state.exit_code = failure.status;
        self.state.pid = 0;
        if self.state.started_at.is_empty() {
            self.state.status = Status::Created;
        } else {
            self.state.status = Status::Exited;
            self.state.finished_at = wall_rfc3339();
        }
        self.save_state();
    }

    fn read_output(&mut self, stream: u8) {
        let slot = if stream == STDOUT {
            &mut self.pipes.stdout
        } else {
            &mut self.pipes.stderr
        };
        let Some(fd) = slot.as_ref() else {
            return;
        };
        let mut buf = [0u8; 65536];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => *slot = None,
            Ok(n) => {
                let data = &buf[..n];
                self.log.write(stream, data);
                let raw = self.pty.is_some();
                self.clients.retain_mut(|c| {
                    let wanted = if stream == STDOUT { c.stdout } else { c.stderr };
                    !wanted
                        || if raw {
                            c.stream.write_all(data).is_ok()
                        } else {
                            send_frame(&mut c.stream, stream, data)
                        }
                });
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(_) => *slot = None,
        }
    }

    fn read_client_stdin(&mut self, i: usize) {
        let Some(client) = self.clients.get_mut(i) else {
            return;
        };
        let mut buf = [0u8; 65536];
        match client.stream.read(&mut buf) {
            Ok(0) => {
                client.stdin_open = false;
                if self.config.stdin_once {
                    self.pipes.stdin_close_pending();
                }
            }
            Ok(n) => {
                // Bounded: a container that never reads its stdin does not
                // make the shim grow.
                if self.pipes.stdin_buf.len() < 4 << 20 {
                    self.pipes.stdin_buf.extend(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => client.stdin_open = false,
        }
        self.flush_stdin();
    }

    fn flush_stdin(&mut self) {
        let Some(fd) = &self.pipes.stdin else {
            self.pipes.stdin_buf.clear();
            return;
        };
        while !self.pipes.stdin_buf.is_empty() {
            let (front, _) = self.pipes.stdin_buf.as_slices();
            match rustix::io::write(fd, front) {
                Ok(n) => {
                    self.pipes.stdin_buf.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    self.pipes.stdin = None;
                    self.pipes.stdin_buf.clear();
                    return;
                }
            }
        }
        if self.pipes.close_stdin_when_flushed {
            self.pipes.stdin = None;
        }
    }

    /// The container's init exited: drain its output, record the status,
    /// release the runtime's resources.
    fn on_exit(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        self.pidfd = None;
        if let Some(mut monitor) = self.health.take() {
            monitor.abort();
        }
        let code = match running.wait() {
            Ok(code) => code,
            Err(e) => {
                tracing::error!("wait: {e}");
                exit::ENGINE
            }
        };
        // With the pid namespace gone, nobody holds the write ends: read to EOF.
        for stream in [STDOUT, STDERR] {
            if let Some(fd) = self.pipes.output(stream) {
                if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
                    let _ = rustix::fs::fcntl_setfl(fd, flags - rustix::fs::OFlags::NONBLOCK);
                }
            }
            while self.pipes.output(stream).is_some() {
                self.read_output(stream);
            }
        }
        self.log.flush();
        self.pipes = Pipes::default();
        self.pty = None;
        self.state.oom_killed = oom_killed(&self.config.id);
        running.delete();
        self.teardown_network();
        self.state.ports.clear();
        self.state.status = Status::Exited;
        self.state.exit_code = code;
        self.state.pid = 0;
        self.state.finished_at = wall_rfc3339();
        self.save_state();
    }

    /// The container is done: tell the clients, release everything, and
    /// remove the container when it was created with `--rm`.
    fn finish(&mut self, started: bool) {
        // Attached clients see the end of the stream first (Docker's CLI
        // reads the wait result after the attach stream closes).
        for c in self.clients.drain(..) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        prepare::unmount_rootfs(&self.dir);
        let code = self.state.exit_code;
        self.teardown_network();
        if self.config.auto_remove && started {
            if let Err(e) = self.remove_after_exit() {
                tracing::error!("removing the container: {e}");
            }
        }
        for w in self.waiters.drain(..) {
            reply(&w.stream, &Reply::exited(code));
        }
    }
}

impl Shim {
    /// `--rm`: the container and its anonymous volumes go.
    fn remove_after_exit(&mut self) -> Result<()> {
        let id = self.config.id.clone();
        let engine = self.engine()?;
        let container = engine.container(&id)?;
        engine.remove_container(&container, true, true)
    }
}

fn net_error(e: berth_net::Error) -> Error {
    match e.kind() {
        berth_oci::ErrorKind::Conflict => Error::Conflict(e.to_string()),
        berth_oci::ErrorKind::NotFound => Error::NotFound(e.to_string()),
        _ => Error::Invalid(e.to_string()),
    }
}

impl Pipes {
    fn output(&self, stream: u8) -> Option<&OwnedFd> {
        if stream == STDOUT {
            self.stdout.as_ref()
        } else {
            self.stderr.as_ref()
        }
    }

    fn stdin_close_pending(&mut self) {
        self.close_stdin_when_flushed = true;
    }
}

/// What a poll slot is.
#[derive(Debug, Clone, Copy)]
enum Source {
    Listener,
    Exit,
    Output(u8),
    StdinPipe,
    ClientStdin(usize),
    Proxy(std::os::fd::RawFd),
    Probe(ProbeEvent),
}

fn reply(mut stream: &UnixStream, r: &Reply) {
    if let Ok(mut line) = serde_json::to_vec(r) {
        line.push(b'\n');
        let _ = stream.write_all(&line);
    }
}

/// Writes one frame; false when the client is gone.
fn send_frame(stream: &mut UnixStream, kind: u8, data: &[u8]) -> bool {
    let header = frame_header(kind, data.len());
    stream.write_all(&header).is_ok() && stream.write_all(data).is_ok()
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunFailure> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("pipe".to_string(), e.into()).into())
}

fn dev_null() -> Result<OwnedFd, RunFailure> {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| Error::io("/dev/null".to_string(), e).into())
}

/// Takes the shim lock, allowing for a moment's contention with a probe.
fn lock_with_retries(dir: &Path) -> Result<std::fs::File> {
    for _ in 0..20 {
        if let Some(lock) = try_lock_shim(dir)? {
            return Ok(lock);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(Error::Conflict(
        "the container is already running".to_string(),
    ))
}

/// Whether the kernel's OOM killer hit the container's cgroup (v1 memory
/// controller's `oom_kill` count, or v2 `memory.events`).
fn oom_killed(id: &str) -> bool {
    super::cleanup::cgroup_dirs(id)
        .iter()
        .flat_map(|cg| [cg.join("memory.oom_control"), cg.join("memory.events")])
        .any(|p| {
            std::fs::read_to_string(p).is_ok_and(|text| {
                text.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
        })
}
