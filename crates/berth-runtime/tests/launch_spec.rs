//! The spec berth writes runs under berth's own launcher (embedded
//! libcontainer): Docker's defaults, a named user, and `--privileged`
//! (which grants only the capabilities the host's bounding set holds).
//! Runs on the main thread only (`harness = false`), as the shim does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::Path;

use berth_launch::{launch, Stdio};
use berth_oci::{ContainerConfig, ImageConfig};
use berth_runtime::{build_spec, RunOptions};

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Runs `cmd` in a busybox bundle built from `opts`; returns (stdout, exit code).
fn run(dir: &Path, id: &str, cmd: &[&str], opts: &RunOptions) -> (String, i32) {
    let bundle = dir.join(id);
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(rootfs.join("etc/group"), GROUP).unwrap();
    let image = ImageConfig {
        config: Some(ContainerConfig {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    };
    let spec = build_spec(
        &image,
        opts,
        &rootfs,
        PASSWD,
        GROUP,
        &format!("{id}0123456789abcdef"),
    )
    .unwrap();
    std::fs::write(bundle.join("config.json"), spec.to_json().unwrap()).unwrap();
    let (mut reader, writer) = std::io::pipe().unwrap();
    let stdio = Stdio {
        stdout: Some(writer.into()),
        ..Stdio::default()
    };
    let mut running = launch(&bundle, id, &dir.join("state"), stdio).unwrap();
    let status = running.wait().unwrap();
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    running.delete().unwrap();
    (out, status.code())
}

fn main() {
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: scripts/test.sh installs busybox-static"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut passed = 0;

    let (out, code) = run(
        dir.path(),
        "defaults",
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "echo $HOSTNAME; /bin/busybox id -u; exit 4",
        ],
        &RunOptions::default(),
    );
    assert_eq!(code, 4, "{out}");
    assert_eq!(out, "defaults0123\n0\n");
    passed += 1;

    let (out, code) = run(
        dir.path(),
        "named",
        &["/bin/busybox", "id"],
        &RunOptions {
            user: Some("nobody".into()),
            ..RunOptions::default()
        },
    );
    assert_eq!(code, 0);
    assert!(
        out.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{out}"
    );
    passed += 1;

    let (out, code) = run(
        dir.path(),
        "privileged",
        &["/bin/busybox", "grep", "NoNewPrivs", "/proc/self/status"],
        &RunOptions {
            privileged: true,
            ..RunOptions::default()
        },
    );
    assert_eq!(code, 0);
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    passed += 1;

    println!(
        "\ntest result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}
