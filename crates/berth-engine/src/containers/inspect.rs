//! Docker's JSON shapes for containers: `docker inspect` (`ContainerJSON`)
//! and the `ps` summary, built from a container's record, config, state
//! and its image's config.

use serde_json::{json, Map, Value};

use super::logs::log_path;
use super::state::{State, Status};
use super::Container;
use crate::time::{human_duration, parse_rfc3339, wall_now};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(t: &str) -> &str {
    if t.is_empty() {
        ZERO_TIME
    } else {
        t
    }
}

/// The command line `ps` shows: the process args joined (entrypoint + cmd).
pub fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') || a.is_empty() {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Docker's human status: `Up 5 seconds`, `Exited (0) 3 minutes ago`,
/// `Created`, `Up 2 minutes (Paused)`, `Restarting (1) 2 seconds ago`, `Dead`.
pub fn human_status(state: &State) -> String {
    let ago = |t: &str| {
        parse_rfc3339(t)
            .map(|secs| human_duration(wall_now() - secs))
            .unwrap_or_else(|| "Less than a second".to_string())
    };
    let health = match &state.health {
        Some(h) if h.status == "starting" => " (health: starting)".to_string(),
        Some(h) if !h.status.is_empty() => format!(" ({})", h.status),
        _ => String::new(),
    };
    match state.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!("Up {}{health}", ago(&state.started_at)),
        Status::Paused => format!("Up {} (Paused)", ago(&state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code,
            ago(&state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code,
            ago(&state.finished_at)
        ),
        Status::Dead => "Dead".to_string(),
    }
}

/// The PORTS column and `port` output entries.
pub fn ports_json(state: &State) -> Vec<Value> {
    state
        .ports
        .iter()
        .map(|p| {
            json!({"IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto})
        })
        .collect()
}

fn spec_process(container: &Container) -> (Vec<String>, Vec<String>, String, String) {
    let path = container.dir.join("bundle").join("config.json");
    let spec = std::fs::read(path)
        .ok()
        .and_then(|b| berth_runtime::Spec::from_json(&b).ok());
    match spec {
        Some(s) => (
            s.process.args.clone(),
            s.process.env.clone(),
            s.process.cwd.clone(),
            s.hostname.clone(),
        ),
        None => (Vec::new(), Vec::new(), String::new(), String::new()),
    }
}

/// `Mounts`, as Docker lists binds and volumes.
pub fn mounts_json(state: &State) -> Vec<Value> {
    use berth_runtime::mounts::MountKind;
    state
        .mounts
        .iter()
        .map(|m| {
            let mut v = json!({
                "Type": match m.kind { MountKind::Bind => "bind", MountKind::Volume => "volume" },
                "Source": m.source.display().to_string(),
                "Destination": m.destination,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
                "Propagation": m.propagation.clone().unwrap_or_default(),
            });
            if let (Some(name), Value::Object(map)) = (&m.volume, &mut v) {
                map.insert("Name".to_string(), json!(name));
                map.insert("Driver".to_string(), json!("local"));
            }
            v
        })
        .collect()
}

/// `HostConfig.PortBindings` from the `-p` values.
fn port_bindings_json(publish: &[String]) -> Value {
    let mut map = Map::new();
    for spec in publish {
        let Ok(bindings) = berth_net::parse_publish(spec) else {
            continue;
        };
        for b in bindings {
            let key = format!("{}/{}", b.container_port, b.protocol);
            let host_port = match (b.host_port, b.host_port_end) {
                (0, _) => String::new(),
                (p, end) if end != p => format!("{p}-{end}"),
                (p, _) => p.to_string(),
            };
            let host_ip = b.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
            let entry = map.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(json!({"HostIp": host_ip, "HostPort": host_port}));
            }
        }
    }
    Value::Object(map)
}

/// `docker inspect CONTAINER`.
pub fn inspect_json(container: &Container, image: &berth_oci::ImageConfig) -> Value {
    let c = &container.config;
    let s = &container.state;
    let image_cfg = image.config.clone().unwrap_or_default();
    let (args, spec_env, spec_cwd, spec_hostname) = spec_process(container);
    let entrypoint: Vec<String> = match &c.run.entrypoint {
        Some(e) => e.iter().filter(|a| !a.is_empty()).cloned().collect(),
        None => image_cfg.entrypoint.clone(),
    };
    let cmd: Vec<String> = if !c.run.command.is_empty() {
        c.run.command.clone()
    } else if c.run.entrypoint.is_some() {
        Vec::new()
    } else {
        image_cfg.cmd.clone()
    };
    let (path, rest) = match args.split_first() {
        Some((p, r)) => (p.clone(), r.to_vec()),
        None => {
            let all: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
            match all.split_first() {
                Some((p, r)) => (p.clone(), r.to_vec()),
                None => (String::new(), Vec::new()),
            }
        }
    };
    let env = if spec_env.is_empty() {
        let mut e = c.run.env.clone();
        e.extend(image_cfg.env.iter().cloned());
        e
    } else {
        spec_env
    };
    let hostname = if spec_hostname.is_empty() {
        c.run
            .hostname
            .clone()
            .unwrap_or_else(|| container.short_id().to_string())
    } else {
        spec_hostname
    };
    let mut labels = Map::new();
    for (k, v) in image_cfg.labels.iter().chain(c.labels.iter()) {
        labels.insert(k.clone(), Value::String(v.clone()));
    }
    let exposed: Map<String, Value> = image_cfg
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), json!({})))
        .collect();
    let mut port_map = Map::new();
    for p in &s.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = port_map
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
        }
    }
    let network_name = if c.network.is_empty() {
        "bridge"
    } else {
        c.network.as_str()
    };
    let networks = if network_name == "none" || network_name == "host" {
        json!({ network_name: {"IPAddress": "", "Gateway": "", "IPPrefixLen": 0, "MacAddress": ""} })
    } else {
        json!({ network_name: {
            "IPAddress": s.ip_address, "Gateway": s.gateway,
            "IPPrefixLen": s.ip_prefix_len, "MacAddress": s.mac_address,
            "Aliases": null, "NetworkID": "", "EndpointID": ""
        }})
    };
    let health = s
        .health
        .as_ref()
        .map(|h| json!({"Status": h.status, "FailingStreak": h.failing_streak, "Log": h.log}));
    let mut state = json!({
        "Status": s.status.as_str(),
        "Running": matches!(s.status, Status::Running | Status::Paused),
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": or_zero(&s.started_at),
        "FinishedAt": or_zero(&s.finished_at),
    });
    if let (Some(h), Value::Object(map)) = (health, &mut state) {
        map.insert("Health".to_string(), h);
    }
    let dir = container.dir.display().to_string();
    json!({
        "Id": container.record.id,
        "Created": c.created,
        "Path": path,
        "Args": rest,
        "State": state,
        "Image": container.record.image_id.to_string(),
        "ResolvConfPath": format!("{dir}/resolv.conf"),
        "HostnamePath": format!("{dir}/hostname"),
        "HostsPath": format!("{dir}/hosts"),
        "LogPath": log_path(&container.dir, &container.record.id).display().to_string(),
        "Name": format!("/{}", container.record.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": null,
            "NetworkMode": network_name,
            "PortBindings": port_bindings_json(&c.publish),
            "RestartPolicy": {"Name": if c.restart.name.is_empty() { "no" } else { c.restart.name.as_str() }, "MaximumRetryCount": c.restart.max_retries},
            "AutoRemove": c.auto_remove,
            "Init": if c.run.init.is_some() { json!(true) } else { Value::Null },
            "CapAdd": c.run.cap_add,
            "CapDrop": c.run.cap_drop,
            "GroupAdd": c.run.group_add,
            "Privileged": c.run.privileged,
            "PublishAllPorts": c.publish_all,
            "ReadonlyRootfs": c.run.read_only,
            "Runtime": if c.runtime.is_empty() { "berth" } else { c.runtime.as_str() },
            "Init": c.run.init.is_some(),
            "LogConfig": {"Type": "json-file", "Config": {}},
        },
        "GraphDriver": {"Name": "overlay2", "Data": {
            "MergedDir": format!("{dir}/rootfs"),
            "UpperDir": format!("{dir}/upper"),
            "WorkDir": format!("{dir}/work"),
        }},
        "Mounts": mounts_json(s),
        "Config": {
            "Hostname": hostname,
            "Domainname": "",
            "User": c.run.user.clone().unwrap_or(image_cfg.user.clone()),
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
            "Tty": c.run.tty,
            "OpenStdin": c.open_stdin,
            "StdinOnce": c.stdin_once,
            "Env": env,
            "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
            "Image": c.image,
            "Volumes": null,
            "WorkingDir": if spec_cwd.is_empty() { c.run.workdir.clone().unwrap_or(image_cfg.working_dir.clone()) } else { spec_cwd },
            "Entrypoint": if entrypoint.is_empty() { Value::Null } else { json!(entrypoint) },
            "OnBuild": null,
            "Labels": labels,
            "StopSignal": c.stop_signal,
            "StopTimeout": c.stop_timeout,
            "Healthcheck": c.healthcheck,
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": port_map,
            "IPAddress": s.ip_address,
            "Gateway": s.gateway,
            "IPPrefixLen": s.ip_prefix_len,
            "MacAddress": s.mac_address,
            "Networks": networks,
        },
    })
}

/// `docker ps` JSON (`GET /containers/json`) for one container.
pub fn summary_json(container: &Container) -> Value {
    let (args, ..) = spec_process(container);
    let mut labels = Map::new();
    for (k, v) in &container.config.labels {
        labels.insert(k.clone(), Value::String(v.clone()));
    }
    json!({
        "Id": container.record.id,
        "Names": [format!("/{}", container.record.name)],
        "Image": container.config.image,
        "ImageID": container.record.image_id.to_string(),
        "Command": command_line(&args),
        "Created": container.record.created_at / 1_000_000_000,
        "Ports": ports_json(&container.state),
        "Labels": labels,
        "State": container.state.status.as_str(),
        "Status": human_status(&container.state),
        "HostConfig": {"NetworkMode": container.config.network},
        "Mounts": mounts_json(&container.state),
    })
}
