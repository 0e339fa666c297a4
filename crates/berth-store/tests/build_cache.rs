//! Build support in the store: a prepared directory committed as a chain's
//! snapshot (and what a crash in the middle leaves), build cache records
//! and context checksums.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_oci::{chain_ids, Digest};
use berth_store::{CacheRecord, Store};

#[test]
fn a_prepared_directory_becomes_the_snapshot_of_its_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(&tmp.path().join("root")).unwrap();
    let dir = store.layout().tmp().join("upper");
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/x"), "x").unwrap();
    let diff_id = Digest::sha256_of(b"layer");
    let chain = chain_ids(std::slice::from_ref(&diff_id))[0].clone();
    let snapshots = store.snapshots().clone();
    let snap = snapshots
        .commit_dir(store.meta_mut(), &chain, None, &diff_id, &dir, 5)
        .unwrap();
    assert!(!dir.exists(), "moved into place");
    let fs = snapshots.fs_dir(snap.id);
    assert_eq!(std::fs::read_to_string(fs.join("app/x")).unwrap(), "x");
    assert_eq!(snap.size, 5);
    assert_eq!(
        snapshots.get(store.meta(), &chain).unwrap(),
        Some(snap.clone())
    );

    // The same chain again: the existing snapshot, the new dir left alone.
    let again = store.layout().tmp().join("again");
    std::fs::create_dir_all(&again).unwrap();
    let other = snapshots
        .commit_dir(store.meta_mut(), &chain, None, &diff_id, &again, 5)
        .unwrap();
    assert_eq!(other, snap);
    assert!(again.exists());

    // A missing parent is refused.
    let orphan = Digest::sha256_of(b"orphan");
    let err = snapshots
        .commit_dir(
            store.meta_mut(),
            &orphan,
            Some(&Digest::sha256_of(b"nope")),
            &orphan,
            &again,
            0,
        )
        .unwrap_err();
    assert!(err.to_string().contains("parent snapshot"), "{err}");
    drop(store);
    let store = Store::open(&tmp.path().join("root")).unwrap();
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn cache_records_and_context_sums_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(&tmp.path().join("root")).unwrap();
    let key = Digest::sha256_of(b"inputs");
    let record = CacheRecord {
        key: key.clone(),
        inputs: "step=RUN x\nparent=scratch\n".into(),
        chain_id: Digest::sha256_of(b"c"),
        diff_id: Digest::sha256_of(b"d"),
        blob: Digest::sha256_of(b"b"),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size: 42,
        created: "2024-01-01T00:00:00Z".into(),
    };
    assert_eq!(store.meta().cache_record(&key).unwrap(), None);
    store.meta_mut().put_cache_record(&record, 100).unwrap();
    assert_eq!(
        store.meta().cache_record(&key).unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store.meta().cache_inputs_like("step=RUN x\n").unwrap(),
        Some(record.inputs.clone())
    );
    assert_eq!(
        store.meta().cache_inputs_like("step=RUN y\n").unwrap(),
        None
    );
    // LIKE wildcards in the prefix are literal.
    assert_eq!(
        store.meta().cache_inputs_like("step=RUN _\n").unwrap(),
        None
    );

    store
        .meta_mut()
        .put_context_sums(&[("/ctx/a".into(), "1:2:3".into(), "sha256:aa".into())])
        .unwrap();
    let sums = store.meta().context_sums(&["/ctx/a", "/ctx/b"]).unwrap();
    assert_eq!(
        sums,
        vec![Some(("1:2:3".to_string(), "sha256:aa".to_string())), None]
    );
    assert_eq!(store.meta_mut().clear_build_cache().unwrap(), 1);
    assert_eq!(store.meta().cache_record(&key).unwrap(), None);
}
