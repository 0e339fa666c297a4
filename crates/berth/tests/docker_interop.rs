//! berth and a real Docker daemon exchange images both ways: an image berth
//! imported and saved is loaded and run by Docker; an image Docker saved is
//! loaded by berth, saved again and read by skopeo.
//!
//! The daemon is Debian's `docker.io`, started here on a private socket and
//! data root with no networking of its own (`scripts/test.sh` installs it,
//! with `busybox-static` and `skopeo`). Missing tools fail the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private dockerd, stopped when dropped.
struct Dockerd {
    child: Child,
    socket: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        for tool in ["dockerd", "docker", "skopeo"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .status()
                    .unwrap()
                    .success(),
                "{tool} is missing: run scripts/test.sh, which installs it"
            );
        }
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("docker.sock");
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["--iptables=false", "--bridge=none"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .spawn()
            .unwrap();
        let daemon = Dockerd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if daemon.docker(&["version"]).status.success() {
                return daemon;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn images_travel_between_berth_and_docker() {
    let f = Fixture::new();
    let daemon = Dockerd::start(&f.dir.path().join("docker"));
    let rootfs = busybox_rootfs(f.dir.path());

    // berth import → berth save → docker load → docker run.
    f.ok(&["import", rootfs.to_str().unwrap(), "x"]);
    let archive = f.dir.path().join("x.tar");
    f.ok(&["save", "-o", archive.to_str().unwrap(), "x"]);
    let loaded = daemon.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("x:latest"), "{loaded}");
    let said = daemon.ok(&["run", "--rm", "--network", "none", "x", "echo", "ok"]);
    assert_eq!(said, "ok\n");

    // docker save → berth load → berth save → skopeo inspect.
    daemon.ok(&["import", rootfs.to_str().unwrap(), "from-docker:1"]);
    let docker_id = daemon.ok(&["image", "inspect", "--format", "{{.Id}}", "from-docker:1"]);
    let saved = f.dir.path().join("docker-save.tar");
    daemon.ok(&["save", "-o", saved.to_str().unwrap(), "from-docker:1"]);
    assert_eq!(
        f.ok(&["load", "-i", saved.to_str().unwrap()]),
        "Loaded image: from-docker:1\n"
    );
    let berth_id = f.ok(&["image", "inspect", "--format", "{{.Id}}", "from-docker:1"]);
    assert_eq!(berth_id, docker_id, "the image keeps its ID");
    let resaved = f.dir.path().join("resaved.tar");
    f.ok(&["save", "-o", resaved.to_str().unwrap(), "from-docker:1"]);
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", resaved.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let out = f.berth(&["system", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
