//! `berth build --output` (BuildKit's exporters: local, tar, docker, oci,
//! image) and `--progress tty`, end to end: what is exported is read back
//! with the real peers (GNU tar's format through the `tar` crate, `skopeo`,
//! `umoci`, `berth load`), and no image is stored unless asked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A Dockerfile whose result has a copied file, a file made by RUN, a file
/// made and then deleted by a later RUN (a whiteout in the last layer),
/// and symlinks (absolute and relative).
const DOCKERFILE: &str = "FROM busybox\n\
     COPY hello.txt /app/hello.txt\n\
     RUN echo made > /app/made.txt && echo doomed > /app/gone.txt \
     && ln -s /etc/passwd /app/abs-link && ln -s ../etc/passwd /app/rel-link\n\
     RUN rm /app/gone.txt\n";

fn context(f: &Fixture) -> PathBuf {
    let dir = f.dir.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    dir
}

fn build(f: &Fixture, ctx: &Path, args: &[&str]) -> Output {
    let mut all = vec!["build", "--progress=plain"];
    all.extend_from_slice(args);
    all.push(ctx.to_str().unwrap());
    f.berth(&all)
}

fn build_ok(f: &Fixture, ctx: &Path, args: &[&str]) -> Output {
    let out = build(f, ctx, args);
    assert!(out.status.success(), "build {args:?}: {}", stderr(&out));
    out
}

/// The IDs of the images in the store.
fn image_ids(f: &Fixture) -> Vec<String> {
    let mut ids: Vec<String> = f
        .ok(&["images", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// Path names and whether each is a symlink, from a plain tar.
fn tar_entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            (path, e.header().entry_type(), link)
        })
        .collect()
}

fn skopeo_inspect(target: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", target])
        .output()
        .expect("skopeo (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "skopeo inspect {target}: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn local_export_writes_the_merged_filesystem_and_stores_no_image() {
    let f = Fixture::with_busybox();
    let ctx = context(&f);
    let before = image_ids(&f);
    // DEST is created (with its parents), and a symlink planted in it
    // that points outside is replaced, not followed.
    let outside = f.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let dest = f.dir.path().join("out/nested");
    std::fs::create_dir_all(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("app")).unwrap();
    let spec = format!("type=local,dest={}", dest.display());
    let out = build_ok(&f, &ctx, &["-t", "ignored:1", "-o", &spec]);
    let text = stderr(&out);
    assert!(text.contains("exporting to client directory"), "{text}");
    assert!(!text.contains("naming to"), "{text}");

    let app = dest.join("app");
    assert!(std::fs::symlink_metadata(&app).unwrap().is_dir());
    assert_eq!(
        std::fs::read_to_string(app.join("hello.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("made.txt")).unwrap(),
        "made\n"
    );
    assert!(
        !app.join("gone.txt").exists(),
        "the whiteout was not applied"
    );
    assert!(dest.join("bin/busybox").is_file());
    // Symlinks stay symlinks, with their targets as in the image.
    assert_eq!(
        std::fs::read_link(app.join("abs-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::read_link(app.join("rel-link")).unwrap(),
        Path::new("../etc/passwd")
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // No image stored, no tag made.
    assert_eq!(image_ids(&f), before);
    assert!(!f.berth(&["inspect", "ignored:1"]).status.success());

    // The read-only view of the image is unmounted and gone.
    let steps: Vec<_> = std::fs::read_dir(f.root().join("steps"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(steps.is_empty(), "{steps:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&f.root().display().to_string()));
    assert!(f.berth(&["system", "check"]).status.success());

    // The shorthand: `-o DIR`.
    let short = f.dir.path().join("short");
    build_ok(&f, &ctx, &["-o", short.to_str().unwrap()]);
    assert!(short.join("app/made.txt").is_file());
    assert!(!short.join("app/gone.txt").exists());
}

#[test]
fn tar_export_to_stdout_and_to_a_file() {
    let f = Fixture::with_busybox();
    let ctx = context(&f);
    let before = image_ids(&f);
    let out = build_ok(&f, &ctx, &["-q", "-o", "-"]);
    let entries = tar_entries(&out.stdout);
    let names: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
    for want in ["app/", "app/hello.txt", "app/made.txt", "bin/busybox"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("gone.txt")));
    assert!(!names.iter().any(|n| n.contains(".wh.")));
    let link = entries
        .iter()
        .find(|(p, _, _)| p == "app/abs-link")
        .unwrap();
    assert_eq!(link.1, tar::EntryType::Symlink);
    assert_eq!(link.2.as_deref(), Some("/etc/passwd"));

    let file = f.dir.path().join("fs.tar");
    let spec = format!("type=tar,dest={}", file.display());
    build_ok(&f, &ctx, &["-o", &spec]);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(tar_entries(&bytes).len(), entries.len());
    assert_eq!(image_ids(&f), before);
}

#[test]
fn docker_archive_loads_and_skopeo_reads_it() {
    let f = Fixture::with_busybox();
    let ctx = context(&f);
    let before = image_ids(&f);
    let archive = f.dir.path().join("x.tar");
    let spec = format!("type=docker,dest={}", archive.display());
    let out = build_ok(&f, &ctx, &["-t", "app:1", "-o", &spec]);
    assert!(stderr(&out).contains("exporting to docker image format"));
    assert_eq!(image_ids(&f), before, "type=docker,dest= stores no image");

    let inspected = skopeo_inspect(&format!("docker-archive:{}", archive.display()));
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 4);
    let names: Vec<String> = tar_entries(&std::fs::read(&archive).unwrap())
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    assert!(names.contains(&"manifest.json".to_string()));
    assert!(names.contains(&"index.json".to_string()));

    let loaded = f.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: app:1"), "{loaded}");
    let out = f.berth(&["run", "--rm", "app:1", "cat", "/app/made.txt"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "made\n");
    let out = f.berth(&["run", "--rm", "app:1", "ls", "/app/gone.txt"]);
    assert!(!out.status.success());
}

#[test]
fn oci_archive_reads_with_skopeo_and_umoci() {
    let f = Fixture::with_busybox();
    let ctx = context(&f);
    let before = image_ids(&f);
    let archive = f.dir.path().join("o.tar");
    let spec = format!("type=oci,dest={},name=app:2", archive.display());
    build_ok(&f, &ctx, &["-o", &spec]);
    assert_eq!(image_ids(&f), before);

    let inspected = skopeo_inspect(&format!("oci-archive:{}:2", archive.display()));
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 4);
    let names: Vec<String> = tar_entries(&std::fs::read(&archive).unwrap())
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    assert!(names.contains(&"oci-layout".to_string()));
    assert!(!names.contains(&"manifest.json".to_string()), "{names:?}");

    let layout = f.dir.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(status.success());
    let bundle = f.dir.path().join("bundle");
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:2", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci (scripts/test.sh installs it)");
    assert!(out.status.success(), "umoci unpack: {}", stderr(&out));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/made.txt")).unwrap(),
        "made\n"
    );
    assert!(!rootfs.join("app/gone.txt").exists());
}

#[test]
fn image_outputs_store_and_tag() {
    let f = Fixture::with_busybox();
    let ctx = context(&f);
    let out = build_ok(&f, &ctx, &["-o", "type=image,name=named:1"]);
    assert!(stderr(&out).contains("naming to named:1 done"));
    let out = build_ok(&f, &ctx, &["-t", "loaded:1", "-o", "type=docker"]);
    assert!(stderr(&out).contains("naming to loaded:1 done"));
    let id = |name: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(&f.ok(&["inspect", name])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    };
    assert!(id("named:1").starts_with("sha256:"));
    assert_eq!(id("named:1"), id("loaded:1"));
}

#[test]
fn bad_outputs_are_usage_errors() {
    let f = Fixture::with_busybox();
    let ctx = context(&f);
    for (args, says) in [
        (vec!["-o", "type=nope"], "unknown type"),
        (vec!["-o", "type=local"], "dest is required"),
        (vec!["-o", "type=image,dest=x"], "not supported"),
        (vec!["-o", "type=registry"], "not supported"),
        (vec!["-o", "type=oci,compression=zstd"], "not supported"),
        (vec!["-o", "a", "-o", "b"], "multiple outputs"),
    ] {
        let out = build(&f, &ctx, &args);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(text.starts_with("Error: "), "{text}");
        assert!(text.contains(says), "{args:?}: {text}");
        assert!(!text.contains("#1 "), "{args:?} started a build: {text}");
    }
    // A destination of the wrong kind fails before the build.
    let file = f.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let spec = format!("type=local,dest={}", file.display());
    let out = build(&f, &ctx, &["-o", &spec]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is a file"), "{}", stderr(&out));
}

#[test]
fn tty_progress_leaves_a_final_frame() {
    let f = Fixture::with_busybox();
    let ctx = context(&f);
    let run = || {
        let out = f.berth(&[
            "build",
            "--progress",
            "tty",
            "-t",
            "app:1",
            ctx.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    run();
    let text = run();
    let last = &text[text.rfind("[+] Building").expect("a frame")..];
    assert!(last.contains("FINISHED"), "{last}");
    assert!(
        last.contains("=> CACHED [2/4] COPY hello.txt /app/hello.txt"),
        "{last}"
    );
    assert_eq!(last.matches("=> CACHED").count(), 3, "{last}");
    // Redrawn in place: the final frame starts by going up over the last.
    let final_frame = text.rfind("\x1b[2K[+] Building").unwrap();
    assert!(text[..final_frame].ends_with('A'), "{text:?}");
    assert!(text.contains("naming to app:1 done"));
    assert!(!text.contains("#1 "), "plain output in tty mode: {text}");
}

#[test]
fn tty_progress_keeps_stage_workers_off_the_screen() {
    let f = Fixture::with_busybox();
    let dir = f.dir.path().join("parallel");
    std::fs::create_dir_all(&dir).unwrap();
    let dockerfile = |left_run: &str| {
        format!(
            "FROM busybox AS left\nRUN {left_run}\n\
             FROM busybox AS right\nRUN echo from-right > /right\n\
             FROM busybox\nCOPY --from=left /left /left\nCOPY --from=right /right /right\n"
        )
    };
    std::fs::write(dir.join("Dockerfile"), dockerfile("echo from-left > /left")).unwrap();
    let dest = f.dir.path().join("out");
    let spec = format!("type=local,dest={}", dest.display());
    let ctx = dir.to_str().unwrap();
    let out = f.berth(&["build", "--progress", "tty", "-o", &spec, ctx]);
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    // The worker's (plain, numbered from 1001) lines are not on the screen.
    assert!(!text.contains("#1001"), "{text}");
    let last = &text[text.rfind("[+] Building").unwrap()..];
    assert!(last.contains("exporting to client directory"), "{last}");
    assert_eq!(
        std::fs::read_to_string(dest.join("left")).unwrap(),
        "from-left\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("right")).unwrap(),
        "from-right\n"
    );

    // A failing worker: its log's tail is in the error.
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile("echo boom-from-left; exit 4"),
    )
    .unwrap();
    let out = f.berth(&["build", "--progress", "tty", ctx]);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(text.contains("building stage left failed"), "{text}");
    assert!(text.contains("boom-from-left"), "{text}");
}
