//! Atomic writes: content, replacement, no leftovers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use berth_fs::{write_atomic, write_atomic_from, AtomicFile, ErrorKind};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_and_replaces() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("config.json");
    write_atomic(&p, b"{\"v\":1}").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"{\"v\":1}");
    let ino1 = std::fs::metadata(&p).unwrap().ino();
    // a reader holding the old file keeps seeing the old content
    let old = std::fs::File::open(&p).unwrap();
    write_atomic(&p, b"{\"v\":2}").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"{\"v\":2}");
    assert_ne!(
        std::fs::metadata(&p).unwrap().ino(),
        ino1,
        "replaced by rename, not rewritten"
    );
    assert_eq!(std::io::read_to_string(old).unwrap(), "{\"v\":1}");
    assert_eq!(names(tmp.path()), ["config.json"]);
}

#[test]
fn streams() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("blob");
    let data = vec![7u8; 3 << 20];
    let n = write_atomic_from(&p, &mut &data[..]).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&p).unwrap(), data);
    assert_eq!(names(tmp.path()), ["blob"]);
}

#[test]
fn abandoned_write_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("f");
    std::fs::write(&p, b"old").unwrap();
    {
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new but abandoned").unwrap();
        assert!(f.temp_path().exists());
    }
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert_eq!(names(tmp.path()), ["f"]);
}

#[test]
fn mode_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("secret");
    let mut f = AtomicFile::create_with_mode(&p, 0o600).unwrap();
    f.write_all(b"s").unwrap();
    f.commit().unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn errors_carry_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("missing-dir/f");
    let e = write_atomic(&p, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("missing-dir"), "{e}");
}
