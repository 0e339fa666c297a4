//! `Store::gc`, `remove_image`, `dangling_images` and `disk_usage`: what
//! images and leases reach survives, the rest goes, fresh content is spared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use berth_oci::chain_ids;
use berth_store::{
    BuildCachePruneOptions, CacheRecord, Digest, Error, GcOptions, ImageRecord, Store,
    DEFAULT_GRACE,
};

mod common;
use common::*;

const NOW_GC: GcOptions = GcOptions {
    grace: Duration::ZERO,
};

fn blobs(store: &Store) -> BTreeSet<Digest> {
    store.content().list().unwrap().0.into_iter().collect()
}

fn chains(store: &Store) -> BTreeSet<Digest> {
    store
        .snapshots()
        .list(store.meta())
        .unwrap()
        .into_iter()
        .map(|s| s.chain_id)
        .collect()
}

/// Every blob an image record reaches.
fn image_blobs(image: &ImageRecord) -> BTreeSet<Digest> {
    let mut out: BTreeSet<Digest> = image.layers.iter().map(|l| l.blob.clone()).collect();
    out.insert(image.id.clone());
    out.extend(image.manifest.clone());
    out
}

fn image_chains(image: &ImageRecord) -> Vec<Digest> {
    let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
    chain_ids(&diff_ids)
}

fn size(store: &Store, d: &Digest) -> u64 {
    store.content().size(d).unwrap().unwrap()
}

/// Makes a blob look written `age` ago.
fn age(store: &Store, d: &Digest, age: Duration) {
    let file = std::fs::File::open(store.content().path(d)).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn a_full_store_loses_nothing() {
    let mut f = fixture();
    let before = (blobs(&f.store), chains(&f.store));
    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!(
        report.blobs_removed + report.snapshots_removed,
        0,
        "{report:?}"
    );
    assert_eq!((blobs(&f.store), chains(&f.store)), before);
    assert!(f.store.check().unwrap().is_clean());
}

#[test]
fn shared_layers_survive_removing_one_image() {
    let mut f = fixture();
    assert!(matches!(
        f.store.remove_image(&f.a.id),
        Err(Error::Conflict(_))
    ));
    f.store.meta_mut().remove_tag("example/a:latest").unwrap();
    assert_eq!(f.store.dangling_images().unwrap(), vec![f.a.id.clone()]);
    f.store.remove_image(&f.a.id).unwrap();
    assert!(matches!(
        f.store.remove_image(&f.a.id),
        Err(Error::NotFound(_))
    ));

    let only_a: Vec<Digest> = vec![
        f.a.id.clone(),
        f.a.manifest.clone().unwrap(),
        f.a.layers[1].blob.clone(),
    ];
    let a_top = f
        .store
        .snapshots()
        .get(f.store.meta(), &image_chains(&f.a)[1])
        .unwrap()
        .unwrap();
    let blob_bytes: u64 = only_a.iter().map(|d| size(&f.store, d)).sum();

    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!(report.blobs_removed, 3, "{report:?}");
    assert_eq!(report.blob_bytes_freed, blob_bytes);
    assert_eq!(report.snapshots_removed, 1);
    assert_eq!(report.snapshot_bytes_freed, a_top.size);
    assert_eq!(report.bytes_freed(), blob_bytes + a_top.size);
    assert_eq!(report.layer_records_removed, 1);

    assert_eq!(blobs(&f.store), image_blobs(&f.b));
    assert_eq!(
        chains(&f.store),
        image_chains(&f.b).into_iter().collect::<BTreeSet<_>>()
    );
    assert!(!f
        .store
        .snapshots()
        .dir()
        .join(a_top.id.to_string())
        .exists());
    let check = f.store.check().unwrap();
    assert!(check.is_clean(), "{:?}", check.faults);
    // The shared base still stacks under `b`.
    assert_eq!(
        f.store
            .snapshots()
            .overlay(f.store.meta(), &image_chains(&f.b)[1])
            .unwrap()
            .lower
            .len(),
        2
    );
}

#[test]
fn removing_both_images_empties_the_store() {
    let mut f = fixture();
    for (tag, id) in [("example/a:latest", &f.a.id), ("example/b:latest", &f.b.id)] {
        f.store.meta_mut().remove_tag(tag).unwrap();
        f.store.remove_image(id).unwrap();
    }
    let total: u64 = blobs(&f.store).iter().map(|d| size(&f.store, d)).sum();
    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!(report.blobs_removed, 7, "{report:?}");
    assert_eq!(report.blob_bytes_freed, total);
    assert_eq!(report.snapshots_removed, 3);
    assert_eq!(report.layer_records_removed, 3);
    assert!(blobs(&f.store).is_empty());
    assert!(chains(&f.store).is_empty());
    assert!(f.store.meta().layer_records().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(f.store.snapshots().dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "locks")
            .count(),
        0
    );
    assert!(f.store.check().unwrap().is_clean());
}

#[test]
fn untagged_images_are_roots() {
    let mut f = fixture();
    f.store.meta_mut().remove_tag("example/a:latest").unwrap();
    let before = blobs(&f.store);
    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    assert_eq!(blobs(&f.store), before);
}

#[test]
fn leased_blobs_and_snapshots_survive_until_the_lease_goes() {
    let mut f = fixture();
    let loose = f
        .store
        .content()
        .write_blob(b"pulled, not yet recorded")
        .unwrap();
    let expired = f.store.content().write_blob(b"lease ran out").unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let meta = f.store.meta_mut();
    meta.create_lease("pull", now, None).unwrap();
    meta.lease_resource("pull", "blob", &loose.to_string())
        .unwrap();
    // The top snapshot of `a` is leased: its parent (the base) comes along.
    let a_chain = image_chains(&f.a);
    meta.lease_resource("pull", "snapshot", &a_chain[1].to_string())
        .unwrap();
    meta.create_lease("old", now - 100, Some(now - 10)).unwrap();
    meta.lease_resource("old", "blob", &expired.to_string())
        .unwrap();

    for (tag, id) in [("example/a:latest", &f.a.id), ("example/b:latest", &f.b.id)] {
        f.store.meta_mut().remove_tag(tag).unwrap();
        f.store.remove_image(id).unwrap();
    }
    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!(report.leases_expired, 1, "{report:?}");
    assert_eq!(blobs(&f.store), BTreeSet::from([loose.clone()]));
    assert_eq!(chains(&f.store), a_chain.iter().cloned().collect());
    assert_eq!(report.snapshots_removed, 1, "only b's top goes");

    f.store.meta_mut().delete_lease("pull").unwrap();
    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!((report.blobs_removed, report.snapshots_removed), (1, 2));
    assert!(blobs(&f.store).is_empty());
    assert!(chains(&f.store).is_empty());
}

#[test]
fn fresh_unreferenced_blobs_survive_the_grace_period() {
    let mut f = fixture();
    let fresh = f.store.content().write_blob(b"just committed").unwrap();
    let stale = f.store.content().write_blob(b"left over long ago").unwrap();
    age(&f.store, &stale, DEFAULT_GRACE + Duration::from_secs(60));

    let report = f.store.gc(GcOptions::default()).unwrap();
    assert_eq!(report.blobs_removed, 1, "{report:?}");
    assert_eq!(report.blob_bytes_freed, b"left over long ago".len() as u64);
    assert_eq!(report.kept_in_grace, 1);
    assert!(f.store.content().size(&fresh).unwrap().is_some());
    assert!(f.store.content().size(&stale).unwrap().is_none());

    // Fresh snapshots of a removed image are spared too.
    f.store.meta_mut().remove_tag("example/a:latest").unwrap();
    f.store.remove_image(&f.a.id).unwrap();
    for d in [f.a.id.clone(), f.a.manifest.clone().unwrap()] {
        age(&f.store, &d, DEFAULT_GRACE * 2);
    }
    let report = f.store.gc(GcOptions::default()).unwrap();
    // Config and manifest are old; a's layer blob and snapshot are fresh.
    assert_eq!(report.blobs_removed, 2, "{report:?}");
    assert_eq!(report.snapshots_removed, 0);
    assert_eq!(chains(&f.store).len(), 3);

    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!((report.blobs_removed, report.snapshots_removed), (2, 1));
    drop(f.tmp);
}

#[test]
fn disk_usage_counts_shared_content_once_and_what_pruning_frees() {
    let mut f = fixture();
    let all_blobs: u64 = blobs(&f.store).iter().map(|d| size(&f.store, d)).sum();
    let snaps = f.store.snapshots().list(f.store.meta()).unwrap();
    let snap_bytes: u64 = snaps.iter().map(|s| s.size).sum();
    let usage = f.store.disk_usage().unwrap();
    assert_eq!(usage.images, 2);
    assert_eq!(usage.dangling_images, 0);
    assert_eq!(usage.blobs, 7);
    assert_eq!(usage.blob_bytes, all_blobs);
    assert_eq!(usage.snapshots, 3);
    assert_eq!(usage.snapshot_bytes, snap_bytes);
    assert_eq!(usage.image_bytes, all_blobs + snap_bytes);
    assert_eq!(usage.reclaimable, 0);

    // An unreferenced blob is reclaimable but belongs to no image.
    let loose = f.store.content().write_blob(b"loose").unwrap();
    f.store.meta_mut().remove_tag("example/a:latest").unwrap();
    let a_only: u64 = [
        f.a.id.clone(),
        f.a.manifest.clone().unwrap(),
        f.a.layers[1].blob.clone(),
    ]
    .iter()
    .map(|d| size(&f.store, d))
    .sum();
    let a_top = f
        .store
        .snapshots()
        .get(f.store.meta(), &image_chains(&f.a)[1])
        .unwrap()
        .unwrap()
        .size;
    let usage = f.store.disk_usage().unwrap();
    assert_eq!(usage.dangling_images, 1);
    assert_eq!(usage.image_bytes, all_blobs + snap_bytes);
    assert_eq!(usage.blob_bytes, all_blobs + size(&f.store, &loose));
    assert_eq!(usage.reclaimable, a_only + a_top + size(&f.store, &loose));

    // Pruning the dangling image and collecting frees exactly that.
    for id in f.store.dangling_images().unwrap() {
        f.store.remove_image(&id).unwrap();
    }
    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!(report.bytes_freed(), usage.reclaimable);
    assert_eq!(f.store.disk_usage().unwrap().reclaimable, 0);
}

#[test]
fn an_unpack_in_progress_keeps_the_snapshot_it_stacks_on() {
    let mut f = fixture();
    for (tag, id) in [("example/a:latest", &f.a.id), ("example/b:latest", &f.b.id)] {
        f.store.meta_mut().remove_tag(tag).unwrap();
        f.store.remove_image(id).unwrap();
    }
    // Another process is unpacking a layer on top of `a`'s chain (its
    // uncommitted row is recorded; its image is not yet).
    let a_chain = image_chains(&f.a);
    let diff = Digest::sha256_of(b"next layer");
    let next = chain_ids(&[a_chain[1].clone(), diff.clone()])[1].clone();
    let conn = rusqlite::Connection::open(f.store.db_path()).unwrap();
    conn.execute(
        "INSERT INTO snapshots (chain_id, id, parent, diff_id, committed) VALUES (?1, 40, ?2, ?3, 0)",
        [next.to_string(), a_chain[1].to_string(), diff.to_string()],
    )
    .unwrap();
    let report = f.store.gc(NOW_GC).unwrap();
    assert_eq!(report.snapshots_removed, 1, "only b's top goes: {report:?}");
    assert_eq!(chains(&f.store), a_chain.iter().cloned().collect());
}

/// A build cache record of `layer` stacked on `parent` (a chain ID), with
/// its snapshot, last used at `last_used`.
fn cache_record(
    store: &mut Store,
    seed: &str,
    parent: &Digest,
    layer: &(Digest, Digest),
    last_used: i64,
) -> CacheRecord {
    let (diff_id, blob) = layer;
    // A chain's first ID is its first diff ID, so this is parent + layer.
    let chain = chain_ids(&[parent.clone(), diff_id.clone()])[1].clone();
    store
        .unpack_layer(&chain, Some(parent), diff_id, blob)
        .unwrap();
    let record = CacheRecord {
        key: Digest::sha256_of(seed.as_bytes()),
        inputs: format!("{{\"seed\":\"{seed}\"}}"),
        chain_id: chain,
        diff_id: diff_id.clone(),
        blob: blob.clone(),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size: store.content().size(blob).unwrap().unwrap(),
        created: "2024-01-01T00:00:00Z".into(),
    };
    store
        .meta_mut()
        .put_cache_record(&record, last_used)
        .unwrap();
    record
}

#[test]
fn build_cache_records_are_roots_until_pruned() {
    let mut f = fixture();
    let base_chain = image_chains(&f.a)[0].clone();
    // A dangling record (an intermediate stage's layer no image has) and
    // one whose layer image b uses.
    let stage = layer(&f.store, f.tmp.path(), &[("build/out", "compiled\n")]);
    let dangling = cache_record(&mut f.store, "stage", &base_chain, &stage, 100);
    let b_layer = (f.b.layers[1].diff_id.clone(), f.b.layers[1].blob.clone());
    let used = cache_record(&mut f.store, "b-step", &base_chain, &b_layer, 200);

    // Removing image a (and b's tag) keeps what the cache holds.
    for tag in ["example/a:latest", "example/b:latest"] {
        f.store.meta_mut().remove_tag(tag).unwrap();
    }
    f.store.remove_image(&f.a.id).unwrap();
    f.store.gc(NOW_GC).unwrap();
    assert!(blobs(&f.store).contains(&stage.1));
    let kept = chains(&f.store);
    assert!(kept.contains(&dangling.chain_id) && kept.contains(&base_chain));
    assert!(f.store.check().unwrap().is_clean());

    let usage = f.store.build_cache_usage().unwrap();
    assert_eq!((usage.records, usage.active), (2, 1), "{usage:?}");
    assert!(usage.reclaimable > 0 && usage.reclaimable < usage.bytes);

    // Records unused for longer than their age: none.
    let recent = BuildCachePruneOptions {
        unused_for: Some(Duration::from_secs(1_000_000_000_000)),
        ..BuildCachePruneOptions::default()
    };
    assert!(f
        .store
        .prune_build_cache(recent, NOW_GC)
        .unwrap()
        .removed
        .is_empty());

    // Dangling only: the stage record goes, and its content with it.
    let pruned = f
        .store
        .prune_build_cache(BuildCachePruneOptions::default(), NOW_GC)
        .unwrap();
    assert_eq!(pruned.removed, vec![dangling.key.clone()]);
    assert!(pruned.gc.bytes_freed() > 0);
    assert!(!blobs(&f.store).contains(&stage.1));
    assert!(!chains(&f.store).contains(&dangling.chain_id));
    assert!(f.store.meta().cache_record(&used.key).unwrap().is_some());

    // All: the other record goes; b (untagged but recorded) keeps its layer.
    let all = BuildCachePruneOptions {
        all: true,
        ..BuildCachePruneOptions::default()
    };
    let pruned = f.store.prune_build_cache(all, NOW_GC).unwrap();
    assert_eq!(pruned.removed, vec![used.key.clone()]);
    assert_eq!(blobs(&f.store), image_blobs(&f.b));
    assert_eq!(
        chains(&f.store),
        image_chains(&f.b).into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(f.store.build_cache_usage().unwrap(), Default::default());
    assert!(f.store.check().unwrap().is_clean());
}
