//! Container verbs other than `run`/`create`: start, stop, restart, kill,
//! rm, ps, logs, exec, attach, wait, port, top, rename, pause, unpause,
//! inspect, container prune — with Docker's output and exit codes.

use berth_engine::containers::exec::{exec, ExecOptions};
use berth_engine::containers::inspect::{human_status, inspect_json, summary_json};
use berth_engine::containers::logs::{log_path, LogEntry, LogReader};
use berth_engine::containers::{signal_number, Container, Status};
use berth_engine::time::{human_duration, parse_rfc3339_precise, rfc3339_fixed, wall_now};
use berth_engine::Engine;
use berth_runtime::resolve_env_flag;
use serde_json::Value;

use crate::cli::{
    AttachArgs, ContainersArgs, ExecArgs, ForceArgs, InspectArgs, KillArgs, LogsArgs, PortArgs,
    PsArgs, RenameArgs, RmArgs, StartArgs, StopArgs, TopArgs,
};
use crate::commands::run::{attach_and_start, exit_with, read_env_files};
use crate::exit::CliError;
use crate::output::{ellipsis, print_inspected, table};
use crate::template::Template;

fn fail(e: berth_engine::Error) -> CliError {
    CliError::failure(e.to_string())
}

/// Runs `op` on each named container, printing the name on success and
/// collecting errors (Docker's multi-container verbs).
fn each(
    engine: &mut Engine,
    names: &[String],
    mut op: impl FnMut(&mut Engine, &Container) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in names {
        let result = engine
            .container(name)
            .map_err(fail)
            .and_then(|c| op(engine, &c));
        match result {
            Ok(()) => println!("{name}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(errors.join("\n")))
    }
}

pub fn start(engine: &mut Engine, args: &StartArgs) -> Result<(), CliError> {
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            return Err(CliError::failure(
                "you cannot start and attach multiple containers at once",
            ));
        };
        let c = engine.container(name).map_err(fail)?;
        if c.state.status.needs_shim() {
            let code = attach_and_start(engine, &c, false, args.interactive, true)?;
            return exit_with(code);
        }
        let code = attach_and_start(engine, &c, true, args.interactive, true)?;
        return exit_with(code);
    }
    each(engine, &args.containers, |engine, c| {
        engine
            .start_container(c)
            .map_err(|f| CliError::failure(f.error.to_string()))
    })
}

pub fn stop(engine: &mut Engine, args: &StopArgs) -> Result<(), CliError> {
    each(engine, &args.containers, |engine, c| {
        let mut c = c.clone();
        if let Some(sig) = &args.signal {
            c.config.stop_signal = sig.clone();
        }
        engine.stop_container(&c, args.time).map_err(fail)
    })
}

pub fn restart(engine: &mut Engine, args: &StopArgs) -> Result<(), CliError> {
    each(engine, &args.containers, |engine, c| {
        engine.stop_container(c, args.time).map_err(fail)?;
        let fresh = engine.container(&c.record.id).map_err(fail)?;
        engine
            .start_container(&fresh)
            .map_err(|f| CliError::failure(f.error.to_string()))
    })
}

pub fn kill(engine: &mut Engine, args: &KillArgs) -> Result<(), CliError> {
    let signal = signal_number(&args.signal)
        .ok_or_else(|| CliError::failure(format!("Invalid signal: {}", args.signal)))?;
    each(engine, &args.containers, |engine, c| {
        engine.kill_container(c, signal).map_err(fail)
    })
}

pub fn rm(engine: &mut Engine, args: &RmArgs) -> Result<(), CliError> {
    each(engine, &args.containers, |engine, c| {
        engine
            .remove_container(c, args.force, args.volumes)
            .map_err(fail)
    })
}

pub fn pause(engine: &mut Engine, args: &ContainersArgs, pause: bool) -> Result<(), CliError> {
    each(engine, &args.containers, |engine, c| {
        engine.pause_container(c, pause).map_err(fail)
    })
}

pub fn wait(engine: &mut Engine, args: &ContainersArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.containers {
        match engine
            .container(name)
            .and_then(|c| engine.wait_container(&c))
        {
            Ok(code) => println!("{code}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(errors.join("\n")))
    }
}

pub fn rename(engine: &mut Engine, args: &RenameArgs) -> Result<(), CliError> {
    let c = engine.container(&args.container).map_err(fail)?;
    engine.rename_container(&c, &args.new_name).map_err(fail)
}

pub fn prune(engine: &mut Engine, args: &ForceArgs) -> Result<(), CliError> {
    if !args.force
        && !crate::commands::system::confirm_prune(
            "WARNING! This will remove all stopped containers.",
        )
    {
        return Ok(());
    }
    let removed = engine.prune_containers().map_err(fail)?;
    crate::output::print_deleted("Deleted Containers:", &removed);
    println!("Total reclaimed space: 0B");
    Ok(())
}

pub fn attach(engine: &mut Engine, args: &AttachArgs) -> Result<(), CliError> {
    let c = engine.container(&args.container).map_err(fail)?;
    if !c.state.status.needs_shim() {
        return Err(CliError::failure(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    let stdin = !args.no_stdin && c.config.open_stdin;
    let code = attach_and_start(engine, &c, false, stdin, args.sig_proxy)?;
    exit_with(code)
}

/// One row's fields for `ps` (table and `--format`).
fn ps_fields(c: &Container, no_trunc: bool) -> Value {
    let summary = summary_json(c);
    let command = summary
        .get("Command")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let command = if no_trunc {
        format!("\"{command}\"")
    } else {
        format!("\"{}\"", ellipsis(&command, 20))
    };
    let id = if no_trunc {
        c.record.id.clone()
    } else {
        c.short_id().to_string()
    };
    let created = c.record.created_at / 1_000_000_000;
    let labels = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    serde_json::json!({
        "ID": id,
        "Image": c.config.image,
        "Command": command,
        "CreatedAt": berth_engine::time::rfc3339(created, 0),
        "RunningFor": format!("{} ago", human_duration(wall_now() - created)),
        "Ports": ports_text(c),
        "State": c.state.status.as_str(),
        "Status": human_status(&c.state),
        "Size": "0B",
        "Names": c.record.name,
        "Labels": labels,
        "Mounts": "",
        "Networks": c.config.network,
    })
}

fn ports_text(c: &Container) -> String {
    c.state
        .ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                bracketed(&p.host_ip),
                p.host_port,
                p.container_port,
                p.proto
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An IPv6 address in brackets, as Docker prints host:port pairs.
fn bracketed(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn filter_matches(c: &Container, filter: &str) -> Result<bool, CliError> {
    let (key, value) = filter.split_once('=').ok_or_else(|| {
        CliError::failure(format!(
            "bad format of filter (expected name=value): {filter}"
        ))
    })?;
    Ok(match key {
        "id" => c.record.id.starts_with(value),
        "name" => c.record.name.contains(value.trim_start_matches('/')),
        "status" => c.state.status.as_str() == value,
        "exited" => c.state.status == Status::Exited && c.state.exit_code.to_string() == value,
        "label" => match value.split_once('=') {
            Some((k, v)) => c.config.labels.get(k).is_some_and(|x| x == v),
            None => c.config.labels.contains_key(value),
        },
        "ancestor" => c.config.image == value || c.record.image_id.to_string().contains(value),
        "network" => c.config.network == value,
        "health" => {
            if !matches!(value, "starting" | "healthy" | "unhealthy" | "none") {
                return Err(CliError::failure(format!(
                    "Unrecognised filter value for health: {value}"
                )));
            }
            let status = c
                .state
                .health
                .as_ref()
                .map_or("none", |h| h.status.as_str());
            status == value
        }
        _ => return Err(CliError::failure(format!("invalid filter '{key}'"))),
    })
}

pub fn ps(engine: &mut Engine, args: &PsArgs) -> Result<(), CliError> {
    let mut containers = engine.list_containers().map_err(fail)?;
    let limit = if args.latest { Some(1) } else { args.last };
    let all = args.all || limit.is_some();
    // Filters on status decide visibility themselves.
    let status_filter = args
        .filter
        .iter()
        .any(|f| f.starts_with("status=") || f.starts_with("exited="));
    containers.retain(|c| all || status_filter || c.state.status.needs_shim());
    let mut kept = Vec::new();
    for c in containers {
        let mut ok = true;
        for f in &args.filter {
            ok &= filter_matches(&c, f)?;
        }
        if ok {
            kept.push(c);
        }
    }
    if let Some(n) = limit {
        kept.truncate(n);
    }
    if args.quiet {
        for c in &kept {
            if args.no_trunc {
                println!("{}", c.record.id);
            } else {
                println!("{}", c.short_id());
            }
        }
        return Ok(());
    }
    let rows: Vec<Value> = kept.iter().map(|c| ps_fields(c, args.no_trunc)).collect();
    match args.format.as_deref() {
        Some("json") => {
            for r in &rows {
                println!("{r}");
            }
        }
        Some(f) if !f.starts_with("table") => {
            let t = Template::parse(f).map_err(CliError::failure)?;
            for r in &rows {
                println!("{}", t.render(r).map_err(CliError::failure)?);
            }
        }
        _ => {
            let header = [
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ];
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    [
                        "ID",
                        "Image",
                        "Command",
                        "RunningFor",
                        "Status",
                        "Ports",
                        "Names",
                    ]
                    .iter()
                    .map(|k| r.get(*k).and_then(Value::as_str).unwrap_or("").to_string())
                    .collect()
                })
                .collect();
            print!("{}", table(&header, &cells));
        }
    }
    Ok(())
}

/// `--since`/`--until`: RFC 3339, unix seconds, or a duration before now.
fn time_bound(text: &str) -> Result<(i64, u32), CliError> {
    if let Some(t) = parse_rfc3339_precise(text) {
        return Ok(t);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Ok((secs.trunc() as i64, (secs.fract() * 1e9) as u32));
    }
    if let Some(nanos) = berth_dockerfile::instructions::parse_go_duration(text) {
        let (now, now_nanos) = berth_engine::time::wall_now_precise();
        let total = i128::from(now) * 1_000_000_000 + i128::from(now_nanos) - i128::from(nanos);
        return Ok((
            (total.div_euclid(1_000_000_000)) as i64,
            (total.rem_euclid(1_000_000_000)) as u32,
        ));
    }
    Err(CliError::failure(format!(
        "invalid value for \"since\"/\"until\": {text}"
    )))
}

fn print_entries(
    entries: &[LogEntry],
    args: &LogsArgs,
    since: Option<(i64, u32)>,
    until: Option<(i64, u32)>,
) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    for e in entries {
        let t = parse_rfc3339_precise(&e.time);
        if let (Some(bound), Some(t)) = (since, t) {
            if t < bound {
                continue;
            }
        }
        if let (Some(bound), Some(t)) = (until, t) {
            if t > bound {
                continue;
            }
        }
        let prefix = match (args.timestamps, t) {
            (true, Some((s, n))) => format!("{} ", rfc3339_fixed(s, n)),
            _ => String::new(),
        };
        if e.stream == "stderr" {
            let _ = write!(stderr.lock(), "{prefix}{}", e.log);
        } else {
            let _ = write!(stdout.lock(), "{prefix}{}", e.log);
        }
    }
    let _ = stdout.lock().flush();
}

pub fn logs(engine: &mut Engine, args: &LogsArgs) -> Result<(), CliError> {
    let c = engine.container(&args.container).map_err(fail)?;
    let since = args.since.as_deref().map(time_bound).transpose()?;
    let until = args.until.as_deref().map(time_bound).transpose()?;
    let tail: Option<usize> = match args.tail.as_str() {
        "all" | "" => None,
        n => Some(
            n.parse()
                .map_err(|_| CliError::failure(format!("invalid value for \"tail\": {n}")))?,
        ),
    };
    let path = log_path(&c.dir, &c.record.id);
    let Some(mut reader) = LogReader::open(&path).map_err(fail)? else {
        return Ok(());
    };
    let mut entries = reader.read_new().map_err(fail)?;
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    print_entries(&entries, args, since, until);
    if !args.follow {
        return Ok(());
    }
    loop {
        let running = berth_engine::containers::State::observed(&c.dir)
            .map(|s| s.status.needs_shim())
            .unwrap_or(false);
        let fresh = reader.read_new().map_err(fail)?;
        print_entries(&fresh, args, since, until);
        if !running {
            // One last read: the shim flushes before it records the exit.
            let last = reader.read_new().map_err(fail)?;
            print_entries(&last, args, since, until);
            return Ok(());
        }
        if let Some((s, _)) = until {
            if wall_now() > s {
                return Ok(());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub fn exec_command(engine: &mut Engine, args: &ExecArgs) -> Result<(), CliError> {
    let c = engine
        .container(args.container())
        .map_err(|e| CliError::with_code(125, e.to_string()))?;
    let mut env = read_env_files(&args.env_file)?;
    env.extend(
        args.env
            .iter()
            .map(|e| resolve_env_flag(e, |k| std::env::var(k).ok())),
    );
    let opts = ExecOptions {
        command: args.command().to_vec(),
        env,
        user: args.user.clone().unwrap_or_default(),
        workdir: args.workdir.clone().unwrap_or_default(),
        privileged: args.privileged,
        tty: args.tty && !args.detach,
    };
    let mut stdio = berth_launch::Stdio::default();
    if args.detach || !args.interactive {
        stdio.stdin = std::fs::File::open("/dev/null").ok().map(Into::into);
    }
    if args.detach {
        let null = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .ok()
                .map(Into::into)
        };
        stdio.stdout = null();
        stdio.stderr = null();
    }
    let mut process = exec(&c, &opts, stdio).map_err(|f| {
        CliError::with_code(u8::try_from(f.status).unwrap_or(125), f.error.to_string())
    })?;
    if args.detach {
        // The process is reparented when berth exits; nobody waits here.
        return Ok(());
    }
    if let Some(pty) = process.take_pty() {
        relay_terminal(pty, args.interactive);
    }
    let code = process.wait().map_err(fail)?;
    exit_with(code)
}

/// `exec -t`: berth's terminal ⇄ the process's pty until the process
/// closes it.
fn relay_terminal(pty: std::os::fd::OwnedFd, interactive: bool) {
    use std::io::{Read, Write};
    let _raw = interactive
        .then(crate::commands::run::RawTerminal::enter)
        .flatten();
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdout()) {
        let _ = rustix::termios::tcsetwinsize(&pty, size);
    }
    let mut reader = std::fs::File::from(pty);
    if interactive {
        if let Ok(mut writer) = reader.try_clone() {
            std::thread::spawn(move || {
                let mut input = std::io::stdin().lock();
                let mut buf = [0u8; 4096];
                while let Ok(n) = input.read(&mut buf) {
                    if n == 0 || writer.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    }
    let stdout = std::io::stdout();
    let mut buf = [0u8; 32 * 1024];
    // EIO once the process (and whatever it forked) closed the terminal.
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut o = stdout.lock();
        let _ = o.write_all(&buf[..n]);
        let _ = o.flush();
    }
}

pub fn port(engine: &mut Engine, args: &PortArgs) -> Result<(), CliError> {
    let c = engine.container(&args.container).map_err(fail)?;
    let wanted = args.port.as_deref().map(|p| {
        let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        (n.to_string(), proto.to_string())
    });
    let mut any = false;
    for p in &c.state.ports {
        match &wanted {
            Some((n, proto)) => {
                if p.container_port.to_string() == *n && p.proto == *proto {
                    println!("{}:{}", bracketed(&p.host_ip), p.host_port);
                    any = true;
                }
            }
            None => {
                println!(
                    "{}/{} -> {}:{}",
                    p.container_port,
                    p.proto,
                    bracketed(&p.host_ip),
                    p.host_port
                );
                any = true;
            }
        }
    }
    match (&wanted, any) {
        (Some((n, proto)), false) => Err(CliError::failure(format!(
            "No public port '{n}/{proto}' published for {}",
            args.container
        ))),
        _ => Ok(()),
    }
}

pub fn top(engine: &mut Engine, args: &TopArgs) -> Result<(), CliError> {
    let c = engine.container(&args.container).map_err(fail)?;
    if c.state.status != Status::Running && c.state.status != Status::Paused {
        return Err(CliError::failure(format!(
            "container {} is not running",
            c.record.id
        )));
    }
    let pids = berth_engine::containers::cleanup::container_pids(&c.record.id);
    if pids.is_empty() {
        return Err(CliError::failure("the container has no processes"));
    }
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = std::process::Command::new("ps");
    if args.ps_args.is_empty() {
        cmd.args(["-o", "uid,pid,ppid,c,stime,tty,time,cmd"]);
    } else {
        cmd.args(&args.ps_args);
    }
    let out = cmd
        .args(["-p", &list])
        .output()
        .map_err(|e| CliError::failure(format!("running ps: {e}")))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// `berth inspect`: containers first, then images (Docker's order);
/// `container inspect` only containers.
pub fn inspect(engine: &mut Engine, args: &InspectArgs, images_too: bool) -> Result<(), CliError> {
    print_inspected(args.format.as_deref(), &args.names, |name| {
        match engine.container(name) {
            Ok(c) => {
                let image = engine.image_config(&c.record.image_id).unwrap_or_default();
                Ok(inspect_json(&c, &image))
            }
            Err(_) if images_too => engine
                .inspect_image(name)
                .map_err(|_| format!("No such object: {name}")),
            Err(e) => Err(e.to_string()),
        }
    })
}
