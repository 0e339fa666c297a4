//! Build contexts: a directory read in place, a tar extracted into a
//! scratch directory, a remote source fetched into one (`remote.rs`), or
//! nothing (a Dockerfile alone on stdin). The
//! `.dockerignore` (or `<Dockerfile>.dockerignore`) patterns decide what
//! COPY and ADD see; the Dockerfile itself always reaches the builder.
//! Paths never leave the context: `..` is refused, and symlinks are listed
//! as links, never followed.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use berth_dockerignore::{read_ignore_file, MatchInfo, PatternMatcher};

use crate::{Error, Result};

/// Where a build's files come from.
#[derive(Debug)]
pub struct Context {
    /// `None`: an empty context.
    root: Option<PathBuf>,
    matcher: Option<PatternMatcher>,
    /// Keeps an extracted tar context alive.
    _scratch: Option<berth_store::ScratchDir>,
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone)]
pub enum DockerfileSource {
    /// `<context>/Dockerfile`.
    Default,
    /// `-f PATH` (relative to the current directory, as Docker's CLI reads it).
    Path(PathBuf),
    /// `-f -`, or a Dockerfile alone on stdin.
    Bytes(Vec<u8>),
}

/// One file or directory of a COPY source, relative to the source root.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Path below the source root (`a/b`), `""` for the root itself.
    pub rel: String,
    pub path: PathBuf,
    pub meta: std::fs::Metadata,
}

impl Context {
    /// A directory read in place.
    pub fn dir(path: &Path) -> Result<Context> {
        let root = std::fs::canonicalize(path).map_err(|e| {
            Error::Invalid(format!(
                "unable to prepare context: path {:?} not found: {e}",
                path.display().to_string()
            ))
        })?;
        if !root.is_dir() {
            return Err(Error::Invalid(format!(
                "unable to prepare context: {} is not a directory",
                path.display()
            )));
        }
        Ok(Context {
            root: Some(root),
            matcher: None,
            _scratch: None,
        })
    }

    /// No files (a Dockerfile alone on stdin).
    pub fn empty() -> Context {
        Context {
            root: None,
            matcher: None,
            _scratch: None,
        }
    }

    /// A tar stream (plain, gzip, zstd, bzip2 or xz), extracted safely
    /// into `scratch`.
    pub fn from_tar(reader: impl Read, scratch: berth_store::ScratchDir) -> Result<Context> {
        let root = scratch.path().join("context");
        std::fs::create_dir(&root).map_err(|e| Error::io(root.display(), e))?;
        let opts = berth_fs::ApplyOptions {
            max_bytes: Some(berth_store::MAX_LAYER_BYTES),
            ..berth_fs::ApplyOptions::default()
        };
        berth_fs::apply_archive(reader, &root, &opts)?;
        Ok(Context::in_scratch(root, scratch))
    }

    /// The directory `root`, inside `scratch`, which it keeps alive.
    pub(crate) fn in_scratch(root: PathBuf, scratch: berth_store::ScratchDir) -> Context {
        Context {
            root: Some(root),
            matcher: None,
            _scratch: Some(scratch),
        }
    }

    /// True for a context extracted into a scratch directory (its files'
    /// checksums are not worth remembering).
    pub fn is_temporary(&self) -> bool {
        self._scratch.is_some()
    }

    /// The context directory, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Reads the Dockerfile; returns its display name, its path relative to
    /// the context (for the ignore file) and its bytes. A Dockerfile in the
    /// context that is a symlink leading out of it is refused.
    pub fn read_dockerfile(&self, source: &DockerfileSource) -> Result<(String, String, Vec<u8>)> {
        match source {
            DockerfileSource::Bytes(b) => Ok(("Dockerfile".into(), "Dockerfile".into(), b.clone())),
            DockerfileSource::Default => {
                let root = self
                    .root
                    .as_deref()
                    .ok_or_else(|| Error::Invalid("no build context".into()))?;
                let path = root.join("Dockerfile");
                let bytes = self.read_inside(&path)?;
                Ok(("Dockerfile".into(), "Dockerfile".into(), bytes))
            }
            DockerfileSource::Path(p) => {
                let absolute = std::path::absolute(p).map_err(|e| Error::io(p.display(), e))?;
                let name = p.display().to_string();
                let rel = self
                    .root
                    .as_deref()
                    .and_then(|r| absolute.strip_prefix(r).ok())
                    .map(|r| r.to_string_lossy().into_owned());
                match rel {
                    Some(rel) => Ok((name, rel, self.read_inside(&absolute)?)),
                    None => {
                        let bytes = std::fs::read(&absolute).map_err(|e| {
                            Error::Invalid(format!("failed to read dockerfile {name}: {e}"))
                        })?;
                        let base = absolute
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| "Dockerfile".into());
                        Ok((name, base, bytes))
                    }
                }
            }
        }
    }

    /// Reads a file of the context whose symlinks must stay inside it.
    fn read_inside(&self, path: &Path) -> Result<Vec<u8>> {
        let name = path.display().to_string();
        let real = std::fs::canonicalize(path)
            .map_err(|e| Error::Invalid(format!("failed to read dockerfile: open {name}: {e}")))?;
        if let Some(root) = &self.root {
            if !real.starts_with(root) {
                return Err(Error::Invalid(format!(
                    "failed to read dockerfile: {name} is a symlink that leads out of the build context"
                )));
            }
        }
        std::fs::read(&real).map_err(|e| Error::io(name, e))
    }

    /// Loads `.dockerignore` (or `<dockerfile_rel>.dockerignore`).
    pub fn load_ignore(&mut self, dockerfile_rel: &str) -> Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let file = read_ignore_file(root, dockerfile_rel)
            .map_err(|e| Error::io(root.join(".dockerignore").display(), e))?;
        if let Some(file) = file {
            let matcher = PatternMatcher::new(&file.patterns)
                .map_err(|e| Error::Invalid(format!("{}: {e}", file.path)))?;
            if !matcher.is_empty() {
                self.matcher = Some(matcher);
            }
        }
        Ok(())
    }

    /// True when a `.dockerignore` hides files of the context.
    pub(crate) fn has_ignore_patterns(&self) -> bool {
        self.matcher.is_some()
    }

    /// The sources a COPY/ADD names (wildcards expanded), each with the
    /// entries below it that the ignore file lets through, sorted.
    pub fn sources(&self, pattern: &str) -> Result<Vec<Vec<SourceEntry>>> {
        let rel = clean_relative(pattern)?;
        let root = match &self.root {
            Some(r) => r.clone(),
            None => {
                return Err(Error::NotFound(format!(
                    "failed to compute cache key: \"/{rel}\": not found (the build has no context)"
                )))
            }
        };
        source_trees(&root, &rel, self.matcher.as_ref())
    }
}

/// A COPY source path made relative to its root; `..` that would leave
/// the root is refused.
pub fn clean_relative(path: &str) -> Result<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(Error::Invalid(format!(
                        "forbidden path outside the build context: {path}"
                    )));
                }
            }
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
        }
    }
    Ok(parts.join("/"))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell-style matching of one path component (`*`, `?`, `[...]`, `\x`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| glob_at(&p[1..], n.get(i..).unwrap_or_default())),
        Some('?') => !n.is_empty() && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(c) = n.first() else { return false };
            let mut i = 1;
            let negate = matches!(p.get(1), Some('^') | Some('!'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let start = i;
            while let Some(&pc) = p.get(i) {
                if pc == ']' && i > start {
                    break;
                }
                if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
                    let hi = p.get(i + 2).copied().unwrap_or(pc);
                    if pc <= *c && *c <= hi {
                        matched = true;
                    }
                    i += 3;
                } else {
                    if pc == *c {
                        matched = true;
                    }
                    i += 1;
                }
            }
            if p.get(i) != Some(&']') {
                return false;
            }
            matched != negate && glob_at(&p[i + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == p.get(1) && glob_at(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && glob_at(&p[1..], &n[1..]),
    }
}

fn excluded(matcher: Option<&PatternMatcher>, rel: &str) -> Result<bool> {
    match matcher {
        None => Ok(false),
        Some(m) => m
            .matches_or_parent_matches(rel)
            .map_err(|e| Error::Invalid(format!(".dockerignore: {e}"))),
    }
}

/// The source trees under `root` that `rel` (possibly with wildcards)
/// names.
pub(crate) fn source_trees(
    root: &Path,
    rel: &str,
    matcher: Option<&PatternMatcher>,
) -> Result<Vec<Vec<SourceEntry>>> {
    let mut matches: Vec<String> = vec![String::new()];
    if has_wildcard(rel) {
        for part in rel.split('/') {
            let mut next = Vec::new();
            for base in &matches {
                let dir = if base.is_empty() {
                    root.to_path_buf()
                } else {
                    root.join(base)
                };
                if !has_wildcard(part) {
                    let candidate = join_rel(base, part);
                    if std::fs::symlink_metadata(root.join(&candidate)).is_ok() {
                        next.push(candidate);
                    }
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&dir) else {
                    continue;
                };
                if !meta.is_dir() {
                    continue;
                }
                let mut names: Vec<String> = std::fs::read_dir(&dir)
                    .map_err(|e| Error::io(dir.display(), e))?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| glob_match(part, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| join_rel(base, &n)));
            }
            matches = next;
        }
        let mut kept = Vec::new();
        for m in matches {
            if !excluded(matcher, &m)? {
                kept.push(m);
            }
        }
        if kept.is_empty() {
            return Err(Error::NotFound(format!(
                "failed to compute cache key: failed to calculate checksum: \"/{rel}\": no source files were specified"
            )));
        }
        matches = kept;
    } else {
        let path = root.join(rel);
        let not_found = || {
            Error::NotFound(format!(
                "failed to compute cache key: failed to calculate checksum of ref: \"/{rel}\": not found"
            ))
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|_| not_found())?;
        if !rel.is_empty() && excluded(matcher, rel)? {
            // An excluded directory still holds what `!` patterns re-include.
            let reincluded = match matcher {
                Some(m) if meta.is_dir() && m.has_exclusions() => {
                    let tree = walk(root, rel, matcher)?;
                    (tree.len() > 1).then_some(tree)
                }
                _ => None,
            };
            return match reincluded {
                Some(tree) => Ok(vec![tree]),
                None => Err(not_found()),
            };
        }
        matches = vec![rel.to_string()];
    }
    matches
        .iter()
        .map(|m| walk(root, m, matcher))
        .collect::<Result<Vec<_>>>()
}

fn join_rel(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// The entry `top` (relative to `root`) and, for a directory, everything
/// below it that is not ignored, depth first, names sorted. Symlinks are
/// entries, never followed.
pub(crate) fn walk(
    root: &Path,
    top: &str,
    matcher: Option<&PatternMatcher>,
) -> Result<Vec<SourceEntry>> {
    let top_path = if top.is_empty() {
        root.to_path_buf()
    } else {
        root.join(top)
    };
    let meta =
        std::fs::symlink_metadata(&top_path).map_err(|e| Error::io(top_path.display(), e))?;
    let mut out = vec![SourceEntry {
        rel: String::new(),
        path: top_path.clone(),
        meta: meta.clone(),
    }];
    if meta.is_dir() {
        let info = MatchInfo::default();
        walk_dir(&top_path, "", top, matcher, &info, &mut out)?;
    }
    Ok(out)
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    context_rel: &str,
    matcher: Option<&PatternMatcher>,
    parent_info: &MatchInfo,
    out: &mut Vec<SourceEntry>,
) -> Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display(), e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir.display(), e))?;
    names.sort_by(|a, b| {
        use std::os::unix::ffi::OsStrExt;
        a.as_bytes().cmp(b.as_bytes())
    });
    for name in names {
        let name_s = name.to_string_lossy().into_owned();
        let child_rel = join_rel(rel, &name_s);
        let in_context = join_rel(context_rel, &name_s);
        let info = match matcher {
            Some(m) => {
                let (skip, info) = m
                    .matches_using_parent_results(&in_context, parent_info)
                    .map_err(|e| Error::Invalid(format!(".dockerignore: {e}")))?;
                let path = dir.join(&name);
                if skip {
                    // An exception below an excluded directory still needs
                    // the walk (`dir` excluded, `!dir/keep`).
                    let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
                    if is_dir && m.has_exclusions() {
                        walk_excluded_dir(&path, &child_rel, &in_context, m, &info, out)?;
                    }
                    continue;
                }
                info
            }
            None => MatchInfo::default(),
        };
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io(path.display(), e))?;
        let is_dir = meta.is_dir();
        out.push(SourceEntry {
            rel: child_rel.clone(),
            path: path.clone(),
            meta,
        });
        if is_dir {
            walk_dir(&path, &child_rel, &in_context, matcher, &info, out)?;
        }
    }
    Ok(())
}

/// Walks an excluded directory for re-included entries; their parent
/// directories are added when something below them is.
fn walk_excluded_dir(
    dir: &Path,
    rel: &str,
    context_rel: &str,
    matcher: &PatternMatcher,
    info: &MatchInfo,
    out: &mut Vec<SourceEntry>,
) -> Result<()> {
    let mut inner = Vec::new();
    walk_dir(dir, rel, context_rel, Some(matcher), info, &mut inner)?;
    if !inner.is_empty() {
        let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir.display(), e))?;
        out.push(SourceEntry {
            rel: rel.to_string(),
            path: dir.to_path_buf(),
            meta,
        });
        out.extend(inner);
    }
    Ok(())
}

/// The stat fields that say a file is unchanged since its checksum was
/// recorded (BuildKit's and git's trick).
pub(crate) fn stat_key(meta: &std::fs::Metadata) -> String {
    format!(
        "{}:{}:{}:{}.{}:{}.{}:{:o}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.mode()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("f?le[0-9]", "file7"));
        assert!(!glob_match("[!a]x", "ax"));
        assert!(glob_match("[!a]x", "bx"));
    }

    #[test]
    fn parent_dirs_are_refused() {
        assert!(clean_relative("../x").is_err());
        assert_eq!(clean_relative("a/../b/./c").unwrap(), "b/c");
        assert_eq!(clean_relative("/abs/x").unwrap(), "abs/x");
        assert_eq!(clean_relative(".").unwrap(), "");
    }
}
