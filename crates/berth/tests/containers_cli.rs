//! The container lifecycle through the CLI on a real kernel, against
//! Docker's documented behaviour: detached containers under their shim,
//! ps/inspect/logs/wait, stop (STOPSIGNAL, then SIGKILL after the
//! timeout), kill, restart policies, exec, attach with stdin, pause,
//! rename, rm and prune.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::{Duration, Instant};

fn setup() -> Fixture {
    Fixture::with_busybox()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn inspect(f: &Fixture, name: &str, template: &str) -> String {
    f.ok(&["inspect", "--format", template, name])
        .trim()
        .to_string()
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn detached_container_lifecycle() {
    let f = setup();
    let id = f.ok(&[
        "run", "-d", "--name", "ticker", "busybox", "sh", "-c",
        "echo started; echo oops >&2; trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    wait_for("output in the log", || {
        f.ok(&["logs", "ticker"]).contains("started")
    });
    // ps shows it running, under its name; -q the short ID.
    let ps = f.ok(&["ps"]);
    assert!(ps.contains("ticker") && ps.contains("Up "), "{ps}");
    assert_eq!(f.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(inspect(&f, "ticker", "{{.State.Status}}"), "running");
    assert_eq!(inspect(&f, &id[..6], "{{.Name}}"), "/ticker");
    assert_eq!(inspect(&f, "ticker", "{{.Config.Image}}"), "busybox");
    let pid: i32 = inspect(&f, "ticker", "{{.State.Pid}}").parse().unwrap();
    assert!(pid > 1 && std::path::Path::new(&format!("/proc/{pid}")).exists());

    // stdout and stderr are kept apart in the log.
    let out = f.berth(&["logs", "ticker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let ts = f.ok(&["logs", "-t", "ticker"]);
    assert!(ts.starts_with("20") && ts.contains("Z started"), "{ts}");

    // stop sends SIGTERM (the trap exits 0) well before the timeout.
    let t0 = Instant::now();
    assert_eq!(f.ok(&["stop", "-t", "30", "ticker"]).trim(), "ticker");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(inspect(&f, "ticker", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&f, "ticker", "{{.State.ExitCode}}"), "0");
    assert!(f.ok(&["logs", "ticker"]).contains("got TERM"));
    assert!(!f.ok(&["ps"]).contains("ticker"));
    assert!(f.ok(&["ps", "-a"]).contains("Exited (0)"));
    // Stopping a stopped container is fine; wait returns its code.
    f.ok(&["stop", "ticker"]);
    assert_eq!(f.ok(&["wait", "ticker"]).trim(), "0");

    // start again: same container, same log appended.
    f.ok(&["start", "ticker"]);
    assert_eq!(inspect(&f, "ticker", "{{.State.Status}}"), "running");
    wait_for("second start logged", || {
        f.ok(&["logs", "ticker"]).matches("started").count() == 2
    });
    // rm refuses a running container; rm -f kills it.
    let out = f.berth(&["rm", "ticker"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("stop the container before removing or force remove"));
    f.ok(&["rm", "-f", "ticker"]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .is_empty()
    );
    let out = f.berth(&["inspect", "ticker"]);
    assert_eq!(code(&out), 1);
    assert!(f.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(f.berth(&["system", "check"]).status.success());
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let f = setup();
    // A shell as PID 1 ignores SIGTERM (no handler): stop must SIGKILL.
    f.ok(&["run", "-d", "--name", "stubborn", "busybox", "sleep", "300"]);
    let t0 = Instant::now();
    f.ok(&["stop", "-t", "1", "stubborn"]);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(inspect(&f, "stubborn", "{{.State.ExitCode}}"), "137");
    // --stop-signal is used instead of SIGTERM.
    f.ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "SIGUSR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_for("the trap", || f.ok(&["logs", "usr1"]).contains("ready"));
    f.ok(&["stop", "-t", "20", "usr1"]);
    assert_eq!(inspect(&f, "usr1", "{{.State.ExitCode}}"), "42");
    assert_eq!(inspect(&f, "usr1", "{{.Config.StopSignal}}"), "SIGUSR1");
}

#[test]
fn kill_sends_signals() {
    let f = setup();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "kk",
        "busybox",
        "sh",
        "-c",
        "trap 'echo hup' HUP; echo ready; while true; do sleep 0.1; done",
    ]);
    // A HUP before the trap is set would end sh (the default action).
    wait_for("the trap", || f.ok(&["logs", "kk"]).contains("ready"));
    f.ok(&["kill", "-s", "HUP", "kk"]);
    wait_for("HUP handled", || f.ok(&["logs", "kk"]).contains("hup"));
    assert_eq!(inspect(&f, "kk", "{{.State.Status}}"), "running");
    f.ok(&["kill", "kk"]);
    assert_eq!(f.ok(&["wait", "kk"]).trim(), "137");
    let out = f.berth(&["kill", "kk"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

#[test]
fn foreground_run_keeps_the_container_unless_rm() {
    let f = setup();
    let out = f.berth(&[
        "run",
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&out), 3);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(inspect(&f, "once", "{{.State.ExitCode}}"), "3");
    // Logs are there after the exit.
    assert_eq!(f.ok(&["logs", "once"]), "out\n");
    // The name is taken now.
    let out = f.berth(&["run", "--name", "once", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("is already in use"),
        "{}",
        stderr(&out)
    );
    // --rm removes it after the exit.
    let out = f.berth(&["run", "--rm", "--name", "gone", "busybox", "true"]);
    assert_eq!(code(&out), 0);
    assert_eq!(code(&f.berth(&["inspect", "gone"])), 1);
    // A failed start with --rm leaves nothing either; without, a Created container with 127.
    let out = f.berth(&["run", "--name", "bad", "busybox", "no-such-cmd"]);
    assert_eq!(code(&out), 127);
    assert_eq!(inspect(&f, "bad", "{{.State.Status}}"), "created");
    assert_eq!(inspect(&f, "bad", "{{.State.ExitCode}}"), "127");
    // container prune asks first (and stdin is no terminal here), then
    // removes the stopped ones.
    let unconfirmed = f.berth(&["container", "prune"]);
    assert!(stderr(&unconfirmed).contains("WARNING! This will remove all stopped containers."));
    assert!(!f.ok(&["ps", "-aq"]).trim().is_empty());
    let pruned = f.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert!(f.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn stdin_is_attached_with_i() {
    let f = setup();
    let out = f.berth_stdin(
        &[
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ],
        Some(b"hello\nworld\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\nWORLD\ndone\n");
    // Without -i the container's stdin is empty.
    let out = f.berth_stdin(&["run", "--rm", "busybox", "wc", "-c"], Some(b"ignored"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    // create + start -a -i.
    let id = f.ok(&["create", "-i", "busybox", "cat"]);
    let out = f.berth_stdin(&["start", "-a", "-i", id.trim()], Some(b"piped\n"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");
}

#[test]
fn restart_policies() {
    let f = setup();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    wait_for("two restarts, then stopped", || {
        inspect(&f, "flaky", "{{.State.Status}}") == "exited"
            && inspect(&f, "flaky", "{{.RestartCount}}") == "2"
    });
    assert_eq!(f.ok(&["logs", "flaky"]).matches("run").count(), 3);
    assert_eq!(inspect(&f, "flaky", "{{.State.ExitCode}}"), "1");
    // on-failure does not restart a success; always does, until stopped.
    f.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    f.ok(&["wait", "fine"]);
    assert_eq!(inspect(&f, "fine", "{{.RestartCount}}"), "0");
    f.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    wait_for("restarted twice", || {
        inspect(&f, "loop", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    });
    f.ok(&["stop", "-t", "1", "loop"]);
    let count = inspect(&f, "loop", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(inspect(&f, "loop", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&f, "loop", "{{.RestartCount}}"), count);
    let out = f.berth(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn exec_runs_in_the_running_container() {
    let f = setup();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sh",
        "-c",
        "echo ready > /tmp/flag; sleep 300",
    ]);
    wait_for("the flag file", || {
        f.berth(&["exec", "box", "cat", "/tmp/flag"])
            .status
            .success()
    });
    assert_eq!(f.ok(&["exec", "box", "cat", "/tmp/flag"]), "ready\n");
    // Same namespaces: it sees the container's processes, its env, its hostname.
    let ps = f.ok(&["exec", "box", "ps"]);
    assert!(ps.contains("sleep 300"), "{ps}");
    assert_eq!(f.ok(&["exec", "box", "sh", "-c", "echo $FROM_RUN"]), "1\n");
    let host = f.ok(&["exec", "box", "hostname"]);
    assert_eq!(host.trim(), &inspect(&f, "box", "{{.Id}}")[..12]);
    // -e, -w, -u and the exit status.
    assert_eq!(
        f.ok(&["exec", "-e", "X=2", "box", "sh", "-c", "echo $X"]),
        "2\n"
    );
    assert_eq!(f.ok(&["exec", "-w", "/etc", "box", "pwd"]), "/etc\n");
    assert_eq!(f.ok(&["exec", "-u", "65534", "box", "id", "-u"]), "65534\n");
    assert_eq!(code(&f.berth(&["exec", "box", "sh", "-c", "exit 4"])), 4);
    let out = f.berth_stdin(&["exec", "-i", "box", "cat"], Some(b"through stdin\n"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    // -t: a terminal of its own, TERM set, the status still comes through.
    let out = f.berth(&["exec", "-t", "box", "sh", "-c", "tty; echo $TERM; exit 3"]);
    assert_eq!(code(&out), 3);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("/dev/pts/") && text.contains("xterm\r\n"),
        "{text:?}"
    );
    // Not running: 125-style failure.
    f.ok(&["kill", "box"]);
    f.ok(&["wait", "box"]);
    let out = f.berth(&["exec", "box", "true"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

#[test]
fn pause_rename_top_and_wait() {
    let f = setup();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "pp",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 143' TERM; while true; do echo x; sleep 0.05; done",
    ]);
    f.ok(&["pause", "pp"]);
    assert_eq!(inspect(&f, "pp", "{{.State.Status}}"), "paused");
    assert!(f.ok(&["ps"]).contains("(Paused)"));
    let before = f.ok(&["logs", "pp"]).len();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        f.ok(&["logs", "pp"]).len(),
        before,
        "a paused container wrote output"
    );
    f.ok(&["unpause", "pp"]);
    wait_for("output resumes", || f.ok(&["logs", "pp"]).len() > before);
    let top = f.ok(&["top", "pp"]);
    assert!(top.contains("PID") && top.contains("sleep"), "{top}");
    f.ok(&["rename", "pp", "qq"]);
    assert_eq!(inspect(&f, "qq", "{{.Name}}"), "/qq");
    assert_eq!(code(&f.berth(&["inspect", "pp"])), 1);
    // wait blocks until the exit and prints the code.
    let waiter = f
        .command()
        .args(["wait", "qq"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let killer = std::thread::spawn({
        let root = f.root();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
                .arg("--root")
                .arg(root)
                .args(["kill", "-s", "TERM", "qq"])
                .output()
                .unwrap();
        }
    });
    let out = waiter.wait_with_output().unwrap();
    killer.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "143");
}

#[test]
fn an_image_in_use_is_not_removed() {
    let f = setup();
    f.ok(&["create", "--name", "holder", "busybox", "true"]);
    let out = f.berth(&["rmi", "busybox"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("is using its referenced image"),
        "{}",
        stderr(&out)
    );
    // Forced: the tag goes, the image stays for the container, which still runs.
    let out = f.ok(&["rmi", "-f", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    f.ok(&["image", "prune", "-a", "-f"]);
    let out = f.berth(&["start", "-a", "holder"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    f.ok(&["rm", "holder"]);
    assert!(f.berth(&["system", "check"]).status.success());
}

/// `curl` from the fixture's network namespace (where the host side of
/// published ports is).
fn http_get(f: &Fixture, url: &str) -> Option<String> {
    let out = f
        .in_netns("curl")
        .args(["-sf", "-m", "3", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn published_ports_reach_a_server_inside() {
    let f = setup();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "18080:80",
        "-p",
        "127.0.0.1:18081:80",
        "busybox",
        "sh",
        "-c",
        "echo hello-from-web > /www; httpd -f -p 80 -h /",
    ]);
    let mut body = None;
    wait_for("the server answers", || {
        body = http_get(&f, "http://127.0.0.1:18080/www");
        body.is_some()
    });
    assert_eq!(body.unwrap(), "hello-from-web\n");
    assert_eq!(
        http_get(&f, "http://127.0.0.1:18081/www").unwrap(),
        "hello-from-web\n"
    );
    let ps = f.ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:18080->80/tcp"), "{ps}");
    assert_eq!(
        f.ok(&["port", "web", "80"]).lines().next().unwrap(),
        "0.0.0.0:18080"
    );
    let ip = inspect(&f, "web", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("172.29."), "{ip}");
    // The port is taken while it runs; it is free again after rm.
    let out = f.berth(&["run", "--rm", "-p", "18080:80", "busybox", "true"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("already allocated"),
        "{}",
        stderr(&out)
    );
    f.ok(&["rm", "-f", "web"]);
    assert!(http_get(&f, "http://127.0.0.1:18080/www").is_none());
    // -P publishes the image's EXPOSEd ports on free host ports.
    f.ok(&["run", "-d", "--name", "auto", "-P", "busybox", "true"]);
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name() {
    let f = setup();
    f.ok(&["network", "create", "appnet"]);
    f.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "busybox",
        "sh",
        "-c",
        "echo db-says-hi > /index.html; httpd -f -p 80 -h /",
    ]);
    // Names resolve through the hosts file berth keeps current (static
    // busybox cannot use NSS, so the test reads the file itself).
    let out = f.berth(&[
        "run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
        "ip=$(awk '$2 == \"db\" {print $1}' /etc/hosts); for i in 1 2 3 4 5 6 7 8 9 10; do nc $ip 80 </dev/null >/dev/null 2>&1 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc $ip 80 | tail -n 1 && exit 0; sleep 0.3; done; exit 1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "db-says-hi\n");
    // The default bridge does not resolve names (Docker's behaviour).
    let out = f.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep -w db /etc/hosts",
    ]);
    assert_eq!(code(&out), 1);
    // --add-host and --dns reach the container's files; none has only loopback.
    let hosts = f.ok(&[
        "run",
        "--rm",
        "--add-host",
        "api.local:10.1.2.3",
        "--dns",
        "9.9.9.9",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(hosts.contains("10.1.2.3\tapi.local"), "{hosts}");
    assert!(hosts.contains("nameserver 9.9.9.9"), "{hosts}");
    let links = f.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    let out = f.berth(&["network", "rm", "appnet"]);
    assert_ne!(code(&out), 0, "a network in use is not removed");
    f.ok(&["rm", "-f", "db"]);
    f.ok(&["network", "rm", "appnet"]);
}

#[test]
fn volumes_and_binds_persist_data() {
    let f = setup();
    let host_dir = f.dir.path().join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("in.txt"), "from host\n").unwrap();
    let bind = format!("{}:/host", host_dir.display());
    let out = f.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "cat /host/in.txt; echo saved > /data/x; echo out > /host/out.txt",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out.txt")).unwrap(),
        "out\n"
    );
    // The named volume outlives the container.
    assert_eq!(
        f.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/x"
        ]),
        "saved\n"
    );
    // :ro is enforced.
    let ro = format!("{}:/host:ro", host_dir.display());
    let out = f.berth(&["run", "--rm", "-v", &ro, "busybox", "touch", "/host/new"]);
    assert_ne!(code(&out), 0);
    assert!(!host_dir.join("new").exists());
    // A volume in use is not removed; after the container goes, it is.
    f.ok(&[
        "create",
        "--name",
        "user",
        "-v",
        "data:/data",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&f.berth(&["volume", "rm", "data"])), 0);
    f.ok(&["rm", "user"]);
    f.ok(&["volume", "rm", "data"]);
    // Limits reach the cgroup: an allocation past --memory is OOM-killed.
    let out = f.berth(&[
        "run",
        "--rm",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "head -c 64m /dev/zero | tail > /dev/null",
    ]);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
}

#[test]
fn t_gives_the_container_a_terminal() {
    let f = setup();
    let out = f.ok(&["run", "--rm", "-t", "busybox", "sh", "-c", "tty; echo done"]);
    // A pty, and its line discipline turns \n into \r\n.
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.ends_with("done\r\n"), "{out:?}");
    let out = f.ok(&["run", "--rm", "busybox", "sh", "-c", "tty || true"]);
    assert_eq!(out, "not a tty\n");
    // The log keeps what the terminal showed.
    f.ok(&["run", "--name", "logged", "-t", "busybox", "echo", "hi"]);
    assert_eq!(f.ok(&["logs", "logged"]), "hi\r\n");
}

#[test]
fn inspect_shows_mounts_and_port_bindings() {
    let f = setup();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "shape",
        "-p",
        "127.0.0.1:18090:80",
        "-v",
        "vol1:/data:ro",
        "busybox",
        "sleep",
        "300",
    ]);
    let json = f.ok(&["inspect", "shape"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let c = &v[0];
    assert_eq!(
        c["HostConfig"]["PortBindings"]["80/tcp"][0]["HostIp"],
        "127.0.0.1"
    );
    assert_eq!(
        c["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "18090"
    );
    assert_eq!(
        c["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        "18090"
    );
    let m = &c["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "vol1");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["RW"], false);
    assert!(c["State"]["Running"].as_bool().unwrap());
    assert!(c["Config"]["Cmd"].is_array() && c["Config"]["Env"].is_array());
    assert!(c["Id"]
        .as_str()
        .unwrap()
        .starts_with(&c["Config"]["Hostname"].as_str().unwrap()[..12]));
}

#[test]
fn invalid_names_are_named_in_the_error() {
    let f = setup();
    let out = f.berth(&["create", "--name", "x", "busybox"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("Invalid container name (x)"),
        "{}",
        stderr(&out)
    );
}
