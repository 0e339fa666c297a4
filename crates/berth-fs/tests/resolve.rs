//! resolve_in_root: the kernel (openat2) and the userspace walk must agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use berth_fs::{resolve_in_root, Error, ErrorKind, ResolveMethod, ResolveOptions};

fn tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir_all(r.join("a/b/c")).unwrap();
    std::fs::write(r.join("file"), b"f").unwrap();
    symlink("/a/b", r.join("abs")).unwrap();
    symlink("a/b", r.join("rel")).unwrap();
    symlink("../../../..", r.join("up")).unwrap();
    symlink("/../../etc", r.join("escape")).unwrap();
    symlink("chain2", r.join("chain1")).unwrap();
    symlink("chain3", r.join("chain2")).unwrap();
    symlink("a", r.join("chain3")).unwrap();
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    symlink("self", r.join("self")).unwrap();
    symlink("../../file", r.join("a/b/back")).unwrap();
    symlink("/", r.join("a/root")).unwrap();
    std::fs::create_dir(r.join("etc")).unwrap();
    // a chain of 30 hops (fine) and one of 50 (too many)
    for (name, n) in [("short", 30), ("long", 50)] {
        for i in 0..n {
            let next = if i + 1 == n {
                "a".to_string()
            } else {
                format!("{name}{}", i + 1)
            };
            symlink(next, r.join(format!("{name}{i}"))).unwrap();
        }
    }
    tmp
}

/// (input, follow_final, expected path inside the root)
const EXISTING: &[(&str, bool, &str)] = &[
    ("", true, ""),
    ("/", true, ""),
    ("a/b/c", true, "a/b/c"),
    ("/a/b/c", true, "a/b/c"),
    ("a/./b//c/", true, "a/b/c"),
    ("../../a", true, "a"),
    ("a/../../../a/b", true, "a/b"),
    ("abs", true, "a/b"),
    ("abs/c", true, "a/b/c"),
    ("abs", false, "abs"),
    ("rel/c", true, "a/b/c"),
    ("up", true, ""),
    ("up/a", true, "a"),
    ("escape", true, "etc"),
    ("chain1/b", true, "a/b"),
    ("a/b/back", true, "file"),
    ("a/b/back", false, "a/b/back"),
    ("a/root/a/root/file", true, "file"),
    ("abs/../..", true, ""),
    ("short0", true, "a"),
];

fn check(method: ResolveMethod) {
    let t = tree();
    let root = t.path();
    for (input, follow, want) in EXISTING {
        let opts = ResolveOptions {
            follow_final: *follow,
            method,
        };
        let got = resolve_in_root(root, input, &opts)
            .unwrap_or_else(|e| panic!("{method:?} {input}: {e}"));
        let want: PathBuf = if want.is_empty() {
            root.to_path_buf()
        } else {
            root.join(want)
        };
        assert_eq!(got, want, "{method:?} {input:?} follow={follow}");
    }
    for input in ["loop1", "loop1/x", "self", "long0", "a/../loop2/x"] {
        let opts = ResolveOptions {
            follow_final: true,
            method,
        };
        match resolve_in_root(root, input, &opts) {
            Err(e @ Error::SymlinkLoop { .. }) => assert_eq!(e.kind(), ErrorKind::InvalidArgument),
            other => panic!("{method:?} {input}: expected ELOOP, got {other:?}"),
        }
    }
    // a loop in the last component is not followed without follow_final
    let opts = ResolveOptions {
        follow_final: false,
        method,
    };
    assert_eq!(
        resolve_in_root(root, "loop1", &opts).unwrap(),
        root.join("loop1")
    );
}

#[test]
fn kernel_table() {
    check(ResolveMethod::Kernel);
}

#[test]
fn userspace_table() {
    check(ResolveMethod::Userspace);
}

#[test]
fn auto_table() {
    check(ResolveMethod::Auto);
}

#[test]
fn missing_tails() {
    let t = tree();
    let root = t.path();
    for method in [ResolveMethod::Auto, ResolveMethod::Userspace] {
        let opts = ResolveOptions {
            follow_final: true,
            method,
        };
        assert_eq!(
            resolve_in_root(root, "abs/new/x", &opts).unwrap(),
            root.join("a/b/new/x")
        );
        assert_eq!(
            resolve_in_root(root, "up/../../nope", &opts).unwrap(),
            root.join("nope")
        );
        assert_eq!(
            resolve_in_root(root, "a/root/../../etc/shadow", &opts).unwrap(),
            root.join("etc/shadow")
        );
    }
    let opts = ResolveOptions {
        follow_final: true,
        method: ResolveMethod::Kernel,
    };
    let e = resolve_in_root(root, "abs/new/x", &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn never_leaves_root() {
    let t = tree();
    let root = t.path();
    let inputs = [
        "../../../../etc/passwd",
        "/../etc/passwd",
        "up/up/up",
        "escape/../../..",
        "a/root/../..",
    ];
    for method in [ResolveMethod::Auto, ResolveMethod::Userspace] {
        for input in inputs {
            let opts = ResolveOptions {
                follow_final: true,
                method,
            };
            let got = resolve_in_root(root, input, &opts).unwrap();
            assert!(got.starts_with(root), "{input} → {}", got.display());
            assert!(!got.components().any(|c| c.as_os_str() == ".."));
        }
    }
    assert!(Path::new("/etc/passwd").exists());
}
