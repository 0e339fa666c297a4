#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Real-kernel tests of berth-launch: root, busybox-static, cgroups.
//!
//! `harness = false`: every case runs on the main thread of a
//! single-threaded process, as in `berth shim`; the last case checks that
//! nothing (neither we nor libcontainer) left a thread behind.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_launch::{launch, ExitStatus, Running, Stdio};
use serde_json::{json, Value};

/// cgroupsPath parent of every test container (relative to each v1
/// hierarchy's mount point, or to /sys/fs/cgroup on v2).
const CGROUP_PARENT: &str = "berth-launch-test";

const APPLETS: &[&str] = &[
    "sh", "echo", "true", "sleep", "dd", "tail", "mkdir", "cat", "ls",
];

fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "busybox-static"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("run apt-get");
    assert!(status.success(), "apt-get install busybox-static failed");
    PathBuf::from("/bin/busybox")
}

/// A bundle directory: rootfs with a static busybox, config.json from `spec`.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new(spec: &Value) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        let bin = rootfs.join("bin");
        fs::create_dir_all(&bin).unwrap();
        for d in ["proc", "dev", "tmp"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy(busybox(), bin.join("busybox")).unwrap();
        for applet in APPLETS {
            symlink("busybox", bin.join(applet)).unwrap();
        }
        fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(spec).unwrap(),
        )
        .unwrap();
        Bundle { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A minimal, complete OCI runtime spec running `args`.
fn spec(id: &str, args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "HOME=/"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "cgroupsPath": format!("/{CGROUP_PARENT}/{id}"),
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ],
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": ["/proc/kcore", "/proc/keys"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

fn dev_null() -> std::os::fd::OwnedFd {
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap()
        .into()
}

struct Captured {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a container to completion: stdout through a pipe, stderr to a file.
fn run(spec_value: &Value, id: &str, state_root: &Path) -> Captured {
    let bundle = Bundle::new(spec_value);
    let (mut out_r, out_w) = std::io::pipe().unwrap();
    let err_file = tempfile::tempfile().unwrap();
    let stdio = Stdio {
        stdin: None,
        stdout: Some(out_w.into()),
        stderr: Some(err_file.try_clone().unwrap().into()),
        console_socket: None,
    };
    let mut running = launch(bundle.path(), id, state_root, stdio).unwrap();
    assert!(running.pid() > 0);
    let status = running.wait().unwrap();
    let mut stdout = String::new();
    out_r.read_to_string(&mut stdout).unwrap();
    running.delete().unwrap();
    let stderr = fs::read_to_string(format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        err_file.as_raw_fd()
    }))
    .unwrap();
    Captured {
        status,
        stdout,
        stderr,
    }
}

fn memory_cgroup(id: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.exists() {
        v1.join(CGROUP_PARENT).join(id)
    } else {
        Path::new("/sys/fs/cgroup").join(CGROUP_PARENT).join(id)
    }
}

/// Removes the (empty) test parent cgroup from every hierarchy.
fn remove_cgroup_parent() {
    let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(CGROUP_PARENT));
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let _ = fs::remove_dir(e.path().join(CGROUP_PARENT));
        }
    }
}

fn state_root() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------- cases

fn stdout_stderr_exit_code() {
    let root = state_root();
    let got = run(
        &spec(
            "t-exit",
            &["/bin/sh", "-c", "echo hi; echo err >&2; exit 3"],
        ),
        "t-exit",
        root.path(),
    );
    assert_eq!(got.stdout, "hi\n");
    assert_eq!(got.stderr, "err\n");
    assert_eq!(got.status, ExitStatus::Exited(3));
    assert_eq!(got.status.code(), 3);
    assert!(!root.path().join("t-exit").exists());
}

fn memory_limit_kills() {
    let root = state_root();
    let id = "t-mem";
    let mut s = spec(
        id,
        &[
            "/bin/sh",
            "-c",
            "dd if=/dev/zero bs=1M count=64 2>/dev/null | tail",
        ],
    );
    let limit: i64 = 32 << 20;
    let mut memory = json!({"limit": limit});
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        memory["swap"] = json!(limit);
    }
    s["linux"]["resources"]["memory"] = memory;
    let bundle = Bundle::new(&s);
    let stdio = Stdio {
        stdin: None,
        stdout: Some(dev_null()),
        stderr: Some(dev_null()),
        console_socket: None,
    };
    let mut running = launch(bundle.path(), id, root.path(), stdio).unwrap();
    let status = running.wait().unwrap();
    // The cgroup lives until delete(): its limit is still readable.
    let cg = memory_cgroup(id);
    let limit_file = if cg.join("memory.limit_in_bytes").exists() {
        cg.join("memory.limit_in_bytes")
    } else {
        cg.join("memory.max")
    };
    // v1: `oom_kill N` in memory.oom_control; v2: `oom_kill N` in memory.events.
    for events in ["memory.oom_control", "memory.events"] {
        if let Ok(text) = fs::read_to_string(cg.join(events)) {
            let kills: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .map_or(0, |n| n.trim().parse().unwrap());
            assert!(kills >= 1, "no OOM kill recorded in {events}: {text}");
        }
    }
    let shown = fs::read_to_string(&limit_file).unwrap();
    assert_eq!(shown.trim(), limit.to_string(), "{}", limit_file.display());
    running.delete().unwrap();
    assert!(!cg.exists(), "cgroup {} left behind", cg.display());
    // tail was OOM-killed; sh reports 128 + SIGKILL.
    assert_eq!(status.code(), 137, "{status:?}");
}

fn deny_mkdir(s: &mut Value) {
    s["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{
            "names": ["mkdir", "mkdirat"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1
        }]
    });
}

fn seccomp_denies_mkdir() {
    let root = state_root();
    let args = ["/bin/sh", "-c", "mkdir /x"];
    // Control: without the filter mkdir works.
    let got = run(&spec("t-noseccomp", &args), "t-noseccomp", root.path());
    assert_eq!(got.status, ExitStatus::Exited(0), "{}", got.stderr);

    // Without noNewPrivileges (loaded before capabilities are dropped) and
    // with noNewPrivileges: true (loaded last, right before exec).
    for nnp in [None, Some(true)] {
        let mut s = spec("t-seccomp", &args);
        deny_mkdir(&mut s);
        if let Some(nnp) = nnp {
            s["process"]["noNewPrivileges"] = json!(nnp);
        }
        let got = run(&s, "t-seccomp", root.path());
        assert_eq!(got.status, ExitStatus::Exited(1), "nnp {nnp:?}");
        assert!(
            got.stderr.contains("Operation not permitted"),
            "nnp {nnp:?}: stderr: {:?}",
            got.stderr
        );
    }
}

/// libcontainer 0.7 tests whether `noNewPrivileges` is *present*, not its
/// value: with an explicit `false` it loads the filter after dropping
/// CAP_SYS_ADMIN and without no_new_privs, which the kernel refuses. Spec
/// writers must omit the field when false (moby does, `omitempty`). This
/// case fails once libcontainer fixes it: then drop the rule.
fn quirk_nnp_false_breaks_seccomp() {
    let root = state_root();
    let bundle = {
        let mut s = spec("t-nnp-false", &["/bin/true"]);
        deny_mkdir(&mut s);
        s["process"]["noNewPrivileges"] = json!(false);
        Bundle::new(&s)
    };
    let err = launch(bundle.path(), "t-nnp-false", root.path(), Stdio::default()).unwrap_err();
    assert!(format!("{err:?}").contains("seccomp"), "{err:?}");
    assert!(!root.path().join("t-nnp-false").exists());
    assert!(!memory_cgroup("t-nnp-false").exists());
}

fn kill_and_delete_running() {
    let root = state_root();
    let bundle = Bundle::new(&spec("t-kill", &["/bin/sleep", "100"]));
    let stdio = Stdio {
        stdin: None,
        stdout: Some(dev_null()),
        stderr: Some(dev_null()),
        console_socket: None,
    };
    let mut running = launch(bundle.path(), "t-kill", root.path(), stdio).unwrap();
    running.kill(9).unwrap();
    assert_eq!(running.wait().unwrap(), ExitStatus::Signaled(9));
    running.kill(9).unwrap(); // no-op once reaped
    running.delete().unwrap();

    // delete() of a container still running kills, reaps and cleans up.
    let bundle = Bundle::new(&spec("t-del", &["/bin/sleep", "100"]));
    let running = launch(bundle.path(), "t-del", root.path(), Stdio::default()).unwrap();
    let pid = running.pid();
    running.delete().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} not reaped"
    );
    assert!(!root.path().join("t-del").exists());
    assert!(!memory_cgroup("t-del").exists());
}

fn two_in_sequence() {
    let root = state_root();
    for (id, word) in [("t-seq-a", "a"), ("t-seq-b", "b")] {
        let bundle = Bundle::new(&spec(id, &["/bin/echo", word]));
        let (mut r, w) = std::io::pipe().unwrap();
        let stdio = Stdio {
            stdin: None,
            stdout: Some(w.into()),
            stderr: Some(dev_null()),
            console_socket: None,
        };
        let mut running: Running = launch(bundle.path(), id, root.path(), stdio).unwrap();
        assert!(root.path().join(id).join("state.json").exists());
        assert!(memory_cgroup(id).exists());
        assert_eq!(running.wait().unwrap(), ExitStatus::Exited(0));
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, format!("{word}\n"));
        running.delete().unwrap();
        assert!(!root.path().join(id).exists(), "state dir of {id} left");
        assert!(!memory_cgroup(id).exists(), "cgroup of {id} left");
    }
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    // The same id can be used again after delete.
    let got = run(&spec("t-seq-a", &["/bin/true"]), "t-seq-a", root.path());
    assert_eq!(got.status, ExitStatus::Exited(0));
}

fn duplicate_id_is_refused() {
    let root = state_root();
    let bundle = Bundle::new(&spec("t-dup", &["/bin/sleep", "100"]));
    let running = launch(bundle.path(), "t-dup", root.path(), Stdio::default()).unwrap();
    let err = launch(bundle.path(), "t-dup", root.path(), Stdio::default()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    running.delete().unwrap();
    let err = launch(bundle.path(), "bad/id", root.path(), Stdio::default()).unwrap_err();
    assert!(err.to_string().contains("invalid id"), "{err}");
}

fn timing_true() {
    let root = state_root();
    let bundle = Bundle::new(&spec("t-time", &["/bin/true"]));
    let mut to_exit = Vec::new();
    let mut deletes = Vec::new();
    for _ in 0..20 {
        let stdio = Stdio {
            stdin: None,
            stdout: Some(dev_null()),
            stderr: Some(dev_null()),
            console_socket: None,
        };
        let t0 = Instant::now();
        let mut running = launch(bundle.path(), "t-time", root.path(), stdio).unwrap();
        assert_eq!(running.wait().unwrap(), ExitStatus::Exited(0));
        let t1 = Instant::now();
        running.delete().unwrap();
        to_exit.push(t1 - t0);
        deletes.push(t1.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "    launch→exit of `true`, 20 runs: median {:.1} ms (min {:.1}, max {:.1}); delete median {:.1} ms",
        median(&mut to_exit).as_secs_f64() * 1e3,
        to_exit[0].as_secs_f64() * 1e3,
        to_exit[to_exit.len() - 1].as_secs_f64() * 1e3,
        median(&mut deletes).as_secs_f64() * 1e3,
    );
}

fn still_single_threaded() {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(threads, "1");
    // Every container init and intermediate process was reaped.
    let me = std::process::id();
    let children = fs::read_to_string(format!("/proc/self/task/{me}/children")).unwrap();
    assert_eq!(children.trim(), "", "unreaped children");
}

// ---------------------------------------------------------------- harness

fn main() {
    let cases: &[(&str, fn())] = &[
        ("stdout_stderr_exit_code", stdout_stderr_exit_code),
        ("memory_limit_kills", memory_limit_kills),
        ("seccomp_denies_mkdir", seccomp_denies_mkdir),
        (
            "quirk_nnp_false_breaks_seccomp",
            quirk_nnp_false_breaks_seccomp,
        ),
        ("kill_and_delete_running", kill_and_delete_running),
        ("two_in_sequence", two_in_sequence),
        ("duplicate_id_is_refused", duplicate_id_is_refused),
        ("timing_true", timing_true),
        ("still_single_threaded", still_single_threaded),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<_> = cases
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    assert!(
        rustix::process::geteuid().is_root(),
        "berth-launch tests need root (namespaces, cgroups)"
    );
    let start = Instant::now();
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, case) in &selected {
        println!("test {name} ...");
        match std::panic::catch_unwind(case) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    remove_cgroup_parent();
    if !failed.is_empty() {
        println!("\nfailures:\n    {}", failed.join("\n    "));
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        cases.len() - selected.len(),
        start.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
