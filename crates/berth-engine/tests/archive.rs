//! `Engine::save` / `Engine::load`: round trips, determinism, Docker's old
//! layout, and hostile archives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_engine::{Engine, ImportOptions, Loaded};
use berth_oci::{chain_ids, Digest};
use serde_json::{json, Value};

/// A small busybox-like root filesystem as an uncompressed tar.
fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |path: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_path(path).unwrap();
        h.set_cksum();
        (h, Vec::<u8>::new())
    };
    let mut entries = vec![dir("bin/"), dir("etc/")];
    let file = |path: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_path(path).unwrap();
        h.set_cksum();
        (h, data.to_vec())
    };
    let busybox: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    entries.push(file("bin/busybox", 0o755, &busybox));
    entries.push(file("etc/hostname", 0o644, b"berth\n"));
    for (h, data) in entries {
        b.append(&h, data.as_slice()).unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_path("bin/sh").unwrap();
    h.set_link_name("busybox").unwrap();
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    b.into_inner().unwrap()
}

fn engine(dir: &Path) -> Engine {
    Engine::open(dir).unwrap()
}

fn imported(root: &Path) -> (Engine, Digest) {
    let mut e = engine(root);
    let opts = ImportOptions {
        reference: Some("busybox:latest".into()),
        ..ImportOptions::default()
    };
    let id = e.import(rootfs_tar().as_slice(), &opts).unwrap();
    (e, id)
}

fn save(e: &Engine, names: &[&str]) -> Vec<u8> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    e.save(&names, &mut out).unwrap();
    out
}

/// Entries of a tar: path → (header, data).
fn entries(archive: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((path, header, data));
    }
    out
}

fn files(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
    entries(archive)
        .into_iter()
        .filter(|(_, h, _)| h.entry_type().is_file())
        .map(|(p, _, d)| (p, d))
        .collect()
}

/// The root of the snapshot of an image's top layer.
fn top_snapshot(e: &Engine, id: &Digest) -> PathBuf {
    let config = e.image_config(id).unwrap();
    let chain = chain_ids(config.diff_ids());
    let top = chain.last().unwrap();
    let snap = e
        .store()
        .snapshots()
        .get(e.store().meta(), top)
        .unwrap()
        .unwrap();
    e.store().snapshots().fs_dir(snap.id)
}

fn tmp_is_empty(e: &Engine) -> bool {
    std::fs::read_dir(e.store().layout().tmp())
        .unwrap()
        .next()
        .is_none()
}

fn assert_nothing_recorded(e: &Engine) {
    assert!(e.list_images().unwrap().is_empty());
    assert!(e.store().meta().tags().unwrap().is_empty());
    assert!(tmp_is_empty(e), "tmp dir not cleaned");
}

#[test]
fn save_then_load_into_a_fresh_store_keeps_id_tags_and_files() {
    let a = tempfile::tempdir().unwrap();
    let (mut src, id) = imported(a.path());
    src.tag("busybox:latest", "example.com/tools/bb:1.36")
        .unwrap();
    let archive = save(&src, &["busybox", "example.com/tools/bb:1.36"]);

    let b = tempfile::tempdir().unwrap();
    let mut dst = engine(b.path());
    let loaded = dst.load(archive.as_slice()).unwrap();
    assert_eq!(
        loaded,
        vec![
            Loaded::Image("busybox:latest".into()),
            Loaded::Image("example.com/tools/bb:1.36".into()),
        ]
    );
    assert_eq!(loaded[0].to_string(), "Loaded image: busybox:latest");
    let images = dst.list_images().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].id, id);
    assert_eq!(
        images[0].repo_tags,
        vec!["busybox:latest", "example.com/tools/bb:1.36"]
    );
    let (from, to) = (top_snapshot(&src, &id), top_snapshot(&dst, &id));
    for f in ["bin/busybox", "etc/hostname"] {
        assert_eq!(
            std::fs::read(from.join(f)).unwrap(),
            std::fs::read(to.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read_link(to.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    assert!(tmp_is_empty(&dst));
    // Same blobs, same manifest: saving again from the new store gives the
    // same bytes.
    assert_eq!(
        save(&dst, &["busybox", "example.com/tools/bb:1.36"]),
        archive
    );
}

#[test]
fn save_is_deterministic_and_laid_out_as_docker_25() {
    let a = tempfile::tempdir().unwrap();
    let (e, id) = imported(a.path());
    let one = save(&e, &["busybox:latest"]);
    let two = save(&e, &["busybox:latest"]);
    assert_eq!(one, two);

    let all = entries(&one);
    let paths: Vec<&str> = all.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for (path, h, _) in &all {
        assert_eq!(h.mtime().unwrap(), 0, "{path}");
        assert_eq!(h.uid().unwrap(), 0, "{path}");
        assert_eq!(h.gid().unwrap(), 0, "{path}");
    }
    let files = files(&one);
    assert_eq!(
        files["oci-layout"],
        br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec()
    );
    let record = e.store().meta().image(&id).unwrap().unwrap();
    let layer = &record.layers[0];
    let manifest_json: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(
        manifest_json,
        json!([{
            "Config": format!("blobs/sha256/{}", id.hex()),
            "RepoTags": ["busybox:latest"],
            "Layers": [format!("blobs/sha256/{}", layer.blob.hex())],
        }])
    );
    let repositories: Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(
        repositories,
        json!({"busybox": {"latest": layer.diff_id.hex()}})
    );
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let desc = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        desc["annotations"],
        json!({
            "io.containerd.image.name": "docker.io/library/busybox:latest",
            "org.opencontainers.image.ref.name": "latest",
        })
    );
    let manifest_digest: Digest = desc["digest"].as_str().unwrap().parse().unwrap();
    let manifest = &files[&format!("blobs/sha256/{}", manifest_digest.hex())];
    assert_eq!(Digest::sha256_of(manifest), manifest_digest);
    let manifest: Value = serde_json::from_slice(manifest).unwrap();
    assert_eq!(manifest["config"]["digest"], json!(id.to_string()));
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        json!("application/vnd.oci.image.layer.v1.tar+gzip")
    );
    // Every blob is named by its digest; the layer is the stored gzip.
    for (path, data) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_eq!(Digest::sha256_of(data).hex(), hex);
        }
    }
    let layer_bytes = &files[&format!("blobs/sha256/{}", layer.blob.hex())];
    assert_eq!(&layer_bytes[..2], &[0x1f, 0x8b]);
}

#[test]
fn saving_by_id_writes_no_names() {
    let a = tempfile::tempdir().unwrap();
    let (e, id) = imported(a.path());
    let archive = save(&e, &[id.short()]);
    let files = files(&archive);
    let manifest_json: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest_json[0]["RepoTags"], Value::Null);
    assert!(!files.contains_key("repositories"));
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert!(index["manifests"][0].get("annotations").is_none());

    let b = tempfile::tempdir().unwrap();
    let mut dst = engine(b.path());
    assert_eq!(
        dst.load(archive.as_slice()).unwrap(),
        vec![Loaded::ImageId(id.clone())]
    );
    assert_eq!(
        Loaded::ImageId(id.clone()).to_string(),
        format!("Loaded image ID: {id}")
    );
    assert!(dst.list_images().unwrap()[0].repo_tags.is_empty());
}

#[test]
fn an_unknown_name_fails_before_anything_is_written() {
    let a = tempfile::tempdir().unwrap();
    let (e, _) = imported(a.path());
    let mut out = Vec::new();
    let err = e
        .save(&["busybox".into(), "nosuch:1".into()], &mut out)
        .unwrap_err();
    assert!(err.to_string().contains("nosuch:1"), "{err}");
    assert!(out.is_empty());
}

#[test]
fn save_to_path_is_atomic() {
    let a = tempfile::tempdir().unwrap();
    let (e, _) = imported(a.path());
    let out = a.path().join("out.tar");
    e.save_to_path(&["busybox".into()], &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), save(&e, &["busybox"]));
    let bad = a.path().join("bad.tar");
    assert!(e.save_to_path(&["nosuch".into()], &bad).is_err());
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(a.path())
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn loads_a_gzip_compressed_archive_and_reloading_is_idempotent() {
    let a = tempfile::tempdir().unwrap();
    let (src, id) = imported(a.path());
    let archive = save(&src, &["busybox"]);
    let gz = flate2_gzip(&archive);
    let b = tempfile::tempdir().unwrap();
    let mut dst = engine(b.path());
    assert_eq!(
        dst.load(gz.as_slice()).unwrap(),
        vec![Loaded::Image("busybox:latest".into())]
    );
    assert_eq!(
        dst.load(archive.as_slice()).unwrap(),
        vec![Loaded::Image("busybox:latest".into())]
    );
    assert_eq!(dst.list_images().unwrap().len(), 1);
    assert_eq!(dst.resolve_image("busybox").unwrap(), id);
}

fn flate2_gzip(data: &[u8]) -> Vec<u8> {
    let mut w = berth_fs::gzip_writer(Vec::new(), 6);
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

#[test]
fn loading_moves_a_tag_and_says_so() {
    let a = tempfile::tempdir().unwrap();
    let (src, id) = imported(a.path());
    let archive = save(&src, &["busybox"]);
    let b = tempfile::tempdir().unwrap();
    let mut dst = engine(b.path());
    let other = dst
        .import(
            rootfs_tar().as_slice(),
            &ImportOptions {
                reference: Some("busybox".into()),
                message: Some("another".into()),
                ..ImportOptions::default()
            },
        )
        .unwrap();
    assert_ne!(other, id);
    let loaded = dst.load(archive.as_slice()).unwrap();
    assert_eq!(
        loaded,
        vec![
            Loaded::Renamed {
                name: "busybox:latest".into(),
                old: other.clone()
            },
            Loaded::Image("busybox:latest".into()),
        ]
    );
    assert_eq!(
        loaded[0].to_string(),
        format!("The image busybox:latest already exists, renaming the old one with ID {other} to empty string")
    );
}

// ------------------------------------------------------- hand-built archives

enum E<'a> {
    File(&'a str, Vec<u8>),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A header claiming `size` bytes, with no data behind it.
    Huge(&'a str, u64),
}

fn build(entries: &[E<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let data: &[u8] = match e {
            E::File(p, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                set_raw_path(&mut h, p);
                d
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                set_raw_path(&mut h, p);
                &[]
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                set_raw_path(&mut h, p);
                h.set_link_name(target).unwrap();
                &[]
            }
            E::Huge(p, size) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(*size);
                set_raw_path(&mut h, p);
                &[]
            }
        };
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.resize(out.len() + pad, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Writes a name as is (the tar crate refuses `..` in `set_path`).
fn set_raw_path(h: &mut tar::Header, path: &str) {
    let name = &mut h.as_old_mut().name;
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
}

/// A one-file layer tar.
fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
    build(&[E::File(name, content.to_vec())])
}

/// A config the way old Docker wrote it: not in berth's canonical form, so
/// keeping its bytes is what keeps its ID.
fn legacy_config(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(Digest::to_string).collect();
    format!(
        "{{\"architecture\":\"amd64\",\"config\":{{\"Hostname\":\"\",\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sh\"],\"Image\":\"\",\"Volumes\":null,\"OnBuild\":null}},\"container_config\":{{\"Cmd\":null}},\"created\":\"2023-05-19T20:19:23.123456789Z\",\"docker_version\":\"20.10.23\",\"history\":[{{\"created\":\"2023-05-19T20:19:23Z\",\"created_by\":\"ADD file:abc in / \"}},{{\"created\":\"2023-05-19T20:19:24Z\",\"created_by\":\"CMD [\\\"sh\\\"]\",\"empty_layer\":true}},{{\"created\":\"2023-05-19T20:19:25Z\",\"created_by\":\"COPY again\"}}],\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":{}}}}}",
        serde_json::to_string(&ids).unwrap()
    )
    .into_bytes()
}

/// Docker's pre-25 `docker save` layout: `<id>.json`, `<v1>/layer.tar`
/// (the second layer, identical to the first, a symlink to it, as Docker
/// writes a repeated layer), `manifest.json`, `repositories`.
fn old_docker_archive() -> (Vec<u8>, Digest, Vec<u8>) {
    let layer = layer_tar("hello.txt", b"hello from an old docker\n");
    let diff_id = Digest::sha256_of(&layer);
    let config = legacy_config(&[diff_id.clone(), diff_id.clone()]);
    let id = Digest::sha256_of(&config);
    let (v1a, v1b) = ("a".repeat(64), "b".repeat(64));
    let manifest = format!(
        "[{{\"Config\":\"{}.json\",\"RepoTags\":[\"old:1\",\"registry.example:5000/team/old:2\"],\"Layers\":[\"{v1a}/layer.tar\",\"{v1b}/layer.tar\"]}}]\n",
        id.hex()
    );
    let repositories = format!("{{\"old\":{{\"1\":\"{v1b}\"}}}}\n");
    let archive = build(&[
        E::File(&format!("{}.json", id.hex()), config.clone()),
        E::Dir(&format!("{v1a}/")),
        E::File(&format!("{v1a}/VERSION"), b"1.0".to_vec()),
        E::File(&format!("{v1a}/json"), b"{}".to_vec()),
        E::File(&format!("{v1a}/layer.tar"), layer.clone()),
        E::Dir(&format!("{v1b}/")),
        E::File(&format!("{v1b}/VERSION"), b"1.0".to_vec()),
        E::File(&format!("{v1b}/json"), b"{}".to_vec()),
        E::Symlink(&format!("{v1b}/layer.tar"), &format!("../{v1a}/layer.tar")),
        E::File("manifest.json", manifest.into_bytes()),
        E::File("repositories", repositories.into_bytes()),
    ]);
    (archive, id, config)
}

#[test]
fn loads_docker_s_old_save_layout() {
    let (archive, id, config) = old_docker_archive();
    let b = tempfile::tempdir().unwrap();
    let mut e = engine(b.path());
    let loaded = e.load(archive.as_slice()).unwrap();
    assert_eq!(
        loaded,
        vec![
            Loaded::Image("old:1".into()),
            Loaded::Image("registry.example:5000/team/old:2".into()),
        ]
    );
    assert_eq!(e.resolve_image("old:1").unwrap(), id);
    assert_eq!(
        e.resolve_image("registry.example:5000/team/old:2").unwrap(),
        id
    );
    // The config keeps its bytes (and so its ID).
    assert_eq!(e.store().content().read(&id).unwrap(), config);
    let top = top_snapshot(&e, &id);
    assert_eq!(
        std::fs::read(top.join("hello.txt")).unwrap(),
        b"hello from an old docker\n"
    );
    // Layers were stored gzip-compressed.
    let record = e.store().meta().image(&id).unwrap().unwrap();
    assert_eq!(record.layers.len(), 2);
    let blob = e.store().content().read(&record.layers[0].blob).unwrap();
    assert_eq!(&blob[..2], &[0x1f, 0x8b]);
    assert!(tmp_is_empty(&e));

    // And it saves again as a Docker 25 archive that loads elsewhere.
    let resaved = save(&e, &["old:1"]);
    let c = tempfile::tempdir().unwrap();
    let mut again = engine(c.path());
    assert_eq!(
        again.load(resaved.as_slice()).unwrap(),
        vec![Loaded::Image("old:1".into())]
    );
    assert_eq!(again.resolve_image("old:1").unwrap(), id);
}

#[test]
fn loads_a_plain_oci_archive_with_a_nested_index() {
    // Take a berth archive, drop Docker's files, and wrap the manifest in
    // an index with two platforms.
    let a = tempfile::tempdir().unwrap();
    let (src, id) = imported(a.path());
    let archive = save(&src, &["busybox"]);
    let mut files = files(&archive);
    files.remove("manifest.json");
    files.remove("repositories");
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let mut amd64 = index["manifests"][0].clone();
    amd64.as_object_mut().unwrap().remove("annotations");
    let mut arm = amd64.clone();
    arm["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    arm["digest"] = json!(format!("sha256:{}", "0".repeat(64)));
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [arm, amd64],
    }))
    .unwrap();
    let nested_digest = Digest::sha256_of(&nested);
    files.insert(
        format!("blobs/sha256/{}", nested_digest.hex()),
        nested.clone(),
    );
    let top = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": nested_digest.to_string(),
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "example.com/app:2"},
        }],
    }))
    .unwrap();
    files.insert("index.json".into(), top);
    let entries: Vec<E<'_>> = files
        .iter()
        .map(|(p, d)| E::File(p.as_str(), d.clone()))
        .collect();
    let b = tempfile::tempdir().unwrap();
    let mut e = engine(b.path());
    assert_eq!(
        e.load(build(&entries).as_slice()).unwrap(),
        vec![Loaded::Image("example.com/app:2".into())]
    );
    assert_eq!(e.resolve_image("example.com/app:2").unwrap(), id);
}

fn load_fails(archive: &[u8], expect: &str) {
    let b = tempfile::tempdir().unwrap();
    let mut e = engine(b.path());
    let err = e.load(archive).unwrap_err().to_string();
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert_nothing_recorded(&e);
}

#[test]
fn refuses_entries_leaving_the_archive() {
    let (good, _, _) = old_docker_archive();
    let mut hostile = build(&[E::File("../x", b"boom".to_vec())]);
    load_fails(&hostile, "leaves the archive");
    hostile = build(&[E::File("/etc/x", b"boom".to_vec())]);
    load_fails(&hostile, "absolute path");
    // A valid archive with a hostile entry appended still records nothing.
    let mut with_tail = good[..good.len() - 1024].to_vec();
    with_tail.extend(build(&[E::File("a/../../x", b"boom".to_vec())]));
    load_fails(&with_tail, "leaves the archive");
}

#[test]
fn refuses_symlinks_out_of_the_archive() {
    let (archive, _, _) = old_docker_archive();
    let mut tail = archive[..archive.len() - 1024].to_vec();
    tail.extend(build(&[E::Symlink("evil", "../../../etc")]));
    load_fails(&tail, "points outside the archive");
    let abs = build(&[E::Symlink("evil", "/etc/passwd")]);
    load_fails(&abs, "points outside the archive");
    // A file written "through" a link lands nowhere.
    let through = build(&[E::Symlink("d", "x"), E::File("d/f", b"x".to_vec())]);
    load_fails(&through, "under a link");
}

#[test]
fn refuses_manifest_paths_leaving_the_archive() {
    let layer = layer_tar("a", b"a");
    let config = legacy_config(&[Digest::sha256_of(&layer)]);
    for bad in ["../../etc/passwd", "/etc/passwd", "x/../../etc/passwd"] {
        let manifest = format!(
            "[{{\"Config\":\"c.json\",\"RepoTags\":[\"x:1\"],\"Layers\":[{}]}}]",
            serde_json::to_string(bad).unwrap()
        );
        let archive = build(&[
            E::File("c.json", config.clone()),
            E::File("l/layer.tar", layer.clone()),
            E::File("manifest.json", manifest.into_bytes()),
        ]);
        let b = tempfile::tempdir().unwrap();
        let mut e = engine(b.path());
        let err = e.load(archive.as_slice()).unwrap_err().to_string();
        assert!(
            err.contains("leaves the archive") || err.contains("absolute path"),
            "{bad}: {err}"
        );
        assert_nothing_recorded(&e);
    }
}

#[test]
fn refuses_digest_mismatches_and_missing_blobs() {
    // diff_id in the config does not match the layer.
    let layer = layer_tar("a", b"a");
    let config = legacy_config(&[Digest::sha256_of(b"something else")]);
    let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#;
    let archive = build(&[
        E::File("c.json", config),
        E::File("l/layer.tar", layer.clone()),
        E::File("manifest.json", manifest.to_vec()),
    ]);
    load_fails(&archive, "hashes to");

    // A config whose file name is not its digest.
    let config = legacy_config(&[Digest::sha256_of(&layer)]);
    let wrong = format!("{}.json", "1".repeat(64));
    let manifest =
        format!("[{{\"Config\":\"{wrong}\",\"RepoTags\":[\"x:1\"],\"Layers\":[\"l/layer.tar\"]}}]");
    let archive = build(&[
        E::File(&wrong, config),
        E::File("l/layer.tar", layer.clone()),
        E::File("manifest.json", manifest.into_bytes()),
    ]);
    load_fails(&archive, "digest mismatch");

    // A tampered blob in a berth archive.
    let a = tempfile::tempdir().unwrap();
    let (src, id) = imported(a.path());
    let good = save(&src, &["busybox"]);
    let record = src.store().meta().image(&id).unwrap().unwrap();
    let layer_path = format!("blobs/sha256/{}", record.layers[0].blob.hex());
    let mut files = files(&good);
    let blob = files.get_mut(&layer_path).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 0xff;
    let entries: Vec<E<'_>> = files
        .iter()
        .map(|(p, d)| E::File(p.as_str(), d.clone()))
        .collect();
    load_fails(&build(&entries), "digest mismatch");

    // The same archive without the layer blob.
    let mut files = self::files(&good);
    files.remove(&layer_path);
    let entries: Vec<E<'_>> = files
        .iter()
        .map(|(p, d)| E::File(p.as_str(), d.clone()))
        .collect();
    load_fails(&build(&entries), "missing from the archive");
}

#[test]
fn refuses_huge_entries_and_junk() {
    let huge = build(&[E::Huge("blobs/sha256/x", 1 << 40)]);
    load_fails(&huge, "too large");
    load_fails(
        &build(&[E::File("hello", b"hi".to_vec())]),
        "no manifest.json",
    );
    load_fails(
        &build(&[E::File("manifest.json", b"{not json".to_vec())]),
        "manifest.json",
    );
    let b = tempfile::tempdir().unwrap();
    let mut e = engine(b.path());
    assert!(e
        .load(&b"this is not a tar at all, not even close to one"[..])
        .is_err());
    assert_nothing_recorded(&e);
}
