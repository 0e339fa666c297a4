//! The metadata DB: migrations, images, tags, prefixes, leases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_store::{Digest, Error, ImageLayer, ImageRecord, LayerRecord, Metadata, SCHEMA_VERSION};

fn image(seed: &str, layers: &[&str]) -> (ImageRecord, Vec<LayerRecord>) {
    let layers: Vec<(Digest, Digest)> = layers
        .iter()
        .map(|l| {
            (
                Digest::sha256_of(l.as_bytes()),
                Digest::sha256_of(format!("gz{l}").as_bytes()),
            )
        })
        .collect();
    let record = ImageRecord {
        id: Digest::sha256_of(seed.as_bytes()),
        manifest: None,
        created_at: 1_700_000_000,
        size: 42,
        layers: layers
            .iter()
            .map(|(d, b)| ImageLayer {
                diff_id: d.clone(),
                blob: b.clone(),
            })
            .collect(),
    };
    let blobs = layers
        .iter()
        .map(|(d, b)| LayerRecord {
            diff_id: d.clone(),
            blob: b.clone(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 10,
        })
        .collect();
    (record, blobs)
}

#[test]
fn a_new_db_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let meta = Metadata::open(&path).unwrap();
    assert_eq!(meta.schema_version().unwrap(), SCHEMA_VERSION);
    drop(meta);
    // Opening again is a no-op.
    assert_eq!(
        Metadata::open(&path).unwrap().schema_version().unwrap(),
        SCHEMA_VERSION
    );
}

#[test]
fn a_db_from_a_newer_berth_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = Metadata::open(&path).unwrap_err();
    assert!(matches!(err, Error::Schema(_)), "{err}");
    assert!(err.to_string().contains("upgrade berth"));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn images_tags_and_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = Metadata::open(&dir.path().join("berth.db")).unwrap();
    let (a, a_blobs) = image("a", &["base", "app"]);
    meta.put_image(&a, &a_blobs).unwrap();
    assert_eq!(meta.image(&a.id).unwrap().unwrap(), a);
    assert_eq!(
        meta.layer_blobs(&a.layers[0].diff_id).unwrap(),
        vec![a_blobs[0].clone()]
    );

    assert_eq!(
        meta.set_tag("docker.io/library/app:latest", &a.id).unwrap(),
        None
    );
    let (b, b_blobs) = image("b", &["base"]);
    meta.put_image(&b, &b_blobs).unwrap();
    assert_eq!(
        meta.set_tag("docker.io/library/app:latest", &b.id).unwrap(),
        Some(a.id.clone())
    );
    assert_eq!(
        meta.tag("docker.io/library/app:latest").unwrap(),
        Some(b.id.clone())
    );

    let prefix = &a.id.hex()[..6];
    assert_eq!(meta.images_with_prefix(prefix).unwrap(), vec![a.id.clone()]);
    assert!(meta
        .images_with_prefix("zz'; DROP TABLE images; --")
        .unwrap()
        .is_empty());

    assert!(matches!(meta.delete_image(&b.id), Err(Error::Conflict(_))));
    assert!(meta.remove_tag("docker.io/library/app:latest").unwrap());
    assert!(meta.delete_image(&b.id).unwrap());
    assert_eq!(meta.image(&b.id).unwrap(), None);
    assert_eq!(meta.image_ids().unwrap(), vec![a.id.clone()]);
}

#[test]
fn leases_protect_until_deleted_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = Metadata::open(&dir.path().join("berth.db")).unwrap();
    meta.create_lease("pull-1", 100, None).unwrap();
    meta.lease_resource("pull-1", "blob", "sha256:aa").unwrap();
    meta.create_lease("old", 100, Some(150)).unwrap();
    meta.lease_resource("old", "blob", "sha256:bb").unwrap();
    assert_eq!(
        meta.leased("blob", 200).unwrap(),
        vec!["sha256:aa".to_string()]
    );
    meta.delete_lease("pull-1").unwrap();
    assert!(meta.leased("blob", 200).unwrap().is_empty());
}

#[test]
fn two_connections_share_the_db() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let mut one = Metadata::open(&path).unwrap();
    let two = Metadata::open(&path).unwrap();
    let (a, blobs) = image("shared", &["l"]);
    one.put_image(&a, &blobs).unwrap();
    one.set_tag("x:latest", &a.id).unwrap();
    assert_eq!(two.tag("x:latest").unwrap(), Some(a.id));
}
