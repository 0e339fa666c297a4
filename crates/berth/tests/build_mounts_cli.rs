//! `RUN --mount` and `berth build --secret` end to end (real overlay,
//! namespaces, libcontainer), against BuildKit's documented semantics:
//! cache mounts persist between builds and stay out of images and cache
//! keys; binds read the context (after `.dockerignore`) or another stage,
//! and their writes are discarded; secrets are readable during RUN and
//! land nowhere (layers, config, history, cache key, store); tmpfs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::build::*;
use common::*;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

fn build(f: &Fixture, ctx: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = f.command();
    cmd.args(["build", "--progress=plain"]).args(args).arg(ctx);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn build_ok(f: &Fixture, ctx: &Path, args: &[&str]) -> String {
    let out = build(f, ctx, args, &[]);
    assert!(out.status.success(), "build failed:\n{}", stderr(&out));
    stderr(&out)
}

/// The bytes of `data`, gunzipped when it is gzip.
fn plain(data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        data
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file below `dir` (gunzipped) that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8], found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            files_holding(&path, needle, found);
        } else if meta.is_file() && contains(&plain(std::fs::read(&path).unwrap()), needle) {
            found.push(path);
        }
    }
}

#[test]
fn cache_mounts_persist_between_builds_and_stay_out_of_images() {
    let f = build_fixture();
    let first = context(
        &f,
        "cache1",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=cache,target=/var/cache/app echo first > /var/cache/app/seen && echo one > /one\n"
        ),
        &[],
    );
    build_ok(&f, &first, &["-t", "cache1"]);
    // Another instruction (a cache miss) on the same cache ID sees it.
    let second = context(
        &f,
        "cache2",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=cache,target=/var/cache/app cat /var/cache/app/seen > /copied \
             && stat -c '%a %u %g' /var/cache/app > /perm\n\
             RUN --mount=type=cache,id=owned,target=/c,uid=65534,gid=65534,mode=0700,sharing=locked \
             stat -c '%a %u %g' /c > /owned && touch /c/mark\n\
             RUN --mount=type=cache,id=owned,target=/c,sharing=private,ro ls /c > /private\n"
        ),
        &[],
    );
    build_ok(&f, &second, &["-t", "cache2"]);
    assert_eq!(sh(&f, "cache2", "cat /copied /perm"), "first\n755 0 0\n");
    assert_eq!(
        sh(&f, "cache2", "cat /owned /private"),
        "700 65534 65534\nmark\n"
    );
    // Neither the cache's files nor the mount points are in the images.
    for image in ["cache1", "cache2"] {
        assert_eq!(
            sh(&f, image, "test ! -e /var && test ! -e /c && echo absent"),
            "absent\n"
        );
    }
    assert_eq!(sh(&f, "cache1", "cat /one"), "one\n");
    // The cache lives in the store, not in the cache key: a rebuild after
    // its content changed is cached.
    let data = f.root().join("build-mounts/%2Fvar%2Fcache%2Fapp/data");
    assert_eq!(
        std::fs::read_to_string(data.join("seen")).unwrap(),
        "first\n"
    );
    std::fs::write(data.join("seen"), "changed\n").unwrap();
    let again = build_ok(&f, &second, &["-t", "cache2"]);
    assert_eq!(cached_count(&again), 3, "{again}");
    assert_nothing_left(&f);
}

#[test]
fn bind_mounts_read_the_context_and_discard_writes() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "bind",
        &format!(
            "FROM {BASE}\nWORKDIR /work\n\
             RUN --mount=target=ctx cat ctx/hello.txt > /read \
             && (touch ctx/x 2>/dev/null && echo writable || echo read-only) > /ro\n\
             RUN --mount=type=bind,source=sub,target=/sub,rw echo scribble > /sub/new \
             && cat /sub/inner.txt /sub/new > /rw\n\
             RUN --mount=source=sub/inner.txt,target=/etc/inner.txt,rw echo more >> /etc/inner.txt \
             && cat /etc/inner.txt > /file-rw\n"
        ),
        &[
            ("hello.txt", "hello from the context\n"),
            ("sub/inner.txt", "inner\n"),
        ],
    );
    build_ok(&f, &ctx, &["-t", "bound"]);
    assert_eq!(
        sh(&f, "bound", "cat /read /ro /rw /file-rw"),
        "hello from the context\nread-only\ninner\nscribble\ninner\nmore\n"
    );
    assert_eq!(
        sh(
            &f,
            "bound",
            "test ! -e /work/ctx && test ! -e /sub && test ! -e /etc/inner.txt && ls /work | wc -l"
        ),
        "0\n"
    );
    assert!(!ctx.join("sub/new").exists(), "writes reached the context");
    assert_eq!(
        std::fs::read_to_string(ctx.join("sub/inner.txt")).unwrap(),
        "inner\n"
    );
    // The key follows what the bind reads.
    let again = build_ok(&f, &ctx, &["-t", "bound"]);
    assert_eq!(cached_count(&again), 4, "{again}");
    std::fs::write(ctx.join("hello.txt"), "changed\n").unwrap();
    let changed = build_ok(&f, &ctx, &["-t", "bound"]);
    assert_eq!(
        cached_count(&changed),
        1,
        "only WORKDIR is cached: {changed}"
    );
    assert_eq!(sh(&f, "bound", "cat /read"), "changed\n");

    // `.dockerignore` hides files from binds as it does from COPY.
    let ignoring = context(
        &f,
        "bind-ignore",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=target=/ctx,rw (test -e /ctx/secret.env && echo visible || echo hidden) > /seen \
             && cat /ctx/kept.txt >> /seen && rm /ctx/kept.txt\n"
        ),
        &[
            (".dockerignore", "secret.env\n"),
            ("secret.env", "PASSWORD=x\n"),
            ("kept.txt", "kept\n"),
        ],
    );
    build_ok(&f, &ignoring, &["-t", "ignoring"]);
    assert_eq!(sh(&f, "ignoring", "cat /seen"), "hidden\nkept\n");
    assert!(ignoring.join("kept.txt").exists());
    assert_nothing_left(&f);
}

#[test]
fn bind_mounts_from_another_stage() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "stages",
        &format!(
            "FROM {BASE} AS tools\nRUN mkdir /out && echo made-in-tools > /out/tool.txt\n\
             FROM {BASE}\n\
             RUN --mount=from=tools,source=/out,target=/tools cat /tools/tool.txt > /got\n\
             RUN --mount=from=0,source=out/tool.txt,target=/one.txt,rw echo local >> /one.txt \
             && cat /one.txt >> /got\n"
        ),
        &[],
    );
    build_ok(&f, &ctx, &["-t", "from-stage"]);
    assert_eq!(
        sh(
            &f,
            "from-stage",
            "cat /got; test ! -e /out && test ! -e /tools && echo clean"
        ),
        "made-in-tools\nmade-in-tools\nlocal\nclean\n"
    );
    assert_nothing_left(&f);
}

#[test]
fn bind_sources_never_leave_the_context() {
    let f = build_fixture();
    std::fs::write(f.dir.path().join("outside.txt"), "outside\n").unwrap();
    let ctx = context(
        &f,
        "escape",
        &format!("FROM {BASE}\nRUN --mount=source=../outside.txt,target=/x cat /x\n"),
        &[("link", "")],
    );
    let out = build(&f, &ctx, &[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Dockerfile:2") && err.contains("outside the build context"),
        "{err}"
    );
    // A symlink in the context resolves inside it.
    std::fs::remove_file(ctx.join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../outside.txt", ctx.join("link")).unwrap();
    std::fs::write(ctx.join("outside.txt"), "inside\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {BASE}\nRUN --mount=source=link,target=/x cat /x > /got\n"),
    )
    .unwrap();
    build_ok(&f, &ctx, &["-t", "linked"]);
    assert_eq!(sh(&f, "linked", "cat /got"), "inside\n");
}

#[test]
fn secrets_are_readable_in_run_and_stored_nowhere() {
    let f = build_fixture();
    const SECRET: &str = "s3cr3t-value-one";
    let secret = f.dir.path().join("token.txt");
    std::fs::write(&secret, SECRET).unwrap();
    let ctx = context(
        &f,
        "secret",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=secret,id=tok (grep -q value-one /run/secrets/tok && echo match) > /m \
             && stat -c '%a %u' /run/secrets/tok >> /m\n\
             RUN --mount=type=secret,id=tok,target=/etc/app/token,mode=0440,uid=65534 \
             stat -c '%a %u' /etc/app/token > /m2 && wc -c < /etc/app/token >> /m2\n"
        ),
        &[],
    );
    let flag = format!("id=tok,src={}", secret.display());
    build_ok(&f, &ctx, &["--secret", &flag, "-t", "sec"]);
    assert_eq!(sh(&f, "sec", "cat /m /m2"), "match\n400 0\n440 65534\n16\n");
    assert_eq!(
        sh(
            &f,
            "sec",
            "test ! -e /run && test ! -e /etc/app && echo absent"
        ),
        "absent\n"
    );
    let ls = f.berth(&["run", "--rm", "sec", "ls", "/run/secrets"]);
    assert!(
        !ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );

    // Not in the saved image (layers, config, history)...
    let saved = f.dir.path().join("sec.tar");
    f.ok(&["save", "-o", saved.to_str().unwrap(), "sec"]);
    let mut archive = tar::Archive::new(std::fs::File::open(&saved).unwrap());
    let mut entries = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let path = entry.path().unwrap().display().to_string();
        assert!(
            !contains(&plain(data), SECRET.as_bytes()),
            "the secret is in {path}"
        );
        entries += 1;
    }
    assert!(entries > 3);
    // ...nor anywhere in the store (blobs, snapshots, the metadata DB).
    let mut found = Vec::new();
    files_holding(&f.root(), SECRET.as_bytes(), &mut found);
    assert!(found.is_empty(), "the secret is stored in {found:?}");

    // A changed secret does not bust the cache (only the mount spec counts).
    std::fs::write(&secret, "another-secret-2").unwrap();
    let again = build_ok(&f, &ctx, &["--secret", &flag, "-t", "sec"]);
    assert_eq!(cached_count(&again), 2, "{again}");
    assert_nothing_left(&f);
}

#[test]
fn env_secrets_and_missing_secrets() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "env-secret",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=secret,id=api,env=API_TOKEN echo ${{#API_TOKEN}} > /len \
             && (test -e /run/secrets/api && echo file || echo no-file) >> /len\n\
             RUN --mount=type=secret,id=absent (test -e /run/secrets/absent && echo there || echo skipped) > /absent\n"
        ),
        &[],
    );
    let out = build(
        &f,
        &ctx,
        &["--secret", "id=api,env=MY_TOKEN", "-t", "env-secret"],
        &[("MY_TOKEN", "token-123456789")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sh(&f, "env-secret", "cat /len /absent"),
        "15\nno-file\nskipped\n"
    );
    let config = f.ok(&["inspect", "env-secret"]);
    assert!(!config.contains("token-123456789") && !config.contains("API_TOKEN="));

    // A required secret that was not given stops the build, saying which.
    let required = context(
        &f,
        "required",
        &format!("FROM {BASE}\nRUN --mount=type=secret,id=npmrc,required true\n"),
        &[],
    );
    let out = build(&f, &required, &[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("secret npmrc: not found") && err.contains("Dockerfile:2"),
        "{err}"
    );
    // A --secret whose file is missing is refused before the build.
    let out = build(
        &f,
        &required,
        &["--secret", "id=npmrc,src=/nonexistent/npmrc"],
        &[],
    );
    assert!(
        stderr(&out).contains("failed to stat /nonexistent/npmrc"),
        "{}",
        stderr(&out)
    );
    // SSH agent forwarding is not there: a clear error.
    let ssh = context(
        &f,
        "ssh",
        &format!("FROM {BASE}\nRUN --mount=type=ssh true\n"),
        &[],
    );
    let out = build(&f, &ssh, &[], &[]);
    assert!(
        stderr(&out).contains("type=ssh is not supported"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&f);
}

#[test]
fn tmpfs_mounts() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "tmpfs",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=tmpfs,target=/scratch,size=1m grep ' /scratch ' /proc/mounts > /m \
             && echo data > /scratch/f && cat /scratch/f > /seen\n"
        ),
        &[],
    );
    build_ok(&f, &ctx, &["-t", "tmpfs"]);
    let mounts = sh(&f, "tmpfs", "cat /m");
    assert!(
        mounts.starts_with("tmpfs /scratch tmpfs") && mounts.contains("size=1024k"),
        "{mounts}"
    );
    assert_eq!(
        sh(&f, "tmpfs", "cat /seen; test ! -e /scratch && echo gone"),
        "data\ngone\n"
    );
    assert_nothing_left(&f);
}

/// A build running in the background, killed (and reaped) if the test
/// fails first.
struct Background(Option<std::process::Child>);

impl Background {
    fn start(f: &Fixture, ctx: &Path, args: &[&str]) -> Background {
        let child = f
            .command()
            .args(["build", "-q", "--network=none"])
            .args(args)
            .arg(ctx)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Background(Some(child))
    }

    fn finish(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn cache_sharing_locked_waits_and_private_gets_its_own() {
    let f = build_fixture();
    let data = f.root().join("build-mounts/gate/data");
    let holder = context(
        &f,
        "holder",
        &format!(
            "FROM {BASE}\nRUN --mount=type=cache,id=gate,target=/c,sharing=locked \
             touch /c/a-started && while [ ! -e /c/release ]; do sleep 0.1; done && touch /c/a-done\n"
        ),
        &[],
    );
    let a = Background::start(&f, &holder, &[]);
    wait_for(&data.join("a-started"));
    // `private` while another build holds the cache: a fresh one.
    let private = context(
        &f,
        "private",
        &format!(
            "FROM {BASE}\nRUN --mount=type=cache,id=gate,target=/c,sharing=private \
             ls /c > /seen && touch /c/private-was-here\n"
        ),
        &[],
    );
    build_ok(&f, &private, &["--network=none", "-t", "private"]);
    assert_eq!(sh(&f, "private", "cat /seen"), "");
    assert!(!data.join("private-was-here").exists());
    // `locked` waits for the holder.
    let waiter = context(
        &f,
        "waiter",
        &format!(
            "FROM {BASE}\nRUN --mount=type=cache,id=gate,target=/c,sharing=locked touch /c/c-ran\n"
        ),
        &[],
    );
    let c = Background::start(&f, &waiter, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!data.join("c-ran").exists(), "a locked cache was shared");
    std::fs::write(data.join("release"), "").unwrap();
    for build in [a, c] {
        let out = build.finish();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(data.join("a-done").exists() && data.join("c-ran").exists());
    assert_nothing_left(&f);
}

#[test]
fn a_killed_build_leaves_no_mount_and_no_secret() {
    let f = build_fixture();
    const SECRET: &str = "killed-build-secret-9";
    let secret = f.dir.path().join("secret.txt");
    std::fs::write(&secret, SECRET).unwrap();
    let ctx = context(
        &f,
        "killed",
        &format!(
            "FROM {BASE}\nRUN --mount=type=secret,id=s --mount=type=bind,target=/ctx,rw \
             --mount=type=cache,id=k,target=/c --mount=type=tmpfs,target=/t \
             touch /c/started && sleep 3597\n"
        ),
        &[("f", "x")],
    );
    let flag = format!("id=s,src={}", secret.display());
    let build = Background::start(&f, &ctx, &["--secret", &flag]);
    let data = f.root().join("build-mounts/k/data");
    wait_for(&data.join("started"));
    drop(build); // SIGKILL: no cleanup by berth itself
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
    let mut found = Vec::new();
    files_holding(&f.root(), SECRET.as_bytes(), &mut found);
    assert!(found.is_empty(), "the secret is stored in {found:?}");
    // The cache survives whole.
    assert!(data.join("started").exists());
    assert!(std::fs::read_dir(f.root().join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn secrets_reach_stages_built_in_parallel() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "parallel",
        &format!(
            "FROM {BASE} AS a\nRUN --mount=type=secret,id=tok,env=T echo ${{#T}} > /a\n\
             FROM {BASE} AS b\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /b\n\
             FROM {BASE}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n"
        ),
        &[],
    );
    let out = build(
        &f,
        &ctx,
        &[
            "--network=none",
            "--secret",
            "id=tok,env=TOKVAR",
            "-t",
            "par",
        ],
        &[("TOKVAR", "abcdef")],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // One of the two stages ran in a stage worker (its own process).
    assert!(err.lines().any(|l| l.starts_with("#100")), "{err}");
    assert_eq!(sh(&f, "par", "cat /a /b"), "6\n6\n");
    assert_nothing_left(&f);
}
