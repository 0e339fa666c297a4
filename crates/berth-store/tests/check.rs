//! `Store::check`: a sound store is clean, and each kind of damage is
//! reported as its own fault, naming what is damaged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use berth_oci::{chain_ids, ImageConfig, RootFs};
use berth_store::{CheckReport, Digest, FaultKind, ImageRecord, Store};
use rustix::fs::{flock, FlockOperation};

mod common;
use common::*;

/// The kinds of the faults, in order.
fn kinds(report: &CheckReport) -> Vec<FaultKind> {
    report.faults.iter().map(|f| f.kind).collect()
}

fn sql(store: &Store, statement: &str, params: &[&dyn rusqlite::ToSql]) {
    let conn = rusqlite::Connection::open(store.db_path()).unwrap();
    // Damage the schema would refuse (rusqlite's bundled SQLite enforces
    // foreign keys by default).
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    conn.execute(statement, params).unwrap();
}

#[test]
fn a_sound_store_with_shared_layers_is_clean() {
    let f = fixture();
    let report = f.store.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.faults);
    // 3 layers, 2 configs, 2 manifests.
    assert_eq!(report.blobs_checked, 7);
    assert_eq!(report.images_checked, 2);
    // The base is unpacked once.
    assert_eq!(report.snapshots_checked, 3);
}

#[test]
fn one_flipped_byte_names_exactly_that_blob() {
    let f = fixture();
    let blob = f.a.layers[1].blob.clone();
    let path = f.store.content().path(&blob);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();

    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::CorruptBlob],
        "{:?}",
        report.faults
    );
    let fault = &report.faults[0];
    assert_eq!(fault.subject, format!("blob {blob}"));
    let actual = Digest::sha256_of(&bytes);
    assert_eq!(
        fault.to_string(),
        format!("blob {blob}: content hashes to {actual}")
    );
}

#[test]
fn a_writable_blob_and_a_stray_file_are_reported() {
    let f = fixture();
    let path = f.store.content().path(&f.b.id);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stray = f.store.root().join("blobs/sha256/not-a-digest");
    std::fs::write(&stray, b"?").unwrap();
    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::WritableBlob, FaultKind::StrayBlobFile],
        "{:?}",
        report.faults
    );
    assert_eq!(report.faults[0].subject, format!("blob {}", f.b.id));
    assert!(report.faults[1].subject.contains("not-a-digest"));
}

#[test]
fn a_deleted_layer_blob_is_missing_from_its_image() {
    let f = fixture();
    let blob = f.b.layers[1].blob.clone();
    f.store.content().delete(&blob).unwrap();
    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::MissingBlob],
        "{:?}",
        report.faults
    );
    assert_eq!(report.faults[0].subject, format!("image {}", f.b.id));
    assert!(report.faults[0].detail.contains(&blob.to_string()));
}

#[test]
fn a_missing_config_and_a_missing_manifest_are_reported() {
    let f = fixture();
    f.store.content().delete(&f.a.id).unwrap();
    f.store
        .content()
        .delete(f.b.manifest.as_ref().unwrap())
        .unwrap();
    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::MissingBlob, FaultKind::MissingBlob],
        "{:?}",
        report.faults
    );
    let text: Vec<String> = report.faults.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|t| t.contains("config blob")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("manifest blob")), "{text:?}");
}

#[test]
fn a_config_whose_diff_ids_disagree_with_the_record() {
    let f = fixture();
    let mut store = f.store;
    // A record listing the layers of `a` under a config that names only its
    // base.
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: Some(RootFs {
            diff_ids: vec![f.a.layers[0].diff_id.clone()],
            ..RootFs::default()
        }),
        ..ImageConfig::default()
    };
    let id = store
        .content()
        .write_blob(&config.to_canonical_json().unwrap())
        .unwrap();
    let record = ImageRecord {
        id: id.clone(),
        manifest: None,
        created_at: 1,
        size: 0,
        layers: f.a.layers.clone(),
    };
    store.meta_mut().put_image(&record, &[]).unwrap();
    let report = store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::LayerMismatch],
        "{:?}",
        report.faults
    );
    assert_eq!(report.faults[0].subject, format!("image {id}"));
}

#[test]
fn a_config_that_does_not_parse_and_a_manifest_for_another_image() {
    let f = fixture();
    let mut store = f.store;
    let junk = store.content().write_blob(b"{\"rootfs\": 7}").unwrap();
    let bad = ImageRecord {
        id: junk,
        manifest: f.a.manifest.clone(),
        created_at: 1,
        size: 0,
        layers: Vec::new(),
    };
    store.meta_mut().put_image(&bad, &[]).unwrap();
    let report = store.check().unwrap();
    // The config does not parse; the borrowed manifest names another config
    // and other layers.
    assert_eq!(
        kinds(&report),
        vec![
            FaultKind::BadConfig,
            FaultKind::BadManifest,
            FaultKind::BadManifest
        ],
        "{:?}",
        report.faults
    );
    assert!(report
        .faults
        .iter()
        .all(|f| f.subject == format!("image {}", bad.id)));
}

#[test]
fn a_tag_to_a_missing_image() {
    let f = fixture();
    let ghost = Digest::sha256_of(b"ghost");
    sql(
        &f.store,
        "INSERT INTO tags (name, image_id) VALUES ('example/ghost:latest', ?1)",
        &[&ghost.to_string()],
    );
    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::DanglingTag],
        "{:?}",
        report.faults
    );
    assert_eq!(
        report.faults[0].to_string(),
        format!("tag example/ghost:latest: points at image {ghost}, which is not stored")
    );
}

#[test]
fn a_removed_snapshot_dir_and_a_stray_one() {
    let f = fixture();
    let chain = chain_ids(&[f.a.layers[0].diff_id.clone(), f.a.layers[1].diff_id.clone()]);
    let top = f
        .store
        .snapshots()
        .get(f.store.meta(), &chain[1])
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(f.store.snapshots().fs_dir(top.id)).unwrap();
    std::fs::create_dir_all(f.store.snapshots().dir().join("999/fs")).unwrap();
    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::MissingSnapshotDir, FaultKind::StraySnapshotDir],
        "{:?}",
        report.faults
    );
    assert_eq!(
        report.faults[0].subject,
        format!("snapshot {} ({})", top.id, chain[1])
    );
    assert!(
        report.faults[1].subject.ends_with("/999"),
        "{}",
        report.faults[1]
    );
}

#[test]
fn a_snapshot_with_a_wrong_chain_id_or_a_missing_parent() {
    let f = fixture();
    let diff = Digest::sha256_of(b"diff");
    let wrong = Digest::sha256_of(b"not the chain");
    let orphan = Digest::sha256_of(b"orphan");
    let gone = Digest::sha256_of(b"gone parent");
    let base_chain = f.a.layers[0].diff_id.to_string();
    sql(
        &f.store,
        "INSERT INTO snapshots (chain_id, id, parent, diff_id, committed, size)
         VALUES (?1, 50, ?2, ?3, 1, 0)",
        &[&wrong.to_string(), &base_chain, &diff.to_string()],
    );
    let orphan_chain = chain_ids(&[gone.clone(), orphan.clone()])[1].clone();
    sql(
        &f.store,
        "INSERT INTO snapshots (chain_id, id, parent, diff_id, committed, size)
         VALUES (?1, 51, ?2, ?3, 1, 0)",
        &[
            &orphan_chain.to_string(),
            &gone.to_string(),
            &orphan.to_string(),
        ],
    );
    for id in [50, 51] {
        std::fs::create_dir_all(f.store.snapshots().fs_dir(id)).unwrap();
    }
    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::ChainMismatch, FaultKind::MissingParent],
        "{:?}",
        report.faults
    );
    let expected = chain_ids(&[f.a.layers[0].diff_id.clone(), diff])[1].clone();
    assert!(
        report.faults[0].detail.contains(&expected.to_string()),
        "{}",
        report.faults[0]
    );
    assert!(report.faults[1].detail.contains(&gone.to_string()));
}

#[test]
fn abandoned_work_is_a_fault_and_live_work_is_not() {
    let f = fixture();
    // A live ingest in this process (its lock held).
    let mut live = f.store.content().ingest(None).unwrap();
    live.write_all(b"half a blob").unwrap();
    // An ingest whose writer died: its lock file is free.
    let dead = f.store.layout().ingest_root().join("dead-1");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("lock"), b"").unwrap();
    std::fs::write(dead.join("data"), b"partial").unwrap();

    // Uncommitted snapshots: one whose unpacker died, one still held.
    for (chain, id) in [("dead unpack", 60), ("live unpack", 61)] {
        let chain = Digest::sha256_of(chain.as_bytes());
        sql(
            &f.store,
            "INSERT INTO snapshots (chain_id, id, parent, diff_id, committed)
             VALUES (?1, ?2, NULL, ?1, 0)",
            &[&chain.to_string(), &id],
        );
        let dir = f.store.snapshots().dir().join(id.to_string());
        std::fs::create_dir_all(dir.join("fs")).unwrap();
        // Work locks live in snapshots/locks/, named by chain ID.
        let locks = f.store.snapshots().dir().join("locks");
        std::fs::create_dir_all(&locks).unwrap();
        std::fs::write(locks.join(format!("sha256-{}.lock", chain.hex())), b"").unwrap();
    }
    let live_chain = Digest::sha256_of(b"live unpack");
    let held = File::open(
        f.store
            .snapshots()
            .dir()
            .join(format!("locks/sha256-{}.lock", live_chain.hex())),
    )
    .unwrap();
    flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();

    let report = f.store.check().unwrap();
    assert_eq!(
        kinds(&report),
        vec![FaultKind::AbandonedSnapshot, FaultKind::AbandonedIngest],
        "{:?}",
        report.faults
    );
    assert!(report.faults[0].subject.starts_with("snapshot 60 "));
    assert!(report.faults[1].subject.ends_with("dead-1"));
    assert!(report.faults[1]
        .to_string()
        .contains("partial ingest left behind"));

    // Probing did not disturb the live ingest.
    live.write_all(b", the rest").unwrap();
    live.commit().unwrap();
    drop(held);
    drop(f.tmp);
}
