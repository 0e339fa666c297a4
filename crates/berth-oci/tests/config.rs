#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Image config JSON: Docker's key names, omissions, unknown fields, and
//! byte-identical round trips of configs already in canonical form.

use std::collections::BTreeMap;

use berth_oci::{ContainerConfig, Digest, Healthcheck, History, ImageConfig, RootFs};
use serde_json::Value;

const L1: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
const L2: &str = "sha256:1dbd0ba3bfc7b2f3bf1de3bd4ef0bfb2b1be8d2f3d3e0d3c7b8b4ee5fbbb3a7e";

/// A config as BuildKit writes one (top-level keys sorted because it patches
/// a map; nested objects in the image-spec's struct order; `&&` as
/// `\u0026\u0026`), with an unknown top-level key and an unknown `config`
/// key, all on one line.
fn buildkit_config() -> String {
    let text = r#"{
        "architecture":"arm64",
        "author":"Jane Doe \u003cjane@example.com\u003e",
        "config":{
            "User":"app:app",
            "ExposedPorts":{"443/tcp":{},"80/tcp":{},"9000/udp":{}},
            "Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","APP_ENV=production"],
            "Entrypoint":["/docker-entrypoint.sh"],
            "Cmd":["nginx","-g","daemon off;"],
            "Volumes":{"/data":{},"/var/cache/nginx":{}},
            "WorkingDir":"/srv/app",
            "Labels":{"maintainer":"NGINX Docker Maintainers \u003cdocker-maint@nginx.com\u003e","org.opencontainers.image.version":"1.27"},
            "StopSignal":"SIGQUIT",
            "ArgsEscaped":true,
            "Healthcheck":{"Test":["CMD-SHELL","curl -f http://localhost/ || exit 1"],"Interval":30000000000,"Timeout":5000000000,"StartPeriod":10000000000,"StartInterval":2000000000,"Retries":3},
            "OnBuild":["COPY . /srv/app"],
            "Shell":["/bin/bash","-c"],
            "StopTimeout":20
        },
        "created":"2024-05-01T12:34:56.789012345Z",
        "history":[
            {"created":"2024-04-22T00:00:00Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "},
            {"created":"2024-04-22T00:00:00Z","created_by":"/bin/sh -c #(nop)  CMD [\"/bin/sh\"]","empty_layer":true},
            {"created":"2024-05-01T12:34:50Z","created_by":"RUN /bin/sh -c apt-get update \u0026\u0026 apt-get install -y nginx # buildkit","comment":"buildkit.dockerfile.v0"},
            {"created":"2024-05-01T12:34:56Z","created_by":"HEALTHCHECK \u0026{[\"CMD-SHELL\" \"curl -f http://localhost/ || exit 1\"] \"30s\" \"5s\" \"10s\" \"2s\" '\\x03'}","author":"Jane Doe","comment":"buildkit.dockerfile.v0","empty_layer":true}
        ],
        "moby.buildkit.buildinfo.v1":"eyJmcm9udGVuZCI6ImRvY2tlcmZpbGUudjAifQ==",
        "os":"linux",
        "rootfs":{"type":"layers","diff_ids":["L1","L2"]},
        "variant":"v8"
    }"#;
    let one_line: String = text.lines().map(str::trim).collect();
    one_line
        .replace("\"L1\"", &format!("\"{L1}\""))
        .replace("\"L2\"", &format!("\"{L2}\""))
}

#[test]
fn buildkit_config_round_trips_byte_identically() {
    let input = buildkit_config();
    // It is valid JSON to begin with.
    let _: Value = serde_json::from_str(&input).unwrap();
    let cfg = ImageConfig::from_slice(input.as_bytes()).unwrap();
    let out = cfg.to_canonical_json().unwrap();
    assert_eq!(String::from_utf8(out.clone()).unwrap(), input);
    assert_eq!(cfg.image_id().unwrap(), Digest::sha256_of(input.as_bytes()));
    // And again, from our own output.
    let again = ImageConfig::from_slice(&out).unwrap();
    assert_eq!(again, cfg);
    assert_eq!(again.to_canonical_json().unwrap(), out);
}

#[test]
fn typed_fields_are_read() {
    let cfg = ImageConfig::from_slice(buildkit_config().as_bytes()).unwrap();
    assert_eq!(cfg.architecture, "arm64");
    assert_eq!(cfg.variant, "v8");
    assert_eq!(cfg.platform().to_string(), "linux/arm64/v8");
    assert_eq!(cfg.author, "Jane Doe <jane@example.com>");
    let c = cfg.config.as_ref().unwrap();
    assert_eq!(c.user, "app:app");
    assert!(c.exposed_ports.contains("80/tcp") && c.exposed_ports.contains("9000/udp"));
    assert_eq!(c.cmd, ["nginx", "-g", "daemon off;"]);
    assert_eq!(c.entrypoint, ["/docker-entrypoint.sh"]);
    assert!(c.volumes.contains("/data"));
    assert_eq!(c.working_dir, "/srv/app");
    assert_eq!(c.labels["org.opencontainers.image.version"], "1.27");
    assert!(c.labels["maintainer"].contains("<docker-maint@nginx.com>"));
    assert_eq!(c.stop_signal, "SIGQUIT");
    assert!(c.args_escaped);
    let hc = c.healthcheck.as_ref().unwrap();
    assert_eq!(hc.interval, 30_000_000_000);
    assert_eq!(hc.start_interval, 2_000_000_000);
    assert_eq!(hc.retries, 3);
    assert_eq!(c.shell, ["/bin/bash", "-c"]);
    assert_eq!(c.on_build, ["COPY . /srv/app"]);
    assert_eq!(c.extra["StopTimeout"], 20);
    assert_eq!(cfg.diff_ids().len(), 2);
    assert_eq!(cfg.diff_ids()[0].to_string(), L1);
    assert_eq!(cfg.history.len(), 4);
    assert!(cfg.history[1].empty_layer);
    assert!(cfg.history[2].created_by.contains("&&"));
    assert_eq!(cfg.history[3].author, "Jane Doe");
    assert!(cfg.extra.contains_key("moby.buildkit.buildinfo.v1"));
}

#[test]
fn a_change_changes_the_id_and_nothing_else() {
    let input = buildkit_config();
    let mut cfg = ImageConfig::from_slice(input.as_bytes()).unwrap();
    let before = cfg.image_id().unwrap();
    cfg.config
        .as_mut()
        .unwrap()
        .labels
        .insert("x".into(), "y".into());
    let after = cfg.image_id().unwrap();
    assert_ne!(before, after);
    let out = String::from_utf8(cfg.to_canonical_json().unwrap()).unwrap();
    assert_eq!(
        out,
        input.replace(
            r#""org.opencontainers.image.version":"1.27"}"#,
            r#""org.opencontainers.image.version":"1.27","x":"y"}"#
        )
    );
}

#[test]
fn empty_fields_are_omitted_as_docker_does() {
    let cfg = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(ContainerConfig {
            env: vec!["PATH=/bin".into()],
            cmd: vec!["sh".into()],
            healthcheck: Some(Healthcheck {
                test: vec!["NONE".into()],
                ..Healthcheck::default()
            }),
            ..ContainerConfig::default()
        }),
        rootfs: Some(RootFs {
            diff_ids: vec![L1.parse().unwrap()],
            ..RootFs::default()
        }),
        history: vec![History {
            created_by: "/bin/sh -c #(nop)  CMD [\"sh\"]".into(),
            empty_layer: true,
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    let out = String::from_utf8(cfg.to_canonical_json().unwrap()).unwrap();
    assert_eq!(
        out,
        format!(
            r#"{{"architecture":"amd64","config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"Healthcheck":{{"Test":["NONE"]}}}},"history":[{{"created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}}],"os":"linux","rootfs":{{"type":"layers","diff_ids":["{L1}"]}}}}"#
        )
    );
    assert_eq!(ImageConfig::from_slice(out.as_bytes()).unwrap(), cfg);

    // Nothing set at all: Go still writes architecture, os (no omitempty).
    let empty = ImageConfig::default().to_canonical_json().unwrap();
    assert_eq!(empty, br#"{"architecture":"","os":""}"#);
    let empty_rootfs = ImageConfig {
        rootfs: Some(RootFs::default()),
        ..ImageConfig::default()
    };
    assert!(String::from_utf8(empty_rootfs.to_canonical_json().unwrap())
        .unwrap()
        .contains(r#""rootfs":{"type":"layers","diff_ids":[]}"#));
}

/// A config as the classic (pre-BuildKit) Docker builder wrote it: Go
/// struct order, `null`s, `container_config`, `docker_version`.
const LEGACY: &str = r##"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Image":"sha256:9a7e1a4c9f2d1b1a1b1c1d1e1f1a1b1c1d1e1f1a1b1c1d1e1f1a1b1c1d1e1f1a","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{}},"container":"a1b2c3","container_config":{"Hostname":"a1b2c3","Cmd":["/bin/sh","-c","#(nop) ","CMD [\"sh\"]"],"Labels":{}},"created":"2023-05-19T20:19:22.751398522Z","docker_version":"20.10.23","history":[{"created":"2023-05-19T20:19:22.642507645Z","created_by":"/bin/sh -c #(nop) ADD file:x in / "},{"created":"2023-05-19T20:19:22.751398522Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"]}}"##;

#[test]
fn legacy_config_parses_and_keeps_unknown_fields() {
    let cfg = ImageConfig::from_slice(LEGACY.as_bytes()).unwrap();
    let c = cfg.config.as_ref().unwrap();
    assert_eq!(c.cmd, ["sh"]);
    assert!(c.entrypoint.is_empty() && c.volumes.is_empty() && c.on_build.is_empty());
    assert_eq!(c.extra["Hostname"], "");
    assert_eq!(c.extra["AttachStdin"], false);
    assert!(c.extra.contains_key("Image"));
    assert_eq!(cfg.extra["docker_version"], "20.10.23");
    assert_eq!(cfg.extra["container_config"]["Hostname"], "a1b2c3");

    // Re-serialised, every unknown field survives with its value; only the
    // empty typed fields (nulls, `{}`) are dropped, as Docker omits them.
    let out = cfg.to_canonical_json().unwrap();
    let before: Value = serde_json::from_str(LEGACY).unwrap();
    let after: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(after["container_config"], before["container_config"]);
    assert_eq!(after["docker_version"], before["docker_version"]);
    assert_eq!(after["config"]["Image"], before["config"]["Image"]);
    assert_eq!(after["config"]["Hostname"], "");
    assert!(after["config"].get("Volumes").is_none());
    assert!(after["config"].get("Labels").is_none());
    assert_eq!(after["history"], before["history"]);
    assert_eq!(after["rootfs"], before["rootfs"]);
    // Stable: a second round trip changes nothing.
    let again = ImageConfig::from_slice(&out).unwrap();
    assert_eq!(again.to_canonical_json().unwrap(), out);
    assert_eq!(again.image_id().unwrap(), cfg.image_id().unwrap());
}

#[test]
fn string_cmd_and_entrypoint_are_accepted() {
    let cfg = ImageConfig::from_slice(
        br#"{"architecture":"amd64","os":"linux","config":{"Cmd":"sh","Entrypoint":["/init"]}}"#,
    )
    .unwrap();
    let c = cfg.config.unwrap();
    assert_eq!(c.cmd, ["sh"]);
    assert_eq!(c.entrypoint, ["/init"]);
}

#[test]
fn bad_configs_are_errors_not_panics() {
    for bad in [
        &b""[..],
        b"null",
        b"[]",
        b"{",
        br#"{"rootfs":{"type":"layers","diff_ids":["sha256:nothex"]}}"#,
        br#"{"rootfs":{"diff_ids":[]}}"#,
        br#"{"config":{"Cmd":42}}"#,
        br#"{"config":{"ExposedPorts":["80/tcp"]}}"#,
        br#"{"config":{"Healthcheck":{"Interval":"30s"}}}"#,
        br#"{"history":[{"empty_layer":"yes"}]}"#,
    ] {
        let err = ImageConfig::from_slice(bad).unwrap_err();
        assert_eq!(err.kind(), berth_oci::ErrorKind::InvalidArgument);
    }
}

#[test]
fn go_escapes_in_output() {
    let mut labels = BTreeMap::new();
    labels.insert("a".to_string(), "<b> & \u{2028}".to_string());
    let cfg = ImageConfig {
        config: Some(ContainerConfig {
            labels,
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    };
    let out = String::from_utf8(cfg.to_canonical_json().unwrap()).unwrap();
    assert!(
        out.contains(r#""a":"\u003cb\u003e \u0026 \u2028""#),
        "{out}"
    );
}
