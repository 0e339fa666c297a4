//! Build contexts: what COPY sees through `.dockerignore`, wildcards,
//! symlinks kept as links, `..` refused, the Dockerfile's own rules, and a
//! tar context extracted safely.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use berth_build::{Context, DockerfileSource};

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn rels(ctx: &Context, pattern: &str) -> Vec<Vec<String>> {
    ctx.sources(pattern)
        .unwrap()
        .into_iter()
        .map(|tree| tree.into_iter().map(|e| e.rel).collect())
        .collect()
}

#[test]
fn dockerignore_wildcards_and_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ctx");
    write(&root, "Dockerfile", "FROM scratch\n");
    write(
        &root,
        ".dockerignore",
        "**/*.log\nbuild\n!build/keep\nsecret*\n",
    );
    write(&root, "src/a.rs", "a");
    write(&root, "src/b.log", "b");
    write(&root, "build/out", "o");
    write(&root, "build/keep", "k");
    write(&root, "secret.txt", "s");
    write(&root, "one.txt", "1");
    write(&root, "two.txt", "2");
    std::os::unix::fs::symlink("/etc/shadow", root.join("src/shadow")).unwrap();

    let mut ctx = Context::dir(&root).unwrap();
    let (name, rel, bytes) = ctx.read_dockerfile(&DockerfileSource::Default).unwrap();
    assert_eq!((name.as_str(), rel.as_str()), ("Dockerfile", "Dockerfile"));
    assert_eq!(bytes, b"FROM scratch\n");
    ctx.load_ignore(&rel).unwrap();

    assert_eq!(rels(&ctx, "src"), vec![vec!["", "a.rs", "shadow"]]);
    let shadow = ctx.sources("src/shadow").unwrap().remove(0).remove(0);
    assert!(
        shadow.meta.file_type().is_symlink(),
        "links are not followed"
    );
    assert_eq!(rels(&ctx, "build"), vec![vec!["", "keep"]]);
    assert_eq!(rels(&ctx, "*.txt"), vec![vec![""], vec![""]]);
    let whole = rels(&ctx, ".");
    assert!(
        !whole[0]
            .iter()
            .any(|p| p.contains("secret") || p.ends_with(".log") || p == "build/out"),
        "{whole:?}"
    );
    assert!(whole[0].contains(&"build/keep".to_string()), "{whole:?}");
    assert!(
        ctx.sources("secret.txt").is_err(),
        "ignored files are not there"
    );
    assert!(ctx
        .sources("../x")
        .unwrap_err()
        .to_string()
        .contains("outside the build context"));
    assert!(ctx
        .sources("nothing*")
        .unwrap_err()
        .to_string()
        .contains("no source files"));
}

#[test]
fn dockerfile_symlinks_and_named_ignore_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ctx");
    std::fs::create_dir_all(&root).unwrap();
    write(tmp.path(), "outside", "FROM scratch\n");
    std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("Dockerfile")).unwrap();
    let ctx = Context::dir(&root).unwrap();
    let err = ctx.read_dockerfile(&DockerfileSource::Default).unwrap_err();
    assert!(
        err.to_string().contains("leads out of the build context"),
        "{err}"
    );

    // A link inside the context is fine; <Dockerfile>.dockerignore wins.
    write(&root, "real.Dockerfile", "FROM scratch\n");
    write(&root, "real.Dockerfile.dockerignore", "a\n");
    write(&root, ".dockerignore", "b\n");
    write(&root, "a", "a");
    write(&root, "b", "b");
    let mut ctx = Context::dir(&root).unwrap();
    let path = root.join("real.Dockerfile");
    let (_, rel, _) = ctx.read_dockerfile(&DockerfileSource::Path(path)).unwrap();
    assert_eq!(rel, "real.Dockerfile");
    ctx.load_ignore(&rel).unwrap();
    assert!(ctx.sources("a").is_err());
    assert!(ctx.sources("b").is_ok());
}

#[test]
fn empty_context_has_no_files() {
    let ctx = Context::empty();
    assert!(ctx.sources("x").is_err());
    let (_, _, bytes) = ctx
        .read_dockerfile(&DockerfileSource::Bytes(b"FROM scratch\n".to_vec()))
        .unwrap();
    assert_eq!(bytes, b"FROM scratch\n");
}
