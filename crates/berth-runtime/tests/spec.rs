#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The runtime spec against Docker's documented behaviour, table by table,
//! and against a real OCI runtime: `runc run` of a busybox bundle.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_oci::{ContainerConfig, ImageConfig};
use berth_runtime::oci::Spec;
use berth_runtime::spec::{DEFAULT_PATH, INIT_PATH, MASKED_PATHS, READONLY_PATHS};
use berth_runtime::{build_spec, ErrorKind, HostInfo, NetworkNamespace, RunOptions, TmpfsMount};

const ID: &str = "4f1d2c3b5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
const HOST: HostInfo = HostInfo {
    nofile_hard_limit: Some(1 << 30),
    kernel: Some((6, 1)),
    cap_bounding: None,
};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    daemon:x:1:1:daemon:/usr/sbin:/sbin/nologin\n\
    nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\n\
    app:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:root\n\
    bin:x:1:root,bin,daemon\n\
    daemon:x:2:root,bin,daemon\n\
    tty:x:5:\n\
    wheel:x:10:root\n\
    nginx:x:101:\n\
    video:x:44:app\n\
    docker:x:999:app\n\
    app:x:1000:\n";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
    ImageConfig {
        config: Some(ContainerConfig {
            entrypoint: s(entrypoint),
            cmd: s(cmd),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn opts() -> RunOptions {
    RunOptions {
        host: Some(HOST),
        ..Default::default()
    }
}

fn build(image: &ImageConfig, opts: &RunOptions) -> Spec {
    build_spec(image, opts, Path::new("/rootfs"), PASSWD, GROUP, ID).unwrap()
}

fn sh() -> ImageConfig {
    image(&[], &["/bin/sh"])
}

#[test]
fn entrypoint_and_cmd() {
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        &'a [&'a str],
        Option<&'a [&'a str]>,
        &'a [&'a str],
        Option<&'a [&'a str]>,
    );
    // (what, image ENTRYPOINT, image CMD, --entrypoint, run command, argv)
    let cases: &[Case] = &[
        (
            "CMD only",
            &[],
            &["nginx", "-g", "daemon off;"],
            None,
            &[],
            Some(&["nginx", "-g", "daemon off;"]),
        ),
        (
            "ENTRYPOINT + CMD",
            &["/docker-entrypoint.sh"],
            &["postgres"],
            None,
            &[],
            Some(&["/docker-entrypoint.sh", "postgres"]),
        ),
        (
            "ENTRYPOINT only",
            &["/bin/app"],
            &[],
            None,
            &[],
            Some(&["/bin/app"]),
        ),
        (
            "run IMG cmd replaces CMD",
            &[],
            &["/bin/sh"],
            None,
            &["ls", "-l"],
            Some(&["ls", "-l"]),
        ),
        (
            "run IMG cmd after ENTRYPOINT",
            &["/docker-entrypoint.sh"],
            &["postgres"],
            None,
            &["bash"],
            Some(&["/docker-entrypoint.sh", "bash"]),
        ),
        (
            "--entrypoint x drops image CMD",
            &["/old"],
            &["arg"],
            Some(&["/bin/sh"]),
            &[],
            Some(&["/bin/sh"]),
        ),
        (
            "--entrypoint x with command",
            &["/old"],
            &["arg"],
            Some(&["/bin/sh"]),
            &["-c", "true"],
            Some(&["/bin/sh", "-c", "true"]),
        ),
        (
            "--entrypoint \"\" with command",
            &["/old"],
            &["arg"],
            Some(&[""]),
            &["ls"],
            Some(&["ls"]),
        ),
        (
            "--entrypoint (empty list) with command",
            &["/old"],
            &["arg"],
            Some(&[]),
            &["ls"],
            Some(&["ls"]),
        ),
        (
            "--entrypoint \"\" alone",
            &["/old"],
            &["arg"],
            Some(&[""]),
            &[],
            None,
        ),
        ("nothing at all", &[], &[], None, &[], None),
        (
            "shell-form CMD",
            &[],
            &["/bin/sh", "-c", "echo $HOME && sleep 1"],
            None,
            &[],
            Some(&["/bin/sh", "-c", "echo $HOME && sleep 1"]),
        ),
        (
            "shell-form ENTRYPOINT ignores CMD as $0",
            &["/bin/sh", "-c", "exec app"],
            &["x"],
            None,
            &["y"],
            Some(&["/bin/sh", "-c", "exec app", "y"]),
        ),
    ];
    for (what, ep, cmd, run_ep, run_cmd, want) in cases {
        let opts = RunOptions {
            entrypoint: run_ep.map(s),
            command: s(run_cmd),
            ..opts()
        };
        let got = build_spec(&image(ep, cmd), &opts, Path::new("/r"), "", "", ID);
        match (got, want) {
            (Ok(spec), Some(want)) => assert_eq!(spec.process.args, s(want), "{what}"),
            (Err(err), None) => {
                assert_eq!(err.to_string(), "No command specified", "{what}");
                assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            }
            (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn init_wraps_the_command() {
    let opts = RunOptions {
        init: Some(PathBuf::from("/usr/libexec/berth/init")),
        command: s(&["sleep", "9"]),
        ..opts()
    };
    let spec = build(&sh(), &opts);
    assert_eq!(spec.process.args, s(&[INIT_PATH, "--", "sleep", "9"]));
    let init = spec.mounts.last().unwrap();
    assert_eq!(
        (
            init.destination.as_str(),
            init.kind.as_str(),
            init.source.as_str()
        ),
        (INIT_PATH, "bind", "/usr/libexec/berth/init")
    );
    assert_eq!(init.options, s(&["bind", "ro"]));
}

#[test]
fn environment() {
    let default_path = format!("PATH={DEFAULT_PATH}");
    // (image Env, -e values, tty, expected env)
    type Case<'a> = (&'a [&'a str], &'a [&'a str], bool, &'a [&'a str]);
    let cases: &[Case] = &[
        (&[], &[], false, &[&default_path, "HOSTNAME=4f1d2c3b5a6e"]),
        (
            &[],
            &[],
            true,
            &[&default_path, "HOSTNAME=4f1d2c3b5a6e", "TERM=xterm"],
        ),
        (
            &["PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8"],
            &[],
            false,
            &[
                "PATH=/opt/bin:/usr/bin",
                "HOSTNAME=4f1d2c3b5a6e",
                "LANG=C.UTF-8",
            ],
        ),
        (
            &["PATH=/opt/bin", "A=image", "B=image"],
            &["B=run", "C=run"],
            false,
            &[
                "PATH=/opt/bin",
                "HOSTNAME=4f1d2c3b5a6e",
                "B=run",
                "C=run",
                "A=image",
            ],
        ),
        // `-e A` with A unset in the caller removes the image's A.
        (
            &["A=image", "Z=1"],
            &["A"],
            false,
            &[&default_path, "HOSTNAME=4f1d2c3b5a6e", "Z=1"],
        ),
        // -e can override the defaults too, in place.
        (
            &[],
            &["TERM=dumb", "HOSTNAME=box", "PATH=/x"],
            true,
            &["PATH=/x", "HOSTNAME=box", "TERM=dumb"],
        ),
        (
            &["EMPTY="],
            &[],
            false,
            &[&default_path, "HOSTNAME=4f1d2c3b5a6e", "EMPTY="],
        ),
    ];
    for (image_env, run_env, tty, want) in cases {
        let mut img = sh();
        img.config.as_mut().unwrap().env = s(image_env);
        let opts = RunOptions {
            env: s(run_env),
            tty: *tty,
            ..opts()
        };
        let spec = build(&img, &opts);
        assert_eq!(
            spec.process.env,
            s(want),
            "image {image_env:?} run {run_env:?}"
        );
        assert_eq!(spec.process.terminal, *tty);
    }
}

#[test]
fn users() {
    // (image USER, -u, --group-add, uid, gid, additionalGids)
    type Case<'a> = (&'a str, Option<&'a str>, &'a [&'a str], u32, u32, &'a [u32]);
    let cases: &[Case] = &[
        ("", None, &[], 0, 0, &[0, 1, 2, 10]),
        ("nginx", None, &[], 101, 101, &[101]),
        ("app", None, &[], 1000, 1000, &[1000, 44, 999]),
        ("nginx", Some("app"), &[], 1000, 1000, &[1000, 44, 999]),
        ("nginx", Some(""), &[], 101, 101, &[101]),
        ("", Some("1000"), &[], 1000, 1000, &[1000, 44, 999]),
        ("", Some("app:tty"), &[], 1000, 5, &[5]),
        ("", Some("app:44"), &[], 1000, 44, &[44]),
        ("", Some("daemon:nginx"), &[], 1, 101, &[101]),
        ("", Some("1000:video"), &[], 1000, 44, &[44]),
        ("", Some("12345"), &[], 12345, 0, &[0]),
        ("", Some("12345:777"), &[], 12345, 777, &[777]),
        (
            "nginx",
            None,
            &["video", "4242", "nginx"],
            101,
            101,
            &[101, 44, 4242],
        ),
    ];
    for (image_user, run_user, group_add, uid, gid, gids) in cases {
        let mut img = sh();
        img.config.as_mut().unwrap().user = image_user.to_string();
        let opts = RunOptions {
            user: run_user.map(str::to_string),
            group_add: s(group_add),
            ..opts()
        };
        let user = build(&img, &opts).process.user;
        assert_eq!(
            (user.uid, user.gid, &user.additional_gids[..]),
            (*uid, *gid, *gids),
            "USER {image_user:?} -u {run_user:?}"
        );
    }
}

#[test]
fn user_errors() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "ghost",
            &[],
            "unable to find user ghost: no matching entries in passwd file",
        ),
        (
            "ghost:root",
            &[],
            "unable to find user ghost: no matching entries in passwd file",
        ),
        (
            "app:ghosts",
            &[],
            "unable to find group ghosts: no matching entries in group file",
        ),
        (
            "app",
            &["ghosts"],
            "Unable to find group ghosts: no matching entries in group file",
        ),
    ];
    for (user, group_add, want) in cases {
        let opts = RunOptions {
            user: Some(user.to_string()),
            group_add: s(group_add),
            ..opts()
        };
        let err = build_spec(&sh(), &opts, Path::new("/r"), PASSWD, GROUP, ID).unwrap_err();
        assert_eq!(err.to_string(), *want);
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    // An image without /etc/passwd: names fail, numbers work.
    let named = RunOptions {
        user: Some("app".into()),
        ..opts()
    };
    assert!(build_spec(&sh(), &named, Path::new("/r"), "", "", ID).is_err());
    let numeric = RunOptions {
        user: Some("1000".into()),
        ..opts()
    };
    let spec = build_spec(&sh(), &numeric, Path::new("/r"), "", "", ID).unwrap();
    assert_eq!((spec.process.user.uid, spec.process.user.gid), (1000, 0));
}

#[test]
fn working_directory() {
    // (image WorkingDir, -w, cwd)
    let cases: &[(&str, Option<&str>, Result<&str, ()>)] = &[
        ("", None, Ok("/")),
        ("/app", None, Ok("/app")),
        ("/app", Some("/srv/"), Ok("/srv")),
        ("/app", Some(""), Ok("/app")),
        ("", Some("/a/./b/../c"), Ok("/a/c")),
        ("", Some("relative"), Err(())),
        ("relative", None, Err(())),
    ];
    for (image_dir, run_dir, want) in cases {
        let mut img = sh();
        img.config.as_mut().unwrap().working_dir = image_dir.to_string();
        let opts = RunOptions {
            workdir: run_dir.map(str::to_string),
            ..opts()
        };
        match (build_spec(&img, &opts, Path::new("/r"), "", "", ID), want) {
            (Ok(spec), Ok(want)) => assert_eq!(spec.process.cwd, *want),
            (Err(err), Err(())) => {
                assert!(err.to_string().contains("needs to be an absolute path"))
            }
            (got, want) => panic!("{image_dir:?} {run_dir:?}: {got:?} vs {want:?}"),
        }
    }
}

#[test]
fn hostname() {
    let spec = build(&sh(), &opts());
    assert_eq!(spec.hostname, "4f1d2c3b5a6e");
    let spec = build(
        &sh(),
        &RunOptions {
            hostname: Some("web-1".into()),
            ..opts()
        },
    );
    assert_eq!(spec.hostname, "web-1");
    assert!(spec.process.env.contains(&"HOSTNAME=web-1".to_string()));
    for bad in ["", "../x", "abc def"] {
        assert!(build_spec(&sh(), &opts(), Path::new("/r"), "", "", bad).is_err());
    }
}

#[test]
fn capabilities() {
    let default = s(&[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]);
    let caps_of = |add: &[&str], drop: &[&str], privileged: bool| {
        let opts = RunOptions {
            cap_add: s(add),
            cap_drop: s(drop),
            privileged,
            ..opts()
        };
        let caps = build(&sh(), &opts).process.capabilities.unwrap();
        assert_eq!(caps.bounding, caps.effective);
        assert_eq!(caps.bounding, caps.permitted);
        assert!(caps.inheritable.is_empty() && caps.ambient.is_empty());
        caps.bounding
    };
    assert_eq!(caps_of(&[], &[], false), default);

    let added = caps_of(&["NET_ADMIN", "cap_sys_ptrace"], &[], false);
    assert_eq!(added[..14], default[..]);
    assert_eq!(added[14..], s(&["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]));

    let dropped = caps_of(&[], &["CAP_NET_RAW", "mknod"], false);
    assert_eq!(dropped.len(), 12);
    assert!(!dropped.contains(&"CAP_NET_RAW".into()) && !dropped.contains(&"CAP_MKNOD".into()));

    assert_eq!(
        caps_of(&["CHOWN", "KILL"], &["ALL"], false),
        s(&["CAP_CHOWN", "CAP_KILL"])
    );
    let all_but = caps_of(&["ALL"], &["SYS_ADMIN"], false);
    assert!(all_but.len() >= 40 && !all_but.contains(&"CAP_SYS_ADMIN".into()));
    let privileged = caps_of(&[], &["ALL"], true);
    assert!(privileged.contains(&"CAP_SYS_ADMIN".into()) && privileged.len() >= 41);

    let opts = RunOptions {
        cap_add: s(&["TELEPORT"]),
        ..opts()
    };
    let err = build_spec(&sh(), &opts, Path::new("/r"), "", "", ID).unwrap_err();
    assert_eq!(err.to_string(), "unknown capability: \"CAP_TELEPORT\"");
}

#[test]
fn confinement_and_privileged() {
    let spec = build(&sh(), &opts());
    assert_eq!(spec.linux.masked_paths, MASKED_PATHS.map(String::from));
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        assert!(spec.linux.masked_paths.contains(&p.to_string()), "{p}");
    }
    assert_eq!(spec.linux.readonly_paths, READONLY_PATHS.map(String::from));
    assert!(spec.process.no_new_privileges);
    assert!(spec.linux.seccomp.is_some());
    let sys = spec
        .mounts
        .iter()
        .find(|m| m.destination == "/sys")
        .unwrap();
    assert!(sys.options.contains(&"ro".into()));
    let devices = &spec.linux.resources.as_ref().unwrap().devices;
    assert!(!devices[0].allow && devices[0].kind.is_none());

    let privileged = build(
        &sh(),
        &RunOptions {
            privileged: true,
            ..opts()
        },
    );
    assert!(privileged.linux.masked_paths.is_empty());
    assert!(privileged.linux.readonly_paths.is_empty());
    assert!(privileged.linux.seccomp.is_none());
    assert!(!privileged.process.no_new_privileges);
    for dest in ["/sys", "/sys/fs/cgroup"] {
        let m = privileged
            .mounts
            .iter()
            .find(|m| m.destination == dest)
            .unwrap();
        assert!(!m.options.contains(&"ro".into()), "{dest}");
    }
    let devices = &privileged.linux.resources.as_ref().unwrap().devices;
    assert!(devices.len() == 1 && devices[0].allow);
}

#[test]
fn nofile_rlimit_never_above_the_host() {
    // (host hard limit, expected soft = hard)
    let cases: &[(Option<u64>, u64)] = &[
        (Some(20_000), 20_000),
        (Some(1024), 1024),
        (Some(1_048_576), 1_048_576),
        (Some(4_194_304), 1_048_576),
        (None, 1_048_576),
    ];
    for (hard, want) in cases {
        let opts = RunOptions {
            host: Some(HostInfo {
                nofile_hard_limit: *hard,
                kernel: Some((6, 1)),
                cap_bounding: None,
            }),
            ..Default::default()
        };
        let rlimits = build(&sh(), &opts).process.rlimits;
        assert_eq!(rlimits.len(), 1);
        assert_eq!(rlimits[0].kind, "RLIMIT_NOFILE");
        assert_eq!(
            (rlimits[0].soft, rlimits[0].hard),
            (*want, *want),
            "{hard:?}"
        );
    }
    // Detected from this process: never above its hard limit.
    let detected = HostInfo::detect();
    let spec = build_spec(&sh(), &RunOptions::default(), Path::new("/r"), "", "", ID).unwrap();
    let limit = &spec.process.rlimits[0];
    if let Some(hard) = detected.nofile_hard_limit {
        assert!(limit.hard <= hard);
    }
    assert!(detected.kernel.is_some());
}

#[test]
fn seccomp_profile() {
    let spec = build(&sh(), &opts());
    let seccomp = spec.linux.seccomp.as_ref().unwrap();
    assert_eq!(seccomp.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(seccomp.default_errno_ret, Some(1));
    if cfg!(target_arch = "x86_64") {
        assert_eq!(seccomp.architectures[0], "SCMP_ARCH_X86_64");
    }
    let allowed: Vec<&str> = seccomp
        .syscalls
        .iter()
        .filter(|r| r.action == "SCMP_ACT_ALLOW")
        .flat_map(|r| r.names.iter().map(String::as_str))
        .collect();
    for name in [
        "read",
        "write",
        "openat",
        "clone",
        "execve",
        "exit_group",
        "futex",
        "socket",
    ] {
        assert!(allowed.contains(&name), "{name} allowed");
    }
    for name in [
        "kexec_load",
        "mount",
        "umount2",
        "unshare",
        "setns",
        "init_module",
        "reboot",
        "bpf",
    ] {
        assert!(!allowed.contains(&name), "{name} denied");
    }

    // The JSON round-trips, with the OCI key names.
    let json = serde_json::to_value(seccomp).unwrap();
    assert!(json.get("defaultErrnoRet").is_some());
    let back: berth_runtime::oci::Seccomp = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, seccomp);
    let socket = json["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["names"] == serde_json::json!(["socket"]))
        .unwrap();
    assert_eq!(socket["args"][0]["op"], "SCMP_CMP_NE");

    // CAP_SYS_ADMIN brings mount & co. and the unrestricted clone.
    let admin = build(
        &sh(),
        &RunOptions {
            cap_add: s(&["SYS_ADMIN"]),
            ..opts()
        },
    );
    let rules = &admin.linux.seccomp.as_ref().unwrap().syscalls;
    assert!(rules.iter().any(|r| r.names.contains(&"mount".into())));
    assert!(!rules
        .iter()
        .any(|r| r.names == ["clone3"] && r.action == "SCMP_ACT_ERRNO"));
}

#[test]
fn mounts_namespaces_and_rootfs() {
    let files = RunOptions {
        hosts_file: Some("/c/hosts".into()),
        hostname_file: Some("/c/hostname".into()),
        resolv_conf: Some("/c/resolv.conf".into()),
        tmpfs: vec![
            TmpfsMount::parse("/run:exec,size=16m").unwrap(),
            TmpfsMount::parse("/dev/shm:size=1g").unwrap(),
        ],
        ..opts()
    };
    let spec = build(&sh(), &files);
    let dests: Vec<&str> = spec.mounts.iter().map(|m| m.destination.as_str()).collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/run",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts",
            "/dev/shm",
        ]
    );
    let by = |d: &str| spec.mounts.iter().find(|m| m.destination == d).unwrap();
    assert_eq!(by("/proc").options, s(&["nosuid", "noexec", "nodev"]));
    assert_eq!(
        (by("/dev").kind.as_str(), by("/dev").source.as_str()),
        ("tmpfs", "tmpfs")
    );
    assert_eq!(
        by("/dev").options,
        s(&["nosuid", "strictatime", "mode=755", "size=65536k"])
    );
    assert_eq!(
        by("/dev/pts").options,
        s(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ])
    );
    assert_eq!(by("/sys").kind, "sysfs");
    assert_eq!(by("/sys/fs/cgroup").kind, "cgroup");
    assert_eq!(by("/dev/mqueue").kind, "mqueue");
    assert_eq!(by("/etc/hosts").source, "/c/hosts");
    assert_eq!(by("/etc/hosts").kind, "bind");
    assert_eq!(by("/etc/hosts").options, s(&["rbind", "rprivate"]));
    assert_eq!(
        by("/run").options,
        s(&["nosuid", "nodev", "rprivate", "exec", "size=16m"])
    );
    assert_eq!(
        by("/dev/shm").options,
        s(&["noexec", "nosuid", "nodev", "rprivate", "size=1g"])
    );

    // The default /dev/shm is a 64 MiB tmpfs.
    let plain = build(&sh(), &opts());
    let shm = plain
        .mounts
        .iter()
        .find(|m| m.destination == "/dev/shm")
        .unwrap();
    assert_eq!(shm.source, "shm");
    assert!(shm.options.contains(&"size=67108864".into()));

    let types: Vec<&str> = spec
        .linux
        .namespaces
        .iter()
        .map(|n| n.kind.as_str())
        .collect();
    assert_eq!(types, ["mount", "network", "uts", "pid", "ipc", "cgroup"]);
    assert!(spec.linux.namespaces.iter().all(|n| n.path.is_none()));
    assert_eq!(spec.root.path, Path::new("/rootfs"));
    assert!(!spec.root.readonly);
    assert_eq!(
        spec.linux.cgroups_path.as_deref(),
        Some(&*format!("/berth/{ID}"))
    );

    let joined = build(
        &sh(),
        &RunOptions {
            network: NetworkNamespace::Join("/run/netns/berth-x".into()),
            read_only: true,
            hosts_file: Some("/c/hosts".into()),
            ..opts()
        },
    );
    let net = joined
        .linux
        .namespaces
        .iter()
        .find(|n| n.kind == "network")
        .unwrap();
    assert_eq!(net.path.as_deref(), Some(Path::new("/run/netns/berth-x")));
    assert!(joined.root.readonly);
    let hosts = joined
        .mounts
        .iter()
        .find(|m| m.destination == "/etc/hosts")
        .unwrap();
    assert_eq!(hosts.options, s(&["rbind", "ro", "rprivate"]));

    let host = build(
        &sh(),
        &RunOptions {
            network: NetworkNamespace::Host,
            ..opts()
        },
    );
    assert!(!host.linux.namespaces.iter().any(|n| n.kind == "network"));
    assert!(host.linux.sysctl.is_empty());
    assert_eq!(
        spec.linux.sysctl["net.ipv4.ip_unprivileged_port_start"],
        "0"
    );
}

#[test]
fn config_json_field_names() {
    let opts = RunOptions {
        user: Some("app".into()),
        ..opts()
    };
    let spec = build(&sh(), &opts);
    let json: serde_json::Value = serde_json::from_slice(&spec.to_json().unwrap()).unwrap();
    assert_eq!(json["ociVersion"], "1.0.2");
    for key in [
        "ociVersion",
        "process",
        "root",
        "hostname",
        "mounts",
        "linux",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let process = &json["process"];
    for key in [
        "terminal",
        "user",
        "args",
        "env",
        "cwd",
        "capabilities",
        "rlimits",
        "noNewPrivileges",
    ] {
        assert!(process.get(key).is_some(), "process.{key}");
    }
    assert_eq!(process["user"]["uid"], 1000);
    assert!(process["user"]["additionalGids"].is_array());
    assert!(process["capabilities"]["bounding"].is_array());
    assert_eq!(process["rlimits"][0]["type"], "RLIMIT_NOFILE");
    assert_eq!(json["root"]["path"], "/rootfs");
    assert_eq!(json["root"]["readonly"], false);
    let mount = &json["mounts"][0];
    for key in ["destination", "type", "source", "options"] {
        assert!(mount.get(key).is_some(), "mounts[].{key}");
    }
    let linux = &json["linux"];
    for key in [
        "namespaces",
        "maskedPaths",
        "readonlyPaths",
        "seccomp",
        "cgroupsPath",
        "resources",
        "sysctl",
    ] {
        assert!(linux.get(key).is_some(), "linux.{key}");
    }
    assert_eq!(linux["namespaces"][0]["type"], "mount");
    assert!(linux["seccomp"]["defaultAction"].is_string());
    assert!(linux["seccomp"]["syscalls"][0]["names"].is_array());
    // No snake_case or Rust names leak out.
    let text = String::from_utf8(spec.to_json().unwrap()).unwrap();
    for leak in [
        "no_new_privileges",
        "additional_gids",
        "\"kind\"",
        "masked_paths",
        "errno_ret",
    ] {
        assert!(!text.contains(leak), "{leak}");
    }
    assert_eq!(Spec::from_json(text.as_bytes()).unwrap(), spec);
}

// ---- runc ------------------------------------------------------------------

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn apt_install(package: &str) {
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .unwrap_or_else(|e| panic!("apt-get install {package}: {e}"));
    assert!(
        status.success(),
        "apt-get install {package} failed: {status}"
    );
}

/// A bundle whose rootfs holds only a static busybox.
fn bundle(dir: &Path) -> PathBuf {
    if !have("runc", "--version") {
        apt_install("runc");
    }
    let static_busybox = Command::new("dpkg")
        .args(["-s", "busybox-static"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !static_busybox || !Path::new("/bin/busybox").exists() {
        apt_install("busybox-static");
    }
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(rootfs.join("etc/group"), GROUP).unwrap();
    for (name, text) in [
        ("hosts", "127.0.0.1\tlocalhost\n"),
        ("hostname", "box\n"),
        ("resolv.conf", "nameserver 127.0.0.53\n"),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    rootfs
}

fn runc_run(dir: &Path, spec: &Spec, id: &str) -> std::process::Output {
    std::fs::write(dir.join("config.json"), spec.to_json().unwrap()).unwrap();
    let state = dir.join("state");
    let output = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(dir)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // Leave nothing behind whatever happened.
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", id])
        .output();
    output
}

fn run_in_runc(opts: RunOptions, tag: &str) -> std::process::Output {
    assert!(
        rustix::process::geteuid().is_root(),
        "the runc test needs root (as the runtime test suites do)"
    );
    let dir = tempfile::tempdir().unwrap();
    let rootfs = bundle(dir.path());
    let opts = RunOptions {
        hosts_file: Some(dir.path().join("hosts")),
        hostname_file: Some(dir.path().join("hostname")),
        resolv_conf: Some(dir.path().join("resolv.conf")),
        ..opts
    };
    let id = format!("berthspec{tag}{}", std::process::id());
    // One level, so that runc's cleanup of its cgroup leaves nothing behind.
    let opts = RunOptions {
        cgroups_path: Some(format!("/{id}")),
        ..opts
    };
    let spec = build_spec(&ImageConfig::default(), &opts, &rootfs, PASSWD, GROUP, &id).unwrap();
    let output = runc_run(dir.path(), &spec, &id);
    if !output.status.success() {
        eprintln!(
            "config.json: {}",
            String::from_utf8_lossy(&spec.to_json().unwrap())
        );
    }
    output
}

#[test]
fn runc_runs_the_spec() {
    let output = run_in_runc(
        RunOptions {
            entrypoint: Some(s(&["/bin/busybox"])),
            command: s(&["echo", "hello"]),
            ..Default::default()
        },
        "echo",
    );
    assert!(
        output.status.success(),
        "runc: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n");
}

#[test]
fn runc_applies_user_env_cwd_and_confinement() {
    let script = "id -u; id -g; id -G; pwd; hostname; echo $GREETING; cat /etc/hostname; \
        grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \\t'; \
        wc -c < /proc/interrupts; ulimit -n; \
        touch /proc/sysrq-trigger 2>/dev/null && echo rw || echo ro; \
        mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo denied";
    let output = run_in_runc(
        RunOptions {
            entrypoint: Some(s(&["/bin/busybox", "sh", "-c"])),
            command: s(&[script]),
            user: Some("app".into()),
            group_add: s(&["wheel"]),
            workdir: Some("/home/app".into()),
            env: s(&["GREETING=hi there"]),
            hostname: Some("spec-box".into()),
            host: Some(HostInfo {
                nofile_hard_limit: Some(4096),
                ..HostInfo::detect()
            }),
            ..Default::default()
        },
        "conf",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "runc: {}\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "1000",
            "1000",
            "1000 10 44 999",
            "/home/app",
            "spec-box",
            "hi there",
            "box",
            "NoNewPrivs:1",
            "Seccomp:2",
            "0",
            "4096",
            "ro",
            "denied",
        ]
    );
}

#[test]
fn privileged_grants_only_what_the_host_bounding_set_holds() {
    // A host without CAP_SYS_RESOURCE (24), as these machines are.
    let bounding = ((1u64 << 41) - 1) & !(1 << 24);
    let opts = RunOptions {
        privileged: true,
        host: Some(HostInfo {
            cap_bounding: Some(bounding),
            ..HOST
        }),
        ..Default::default()
    };
    let spec = build_spec(
        &ImageConfig::default(),
        &RunOptions {
            command: vec!["sh".into()],
            ..opts
        },
        Path::new("/rootfs"),
        PASSWD,
        GROUP,
        ID,
    )
    .unwrap();
    let caps = &spec.process.capabilities.as_ref().unwrap().bounding;
    assert_eq!(caps.len(), 40);
    assert!(!caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
    assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
}
