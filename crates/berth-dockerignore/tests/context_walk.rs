//! Ignore-file selection and matching over a real directory tree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_dockerignore::{
    always_included, ignore_file_candidates, read_ignore_file, read_patterns, IgnoreError,
    MatchInfo, PatternMatcher,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-dockerignore-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, rel: &str, contents: &str) {
        let full = self.0.join(rel);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, contents).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Walks `root/rel` depth-first in name order the way a context sender does:
/// one `matches_using_parent_results` call per entry, the directory's
/// `MatchInfo` handed to its children. Excluded directories are descended
/// into only when exceptions could re-include something below them. Every
/// answer is cross-checked against `matches_or_parent_matches`.
fn walk(
    root: &Path,
    rel: &str,
    parent: &MatchInfo,
    pm: &PatternMatcher,
    files: &mut Vec<(String, bool)>,
) {
    let mut names: Vec<String> = fs::read_dir(root.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let (excluded, info) = pm.matches_using_parent_results(&child, parent).unwrap();
        assert_eq!(
            excluded,
            pm.matches_or_parent_matches(&child).unwrap(),
            "walk and direct match disagree on {child}"
        );
        if root.join(&child).is_dir() {
            if excluded && !pm.has_exclusions() {
                continue;
            }
            walk(root, &child, &info, pm, files);
        } else {
            files.push((child, excluded));
        }
    }
}

const CONTEXT_IGNORE: &str = "\
# build outputs
node_modules
*.log
build/
!build/keep.txt
**/*.tmp
docs/**
!docs/README.md
/secret
";

fn make_context() -> TempDir {
    let ctx = TempDir::new("walk");
    ctx.write(".dockerignore", CONTEXT_IGNORE);
    for file in [
        "Dockerfile",
        "app.log",
        "main.go",
        "src/main.rs",
        "src/app.log",
        "src/x.tmp",
        "src/deep/y.tmp",
        "src/deep/z.rs",
        "node_modules/a/b.js",
        "build/out.bin",
        "build/keep.txt",
        "build/sub/keep.txt",
        "docs/README.md",
        "docs/guide/intro.md",
        "secret/key",
    ] {
        ctx.write(file, "x");
    }
    ctx
}

#[test]
fn walk_excludes_and_reincludes() {
    let ctx = make_context();
    let found = read_ignore_file(ctx.path(), "Dockerfile")
        .unwrap()
        .expect("ignore file");
    assert_eq!(found.path, ".dockerignore");
    let pm = PatternMatcher::new(&found.patterns).unwrap();
    assert!(pm.has_exclusions());

    let mut files = Vec::new();
    walk(ctx.path(), "", &MatchInfo::default(), &pm, &mut files);
    let excluded: Vec<&str> = files.iter().filter(|f| f.1).map(|f| f.0.as_str()).collect();
    let kept: Vec<&str> = files
        .iter()
        .filter(|f| !f.1)
        .map(|f| f.0.as_str())
        .collect();
    assert_eq!(
        excluded,
        [
            "app.log",
            "build/out.bin",
            "build/sub/keep.txt",
            "docs/guide/intro.md",
            "node_modules/a/b.js",
            "secret/key",
            "src/deep/y.tmp",
            "src/x.tmp",
        ]
    );
    assert_eq!(
        kept,
        [
            ".dockerignore",
            "Dockerfile",
            "build/keep.txt",
            "docs/README.md",
            "main.go",
            "src/app.log",
            "src/deep/z.rs",
            "src/main.rs",
        ]
    );
}

#[test]
fn walk_prunes_without_exclusions() {
    let ctx = make_context();
    let pm = PatternMatcher::new(&["build", "node_modules"]).unwrap();
    assert!(!pm.has_exclusions());
    let mut files = Vec::new();
    walk(ctx.path(), "", &MatchInfo::default(), &pm, &mut files);
    assert!(files.iter().all(|f| !f.1));
    assert!(files.iter().all(|f| !f.0.starts_with("build/")));
    assert!(files.iter().any(|f| f.0 == "src/deep/z.rs"));
}

#[test]
fn ignore_file_selection_rule() {
    assert_eq!(
        ignore_file_candidates("Dockerfile"),
        ["Dockerfile.dockerignore", ".dockerignore"]
    );
    assert_eq!(
        ignore_file_candidates("build/app.Dockerfile"),
        ["build/app.Dockerfile.dockerignore", ".dockerignore"]
    );
    assert_eq!(
        ignore_file_candidates("./build//app.Dockerfile"),
        ["build/app.Dockerfile.dockerignore", ".dockerignore"]
    );
    assert_eq!(
        ignore_file_candidates(""),
        ["Dockerfile.dockerignore", ".dockerignore"]
    );
    assert_eq!(
        always_included("./build/app.Dockerfile"),
        ["build/app.Dockerfile", ".dockerignore"]
    );
    assert_eq!(always_included(""), ["Dockerfile", ".dockerignore"]);
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let ctx = make_context();
    ctx.write("build/app.Dockerfile", "FROM scratch\n");
    ctx.write("build/app.Dockerfile.dockerignore", "*\n!src\n");

    let specific = read_ignore_file(ctx.path(), "build/app.Dockerfile")
        .unwrap()
        .unwrap();
    assert_eq!(specific.path, "build/app.Dockerfile.dockerignore");
    assert_eq!(specific.patterns, ["*", "!src"]);
    let pm = PatternMatcher::new(&specific.patterns).unwrap();
    assert!(pm.matches_or_parent_matches("main.go").unwrap());
    assert!(!pm.matches_or_parent_matches("src/main.rs").unwrap());

    // Other Dockerfiles still use the context-wide file.
    let general = read_ignore_file(ctx.path(), "Dockerfile").unwrap().unwrap();
    assert_eq!(general.path, ".dockerignore");
    assert_eq!(
        general.patterns,
        read_patterns(CONTEXT_IGNORE.as_bytes()).unwrap()
    );

    // A directory with the candidate's name does not count.
    fs::create_dir_all(ctx.path().join("Dockerfile.dockerignore")).unwrap();
    let general = read_ignore_file(ctx.path(), "Dockerfile").unwrap().unwrap();
    assert_eq!(general.path, ".dockerignore");
}

#[test]
fn no_ignore_file() {
    let ctx = TempDir::new("empty");
    assert_eq!(read_ignore_file(ctx.path(), "Dockerfile").unwrap(), None);
}

#[test]
fn overlong_line_is_an_error() {
    let ctx = TempDir::new("long");
    ctx.write(".dockerignore", &"a".repeat(70_000));
    let err = read_ignore_file(ctx.path(), "Dockerfile").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "bufio.Scanner: token too long");
}

#[test]
fn lone_bang_read_then_rejected() {
    assert_eq!(read_patterns(b"!").unwrap(), ["!"]);
    assert_eq!(read_patterns(b"! ").unwrap(), ["!"]);
    let err = PatternMatcher::new(&read_patterns(b"!").unwrap()).unwrap_err();
    assert_eq!(err, IgnoreError::IllegalExclusion);
    assert_eq!(err.to_string(), "illegal exclusion pattern: \"!\"");
}

#[test]
fn pathological_patterns_stay_fast() {
    // Each `**/` is a `(.*/)?` group; a backtracking matcher would explode.
    let path = "a/".repeat(150) + "b";
    let start = std::time::Instant::now();
    let hit = "**/".repeat(40) + "a";
    let pm = PatternMatcher::new(&[hit.as_str()]).unwrap();
    // `a` matches as a parent directory.
    assert!(pm.matches_or_parent_matches(&path).unwrap());
    // No literal hint to reject early: every ancestor runs the automaton.
    let miss = "**/".repeat(40) + "c*";
    let pm = PatternMatcher::new(&[miss.as_str()]).unwrap();
    assert!(!pm.matches_or_parent_matches(&path).unwrap());
    let nested = format!("{}b", "**/x".repeat(30));
    let pm = PatternMatcher::new(&[nested.as_str(), "!**/*.keep"]).unwrap();
    assert!(!pm.matches_or_parent_matches(&path).unwrap());
    let (_, info) = pm
        .matches_using_parent_results("a", &MatchInfo::default())
        .unwrap();
    assert!(!pm.matches_using_parent_results(&path, &info).unwrap().0);
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}
