//! `berth run` in the foreground on a real kernel: Docker's exit statuses,
//! command/env/user/workdir handling, isolation, and nothing left behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

fn setup() -> Fixture {
    Fixture::with_busybox()
}

/// No container directory, no mount under the store, a clean store.
fn assert_nothing_left(f: &Fixture) {
    let left: Vec<_> = std::fs::read_dir(f.root().join("containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let store = f.root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&store), "a mount is left under the store");
    let check = f.berth(&["system", "check"]);
    assert!(check.status.success());
}

fn run(f: &Fixture, args: &[&str]) -> (String, String, Option<i32>) {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    let out = f.berth(&all);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
        out.status.code(),
    )
}

#[test]
fn runs_commands_with_docker_semantics() {
    let f = setup();
    assert_eq!(run(&f, &["busybox", "echo", "hello", "-n"]).0, "hello -n\n");
    assert_eq!(run(&f, &["busybox", "sh", "-c", "exit 7"]).2, Some(7));
    let (_, err, code) = run(&f, &["busybox", "no-such-command"]);
    assert_eq!(code, Some(127), "{err}");
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    let (_, _, code) = run(&f, &["busybox", "/etc/passwd"]);
    assert_eq!(code, Some(126));
    let (_, err, code) = run(&f, &["no-such-image"]);
    assert_eq!(code, Some(125), "{err}");

    // The image's CMD, env, workdir (created), user, hostname.
    let (out, err, code) = run(
        &f,
        &[
            "-e",
            "GREETING=hi",
            "-w",
            "/srv/app",
            "-u",
            "nobody",
            "-h",
            "box",
            "busybox",
            "sh",
            "-c",
            "echo $GREETING; pwd; id -u; hostname; echo $HOME",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "hi\n/srv/app\n65534\nbox\n/nonexistent\n");
    let (_, err, code) = run(&f, &["-u", "ghost", "busybox", "true"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("unable to find user ghost"), "{err}");
}

#[test]
fn containers_are_isolated_and_leave_nothing_behind() {
    let f = setup();
    // Own PID namespace: the command is PID 1 and sees no host process.
    let (out, _, _) = run(
        &f,
        &[
            "busybox",
            "sh",
            "-c",
            "echo $$; ls /proc | grep -c '^[0-9]'",
        ],
    );
    assert_eq!(out.lines().next(), Some("1"));
    assert!(
        out.lines().nth(1).unwrap().parse::<u32>().unwrap() <= 3,
        "{out}"
    );
    // The store is not visible; masked paths read empty; no network but lo.
    let store = f.root().display().to_string();
    let (out, _, _) = run(
        &f,
        &[
            "busybox",
            "sh",
            "-c",
            &format!("ls {store} 2>&1; wc -c < /proc/interrupts; ls /sys/class/net"),
        ],
    );
    assert!(out.contains("No such file"), "{out}");
    assert!(out.contains("\n0\n"), "{out}");
    assert!(out.trim_end().ends_with("lo"), "{out}");
    // Writes go to the container's layer, not the image.
    run(&f, &["busybox", "sh", "-c", "echo x > /bin/busybox"]);
    assert_eq!(run(&f, &["busybox", "echo", "intact"]).0, "intact\n");
    // --read-only.
    let (out, _, code) = run(
        &f,
        &[
            "--read-only",
            "busybox",
            "sh",
            "-c",
            "touch /x || echo refused",
        ],
    );
    assert_eq!((out.as_str(), code), ("refused\n", Some(0)));

    assert_nothing_left(&f);
}

/// Processes on the host whose command line is exactly `words`.
fn processes_running(words: &[&str]) -> usize {
    let want: Vec<u8> = words.iter().flat_map(|w| w.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
        .count()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn status_of(f: &Fixture, name: &str) -> String {
    f.ok(&["inspect", "--format", "{{.State.Status}}", name])
        .trim()
        .to_string()
}

#[test]
fn a_killed_cli_leaves_the_container_running_and_rm_f_cleans_it() {
    let f = setup();
    let mut child = f
        .command()
        .args(["run", "--name", "fg", "busybox", "sleep", "3599"])
        .spawn()
        .unwrap();
    wait_for("the container starts", || {
        processes_running(&["sleep", "3599"]) == 1 && status_of(&f, "fg") == "running"
    });
    child.kill().unwrap(); // SIGKILL: the CLI does no cleanup
    child.wait().unwrap();
    // As with Docker, the container belongs to its shim, not to the CLI.
    f.ok(&["images", "-q"]);
    assert_eq!(processes_running(&["sleep", "3599"]), 1);
    assert_eq!(status_of(&f, "fg"), "running");
    f.ok(&["rm", "-f", "fg"]);
    assert_eq!(processes_running(&["sleep", "3599"]), 0);
    assert_nothing_left(&f);
}

#[test]
fn a_killed_shim_reads_dead_and_rm_f_cleans_it() {
    let f = setup();
    let id = f.ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "3598"]);
    let id = id.trim();
    wait_for("the container starts", || {
        processes_running(&["sleep", "3598"]) == 1
    });
    let shim_pid: i32 = {
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(f.root().join("containers").join(id).join("state.json")).unwrap(),
        )
        .unwrap();
        state["shim_pid"].as_i64().unwrap() as i32
    };
    assert!(shim_pid > 0);
    std::process::Command::new("kill")
        .args(["-9", &shim_pid.to_string()])
        .status()
        .unwrap();
    wait_for("the shim dies", || {
        !std::path::Path::new(&format!("/proc/{shim_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{shim_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    // The truth: no shim manages it any more.
    assert_eq!(status_of(&f, "orphan"), "dead");
    let ps = f.ok(&["ps", "-a"]);
    assert!(ps.contains("Dead"), "{ps}");
    // A plain rm refuses nothing here (it is not running), and cleans up.
    f.ok(&["rm", "-f", "orphan"]);
    wait_for("the container's process is stopped", || {
        processes_running(&["sleep", "3598"]) == 0
    });
    assert_nothing_left(&f);
}

#[test]
fn signals_to_berth_reach_the_container() {
    let f = setup();
    let mut child = f
        .command()
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got TERM\n");
    // The exit status is the container's.
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

#[test]
fn containers_start_with_default_signal_dispositions() {
    // berth's own process ignores SIGPIPE (Rust's runtime does); its
    // containers must not inherit that, or `yes | head` never ends.
    let f = setup();
    let (out, err, code) = run(
        &f,
        &[
            "busybox",
            "sh",
            "-c",
            "grep SigIgn /proc/self/status; yes | head -c 3",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (mask, rest) = out.split_once('\n').unwrap();
    let mask = u64::from_str_radix(mask.trim_start_matches("SigIgn:").trim(), 16).unwrap();
    // SIGINT, SIGQUIT, SIGPIPE, SIGTERM (libcontainer leaves glibc's
    // reserved real-time signals 32 and 33 ignored; nothing uses them).
    let wanted_default = (1 << (2 - 1)) | (1 << (3 - 1)) | (1 << (13 - 1)) | (1 << (15 - 1));
    assert_eq!(mask & wanted_default, 0, "SigIgn {mask:x}");
    assert_eq!(rest, "y\ny");
}
