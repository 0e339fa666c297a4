//! The test fixture shared by the CLI tests: a temporary store root and the
//! real `berth` binary run against it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod build;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary store, and a network namespace of its own: every berth
/// command of the fixture runs in it (`nsenter --net`, which switches the
/// network namespace only), so bridges, veths and NAT rules never touch the
/// host or another test.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub netns: String,
}

static NETNS_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Fixture {
    pub fn new() -> Fixture {
        let netns = format!(
            "berth-test-{}-{}",
            std::process::id(),
            NETNS_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let status = Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {netns}");
        let _ = Command::new("ip")
            .args(["-n", &netns, "link", "set", "lo", "up"])
            .status();
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            netns,
        }
    }

    /// A fixture whose store has the busybox image `busybox` (CMD sh).
    pub fn with_busybox() -> Fixture {
        let f = Fixture::new();
        let rootfs = busybox_rootfs(f.dir.path());
        f.ok(&[
            "import",
            "--change",
            "CMD [\"sh\"]",
            rootfs.to_str().unwrap(),
            "busybox",
        ]);
        f
    }

    /// A command that runs `program` in the fixture's network namespace.
    pub fn in_netns(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program);
        cmd
    }

    /// `berth --root ROOT` in the fixture's network namespace.
    pub fn command(&self) -> Command {
        let mut cmd = self.in_netns(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("--root").arg(self.root());
        cmd
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_stdin(args, None)
    }

    pub fn berth_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A small root filesystem as a tar made by GNU tar.
    pub fn rootfs_tar(&self) -> PathBuf {
        let tree = self.dir.path().join("tree");
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(tree.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
        let tar = self.dir.path().join("rootfs.tar");
        tar_dir(&tree, &tar);
        tar
    }
}

impl Drop for Fixture {
    /// Containers a test left running are killed and removed, so no
    /// process or mount outlives the temporary store.
    fn drop(&mut self) {
        if self.root().join("containers").is_dir() {
            let out = self.berth(&["ps", "-aq", "--no-trunc"]);
            let ids = String::from_utf8_lossy(&out.stdout).into_owned();
            for id in ids.split_whitespace() {
                let _ = self.berth(&["rm", "-f", id]);
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

pub fn tar_dir(tree: &Path, out: &Path) {
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
        ])
        .arg(tree)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The busybox root filesystem made by the shared benchmark script (needs
/// Debian's busybox-static, which scripts/test.sh installs).
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let out = dir.join("busybox-rootfs.tar");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/base/make-busybox.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .env("GEN", dir)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{} failed (is busybox-static installed?)",
        script.display()
    );
    out
}
