//! The store under damage and stress, through the real binary: a corrupted
//! blob is reported; `kill -9` of an import at random points leaves a store
//! that `system check` calls clean and that imports again; two processes
//! importing and removing at once leave a clean store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A root filesystem tar of about `mb` MiB of incompressible files, so an
/// import takes long enough to be interrupted.
fn big_tar(dir: &Path, mb: usize) -> PathBuf {
    let tree = dir.join("big");
    std::fs::create_dir_all(tree.join("data")).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..mb * 4 {
        let mut bytes = vec![0u8; 256 * 1024];
        for chunk in bytes.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(tree.join(format!("data/f{i:03}")), bytes).unwrap();
    }
    let out = dir.join("big.tar");
    tar_dir(&tree, &out);
    out
}

fn check_clean(f: &Fixture) {
    let out = f.berth(&["system", "check"]);
    assert!(
        out.status.success(),
        "system check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

#[test]
fn a_corrupted_blob_is_reported_by_digest() {
    let f = Fixture::new();
    let tar = f.rootfs_tar();
    f.ok(&["import", tar.to_str().unwrap(), "victim"]);
    check_clean(&f);
    let inspect: serde_json::Value =
        serde_json::from_str(&f.ok(&["image", "inspect", "victim"])).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap().to_string();
    // Corrupt the config blob (the image ID is its digest): one byte.
    let blob = f.root().join("blobs/sha256").join(&id[7..]);
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = f.berth(&["system", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!("corrupt-blob: blob {id}")),
        "{report}"
    );
}

#[test]
fn killing_an_import_or_load_at_random_points_leaves_a_clean_store() {
    let f = Fixture::new();
    let tar = big_tar(f.dir.path(), 24);
    // How long one import takes, to spread the kills over it; the saved
    // image is what the load runs read.
    let start = Instant::now();
    f.ok(&["import", tar.to_str().unwrap(), "timing"]);
    let full = start.elapsed();
    let archive = f.dir.path().join("timing.tar");
    f.ok(&["save", "-o", archive.to_str().unwrap(), "timing"]);
    f.ok(&["rmi", "timing"]);
    let start = Instant::now();
    f.ok(&["load", "-i", archive.to_str().unwrap()]);
    let full_load = start.elapsed();
    f.ok(&["rmi", "timing"]);
    let mut seed: u64 = 42;
    let mut killed_mid_way = 0;
    for run in 0..20 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let span = if run % 2 == 0 { full } else { full_load };
        let delay = span.mul_f64((seed >> 11) as f64 / (1u64 << 53) as f64);
        let args: Vec<String> = if run % 2 == 0 {
            vec![
                "import".into(),
                tar.to_str().unwrap().into(),
                format!("crash:{run}"),
            ]
        } else {
            vec!["load".into(), "-i".into(), archive.to_str().unwrap().into()]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(f.root())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !finished {
            killed_mid_way += 1;
        }
        let t = Instant::now();
        check_clean(&f);
        eprintln!(
            "run {run}: delay {delay:?} finished={finished} check {:?}",
            t.elapsed()
        );
    }
    assert!(
        killed_mid_way >= 10,
        "only {killed_mid_way} of 20 runs were interrupted"
    );
    // Both work again afterwards, and nothing half-written remains.
    f.ok(&["import", tar.to_str().unwrap(), "after:crash"]);
    assert_eq!(
        f.ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: timing:latest\n"
    );
    check_clean(&f);
    for dir in ["ingest", "tmp"] {
        let left: Vec<_> = std::fs::read_dir(f.root().join(dir)).unwrap().collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}

#[test]
fn two_processes_importing_and_removing_at_once_leave_a_clean_store() {
    let f = Fixture::new();
    let tar = f.rootfs_tar();
    let script = |name: &str| {
        // Each worker imports the same content (deduplicated blobs and
        // snapshots) under its own names and removes them again.
        let root = f.root();
        let tar = tar.clone();
        let name = name.to_string();
        std::thread::spawn(move || {
            let run = |args: &[&str]| {
                let out = Command::new(env!("CARGO_BIN_EXE_berth"))
                    .arg("--root")
                    .arg(&root)
                    .args(args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            for i in 0..12 {
                let tag = format!("{name}:{i}");
                run(&["import", tar.to_str().unwrap(), &tag]);
                if i % 3 != 2 {
                    run(&["rmi", &tag]);
                }
            }
        })
    };
    let a = script("alpha");
    let b = script("beta");
    a.join().unwrap();
    b.join().unwrap();
    check_clean(&f);
    let left = f.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(
        left,
        ["alpha:11", "alpha:2", "alpha:5", "alpha:8", "beta:11", "beta:2", "beta:5", "beta:8"]
    );
    let _ = Duration::ZERO;
}
