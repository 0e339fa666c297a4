//! `berth system check|df|prune` and `berth image prune`.

use std::io::{BufRead, IsTerminal, Write};

use berth_engine::{Engine, Removed};

use crate::cli::{PruneArgs, SystemPruneArgs};
use crate::exit::CliError;
use crate::output::{human_size, table};

/// Verifies the store; lists each fault and exits 1 when there is one.
pub fn check(engine: &Engine) -> Result<(), CliError> {
    let report = engine
        .store()
        .check()
        .map_err(|e| CliError::failure(e.to_string()))?;
    for fault in &report.faults {
        println!("{}: {fault}", fault.kind.as_str());
    }
    let summary = format!(
        "{} blobs, {} images, {} snapshots checked",
        report.blobs_checked, report.images_checked, report.snapshots_checked
    );
    if report.is_clean() {
        println!("store is clean: {summary}");
        Ok(())
    } else {
        Err(CliError::failure(format!(
            "store has {} fault(s): {summary}",
            report.faults.len()
        )))
    }
}

/// Docker's `system df` table.
pub fn df(engine: &Engine) -> Result<(), CliError> {
    let usage = engine
        .store()
        .disk_usage()
        .map_err(|e| CliError::failure(e.to_string()))?;
    let percent = |part: u64, whole: u64| part.saturating_mul(100).checked_div(whole).unwrap_or(0);
    let active = usage.images - usage.dangling_images;
    let cache = engine
        .store()
        .build_cache_usage()
        .map_err(|e| CliError::failure(e.to_string()))?;
    let rows = vec![
        vec![
            "Images".to_string(),
            usage.images.to_string(),
            active.to_string(),
            human_size(usage.image_bytes),
            format!(
                "{} ({}%)",
                human_size(usage.reclaimable),
                percent(usage.reclaimable, usage.image_bytes)
            ),
        ],
        vec![
            "Containers".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
        vec![
            "Local Volumes".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
        // Docker shows no percentage for the build cache.
        vec![
            "Build Cache".into(),
            cache.records.to_string(),
            cache.active.to_string(),
            human_size(cache.bytes),
            human_size(cache.reclaimable),
        ],
    ];
    print!(
        "{}",
        table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    Ok(())
}

/// Asks `question [y/N]` on the terminal; anything but `y` declines.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// A prune without `--force`: shows `warning` and asks; without a terminal
/// to ask on, says so and declines.
pub(crate) fn confirm_prune(warning: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("{warning}\nNot confirmed (standard input is not a terminal): use --force.");
        return false;
    }
    confirm(&format!("{warning}\nAre you sure you want to continue?"))
}

pub fn prune(engine: &mut Engine, args: &PruneArgs) -> Result<(), CliError> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !confirm_prune(warning) {
            return Ok(());
        }
    }
    let (removed, freed) = engine
        .prune_images(args.all)
        .map_err(CliError::from_engine)?;
    print_removed_images(&removed);
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}

/// Docker's "Deleted Images:" block.
fn print_removed_images(removed: &[Removed]) {
    let lines: Vec<String> = removed
        .iter()
        .map(|r| match r {
            Removed::Untagged(n) => format!("untagged: {n}"),
            Removed::Deleted(d) => format!("deleted: {d}"),
        })
        .collect();
    crate::output::print_deleted("Deleted Images:", &lines);
}

/// Docker's `system prune` warning.
fn system_prune_warning(all: bool) -> String {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  \
         - all networks not used by at least one container\n",
    );
    if all {
        warning.push_str("  - all images without at least one container associated to them\n");
        warning.push_str("  - all build cache\n");
    } else {
        warning.push_str("  - all dangling images\n");
        warning.push_str("  - unused build cache\n");
    }
    warning
}

/// `berth system prune`: stopped containers, unused networks, dangling
/// (with `-a`, unused) images, then dangling (with `-a`, all) build cache.
pub fn system_prune(engine: &mut Engine, args: &SystemPruneArgs) -> Result<(), CliError> {
    if !args.force && !confirm_prune(&system_prune_warning(args.all)) {
        return Ok(());
    }
    let containers = engine.prune_containers().map_err(CliError::from_engine)?;
    crate::output::print_deleted("Deleted Containers:", &containers);
    let networks = berth_net::prune_networks(
        engine.store_mut().meta_mut(),
        &berth_net::NetConfig::default(),
    )
    .map_err(|e| CliError::failure(e.to_string()))?;
    crate::output::print_deleted("Deleted Networks:", &networks);
    let (images, image_bytes) = engine
        .prune_images(args.all)
        .map_err(CliError::from_engine)?;
    print_removed_images(&images);
    let cache_opts = crate::commands::builder::prune_options(args.all, &[], None)?;
    let cache_bytes = crate::commands::builder::prune_and_report(engine, cache_opts)?;
    println!(
        "Total reclaimed space: {}",
        human_size(image_bytes + cache_bytes)
    );
    Ok(())
}
