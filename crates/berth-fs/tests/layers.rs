//! Round trips, whiteouts, overlay conversion and determinism of layer tars.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_fs::{
    apply_layer, apply_layer_compressed, diff_overlay_upper, gzip_writer, tar_dir, ApplyOptions,
    TarOptions, WhiteoutMode,
};
use common::{listing, snapshot, tar_names, RawTar};
use rustix::fs::{FileType, Gid, Mode, Uid};

fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chown(p: &Path, uid: u32, gid: u32) {
    rustix::fs::chownat(
        rustix::fs::CWD,
        p,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree with every file type the layer format carries.
fn build_tree(root: &Path) {
    std::fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    chown(&root.join("a.txt"), 1000, 1000);
    rustix::fs::setxattr(
        root.join("a.txt"),
        "user.test",
        b"hello",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::create_dir_all(root.join("d/e/f")).unwrap();
    std::fs::write(root.join("d/e/f/deep.txt"), vec![b'x'; 70_000]).unwrap();
    rustix::fs::setxattr(
        root.join("d"),
        "user.dir",
        b"\x00\x01bin",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    symlink("a.txt", root.join("rel")).unwrap();
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("../a.txt", root.join("d/up")).unwrap();
    let long_target = format!("{}/target", "t".repeat(150));
    symlink(&long_target, root.join("longlink")).unwrap();
    std::fs::write(root.join("hl1"), b"shared inode\n").unwrap();
    std::fs::hard_link(root.join("hl1"), root.join("d/hl2")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    std::fs::write(root.join("suid"), b"#!/bin/sh\n").unwrap();
    chmod(&root.join("suid"), 0o4755);
    std::fs::write(root.join("sgid"), b"").unwrap();
    chown(&root.join("sgid"), 0, 50);
    chmod(&root.join("sgid"), 0o2750);
    std::fs::write(root.join("biguid"), b"big").unwrap();
    chown(&root.join("biguid"), 3_000_000, 3_000_001);
    let long_dir = root.join("l".repeat(120));
    std::fs::create_dir(&long_dir).unwrap();
    std::fs::write(long_dir.join("m".repeat(120)), b"long name\n").unwrap();
    std::fs::create_dir(root.join("private")).unwrap();
    chmod(&root.join("private"), 0o700);
    chmod(&root.join("d/e"), 0o555);
    chown(&root.join("d/e"), 7, 8);
    chown(&root.join("rel"), 5, 6);
    // mtimes last, deepest first, so that directory mtimes stick
    for (p, t) in [
        ("d/e/f/deep.txt", 1_000_001),
        ("d/e/f", 1_000_002),
        ("d/e", 1_000_003),
        ("d/up", 1_000_004),
        ("d", 1_000_005),
        ("a.txt", 1_000_006),
        ("rel", 1_000_007),
        ("fifo", 1_000_008),
        ("null", 1_000_009),
        ("private", 1_000_010),
    ] {
        set_mtime(&root.join(p), t);
    }
    set_mtime(&long_dir, 1_000_011);
}

#[test]
fn round_trip_every_file_type() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&dst).unwrap();
    build_tree(&src);
    let (bytes, stats) = tar_dir(&src, Vec::new(), &TarOptions::default()).unwrap();
    assert!(stats.entries >= 20, "{stats:?}");
    let opts = ApplyOptions {
        allow_devices: true,
        ..ApplyOptions::default()
    };
    let applied = apply_layer(&bytes[..], &dst, &opts).unwrap();
    assert_eq!(applied.hardlinks, 1);
    assert_eq!(applied.devices, 1);
    assert_eq!(applied.fifos, 1);
    let mut want = snapshot(&src);
    let mut got = snapshot(&dst);
    // the roots themselves are not part of the layer
    want.remove(Path::new(""));
    got.remove(Path::new(""));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, w) in &want {
        assert_eq!(Some(w), got.get(path), "{}", path.display());
    }
    let i1 = std::fs::metadata(dst.join("hl1")).unwrap();
    let i2 = std::fs::metadata(dst.join("d/hl2")).unwrap();
    assert_eq!(i1.ino(), i2.ino(), "hardlinks share an inode");
    assert_eq!(i1.nlink(), 2);

    // GNU tar reads the same names
    if let Ok(out) = std::process::Command::new("tar")
        .arg("-tf")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&bytes)?;
            c.wait_with_output()
        })
    {
        let gnu: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(gnu, tar_names(&bytes));
    }
}

#[test]
fn round_trip_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&dst).unwrap();
    build_tree(&src);
    let (gz, _) = tar_dir(&src, gzip_writer(Vec::new(), 6), &TarOptions::default()).unwrap();
    let gz = gz.finish().unwrap();
    let opts = ApplyOptions {
        allow_devices: true,
        ..ApplyOptions::default()
    };
    apply_layer_compressed(&gz[..], &dst, &opts).unwrap();
    let mut want = snapshot(&src);
    let mut got = snapshot(&dst);
    want.remove(Path::new(""));
    got.remove(Path::new(""));
    assert_eq!(want, got);
}

#[test]
fn deterministic_output_and_epoch_clamp() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build_tree(&src);
    let (one, _) = tar_dir(&src, Vec::new(), &TarOptions::default()).unwrap();
    // reading files changes atimes; output must not
    let _ = std::fs::read(src.join("a.txt")).unwrap();
    let (two, _) = tar_dir(&src, Vec::new(), &TarOptions::default()).unwrap();
    assert_eq!(one, two);
    let names = tar_names(&one);
    let mut sorted_dirs_first = names.clone();
    sorted_dirs_first.dedup();
    assert_eq!(names.len(), sorted_dirs_first.len());
    assert!(names.iter().any(|n| n == "d/"), "directories end with /");
    let d = names.iter().position(|n| n == "d/").unwrap();
    let de = names.iter().position(|n| n == "d/e/").unwrap();
    assert!(d < de);

    let opts = TarOptions {
        source_date_epoch: Some(1_000_005),
        ..TarOptions::default()
    };
    let (clamped, _) = tar_dir(&src, Vec::new(), &opts).unwrap();
    let mut a = tar::Archive::new(&clamped[..]);
    let mut seen = 0;
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert!(h.mtime().unwrap() <= 1_000_005);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        if e.path_bytes().as_ref() == b"d/e/f/deep.txt" {
            assert_eq!(h.mtime().unwrap(), 1_000_001, "older mtimes kept");
            seen += 1;
        }
        if e.path_bytes().as_ref() == b"a.txt" {
            assert_eq!(h.mtime().unwrap(), 1_000_005, "newer mtimes clamped");
            seen += 1;
        }
    }
    assert_eq!(seen, 2);
}

fn lower_layer() -> Vec<u8> {
    let mut t = RawTar::new();
    t.dir("etc/")
        .file("etc/a", b"a")
        .file("etc/b", b"b")
        .dir("opq/")
        .file("opq/old1", b"1")
        .dir("opq/sub/")
        .file("opq/sub/old2", b"2")
        .file("keep", b"k")
        .dir("gone/")
        .file("gone/x", b"x");
    t.finish()
}

fn upper_layer() -> Vec<u8> {
    let mut t = RawTar::new();
    t.file(".wh.keep", b"")
        .file("etc/.wh.a", b"")
        .file(".wh.gone", b"")
        .dir("opq/")
        .file("opq/new", b"n")
        .file("opq/.wh..wh..opq", b"")
        .file(".wh..wh.plnk", b"")
        .file("etc/.wh.missing", b"");
    t.finish()
}

#[test]
fn whiteouts_applied_on_plain_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    apply_layer(&lower_layer()[..], root, &ApplyOptions::default()).unwrap();
    let stats = apply_layer(&upper_layer()[..], root, &ApplyOptions::default()).unwrap();
    assert_eq!(stats.whiteouts, 4);
    assert_eq!(stats.opaque_dirs, 1);
    assert_eq!(listing(root), ["etc", "opq"]);
    assert_eq!(listing(&root.join("etc")), ["b"]);
    assert_eq!(listing(&root.join("opq")), ["new"]);
}

#[test]
fn whiteouts_converted_to_overlay_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    std::fs::create_dir(&upper).unwrap();
    let opts = ApplyOptions {
        whiteout_mode: WhiteoutMode::Overlay,
        ..ApplyOptions::default()
    };
    apply_layer(&upper_layer()[..], &upper, &opts).unwrap();
    for wh in ["keep", "etc/a", "gone", "etc/missing"] {
        let md = std::fs::symlink_metadata(upper.join(wh)).unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&md.file_type()),
            "{wh}"
        );
        assert_eq!(md.rdev(), 0, "{wh}");
    }
    let mut v = [0u8; 4];
    let n = rustix::fs::getxattr(upper.join("opq"), "trusted.overlay.opaque", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"y");
    assert_eq!(listing(&upper.join("opq")), ["new"]);

    // overlay form → OCI form
    let (bytes, stats) = diff_overlay_upper(&upper, Vec::new(), &TarOptions::default()).unwrap();
    assert_eq!(stats.whiteouts, 5);
    let names = tar_names(&bytes);
    assert_eq!(
        names,
        [
            ".wh.gone",
            ".wh.keep",
            "etc/",
            "etc/.wh.a",
            "etc/.wh.missing",
            "opq/",
            "opq/.wh..wh..opq",
            "opq/new"
        ]
    );
    let mut a = tar::Archive::new(&bytes[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        assert_ne!(e.header().entry_type(), tar::EntryType::Char);
        for x in e.pax_extensions().unwrap().into_iter().flatten() {
            assert!(!x.unwrap().key().unwrap().contains("trusted.overlay"));
        }
    }

    // applying the converted diff on the lower gives what the original upper gave
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        apply_layer(&lower_layer()[..], d, &ApplyOptions::default()).unwrap();
    }
    apply_layer(&upper_layer()[..], &a, &ApplyOptions::default()).unwrap();
    apply_layer(&bytes[..], &b, &ApplyOptions::default()).unwrap();
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
}

#[test]
fn plain_tar_dir_keeps_char_devices() {
    let tmp = tempfile::tempdir().unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        tmp.path().join("wh"),
        FileType::CharacterDevice,
        Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .unwrap();
    let (bytes, _) = tar_dir(tmp.path(), Vec::new(), &TarOptions::default()).unwrap();
    assert_eq!(tar_names(&bytes), ["wh"]);
}

#[test]
fn directory_modes_applied_after_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = RawTar::new();
    t.entry(b"ro/", tar::EntryType::Directory, b"", 0o555, b"")
        .file("ro/inside", b"i")
        .entry(b"ro/sub/", tar::EntryType::Directory, b"", 0o500, b"")
        .file("ro/sub/f", b"f");
    let bytes = t.finish();
    apply_layer(&bytes[..], tmp.path(), &ApplyOptions::default()).unwrap();
    let md = std::fs::metadata(tmp.path().join("ro")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o555);
    assert_eq!(md.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::metadata(tmp.path().join("ro/sub")).unwrap().mode() & 0o777,
        0o500
    );
    assert_eq!(std::fs::read(tmp.path().join("ro/sub/f")).unwrap(), b"f");
}
