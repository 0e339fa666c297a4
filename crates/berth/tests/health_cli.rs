//! Health checks, `stats` and `--init` through the CLI on a real kernel,
//! against Docker's documented behaviour: HEALTHCHECK probes run in the
//! container by its shim (starting → healthy → unhealthy, failing streak,
//! timeouts, start period, the last 5 results), `--no-healthcheck`, the
//! image's check merged with `--health-*` flags; `stats --no-stream`
//! columns read from the container's cgroups; `--init` as PID 1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::time::{Duration, Instant};

fn setup(changes: &[&str]) -> Fixture {
    let f = Fixture::new();
    let rootfs = busybox_rootfs(f.dir.path());
    let mut args = vec!["import", "--change", "CMD [\"sh\"]"];
    for c in changes {
        args.push("--change");
        args.push(c);
    }
    let path = rootfs.to_str().unwrap().to_string();
    args.push(&path);
    args.push("busybox");
    f.ok(&args);
    f
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn health(f: &Fixture, name: &str) -> serde_json::Value {
    let out = f.ok(&["inspect", "--format", "{{json .State.Health}}", name]);
    serde_json::from_str(out.trim()).unwrap()
}

fn code_of(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn status(h: &serde_json::Value) -> &str {
    h["Status"].as_str().unwrap_or("")
}

#[test]
fn a_health_check_goes_healthy_then_unhealthy() {
    let f = setup(&[]);
    f.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "echo probing; test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 1000",
    ]);
    // Before the first probe (one interval in): starting.
    let first = health(&f, "web");
    if status(&first) == "starting" {
        let ps = f.ok(&["ps"]);
        assert!(ps.contains("(health: starting)"), "{ps}");
    }
    wait_for("healthy", || status(&health(&f, "web")) == "healthy");
    let ps = f.ok(&["ps"]);
    assert!(ps.contains("(healthy)"), "{ps}");
    let healthy = f.ok(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]);
    assert_eq!(healthy.trim(), "web");
    assert_eq!(f.ok(&["ps", "-q", "--filter", "health=none"]), "");
    assert_eq!(code_of(&f.berth(&["ps", "--filter", "health=fine"])), 1);
    let h = health(&f, "web");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "probing\n", "{h}");
    assert!(!last["Start"].as_str().unwrap().is_empty());
    assert!(!last["End"].as_str().unwrap().is_empty());

    // The check fails from now on: after 2 failures in a row, unhealthy.
    f.ok(&["exec", "web", "rm", "/tmp/ok"]);
    wait_for("unhealthy", || status(&health(&f, "web")) == "unhealthy");
    let ps = f.ok(&["ps"]);
    assert!(ps.contains("(unhealthy)"), "{ps}");
    let h = health(&f, "web");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 1);
    // Only the last 5 results are kept.
    wait_for("a full log", || {
        health(&f, "web")["FailingStreak"].as_u64().unwrap() >= 6
    });
    assert_eq!(health(&f, "web")["Log"].as_array().unwrap().len(), 5);
    // The shim stays responsive while probing: stop is prompt.
    let started = Instant::now();
    f.ok(&["stop", "-t", "1", "web"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails() {
    let f = setup(&[]);
    f.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo begun; sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for("unhealthy", || status(&health(&f, "slow")) == "unhealthy");
    let h = health(&f, "slow");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], -1, "{h}");
    // What it wrote before the kill follows the message (Docker's format).
    assert_eq!(
        last["Output"],
        "Health check exceeded timeout (300ms): begun\n"
    );
    // The killed probe is gone from the container.
    let top = f.ok(&["exec", "slow", "ps", "-o", "comm,args"]);
    let sleeps = top.lines().filter(|l| l.contains("sleep 30")).count();
    assert!(sleeps <= 1, "{top}");
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    let f = setup(&[]);
    f.ok(&[
        "run",
        "-d",
        "--name",
        "boot",
        "--health-cmd",
        "exit 1",
        "--health-interval",
        "1h",
        "--health-start-period",
        "2h",
        "--health-start-interval",
        "100ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for("three probes", || {
        health(&f, "boot")["Log"].as_array().map_or(0, Vec::len) >= 3
    });
    let h = health(&f, "boot");
    assert_eq!(status(&h), "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(f.ok(&["ps"]).contains("(health: starting)"));
}

#[test]
fn the_image_check_is_merged_with_flags_and_none_disables_it() {
    let f = setup(&["HEALTHCHECK --interval=1h --retries=5 CMD [\"true\"]"]);
    // Flags that only change the interval keep the image's command.
    f.ok(&[
        "run",
        "-d",
        "--name",
        "merged",
        "--health-interval",
        "100ms",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for("healthy", || status(&health(&f, "merged")) == "healthy");
    let check = f.ok(&[
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        "merged",
    ]);
    let check: serde_json::Value = serde_json::from_str(check.trim()).unwrap();
    assert_eq!(check["Test"], serde_json::json!(["CMD", "true"]), "{check}");
    assert_eq!(check["Retries"], 5, "{check}");
    assert_eq!(check["Interval"], 100_000_000, "{check}");

    // --no-healthcheck: no probes, no Health in inspect, plain ps status.
    f.ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "1000",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let state = f.ok(&["inspect", "--format", "{{json .State}}", "plain"]);
    assert!(!state.contains("Health"), "{state}");
    let ps = f.ok(&["ps", "--filter", "name=plain"]);
    assert!(!ps.contains("health"), "{ps}");
    // So does HEALTHCHECK NONE in an image.
    let g = setup(&["HEALTHCHECK NONE"]);
    g.ok(&["run", "-d", "--name", "none", "busybox", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(300));
    let state = g.ok(&["inspect", "--format", "{{json .State}}", "none"]);
    assert!(!state.contains("Health"), "{state}");
}

fn stats_row(f: &Fixture, format: &str, name: &str) -> Vec<String> {
    let out = f.ok(&["stats", "--no-stream", "--format", format, name]);
    out.trim().split('|').map(str::to_string).collect()
}

#[test]
fn stats_reads_the_container_cgroups() {
    let f = setup(&[]);
    f.ok(&[
        "run", "-d", "--name", "busy", "--memory", "64m", "busybox", "sh", "-c",
        "dd if=/dev/zero of=/dev/null & head -c 5000000 /dev/zero > /tmp/fill; while true; do sleep 1; done",
    ]);
    f.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "1000"]);
    f.ok(&["create", "--name", "never", "busybox", "true"]);
    let gateway = inspect_gateway(&f, "busy");
    f.ok(&["exec", "busy", "ping", "-c", "1", "-W", "2", &gateway]);

    // The default table: Docker's columns, running containers only.
    let table = f.ok(&["stats", "--no-stream"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let columns = [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ];
    let mut at = 0;
    for c in columns {
        let pos = header[at..]
            .find(c)
            .unwrap_or_else(|| panic!("{c} in {header}"));
        at += pos + c.len();
    }
    assert!(table.contains("busy") && table.contains("idle"), "{table}");
    assert!(!table.contains("never"), "{table}");

    let row = stats_row(
        &f,
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.PIDs}}|{{.ID}}",
        "busy",
    );
    assert_eq!(row[0], "busy");
    let cpu: f64 = row[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 5.0, "a busy loop uses CPU: {row:?}");
    let (usage, limit) = row[2].split_once(" / ").unwrap();
    assert_eq!(limit, "64MiB", "{row:?}");
    assert!(usage.ends_with("MiB") || usage.ends_with("KiB"), "{row:?}");
    let mem: f64 = row[3].trim_end_matches('%').parse().unwrap();
    assert!(mem > 0.0 && mem < 100.0, "{row:?}");
    let (rx, tx) = row[4].split_once(" / ").unwrap();
    assert!(rx != "0B" && tx != "0B", "the ping went over eth0: {row:?}");
    let pids: u32 = row[5].parse().unwrap();
    assert!(pids >= 3, "sh, dd and sleep: {row:?}");
    assert_eq!(row[6].len(), 12);

    // No limit: the host's memory.
    let idle = stats_row(&f, "{{.MemUsage}}|{{.CPUPerc}}", "idle");
    assert!(idle[0].ends_with("GiB"), "{idle:?}");
    let idle_cpu: f64 = idle[1].trim_end_matches('%').parse().unwrap();
    assert!(idle_cpu < cpu, "{idle:?}");

    // -a: stopped containers with zeros; json lines.
    let all = f.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
    ]);
    assert!(all.lines().any(|l| l == "never 0B / 0B 0"), "{all}");
    let json = f.ok(&["stats", "--no-stream", "--format", "json", "idle"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Name"], "idle");
    assert_eq!(v["Container"], "idle");

    // Streaming: the table is redrawn every second until interrupted.
    let mut child = f
        .command()
        .args(["stats", "--format", "{{.Name}} {{.PIDs}}", "idle"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2800));
    child.kill().unwrap();
    let streamed = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&streamed.stdout);
    assert!(text.matches("\x1b[2J").count() >= 2, "{text:?}");
    assert!(text.contains("idle 1"), "{text:?}");

    let missing = f.berth(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("No such container"),
        "{}",
        stderr(&missing)
    );
}

fn inspect_gateway(f: &Fixture, name: &str) -> String {
    f.ok(&["inspect", "--format", "{{.NetworkSettings.Gateway}}", name])
        .trim()
        .to_string()
}

#[test]
fn init_runs_as_pid_1_reaps_and_forwards_signals() {
    let f = setup(&[]);
    let out = f.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "sleep 1 & exec ps -o pid,comm",
    ]);
    let pid1 = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no PID 1 in {out}"));
    assert!(pid1.ends_with("docker-init"), "{out}");
    assert!(out.lines().any(|l| l.trim().ends_with("ps")), "{out}");

    // Orphans are reparented to the init, which reaps them.
    f.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "reaper",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 3' TERM; sh -c 'sleep 0.2 &'; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    let ps = f.ok(&["exec", "reaper", "ps", "-o", "pid,stat,comm"]);
    assert!(
        !ps.lines().any(|l| l
            .split_whitespace()
            .nth(1)
            .is_some_and(|s| s.starts_with('Z'))),
        "a zombie is left: {ps}"
    );
    assert_eq!(
        f.ok(&["inspect", "--format", "{{.HostConfig.Init}}", "reaper"])
            .trim(),
        "true"
    );
    // SIGTERM from stop reaches the shell behind the init.
    let started = Instant::now();
    f.ok(&["stop", "reaper"]);
    let took = started.elapsed();
    eprintln!("stop took {took:?}");
    assert!(took < Duration::from_secs(8), "stop waited for SIGKILL");
    wait_for("the TERM trap's output", || {
        f.ok(&["logs", "reaper"]).contains("got TERM")
    });
    let code = f.ok(&["inspect", "--format", "{{.State.ExitCode}}", "reaper"]);
    assert_eq!(code.trim(), "3");
}

fn runc_state(f: &Fixture, id: &str) -> String {
    let root = f.root().join("containers").join(id).join("runtime");
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["state", &id[..12]])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_container_runs_under_runc() {
    let f = setup(&[]);
    // Output and exit code come through.
    let out = f.berth(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "echo hello from runc; echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from runc\n");
    assert!(stderr(&out).contains("oops"));

    let id = f.ok(&[
        "run",
        "-d",
        "--name",
        "rc",
        "--runtime",
        "runc",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert!(
        runc_state(&f, &id).contains("\"status\": \"running\""),
        "{}",
        runc_state(&f, &id)
    );
    // exec and health probes go through `runc exec`.
    assert_eq!(f.ok(&["exec", "rc", "echo", "inside"]), "inside\n");
    let failed = f.berth(&["exec", "rc", "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3));
    let out = f.berth(&["exec", "-t", "rc", "sh", "-c", "tty; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("/dev/pts/"));
    wait_for("healthy", || status(&health(&f, "rc")) == "healthy");
    // pause/unpause through the runtime.
    f.ok(&["pause", "rc"]);
    assert!(runc_state(&f, &id).contains("\"status\": \"paused\""));
    f.ok(&["unpause", "rc"]);
    assert!(runc_state(&f, &id).contains("\"status\": \"running\""));
    // stop: SIGTERM reaches the init, the runtime's state is deleted.
    let started = Instant::now();
    f.ok(&["stop", "rc"]);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(f.ok(&["logs", "rc"]).contains("got TERM"));
    assert_eq!(
        f.ok(&["inspect", "--format", "{{.State.ExitCode}}", "rc"])
            .trim(),
        "0"
    );
    assert_eq!(runc_state(&f, &id), "");
    // -t: runc hands the pty over through the console socket.
    let out = f.ok(&[
        "run",
        "--rm",
        "-t",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "tty; echo done",
    ]);
    assert!(
        out.starts_with("/dev/pts/") && out.ends_with("done\r\n"),
        "{out:?}"
    );
    // It starts again under runc.
    f.ok(&["start", "rc"]);
    assert!(runc_state(&f, &id).contains("\"status\": \"running\""));
    f.ok(&["rm", "-f", "rc"]);

    let bad = f.berth(&["create", "--name", "r", "busybox", "true"]);
    assert!(
        stderr(&bad).contains("Invalid container name (r)"),
        "{}",
        stderr(&bad)
    );

    let unknown = f.berth(&["run", "--runtime", "nosuch", "busybox", "true"]);
    assert_eq!(unknown.status.code(), Some(125));
    assert!(stderr(&unknown).contains("unknown or invalid runtime name: nosuch"));
}
