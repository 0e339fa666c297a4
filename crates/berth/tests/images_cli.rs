//! Image verbs through the real binary on a temporary store: import, images,
//! tag, rmi, history, inspect, with Docker's output and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

mod common;
use common::*;

#[test]
fn import_list_inspect_history() {
    let f = Fixture::new();
    let tar = f.rootfs_tar();
    let id = f.ok(&[
        "import",
        tar.to_str().unwrap(),
        "app:1",
        "--change",
        "CMD [\"/bin/hello\"]",
        "--change",
        "ENV GREETING=hi",
        "-m",
        "from a test",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id[7..19];

    let images = f.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        lines[1].starts_with("app          1         ") && lines[1].contains(short),
        "{images}"
    );
    assert_eq!(f.ok(&["images", "-q"]).trim(), short);

    let inspect: serde_json::Value =
        serde_json::from_str(&f.ok(&["image", "inspect", "app:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], id);
    assert_eq!(inspect[0]["RepoTags"], serde_json::json!(["app:1"]));
    assert_eq!(
        inspect[0]["Config"]["Cmd"],
        serde_json::json!(["/bin/hello"])
    );
    assert_eq!(
        inspect[0]["Config"]["Env"],
        serde_json::json!(["GREETING=hi"])
    );
    assert_eq!(inspect[0]["Os"], "linux");
    assert_eq!(
        f.ok(&["inspect", "--format", "{{.Id}} {{json .RepoTags}}", short])
            .trim(),
        format!("{id} [\"app:1\"]")
    );

    let history = f.ok(&["history", "app:1"]);
    assert!(
        history.lines().nth(1).unwrap().starts_with(short),
        "{history}"
    );
    assert!(history.contains("from a test"));
}

#[test]
fn import_from_stdin_gzip_and_tag_rules() {
    let f = Fixture::new();
    let tar = std::fs::read(f.rootfs_tar()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let out = f.berth_stdin(&["import", "-", "base"], Some(&gz.finish().unwrap()));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();

    f.ok(&["tag", "base", "registry.local:5000/team/base:v2"]);
    f.ok(&["tag", &id, "base:extra"]);
    let names = f.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "base:extra",
            "base:latest",
            "registry.local:5000/team/base:v2"
        ]
    );
    assert_eq!(
        f.ok(&["images", "--filter", "reference=base:ex*", "-q"])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        f.ok(&["images", "--filter", "dangling=true"])
            .lines()
            .count(),
        1,
        "header only"
    );

    // Removing by one of several names only untags.
    assert_eq!(f.ok(&["rmi", "base:extra"]), "Untagged: base:extra\n");
    // By ID while several names remain: refused unless forced.
    let out = f.berth(&["rmi", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("must be forced"), "{}", stderr(&out));
    let removed = f.ok(&["rmi", "-f", &id]);
    assert_eq!(
        removed,
        format!(
            "Untagged: base:latest\nUntagged: registry.local:5000/team/base:v2\nDeleted: {id}\n"
        )
    );
    assert_eq!(f.ok(&["images", "-q"]), "");
}

#[test]
fn bad_input_is_a_clear_error_and_records_nothing() {
    let f = Fixture::new();
    let out = f.berth(&["rmi", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "Error: No such image: nope\n");

    let junk = f.dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all, just text").unwrap();
    let out = f.berth(&["import", junk.to_str().unwrap(), "junk"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("Error: "), "{}", stderr(&out));

    let out = f.berth_stdin(&["import", "-"], Some(b""));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));

    let out = f.berth(&["tag", "nope", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let out = f.berth(&["import", "/nonexistent.tar"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent.tar"));
    assert_eq!(f.ok(&["images", "-q"]), "");
}

#[test]
fn an_archive_escaping_its_root_is_refused() {
    let f = Fixture::new();
    let victim = f.dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep"), "safe").unwrap();
    // A tar whose entry climbs out of the target.
    let mut header = tar::Header::new_gnu();
    let payload = b"pwned";
    header.set_size(payload.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    {
        let name = b"../../../victim/keep";
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
    }
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &payload[..]).unwrap();
    let bytes = builder.into_inner().unwrap();
    let out = f.berth_stdin(&["import", "-", "evil"], Some(&bytes));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(victim.join("keep")).unwrap(),
        "safe"
    );
    assert_eq!(f.ok(&["images", "-q"]), "");
}
