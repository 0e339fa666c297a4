//! The `berth` binary as a user runs it: output, exit codes, stdin.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn berth(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn dump_reads_stdin() {
    let out = berth(
        &["dockerfile", "dump", "-"],
        Some("FROM busybox\nCOPY --chown=1 a /b\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "(from \"busybox\")\n(copy [\"--chown=1\"] \"a\" \"/b\")\n"
    );
}

#[test]
fn dump_of_a_broken_file_names_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("berth-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("Dockerfile");
    std::fs::write(&file, "FROM a\nENV ONLYKEY\n").unwrap();
    let out = berth(&["dockerfile", "dump", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:2:1: error: ENV must have two arguments\n",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains(" 2 | ENV ONLYKEY\n"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lint_exits_1_on_errors_and_0_on_warnings() {
    let out = berth(
        &["dockerfile", "lint", "-"],
        Some("FROM a\nRUN --bogus x\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("<stdin>:2:5: error: unknown flag: --bogus"));

    let out = berth(&["dockerfile", "lint", "-"], Some("FROM a\nCMD echo hi\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("<stdin>:2:1: warning: JSONArgsRecommended"));
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = berth(&["dockerfile", "lint", "/nonexistent/Dockerfile"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("Error: /nonexistent/Dockerfile: "));
}

#[test]
fn usage_errors_exit_125_like_docker() {
    let out = berth(&["no-such-verb"], None);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("See 'berth --help'."));
    let out = berth(&["dockerfile", "dump"], None);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn version_and_help() {
    let out = berth(&["version"], None);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(&format!(
        " Version:           {}",
        env!("CARGO_PKG_VERSION")
    )));
    let out = berth(&["version", "--format", "{{.Client.Version}}"], None);
    assert_eq!(text(&out.stdout).trim(), env!("CARGO_PKG_VERSION"));
    let out = berth(&["--help"], None);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("dockerfile"));
}

#[test]
fn info_reports_the_root_from_flag_and_environment() {
    let out = berth(&["--root", "/tmp/berth-flag-root", "info"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(" Berth Root Dir: /tmp/berth-flag-root\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("info")
        .env("BERTH_ROOT", "/tmp/berth-env-root")
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains(" Berth Root Dir: /tmp/berth-env-root\n"));
    let out = berth(&["--config", "/nonexistent/berth.toml", "info"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("configuration file /nonexistent/berth.toml not found"));
}
