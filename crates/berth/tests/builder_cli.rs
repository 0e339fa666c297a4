//! The build cache against image removal, as Docker keeps them apart:
//! `rmi` and `image prune` leave the build cache alone, `builder prune`
//! removes it (dangling records, or all with `-a`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::build::*;
use common::*;

use std::path::Path;

/// A stderr of a build that succeeded.
fn build_ok(f: &Fixture, ctx: &Path, args: &[&str]) -> String {
    let mut all = vec!["build", "--progress=plain"];
    all.extend_from_slice(args);
    all.push(ctx.to_str().unwrap());
    let out = f.berth(&all);
    assert!(out.status.success(), "build failed:\n{}", stderr(&out));
    stderr(&out)
}

/// Two stages; the first one's layers are not in the final image.
fn two_stage(f: &Fixture) -> std::path::PathBuf {
    context(
        f,
        "two-stage",
        &format!(
            "FROM {BASE} AS compile\nRUN echo compiled > /out.txt\nCOPY src.txt /src.txt\n\
             FROM {BASE}\nCOPY --from=compile /out.txt /out.txt\n"
        ),
        &[("src.txt", "source\n")],
    )
}

/// `(TOTAL, ACTIVE)` of the Build Cache row of `system df`.
fn df_build_cache(f: &Fixture) -> (usize, usize) {
    let out = f.ok(&["system", "df"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("no Build Cache row:\n{out}"));
    let fields: Vec<&str> = row["Build Cache".len()..].split_whitespace().collect();
    (fields[0].parse().unwrap(), fields[1].parse().unwrap())
}

#[test]
fn rmi_keeps_the_build_cache_and_builder_prune_all_drops_it() {
    let f = build_fixture();
    let ctx = two_stage(&f);
    assert_eq!(cached_count(&build_ok(&f, &ctx, &["-t", "app"])), 0);
    let other = context(
        &f,
        "other",
        &format!("FROM {BASE}\nRUN echo other > /o\n"),
        &[],
    );
    build_ok(&f, &other, &["-t", "other"]);
    // Deleting an image runs a GC at once.
    let rmi = f.ok(&["rmi", "other"]);
    assert!(rmi.contains("Deleted: sha256:"), "{rmi}");

    let again = build_ok(&f, &ctx, &["-t", "app"]);
    assert_eq!(cached_count(&again), 3, "{again}");
    // Four records: the final image uses one (its COPY layer).
    assert_eq!(df_build_cache(&f), (4, 1));

    // Without -f, "n" (or no terminal) declines.
    let declined = f.berth_stdin(&["builder", "prune", "-a"], Some(b"n\n"));
    assert!(declined.status.success(), "{}", stderr(&declined));
    assert!(
        stderr(&declined).contains("WARNING! This will remove all build cache."),
        "{}",
        stderr(&declined)
    );
    assert!(declined.stdout.is_empty());
    assert_eq!(df_build_cache(&f), (4, 1));

    let pruned = f.ok(&["builder", "prune", "-a", "-f"]);
    assert!(
        pruned.starts_with("Deleted build cache objects:\n"),
        "{pruned}"
    );
    assert_eq!(
        pruned.lines().filter(|l| l.len() == 64).count(),
        4,
        "{pruned}"
    );
    assert!(pruned.contains("\nTotal reclaimed space: "), "{pruned}");
    assert!(!pruned.ends_with(" 0B\n"), "content freed: {pruned}");
    assert_eq!(df_build_cache(&f), (0, 0));
    assert_nothing_left(&f);

    let rebuilt = build_ok(&f, &ctx, &["-t", "app"]);
    assert_eq!(cached_count(&rebuilt), 0, "{rebuilt}");
    assert_eq!(sh(&f, "app", "cat /out.txt"), "compiled\n");
    assert_nothing_left(&f);
}

#[test]
fn builder_prune_without_all_removes_only_dangling_cache() {
    let f = build_fixture();
    let ctx = two_stage(&f);
    build_ok(&f, &ctx, &["-t", "app"]);

    // Everything was used just now.
    let out = f.ok(&["builder", "prune", "-f", "--filter", "until=24h"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let bad = f.berth(&["builder", "prune", "-f", "--filter", "label=x"]);
    assert_eq!(bad.status.code(), Some(125), "{}", stderr(&bad));

    let out = f.ok(&["builder", "prune", "-f"]);
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 2, "{out}");
    assert_eq!(df_build_cache(&f), (1, 1));
    assert_nothing_left(&f);

    // The first stage runs again; the final COPY, whose layer the image
    // holds, is still cached.
    let again = build_ok(&f, &ctx, &["-t", "app"]);
    assert_eq!(cached_count(&again), 1, "{again}");
}

#[test]
fn system_prune_removes_the_build_cache_too() {
    let f = build_fixture();
    let ctx = two_stage(&f);
    build_ok(&f, &ctx, &["-t", "app"]);
    assert_eq!(df_build_cache(&f), (3, 1));

    let declined = f.berth_stdin(&["system", "prune"], Some(b"n\n"));
    assert!(
        stderr(&declined).contains("  - all dangling images\n  - unused build cache\n"),
        "{}",
        stderr(&declined)
    );
    assert_eq!(df_build_cache(&f), (3, 1));

    let out = f.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted build cache objects:\n"), "{out}");
    assert_eq!(df_build_cache(&f), (1, 1));
    assert_nothing_left(&f);

    // -a: every image without a container, and all build cache.
    let out = f.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted Images:\n"), "{out}");
    assert_eq!(df_build_cache(&f), (0, 0));
    assert_eq!(f.ok(&["images", "-q"]), "");
    assert_nothing_left(&f);
}
