//! The content store: verified ingest, refusal of bad content, sweeping of
//! abandoned ingests, and verification of committed blobs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use berth_store::{BlobFault, Digest, Error, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

#[test]
fn blobs_are_verified_read_only_and_deduplicated() {
    let (_dir, store) = store();
    let d = store.content().write_blob(b"hello").unwrap();
    assert_eq!(d, Digest::sha256_of(b"hello"));
    let path = store.content().path(&d);
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(store.content().write_blob(b"hello").unwrap(), d);
    assert_eq!(store.content().verify(&d).unwrap(), None);
    assert!(
        store.content().ingests().unwrap().is_empty(),
        "no ingest left behind"
    );
}

#[test]
fn wrong_digest_or_size_is_refused_and_nothing_is_published() {
    let (_dir, store) = store();
    let other = Digest::sha256_of(b"other");
    let err = store
        .content()
        .write_from(&mut &b"hello"[..], Some((other.clone(), 5)))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(store.content().size(&other).unwrap(), None);
    assert_eq!(
        store.content().size(&Digest::sha256_of(b"hello")).unwrap(),
        None
    );

    let right = Digest::sha256_of(b"hello");
    let err = store
        .content()
        .write_from(&mut &b"hello"[..], Some((right.clone(), 4)))
        .unwrap_err();
    assert!(
        err.to_string().contains("larger than its expected 4 bytes"),
        "{err}"
    );
    let err = store
        .content()
        .write_from(&mut &b"hello"[..], Some((right.clone(), 6)))
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert_eq!(store.content().size(&right).unwrap(), None);
    assert!(store.content().ingests().unwrap().is_empty());
}

#[test]
fn abandoned_ingests_are_swept_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = Store::open(&root).unwrap();
    // A live ingest whose writer still holds its lock (leaked on purpose).
    let mut live = store.content().ingest(None).unwrap();
    live.write_all(b"partial").unwrap();
    std::mem::forget(live);
    // An abandoned one: its writer died, the lock is free.
    let dead = root.join("ingest/dead-writer");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("lock"), b"").unwrap();
    std::fs::write(dead.join("data"), b"half").unwrap();
    assert_eq!(store.content().ingests().unwrap().len(), 2);
    drop(store);
    let store = Store::open(&root).unwrap();
    let left = store.content().ingests().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left[0].ends_with("dead-writer"));
}

#[test]
fn verify_reports_a_corrupted_blob() {
    let (_dir, store) = store();
    let d = store.content().write_blob(b"precious bytes").unwrap();
    let path = store.content().path(&d);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    match store.content().verify(&d).unwrap() {
        Some(BlobFault::Corrupt { actual }) => assert_eq!(actual, Digest::sha256_of(&bytes)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stray_files_are_listed_apart() {
    let (_dir, store) = store();
    let d = store.content().write_blob(b"x").unwrap();
    std::fs::write(store.root().join("blobs/sha256/not-a-digest"), b"").unwrap();
    let (digests, strays) = store.content().list().unwrap();
    assert_eq!(digests, vec![d]);
    assert_eq!(strays.len(), 1);
}
