//! Volumes through the engine: Docker's names and errors, idempotent
//! create, inspect JSON, in-use refusal, prune of anonymous volumes, and
//! copy-up from the image (owners, modes, symlinks kept, nothing followed
//! out of the rootfs), and the mounts a container gets from its requests
//! and its image's VOLUMEs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_engine::volumes::{seed_volume, ANONYMOUS_LABEL};
use berth_engine::{Engine, VolumeFilter};
use berth_oci::{ContainerConfig, ErrorKind, ImageConfig};
use berth_runtime::mounts::{parse_mount_flag, parse_volume_flag, MountKind};
use berth_runtime::TmpfsMount;

fn unused(_: &str) -> Vec<String> {
    Vec::new()
}

fn engine(dir: &Path) -> Engine {
    Engine::open(&dir.join("store")).unwrap()
}

#[test]
fn create_inspect_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let labels = BTreeMap::from([("team".to_string(), "db".to_string())]);
    let v = engine
        .create_volume(Some("data"), None, labels.clone(), BTreeMap::new())
        .unwrap();
    assert!(v.mountpoint.is_dir());
    assert!(v.mountpoint.ends_with("volumes/data/_data"));
    // Creating it again returns the same volume.
    let again = engine
        .create_volume(
            Some("data"),
            Some("local"),
            BTreeMap::new(),
            BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(again, v);

    let json = engine.inspect_volume("data").unwrap().to_json();
    assert_eq!(json["Name"], "data");
    assert_eq!(json["Driver"], "local");
    assert_eq!(json["Scope"], "local");
    assert_eq!(json["Labels"]["team"], "db");
    assert_eq!(json["Options"], serde_json::json!({}));
    assert_eq!(json["Mountpoint"], v.mountpoint.to_str().unwrap());
    assert!(json["CreatedAt"].as_str().unwrap().ends_with('Z'));

    let unnamed = engine
        .create_volume(None, None, BTreeMap::new(), BTreeMap::new())
        .unwrap();
    assert_eq!(unnamed.name().len(), 64);
    assert!(unnamed.name().bytes().all(|b| b.is_ascii_hexdigit()));

    let names = |list: Vec<berth_engine::VolumeInfo>| {
        list.into_iter()
            .map(|v| v.name().to_string())
            .collect::<Vec<_>>()
    };
    let all = engine
        .list_volumes(&VolumeFilter::default(), unused)
        .unwrap();
    assert_eq!(all.len(), 2);
    let filter = VolumeFilter::parse(&["label=team=db".into()]).unwrap();
    assert_eq!(
        names(engine.list_volumes(&filter, unused).unwrap()),
        ["data"]
    );
    let filter = VolumeFilter::parse(&["name=at".into()]).unwrap();
    assert_eq!(
        names(engine.list_volumes(&filter, unused).unwrap()),
        ["data"]
    );
    let in_use = |n: &str| {
        if n == "data" {
            vec!["c0ffee".to_string()]
        } else {
            Vec::new()
        }
    };
    let filter = VolumeFilter::parse(&["dangling=true".into()]).unwrap();
    assert_eq!(
        names(engine.list_volumes(&filter, in_use).unwrap()),
        [unnamed.name()]
    );
    assert!(VolumeFilter::parse(&["bogus=1".into()]).is_err());

    let e = engine.remove_volume("data", false, in_use).unwrap_err();
    assert_eq!(e.to_string(), "remove data: volume is in use - [c0ffee]");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let e = engine.remove_volume("data", true, in_use).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    engine.remove_volume("data", false, unused).unwrap();
    assert!(!v.mountpoint.exists());
    let e = engine.remove_volume("data", false, unused).unwrap_err();
    assert_eq!(e.to_string(), "get data: no such volume");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    engine.remove_volume("data", true, unused).unwrap();
    assert_eq!(
        engine.inspect_volume("data").unwrap_err().to_string(),
        "get data: no such volume"
    );
}

#[test]
fn docker_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let create = |engine: &mut Engine, name: &str| {
        engine
            .create_volume(Some(name), None, BTreeMap::new(), BTreeMap::new())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        create(&mut engine, "a"),
        "create a: volume name is too short, names should be at least two alphanumeric characters"
    );
    assert_eq!(
        create(&mut engine, "a/b"),
        "create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    );
    assert!(create(&mut engine, "_x").contains("includes invalid characters"));
    assert!(create(&mut engine, "..").contains("includes invalid characters"));
    let e = engine
        .create_volume(Some("ok"), Some("nfs"), BTreeMap::new(), BTreeMap::new())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "error looking up volume plugin nfs: plugin \"nfs\" not found"
    );
    let e = engine
        .create_volume(
            Some("ok"),
            None,
            BTreeMap::new(),
            BTreeMap::from([("bogus".into(), "1".into())]),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid option key: \"bogus\"");
    assert!(engine
        .list_volumes(&VolumeFilter::default(), unused)
        .unwrap()
        .is_empty());
}

#[test]
fn prune_takes_unused_anonymous_volumes_unless_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(dir.path());
    let named = engine
        .create_volume(Some("named"), None, BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let anon = engine.create_anonymous_volume().unwrap();
    let busy = engine.create_anonymous_volume().unwrap();
    assert!(anon.record.labels.contains_key(ANONYMOUS_LABEL));
    std::fs::write(anon.mountpoint.join("f"), vec![0u8; 5000]).unwrap();
    let busy_name = busy.name().to_string();
    let in_use = move |n: &str| {
        if n == busy_name {
            vec!["c1".to_string()]
        } else {
            Vec::new()
        }
    };
    let (removed, freed) = engine
        .prune_volumes(false, &VolumeFilter::default(), &in_use)
        .unwrap();
    assert_eq!(removed, [anon.name()]);
    assert_eq!(freed, 5000);
    assert!(named.mountpoint.is_dir());
    assert!(busy.mountpoint.is_dir());
    let (removed, _) = engine
        .prune_volumes(true, &VolumeFilter::default(), &in_use)
        .unwrap();
    assert_eq!(removed, ["named"]);
    assert!(engine.store().check().unwrap().is_clean());
}

/// An image directory with owners, modes, a hard link and symlinks that
/// point out of the rootfs.
fn image_tree(rootfs: &Path) {
    let data = rootfs.join("srv/data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("conf"), "setting=1\n").unwrap();
    std::fs::write(data.join("sub/secret"), "s\n").unwrap();
    std::fs::hard_link(data.join("conf"), data.join("conf-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", data.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../..", data.join("up")).unwrap();
    std::fs::set_permissions(
        data.join("sub/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::chown(data.join("sub/secret"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(data.join("sub"), std::fs::Permissions::from_mode(0o2750)).unwrap();
    std::os::unix::fs::chown(data.join("sub"), Some(42), Some(43)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(&data, Some(7), Some(8)).unwrap();
    // The image reaches it through a symlink too.
    std::os::unix::fs::symlink("/srv/data", rootfs.join("data")).unwrap();
}

#[test]
fn copy_up_keeps_owners_modes_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    image_tree(&rootfs);
    let mut engine = engine(dir.path());
    let v = engine
        .create_volume(Some("seeded"), None, BTreeMap::new(), BTreeMap::new())
        .unwrap();
    let data = &v.mountpoint;
    assert!(seed_volume(&rootfs, "/data", data).unwrap());

    let md = |p: &str| std::fs::symlink_metadata(data.join(p)).unwrap();
    assert_eq!(
        std::fs::read_to_string(data.join("conf")).unwrap(),
        "setting=1\n"
    );
    assert_eq!(md("conf").ino(), md("conf-link").ino());
    assert_eq!(
        (md("sub/secret").uid(), md("sub/secret").gid()),
        (1234, 5678)
    );
    assert_eq!(md("sub/secret").mode() & 0o7777, 0o600);
    assert_eq!((md("sub").uid(), md("sub").gid()), (42, 43));
    assert_eq!(md("sub").mode() & 0o7777, 0o2750);
    assert_eq!(
        std::fs::read_link(data.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::read_link(data.join("up")).unwrap(),
        Path::new("../../../../../..")
    );
    // The volume's root takes the image directory's owner and mode.
    let root = std::fs::metadata(data).unwrap();
    assert_eq!(
        (root.uid(), root.gid(), root.mode() & 0o7777),
        (7, 8, 0o1777)
    );

    // A volume with content is never seeded again.
    std::fs::remove_file(data.join("conf")).unwrap();
    assert!(!seed_volume(&rootfs, "/data", data).unwrap());
    assert!(!data.join("conf").exists());

    // A target whose image path does not exist seeds nothing.
    let empty = engine
        .create_volume(Some("empty"), None, BTreeMap::new(), BTreeMap::new())
        .unwrap();
    assert!(!seed_volume(&rootfs, "/nowhere", &empty.mountpoint).unwrap());
    // A target that is a symlink out of the rootfs is resolved inside it:
    // /up → ../../.. → the rootfs itself, never the host's /.
    std::os::unix::fs::symlink("../../../../etc", rootfs.join("outside")).unwrap();
    assert!(!seed_volume(&rootfs, "/outside", &empty.mountpoint).unwrap());
    assert_eq!(std::fs::read_dir(&empty.mountpoint).unwrap().count(), 0);
}

#[test]
fn mounts_from_requests_and_image_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    image_tree(&rootfs);
    std::fs::create_dir_all(rootfs.join("var/log")).unwrap();
    std::fs::write(rootfs.join("var/log/boot"), "log\n").unwrap();
    let host = dir.path().join("host");
    let image = ImageConfig {
        config: Some(ContainerConfig {
            volumes: ["/var/log".to_string(), "/data".to_string()].into(),
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    };
    let mut engine = engine(dir.path());
    let requests = vec![
        parse_volume_flag("appdata:/data:nocopy").unwrap(),
        parse_volume_flag(&format!("{}:/toroot/mnt/host:ro", host.display())).unwrap(),
        parse_mount_flag("type=volume,src=cfg,dst=/srv/data,volume-label=x=y").unwrap(),
    ];
    std::os::unix::fs::symlink("/", rootfs.join("toroot")).unwrap();
    let tmpfs = vec![TmpfsMount::parse("/run:size=1m").unwrap()];
    let prepared = engine
        .prepare_mounts(&rootfs, &image, &requests, &tmpfs)
        .unwrap();

    // -v appdata:/data:nocopy → named volume at /srv/data (through the
    // image's /data symlink), not seeded.
    let appdata = &prepared.mounts[0];
    assert_eq!(appdata.kind, MountKind::Volume);
    assert_eq!(appdata.volume.as_deref(), Some("appdata"));
    assert_eq!(appdata.target, "/srv/data");
    assert_eq!(std::fs::read_dir(&appdata.source).unwrap().count(), 0);
    // -v /host:... → a bind, its missing source created, its target inside.
    let bind = &prepared.mounts[1];
    assert_eq!(bind.kind, MountKind::Bind);
    assert!(host.is_dir());
    assert_eq!(bind.target, "/mnt/host");
    assert!(bind.read_only);
    assert_eq!(bind.options(), ["rbind", "ro", "rprivate"]);
    // --mount volume with a label: created with it and seeded.
    let cfg = engine.inspect_volume("cfg").unwrap();
    assert_eq!(cfg.record.labels.get("x").map(String::as_str), Some("y"));
    assert!(cfg.mountpoint.join("conf").is_file());
    // The image's VOLUME /var/log (not covered) → an anonymous volume,
    // seeded; /data is covered by the request.
    assert_eq!(prepared.mounts.len(), 4);
    assert_eq!(prepared.anonymous.len(), 1);
    let anon = &prepared.mounts[3];
    assert_eq!(anon.destination, "/var/log");
    assert_eq!(anon.volume.as_deref(), Some(prepared.anonymous[0].as_str()));
    assert_eq!(
        std::fs::read_to_string(anon.source.join("boot")).unwrap(),
        "log\n"
    );
    assert_eq!(prepared.tmpfs[0].destination, "/run");
    assert!(rootfs.join("run").is_dir());

    // Two mounts at one target.
    let e = engine
        .prepare_mounts(
            &rootfs,
            &ImageConfig::default(),
            &[
                parse_volume_flag("a1:/x").unwrap(),
                parse_volume_flag("a2:/x/").unwrap(),
            ],
            &[],
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "Duplicate mount point: /x");

    // A failure removes the anonymous volumes made on the way.
    let before = engine
        .list_volumes(&VolumeFilter::default(), unused)
        .unwrap()
        .len();
    let e = engine
        .prepare_mounts(
            &rootfs,
            &ImageConfig::default(),
            &[
                parse_volume_flag("/anon").unwrap(),
                parse_mount_flag("type=bind,src=/nonexistent-berth-src,dst=/b").unwrap(),
            ],
            &[],
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth-src"
    );
    assert_eq!(
        engine
            .list_volumes(&VolumeFilter::default(), unused)
            .unwrap()
            .len(),
        before
    );

    // An image whose /dev is a symlink is refused.
    std::os::unix::fs::symlink("/", rootfs.join("dev")).unwrap();
    let e = engine
        .prepare_mounts(&rootfs, &ImageConfig::default(), &[], &[])
        .unwrap_err();
    assert!(e.to_string().contains("/dev is a symbolic link"), "{e}");
}
