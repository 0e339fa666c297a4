//! The call order `run` follows, end to end under the embedded launcher:
//! rootfs ready → [`Engine::prepare_mounts`] (image VOLUMEs become seeded
//! anonymous volumes, named volumes are made, targets resolved inside the
//! rootfs) → `build_spec` with the prepared mounts → launch. The container
//! sees the image's owners and modes in its volume, writes land in the
//! volume, and a read-only bind stays read-only. Runs on the main thread
//! (`harness = false`), as the shim does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_engine::Engine;
use berth_launch::{launch, Stdio};
use berth_oci::{ContainerConfig, ImageConfig};
use berth_runtime::mounts::parse_volume_flag;
use berth_runtime::{build_spec, RunOptions};

fn main() {
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: scripts/test.sh installs busybox-static"
    );
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let data = rootfs.join("srv/data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/secret"), "s\n").unwrap();
    std::fs::set_permissions(
        data.join("sub/secret"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(data.join("sub/secret"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(data.join("sub"), std::fs::Permissions::from_mode(0o2750)).unwrap();
    std::os::unix::fs::chown(&data, Some(33), Some(33)).unwrap();
    std::os::unix::fs::symlink("/", rootfs.join("toroot")).unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("motd"), "hello\n").unwrap();

    let host_motd = std::fs::read("/etc/motd").ok();
    let image = ImageConfig {
        config: Some(ContainerConfig {
            volumes: ["/srv/data".to_string()].into(),
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    };
    let mut engine = Engine::open(&dir.path().join("store")).unwrap();
    let requests = [
        parse_volume_flag(&format!(
            "{}:/toroot/etc/motd:ro",
            host.join("motd").display()
        ))
        .unwrap(),
        parse_volume_flag("cache:/var/cache/app").unwrap(),
    ];
    let prepared = engine
        .prepare_mounts(&rootfs, &image, &requests, &[])
        .unwrap();
    assert_eq!(prepared.anonymous.len(), 1);
    let opts = RunOptions {
        command: [
            "/bin/busybox",
            "sh",
            "-c",
            "exec 2>&1; cat /etc/motd; stat -c '%u:%g %a' /srv/data /srv/data/sub /srv/data/sub/secret; \
             echo new > /srv/data/new; echo c > /var/cache/app/c; echo x > /etc/motd || echo refused",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        mounts: prepared.mounts.clone(),
        tmpfs: prepared.tmpfs.clone(),
        ..RunOptions::default()
    };
    let spec = build_spec(&image, &opts, &rootfs, "", "", "mountslaunch0123").unwrap();
    std::fs::write(bundle.join("config.json"), spec.to_json().unwrap()).unwrap();
    let (mut reader, writer) = std::io::pipe().unwrap();
    let stdio = Stdio {
        stdout: Some(writer.into()),
        ..Stdio::default()
    };
    let mut running = launch(&bundle, "mountslaunch", &dir.path().join("state"), stdio).unwrap();
    let status = running.wait().unwrap();
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    running.delete().unwrap();
    assert_eq!(status.code(), 0, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello"));
    assert_eq!(lines.next(), Some("33:33 755"));
    assert_eq!(lines.next(), Some("0:0 2750"));
    assert_eq!(lines.next(), Some("1234:5678 640"));
    assert!(
        lines.next().unwrap().contains("Read-only file system"),
        "{out}"
    );
    assert_eq!(lines.next(), Some("refused"));

    // The writes went to the volumes; the image and the bind source did not change.
    let anon = engine.inspect_volume(&prepared.anonymous[0]).unwrap();
    assert_eq!(
        std::fs::read_to_string(anon.mountpoint.join("new")).unwrap(),
        "new\n"
    );
    assert!(!data.join("new").exists());
    let cache = engine.inspect_volume("cache").unwrap();
    assert_eq!(
        std::fs::read_to_string(cache.mountpoint.join("c")).unwrap(),
        "c\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("motd")).unwrap(),
        "hello\n"
    );
    // The bind target landed inside the rootfs (through /toroot), never on
    // the host's /etc/motd.
    assert!(rootfs.join("etc/motd").is_file());
    assert_eq!(std::fs::read("/etc/motd").ok(), host_motd);

    println!("\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n");
}
