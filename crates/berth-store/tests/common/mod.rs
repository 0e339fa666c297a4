//! The store fixture shared by the check and GC tests: two images sharing a
//! base layer, built from real layer tars.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;

use berth_fs::{tar_dir, TarOptions};
use berth_oci::{chain_ids, Descriptor, ImageConfig, Manifest, MediaType, RootFs};
use berth_store::{Digest, ImageLayer, ImageRecord, LayerRecord, Store};

/// A gzip layer blob holding `files` and the diff ID of its tar.
pub fn layer(store: &Store, tmp: &Path, files: &[(&str, &str)]) -> (Digest, Digest) {
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
pub fn image(
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
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub store: Store,
    pub a: ImageRecord,
    pub b: ImageRecord,
}

pub fn fixture() -> Fixture {
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
