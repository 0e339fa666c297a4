//! `berth builder prune`: removes build cache, as `docker builder prune`.

use std::time::Duration;

use berth_engine::{BuildCachePruneOptions, Engine};

use crate::cli::BuilderPruneArgs;
use crate::exit::CliError;
use crate::output::human_size;

/// Docker's warnings, before its "Are you sure you want to continue?".
const DANGLING_WARNING: &str = "WARNING! This will remove all dangling build cache.";
const ALL_WARNING: &str = "WARNING! This will remove all build cache.";

pub fn prune(engine: &mut Engine, args: &BuilderPruneArgs) -> Result<(), CliError> {
    let opts = prune_options(args.all, &args.filter, args.keep_storage.as_deref())?;
    if !args.force {
        let warning = if args.all {
            ALL_WARNING
        } else {
            DANGLING_WARNING
        };
        if !crate::commands::system::confirm_prune(warning) {
            return Ok(());
        }
    }
    let freed = prune_and_report(engine, opts)?;
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}

/// Prunes the build cache and lists the removed records (Docker's
/// "Deleted build cache objects:"); returns the bytes freed.
pub(crate) fn prune_and_report(
    engine: &mut Engine,
    opts: BuildCachePruneOptions,
) -> Result<u64, CliError> {
    let pruned = engine
        .prune_build_cache(opts)
        .map_err(CliError::from_engine)?;
    let ids: Vec<&str> = pruned.removed.iter().map(|key| key.hex()).collect();
    crate::output::print_deleted("Deleted build cache objects:", &ids);
    Ok(pruned.gc.bytes_freed())
}

/// The options of `--all`, `--filter` (only `until=DURATION`, as Go's
/// `time.ParseDuration`) and `--keep-storage` (a size such as `10GB`).
pub(crate) fn prune_options(
    all: bool,
    filters: &[String],
    keep_storage: Option<&str>,
) -> Result<BuildCachePruneOptions, CliError> {
    let mut opts = BuildCachePruneOptions {
        all,
        ..BuildCachePruneOptions::default()
    };
    for filter in filters {
        let Some((key, value)) = filter.split_once('=') else {
            return Err(CliError::usage(format!(
                "bad format of filter (expected name=value): {filter}"
            )));
        };
        match key {
            "until" => {
                let nanos = berth_dockerfile::instructions::parse_go_duration(value)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        CliError::usage(format!(
                            "invalid until filter: {value:?} is not a duration"
                        ))
                    })?;
                opts.unused_for = Some(Duration::from_nanos(nanos.unsigned_abs()));
            }
            other => return Err(CliError::usage(format!("invalid filter '{other}'"))),
        }
    }
    if let Some(size) = keep_storage {
        let bytes = berth_runtime::resources::parse_ram_bytes(size).map_err(|e| {
            CliError::usage(format!(
                "invalid argument {size:?} for \"--keep-storage\" flag: {e}"
            ))
        })?;
        opts.keep_bytes = Some(bytes.max(0).unsigned_abs());
    }
    Ok(opts)
}
