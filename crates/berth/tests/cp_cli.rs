//! `berth cp` through the CLI against Docker's documented rules: both
//! directions, files and directories, `SRC/.`, existing and missing
//! destinations and their errors, `-` tar streams, `-a` ownership, `-L`,
//! and running as well as stopped containers (whose root is mounted only
//! for the copy).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn setup() -> Fixture {
    Fixture::with_busybox()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The container's root is a mount point only while it runs.
fn rootfs_mounted(f: &Fixture, name: &str) -> bool {
    let id = f
        .ok(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string();
    let rootfs = f.root().join("containers").join(id).join("rootfs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(s(&rootfs)))
}

#[test]
fn copies_both_ways_with_dockers_path_rules() {
    let f = setup();
    let host = f.dir.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("file.txt"), "one\n").unwrap();
    std::fs::write(host.join("tree/sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("sub/deep", host.join("tree/link")).unwrap();
    f.ok(&[
        "create", "--name", "cc", "busybox", "sh", "-c",
        "mkdir -p /data/dir && echo in > /data/dir/x && echo f > /data/f && ln -s /data/f /data/flink",
    ]);
    // A stopped container: its root is mounted for the copy only.
    assert!(!rootfs_mounted(&f, "cc"));
    // File to a missing name: created with that name.
    f.ok(&["cp", s(&host.join("file.txt")), "cc:/etc/renamed"]);
    // File into an existing directory: keeps its name (leading / optional).
    f.ok(&["cp", s(&host.join("file.txt")), "cc:etc"]);
    // Directory to a missing name: created, with the contents.
    f.ok(&["cp", s(&host.join("tree")), "cc:/copied"]);
    // Directory into an existing directory: nested under its name.
    f.ok(&["cp", s(&host.join("tree")), "cc:/etc/"]);
    // SRC/. into an existing directory: the contents only.
    f.ok(&["cp", &format!("{}/.", s(&host.join("tree"))), "cc:/root"]);
    assert!(!rootfs_mounted(&f, "cc"));

    // The errors Docker documents.
    let out = f.berth(&["cp", s(&host.join("file.txt")), "cc:/nowhere/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("destination directory must exist"),
        "{}",
        stderr(&out)
    );
    let out = f.berth(&["cp", s(&host.join("tree")), "cc:/etc/renamed"]);
    assert!(
        stderr(&out).contains("cannot copy a directory to a file"),
        "{}",
        stderr(&out)
    );
    let out = f.berth(&["cp", "cc:/not/there", s(&host)]);
    assert_eq!(
        stderr(&out).trim(),
        "Error: Could not find the file /not/there in container cc"
    );
    let out = f.berth(&["cp", s(&host.join("absent")), "cc:/"]);
    assert!(
        stderr(&out).contains("no such file or directory"),
        "{}",
        stderr(&out)
    );
    let out = f.berth(&["cp", s(&host.join("file.txt")), s(&host.join("x"))]);
    assert!(stderr(&out).contains("must specify at least one container source"));
    let out = f.berth(&["cp", "cc:/etc", "cc:/tmp"]);
    assert!(stderr(&out).contains("copying between containers is not supported"));

    // Running: the container sees what was copied while it was stopped.
    let listing = f.ok(&["start", "-a", "cc"]);
    assert_eq!(listing, "");
    f.ok(&["run", "-d", "--name", "rr", "busybox", "sleep", "600"]);
    f.ok(&["cp", s(&host.join("tree")), "rr:/tree"]);
    let seen = f.ok(&[
        "exec",
        "rr",
        "sh",
        "-c",
        "cat /tree/sub/deep; readlink /tree/link",
    ]);
    assert_eq!(seen, "deep\nsub/deep\n");

    // Out of the (stopped) container `c`.
    let back = f.dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    f.ok(&["cp", "cc:/etc/renamed", s(&back.join("renamed"))]);
    assert_eq!(
        std::fs::read_to_string(back.join("renamed")).unwrap(),
        "one\n"
    );
    f.ok(&["cp", "cc:/etc/file.txt", s(&back)]);
    assert_eq!(
        std::fs::read_to_string(back.join("file.txt")).unwrap(),
        "one\n"
    );
    f.ok(&["cp", "cc:/copied", s(&back.join("copied"))]);
    assert_eq!(
        std::fs::read_to_string(back.join("copied/sub/deep")).unwrap(),
        "deep\n"
    );
    f.ok(&["cp", "cc:/etc/tree", s(&back)]);
    assert!(back.join("tree/sub/deep").is_file());
    f.ok(&["cp", "cc:/root/.", s(&back.join("contents"))]);
    assert!(back.join("contents/sub/deep").is_file());
    assert!(!back.join("contents/root").exists());
    f.ok(&["cp", "cc:/data", s(&back)]);
    assert_eq!(
        std::fs::read_to_string(back.join("data/dir/x")).unwrap(),
        "in\n"
    );
    // A symlink is copied as a link; -L copies its target.
    f.ok(&["cp", "cc:/data/flink", s(&back.join("flink"))]);
    assert_eq!(
        std::fs::read_link(back.join("flink")).unwrap(),
        Path::new("/data/f")
    );
    f.ok(&[
        "cp",
        "-L",
        "cc:/data/flink",
        s(&back.join("flink-followed")),
    ]);
    assert_eq!(
        std::fs::read_to_string(back.join("flink-followed")).unwrap(),
        "f\n"
    );
    // An existing host file is overwritten.
    f.ok(&["cp", "cc:/data/f", s(&back.join("renamed"))]);
    assert_eq!(
        std::fs::read_to_string(back.join("renamed")).unwrap(),
        "f\n"
    );
    // From the running container too.
    f.ok(&["cp", "rr:/tree/sub/deep", s(&back.join("from-running"))]);
    assert_eq!(
        std::fs::read_to_string(back.join("from-running")).unwrap(),
        "deep\n"
    );
    assert!(!rootfs_mounted(&f, "cc"));
    assert!(rootfs_mounted(&f, "rr"));
}

#[test]
fn tar_streams_and_ownership() {
    let f = setup();
    f.ok(&[
        "run",
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "mkdir /owned && echo o > /owned/f && chown -R 1000:1001 /owned && touch /owned/.wh.keep",
    ]);
    // `-` as the destination: a tar of SRC named after its last component.
    let out = f.berth(&["cp", "cc:/owned", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(&out.stdout[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.trim_end_matches('/') == "owned/f" {
            assert_eq!(entry.header().uid().unwrap(), 1000);
            assert_eq!(entry.header().gid().unwrap(), 1001);
        }
        names.push(path.trim_end_matches('/').to_string());
    }
    names.sort();
    assert_eq!(names, ["owned", "owned/.wh.keep", "owned/f"]);

    // `-` as the source: a tar extracted into an existing directory;
    // `.wh.` names are plain files there, not whiteouts.
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(4242);
        h.set_gid(4243);
        h.set_mtime(0);
        b.append_data(&mut h, "streamed/a.txt", &b"abc"[..])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, ".wh.f", &b""[..]).unwrap();
        b.finish().unwrap();
    }
    let out = f.berth_stdin(&["cp", "-", "cc:/owned"], Some(&tar_bytes));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = f.berth_stdin(&["cp", "-", "cc:/owned/f"], Some(&tar_bytes));
    assert!(
        stderr(&out).contains("must be a directory"),
        "{}",
        stderr(&out)
    );

    // Out again: without -a the caller owns the copies, with -a the
    // container's owners stay.
    let back = f.dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    f.ok(&["cp", "cc:/owned", s(&back.join("plain"))]);
    f.ok(&["cp", "-a", "cc:/owned", s(&back.join("archive"))]);
    let plain = std::fs::metadata(back.join("plain/f")).unwrap();
    assert_eq!((plain.uid(), plain.gid()), (0, 0));
    let kept = std::fs::metadata(back.join("archive/f")).unwrap();
    assert_eq!((kept.uid(), kept.gid()), (1000, 1001));
    assert_eq!(
        std::fs::read_to_string(back.join("plain/f")).unwrap(),
        "o\n"
    );
    assert!(back.join("plain/.wh.keep").is_file());
    assert_eq!(
        std::fs::read_to_string(back.join("plain/streamed/a.txt")).unwrap(),
        "abc"
    );
    assert!(back.join("plain/.wh.f").is_file());
    let streamed = std::fs::metadata(back.join("archive/streamed/a.txt")).unwrap();
    assert_eq!(streamed.uid(), 4242, "a stream keeps the archive's owners");

    // Into the container: root by default, the host's owners with -a.
    let host = f.dir.path().join("mine");
    std::fs::write(&host, "mine\n").unwrap();
    std::os::unix::fs::chown(&host, Some(1234), Some(5678)).unwrap();
    f.ok(&["cp", s(&host), "cc:/as-root"]);
    f.ok(&["cp", "-a", s(&host), "cc:/as-is"]);
    f.ok(&["cp", "-a", "cc:/as-root", s(&back.join("as-root"))]);
    f.ok(&["cp", "-a", "cc:/as-is", s(&back.join("as-is"))]);
    let m = std::fs::metadata(back.join("as-root")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let m = std::fs::metadata(back.join("as-is")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
}

#[test]
fn read_only_container_refuses_copies_in() {
    let f = setup();
    f.ok(&["create", "--name", "ro", "--read-only", "busybox", "true"]);
    let file = f.dir.path().join("x");
    std::fs::write(&file, "x").unwrap();
    let out = f.berth(&["cp", s(&file), "ro:/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    // Reading out of it is fine.
    let back = f.dir.path().join("passwd");
    f.ok(&["cp", "ro:/etc/passwd", s(&back)]);
    assert!(std::fs::read_to_string(&back).unwrap().starts_with("root:"));
}
