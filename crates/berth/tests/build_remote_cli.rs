//! `berth build` with remote sources, end to end: git contexts
//! (`#ref:subdir`, branches, tags, commits, over dumb HTTP and the git
//! protocol), tarball and Dockerfile URL contexts, ADD of URLs (checksum,
//! name, mode, mtime, cache) and git repositories, hostile refs and
//! subdirectories, and ADD's bzip2 and xz extraction. Servers
//! (`python3 -m http.server`, `git daemon`) run on 127.0.0.1 inside the
//! fixture's own network namespace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::build::*;
use common::*;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const HTTP: &str = "http://127.0.0.1:8000";

fn run_sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A server process in the fixture's namespace, killed (by its pid) when
/// dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1:8000; ready once
/// it says so (it prints after binding).
fn serve_http(f: &Fixture, dir: &Path) -> Server {
    let mut child = f
        .in_netns("python3")
        .args(["-u", "-m", "http.server", "8000", "--bind", "127.0.0.1"])
        .arg("--directory")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("Serving HTTP"), "http.server said {line:?}");
    Server { child }
}

/// `git daemon` exporting the repositories below `dir` on 127.0.0.1:9418
/// (the smart protocol: shallow fetches, commits by ID).
fn serve_git(f: &Fixture, dir: &Path) -> Server {
    // git-daemon itself, not `git daemon`: git would run it as a child
    // that killing `git` leaves behind.
    let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = String::from_utf8(exec_path.stdout).unwrap();
    let daemon = Path::new(exec_path.trim()).join("git-daemon");
    let child = f
        .in_netns(&daemon)
        .args([
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            "--port=9418",
        ])
        .arg(format!("--base-path={}", dir.display()))
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child };
    for _ in 0..100 {
        let ok = f
            .in_netns("git")
            .args(["ls-remote", "git://127.0.0.1/repo.git"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if ok {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("git daemon did not answer");
}

/// The commits of the test repository.
struct Repo {
    v1: String,
    main: String,
}

/// `dir/repo.git`, a bare repository ready for dumb HTTP:
/// tag `v1` (a = one, sub/ with its own Dockerfile, a symlink `etc` to
/// /etc and `up` to ../..), then branch `main` (a = two, HEAD).
fn make_repo(dir: &Path) -> Repo {
    std::fs::create_dir_all(dir).unwrap();
    run_sh(
        dir,
        &format!(
            "git init -q -b main work && cd work \
             && printf 'FROM {BASE}\\nCOPY . /ctx\\n' > Dockerfile \
             && echo one > a && mkdir sub && echo 'sub one' > sub/f \
             && printf 'FROM {BASE}\\nCOPY . /sub\\n' > sub/Dockerfile \
             && printf 'FROM {BASE}\\nCOPY a /alt\\n' > Alt.Dockerfile \
             && ln -s /etc etc && ln -s ../.. up \
             && git add -A && git commit -qm one && git tag v1 \
             && echo two > a && git commit -qam two \
             && cd .. && git clone -q --bare work repo.git \
             && cd repo.git && git update-server-info"
        ),
    );
    let work = dir.join("work");
    Repo {
        v1: run_sh(&work, "git rev-parse v1"),
        main: run_sh(&work, "git rev-parse main"),
    }
}

/// `dir/super.git`: a repository whose submodule `lib` is
/// `http://127.0.0.1:8000/repo.git` (made by [`make_repo`] first).
fn make_superproject(dir: &Path) {
    run_sh(
        dir,
        &format!(
            "git init -q -b main super && cd super \
             && printf 'FROM {BASE}\\nCOPY . /ctx\\n' > Dockerfile \
             && git -c protocol.file.allow=always submodule -q add {}/repo.git lib \
             && git config -f .gitmodules submodule.lib.url {HTTP}/repo.git \
             && git add -A && git commit -qm super \
             && cd .. && git clone -q --bare super super.git \
             && cd super.git && git update-server-info",
            dir.display()
        ),
    );
}

struct Built {
    stderr: String,
    code: Option<i32>,
}

fn build(f: &Fixture, args: &[&str]) -> Built {
    let mut all = vec!["build", "--progress=plain"];
    all.extend_from_slice(args);
    let out = f.berth(&all);
    Built {
        stderr: stderr(&out),
        code: out.status.code(),
    }
}

fn build_ok(f: &Fixture, args: &[&str]) -> Built {
    let b = build(f, args);
    assert_eq!(b.code, Some(0), "build {args:?} failed:\n{}", b.stderr);
    b
}

fn build_err(f: &Fixture, args: &[&str], wanted: &str) -> Built {
    let b = build(f, args);
    assert_ne!(b.code, Some(0), "build {args:?} succeeded");
    assert!(
        b.stderr.contains(wanted),
        "build {args:?}: wanted {wanted:?} in:\n{}",
        b.stderr
    );
    b
}

/// Scratch directories left in the store's tmp/.
fn scratch_left(f: &Fixture) -> Vec<String> {
    std::fs::read_dir(f.root().join("tmp"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn git_contexts_with_refs_and_subdirs() {
    let f = build_fixture();
    let srv = f.dir.path().join("srv");
    let repo = make_repo(&srv);
    let _http = serve_http(&f, &srv);
    let url = format!("{HTTP}/repo.git");

    // HEAD (main), over dumb HTTP: no shallow fetch there.
    build_ok(&f, &["-t", "head", &url]);
    assert_eq!(
        sh(&f, "head", "cat /ctx/a; ls -a /ctx | tr '\\n' ' '"),
        "two\n. .. Alt.Dockerfile Dockerfile a etc sub up ",
        "the whole tree, without .git"
    );
    assert_eq!(sh(&f, "head", "readlink /ctx/etc"), "/etc\n");

    // A tag, a tag with a subdirectory, a commit, a branch.
    build_ok(&f, &["-t", "tag", &format!("{url}#v1")]);
    assert_eq!(sh(&f, "tag", "cat /ctx/a"), "one\n");
    build_ok(&f, &["-t", "subdir", &format!("{url}#v1:sub")]);
    assert_eq!(
        sh(&f, "subdir", "ls /sub | tr '\\n' ' '; cat /sub/f"),
        "Dockerfile f sub one\n"
    );
    build_ok(&f, &["-t", "commit", &format!("{url}#{}", repo.v1)]);
    assert_eq!(sh(&f, "commit", "cat /ctx/a"), "one\n");
    build_ok(&f, &["-t", "branch", &format!("{url}#main")]);
    assert_eq!(sh(&f, "branch", "cat /ctx/a"), "two\n");

    // -f names a file of the remote context.
    build_ok(&f, &["-t", "alt", "-f", "Alt.Dockerfile", &url]);
    assert_eq!(sh(&f, "alt", "cat /alt"), "two\n");

    // BuildKit's switch to keep .git (a switch, not an unused build arg).
    let b = build_ok(
        &f,
        &[
            "-t",
            "keep",
            "--build-arg",
            "BUILDKIT_CONTEXT_KEEP_GIT_DIR=1",
            &url,
        ],
    );
    assert!(!b.stderr.contains("not consumed"), "{}", b.stderr);
    assert_eq!(sh(&f, "keep", "test -d /ctx/.git && echo kept"), "kept\n");

    // Submodules are checked out too, without their .git files.
    make_superproject(&srv);
    build_ok(&f, &["-t", "super", &format!("{HTTP}/super.git")]);
    assert_eq!(
        sh(
            &f,
            "super",
            "cat /ctx/lib/a; ls -a /ctx/lib | grep -c '^.git$' || true"
        ),
        "two\n0\n"
    );

    // A missing ref fails cleanly.
    build_err(
        &f,
        &[&format!("{url}#nosuchbranch")],
        "unable to prepare context",
    );
    assert!(scratch_left(&f).is_empty(), "{:?}", scratch_left(&f));
}

#[test]
fn git_protocol_fetches_shallow() {
    let f = build_fixture();
    let srv = f.dir.path().join("srv");
    let repo = make_repo(&srv);
    let _git = serve_git(&f, &srv);
    build_ok(&f, &["-t", "g", "git://127.0.0.1/repo.git#v1:sub"]);
    assert_eq!(sh(&f, "g", "cat /sub/f"), "sub one\n");
    build_ok(
        &f,
        &[
            "-t",
            "c",
            &format!("git://127.0.0.1/repo.git#{}", repo.main),
        ],
    );
    assert_eq!(sh(&f, "c", "cat /ctx/a"), "two\n");
    // ADD of a git repository keeps .git on request; a commit checksum
    // is checked.
    let ctx = context(
        &f,
        "addgit",
        &format!(
            "FROM {BASE}\n\
             ADD git://127.0.0.1/repo.git#v1 /src\n\
             ADD --keep-git-dir git://127.0.0.1/repo.git#v1 /kept\n\
             ADD --checksum={} git://127.0.0.1/repo.git#main /checked\n\
             RUN test -f /kept/.git/shallow\n",
            repo.main
        ),
        &[],
    );
    build_ok(&f, &["-t", "addgit", ctx.to_str().unwrap()]);
    assert_eq!(
        sh(
            &f,
            "addgit",
            "cat /src/a /src/sub/f /checked/a; test ! -e /src/.git; test -d /kept/.git && echo kept"
        ),
        "one\nsub one\ntwo\nkept\n"
    );
    let ctx = context(
        &f,
        "badgit",
        &format!(
            "FROM {BASE}\nADD --checksum={} git://127.0.0.1/repo.git#main /checked\n",
            repo.v1
        ),
        &[],
    );
    build_err(&f, &[ctx.to_str().unwrap()], "expected checksum to match");
}

#[test]
fn hostile_git_refs_and_subdirs_are_refused() {
    let f = build_fixture();
    let srv = f.dir.path().join("srv");
    make_repo(&srv);
    let _http = serve_http(&f, &srv);
    let url = format!("{HTTP}/repo.git");
    let marker = f.dir.path().join("pwned");
    let hostile = format!("-upload-pack=touch {}", marker.display());

    // The ref, as a context and in ADD: refused before git runs.
    let b = build_err(&f, &[&format!("{url}#{hostile}")], "invalid git ref");
    assert!(b.stderr.contains("may not start with '-'"), "{}", b.stderr);
    let ctx = context(
        &f,
        "addhostile",
        &format!("FROM {BASE}\nADD [\"{url}#{hostile}\", \"/x\"]\n"),
        &[],
    );
    let b = build_err(&f, &[ctx.to_str().unwrap()], "invalid git ref");
    assert!(b.stderr.contains("Dockerfile:2"), "{}", b.stderr);
    build_err(
        &f,
        &[&format!("{url}#--upload-pack=touch")],
        "invalid git ref",
    );
    assert!(!marker.exists(), "git ran the hostile ref");

    // Subdirectories that leave the checkout.
    build_err(&f, &[&format!("{url}#v1:../..")], "leaves the repository");
    build_err(
        &f,
        &[&format!("{url}#v1:/etc")],
        "relative to the repository",
    );
    build_err(&f, &[&format!("{url}#v1:-x")], "may not start with '-'");
    build_err(
        &f,
        &[&format!("{url}#v1:etc")],
        "leads it out of the repository",
    );
    build_err(
        &f,
        &[&format!("{url}#v1:up")],
        "leads it out of the repository",
    );
    // A host that reads as an ssh option.
    build_err(
        &f,
        &["ssh://-oProxyCommand=x/repo.git"],
        "may not start with '-'",
    );
    assert!(scratch_left(&f).is_empty(), "{:?}", scratch_left(&f));
}

#[test]
fn tarball_and_dockerfile_url_contexts() {
    let f = build_fixture();
    let srv = f.dir.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    let src = context(
        &f,
        "tarsrc",
        &format!("FROM {BASE}\nCOPY data /data\n"),
        &[("data", "from a tarball\n")],
    );
    run_sh(
        &srv,
        &format!(
            "tar -C {s} -czf ctx.tar.gz . && tar -C {s} -cjf ctx.tar.bz2 . \
             && tar -C {s} -cJf ctx.tar.xz . && tar -C {s} -cf ctx.tar . \
             && printf 'FROM {BASE}\\nLABEL from=url\\n' > Dockerfile.txt",
            s = src.display()
        ),
    );
    let _http = serve_http(&f, &srv);
    for name in ["ctx.tar.gz", "ctx.tar.bz2", "ctx.tar.xz", "ctx.tar"] {
        build_ok(&f, &["-t", "tarball", &format!("{HTTP}/{name}")]);
        assert_eq!(sh(&f, "tarball", "cat /data"), "from a tarball\n", "{name}");
    }
    // bzip2 and xz tars on stdin too.
    for name in ["ctx.tar.bz2", "ctx.tar.xz"] {
        let out = f.berth_stdin(
            &["build", "-q", "-t", "stdin", "-"],
            Some(&std::fs::read(srv.join(name)).unwrap()),
        );
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(sh(&f, "stdin", "cat /data"), "from a tarball\n", "{name}");
    }
    // A URL serving a Dockerfile: the build has no other context.
    build_ok(&f, &["-t", "dfurl", &format!("{HTTP}/Dockerfile.txt")]);
    let labels = f.ok(&["inspect", "-f", "{{json .Config.Labels}}", "dfurl"]);
    assert!(labels.contains("\"from\":\"url\""), "{labels}");
    build_err(
        &f,
        &[&format!("{HTTP}/missing.tar")],
        "invalid response status 404",
    );
    assert!(scratch_left(&f).is_empty(), "{:?}", scratch_left(&f));
}

#[test]
fn add_of_urls() {
    let f = build_fixture();
    let srv = f.dir.path().join("srv");
    std::fs::create_dir_all(srv.join("files")).unwrap();
    std::fs::write(srv.join("files/hello.txt"), "hello\n").unwrap();
    run_sh(
        &srv,
        "touch -d @1000000000 files/hello.txt \
         && mkdir t && echo inside > t/x && tar -C t -czf files/app.tar.gz x",
    );
    let sum = run_sh(&srv, "sha256sum files/hello.txt | cut -d' ' -f1");
    let _http = serve_http(&f, &srv);
    let dockerfile = format!(
        "FROM {BASE}\n\
         ADD {HTTP}/files/hello.txt /hello.txt\n\
         ADD {HTTP}/files/hello.txt /dir/\n\
         ADD --checksum=sha256:{sum} --chown=1:2 --chmod=640 {HTTP}/files/hello.txt /c.txt\n\
         ADD {HTTP}/files/app.tar.gz /archive/\n\
         RUN cat /hello.txt > /ran\n"
    );
    let ctx = context(&f, "addurl", &dockerfile, &[]);
    build_ok(&f, &["-t", "addurl", ctx.to_str().unwrap()]);
    assert_eq!(
        sh(
            &f,
            "addurl",
            "cat /ran; stat -c '%a %u:%g %Y' /hello.txt /dir/hello.txt /c.txt; \
             ls /archive"
        ),
        "hello\n600 0:0 1000000000\n600 0:0 1000000000\n640 1:2 1000000000\napp.tar.gz\n",
        "mode 0600, mtime from Last-Modified, not extracted"
    );

    // The cache keys on the content: the same content hits, a new one misses.
    let again = build_ok(&f, &["-t", "addurl", ctx.to_str().unwrap()]);
    assert_eq!(cached_count(&again.stderr), 5, "{}", again.stderr);
    let unpinned = context(
        &f,
        "unpinned",
        &format!("FROM {BASE}\nADD {HTTP}/files/hello.txt /dir/\n"),
        &[],
    );
    build_ok(&f, &["-t", "unpinned", unpinned.to_str().unwrap()]);
    std::fs::write(srv.join("files/hello.txt"), "changed\n").unwrap();
    let changed = build_ok(&f, &["-t", "unpinned", unpinned.to_str().unwrap()]);
    assert_eq!(cached_count(&changed.stderr), 0, "{}", changed.stderr);
    assert_eq!(sh(&f, "unpinned", "cat /dir/hello.txt"), "changed\n");
    // The pinned step now fails, naming its line.
    let b = build_err(&f, &[ctx.to_str().unwrap()], "digest mismatch");
    assert!(b.stderr.contains("Dockerfile:4"), "{}", b.stderr);

    // A wrong checksum fails the step and says which.
    let bad = context(
        &f,
        "badsum",
        &format!(
            "FROM {BASE}\nADD --checksum=sha256:{} {HTTP}/files/hello.txt /h\n",
            "0".repeat(64)
        ),
        &[],
    );
    let b = build_err(&f, &[bad.to_str().unwrap()], "digest mismatch");
    assert!(b.stderr.contains("Dockerfile:2"), "{}", b.stderr);
    // --checksum on a local source, a missing URL.
    let local = context(
        &f,
        "localsum",
        &format!("FROM {BASE}\nADD --checksum=sha256:{sum} f /f\n"),
        &[("f", "x")],
    );
    build_err(
        &f,
        &[local.to_str().unwrap()],
        "checksum can't be specified",
    );
    let missing = context(
        &f,
        "missing",
        &format!("FROM {BASE}\nADD {HTTP}/files/nope /n\n"),
        &[],
    );
    build_err(
        &f,
        &[missing.to_str().unwrap()],
        "invalid response status 404",
    );
    assert!(scratch_left(&f).is_empty(), "{:?}", scratch_left(&f));
}

#[test]
fn add_extracts_bzip2_and_xz() {
    let f = build_fixture();
    let ctx = context(
        &f,
        "archives",
        &format!(
            "FROM {BASE}\n\
             ADD a.tar.bz2 /bz/\n\
             ADD b.tar.xz /xz/\n\
             ADD notes.gz /notes/\n"
        ),
        &[],
    );
    run_sh(
        &ctx,
        "mkdir t && echo bz > t/inbz && tar -C t -cjf a.tar.bz2 inbz \
         && echo xz > t/inxz && tar -C t -cJf b.tar.xz inxz \
         && echo 'not a tar' | gzip > notes.gz && rm -r t",
    );
    build_ok(&f, &["-t", "archives", ctx.to_str().unwrap()]);
    assert_eq!(
        sh(&f, "archives", "cat /bz/inbz /xz/inxz; ls /notes"),
        "bz\nxz\nnotes.gz\n",
        "tars extracted; a compressed file that is no tar copied as it is"
    );
}

#[test]
fn https_with_the_system_ca_bundle() {
    let f = build_fixture();
    let dir = f.dir.path().join("tls");
    let srv = dir.join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::write(srv.join("hello.txt"), "over tls\n").unwrap();
    run_sh(
        &dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
         -subj /CN=berth-test-ca 2>/dev/null \
         && openssl req -newkey rsa:2048 -nodes -keyout key.pem -out leaf.csr \
         -subj /CN=127.0.0.1 2>/dev/null \
         && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext \
         && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
         -out cert.pem -days 2 -extfile ext 2>/dev/null",
    );
    let script = format!(
        "import http.server, ssl\n\
         s = http.server.ThreadingHTTPServer(('127.0.0.1', 8443), http.server.SimpleHTTPRequestHandler)\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{d}/cert.pem', '{d}/key.pem')\n\
         s.socket = c.wrap_socket(s.socket, server_side=True)\n\
         print('Serving HTTPS', flush=True)\n\
         s.serve_forever()\n",
        d = dir.display()
    );
    let mut child = f
        .in_netns("python3")
        .args(["-c", &script])
        .current_dir(&srv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server { child };
    assert!(line.contains("Serving HTTPS"), "{line:?}");

    let ctx = context(
        &f,
        "tlsctx",
        &format!("FROM {BASE}\nADD https://127.0.0.1:8443/hello.txt /h\n"),
        &[],
    );
    // The test CA is not in the system bundle: refused.
    let out = f
        .command()
        .args(["build", "-q", "-t", "tls", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("failed to fetch https://127.0.0.1:8443/hello.txt"),
        "{}",
        stderr(&out)
    );
    // SSL_CERT_FILE names the bundle to trust, as for Go and OpenSSL
    // (a network that re-signs TLS puts its CA in the system bundle).
    let out = f
        .command()
        .env("SSL_CERT_FILE", dir.join("ca.pem"))
        .args(["build", "-q", "-t", "tls", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sh(&f, "tls", "cat /h"), "over tls\n");
}
