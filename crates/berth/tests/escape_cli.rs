//! The escape suite: one test per known runc/Docker container-breakout
//! class, each run through the real CLI and asserting what would fail if
//! berth's (or libcontainer's) protection were missing.
//!
//! - CVE-2019-5736: overwriting the runtime binary through `/proc/*/exe`;
//! - CVE-2024-21626: a working directory on a leaked descriptor
//!   (`-w /proc/self/fd/N`);
//! - CVE-2019-16884 / CVE-2019-19921 / CVE-2023-27561: an image whose
//!   `/proc` or `/dev` is a symlink redirecting the runtime's mounts;
//! - CVE-2021-30465 class: a mount target through a symlink in the image;
//! - CVE-2018-15664 and friends: `cp` through (and racing) container
//!   symlinks;
//! - masked and read-only `/proc` and `/sys` paths;
//! - device nodes of host disks (device cgroup);
//! - host processes and berth's own state are invisible inside.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

fn import_busybox(f: &Fixture) -> PathBuf {
    let rootfs = busybox_rootfs(f.dir.path());
    f.ok(&["import", "--change", "CMD [\"sh\"]", s(&rootfs), "busybox"]);
    rootfs
}

fn setup() -> Fixture {
    let f = Fixture::new();
    import_busybox(&f);
    f
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn out_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An image made from the busybox root with `change` applied to its tree.
fn import_modified(f: &Fixture, name: &str, change: impl FnOnce(&Path)) {
    let tar = busybox_rootfs(f.dir.path());
    let tree = f.dir.path().join(format!("tree-{name}"));
    std::fs::create_dir_all(&tree).unwrap();
    let status = Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .arg("-xf")
        .arg(&tar)
        .status()
        .unwrap();
    assert!(status.success());
    change(&tree);
    let out = f.dir.path().join(format!("{name}.tar"));
    tar_dir(&tree, &out);
    f.ok(&["import", "--change", "CMD [\"sh\"]", s(&out), name]);
}

/// Waits until the container's command has created `/tmp/ready`.
fn wait_until_ready(f: &Fixture, name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f
        .berth(&["exec", name, "test", "-e", "/tmp/ready"])
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn sha256(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// CVE-2019-5736: a container process must not be able to write to the
/// runtime binary through `/proc/self/exe`, `/proc/1/exe`, or the exe of a
/// process `berth exec` is starting (even when nothing else runs that
/// binary, so ETXTBSY would not save it).
#[test]
fn proc_exe_of_the_runtime_cannot_be_overwritten() {
    let f = setup();
    let berth = env!("CARGO_BIN_EXE_berth");
    let before = sha256(berth);
    // `berth exec` runs from a copy no shim executes: only the runtime's
    // own protections stand between the container and this file.
    let copy = f.dir.path().join("berth-copy");
    std::fs::copy(berth, &copy).unwrap();
    let copy_before = sha256(s(&copy));
    let grabber = "while true; do for p in /proc/[0-9]*; do \
        [ \"$p\" = /proc/$$ ] && continue; \
        t=$(readlink $p/exe 2>/dev/null); \
        case \"$t\" in *busybox*|'') continue;; esac; \
        echo \"saw $p $t\" >> /tmp/log; \
        if exec 3< $p/exe; then echo opened >> /tmp/log; \
          for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
            (echo PWNED >> /proc/self/fd/3) 2>/dev/null && echo WROTE >> /tmp/log; sleep 0.1; done; \
          exec 3<&-; fi; \
        done; done";
    f.ok(&[
        "run", "-d", "--name", "victim", "busybox", "sh", "-c", grabber,
    ]);

    // Direct writes fail inside.
    let out = f.berth(&[
        "exec", "victim", "sh", "-c",
        "echo x > /proc/self/exe && echo SELF-WRITTEN; echo x >> /proc/1/exe && echo ONE-WRITTEN; true",
    ]);
    let text = out_text(&out);
    assert!(!text.contains("WRITTEN"), "{text}");
    assert!(
        text.contains("Text file busy") || text.contains("denied"),
        "{text}"
    );

    // The runtime's binary never runs inside: neither as the command...
    let run_copy = |args: &[&str]| {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", f.netns))
            .arg("--")
            .arg(&copy)
            .arg("--root")
            .arg(f.root())
            .args(args);
        cmd.output().unwrap()
    };
    let out = run_copy(&["exec", "victim", "/proc/self/exe", "--version"]);
    assert!(!out.status.success(), "{}", out_text(&out));
    assert!(
        !out_text(&out).contains("berth version"),
        "{}",
        out_text(&out)
    );
    // ...nor as the interpreter of a `#!/proc/self/exe` script.
    let script = f.dir.path().join("evil");
    std::fs::write(&script, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    f.ok(&["cp", s(&script), "victim:/evil"]);
    let out = run_copy(&["exec", "victim", "/evil"]);
    assert!(
        !out_text(&out).contains("berth version"),
        "{}",
        out_text(&out)
    );
    // Many execs while the grabber watches every process's exe.
    for _ in 0..20 {
        let out = run_copy(&["exec", "victim", "true"]);
        assert!(out.status.success(), "{}", out_text(&out));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = f.berth(&["exec", "victim", "cat", "/tmp/log"]);
    let log = String::from_utf8_lossy(&log.stdout).into_owned();
    assert!(!log.contains("WROTE"), "{log}");
    f.ok(&["rm", "-f", "victim"]);
    assert_eq!(
        sha256(s(&copy)),
        copy_before,
        "the exec binary was modified"
    );
    assert_eq!(sha256(berth), before, "the berth binary was modified");
}

/// CVE-2024-21626: `-w /proc/self/fd/N` must never give the process a
/// working directory on the host (a leaked descriptor).
#[test]
fn workdir_on_a_leaked_descriptor_never_reaches_the_host() {
    let f = setup();
    let marker = format!("berth-escape-marker-{}", std::process::id());
    std::fs::write(f.dir.path().join(&marker), "").unwrap();
    std::fs::write(f.root().join(&marker), "").unwrap();
    // Names in the host's `/` that the container's `/` lacks.
    let inside = f.ok(&["run", "--rm", "busybox", "ls", "-a", "/"]);
    let inside: Vec<&str> = inside.lines().collect();
    let host_only: Vec<String> = std::fs::read_dir("/")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !inside.contains(&n.as_str()))
        .collect();
    let store_names = ["containers", "snapshots", "volumes"];
    let check = |what: &str, out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!text.contains(&marker), "{what}: {text}");
        for line in text.lines() {
            assert!(
                !host_only.iter().any(|h| h == line.trim()),
                "{what} listed the host's {line}: {text}"
            );
            assert!(!store_names.contains(&line.trim()), "{what}: {text}");
        }
    };
    for n in 3..64 {
        let wd = format!("/proc/self/fd/{n}");
        let out = f.berth(&[
            "run",
            "--rm",
            "-w",
            &wd,
            "busybox",
            "sh",
            "-c",
            "ls -a .. ../..",
        ]);
        check(&format!("run -w {wd}"), &out);
    }
    f.ok(&["run", "-d", "--name", "target", "busybox", "sleep", "600"]);
    for n in 3..64 {
        let wd = format!("/proc/self/fd/{n}");
        let out = f.berth(&["exec", "-w", &wd, "target", "sh", "-c", "ls -a .. ../.."]);
        check(&format!("exec -w {wd}"), &out);
    }
    // berth refuses these itself, with a clear error, before the runtime
    // (whose own check after chdir is the second line of defence).
    let out = f.berth(&["run", "--rm", "-w", "/proc/self/fd/7", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", out_text(&out));
    assert!(
        stderr(&out).contains("inside /proc/self"),
        "{}",
        stderr(&out)
    );
    let out = f.berth(&["exec", "-w", "/proc/1/cwd/../fd/3", "target", "true"]);
    assert!(stderr(&out).contains("inside /proc/1"), "{}", stderr(&out));
    // Also when a symlink in the container leads there.
    f.ok(&[
        "exec",
        "target",
        "ln",
        "-s",
        "/proc/self/fd/7",
        "/tmp/fdlink",
    ]);
    let out = f.berth(&["exec", "-w", "/tmp/fdlink", "target", "ls", "-a", ".."]);
    check("exec -w /tmp/fdlink", &out);
    assert!(
        stderr(&out).contains("inside /proc/self"),
        "{}",
        stderr(&out)
    );
    // The same through /proc/1/fd (the container's init).
    for n in 3..16 {
        let wd = format!("/proc/1/fd/{n}");
        let out = f.berth(&["exec", "-w", &wd, "target", "sh", "-c", "ls -a .. ../.."]);
        check(&format!("exec -w {wd}"), &out);
    }
}

/// CVE-2019-16884 / CVE-2019-19921 class: an image whose `/proc` or `/dev`
/// is a symlink (to `/` or `/tmp`) would carry the runtime's procfs or
/// devices mount elsewhere; it is refused with exit 125.
#[test]
fn image_with_symlinked_proc_or_dev_is_refused() {
    let f = Fixture::new();
    for (name, dir, to) in [
        ("proc-root", "proc", "/"),
        ("proc-tmp", "proc", "/tmp"),
        ("dev-root", "dev", "/"),
        ("dev-rel", "dev", "tmp"),
    ] {
        import_modified(&f, name, |tree| {
            let _ = std::fs::remove_dir_all(tree.join(dir));
            std::os::unix::fs::symlink(to, tree.join(dir)).unwrap();
        });
        let out = f.berth(&["run", "--rm", name, "true"]);
        assert_eq!(out.status.code(), Some(125), "{name}: {}", out_text(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("/{dir}")), "{name}: {err}");
        assert!(err.contains("symbolic link"), "{name}: {err}");
    }
}

/// A volume whose target goes through a symlink in the image (`/evil ->
/// /`) is mounted inside the root, never on the host's path.
#[test]
fn volume_target_through_a_symlink_stays_inside() {
    let f = Fixture::new();
    import_modified(&f, "evil", |tree| {
        std::os::unix::fs::symlink("/", tree.join("evil")).unwrap();
        std::os::unix::fs::symlink("/evil/../../..", tree.join("up")).unwrap();
    });
    let host_dir = f.dir.path().join("vol");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("inside"), "volume\n").unwrap();
    let name = format!("berth-x-{}", std::process::id());
    let out = f.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/evil/etc/{name}", s(&host_dir)),
        "-v",
        &format!("{}:/up/etc/{name}-up", s(&host_dir)),
        "evil",
        "sh",
        "-c",
        &format!("cat /etc/{name}/inside /etc/{name}-up/inside"),
    ]);
    assert_eq!(out, "volume\nvolume\n");
    assert!(!Path::new("/etc").join(&name).exists());
    assert!(!Path::new("/etc").join(format!("{name}-up")).exists());
}

/// CVE-2018-15664 class: `cp` through container symlinks, absolute and
/// climbing, stays in the container, also while the container swaps a
/// directory for a symlink to `/` as fast as it can.
#[test]
fn cp_through_container_symlinks_stays_inside() {
    let f = setup();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "ln -s / /tmp/link; ln -s ../../../../.. /tmp/up; \
         echo container-shadow > /etc/shadow; touch /tmp/ready; exec sleep 600",
    ]);
    wait_until_ready(&f, "box");
    let marker_name = format!("berth-marker-{}", std::process::id());
    let file = f.dir.path().join("marker");
    std::fs::write(&file, "from host\n").unwrap();
    for via in ["/tmp/link/etc", "/tmp/up/etc", "tmp/link/tmp/up/etc"] {
        let dest = format!("box:{via}/{marker_name}");
        f.ok(&["cp", s(&file), &dest]);
        assert!(!Path::new("/etc").join(&marker_name).exists(), "{dest}");
        let seen = f.ok(&["exec", "box", "cat", &format!("/etc/{marker_name}")]);
        assert_eq!(seen, "from host\n", "{dest}");
        f.ok(&["exec", "box", "rm", &format!("/etc/{marker_name}")]);
    }
    // Reads through the links read the container's files.
    for via in ["/tmp/link/etc/shadow", "/tmp/up/etc/shadow"] {
        let out = f.berth(&["cp", &format!("box:{via}"), "-"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut archive = tar::Archive::new(&out.stdout[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        assert_eq!(text, "container-shadow\n", "{via}");
    }
    let back = f.dir.path().join("passwd");
    f.ok(&["cp", "-L", "box:/tmp/link/etc/passwd", s(&back)]);
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        f.ok(&["exec", "box", "cat", "/etc/passwd"])
    );

    // The race: /tmp/sw flips between a directory and a symlink to `/`.
    f.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "while true; do rm -rf /tmp/sw; mkdir -p /tmp/sw/etc; echo inner > /tmp/sw/etc/passwd; \
         rm -rf /tmp/sw; ln -s / /tmp/sw; done",
    ]);
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let race_name = format!("berth-race-{}", std::process::id());
    for _ in 0..40 {
        let _ = f.berth(&["cp", s(&file), &format!("box:/tmp/sw/etc/{race_name}")]);
        assert!(!Path::new("/etc").join(&race_name).exists());
        let out = f.berth(&["cp", "box:/tmp/sw/etc/passwd", "-"]);
        if out.status.success() {
            let mut archive = tar::Archive::new(&out.stdout[..]);
            if let Some(Ok(mut entry)) = archive.entries().unwrap().next() {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut entry, &mut text);
                assert_ne!(text, host_passwd, "read the host's /etc/passwd");
            }
        }
    }
}

/// Docker's masked paths read empty and refuse writes; `/proc/sys` is
/// read-only.
#[test]
fn masked_and_read_only_paths() {
    let f = setup();
    let out = f.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); \
         echo keys=$(cat /proc/keys 2>/dev/null | wc -c); \
         echo timer=$(cat /proc/timer_list 2>/dev/null | wc -c); \
         echo firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l); \
         (echo h > /proc/sysrq-trigger) 2>/dev/null && echo SYSRQ-WRITTEN; \
         (echo berth > /proc/sys/kernel/domainname) 2>/dev/null && echo SYS-WRITTEN; \
         (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo VM-WRITTEN; \
         (echo x > /sys/kernel/uevent_helper) 2>/dev/null && echo SYSFS-WRITTEN; \
         true",
    ]);
    for line in ["kcore=0", "keys=0", "timer=0", "firmware=0"] {
        assert!(out.lines().any(|l| l == line), "{line}: {out}");
    }
    assert!(!out.contains("WRITTEN"), "{out}");
}

/// Without --privileged, a block device of a host disk can be made
/// (CAP_MKNOD is in Docker's default set) but not opened: the device
/// cgroup refuses it.
#[test]
fn host_disk_device_cannot_be_opened() {
    let f = setup();
    // The host's own disks, plus the classic sda.
    let mut devices = vec![("8".to_string(), "0".to_string())];
    if let Ok(entries) = std::fs::read_dir("/sys/block") {
        for e in entries.flatten() {
            if let Ok(dev) = std::fs::read_to_string(e.path().join("dev")) {
                if let Some((major, minor)) = dev.trim().split_once(':') {
                    devices.push((major.to_string(), minor.to_string()));
                }
            }
        }
    }
    let mut script = String::new();
    for (i, (major, minor)) in devices.iter().enumerate() {
        script.push_str(&format!(
            "if mknod /tmp/d{i} b {major} {minor} 2>/dev/null; then \
               head -c 512 /tmp/d{i} > /tmp/read{i} 2>/dev/null && [ -s /tmp/read{i} ] && echo READ-{major}:{minor}; \
               (echo x > /tmp/d{i}) 2>/dev/null && echo WROTE-{major}:{minor}; fi; "
        ));
    }
    script.push_str("true");
    let out = f.ok(&["run", "--rm", "busybox", "sh", "-c", &script]);
    assert!(!out.contains("READ-") && !out.contains("WROTE-"), "{out}");
}

/// The container sees only its own processes and nothing of berth's
/// state directory.
#[test]
fn host_processes_and_berth_state_are_invisible() {
    let f = setup();
    let me = std::process::id();
    f.ok(&["run", "-d", "--name", "other", "busybox", "sleep", "600"]);
    let out = f.ok(&[
        "run", "--rm", "busybox", "sh", "-c",
        &format!(
            "ps -o pid,comm; echo pids; ls /proc | grep -E '^[0-9]+$'; \
             [ -e /proc/{me} ] && echo HOST-PID; \
             [ -e {root} ] && echo STORE-VISIBLE; \
             find / \\( -path /proc -o -path /sys \\) -prune -o \\( -name state.json -o -name shim.lock -o -name config.json \\) -print; \
             true",
            root = s(&f.root())
        ),
    ]);
    assert!(!out.contains("HOST-PID"), "{out}");
    assert!(!out.contains("STORE-VISIBLE"), "{out}");
    assert!(
        !out.contains("sleep"),
        "another container's process is visible: {out}"
    );
    assert!(
        !out.contains("state.json") && !out.contains("shim.lock"),
        "{out}"
    );
    assert!(!out.contains("config.json"), "{out}");
    let (ps, pids) = out.split_once("pids\n").unwrap();
    // ps: its own sh, ps itself; pid 1 is the container's init.
    assert!(ps.lines().skip(1).count() <= 3, "{ps}");
    let pids: Vec<u32> = pids.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(pids.contains(&1), "{out}");
    assert!(pids.iter().all(|&p| p < 1000), "host pids: {pids:?}");
}
