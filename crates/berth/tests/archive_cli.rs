//! `berth save` / `berth load` as a user runs them, and interop with real
//! OCI tools: skopeo reads what berth saves (as docker-archive and as
//! oci-archive), umoci unpacks it, and berth loads what skopeo writes.
//! The tools are installed with apt-get when missing; if that fails, the
//! tests fail. (Docker's daemon is not available where these run.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use serde_json::Value;

fn berth_at(root: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let input = stdin.map(<[u8]>::to_vec);
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        if let Some(input) = input {
            let _ = pipe.write_all(&input);
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn berth(root: &Path, args: &[&str]) -> Output {
    berth_at(root, args, None, &[])
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static APT: Mutex<()> = Mutex::new(());

/// Makes sure `bin` is on PATH, installing Debian's `package` if not.
/// Fails (never skips) when that is impossible.
fn ensure_tool(bin: &str, package: &str) {
    let _guard = APT.lock().unwrap_or_else(|e| e.into_inner());
    let present = || {
        Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        assert!(
            install(),
            "{bin} is missing and `apt-get install -y {package}` failed"
        );
    }
    assert!(present(), "{bin} still missing after installing {package}");
}

/// A store with `busybox:latest` imported from a small tree; returns the
/// store root's tempdir and the image ID.
fn store_with_busybox() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("etc/hostname"), "berth\n").unwrap();
    std::fs::write(tree.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    run(
        "tar",
        &[
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
            tree.to_str().unwrap(),
            "-cf",
            rootfs.to_str().unwrap(),
            ".",
        ],
    );
    let root = dir.path().join("root");
    let id = ok(berth(
        &root,
        &["import", rootfs.to_str().unwrap(), "busybox:latest"],
    ));
    (dir, id.trim().to_string())
}

fn root_of(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("root")
}

fn tar_files(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(archive);
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if !e.header().entry_type().is_file() {
            continue;
        }
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, data);
    }
    out
}

fn inspect(root: &Path, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(berth(root, &["image", "inspect", name]))).unwrap();
    v[0].clone()
}

/// The top layer directory of an image in a store.
fn top_dir(root: &Path, name: &str) -> PathBuf {
    let lower = inspect(root, name)["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    PathBuf::from(lower.split(':').next().unwrap())
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn save_and_load_round_trip_in_every_form() {
    let (dir, id) = store_with_busybox();
    let root = root_of(&dir);
    let file = dir.path().join("busybox.tar");
    assert_eq!(
        ok(berth(
            &root,
            &["save", "-o", file.to_str().unwrap(), "busybox"]
        )),
        ""
    );
    let saved = std::fs::read(&file).unwrap();
    // To a pipe, and the `image save` form: the same bytes.
    let piped = berth(&root, &["save", "busybox:latest"]);
    assert!(piped.status.success());
    assert_eq!(piped.stdout, saved);
    let image_form = berth(&root, &["image", "save", "busybox"]);
    assert_eq!(image_form.stdout, saved);

    let other = dir.path().join("other");
    assert_eq!(
        ok(berth(&other, &["load", "-i", file.to_str().unwrap()])),
        "Loaded image: busybox:latest\n"
    );
    assert_eq!(inspect(&other, "busybox")["Id"], Value::String(id.clone()));
    assert_eq!(
        std::fs::read(top_dir(&other, "busybox").join("etc/hostname")).unwrap(),
        b"berth\n"
    );

    // From standard input, `image load`, `-q`.
    let third = dir.path().join("third");
    assert_eq!(
        ok(berth_at(
            &third,
            &["image", "load", "-q"],
            Some(&saved),
            &[]
        )),
        "Loaded image: busybox:latest\n"
    );
    assert_eq!(inspect(&third, "busybox")["Id"], Value::String(id.clone()));

    // A gzip-compressed archive on standard input.
    let gz = dir.path().join("busybox.tar.gz");
    let out = Command::new("gzip").arg("-c").arg(&file).output().unwrap();
    std::fs::write(&gz, &out.stdout).unwrap();
    let fifth = dir.path().join("fifth");
    assert_eq!(
        ok(berth_at(&fifth, &["load"], Some(&out.stdout), &[])),
        "Loaded image: busybox:latest\n"
    );

    // By ID: no name.
    let by_id = berth(&root, &["save", &id[7..19]]);
    let fourth = dir.path().join("fourth");
    assert_eq!(
        ok(berth_at(&fourth, &["load"], Some(&by_id.stdout), &[])),
        format!("Loaded image ID: {id}\n")
    );
}

#[test]
fn save_honours_source_date_epoch() {
    let (dir, _) = store_with_busybox();
    let out = berth_at(
        &root_of(&dir),
        &["save", "busybox"],
        None,
        &[("SOURCE_DATE_EPOCH", "1234567")],
    );
    assert!(out.status.success());
    let mut a = tar::Archive::new(out.stdout.as_slice());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 1_234_567);
    }
}

#[test]
fn save_and_load_errors_are_docker_s() {
    let (dir, _) = store_with_busybox();
    let root = root_of(&dir);
    let target = dir.path().join("x.tar");
    let out = berth(
        &root,
        &[
            "save",
            "-o",
            target.to_str().unwrap(),
            "busybox",
            "nosuch:1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such image: nosuch:1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!target.exists());

    let out = berth(&root, &["save", "-o", "/nonexistent-dir/x.tar", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: failed to save image: invalid output path: directory \"/nonexistent-dir\" does not exist\n"
    );

    let out = berth(&root, &["save"]);
    assert_eq!(out.status.code(), Some(125));

    // A terminal on stdout / stdin (through script(1)'s pseudo-terminal).
    let exe = env!("CARGO_BIN_EXE_berth");
    let cmd = format!("{exe} --root {} save busybox", root.display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"));
    let cmd = format!("{exe} --root {} load", root.display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("requested load from stdin, but stdin is empty"));

    // A hostile archive: an absolute entry name (GNU tar -P).
    let hostile = dir.path().join("hostile.tar");
    run("tar", &["-cPf", hostile.to_str().unwrap(), "/etc/hostname"]);
    let fresh = dir.path().join("fresh");
    let out = berth(&fresh, &["load", "-i", hostile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid image archive: absolute path"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ok(berth(&fresh, &["images", "-q"])), "");
    assert_eq!(std::fs::read_dir(fresh.join("tmp")).unwrap().count(), 0);

    let out = berth(&fresh, &["load", "-i", "/nonexistent.tar"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn skopeo_reads_the_archive_as_docker_archive_and_oci_archive() {
    ensure_tool("skopeo", "skopeo");
    let (dir, id) = store_with_busybox();
    let root = root_of(&dir);
    let file = dir.path().join("busybox.tar");
    ok(berth(
        &root,
        &["save", "-o", file.to_str().unwrap(), "busybox"],
    ));
    let files = tar_files(&std::fs::read(&file).unwrap());
    let diff_id = inspect(&root, "busybox")["RootFS"]["Layers"][0].clone();
    let manifest_json: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layer_blob = format!(
        "sha256:{}",
        manifest_json[0]["Layers"][0]
            .as_str()
            .unwrap()
            .strip_prefix("blobs/sha256/")
            .unwrap()
    );
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].clone();

    // docker-archive: skopeo reports the uncompressed layer digests.
    let docker: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", file.display())],
    ))
    .unwrap();
    assert_eq!(docker["Layers"], Value::Array(vec![diff_id]));
    assert_eq!(docker["Architecture"], "amd64");
    assert_eq!(docker["Os"], "linux");
    let config = run(
        "skopeo",
        &[
            "inspect",
            "--config",
            "--raw",
            &format!("docker-archive:{}", file.display()),
        ],
    );
    assert_eq!(format!("sha256:{}", sha256_hex(config.as_bytes())), id);

    // oci-archive: the manifest berth stored, and its gzip layer blob.
    let oci: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci-archive:{}:latest", file.display())],
    ))
    .unwrap();
    assert_eq!(oci["Digest"], manifest_digest);
    assert_eq!(oci["Layers"], Value::Array(vec![Value::String(layer_blob)]));
}

#[test]
fn umoci_unpacks_the_saved_layout() {
    ensure_tool("umoci", "umoci");
    let (dir, _) = store_with_busybox();
    let root = root_of(&dir);
    let file = dir.path().join("busybox.tar");
    ok(berth(
        &root,
        &["save", "-o", file.to_str().unwrap(), "busybox"],
    ));
    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    tar::Archive::new(std::fs::File::open(&file).unwrap())
        .unpack(&layout)
        .unwrap();
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/etc/hostname")).unwrap(),
        b"berth\n"
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/bin/hello")).unwrap(),
        b"#!/bin/sh\necho hello\n"
    );
    assert!(bundle.join("config.json").is_file());
}

#[test]
fn berth_loads_what_skopeo_writes() {
    ensure_tool("skopeo", "skopeo");
    let (dir, id) = store_with_busybox();
    let root = root_of(&dir);
    let file = dir.path().join("busybox.tar");
    ok(berth(
        &root,
        &["save", "-o", file.to_str().unwrap(), "busybox"],
    ));

    // docker-archive → oci-archive (skopeo rewrites the config when it
    // converts, so the ID is the digest of skopeo's config).
    let oci_copy = dir.path().join("copy-oci.tar");
    run(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", file.display()),
            &format!("oci-archive:{}:busybox:copied", oci_copy.display()),
        ],
    );
    let fresh = dir.path().join("fresh");
    assert_eq!(
        ok(berth(&fresh, &["load", "-i", oci_copy.to_str().unwrap()])),
        "Loaded image: busybox:copied\n"
    );
    let config = run(
        "skopeo",
        &[
            "inspect",
            "--config",
            "--raw",
            &format!("oci-archive:{}", oci_copy.display()),
        ],
    );
    assert_eq!(
        inspect(&fresh, "busybox:copied")["Id"],
        Value::String(format!("sha256:{}", sha256_hex(config.as_bytes())))
    );
    assert_eq!(
        std::fs::read(top_dir(&fresh, "busybox:copied").join("bin/hello")).unwrap(),
        b"#!/bin/sh\necho hello\n"
    );

    // oci layout dir → docker-archive (skopeo's legacy-style layout, with
    // <id>.json, <diff>.tar and a symlinked <v1>/layer.tar): same ID.
    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    tar::Archive::new(std::fs::File::open(&file).unwrap())
        .unpack(&layout)
        .unwrap();
    let docker_copy = dir.path().join("copy-docker.tar");
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", layout.display()),
            &format!("docker-archive:{}:skop/bb:2", docker_copy.display()),
        ],
    );
    let other = dir.path().join("other");
    assert_eq!(
        ok(berth(
            &other,
            &["load", "-i", docker_copy.to_str().unwrap()]
        )),
        "Loaded image: skop/bb:2\n"
    );
    assert_eq!(inspect(&other, "skop/bb:2")["Id"], Value::String(id));
    assert_eq!(
        std::fs::read(top_dir(&other, "skop/bb:2").join("etc/hostname")).unwrap(),
        b"berth\n"
    );
}
