//! A corpus of hostile layer tars. Each is applied into `base/target` with a
//! `base/victim` directory beside it; afterwards the victim must be
//! byte-identical, nothing new may exist in `base` (or at a few host paths),
//! and the apply must have either failed cleanly or produced a safe result
//! inside the target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_fs::{apply_layer, apply_layer_compressed, ApplyOptions, Error, ErrorKind, WhiteoutMode};
use common::{listing, snapshot, RawTar};
use tar::{EntryType, Header};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Must fail with an InvalidArgument-kind error.
    Refused,
    /// Must succeed (the result is then checked by `check`, if any).
    Applied,
    /// Either a clean error or success; only containment is checked.
    Contained,
}

type Check = fn(&Path);

struct Case {
    name: &'static str,
    tar: Vec<u8>,
    compressed: bool,
    opts: ApplyOptions,
    expect: Expect,
    check: Option<Check>,
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        max_bytes: Some(16 << 20),
        ..ApplyOptions::default()
    }
}

fn case(name: &'static str, expect: Expect, build: impl FnOnce(&mut RawTar)) -> Case {
    let mut t = RawTar::new();
    build(&mut t);
    Case {
        name,
        tar: t.finish(),
        compressed: false,
        opts: opts(),
        expect,
        check: None,
    }
}

fn with_check(mut c: Case, check: Check) -> Case {
    c.check = Some(check);
    c
}

fn overlay(mut c: Case) -> Case {
    c.opts.whiteout_mode = WhiteoutMode::Overlay;
    c
}

/// A USTAR header with every numeric field set.
fn hdr(path: &str, kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h
}

/// Host paths that no case may create.
const HOST_SENTINELS: &[&str] = &[
    "/x",
    "/etc/x",
    "/victim",
    "/dotdot",
    "/slash-dotdot",
    "/evil",
    "/pax",
];

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = berth_fs::gzip_writer(Vec::new(), 1);
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A tar whose single file claims 1 GiB of zeros, gzip-compressed to about
/// a megabyte: one gzip member for the header, then 1024 copies of one
/// member holding 1 MiB of zeros (multi-member gzip is valid gzip).
fn gzip_bomb() -> Vec<u8> {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(make_gzip_bomb).clone()
}

fn make_gzip_bomb() -> Vec<u8> {
    let mut h = hdr("bomb", EntryType::Regular, 0o644, 1 << 30);
    h.set_cksum();
    let mut out = gzip(h.as_bytes());
    let zeros = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..1024 {
        out.extend_from_slice(&zeros);
    }
    out
}

/// A GNU sparse file declaring 1 GiB of real size with one 512-byte block.
fn sparse_bomb() -> Vec<u8> {
    let mut h = Header::new_gnu();
    h.set_path("sparse").unwrap();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(512);
    {
        let gnu = h.as_gnu_mut().unwrap();
        let blk = &mut gnu.sparse[0];
        let off = format!("{:011o}\0", (1u64 << 30) - 512);
        blk.offset.copy_from_slice(off.as_bytes());
        let len = format!("{:011o}\0", 512);
        blk.numbytes.copy_from_slice(len.as_bytes());
        let real = format!("{:011o}\0", 1u64 << 30);
        gnu.realsize.copy_from_slice(real.as_bytes());
    }
    let mut t = RawTar::new();
    t.header_and_data(h, &[7u8; 512]);
    t.finish()
}

/// Many small files whose total exceeds the cap.
fn many_files_bomb() -> Vec<u8> {
    let mut t = RawTar::new();
    let chunk = vec![1u8; 1 << 20];
    for i in 0..20 {
        t.file(&format!("f{i}"), &chunk);
    }
    t.finish()
}

fn corpus(base: &Path) -> Vec<Case> {
    use Expect::*;
    let victim_abs = base.join("victim");
    let victim_abs: &'static str =
        Box::leak(victim_abs.to_string_lossy().into_owned().into_boxed_str());
    let base_abs: &'static str = Box::leak(base.to_string_lossy().into_owned().into_boxed_str());
    let mut v = vec![
        // moby TestUntarInvalidFilenames
        case("dotdot-file", Refused, |t| {
            t.file("../victim/dotdot", b"x");
        }),
        case("slash-dotdot-file", Refused, |t| {
            t.file("/../victim/slash-dotdot", b"x");
        }),
        case("etc-passwd-dotdot", Refused, |t| {
            t.file("../../etc/passwd", b"root::0:0::/:/bin/sh\n");
        }),
        with_check(
            case("absolute-name-rerooted", Applied, |t| {
                t.file("/etc/x", b"in target");
            }),
            |tgt| assert_eq!(std::fs::read(tgt.join("etc/x")).unwrap(), b"in target"),
        ),
        case("a-dotdot-dotdot", Refused, |t| {
            t.file("a/../../x", b"x");
        }),
        with_check(
            case("a-dotdot-stays-inside", Applied, |t| {
                t.file("a/../x", b"x");
            }),
            |tgt| assert!(tgt.join("x").is_file()),
        ),
        case("symlink-root-then-write-through", Refused, |t| {
            t.symlink("a", "/").file("a/etc/x", b"x");
        }),
        case("symlink-dotdot-dotdot", Refused, |t| {
            t.symlink("a", "../..").file("a/x", b"x");
        }),
        case("symlink-dot-then-write-through", Refused, |t| {
            t.symlink("a", ".").file("a/x", b"x");
        }),
        case("hardlink-etc-passwd", Refused, |t| {
            t.hardlink("h", "/etc/passwd");
        }),
        case("hardlink-dotdot", Refused, |t| {
            t.hardlink("h", "../x");
        }),
        // moby TestUntarInvalidHardlink
        case("hardlink-victim-dotdot", Refused, |t| {
            t.hardlink("dotdot", "../victim/hello");
        }),
        case("hardlink-victim-slash-dotdot", Refused, |t| {
            t.hardlink("slash-dotdot", "/../victim/hello");
        }),
        case("hardlink-dir-then-write", Refused, |t| {
            t.hardlink("loophole-victim", "../victim")
                .file("loophole-victim/file", b"x");
        }),
        case("hardlink-dir-then-replace", Refused, |t| {
            t.hardlink("loophole-victim", "../victim")
                .file("loophole-victim", b"x");
        }),
        case("hardlink-to-in-target-dir", Refused, |t| {
            t.dir("d/").hardlink("h", "d");
        }),
        // a symlink pointing out, then a hardlink to it: links the symlink itself
        with_check(
            case("hardlink-to-symlink-pointing-out", Applied, |t| {
                t.symlink("s", "/etc/passwd").hardlink("h", "s");
            }),
            |tgt| {
                let md = std::fs::symlink_metadata(tgt.join("h")).unwrap();
                assert!(md.file_type().is_symlink());
                assert_eq!(
                    std::fs::read_link(tgt.join("h")).unwrap(),
                    Path::new("/etc/passwd")
                );
            },
        ),
        case("hardlink-through-symlink-parent", Refused, |t| {
            t.symlink("s", "/").hardlink("h", "s/etc/passwd");
        }),
        // moby TestUntarHardlinkToSymlink
        with_check(
            case("moby-hardlink-to-symlink", Applied, |t| {
                t.symlink("symlink1", "regfile")
                    .hardlink("symlink2", "symlink1")
                    .file("regfile", b"r");
            }),
            |tgt| {
                assert_eq!(std::fs::read(tgt.join("symlink2")).unwrap(), b"r");
                assert!(std::fs::symlink_metadata(tgt.join("symlink2"))
                    .unwrap()
                    .file_type()
                    .is_symlink());
            },
        ),
        // moby TestUntarInvalidSymlink
        case("symlink-victim-dotdot", Refused, |t| {
            t.symlink("dotdot", "../victim/hello");
        }),
        case("symlink-loophole-write", Refused, |t| {
            t.symlink("loophole-victim", "../victim")
                .file("loophole-victim/file", b"x");
        }),
        case("symlink-loophole-symlink", Refused, |t| {
            t.symlink("loophole-victim", "../victim")
                .symlink("symlink", "loophole-victim/hello");
        }),
        case("symlink-loophole-hardlink", Refused, |t| {
            t.symlink("loophole-victim", "../victim")
                .hardlink("hardlink", "loophole-victim/hello");
        }),
        case("symlink-loophole-replace", Refused, |t| {
            t.symlink("loophole-victim", "../victim")
                .file("loophole-victim", b"x");
        }),
        case("symlink-nested-loophole", Refused, |t| {
            t.symlink("dir/loophole", "../../victim")
                .file("dir/loophole/newdir/newfile", b"x");
        }),
        // absolute symlink targets are kept (only meaningful inside a container) but never followed
        case("symlink-slash-dotdot-kept-not-followed", Contained, |t| {
            t.symlink("slash-dotdot", "/../victim/hello");
        }),
        with_check(
            case("symlink-then-file-replaces-link", Applied, move |t| {
                t.symlink("s", &format!("{victim_abs}/hello"))
                    .file("s", b"replaced");
            }),
            |tgt| {
                assert!(std::fs::symlink_metadata(tgt.join("s")).unwrap().is_file());
                assert_eq!(std::fs::read(tgt.join("s")).unwrap(), b"replaced");
            },
        ),
        case("symlink-abs-victim-then-write-through", Refused, move |t| {
            t.symlink("s", victim_abs).file("s/file", b"x");
        }),
        case("dir-replaced-by-symlink-then-write", Refused, move |t| {
            t.dir("d/")
                .file("d/ok", b"ok")
                .symlink("d", victim_abs)
                .file("d/file", b"x");
        }),
        case("symlink-loop-parent", Refused, |t| {
            t.symlink("a", "b").symlink("b", "a").file("a/x", b"x");
        }),
        with_check(
            case("file-then-dir-same-name", Applied, |t| {
                t.file("x", b"f").dir("x/").file("x/y", b"y");
            }),
            |tgt| assert_eq!(std::fs::read(tgt.join("x/y")).unwrap(), b"y"),
        ),
        with_check(
            case("dir-then-file-same-name", Applied, |t| {
                t.dir("x/").file("x/y", b"y").file("x", b"f");
            }),
            |tgt| assert_eq!(std::fs::read(tgt.join("x")).unwrap(), b"f"),
        ),
        // whiteout tricks
        case("whiteout-dotdot", Refused, |t| {
            t.file(".wh...", b"");
        }),
        case("whiteout-empty-name", Refused, |t| {
            t.file(".wh.", b"");
        }),
        case("whiteout-dot", Refused, |t| {
            t.file(".wh..", b"");
        }),
        case("whiteout-as-directory", Refused, |t| {
            t.file("a/.wh.../x", b"");
        }),
        case("whiteout-victim-dotdot", Refused, |t| {
            t.file("../.wh.victim", b"");
        }),
        case("whiteout-through-symlink", Refused, move |t| {
            t.symlink("l", base_abs).file("l/.wh.victim", b"");
        }),
        case("opaque-through-symlink", Refused, move |t| {
            t.symlink("l", victim_abs).file("l/.wh..wh..opq", b"");
        }),
        overlay(case(
            "overlay-whiteout-through-symlink",
            Refused,
            move |t| {
                t.symlink("l", victim_abs).file("l/.wh.hello", b"");
            },
        )),
        overlay(case("overlay-opaque-through-symlink", Refused, move |t| {
            t.symlink("l", victim_abs).file("l/.wh..wh..opq", b"");
        })),
        overlay(case("overlay-whiteout-dotdot", Refused, |t| {
            t.file(".wh...", b"");
        })),
        // devices
        with_check(
            case("device-not-allowed-skipped", Applied, |t| {
                let mut h = hdr("null", EntryType::Char, 0o666, 0);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                t.header_and_data(h, b"");
            }),
            |tgt| assert!(!tgt.join("null").exists()),
        ),
        // size tricks and bombs
        case("sparse-bomb", Refused, |t| {
            t.bytes = sparse_bomb();
            t.bytes.truncate(t.bytes.len() - 1024);
        }),
        case("many-files-bomb", Refused, |t| {
            t.bytes = many_files_bomb();
            t.bytes.truncate(t.bytes.len() - 1024);
        }),
        with_check(
            case("pax-size-override-hides-header", Applied, |t| {
                // ustar size 0, PAX size 1024: the "inner" header is file content.
                let mut inner = RawTar::new();
                inner.file("../victim/evil", b"evil");
                let inner = inner.finish();
                let data = &inner[..1024];
                t.pax(&[("size", b"1024")]);
                let h = hdr("f", EntryType::Regular, 0o644, 0);
                t.header_and_data(h, data);
            }),
            |tgt| assert_eq!(std::fs::metadata(tgt.join("f")).unwrap().len(), 1024),
        ),
        case("pax-path-dotdot", Refused, |t| {
            t.pax(&[("path", b"../x")]).file("innocent", b"x");
        }),
        case("pax-path-victim", Refused, |t| {
            t.pax(&[("path", b"../victim/pax")]).file("innocent", b"x");
        }),
        case("pax-linkpath-dotdot", Refused, |t| {
            t.pax(&[("linkpath", b"../victim/hello")])
                .hardlink("h", "innocent");
        }),
        case("pax-path-nul", Refused, |t| {
            t.pax(&[("path", b"a\0/../../x")]).file("innocent", b"x");
        }),
        case("gnu-longname-dotdot", Refused, |t| {
            t.gnu_longname(b"../x").file("innocent", b"x");
        }),
        case("gnu-longname-long-escape", Refused, |t| {
            let name = format!("a//../../../{}", "b".repeat(200));
            t.gnu_longname(name.as_bytes()).file("innocent", b"x");
        }),
        with_check(
            case("ustar-name-nul-truncates", Applied, |t| {
                t.entry(
                    b"safe\0../../victim/x",
                    EntryType::Regular,
                    b"",
                    0o644,
                    b"s",
                );
            }),
            |tgt| assert_eq!(std::fs::read(tgt.join("safe")).unwrap(), b"s"),
        ),
        case("uid-minus-one", Refused, |t| {
            let mut h = hdr("u", EntryType::Regular, 0o644, 0);
            h.set_uid(u64::from(u32::MAX));
            t.header_and_data(h, b"");
        }),
        with_check(
            case("opaque-root-clears-target-only", Applied, |t| {
                t.file("new", b"n").file(".wh..wh..opq", b"");
            }),
            |tgt| assert_eq!(listing(tgt), ["new"]),
        ),
        case("unknown-entry-type", Refused, |t| {
            t.entry(b"weird", EntryType::new(b'Z'), b"", 0o644, b"");
        }),
    ];
    v.push(Case {
        name: "gzip-zero-bomb-1GiB",
        tar: gzip_bomb(),
        compressed: true,
        opts: opts(),
        expect: Refused,
        check: None,
    });
    let mut stream_cap = case("stream-cap-on-padding", Refused, |t| {
        // 2 MiB of empty directory entries: nothing written, but a large stream.
        for i in 0..4096 {
            t.dir(&format!("d{i}/"));
        }
    });
    stream_cap.opts.max_bytes = Some(1 << 20);
    v.push(stream_cap);
    v
}

fn setup(base: &Path) {
    let victim = base.join("victim");
    std::fs::create_dir_all(victim.join("sub")).unwrap();
    std::fs::write(victim.join("hello"), b"hello, victim\n").unwrap();
    std::fs::write(victim.join("sub/deep"), b"deep\n").unwrap();
    std::fs::create_dir(base.join("target")).unwrap();
    std::fs::write(base.join("target/preexisting"), b"lower\n").unwrap();
}

#[test]
fn hostile_corpus() {
    let probe = tempfile::tempdir().unwrap();
    let count = corpus(probe.path()).len();
    assert!(count >= 30, "corpus has only {count} cases");
    let passwd_before = std::fs::metadata("/etc/passwd")
        .map(|m| (m.nlink(), m.len()))
        .ok();
    let mut failures = Vec::new();
    for i in 0..count {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        std::fs::create_dir(&base).unwrap();
        setup(&base);
        let cases = corpus(&base);
        let c = &cases[i];
        let victim_before = snapshot(&base.join("victim"));
        let base_before = listing(&base);
        let tmp_before = listing(tmp.path());
        let target = base.join("target");
        let result = if c.compressed {
            apply_layer_compressed(&c.tar[..], &target, &c.opts)
        } else {
            apply_layer(&c.tar[..], &target, &c.opts)
        };
        let mut problems = Vec::new();
        if snapshot(&base.join("victim")) != victim_before {
            problems.push("victim changed".to_string());
        }
        if listing(&base) != base_before {
            problems.push(format!("base listing changed: {:?}", listing(&base)));
        }
        if listing(tmp.path()) != tmp_before {
            problems.push(format!(
                "temp dir listing changed: {:?}",
                listing(tmp.path())
            ));
        }
        for p in HOST_SENTINELS {
            if Path::new(p).exists() {
                problems.push(format!("{p} exists on the host"));
            }
        }
        match (&result, c.expect) {
            (Err(e), Expect::Refused) => {
                if e.kind() != ErrorKind::InvalidArgument {
                    problems.push(format!("error kind {:?}: {e}", e.kind()));
                }
            }
            (Ok(_), Expect::Applied) | (_, Expect::Contained) => {}
            (r, want) => problems.push(format!("expected {want:?}, got {r:?}")),
        }
        if result.is_ok() {
            if let Some(check) = c.check {
                if let Err(p) = std::panic::catch_unwind(|| check(&target)) {
                    problems.push(format!("check failed: {p:?}"));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", c.name, problems.join("; ")));
        }
        eprintln!(
            "{:40} {:?}",
            c.name,
            result.as_ref().map(|_| "ok").map_err(|e| e.to_string())
        );
    }
    let passwd_after = std::fs::metadata("/etc/passwd")
        .map(|m| (m.nlink(), m.len()))
        .ok();
    assert_eq!(passwd_before, passwd_after, "/etc/passwd changed");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{count} hostile archives contained");
}

#[test]
fn bombs_say_too_large() {
    let tmp = tempfile::tempdir().unwrap();
    let o = opts();
    for (name, bytes, compressed) in [
        ("gzip", gzip_bomb(), true),
        ("sparse", sparse_bomb(), false),
        ("many", many_files_bomb(), false),
    ] {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let r = if compressed {
            apply_layer_compressed(&bytes[..], &dir, &o)
        } else {
            apply_layer(&bytes[..], &dir, &o)
        };
        match r {
            Err(Error::TooLarge { limit }) => assert_eq!(limit, 16 << 20),
            other => panic!("{name}: expected TooLarge, got {other:?}"),
        }
    }
}

#[test]
fn devices_created_when_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = RawTar::new();
    let mut h = hdr("null", EntryType::Char, 0o666, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    t.header_and_data(h, b"");
    let bytes = t.finish();
    let o = ApplyOptions {
        allow_devices: true,
        ..opts()
    };
    let stats = apply_layer(&bytes[..], tmp.path(), &o).unwrap();
    assert_eq!(stats.devices, 1);
    let md = std::fs::symlink_metadata(tmp.path().join("null")).unwrap();
    assert_eq!(rustix::fs::major(md.rdev()), 1);
    assert_eq!(rustix::fs::minor(md.rdev()), 3);
    assert_eq!(md.mode() & 0o7777, 0o666);
}
