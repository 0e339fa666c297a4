//! Remote sources: git repositories and HTTP(S) URLs, as `docker build`
//! takes them for a context and BuildKit for ADD.
//!
//! A git source is `https://host/repo.git#ref:subdir`, `git@host:repo.git`,
//! `git://…`, `ssh://…` or any http(s) URL whose path ends in `.git`; it is
//! fetched with the `git` CLI into a store scratch directory (see [`git`]).
//! Any other http(s) URL is downloaded (see [`http`]): for a context, a tar
//! (plain, gzip, bzip2, xz, zstd) becomes the context and anything else is
//! the Dockerfile; for ADD, the file is copied as it is.
//!
//! The fragment (`#ref:subdir`) is untrusted input that reaches a command
//! line, so it is checked before git runs: a ref or subdir may not start
//! with `-` (it would read as an option), a ref may not hold what git
//! forbids in ref names, and a subdir may not be absolute or climb with
//! `..`; after the checkout, a subdir that leads out through a symlink is
//! refused too.

mod git;
mod http;

use std::path::{Component, Path};

use berth_oci::Digest;
use berth_store::{ScratchDir, Store};

use crate::context::{walk, Context, DockerfileSource};
use crate::copy::Source;
use crate::{Error, Result};

/// A source that is not on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSource {
    /// A git repository.
    Git(GitSource),
    /// Any other http(s) URL (its fragment dropped).
    Http(String),
}

/// A git repository, a ref in it and a directory of its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository's URL, without the fragment.
    pub remote: String,
    /// A branch, tag or commit; empty for the remote's HEAD.
    pub reference: String,
    /// A directory of the checkout (cleaned, relative); empty for all of it.
    pub subdir: String,
}

/// The largest file a context URL may serve as its Dockerfile.
const MAX_REMOTE_DOCKERFILE: u64 = 16 << 20;

/// What a remote build context turned out to be.
#[derive(Debug)]
pub struct RemoteContext {
    pub context: Context,
    /// The Dockerfile, when the URL served a file that is not an archive
    /// (the context is then empty, as in Docker).
    pub dockerfile: Option<Vec<u8>>,
}

impl RemoteContext {
    /// The Dockerfile of a build from this context, given the `-f` the
    /// user gave: `-f -` as it is; else the file the URL served; else
    /// `-f PATH` read inside the fetched context (as Docker reads it for
    /// remote contexts), or the context's `Dockerfile`.
    pub fn pick_dockerfile(&mut self, given: DockerfileSource) -> Result<DockerfileSource> {
        if let DockerfileSource::Bytes(_) = given {
            return Ok(given);
        }
        if let Some(bytes) = self.dockerfile.take() {
            return Ok(DockerfileSource::Bytes(bytes));
        }
        match (given, self.context.root()) {
            (DockerfileSource::Path(p), Some(root)) => {
                let rel = crate::context::clean_relative(&p.to_string_lossy())?;
                Ok(DockerfileSource::Path(root.join(rel)))
            }
            (given, _) => Ok(given),
        }
    }
}

impl RemoteSource {
    /// Parses `spec` when it names a remote source (`Ok(None)`: a local
    /// path). A remote source with a hostile or malformed fragment is an
    /// error.
    pub fn parse(spec: &str) -> Result<Option<RemoteSource>> {
        let lower = spec.to_ascii_lowercase();
        let is_http = lower.starts_with("http://") || lower.starts_with("https://");
        let (base, fragment) = match spec.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (spec, None),
        };
        let path_end = base.split('?').next().unwrap_or(base);
        let git = lower.starts_with("git://")
            || lower.starts_with("ssh://")
            || is_scp_like(spec)
            || (is_http && path_end.ends_with(".git"));
        if git {
            check_url(base)?;
            let (reference, subdir) = match fragment {
                Some(f) => f.split_once(':').unwrap_or((f, "")),
                None => ("", ""),
            };
            check_ref(reference)?;
            let subdir = check_subdir(subdir)?;
            return Ok(Some(RemoteSource::Git(GitSource {
                remote: base.to_string(),
                reference: reference.to_string(),
                subdir,
            })));
        }
        if is_http {
            check_url(base)?;
            return Ok(Some(RemoteSource::Http(base.to_string())));
        }
        Ok(None)
    }

    /// True when `spec` names a remote source (valid or not): what
    /// `docker build` fetches instead of reading a local directory.
    pub fn is_remote(spec: &str) -> bool {
        !matches!(RemoteSource::parse(spec), Ok(None))
    }
}

/// `user@host:path` (BuildKit's scp-like git URL).
fn is_scp_like(spec: &str) -> bool {
    let Some((user, rest)) = spec.split_once('@') else {
        return false;
    };
    let Some((host, path)) = rest.split_once(':') else {
        return false;
    };
    let word = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || extra.contains(&c))
    };
    word(user, &['_']) && word(host, &['.']) && !path.is_empty() && !path.starts_with("//")
}

/// A URL that reaches a command line or a request: no spaces or control
/// characters, and no user or host that reads as an option (`ssh
/// -oProxyCommand=…`).
fn check_url(url: &str) -> Result<()> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::Invalid(format!(
            "invalid URL {url:?}: it holds spaces or control characters"
        )));
    }
    let authority = match url.split_once("://") {
        Some((_, rest)) => rest.split('/').next().unwrap_or(rest),
        None => url.split(':').next().unwrap_or(url),
    };
    if authority.starts_with('-') || authority.split(['@', ':']).any(|p| p.starts_with('-')) {
        return Err(Error::Invalid(format!(
            "invalid URL {url:?}: its host or user may not start with '-'"
        )));
    }
    Ok(())
}

/// A git ref from a URL fragment: empty (HEAD), a branch, a tag or a
/// commit. Refused: a leading `-` (git would read an option), and what
/// git forbids in ref names.
pub(crate) fn check_ref(reference: &str) -> Result<()> {
    if reference.starts_with('-') {
        return Err(Error::Invalid(format!(
            "invalid git ref {reference:?}: a ref may not start with '-'"
        )));
    }
    let forbidden = |c: char| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c);
    if reference.chars().any(forbidden)
        || reference.contains("..")
        || reference.contains("@{")
        || reference.ends_with('/')
        || reference.ends_with(".lock")
    {
        return Err(Error::Invalid(format!(
            "invalid git ref {reference:?}: not a branch, tag or commit name"
        )));
    }
    Ok(())
}

/// A subdirectory from a URL fragment, cleaned: it must stay inside the
/// checkout (no absolute path, no `..`) and not start with `-`.
pub(crate) fn check_subdir(subdir: &str) -> Result<String> {
    let refuse = |why: &str| {
        Err(Error::Invalid(format!(
            "invalid git subdirectory {subdir:?}: {why}"
        )))
    };
    if subdir.starts_with('-') {
        return refuse("it may not start with '-'");
    }
    if subdir.chars().any(char::is_control) {
        return refuse("it holds control characters");
    }
    if subdir.starts_with('/') {
        return refuse("it must be relative to the repository");
    }
    let mut parts = Vec::new();
    for c in Path::new(subdir).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return refuse("it leaves the repository");
            }
        }
    }
    Ok(parts.join("/"))
}

/// The URL with its password hidden, for messages and cache inputs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

impl Context {
    /// True when `spec` names a remote context (a git or http(s) URL, as
    /// `docker build` tells them) rather than a local directory.
    pub fn is_remote(spec: &str) -> bool {
        RemoteSource::is_remote(spec)
    }

    /// A build context fetched from `spec` (a git URL, or an http(s) URL
    /// serving a tar or a Dockerfile) into `scratch`. A git checkout
    /// loses its `.git` unless `keep_git_dir` (BuildKit's
    /// `BUILDKIT_CONTEXT_KEEP_GIT_DIR`).
    pub fn remote(spec: &str, scratch: ScratchDir, keep_git_dir: bool) -> Result<RemoteContext> {
        match RemoteSource::parse(spec)? {
            None => Err(Error::Invalid(format!("{spec:?} is not a remote context"))),
            Some(RemoteSource::Git(src)) => {
                let checkout = git::checkout(&src, scratch.path(), keep_git_dir)?;
                Ok(RemoteContext {
                    context: Context::in_scratch(checkout.root, scratch),
                    dockerfile: None,
                })
            }
            Some(RemoteSource::Http(url)) => {
                let file = scratch.path().join("download");
                http::download(
                    &url,
                    &file,
                    berth_store::MAX_LAYER_BYTES,
                    berth_oci::Algorithm::Sha256,
                )?;
                let open = || std::fs::File::open(&file).map_err(|e| Error::io(file.display(), e));
                if berth_fs::is_tar_archive(std::io::BufReader::new(open()?)) {
                    // The download sits beside the extracted context, in
                    // the same scratch dir.
                    let context = Context::from_tar(std::io::BufReader::new(open()?), scratch)?;
                    std::fs::remove_file(&file).map_err(|e| Error::io(file.display(), e))?;
                    Ok(RemoteContext {
                        context,
                        dockerfile: None,
                    })
                } else {
                    let size = std::fs::metadata(&file)
                        .map_err(|e| Error::io(file.display(), e))?
                        .len();
                    if size > MAX_REMOTE_DOCKERFILE {
                        return Err(Error::Invalid(format!(
                            "{} is neither a tar archive nor a Dockerfile ({size} bytes)",
                            redact(&url)
                        )));
                    }
                    let bytes = std::fs::read(&file).map_err(|e| Error::io(file.display(), e))?;
                    Ok(RemoteContext {
                        context: Context::empty(),
                        dockerfile: Some(bytes),
                    })
                }
            }
        }
    }
}

/// ADD's flags that concern remote sources.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddRemoteFlags {
    /// `--checksum`: `sha256:…` of a URL's content, or a git commit.
    pub checksum: Option<String>,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
}

/// An ADD source fetched into a scratch directory, which lives as long as
/// this does.
#[derive(Debug)]
pub(crate) struct FetchedSource {
    pub source: Source,
    pub scratch: ScratchDir,
}

/// Fetches an ADD source: a URL's file (named after the URL's path, mode
/// 0600, its mtime from `Last-Modified`; never extracted) or a git
/// checkout (without `.git` unless `--keep-git-dir`).
pub(crate) fn fetch_add_source(
    store: &Store,
    remote: &RemoteSource,
    flags: &AddRemoteFlags,
) -> Result<FetchedSource> {
    let scratch = store.scratch_dir("build-add")?;
    match remote {
        RemoteSource::Http(url) => {
            let expected = flags
                .checksum
                .as_deref()
                .map(|c| {
                    c.parse::<Digest>()
                        .map_err(|e| Error::Invalid(format!("invalid checksum {c:?}: {e}")))
                })
                .transpose()?;
            let name = http::url_file_name(url);
            let algorithm = expected
                .as_ref()
                .map_or(berth_oci::Algorithm::Sha256, Digest::algorithm);
            let file = scratch.path().join(&name);
            let got = http::download(url, &file, berth_store::MAX_LAYER_BYTES, algorithm)?;
            if let Some(want) = expected {
                if got != want {
                    return Err(Error::Invalid(format!(
                        "digest mismatch for {}: expected {want}, got {got}",
                        redact(url)
                    )));
                }
            }
            let entries = walk(scratch.path(), &name, None)?;
            Ok(FetchedSource {
                source: Source {
                    name: redact(url),
                    entries,
                    fetched: true,
                },
                scratch,
            })
        }
        RemoteSource::Git(src) => {
            let checkout = git::checkout(src, scratch.path(), flags.keep_git_dir)?;
            if let Some(want) = &flags.checksum {
                if want.len() < 7 || !checkout.commit.starts_with(want.as_str()) {
                    return Err(Error::Invalid(format!(
                        "expected checksum to match {want}, got {}",
                        checkout.commit
                    )));
                }
            }
            let entries = walk(&checkout.root, "", None)?;
            Ok(FetchedSource {
                source: Source {
                    name: format!("{}#{}", redact(&src.remote), checkout.commit),
                    entries,
                    fetched: true,
                },
                scratch,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(spec: &str) -> GitSource {
        match RemoteSource::parse(spec).unwrap() {
            Some(RemoteSource::Git(g)) => g,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn classifies_urls_as_docker_does() {
        let g = git("https://example.com/repo.git#v1.0:docs/site");
        assert_eq!(g.remote, "https://example.com/repo.git");
        assert_eq!(g.reference, "v1.0");
        assert_eq!(g.subdir, "docs/site");
        let g = git("git@github.com:moby/moby.git#main");
        assert_eq!(g.remote, "git@github.com:moby/moby.git");
        assert_eq!(g.reference, "main");
        assert_eq!(git("git://host/repo").reference, "");
        assert_eq!(git("ssh://git@host/repo#:sub").subdir, "sub");
        assert_eq!(git("http://host/x.git").remote, "http://host/x.git");
        assert_eq!(
            RemoteSource::parse("https://host/app.tar.gz#frag").unwrap(),
            Some(RemoteSource::Http("https://host/app.tar.gz".into()))
        );
        assert_eq!(
            RemoteSource::parse("HTTP://host/Dockerfile").unwrap(),
            Some(RemoteSource::Http("HTTP://host/Dockerfile".into()))
        );
        for local in [
            ".",
            "app",
            "./git@x",
            "dir/file.git",
            "/abs/repo.git",
            "a@b",
        ] {
            assert_eq!(RemoteSource::parse(local).unwrap(), None, "{local}");
            assert!(!RemoteSource::is_remote(local));
        }
        assert!(RemoteSource::is_remote("https://h/r.git#-bad"));
    }

    #[test]
    fn hostile_refs_are_refused() {
        for bad in [
            "-upload-pack=touch /tmp/x",
            "--upload-pack=x",
            "-u",
            "a..b",
            "a b",
            "x\ny",
            "a~1",
            "HEAD^",
            "x@{0}",
            "br/",
        ] {
            let err = check_ref(bad).unwrap_err();
            assert!(err.to_string().contains("invalid git ref"), "{bad}: {err}");
        }
        for good in [
            "",
            "main",
            "v1.2.3",
            "feature/x",
            "refs/tags/v1",
            "0123abcd",
        ] {
            check_ref(good).unwrap();
        }
        let err = RemoteSource::parse("https://h/r.git#-upload-pack=touch /tmp/x").unwrap_err();
        assert!(err.to_string().contains("may not start with '-'"), "{err}");
    }

    #[test]
    fn subdirs_stay_inside() {
        for bad in ["../..", "..", "a/../../b", "/etc", "-x", "a/../.."] {
            assert!(check_subdir(bad).is_err(), "{bad}");
        }
        assert_eq!(check_subdir("").unwrap(), "");
        assert_eq!(check_subdir("./a//b/.").unwrap(), "a/b");
        assert!(RemoteSource::parse("https://h/r.git#main:../..").is_err());
    }

    #[test]
    fn option_like_hosts_are_refused() {
        assert!(RemoteSource::parse("ssh://-oProxyCommand=x/repo").is_err());
        assert!(RemoteSource::parse("git@-oProxyCommand:repo.git").is_err());
        assert!(!matches!(
            RemoteSource::parse("git@-oProxyCommand=x:repo.git"),
            Ok(Some(_))
        ));
        assert!(RemoteSource::parse("https://h/a b.git").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("https://me:secret@host/x.git"),
            "https://me:***@host/x.git"
        );
        assert_eq!(redact("https://host/x"), "https://host/x");
    }
}
