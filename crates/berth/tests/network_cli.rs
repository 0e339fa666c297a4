//! `berth network create/ls/inspect/rm/prune` through the real binary on a
//! temporary store, each command in a fresh network namespace so that
//! nothing touches the host's links or nftables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

mod common;
use common::*;

fn berth(f: &Fixture, args: &[&str]) -> Output {
    Command::new("unshare")
        .args(["--net", "--"])
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(f.root())
        .args(args)
        .output()
        .unwrap()
}

fn ok(f: &Fixture, args: &[&str]) -> String {
    let out = berth(f, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(f: &Fixture, args: &[&str]) -> String {
    let out = berth(f, args);
    assert_eq!(out.status.code(), Some(1), "berth {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn create_list_inspect_remove() {
    let f = Fixture::new();
    // The predefined networks exist from the start.
    let ls = ok(&f, &["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert!(lines[0].starts_with("NETWORK ID"), "{ls}");
    assert!(lines[0].contains("NAME") && lines[0].contains("DRIVER") && lines[0].contains("SCOPE"));
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    assert!(ls.contains(" null "), "none has the null driver: {ls}");

    let id = ok(
        &f,
        &[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--label",
            "team=web",
            "app",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let auto = ok(&f, &["network", "create", "--internal", "back"]);

    let v: serde_json::Value =
        serde_json::from_str(&ok(&f, &["network", "inspect", "app"])).unwrap();
    let app = &v[0];
    assert_eq!(app["Name"], "app");
    assert_eq!(app["Id"], id);
    assert_eq!(app["Driver"], "bridge");
    assert_eq!(app["Scope"], "local");
    assert_eq!(app["EnableIPv6"], false);
    assert_eq!(app["IPAM"]["Driver"], "default");
    assert_eq!(app["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/24");
    assert_eq!(app["IPAM"]["Config"][0]["Gateway"], "10.77.0.1");
    assert_eq!(app["Internal"], false);
    assert_eq!(app["Containers"], serde_json::json!({}));
    assert_eq!(app["Labels"]["team"], "web");
    assert!(app["Created"].as_str().unwrap().ends_with('Z'));

    let back: serde_json::Value =
        serde_json::from_str(&ok(&f, &["network", "inspect", auto.trim()])).unwrap();
    assert_eq!(back[0]["Internal"], true);
    assert_eq!(back[0]["IPAM"]["Config"][0]["Subnet"], "172.30.0.0/24");
    let bridge: serde_json::Value =
        serde_json::from_str(&ok(&f, &["network", "inspect", "bridge"])).unwrap();
    assert_eq!(
        bridge[0]["Options"]["com.docker.network.bridge.name"],
        "berth0"
    );
    assert_eq!(bridge[0]["IPAM"]["Config"][0]["Subnet"], "172.29.0.0/16");
    let host: serde_json::Value =
        serde_json::from_str(&ok(&f, &["network", "inspect", "host"])).unwrap();
    assert_eq!(host[0]["IPAM"]["Config"], serde_json::json!([]));
    assert_eq!(
        ok(
            &f,
            &[
                "network",
                "inspect",
                "-f",
                "{{.Name}} {{.Driver}}",
                &id[..8]
            ]
        ),
        "app bridge\n"
    );

    // Filters, quiet and formats.
    assert_eq!(
        ok(&f, &["network", "ls", "-q", "--filter", "name=ap"]),
        format!("{}\n", &id[..12])
    );
    assert_eq!(
        ok(
            &f,
            &[
                "network",
                "ls",
                "--filter",
                "type=custom",
                "--format",
                "{{.Name}}"
            ]
        ),
        "app\nback\n"
    );
    assert_eq!(
        ok(
            &f,
            &[
                "network",
                "ls",
                "--filter",
                "label=team=web",
                "--format",
                "{{.Name}}"
            ]
        ),
        "app\n"
    );
    assert_eq!(
        ok(
            &f,
            &["network", "ls", "--no-trunc", "-q", "-f", "driver=bridge"]
        )
        .lines()
        .count(),
        3
    );

    // Errors as Docker words them.
    assert!(
        fails(&f, &["network", "create", "app"]).contains("network with name app already exists")
    );
    assert!(fails(
        &f,
        &["network", "create", "--subnet", "10.77.0.0/16", "clash"]
    )
    .contains("overlaps"));
    assert!(
        fails(&f, &["network", "create", "--driver", "overlay", "x"])
            .contains("plugin \"overlay\" not found")
    );
    assert!(fails(&f, &["network", "inspect", "nope"]).contains("network nope not found"));
    assert!(fails(&f, &["network", "rm", "bridge"])
        .contains("bridge is a pre-defined network and cannot be removed"));
    assert!(fails(&f, &["network", "rm", "nope"]).contains("Error: network nope not found"));
    ok(&f, &["network", "rm", "-f", "nope"]);

    assert_eq!(ok(&f, &["network", "rm", "app"]), "app\n");
    assert_eq!(
        ok(&f, &["network", "prune", "-f"]),
        "Deleted Networks:\nback\n"
    );
    assert_eq!(ok(&f, &["network", "ls", "-q"]).lines().count(), 3);
}
