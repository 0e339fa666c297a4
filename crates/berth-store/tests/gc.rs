//! `Store::gc`, `remove_image`, `dangling_images` and `disk_usage`: what
//! images and leases reach survives, the rest goes, fresh content is spared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_fs::{tar_dir, TarOptions};
use berth_oci::{chain_ids, Descriptor, ImageConfig, Manifest, MediaType, RootFs};
use berth_store::{
    Digest, Error, GcOptions, ImageLayer, ImageRecord, LayerRecord, Store, DEFAULT_GRACE,
};

/// A gzip layer blob holding `files` and the diff ID of its tar.
fn layer(store: &Store, tmp: &Path, files: &[(&str, &str)]) -> (Digest, Digest) {
    let tree = tempfile::tempdir_in(tmp).unwrap();
    for (rel, content) in files {
        let p = tree.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let (tar, _) = tar_dir(tree.path(), Vec::new(), &TarOptions::default()).unwrap();
    let diff_id = Digest::sha256_of(&tar);
    let mut gz = berth_fs::gzip_writer(Vec::new(), 1);
    gz.write_all(&tar).unwrap();
    let blob = store.content().write_blob(&gz.finish().unwrap()).unwrap();
    (diff_id, blob)
}

/// Stores an image of `layers` the way a pull does: config and manifest
/// blobs, the record, its snapshots and (optionally) a tag.
fn image(
    store: &mut Store,
    seed: &str,
    layers: &[(Digest, Digest)],
    tag: Option<&str>,
) -> ImageRecord {
    let diff_ids: Vec<Digest> = layers.iter().map(|(d, _)| d.clone()).collect();
    let config = ImageConfig {
        created: Some(seed.to_string()),
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: Some(RootFs {
            diff_ids: diff_ids.clone(),
            ..RootFs::default()
        }),
        ..ImageConfig::default()
    };
    let config_bytes = config.to_canonical_json().unwrap();
    let id = store.content().write_blob(&config_bytes).unwrap();
    let layer_descriptors = layers
        .iter()
        .map(|(_, b)| {
            let size = store.content().size(b).unwrap().unwrap();
            Descriptor::new(MediaType::OciLayerGzip, b.clone(), size)
        })
        .collect();
    let manifest = Manifest::new(
        MediaType::OciManifest,
        Descriptor::of_bytes(MediaType::OciConfig, &config_bytes),
        layer_descriptors,
    );
    let manifest = store
        .content()
        .write_blob(&manifest.to_json().unwrap())
        .unwrap();
    let chain = chain_ids(&diff_ids);
    let mut size = 0;
    for (i, (diff_id, blob)) in layers.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| chain[p].clone());
        size += store
            .unpack_layer(&chain[i], parent.as_ref(), diff_id, blob)
            .unwrap()
            .size;
    }
    let record = ImageRecord {
        id,
        manifest: Some(manifest),
        created_at: 1_700_000_000,
        size,
        layers: layers
            .iter()
            .map(|(d, b)| ImageLayer {
                diff_id: d.clone(),
                blob: b.clone(),
            })
            .collect(),
    };
    let blobs: Vec<LayerRecord> = layers
        .iter()
        .map(|(d, b)| LayerRecord {
            diff_id: d.clone(),
            blob: b.clone(),
            media_type: MediaType::OciLayerGzip.as_str().to_string(),
            size: store.content().size(b).unwrap().unwrap(),
        })
        .collect();
    store.meta_mut().put_image(&record, &blobs).unwrap();
    if let Some(tag) = tag {
        store.meta_mut().set_tag(tag, &record.id).unwrap();
    }
    record
}

/// Two tagged images sharing a base layer: `a` = base + app-a,
/// `b` = base + app-b.
struct Fixture {
    tmp: tempfile::TempDir,
    store: Store,
    a: ImageRecord,
    b: ImageRecord,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(&tmp.path().join("root")).unwrap();
    let base = layer(&store, tmp.path(), &[("etc/os-release", "base\n")]);
    let app_a = layer(&store, tmp.path(), &[("app/a", "a\n")]);
    let app_b = layer(&store, tmp.path(), &[("app/b", "bb\n")]);
    let a = image(
        &mut store,
        "a",
        &[base.clone(), app_a],
        Some("example/a:latest"),
    );
    let b = image(&mut store, "b", &[base, app_b], Some("example/b:latest"));
    Fixture { tmp, store, a, b }
}

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
