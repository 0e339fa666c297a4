//! The spec berth writes runs under berth's own launcher (embedded
//! libcontainer): Docker's defaults, a named user, and `--privileged`
//! (which grants only the capabilities the host's bounding set holds).
//! Runs on the main thread only (`harness = false`), as the shim does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_launch::{launch, Stdio};
use berth_oci::{ContainerConfig, ImageConfig};
use berth_runtime::mounts::{
    parse_mount_flag, parse_volume_flag, resolve_tmpfs_targets, MountRequest, ResolvedMount,
};
use berth_runtime::resources::{parse_cpus, parse_ram_bytes, ResourceHost, Resources};
use berth_runtime::rootfs::check_special_dirs;
use berth_runtime::{build_spec, RunOptions};

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Runs `cmd` in a busybox bundle built from `opts`; returns (stdout, exit code).
fn run(dir: &Path, id: &str, cmd: &[&str], opts: &RunOptions) -> (String, i32) {
    let rootfs = busybox_rootfs(dir, id);
    run_in(dir, id, &rootfs, cmd, opts, |_| {})
}

/// A busybox root filesystem at `<dir>/<id>/rootfs`.
fn busybox_rootfs(dir: &Path, id: &str) -> PathBuf {
    let rootfs = dir.join(id).join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(rootfs.join("etc/group"), GROUP).unwrap();
    rootfs
}

/// Runs `cmd` on the prepared `rootfs`; `during` sees the running
/// container before it is waited for.
fn run_in(
    dir: &Path,
    id: &str,
    rootfs: &Path,
    cmd: &[&str],
    opts: &RunOptions,
    during: impl FnOnce(&berth_launch::Running),
) -> (String, i32) {
    let bundle = rootfs.parent().unwrap();
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
        rootfs,
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
    let mut running = launch(bundle, id, &dir.join("state"), stdio).unwrap();
    during(&running);
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

    passed += mounts(dir.path());
    passed += resources(dir.path());

    println!(
        "\ntest result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}

fn sh(script: &str) -> Vec<String> {
    ["/bin/busybox", "sh", "-c", script]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Binds, volumes-as-binds and tmpfs mounts through the launcher; targets
/// that are symlinks out of the image land inside it.
fn mounts(dir: &Path) -> usize {
    let mut passed = 0;
    let unique = format!("berth-escape-{}", std::process::id());

    // A read-only bind is visible and cannot be written.
    let host = dir.join("host-data");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from the host\n").unwrap();
    let rootfs = busybox_rootfs(dir, "bindro");
    let request = parse_volume_flag(&format!("{}:/data:ro", host.display())).unwrap();
    let MountRequest::Bind(bind) = request else {
        panic!("{request:?}")
    };
    let opts = RunOptions {
        mounts: vec![ResolvedMount::bind(&rootfs, &bind).unwrap()],
        ..RunOptions::default()
    };
    let cmd = sh("exec 2>&1; cat /data/f; echo x > /data/g; echo status=$?");
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let (out, code) = run_in(dir, "bindro", &rootfs, &cmd, &opts, |_| {});
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("from the host\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.ends_with("status=1\n"), "{out}");
    assert!(!host.join("g").exists());
    passed += 1;

    // Targets through symlinks to `/` and `../../..` land inside the rootfs;
    // a target that *is* a symlink to `/` is refused.
    let rootfs = busybox_rootfs(dir, "escape");
    std::os::unix::fs::symlink("/", rootfs.join("toroot")).unwrap();
    std::os::unix::fs::symlink("../../..", rootfs.join("up")).unwrap();
    let through_root = format!("/toroot/tmp/{unique}");
    let through_up = format!("/up/up/up/var/{unique}");
    let mut mounts = Vec::new();
    for target in [&through_root, &through_up] {
        let MountRequest::Bind(bind) =
            parse_volume_flag(&format!("{}:{target}", host.display())).unwrap()
        else {
            panic!()
        };
        mounts.push(ResolvedMount::bind(&rootfs, &bind).unwrap());
    }
    assert_eq!(mounts[0].target, format!("/tmp/{unique}"));
    assert_eq!(mounts[1].target, format!("/var/{unique}"));
    let MountRequest::Bind(onto_root) =
        parse_volume_flag(&format!("{}:/toroot", host.display())).unwrap()
    else {
        panic!()
    };
    let refused = ResolvedMount::bind(&rootfs, &onto_root).unwrap_err();
    assert!(
        refused.to_string().contains("destination can't be '/'"),
        "{refused}"
    );
    let opts = RunOptions {
        mounts,
        ..RunOptions::default()
    };
    let script = format!(
        "exec 2>&1; cat /tmp/{unique}/f /var/{unique}/f; echo x > /tmp/{unique}/new; ls /toroot/tmp/{unique}"
    );
    let cmd = sh(&script);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let (out, code) = run_in(dir, "escape", &rootfs, &cmd, &opts, |_| {});
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "from the host\nfrom the host\nf\nnew\n");
    // The host's own /tmp and /var were never touched.
    assert!(!Path::new("/tmp").join(&unique).exists());
    assert!(!Path::new("/var").join(&unique).exists());
    assert!(rootfs.join("tmp").join(&unique).is_dir());
    std::fs::remove_file(host.join("new")).unwrap();
    passed += 1;

    // --mount type=tmpfs with size and mode, its target resolved too.
    let rootfs = busybox_rootfs(dir, "tmpfs");
    let MountRequest::Tmpfs(tmpfs) =
        parse_mount_flag("type=tmpfs,dst=/toroot/scratch,tmpfs-size=1m,tmpfs-mode=1770").unwrap()
    else {
        panic!()
    };
    std::os::unix::fs::symlink("/", rootfs.join("toroot")).unwrap();
    let mut tmpfs = vec![tmpfs];
    resolve_tmpfs_targets(&rootfs, &mut tmpfs).unwrap();
    let opts = RunOptions {
        tmpfs,
        ..RunOptions::default()
    };
    let cmd = sh("grep ' /scratch ' /proc/mounts; stat -c %a /scratch");
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let (out, code) = run_in(dir, "tmpfs", &rootfs, &cmd, &opts, |_| {});
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("tmpfs /scratch tmpfs "), "{out}");
    assert!(out.contains("size=1024k"), "{out}");
    assert!(out.ends_with("\n1770\n"), "{out}");
    passed += 1;

    // An image whose /proc is a symlink is refused before anything runs.
    let rootfs = busybox_rootfs(dir, "procsym");
    std::os::unix::fs::symlink("/", rootfs.join("proc")).unwrap();
    let e = check_special_dirs(&rootfs).unwrap_err();
    assert!(e.to_string().contains("/proc is a symbolic link"), "{e}");
    passed += 1;
    passed
}

/// The container's cgroup directory for `controller` (v1), or the v2 one.
fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if controllers.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup")
                .join(controllers)
                .join(path.trim_start_matches('/'));
        }
    }
    let v2 = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    Path::new("/sys/fs/cgroup").join(v2.trim_start_matches('/'))
}

/// --memory, --pids-limit and --cpus, enforced by the kernel.
fn resources(dir: &Path) -> usize {
    let mut passed = 0;
    let host = ResourceHost::detect();

    // Allocating beyond --memory: the OOM killer ends the container (137).
    let limits = Resources {
        memory: Some(parse_ram_bytes("32m").unwrap()),
        ..Resources::default()
    }
    .validate(host)
    .unwrap()
    .resources;
    let opts = RunOptions {
        resources: limits,
        ..RunOptions::default()
    };
    let (out, code) = run(
        dir,
        "oom",
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "x=$(/bin/busybox head -c 200000000 /dev/zero | /bin/busybox tr '\\0' a); echo survived ${#x}",
        ],
        &opts,
    );
    assert_eq!(code, 137, "{out}");
    assert!(!out.contains("survived"), "{out}");
    passed += 1;

    // --pids-limit 5: the sixth process cannot be forked.
    let opts = RunOptions {
        resources: Resources {
            pids_limit: Some(5),
            ..Resources::default()
        },
        ..RunOptions::default()
    };
    let (out, code) = run(
        dir,
        "pids",
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "exec 2>&1; i=0; while [ $i -lt 10 ]; do /bin/busybox sleep 2 & i=$((i+1)); done; echo started",
        ],
        &opts,
    );
    // busybox sh gives up with status 2 when fork fails.
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("can't fork"), "{out}");
    assert!(!out.contains("started"), "{out}");
    passed += 1;

    // --cpus 1.5: a CFS quota of 150000 µs per 100000 µs period.
    let opts = RunOptions {
        resources: Resources {
            nano_cpus: Some(parse_cpus("1.5").unwrap()),
            cpu_shares: Some(512),
            ..Resources::default()
        }
        .validate(host)
        .unwrap()
        .resources,
        ..RunOptions::default()
    };
    let rootfs = busybox_rootfs(dir, "cpus");
    let mut seen = String::new();
    let (_, code) = run_in(
        dir,
        "cpus",
        &rootfs,
        &["/bin/busybox", "sleep", "1"],
        &opts,
        |running| {
            let cg = cgroup_dir(running.pid(), "cpu");
            seen = match std::fs::read_to_string(cg.join("cpu.cfs_quota_us")) {
                Ok(quota) => format!(
                    "{} {} {}",
                    quota.trim(),
                    std::fs::read_to_string(cg.join("cpu.cfs_period_us"))
                        .unwrap()
                        .trim(),
                    std::fs::read_to_string(cg.join("cpu.shares"))
                        .unwrap()
                        .trim()
                ),
                Err(_) => std::fs::read_to_string(cg.join("cpu.max")).unwrap(),
            };
        },
    );
    assert_eq!(code, 0);
    assert!(
        seen == "150000 100000 512" || seen.trim() == "150000 100000",
        "{seen}"
    );
    passed += 1;
    passed
}
