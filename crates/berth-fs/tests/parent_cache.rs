//! The apply's parent-directory cache never outlives a change to the path it
//! caches: a directory replaced by a symlink (or by a file) mid-archive is
//! walked again, and refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_fs::{apply_layer, ApplyOptions};

fn archive(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        match kind {
            tar::EntryType::Symlink => {
                h.set_size(0);
                b.append_link(&mut h, name, data).unwrap();
            }
            _ => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, data.as_bytes()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn a_directory_swapped_for_a_symlink_mid_archive_is_walked_again() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let base = tempfile::tempdir().unwrap();
    let target = base.path().join("target");
    let victim = base.path().join("victim");
    std::fs::create_dir(&target).unwrap();
    std::fs::create_dir(&victim).unwrap();
    let tar = archive(&[
        ("d/", Directory, ""),
        ("d/one", Regular, "1"),
        // Replace d (now cached) with a symlink to the victim, then write
        // through it.
        ("d", Symlink, victim.to_str().unwrap()),
        ("d/two", Regular, "pwned"),
    ]);
    let result = apply_layer(&tar[..], &target, &ApplyOptions::default());
    let err = result.unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(target.join("d/one")).ok(), None);
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
}

#[test]
fn files_of_one_directory_all_land_in_it() {
    use tar::EntryType::{Directory, Regular};
    let base = tempfile::tempdir().unwrap();
    let tar = archive(&[
        ("a/", Directory, ""),
        ("a/1", Regular, "x"),
        ("a/2", Regular, "y"),
        ("b/", Directory, ""),
        ("b/3", Regular, "z"),
        ("a/4", Regular, "w"),
    ]);
    apply_layer(&tar[..], base.path(), &ApplyOptions::default()).unwrap();
    for (p, c) in [("a/1", "x"), ("a/2", "y"), ("b/3", "z"), ("a/4", "w")] {
        assert_eq!(std::fs::read_to_string(base.path().join(p)).unwrap(), c);
    }
}
