//! `berth run` in the foreground on a real kernel: Docker's exit statuses,
//! command/env/user/workdir handling, isolation, and nothing left behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

fn setup() -> Fixture {
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

    let left: Vec<_> = std::fs::read_dir(f.root().join("containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&store), "a mount is left under the store");
    let check = f.berth(&["system", "check"]);
    assert!(check.status.success());
}
