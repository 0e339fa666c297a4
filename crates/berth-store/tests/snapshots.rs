//! Snapshots: layers unpacked once per chain ID, verified against their
//! diff IDs, stacked with real overlayfs, abandoned ones swept.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use berth_fs::{tar_dir, TarOptions};
use berth_oci::{chain_ids, Digest};
use berth_store::{Error, Store};

/// A gzip layer blob of `tree` and the diff ID of its uncompressed tar.
fn layer(store: &Store, tree: &Path) -> (Digest, Digest) {
    let (tar, _) = tar_dir(tree, Vec::new(), &TarOptions::default()).unwrap();
    let diff_id = Digest::sha256_of(&tar);
    let mut gz = berth_fs::gzip_writer(Vec::new(), 1);
    gz.write_all(&tar).unwrap();
    let blob = store.content().write_blob(&gz.finish().unwrap()).unwrap();
    (diff_id, blob)
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn layers_unpack_once_and_stack_with_overlayfs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(&tmp.path().join("root")).unwrap();

    let base = tmp.path().join("base");
    write(&base, "etc/os-release", "base\n");
    write(&base, "app/old.txt", "old\n");
    write(&base, "cache/a", "a\n");
    let upper = tmp.path().join("upper");
    write(&upper, "app/new.txt", "new\n");
    // A deletion and an opaque directory, as a layer diff records them.
    write(&upper, "app/.wh.old.txt", "");
    write(&upper, "cache/.wh..wh..opq", "");
    write(&upper, "cache/b", "b\n");

    let (d0, b0) = layer(&store, &base);
    let (d1, b1) = layer(&store, &upper);
    let chain = chain_ids(&[d0.clone(), d1.clone()]);
    let s0 = store.unpack_layer(&chain[0], None, &d0, &b0).unwrap();
    let s1 = store
        .unpack_layer(&chain[1], Some(&chain[0]), &d1, &b1)
        .unwrap();
    assert_ne!(s0.id, s1.id);
    // Unpacking again reuses the snapshot.
    assert_eq!(store.unpack_layer(&chain[0], None, &d0, &b0).unwrap(), s0);

    let spec = store.snapshots().overlay(store.meta(), &chain[1]).unwrap();
    assert_eq!(spec.lower.len(), 2);
    let option = spec.lowerdir_option(store.snapshots().dir()).unwrap();
    assert_eq!(option, format!("lowerdir={}/fs:{}/fs", s1.id, s0.id));

    // Mount the chain read-only and look through it.
    let merged = tmp.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let status = Command::new("mount")
        .current_dir(store.snapshots().dir())
        .args(["-t", "overlay", "overlay", "-o", &option])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "overlay mount failed");
    let read = |rel: &str| std::fs::read_to_string(merged.join(rel)).ok();
    let outcome = (
        read("etc/os-release"),
        read("app/new.txt"),
        read("app/old.txt"),
        read("cache/a"),
        read("cache/b"),
    );
    let _ = Command::new("umount").arg(&merged).status();
    assert_eq!(
        outcome,
        (
            Some("base\n".into()),
            Some("new\n".into()),
            None,
            None,
            Some("b\n".into())
        )
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_leaves_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(&tmp.path().join("root")).unwrap();
    let tree = tmp.path().join("t");
    write(&tree, "x", "x");
    let (_, blob) = layer(&store, &tree);
    let wrong = Digest::sha256_of(b"not this layer");
    let err = store.unpack_layer(&wrong, None, &wrong, &blob).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store.snapshots().list(store.meta()).unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(store.snapshots().dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "locks")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let locks: Vec<_> = std::fs::read_dir(store.snapshots().dir().join("locks"))
        .unwrap()
        .collect();
    assert!(locks.is_empty(), "work lock left behind: {locks:?}");
}

#[test]
fn an_abandoned_unpack_is_swept_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    {
        let store = Store::open(&root).unwrap();
        drop(store);
        // Simulate a process killed mid-unpack: an uncommitted row, a
        // half-written directory, and nobody holding its lock.
        let conn = rusqlite::Connection::open(root.join("berth.db")).unwrap();
        let chain = Digest::sha256_of(b"half");
        conn.execute(
            "INSERT INTO snapshots (chain_id, id, parent, diff_id, committed) VALUES (?1, 7, NULL, ?1, 0)",
            [chain.to_string()],
        )
        .unwrap();
        write(&root.join("snapshots/7/fs"), "partial", "p");
        std::fs::write(root.join("snapshots/7/lock"), b"").unwrap();
    }
    let store = Store::open(&root).unwrap();
    assert!(!root.join("snapshots/7").exists());
    let n: i64 = rusqlite::Connection::open(root.join("berth.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    drop(store);
}
