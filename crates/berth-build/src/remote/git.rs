//! Git repositories fetched with the `git` CLI into a scratch directory
//! (never the caller's working directory), BuildKit's way: `git init`, a
//! shallow fetch of the ref (a branch, a tag, a full commit, or HEAD),
//! then a detached checkout and the submodules. Servers that cannot fetch
//! shallowly (dumb HTTP) or by commit get a full fetch instead.
//!
//! The repository is hostile input, so git runs hardened: no hooks (no
//! template, `core.hooksPath=/dev/null`), only the http, https, git and
//! ssh transports (no `ext::`, no `file://`, not even through a redirect
//! or a submodule), no prompts, no stdin, and `--` before every
//! positional argument. The fragment was checked before (see
//! [`super::check_ref`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{redact, GitSource};
use crate::{Error, Result};

/// A checked-out tree.
#[derive(Debug)]
pub(crate) struct Checkout {
    /// The directory the source names (the subdir, symlinks resolved).
    pub root: PathBuf,
    /// The commit checked out (hex).
    pub commit: String,
}

/// Configuration every git command runs with.
const HARDENING: &[&str] = &[
    "protocol.allow=never",
    "protocol.http.allow=always",
    "protocol.https.allow=always",
    "protocol.git.allow=always",
    "protocol.ssh.allow=always",
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "init.defaultBranch=main",
    "advice.detachedHead=false",
];

/// Environment that would point git somewhere else than our repository.
const CLEARED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_TEMPLATE_DIR",
];

fn git(dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("git");
    for setting in HARDENING {
        cmd.arg("-c").arg(setting);
    }
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`; its stdout on success, its stderr in the error.
fn run(mut cmd: Command, what: &str) -> Result<String> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Unsupported(format!("{what}: the git command is not installed"))
        } else {
            Error::io("git", e)
        }
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = detail
        .get(detail.len().saturating_sub(4)..)
        .unwrap_or_default()
        .join("; ");
    Err(Error::StepFailed(format!("{what}: {tail}")))
}

/// A commit ID (or its prefix) rather than a name.
fn looks_like_commit(reference: &str) -> bool {
    reference.len() >= 7 && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fetches `src` into `work/checkout` and checks it out. `.git` (and the
/// submodules' `.git` files) are removed unless `keep_git_dir`.
pub(crate) fn checkout(src: &GitSource, work: &Path, keep_git_dir: bool) -> Result<Checkout> {
    let repo = work.join("checkout");
    let shown = redact(&src.remote);
    let mut init = git(None);
    init.args(["init", "-q", "--template="])
        .arg("--")
        .arg(&repo);
    run(init, "git init")?;
    let mut remote = git(Some(&repo));
    remote.args(["remote", "add", "--", "origin", &src.remote]);
    run(remote, "git remote add")?;

    let want = if src.reference.is_empty() {
        "HEAD"
    } else {
        src.reference.as_str()
    };
    let fetch = |shallow: bool, refspecs: &[&str]| {
        let mut cmd = git(Some(&repo));
        cmd.args(["fetch", "-q", "--no-tags"]);
        if shallow {
            cmd.arg("--depth=1");
        }
        cmd.args(["--", "origin"]).args(refspecs);
        run(cmd, &format!("failed to fetch {want} from {shown}"))
    };
    let resolve = |rev: &str| {
        let mut cmd = git(Some(&repo));
        cmd.args(["rev-parse", "--verify", "-q", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"));
        run(cmd, &format!("{want} is not a commit of {shown}"))
    };
    // Shallow first; dumb HTTP servers can't, so then in full; a commit
    // prefix can only be found among everything.
    let commit = match fetch(true, &[want]).or_else(|_| fetch(false, &[want])) {
        Ok(_) => resolve("FETCH_HEAD")?,
        Err(e) if looks_like_commit(want) => {
            let mut all = git(Some(&repo));
            all.args(["fetch", "-q", "--tags", "--", "origin"])
                .arg("+refs/heads/*:refs/remotes/origin/*");
            run(all, &format!("failed to fetch {shown}"))?;
            resolve(want).map_err(|_| e)?
        }
        Err(e) => return Err(e),
    };
    let mut co = git(Some(&repo));
    co.args(["checkout", "-q", "-f", &commit, "--"]);
    run(co, &format!("failed to check out {want} of {shown}"))?;
    if repo.join(".gitmodules").exists() {
        let submodules = |shallow: bool| {
            let mut cmd = git(Some(&repo));
            cmd.args(["submodule", "update", "--init", "--recursive"]);
            if shallow {
                cmd.arg("--depth=1");
            }
            run(cmd, &format!("failed to update the submodules of {shown}"))
        };
        submodules(true).or_else(|_| submodules(false))?;
    }
    if !keep_git_dir {
        remove_git_entries(&repo)?;
    }
    let root = subdir_root(&repo, &src.subdir)?;
    Ok(Checkout { root, commit })
}

/// Removes every `.git` below `dir`: git never checks one out, so each is
/// the repository's or a submodule's own.
fn remove_git_entries(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir.display(), e))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| Error::io(path.display(), e))?;
        if entry.file_name() == ".git" {
            if ft.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .map_err(|e| Error::io(path.display(), e))?;
        } else if ft.is_dir() {
            remove_git_entries(&path)?;
        }
    }
    Ok(())
}

/// The checkout's `subdir` (already checked to be relative, without
/// `..`), refused when a symlink leads it out of the checkout.
fn subdir_root(repo: &Path, subdir: &str) -> Result<PathBuf> {
    let base = std::fs::canonicalize(repo).map_err(|e| Error::io(repo.display(), e))?;
    if subdir.is_empty() {
        return Ok(base);
    }
    let real = std::fs::canonicalize(repo.join(subdir)).map_err(|_| {
        Error::NotFound(format!(
            "git subdirectory {subdir:?} not found in the repository"
        ))
    })?;
    if !real.starts_with(&base) {
        return Err(Error::Invalid(format!(
            "invalid git subdirectory {subdir:?}: a symlink leads it out of the repository"
        )));
    }
    if !real.is_dir() {
        return Err(Error::Invalid(format!(
            "git subdirectory {subdir:?} is not a directory"
        )));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let ok = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{script}");
    }

    #[test]
    fn commits_and_escaping_subdirs() {
        assert!(looks_like_commit("0123abc"));
        assert!(!looks_like_commit("main"));
        assert!(!looks_like_commit("abc"));
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "mkdir -p repo/in && ln -s /etc repo/out && ln -s in repo/fine && touch repo/file",
        );
        let repo = dir.path().join("repo");
        let err = subdir_root(&repo, "out").unwrap_err();
        assert!(err.to_string().contains("leads it out"), "{err}");
        assert!(subdir_root(&repo, "fine").unwrap().ends_with("in"));
        assert!(subdir_root(&repo, "file").is_err());
        assert!(subdir_root(&repo, "missing").is_err());
    }

    #[test]
    fn file_transport_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "git init -q src && cd src && echo a > a && git add a \
             && git -c user.name=t -c user.email=t@t commit -qm a",
        );
        let src = GitSource {
            remote: format!("file://{}/src", dir.path().display()),
            reference: String::new(),
            subdir: String::new(),
        };
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let err = checkout(&src, &work, false).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }
}
