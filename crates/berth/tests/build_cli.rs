//! `berth build` end to end on a real kernel (overlay, namespaces,
//! libcontainer): per-instruction semantics checked against Docker's
//! documented behaviour, the cache matrix, hostile contexts,
//! reproducibility and the CLI's contexts and flags.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::build::*;
use common::*;

use std::path::Path;

use serde_json::Value;

struct Built {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn build_in(f: &Fixture, ctx: &Path, args: &[&str]) -> Built {
    let mut all = vec!["build", "--progress=plain"];
    all.extend_from_slice(args);
    let ctx_s = ctx.to_str().unwrap().to_string();
    all.push(&ctx_s);
    let out = f.berth(&all);
    Built {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: stderr(&out),
        code: out.status.code(),
    }
}

fn build_ok(f: &Fixture, ctx: &Path, args: &[&str]) -> Built {
    let b = build_in(f, ctx, args);
    assert_eq!(b.code, Some(0), "build failed:\n{}", b.stderr);
    b
}

fn inspect(f: &Fixture, image: &str) -> Value {
    let out = f.ok(&["inspect", image]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

#[test]
fn seed_workflow_builds_an_image_that_runs() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "seed",
        &format!(
            "FROM {BASE}\nENV APP_ENV=prod\nCOPY . /usr/src/app\nWORKDIR /usr/src/app\n\
             RUN echo \"built for $APP_ENV\" > built.txt && cat requirements.txt\n\
             EXPOSE 5000\nCMD cat built.txt manage.py\n"
        ),
        &[
            ("requirements.txt", "django\n"),
            ("manage.py", "print('hi')\n"),
            (".dockerignore", "secret.txt\n"),
            ("secret.txt", "nope\n"),
        ],
    );
    let b = build_ok(&f, &ctx, &["-t", "clinic", "-t", "clinic:2"]);
    assert!(
        b.stderr.contains("[2/4] COPY . /usr/src/app"),
        "{}",
        b.stderr
    );
    assert!(
        b.stderr.contains(" django"),
        "RUN output shown: {}",
        b.stderr
    );
    let out = f.ok(&["run", "--rm", "clinic"]);
    assert_eq!(out, "built for prod\nprint('hi')\n");
    assert_eq!(
        sh(&f, "clinic:2", "ls /usr/src/app"),
        "Dockerfile\nbuilt.txt\nmanage.py\nrequirements.txt\n"
    );

    let image = inspect(&f, "clinic");
    let config = &image["Config"];
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "cat built.txt manage.py"])
    );
    assert_eq!(config["WorkingDir"], "/usr/src/app");
    assert_eq!(config["ExposedPorts"], serde_json::json!({"5000/tcp": {}}));
    let env: Vec<String> = serde_json::from_value(config["Env"].clone()).unwrap();
    assert!(env.contains(&"APP_ENV=prod".to_string()), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    // Base layer + COPY + RUN (WORKDIR found its directory: no change, no layer).
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 3);

    let history = f.ok(&["history", "--no-trunc", "clinic"]);
    let created_by: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|l| {
            l.split("   ")
                .filter(|c| !c.is_empty())
                .nth(2)
                .unwrap_or("")
                .trim()
        })
        .collect();
    assert_eq!(
        created_by[0], "CMD [\"/bin/sh\",\"-c\",\"cat built.txt manage.py\"]",
        "{history}"
    );
    assert_eq!(created_by[1], "EXPOSE map[5000/tcp:{}]", "{history}");
    assert!(
        created_by[2].starts_with("RUN /bin/sh -c echo \"built for $APP_ENV\""),
        "{history}"
    );
    assert!(created_by[2].ends_with("# buildkit"), "{history}");
    assert_eq!(created_by[3], "WORKDIR /usr/src/app", "{history}");
    assert_eq!(created_by[4], "COPY . /usr/src/app # buildkit", "{history}");
    assert_eq!(created_by[5], "ENV APP_ENV=prod", "{history}");
    assert_nothing_left(&f);
}

#[test]
fn instructions_follow_docker_semantics() {
    let f = build_fixture();
    let dockerfile = format!(
        r#"ARG GLOBAL=g1
FROM {BASE}
ARG GLOBAL
ARG LOCAL=l1
ENV PATH=/opt/bin:$PATH ONE=1
ENV TWO="$ONE and two"
RUN echo "$GLOBAL $LOCAL $TWO" > /args.txt
WORKDIR app
WORKDIR sub
RUN pwd > /pwd.txt
USER nobody
RUN id -un > /tmp/user.txt
USER root
SHELL ["/bin/sh", "-ec"]
RUN echo "$0" > /shell.txt
CMD ["run"]
ENTRYPOINT ["/bin/echo"]
LABEL version="1.0" maintainer=me
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD true
EXPOSE 80 8000-8001/udp
"#
    );
    let ctx = context(&f, "semantics", &dockerfile, &[]);
    build_ok(
        &f,
        &ctx,
        &[
            "-t",
            "sem",
            "--build-arg",
            "LOCAL=override",
            "--label",
            "extra=yes",
        ],
    );
    assert_eq!(sh(&f, "sem", "cat /args.txt"), "g1 override 1 and two\n");
    assert_eq!(sh(&f, "sem", "cat /pwd.txt"), "/app/sub\n");
    assert_eq!(sh(&f, "sem", "cat /tmp/user.txt"), "nobody\n");
    assert_eq!(sh(&f, "sem", "cat /shell.txt"), "/bin/sh\n");
    let c = inspect(&f, "sem")["Config"].clone();
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    assert!(
        env[0].starts_with("PATH=/opt/bin:/usr/local/sbin"),
        "{env:?}"
    );
    assert!(env.contains(&"TWO=1 and two".to_string()), "{env:?}");
    assert!(
        !env.iter()
            .any(|e| e.starts_with("LOCAL=") || e.starts_with("GLOBAL=")),
        "ARGs are not persisted: {env:?}"
    );
    // CMD set in this stage survives a later ENTRYPOINT.
    assert_eq!(c["Cmd"], serde_json::json!(["run"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/echo"]));
    assert_eq!(c["WorkingDir"], "/app/sub");
    assert_eq!(c["User"], "root");
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(
        c["Labels"],
        serde_json::json!({"version": "1.0", "maintainer": "me", "extra": "yes"})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "8000/udp": {}, "8001/udp": {}})
    );
    assert_eq!(f.ok(&["run", "--rm", "sem"]), "run\n");

    // ENTRYPOINT resets a CMD inherited from the base.
    let ctx = context(
        &f,
        "reset",
        "FROM sem\nENTRYPOINT [\"/bin/echo\", \"only\"]\n",
        &[],
    );
    build_ok(&f, &ctx, &["-t", "reset"]);
    let c = inspect(&f, "reset")["Config"].clone();
    assert!(
        c["Cmd"].is_null() || c["Cmd"] == serde_json::json!([]),
        "{c}"
    );
    assert_eq!(f.ok(&["run", "--rm", "reset"]), "only\n");
}

#[test]
fn multi_stage_copy_from_whiteouts_and_target() {
    let f = build_fixture();
    let dockerfile = format!(
        "FROM {BASE} AS build\nRUN mkdir /out && echo artifact > /out/a && echo x > /out/b\n\
         RUN rm /bin/vi /out/b && rm -r /etc/init.d 2>/dev/null; true\n\
         FROM {BASE} AS unused\nRUN exit 9\n\
         FROM scratch AS final\nCOPY --from=build /out/ /dist/\nCOPY --from=0 /bin/busybox /bin/busybox\n"
    );
    let ctx = context(&f, "multi", &dockerfile, &[]);
    let b = build_ok(&f, &ctx, &["-t", "final"]);
    assert!(
        !b.stderr.contains("exit 9"),
        "unused stage skipped: {}",
        b.stderr
    );
    let out = f.ok(&["run", "--rm", "final", "/bin/busybox", "ls", "/dist"]);
    assert_eq!(out, "a\n");
    build_ok(&f, &ctx, &["--target", "build", "-t", "stage1"]);
    assert_eq!(
        sh(&f, "stage1", "ls /out; test -e /bin/vi || echo gone"),
        "a\ngone\n"
    );
    // The rm step's layer holds whiteouts.
    let layers = inspect(&f, "stage1")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 3);
    let save = f.dir.path().join("stage1.tar");
    f.ok(&["save", "-o", save.to_str().unwrap(), "stage1"]);
    let listing = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {0} && mkdir -p x && tar -xf {1} -C x && for b in x/blobs/sha256/*; do tar -tzf $b 2>/dev/null; done",
            f.dir.path().display(),
            save.display()
        ))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("bin/.wh.vi"), "{listing}");
    assert!(listing.contains("out/.wh.b"), "{listing}");
    assert_nothing_left(&f);
}

#[test]
fn copy_and_add_rules() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "copy",
        &format!(
            "FROM {BASE}\n\
             COPY a.txt /file-as-named\n\
             COPY a.txt b.txt /dir/\n\
             COPY *.txt /glob/\n\
             COPY tree /tree-contents\n\
             COPY --chown=nobody:nogroup --chmod=640 a.txt /owned\n\
             COPY --chown=1234 a.txt /numeric\n\
             COPY --exclude=*.log tree /filtered/\n\
             ADD archive.tar.gz /unpacked/\n\
             ADD plain.tar /plain/\n\
             RUN ln -s /etc /etc-link\n\
             COPY a.txt /etc-link/via-link.txt\n"
        ),
        &[
            ("a.txt", "A\n"),
            ("b.txt", "B\n"),
            ("tree/x", "X\n"),
            ("tree/debug.log", "log\n"),
            ("tree/sub/y", "Y\n"),
        ],
    );
    let tarball = |name: &str, gzip: bool| {
        let src = f.dir.path().join("arch-src");
        std::fs::create_dir_all(src.join("pkg")).unwrap();
        std::fs::write(src.join("pkg/inside"), "in\n").unwrap();
        let flag = if gzip { "-czf" } else { "-cf" };
        let status = std::process::Command::new("tar")
            .args([
                "-C",
                src.to_str().unwrap(),
                flag,
                ctx.join(name).to_str().unwrap(),
                "pkg",
            ])
            .status()
            .unwrap();
        assert!(status.success());
    };
    tarball("archive.tar.gz", true);
    tarball("plain.tar", false);
    build_ok(&f, &ctx, &["-t", "copies"]);
    let out = sh(
        &f,
        "copies",
        "cat /file-as-named; ls /dir /glob /tree-contents /tree-contents/sub; ls /filtered; \
         stat -c '%U:%G %a' /owned; stat -c '%u:%g' /numeric; \
         cat /unpacked/pkg/inside /plain/pkg/inside /etc/via-link.txt",
    );
    assert_eq!(
        out,
        "A\n/dir:\na.txt\nb.txt\n\n/glob:\na.txt\nb.txt\n\n/tree-contents:\ndebug.log\nsub\nx\n\n\
         /tree-contents/sub:\ny\nsub\nx\n\
         nobody:nogroup 640\n1234:1234\nin\nin\nA\n",
    );

    // Several sources need a directory destination.
    let ctx = context(
        &f,
        "copy-bad",
        &format!("FROM {BASE}\nCOPY a.txt b.txt /notdir\n"),
        &[("a.txt", "a"), ("b.txt", "b")],
    );
    let b = build_in(&f, &ctx, &[]);
    assert_eq!(b.code, Some(1));
    assert!(
        b.stderr.contains("must be a directory and end with a /"),
        "{}",
        b.stderr
    );
    let ctx = context(
        &f,
        "copy-missing",
        &format!("FROM {BASE}\nCOPY nothere /x\n"),
        &[],
    );
    let b = build_in(&f, &ctx, &[]);
    assert_eq!(b.code, Some(1));
    assert!(b.stderr.contains("\"/nothere\": not found"), "{}", b.stderr);
}

#[test]
fn cache_hits_and_misses() {
    let f = build_fixture();
    let dockerfile = format!(
        "FROM {BASE}\nARG V=1\nCOPY app.txt /app/\nRUN cat /app/app.txt > /copy && echo $V >> /copy\nCMD [\"cat\", \"/copy\"]\n"
    );
    let ctx = context(&f, "cache", &dockerfile, &[("app.txt", "one\n")]);
    let first = build_ok(&f, &ctx, &["-t", "c"]);
    assert_eq!(cached_count(&first.stderr), 0);
    let id = inspect(&f, "c")["Id"].clone();

    // Identical rebuild: every step cached, same image.
    let again = build_ok(&f, &ctx, &["-t", "c"]);
    assert_eq!(cached_count(&again.stderr), 2, "{}", again.stderr);
    assert_eq!(inspect(&f, "c")["Id"], id);

    // mtime only: still cached (content and metadata decide).
    let file = ctx.join("app.txt");
    let status = std::process::Command::new("touch")
        .args(["-d", "2001-01-01", file.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(cached_count(&build_ok(&f, &ctx, &[]).stderr), 2);

    // Metadata change (mode): COPY and RUN miss.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let b = build_ok(&f, &ctx, &["--debug-cache"]);
    assert_eq!(cached_count(&b.stderr), 0, "{}", b.stderr);
    assert!(
        b.stderr.contains("cache miss: changed: the source files"),
        "{}",
        b.stderr
    );
    assert_eq!(cached_count(&build_ok(&f, &ctx, &[]).stderr), 2);

    // Content change: miss, and the new content lands.
    std::fs::write(&file, "two\n").unwrap();
    let b = build_ok(&f, &ctx, &["-t", "c"]);
    assert_eq!(cached_count(&b.stderr), 0, "{}", b.stderr);
    assert_eq!(f.ok(&["run", "--rm", "c"]), "two\n1\n");

    // Build-arg change: COPY hits, RUN misses.
    let b = build_ok(
        &f,
        &ctx,
        &["-t", "c", "--build-arg", "V=2", "--debug-cache"],
    );
    assert_eq!(cached_count(&b.stderr), 1, "{}", b.stderr);
    assert!(b.stderr.contains("changed: build args"), "{}", b.stderr);
    assert_eq!(f.ok(&["run", "--rm", "c"]), "two\n2\n");

    // Instruction change: that step misses.
    std::fs::write(
        ctx.join("Dockerfile"),
        dockerfile.replace("echo $V", "echo V=$V"),
    )
    .unwrap();
    let b = build_ok(&f, &ctx, &[]);
    assert_eq!(cached_count(&b.stderr), 1, "{}", b.stderr);
    std::fs::write(ctx.join("Dockerfile"), &dockerfile).unwrap();

    // Base change: everything misses.
    let base = context(
        &f,
        "newbase",
        &format!("FROM {BASE}\nRUN echo changed > /base-changed\n"),
        &[],
    );
    build_ok(&f, &base, &["-t", BASE]);
    let b = build_ok(&f, &ctx, &["--debug-cache"]);
    assert_eq!(cached_count(&b.stderr), 0, "{}", b.stderr);
    assert!(
        b.stderr.contains("changed: the parent layer"),
        "{}",
        b.stderr
    );

    // --no-cache reuses nothing.
    let b = build_ok(&f, &ctx, &["--no-cache"]);
    assert_eq!(cached_count(&b.stderr), 0, "{}", b.stderr);

    // The build cache outlives its images, as Docker's does: removing every
    // image keeps what the records hold (`builder prune` drops it, see
    // builder_cli.rs).
    f.ok(&["rmi", "c"]);
    f.ok(&["image", "prune", "-a", "-f"]);
    f.ok(&[
        "import",
        busybox_rootfs(f.dir.path()).to_str().unwrap(),
        BASE,
    ]);
    let b = build_ok(&f, &ctx, &["-t", "c"]);
    assert_eq!(cached_count(&b.stderr), 2, "{}", b.stderr);
    assert_eq!(f.ok(&["run", "--rm", "c"]), "two\n1\n");
    assert_nothing_left(&f);
}

#[test]
fn reproducible_with_source_date_epoch() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let f = Fixture::new();
        let rootfs = busybox_rootfs(f.dir.path());
        let import = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(f.root())
            .args(["import", rootfs.to_str().unwrap(), BASE])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(import.status.success(), "{}", stderr(&import));
        let ctx = context(
            &f,
            "repro",
            &format!("FROM {BASE}\nCOPY f /f\nRUN echo hi > /g && mkdir -p /var/x\nENV A=b\n"),
            &[("f", "content\n")],
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(f.root())
            .args(["build", "-q", "--no-cache", ctx.to_str().unwrap()])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn failures_are_reported_with_the_step() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "fail",
        &format!("FROM {BASE}\nRUN echo before; echo oops >&2; exit 3\n"),
        &[],
    );
    let b = build_in(&f, &ctx, &[]);
    assert_eq!(b.code, Some(1));
    assert!(
        b.stderr.contains(
            "process \"/bin/sh -c echo before; echo oops >&2; exit 3\" did not complete successfully: exit code: 3"
        ),
        "{}",
        b.stderr
    );
    assert!(b.stderr.contains("oops"), "{}", b.stderr);

    // A syntax error anywhere: nothing runs.
    let ctx = context(
        &f,
        "syntax",
        &format!("FROM {BASE}\nRUN touch /ran\nFROOM x\n"),
        &[],
    );
    let b = build_in(&f, &ctx, &[]);
    assert_eq!(b.code, Some(1));
    assert!(
        b.stderr
            .contains("Dockerfile:3:1: unknown instruction: FROOM"),
        "{}",
        b.stderr
    );
    assert!(b.stderr.contains("FROOM x"), "{}", b.stderr);
    assert!(!b.stderr.contains("RUN touch"), "{}", b.stderr);

    let ctx = context(&f, "nobase", "FROM not-here:3\n", &[]);
    let b = build_in(&f, &ctx, &[]);
    assert_eq!(b.code, Some(1));
    assert!(
        b.stderr
            .contains("\"not-here:3\" is not in the local store"),
        "{}",
        b.stderr
    );

    let b = build_in(&f, &ctx, &["--platform", "linux/arm64"]);
    assert_eq!(b.code, Some(1));
    assert!(
        b.stderr.contains("platform linux/arm64 is not supported"),
        "{}",
        b.stderr
    );
    assert_nothing_left(&f);
}

#[test]
fn hostile_contexts_stay_inside() {
    let f = build_fixture();
    let ctx = context(&f, "hostile", &format!("FROM {BASE}\nCOPY . /ctx/\n"), &[]);
    std::os::unix::fs::symlink("/etc/shadow", ctx.join("shadow")).unwrap();
    build_ok(&f, &ctx, &["-t", "hostile"]);
    assert_eq!(sh(&f, "hostile", "readlink /ctx/shadow"), "/etc/shadow\n");

    let ctx = context(&f, "parent", &format!("FROM {BASE}\nCOPY ../x /x\n"), &[]);
    std::fs::write(f.dir.path().join("x"), "outside").unwrap();
    let b = build_in(&f, &ctx, &[]);
    assert_eq!(b.code, Some(1));
    assert!(
        b.stderr
            .contains("forbidden path outside the build context"),
        "{}",
        b.stderr
    );

    let ctx = f.dir.path().join("linked");
    std::fs::create_dir_all(&ctx).unwrap();
    let outside = f.dir.path().join("outside.Dockerfile");
    std::fs::write(&outside, format!("FROM {BASE}\n")).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.join("Dockerfile")).unwrap();
    let b = build_in(&f, &ctx, &[]);
    assert_eq!(b.code, Some(1));
    assert!(
        b.stderr.contains("leads out of the build context"),
        "{}",
        b.stderr
    );
}

#[test]
fn stdin_contexts_and_output_flags() {
    let f = build_fixture();
    // A Dockerfile alone on stdin.
    let out = f.berth_stdin(
        &["build", "-q", "-t", "fromstdin", "-"],
        Some(format!("FROM {BASE}\nRUN echo piped > /p\n").as_bytes()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sh(&f, "fromstdin", "cat /p"), "piped\n");

    // A tar context on stdin.
    let ctx = context(
        &f,
        "tarctx",
        "FROM scratch\nCOPY data /data\n",
        &[("data", "d\n")],
    );
    let tar = f.dir.path().join("ctx.tar");
    tar_dir(&ctx, &tar);
    let out = f.berth_stdin(
        &["build", "-q", "-t", "fromtar", "-"],
        Some(&std::fs::read(&tar).unwrap()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        inspect(&f, "fromtar")["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // -f from anywhere, with a context directory; --iidfile.
    let df = f.dir.path().join("other.Dockerfile");
    std::fs::write(&df, "FROM scratch\nCOPY data /renamed\n").unwrap();
    let iid = f.dir.path().join("iid");
    let b = build_ok(
        &f,
        &ctx,
        &[
            "-f",
            df.to_str().unwrap(),
            "--iidfile",
            iid.to_str().unwrap(),
        ],
    );
    assert!(
        b.stdout.is_empty(),
        "only -q prints to stdout: {}",
        b.stdout
    );
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:"));
    assert!(f.ok(&["images", "-q", "--no-trunc"]).contains(&id));
}

/// Pids of processes whose cgroup is one of this store's step containers.
fn step_processes(f: &Fixture) -> Vec<i32> {
    let ids: Vec<String> = std::fs::read_dir(f.root().join("steps"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        // The command itself, past libcontainer's set-up processes (which
        // hold copies of berth's descriptors until they exec).
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ids.iter().any(|id| cgroup.contains(id.as_str())) && cmdline.starts_with(b"sleep\0") {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_killed_build_leaves_a_clean_store() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "killed",
        &format!("FROM {BASE}\nCOPY f /f\nRUN sleep 3597\n"),
        &[("f", "x")],
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(f.root())
        .args(["build", "-q", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed even when an assertion fails, so no build outlives the test.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while step_processes(&f).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.0.kill().unwrap(); // SIGKILL: no cleanup by berth itself
    child.0.wait().unwrap();
    // The next command opening the store stops and removes what is left.
    f.ok(&["images", "-q"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        if !mounts.contains(&f.root().display().to_string()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a mount is left");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_nothing_left(&f);
    // The build runs again from the cached COPY.
    let b = build_ok(
        &f,
        &context(
            &f,
            "killed",
            &format!("FROM {BASE}\nCOPY f /f\nRUN true\n"),
            &[("f", "x")],
        ),
        &[],
    );
    assert_eq!(cached_count(&b.stderr), 1, "{}", b.stderr);
}

#[test]
fn onbuild_triggers_and_run_networks() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "parent",
        &format!("FROM {BASE}\nONBUILD RUN echo triggered > /trig\nONBUILD ENV T=1\n"),
        &[],
    );
    build_ok(&f, &ctx, &["-t", "parent"]);
    let c = inspect(&f, "parent")["Config"].clone();
    assert_eq!(
        c["OnBuild"],
        serde_json::json!(["RUN echo triggered > /trig", "ENV T=1"])
    );
    let ctx = context(
        &f,
        "child",
        "FROM parent\nRUN --network=none ls /sys/class/net > /none.txt\nRUN ls /sys/class/net > /bridge.txt\nRUN --network=host ls /sys/class/net > /host.txt\nRUN ip -4 -o addr show eth0 > /addr.txt\n",
        &[],
    );
    let b = build_ok(&f, &ctx, &["-t", "child"]);
    assert!(
        b.stderr.contains("ONBUILD RUN echo triggered"),
        "{}",
        b.stderr
    );
    assert_eq!(sh(&f, "child", "cat /trig; echo $T"), "triggered\n1\n");
    let c = inspect(&f, "child")["Config"].clone();
    assert!(
        c["OnBuild"].is_null() || c["OnBuild"] == serde_json::json!([]),
        "{c}"
    );
    assert_eq!(sh(&f, "child", "cat /none.txt"), "lo\n");
    // The default is the default bridge: eth0 with an address of berth0's
    // subnet; --network=host sees the namespace berth runs in.
    assert_eq!(sh(&f, "child", "cat /bridge.txt"), "eth0\nlo\n");
    assert!(sh(&f, "child", "cat /addr.txt").contains("inet 172.29."));
    // (berth0 is only in the fixture's namespace; the set of veths there
    // changes as step namespaces go, which the kernel does asynchronously.)
    let host: Vec<String> = sh(&f, "child", "cat /host.txt")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        host.iter().any(|l| l == "berth0") && host.iter().any(|l| l == "lo"),
        "{host:?}"
    );
    assert!(!host.iter().any(|l| l == "eth0"), "{host:?}");

    // --network=none for the whole build.
    let ctx = context(
        &f,
        "nonet",
        &format!("FROM {BASE}\nRUN ls /sys/class/net > /n.txt\n"),
        &[],
    );
    build_ok(&f, &ctx, &["-t", "nonet", "--network", "none"]);
    assert_eq!(sh(&f, "nonet", "cat /n.txt"), "lo\n");
}

#[test]
fn heredocs_parents_and_maintainer() {
    let f = build_fixture();
    let dockerfile = format!(
        "FROM {BASE}\nMAINTAINER someone@example.com\n\
         RUN <<EOF\necho plain > /plain.out\nEOF\n\
         RUN <<EOF\n#!/bin/busybox tee /tee.out\nthis text is not a shell script\nEOF\n\
         RUN cat > /cat.out <<EOT\nfrom cat\nEOT\n\
         COPY --parents a/b/c.txt a/d.txt /p/\n"
    );
    let ctx = context(
        &f,
        "heredocs",
        &dockerfile,
        &[("a/b/c.txt", "c\n"), ("a/d.txt", "d\n")],
    );
    build_ok(&f, &ctx, &["-t", "hd"]);
    assert_eq!(
        sh(&f, "hd", "cat /plain.out /tee.out /cat.out; find /p -type f | sort"),
        "plain\n#!/bin/busybox tee /tee.out\nthis text is not a shell script\nfrom cat\n/p/a/b/c.txt\n/p/a/d.txt\n"
    );
    assert_eq!(inspect(&f, "hd")["Author"], "someone@example.com");
}

/// Index of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[test]
fn independent_stages_build_in_parallel() {
    let f = build_fixture();
    // RUN steps start with default signal dispositions (yes | head ends).
    let dockerfile = format!(
        "FROM {BASE} AS left\nRUN sleep 2 && yes | head -c 8 >/dev/null && echo left > /l\n\
         FROM {BASE} AS right\nRUN sleep 2 && echo right > /r\n\
         FROM {BASE}\nCOPY --from=left /l /l\nCOPY --from=right /r /r\n"
    );
    let ctx = context(&f, "parallel", &dockerfile, &[]);
    let b = build_ok(&f, &ctx, &["-t", "both"]);
    // The left stage's RUN starts (in a worker) before the right one's
    // ends: they overlap.
    let left_run = line_of(&b.stderr, "[left 2/2] RUN");
    let right_run = line_of(&b.stderr, "[right 2/2] RUN");
    let first_done = b
        .stderr
        .lines()
        .enumerate()
        .skip(left_run.max(right_run))
        .find(|(_, l)| l.contains(" DONE "))
        .map(|(i, _)| i)
        .unwrap();
    assert!(left_run.max(right_run) < first_done, "{}", b.stderr);
    assert_eq!(sh(&f, "both", "cat /l /r"), "left\nright\n");
    // Workers share the cache: a rebuild reuses every step.
    let again = build_ok(&f, &ctx, &["-t", "both"]);
    assert_eq!(cached_count(&again.stderr), 4, "{}", again.stderr);

    // A failing worker fails the build, with its error shown.
    let failing = format!(
        "FROM {BASE} AS left\nRUN exit 3\n\
         FROM {BASE} AS right\nRUN sleep 1\n\
         FROM {BASE}\nCOPY --from=left / /l\nCOPY --from=right / /r\n"
    );
    let ctx = context(&f, "parallel-fail", &failing, &[]);
    let b = build_in(&f, &ctx, &["--no-cache"]);
    assert_eq!(b.code, Some(1), "{}", b.stderr);
    assert!(b.stderr.contains("exit code: 3"), "{}", b.stderr);
    assert_nothing_left(&f);
}
