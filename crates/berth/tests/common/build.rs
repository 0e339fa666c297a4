//! Helpers shared by the `berth build` CLI tests: a store with the busybox
//! base, context directories, running a built image, counting cache hits,
//! and checking a build left nothing behind.

use std::path::PathBuf;

use super::{busybox_rootfs, stderr, Fixture};

/// The base image the build tests import.
pub const BASE: &str = "localbase/busybox:1";

/// A fixture whose store holds [`BASE`].
pub fn build_fixture() -> Fixture {
    let f = Fixture::new();
    let rootfs = busybox_rootfs(f.dir.path());
    f.ok(&["import", rootfs.to_str().unwrap(), BASE]);
    f
}

/// A context directory with `files` (path, content) and a Dockerfile.
pub fn context(f: &Fixture, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = f.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// The output of `script` run by `/bin/sh` in a container of `image`.
pub fn sh(f: &Fixture, image: &str, script: &str) -> String {
    let out = f.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        script,
    ]);
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The steps plain progress reports as cache hits.
pub fn cached_count(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.ends_with(" CACHED")).count()
}

/// No container or step directory, no mount under the store, and a clean
/// `system check`.
pub fn assert_nothing_left(f: &Fixture) {
    for dir in ["containers", "steps"] {
        let left: Vec<_> = std::fs::read_dir(f.root().join(dir))
            .map(|d| d.collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&f.root().display().to_string()),
        "a mount is left under the store"
    );
    let check = f.berth(&["system", "check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
