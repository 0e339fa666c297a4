//! The harness of the networking tests: each test re-runs itself in a
//! fresh network and mount namespace (`unshare --net --mount`), so bridges,
//! NAT rules, veths and namespace mounts never touch the host or another
//! test, and all of it vanishes when the test process exits.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const ISOLATED: &str = "BERTH_NET_TEST_ISOLATED";

/// Runs the test `name`'s body in its own network namespace: the test
/// binary runs itself again for just that test under `unshare`.
pub fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var_os(ISOLATED).is_some() {
        sh(&["ip", "link", "set", "lo", "up"]);
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(out.status.success(), "isolated test {name} failed");
    assert!(
        stdout.contains("1 passed"),
        "isolated test {name} did not run: {stdout}"
    );
}

/// Runs a command, failing the test on error; returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether a link exists in the test's namespace.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// A temporary metadata DB and a place for namespace files.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub meta: berth_store::Metadata,
    pub config: berth_net::NetConfig,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let meta = berth_store::Metadata::open(&dir.path().join("berth.db")).unwrap();
        Env {
            dir,
            meta,
            config: berth_net::NetConfig::default(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("berth.db")
    }

    /// A new namespace file `<dir>/<name>.netns`.
    pub fn netns(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.netns"));
        berth_net::create_netns(&path).unwrap();
        path
    }

    /// Connects a container `name` (ID derived from it) to `network`.
    pub fn connect(
        &mut self,
        network: &str,
        name: &str,
        netns: &Path,
        hosts: Option<&Path>,
    ) -> berth_net::Endpoint {
        berth_net::connect(
            &mut self.meta,
            &self.config,
            &berth_net::ConnectRequest {
                network,
                container_id: &container_id(name),
                name,
                aliases: &[],
                netns,
                hosts_path: hosts,
                ip: None,
            },
        )
        .unwrap()
    }
}

/// A stable 64-hex container ID for a test name.
pub fn container_id(name: &str) -> String {
    let mut id: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    id.push_str(&"0".repeat(64));
    id.truncate(64);
    id
}
