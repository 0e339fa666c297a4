//! `berth volume create|ls|inspect|rm|prune`, with Docker's flags and output.

use std::collections::BTreeMap;

use berth_engine::{Engine, VolumeFilter, VolumeInfo};
use serde_json::{json, Value};

use crate::cli::{
    VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::commands::system::confirm_prune;
use crate::exit::CliError;
use crate::output::{human_size, print_inspected, table};
use crate::template::Template;

/// The containers using each volume, as a lookup for the engine's
/// "in use" checks.
fn volume_users(engine: &Engine) -> Result<impl Fn(&str) -> Vec<String>, CliError> {
    let users = engine.volume_users().map_err(CliError::from_engine)?;
    Ok(move |name: &str| users.get(name).cloned().unwrap_or_default())
}

/// `KEY=VALUE` (or `KEY`, an empty value) list flags into a map.
fn key_values(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (v.clone(), String::new()),
        })
        .collect()
}

pub fn create(engine: &mut Engine, args: &VolumeCreateArgs) -> Result<(), CliError> {
    let name =
        match (&args.name, &args.volume) {
            (Some(flag), Some(positional)) if flag != positional => return Err(CliError::failure(
                "conflicting options: either specify --name or provide positional arg, not both",
            )),
            (Some(n), _) | (None, Some(n)) => Some(n.as_str()),
            (None, None) => None,
        };
    let volume = engine
        .create_volume(
            name,
            Some(args.driver.as_str()),
            key_values(&args.label),
            key_values(&args.opt),
        )
        .map_err(CliError::from_engine)?;
    println!("{}", volume.name());
    Ok(())
}

/// `volume ls --format` fields, as Docker's volume formatter names them.
fn format_fields(volume: &VolumeInfo) -> Value {
    let labels: Vec<String> = volume
        .record
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "Availability": "N/A",
        "Driver": volume.record.driver,
        "Group": "N/A",
        "Labels": labels.join(","),
        "Links": "N/A",
        "Mountpoint": volume.mountpoint.to_string_lossy(),
        "Name": volume.name(),
        "Scope": "local",
        "Size": "N/A",
        "Status": "N/A",
    })
}

pub fn ls(engine: &Engine, args: &VolumeLsArgs) -> Result<(), CliError> {
    let filter = VolumeFilter::parse(&args.filter).map_err(CliError::from_engine)?;
    let volumes = engine
        .list_volumes(&filter, volume_users(engine)?)
        .map_err(CliError::from_engine)?;
    if args.quiet {
        for v in &volumes {
            println!("{}", v.name());
        }
        return Ok(());
    }
    if let Some(format) = args.format.as_deref().filter(|f| *f != "table") {
        let text = if format == "json" {
            "{{json .}}"
        } else {
            format
        };
        let template = Template::parse(text).map_err(CliError::failure)?;
        if template.table {
            println!("{}", template.header().replace("NAME", "VOLUME NAME"));
        }
        for v in &volumes {
            let line = template
                .render(&format_fields(v))
                .map_err(CliError::failure)?;
            println!("{line}");
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = volumes
        .iter()
        .map(|v| vec![v.record.driver.clone(), v.name().to_string()])
        .collect();
    print!("{}", table(&["DRIVER", "VOLUME NAME"], &rows));
    Ok(())
}

pub fn inspect(engine: &Engine, args: &VolumeInspectArgs) -> Result<(), CliError> {
    let format = args.format.as_deref().filter(|f| *f != "json");
    print_inspected(format, &args.volumes, |name| {
        engine
            .inspect_volume(name)
            .map(|v| v.to_json())
            .map_err(|e| e.to_string())
    })
}

pub fn rm(engine: &mut Engine, args: &VolumeRmArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.volumes {
        let users = volume_users(engine)?;
        match engine.remove_volume(name, args.force, users) {
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

pub fn prune(engine: &mut Engine, args: &VolumePruneArgs) -> Result<(), CliError> {
    let filter = VolumeFilter::parse(&args.filter).map_err(CliError::from_engine)?;
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all local volumes not used by at least one container."
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        };
        if !confirm_prune(warning) {
            return Ok(());
        }
    }
    let (removed, freed) = engine
        .prune_volumes(args.all, &filter, volume_users(engine)?)
        .map_err(CliError::from_engine)?;
    crate::output::print_deleted("Deleted Volumes:", &removed);
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}
