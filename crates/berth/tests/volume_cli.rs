//! `berth volume` against a temporary store: Docker's output and errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{stderr, Fixture};

#[test]
fn create_ls_inspect_rm() {
    let f = Fixture::new();
    assert_eq!(f.ok(&["volume", "create", "data"]), "data\n");
    assert_eq!(f.ok(&["volume", "create", "--name", "data"]), "data\n");
    assert_eq!(
        f.ok(&["volume", "create", "--label", "team=db", "-d", "local", "db-1"]),
        "db-1\n"
    );
    let random = f.ok(&["volume", "create"]);
    let random = random.trim();
    assert_eq!(random.len(), 64);

    let ls = f.ok(&["volume", "ls"]);
    let mut expected = vec!["DRIVER    VOLUME NAME".to_string()];
    let mut names = ["data", "db-1", random];
    names.sort();
    expected.extend(names.iter().map(|n| format!("local     {n}")));
    assert_eq!(ls, format!("{}\n", expected.join("\n")));
    assert_eq!(
        f.ok(&["volume", "ls", "-q", "--filter", "label=team"]),
        "db-1\n"
    );
    assert_eq!(
        f.ok(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}}",
            "-f",
            "name=db-"
        ]),
        "db-1 local team=db\n"
    );

    let out = f.ok(&["volume", "inspect", "db-1"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let v = &json[0];
    assert_eq!(v["Name"], "db-1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "db");
    let mountpoint = f.root().join("volumes/db-1/_data");
    assert_eq!(v["Mountpoint"], mountpoint.to_str().unwrap());
    assert!(
        out.starts_with("[\n    {\n        \"CreatedAt\": "),
        "{out}"
    );
    assert_eq!(
        f.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "db-1"]),
        format!("{}\n", mountpoint.display())
    );

    let missing = f.berth(&["volume", "inspect", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing), "Error: get nope: no such volume\n");

    assert_eq!(f.ok(&["volume", "rm", "data", "db-1"]), "data\ndb-1\n");
    assert!(!mountpoint.exists());
    let again = f.berth(&["volume", "rm", "data"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(stderr(&again), "Error: get data: no such volume\n");
    assert_eq!(f.ok(&["volume", "rm", "-f", "data"]), "data\n");
    assert_eq!(f.ok(&["volume", "ls", "-q"]), format!("{random}\n"));
    assert!(f.ok(&["system", "check"]).starts_with("store is clean"));
}

#[test]
fn docker_errors() {
    let f = Fixture::new();
    let out = f.berth(&["volume", "create", "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: create a: volume name is too short, names should be at least two alphanumeric characters\n"
    );
    let out = f.berth(&["volume", "create", "bad/name"]);
    assert!(stderr(&out).contains("includes invalid characters for a local volume name"));
    let out = f.berth(&["volume", "create", "-d", "nfs", "x1"]);
    assert_eq!(
        stderr(&out),
        "Error: error looking up volume plugin nfs: plugin \"nfs\" not found\n"
    );
    let out = f.berth(&["volume", "create", "--name", "x1", "x2"]);
    assert_eq!(
        stderr(&out),
        "Error: conflicting options: either specify --name or provide positional arg, not both\n"
    );
    let out = f.berth(&["volume", "ls", "--filter", "bogus=1"]);
    assert_eq!(stderr(&out), "Error: invalid filter 'bogus'\n");
    let out = f.berth(&["volume", "rm"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(f.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn prune_keeps_named_volumes_unless_all() {
    let f = Fixture::new();
    f.ok(&["volume", "create", "named"]);
    // An anonymous volume as `run` makes them (Docker's label).
    f.ok(&[
        "volume",
        "create",
        "--label",
        "com.docker.volume.anonymous=",
        "anon1",
    ]);
    std::fs::write(f.root().join("volumes/anon1/_data/f"), vec![1u8; 2000]).unwrap();
    let unconfirmed = f.berth(&["volume", "prune"]);
    assert!(unconfirmed.status.success());
    assert!(stderr(&unconfirmed).contains("WARNING! This will remove anonymous local volumes"));
    assert_eq!(f.ok(&["volume", "ls", "-q"]), "anon1\nnamed\n");
    assert_eq!(
        f.ok(&["volume", "prune", "-f"]),
        "Deleted Volumes:\nanon1\n\nTotal reclaimed space: 2kB\n"
    );
    assert_eq!(f.ok(&["volume", "ls", "-q"]), "named\n");
    assert_eq!(
        f.ok(&["volume", "prune", "--force", "--all"]),
        "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(
        f.ok(&["volume", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}
