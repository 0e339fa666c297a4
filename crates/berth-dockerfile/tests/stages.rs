//! Build stages, ARG scoping and which arguments expand (Docker's documented
//! behaviour: https://docs.docker.com/reference/dockerfile/#scope).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use berth_dockerfile::instructions::{Command, CommandLine};
use berth_dockerfile::parse;
use berth_dockerfile::stages::{plan, platform_args, ExpandedStage, Plan, StageRef};

fn build(source: &str, args: &[(&str, &str)]) -> (Plan, Vec<ExpandedStage>) {
    let df = parse(source.as_bytes()).unwrap();
    let plan = plan(&df).unwrap();
    let build_args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let meta = plan
        .meta_env(&build_args, &platform_args("linux", "amd64", ""))
        .unwrap();
    let stages = plan
        .stages
        .iter()
        .map(|s| plan.expand_stage(s, &build_args, &meta).unwrap())
        .collect();
    (plan, stages)
}

fn env_of(stage: &ExpandedStage, key: &str) -> Option<String> {
    stage.env.get(key).map(str::to_string)
}

#[test]
fn global_args_reach_from_but_not_the_stage_unless_redeclared() {
    let src = "ARG VERSION=1.0\nARG BASE=alpine:${VERSION}\nFROM $BASE\nRUN echo\nLABEL v=$VERSION\nFROM busybox\nARG VERSION\nLABEL v=$VERSION\n";
    let (_, stages) = build(src, &[]);
    assert_eq!(stages[0].base, "alpine:1.0");
    let label = |s: &ExpandedStage| {
        s.commands
            .iter()
            .find_map(|(c, _)| match c {
                Command::Label(kv) => Some(kv[0].value.clone()),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(
        label(&stages[0]),
        "",
        "global ARG is not in scope in the stage"
    );
    assert_eq!(
        label(&stages[1]),
        "1.0",
        "redeclared ARG takes the global value"
    );
    let (_, stages) = build(src, &[("VERSION", "2.0")]);
    assert_eq!(stages[0].base, "alpine:2.0");
    assert_eq!(label(&stages[1]), "2.0");
}

#[test]
fn build_args_override_stage_defaults() {
    let src = "FROM a\nARG MODE=dev\nENV RUN_MODE=$MODE\n";
    let (_, stages) = build(src, &[]);
    assert_eq!(env_of(&stages[0], "RUN_MODE").as_deref(), Some("dev"));
    let (_, stages) = build(src, &[("MODE", "prod")]);
    assert_eq!(env_of(&stages[0], "RUN_MODE").as_deref(), Some("prod"));
}

#[test]
fn env_in_one_instruction_sees_the_values_before_it() {
    // Docker's documentation: `ENV abc=bye def=$abc` gives def=hello.
    let (_, stages) = build(
        "FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n",
        &[],
    );
    assert_eq!(env_of(&stages[0], "def").as_deref(), Some("hello"));
    assert_eq!(env_of(&stages[0], "ghi").as_deref(), Some("bye"));
}

#[test]
fn which_instructions_expand() {
    let src = "FROM a\nENV D=/data P=8080 U=app\nWORKDIR $D\nCOPY --chown=$U ${D}/x $D/y\nEXPOSE $P\nVOLUME $D\nUSER $U\nSTOPSIGNAL SIG$U\nRUN echo $D\nCMD echo $D\n";
    let (_, stages) = build(src, &[]);
    let mut seen = 0;
    for (command, _) in &stages[0].commands {
        match command {
            Command::Workdir(w) => assert_eq!(w.text, "/data"),
            Command::Copy(c) => {
                assert_eq!(c.paths.sources[0].text, "/data/x");
                assert_eq!(c.paths.dest.text, "/data/y");
                assert_eq!(c.chown.as_deref(), Some("app"));
            }
            Command::Expose(p) => assert_eq!(p[0].text, "8080"),
            Command::Volume(v) => assert_eq!(v[0].text, "/data"),
            Command::User(u) => assert_eq!(u.text, "app"),
            Command::StopSignal(s) => assert_eq!(s.text, "SIGapp"),
            Command::Run(r) => assert_eq!(r.command, CommandLine::Shell("echo $D".into())),
            Command::Cmd(c) => assert_eq!(c, &CommandLine::Shell("echo $D".into())),
            Command::Env(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
fn platform_args_are_global_and_need_declaring_in_stages() {
    let src = "FROM base-$TARGETARCH\nLABEL a=$TARGETARCH\nARG TARGETARCH\nLABEL b=$TARGETARCH\n";
    let (_, stages) = build(src, &[]);
    assert_eq!(stages[0].base, "base-amd64");
    let labels: Vec<String> = stages[0]
        .commands
        .iter()
        .filter_map(|(c, _)| match c {
            Command::Label(kv) => Some(kv[0].value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(labels, ["", "amd64"]);
}

#[test]
fn stage_names_indices_and_targets() {
    let src = "FROM alpine AS Builder\nRUN make\nFROM builder AS test\nFROM scratch\nCOPY --from=builder /out /\nCOPY --from=1 /x /\n";
    let (plan, stages) = build(src, &[]);
    assert_eq!(plan.stages.len(), 3);
    assert_eq!(plan.stages[0].name.as_deref(), Some("builder"));
    assert_eq!(plan.find_stage("BUILDER"), Some(0));
    assert_eq!(plan.find_stage("1"), Some(1));
    assert_eq!(plan.find_stage("7"), None);
    assert_eq!(plan.resolve("builder", 1, true), StageRef::Stage(0));
    assert_eq!(
        plan.resolve("test", 0, true),
        StageRef::Image("test".into())
    );
    assert_eq!(plan.target(None), Ok(2));
    assert_eq!(plan.target(Some("test")), Ok(1));
    assert!(plan
        .target(Some("nope"))
        .unwrap_err()
        .contains("could not be found"));
    assert_eq!(plan.dependencies(&stages[1]), vec![0]);
    assert_eq!(plan.dependencies(&stages[2]), vec![0, 1]);
    assert_eq!(Plan::find_cycle(&[vec![1], vec![0]]), Some(0));
    assert_eq!(Plan::find_cycle(&[vec![], vec![0], vec![0, 1]]), None);
}

#[test]
fn heredoc_bodies_become_inline_files() {
    let src = "FROM a\nCOPY <<-EOT /etc/motd\n\thello $USER\nEOT\nRUN <<'EOF'\necho $HOME\nEOF\n";
    let (_, stages) = build(src, &[]);
    match &stages[0].commands[0].0 {
        Command::Copy(c) => {
            assert_eq!(c.paths.inline[0].data, "hello $USER\n");
            assert!(c.paths.inline[0].expand);
            assert!(c.paths.sources.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match &stages[0].commands[1].0 {
        Command::Run(r) => {
            assert_eq!(r.files[0].data, "echo $HOME\n");
            assert!(!r.files[0].expand);
        }
        other => panic!("{other:?}"),
    }
}
