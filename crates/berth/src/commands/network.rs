//! `berth network create/ls/inspect/rm/prune`, with Docker's output. The
//! container verbs (`connect`, `disconnect`) need container records and
//! live with them.

use std::collections::BTreeMap;
use std::io::BufRead;

use berth_engine::time::rfc3339;
use berth_engine::Engine;
use berth_net::{NetConfig, NetworkRecord, NetworkSpec};
use serde_json::{json, Value};

use crate::cli::{
    NetworkCommand, NetworkCreateArgs, NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs,
    NetworkRmArgs,
};
use crate::exit::CliError;
use crate::output::{print_inspected, table};
use crate::template::Template;

fn net_error(e: berth_net::Error) -> CliError {
    CliError::failure(e.to_string())
}

pub fn run(engine: &mut Engine, command: &NetworkCommand) -> Result<(), CliError> {
    // The host's network settings; [network] in config.toml is not read yet.
    let config = NetConfig::default();
    match command {
        NetworkCommand::Create(a) => create(engine, &config, a),
        NetworkCommand::Ls(a) => ls(engine, &config, a),
        NetworkCommand::Inspect(a) => inspect(engine, &config, a),
        NetworkCommand::Rm(a) => rm(engine, &config, a),
        NetworkCommand::Prune(a) => prune(engine, &config, a),
    }
}

/// `KEY=VALUE` flags (`--label`, `--opt`) into a map; a bare key has an
/// empty value.
fn key_values(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut map = BTreeMap::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
        if k.is_empty() {
            return Err(CliError::usage(format!(
                "invalid argument {v:?} for \"{flag}\" flag"
            )));
        }
        map.insert(k.to_string(), val.to_string());
    }
    Ok(map)
}

fn single<'a>(flag: &str, values: &'a [String]) -> Result<Option<&'a String>, CliError> {
    match values {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(CliError::failure(format!(
            "only one {flag} per network is supported"
        ))),
    }
}

fn create(
    engine: &mut Engine,
    config: &NetConfig,
    args: &NetworkCreateArgs,
) -> Result<(), CliError> {
    let subnet = single("--subnet", &args.subnet)?
        .map(|s| s.parse())
        .transpose()
        .map_err(net_error)?;
    let gateway = single("--gateway", &args.gateway)?
        .map(|g| {
            g.parse()
                .map_err(|_| CliError::failure(format!("invalid gateway address {g:?}")))
        })
        .transpose()?;
    let spec = NetworkSpec {
        name: args.name.clone(),
        driver: Some(args.driver.clone()),
        subnet,
        gateway,
        internal: args.internal,
        labels: key_values("--label", &args.label)?,
        options: key_values("--opt", &args.opt)?,
    };
    let record = berth_net::create_network(engine.store_mut().meta_mut(), config, &spec)
        .map_err(net_error)?;
    println!("{}", record.id);
    Ok(())
}

fn scope_and_kind(record: &NetworkRecord) -> (&'static str, &'static str) {
    let builtin = berth_net::PREDEFINED.contains(&record.name.as_str());
    ("local", if builtin { "builtin" } else { "custom" })
}

fn matches_filter(record: &NetworkRecord, filter: &str) -> Result<bool, CliError> {
    let Some((key, value)) = filter.split_once('=') else {
        return Err(CliError::failure(format!(
            "bad format of filter (expected name=value): {filter}"
        )));
    };
    Ok(match key {
        "name" => record.name.contains(value),
        "id" => record.id.starts_with(value),
        "driver" => record.driver == value,
        "type" => match value {
            "custom" | "builtin" => scope_and_kind(record).1 == value,
            _ => {
                return Err(CliError::failure(format!(
                    "invalid filter: 'type'='{value}'"
                )))
            }
        },
        "label" => match value.split_once('=') {
            Some((k, v)) => record.labels.get(k).is_some_and(|x| x == v),
            None => record.labels.contains_key(value),
        },
        "scope" => value == "local",
        _ => return Err(CliError::failure(format!("invalid filter '{key}'"))),
    })
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn labels_text(record: &NetworkRecord) -> String {
    record
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ls(engine: &mut Engine, config: &NetConfig, args: &NetworkLsArgs) -> Result<(), CliError> {
    let all = berth_net::list_networks(engine.store_mut().meta_mut(), config).map_err(net_error)?;
    let mut selected = Vec::new();
    for record in all {
        let mut keep = true;
        for f in &args.filter {
            keep &= matches_filter(&record, f)?;
        }
        if keep {
            selected.push(record);
        }
    }
    // Docker lists networks by name.
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    let id = |r: &NetworkRecord| {
        if args.no_trunc {
            r.id.clone()
        } else {
            short_id(&r.id).to_string()
        }
    };
    if args.quiet {
        for r in &selected {
            println!("{}", id(r));
        }
        return Ok(());
    }
    if let Some(format) = &args.format {
        let template = if format == "json" {
            Template::parse("{{json .}}")
        } else {
            Template::parse(format)
        }
        .map_err(CliError::failure)?;
        if template.table {
            println!("{}", template.header());
        }
        for r in &selected {
            let (secs, nanos) = (
                r.created_at.div_euclid(1_000_000_000),
                r.created_at.rem_euclid(1_000_000_000),
            );
            let value = json!({
                "CreatedAt": rfc3339(secs, nanos as u32),
                "Driver": r.driver,
                "ID": id(r),
                "IPv4": r.driver == "bridge",
                "IPv6": false,
                "Internal": r.internal,
                "Labels": labels_text(r),
                "Name": r.name,
                "Scope": "local",
            });
            println!("{}", template.render(&value).map_err(CliError::failure)?);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = selected
        .iter()
        .map(|r| vec![id(r), r.name.clone(), r.driver.clone(), "local".into()])
        .collect();
    print!(
        "{}",
        table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
    );
    Ok(())
}

/// Docker's `network inspect` object.
fn inspect_value(engine: &Engine, record: &NetworkRecord) -> Result<Value, CliError> {
    let prefix = record
        .subnet
        .as_deref()
        .and_then(|s| s.parse::<berth_net::Ipv4Net>().ok())
        .map(|s| s.prefix_len());
    let mut containers = serde_json::Map::new();
    let endpoints = engine
        .store()
        .meta()
        .network_endpoints(&record.id)
        .map_err(|e| CliError::failure(e.to_string()))?;
    for e in endpoints {
        let endpoint_id =
            berth_oci::Digest::sha256_of(format!("{}/{}", record.id, e.container_id).as_bytes());
        containers.insert(
            e.container_id.clone(),
            json!({
                "Name": e.name,
                "EndpointID": endpoint_id.hex(),
                "MacAddress": e.mac,
                "IPv4Address": format!("{}/{}", e.ip, prefix.unwrap_or(32)),
                "IPv6Address": "",
            }),
        );
    }
    let config: Vec<Value> = match (&record.subnet, record.gateway) {
        (Some(subnet), Some(gateway)) => {
            vec![json!({"Subnet": subnet, "Gateway": gateway.to_string()})]
        }
        (Some(subnet), None) => vec![json!({"Subnet": subnet})],
        _ => vec![],
    };
    let mut options: serde_json::Map<String, Value> = record
        .options
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if record.name == berth_net::DEFAULT_NETWORK {
        if let Some(bridge) = &record.bridge {
            options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                "true".into(),
            );
            options.insert(
                "com.docker.network.bridge.name".into(),
                bridge.clone().into(),
            );
        }
    }
    let (secs, nanos) = (
        record.created_at.div_euclid(1_000_000_000),
        record.created_at.rem_euclid(1_000_000_000),
    );
    Ok(json!({
        "Name": record.name,
        "Id": record.id,
        "Created": rfc3339(secs, nanos as u32),
        "Scope": "local",
        "Driver": record.driver,
        "EnableIPv4": record.driver == "bridge",
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": record.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": record.labels,
    }))
}

fn inspect(
    engine: &mut Engine,
    config: &NetConfig,
    args: &NetworkInspectArgs,
) -> Result<(), CliError> {
    print_inspected(args.format.as_deref(), &args.names, |name| {
        let record = berth_net::find_network(engine.store_mut().meta_mut(), config, name)
            .map_err(|e| e.to_string())?;
        inspect_value(engine, &record).map_err(|e| e.to_string())
    })
}

fn rm(engine: &mut Engine, config: &NetConfig, args: &NetworkRmArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.names {
        match berth_net::remove_network(engine.store_mut().meta_mut(), config, name) {
            Ok(_) => println!("{name}"),
            Err(e) if args.force && e.kind() == berth_oci::ErrorKind::NotFound => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(errors.join("\n")))
    }
}

fn prune(engine: &mut Engine, config: &NetConfig, args: &NetworkPruneArgs) -> Result<(), CliError> {
    if !args.force {
        eprint!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let removed =
        berth_net::prune_networks(engine.store_mut().meta_mut(), config).map_err(net_error)?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for name in removed {
            println!("{name}");
        }
    }
    Ok(())
}
