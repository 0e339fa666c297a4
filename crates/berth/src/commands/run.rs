//! `berth run` and `berth create`: the flags become a container config;
//! `run` then starts it through its shim, attached (output streamed,
//! signals forwarded, berth exits with the container's status) or detached
//! (`-d`: prints the ID).

use std::io::{Read, Write};
use std::path::Path;

use berth_engine::containers::protocol::{self, Request, STDERR};
use berth_engine::containers::{signal_number, Container, ContainerConfig, RestartPolicy};
use berth_engine::Engine;
use berth_oci::Healthcheck;
use berth_runtime::{resolve_env_flag, RunOptions, TmpfsMount};

use crate::cli::RunArgs;
use crate::exit::CliError;

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::with_code(125, e.to_string())
}

/// `--env-file`: `KEY=VALUE` lines, `KEY` alone takes the caller's value,
/// `#` comments and blank lines skipped (Docker's format: no quoting).
pub fn read_env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| usage(format!("open {}: {e}", file.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.split_once('=').map_or(line, |(k, _)| k);
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(usage(format!(
                    "{}:{}: variable '{key}' contains whitespaces",
                    file.display(),
                    n + 1
                )));
            }
            out.push(resolve_env_flag(line, |k| std::env::var(k).ok()));
        }
    }
    Ok(out)
}

fn duration_flag(name: &str, value: &Option<String>) -> Result<i64, CliError> {
    match value {
        None => Ok(0),
        Some(v) => berth_dockerfile::instructions::parse_go_duration(v)
            .filter(|d| *d >= 0)
            .ok_or_else(|| usage(format!("invalid argument \"{v}\" for \"--{name}\" flag: time: invalid duration \"{v}\""))),
    }
}

fn healthcheck(args: &RunArgs) -> Result<Option<Healthcheck>, CliError> {
    if args.no_healthcheck {
        if args.health_cmd.is_some() {
            return Err(usage("--no-healthcheck conflicts with --health-* options"));
        }
        return Ok(Some(Healthcheck {
            test: vec!["NONE".to_string()],
            ..Healthcheck::default()
        }));
    }
    let any = args.health_cmd.is_some()
        || args.health_interval.is_some()
        || args.health_timeout.is_some()
        || args.health_start_period.is_some()
        || args.health_start_interval.is_some()
        || args.health_retries.is_some();
    if !any {
        return Ok(None);
    }
    Ok(Some(Healthcheck {
        test: args
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
            .unwrap_or_default(),
        interval: duration_flag("health-interval", &args.health_interval)?,
        timeout: duration_flag("health-timeout", &args.health_timeout)?,
        start_period: duration_flag("health-start-period", &args.health_start_period)?,
        start_interval: duration_flag("health-start-interval", &args.health_start_interval)?,
        retries: args.health_retries.unwrap_or(0),
    }))
}

/// `--init`: the static init binary bind-mounted at `/sbin/docker-init`:
/// `$BERTH_INIT_PATH`, else `docker-init` or `tini-static` on PATH (Debian's
/// `tini` package). It must be static to run in any image.
fn init_binary() -> Result<std::path::PathBuf, CliError> {
    if let Some(path) = std::env::var_os("BERTH_INIT_PATH").filter(|p| !p.is_empty()) {
        return Ok(path.into());
    }
    let dirs = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    for name in ["docker-init", "tini-static"] {
        for dir in std::env::split_paths(&dirs) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(usage(
        "exec: \"docker-init\": executable file not found in $PATH (install tini: it ships tini-static)",
    ))
}

/// The container config `run`/`create` flags describe.
pub fn container_config(args: &RunArgs) -> Result<ContainerConfig, CliError> {
    let mut tmpfs = Vec::new();
    for t in &args.tmpfs {
        tmpfs.push(TmpfsMount::parse(t).map_err(usage)?);
    }
    let mut env = read_env_files(&args.env_file)?;
    env.extend(
        args.env
            .iter()
            .map(|e| resolve_env_flag(e, |k| std::env::var(k).ok())),
    );
    let restart = RestartPolicy::parse(&args.restart).map_err(usage)?;
    if args.rm && restart.name != "no" {
        return Err(usage("Conflicting options: --restart and --rm"));
    }
    let mut labels = std::collections::BTreeMap::new();
    for l in &args.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    if let Some(sig) = &args.stop_signal {
        if signal_number(sig).is_none() {
            return Err(usage(format!("Invalid signal: {sig}")));
        }
    }
    let network = match args.network.as_str() {
        "default" => "bridge".to_string(),
        other => other.to_string(),
    };
    let mut mounts = Vec::new();
    for v in &args.volume {
        mounts.push(berth_runtime::mounts::parse_volume_flag(v).map_err(usage)?);
    }
    for m in &args.mount {
        mounts.push(berth_runtime::mounts::parse_mount_flag(m).map_err(|e| {
            usage(format!(
                "invalid argument \"{m}\" for \"--mount\" flag: {e}"
            ))
        })?);
    }
    let resources = berth_runtime::resources::ResourceFlags {
        memory: args.memory.as_deref(),
        memory_swap: args.memory_swap.as_deref(),
        cpus: args.cpus.as_deref(),
        cpu_shares: args.cpu_shares.as_deref(),
        pids_limit: args.pids_limit.as_deref(),
    }
    .parse()
    .map_err(usage)?;
    let validated = resources
        .validate(berth_runtime::resources::ResourceHost::detect())
        .map_err(usage)?;
    for w in &validated.warnings {
        eprintln!("WARNING: {w}");
    }
    for p in &args.publish {
        berth_net::parse_publish(p).map_err(usage)?;
    }
    for h in &args.add_host {
        berth_net::parse_add_host(h, None).map_err(usage)?;
    }
    let run = RunOptions {
        entrypoint: args.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        command: args.command().to_vec(),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        group_add: args.group_add.clone(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        read_only: args.read_only,
        privileged: args.privileged,
        tmpfs,
        tty: args.tty,
        resources: validated.resources,
        init: if args.init {
            Some(init_binary()?)
        } else {
            None
        },
        ..RunOptions::default()
    };
    let runtime = args.runtime.clone().unwrap_or_default();
    if !berth_engine::containers::runtime_cli::is_embedded(&runtime) {
        berth_engine::containers::runtime_cli::find_runtime(&runtime).map_err(usage)?;
    }
    Ok(ContainerConfig {
        runtime,
        image: args.image().to_string(),
        run,
        open_stdin: args.interactive,
        stdin_once: args.interactive && !args.detach,
        restart,
        auto_remove: args.rm,
        labels,
        stop_signal: args.stop_signal.clone().unwrap_or_default(),
        stop_timeout: args.stop_timeout,
        healthcheck: healthcheck(args)?,
        publish: args.publish.clone(),
        publish_all: args.publish_all,
        network,
        mounts,
        add_hosts: args.add_host.clone(),
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
        network_aliases: args.network_alias.clone(),
        ..ContainerConfig::default()
    })
}

fn create_from(engine: &mut Engine, args: &RunArgs) -> Result<Container, CliError> {
    let config = container_config(args)?;
    let id = engine
        .create_container(config, args.name.as_deref())
        .map_err(|e| CliError::with_code(125, e.to_string()))?;
    engine
        .container(&id)
        .map_err(|e| CliError::with_code(125, e.to_string()))
}

/// `berth create`: prints the new container's ID.
pub fn create(engine: &mut Engine, args: &RunArgs) -> Result<(), CliError> {
    let container = create_from(engine, args)?;
    println!("{}", container.record.id);
    Ok(())
}

/// `berth run`.
pub fn run(engine: &mut Engine, args: &RunArgs) -> Result<(), CliError> {
    let container = create_from(engine, args)?;
    if args.detach {
        engine
            .start_container(&container)
            .map_err(|f| start_error(f.status, &f.error.to_string()))?;
        println!("{}", container.record.id);
        return Ok(());
    }
    let code = attach_and_start(engine, &container, true, args.interactive, args.sig_proxy)?;
    exit_with(code)
}

/// The CLI's status for a container's exit code.
pub fn exit_with(code: i32) -> Result<(), CliError> {
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::exit(u8::try_from(code).unwrap_or(255)))
    }
}

fn start_error(status: i32, message: &str) -> CliError {
    CliError::with_code(u8::try_from(status).unwrap_or(125), message)
}

/// Attaches to `container` (stdout, stderr, and stdin with `stdin`), starts
/// it when `start`, streams until its output ends, and returns its exit
/// code. Signals berth receives are sent to the container (`sig_proxy`).
pub fn attach_and_start(
    engine: &Engine,
    container: &Container,
    start: bool,
    stdin: bool,
    sig_proxy: bool,
) -> Result<i32, CliError> {
    let dir = container.dir.clone();
    let engine_err = |e: berth_engine::Error| CliError::with_code(125, e.to_string());
    if start {
        engine.spawn_shim(container).map_err(engine_err)?;
    }
    let attach = protocol::send(
        &dir,
        &Request::Attach {
            stdin,
            stdout: true,
            stderr: true,
        },
    )
    .map_err(engine_err)?;
    let wait = protocol::send(&dir, &Request::Wait).map_err(engine_err)?;
    if start {
        if let Err(f) = engine.start_spawned(container) {
            return Err(start_error(f.status, &f.error.to_string()));
        }
    }
    let tty = container.config.run.tty;
    let _raw = (tty && stdin).then(RawTerminal::enter).flatten();
    if tty {
        send_terminal_size(&dir);
    }
    let _proxy = sig_proxy.then(|| SignalProxy::start(dir.clone(), tty));
    if stdin {
        if let Ok(mut writer) = attach.try_clone() {
            std::thread::spawn(move || {
                let mut input = std::io::stdin().lock();
                let mut buf = [0u8; 32 * 1024];
                loop {
                    match input.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if writer.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = writer.shutdown(std::net::Shutdown::Write);
            });
        }
    } else {
        let _ = attach.shutdown(std::net::Shutdown::Write);
    }
    if tty {
        copy_raw(attach);
    } else {
        copy_frames(attach);
    }
    let reply = protocol::read_reply(wait).map_err(engine_err)?;
    Ok(reply.exit_code)
}

/// A `-t` container's output: raw terminal bytes.
fn copy_raw(mut attach: std::os::unix::net::UnixStream) {
    let stdout = std::io::stdout();
    let mut buf = [0u8; 32 * 1024];
    loop {
        match attach.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut o = stdout.lock();
                let _ = o.write_all(&buf[..n]);
                let _ = o.flush();
            }
        }
    }
}

/// Tells the shim the size of berth's terminal (for a `-t` container).
fn send_terminal_size(dir: &Path) {
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdout()) {
        let _ = protocol::call(
            dir,
            &Request::Resize {
                height: size.ws_row,
                width: size.ws_col,
            },
        );
    }
}

/// berth's own terminal in raw mode while attached to a `-t -i`
/// container (keys go to the container as typed); restored when dropped.
pub(crate) struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    pub(crate) fn enter() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        if !rustix::termios::isatty(&stdin) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Copies the attach stream's frames to stdout and stderr.
fn copy_frames(mut attach: std::os::unix::net::UnixStream) {
    let mut buf = Vec::new();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    while let Ok(Some(stream)) = protocol::read_frame(&mut attach, &mut buf) {
        if stream == STDERR {
            let mut e = stderr.lock();
            let _ = e.write_all(&buf);
            let _ = e.flush();
        } else {
            let mut o = stdout.lock();
            let _ = o.write_all(&buf);
            let _ = o.flush();
        }
    }
}

/// Docker's sig-proxy: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
/// SIGUSR2 that berth receives go to the container through its shim.
struct SignalProxy {
    handle: Option<signal_hook::iterator::Handle>,
}

impl SignalProxy {
    /// With `tty`, SIGWINCH resizes the container's terminal.
    fn start(dir: std::path::PathBuf, tty: bool) -> SignalProxy {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
        let mut wanted = vec![SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];
        if tty {
            wanted.push(SIGWINCH);
        }
        let Ok(mut signals) = signal_hook::iterator::Signals::new(wanted) else {
            return SignalProxy { handle: None };
        };
        let handle = signals.handle();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if signal == SIGWINCH {
                    send_terminal_size(&dir);
                } else {
                    let _ = protocol::call(Path::new(&dir), &Request::Kill { signal });
                }
            }
        });
        SignalProxy {
            handle: Some(handle),
        }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.close();
        }
    }
}
