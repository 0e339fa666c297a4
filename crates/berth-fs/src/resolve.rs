//! Resolving a path inside a root directory as if the root were `/`.
//!
//! `resolve_in_root(root, "a/../../etc/passwd", ..)` can only ever name
//! something under `root`: `..` is clamped at the root, absolute symlink
//! targets are re-rooted, relative ones are followed from where they sit, and
//! after [`MAX_SYMLINK_HOPS`] hops resolution fails with
//! [`Error::SymlinkLoop`] (the kernel's ELOOP). This is the semantics of
//! `openat2(RESOLVE_IN_ROOT)` and of Go's `securejoin`.
//!
//! Two implementations give the same answers: the kernel's `openat2`
//! (preferred; needs Linux ≥ 5.6 and every component to exist) and a
//! userspace walk (which also resolves paths whose tail does not exist yet).
//! [`ResolveMethod::Auto`] uses the kernel and falls back to the walk.
//!
//! The returned path is a plain path: if something inside the root is
//! swapped for a symlink after resolution, a later path-based open can be
//! redirected. Code that *creates* files inside an untrusted tree (layer
//! apply) therefore works with directory file descriptors and `O_NOFOLLOW`
//! instead of resolved paths.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};

/// The most symlinks followed while resolving one path (Linux's MAXSYMLINKS).
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// Which implementation [`resolve_in_root`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolveMethod {
    /// `openat2(RESOLVE_IN_ROOT)` when the kernel has it and the path exists,
    /// the userspace walk otherwise.
    #[default]
    Auto,
    /// Only the kernel; fails with `Unsupported` without openat2 and with
    /// `NotFound` when a component does not exist.
    Kernel,
    /// Only the userspace walk.
    Userspace,
}

/// Options for [`resolve_in_root`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveOptions {
    /// Follow a symlink in the last component (like `open` without `O_NOFOLLOW`).
    pub follow_final: bool,
    /// Which implementation to use.
    pub method: ResolveMethod,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            follow_final: true,
            method: ResolveMethod::Auto,
        }
    }
}

/// Resolve `path` inside `root` as if `root` were `/`; returns `root` joined
/// with the resolved path (which need not exist, with the userspace walk).
pub fn resolve_in_root(
    root: impl AsRef<Path>,
    path: impl AsRef<Path>,
    opts: &ResolveOptions,
) -> Result<PathBuf> {
    let root = root.as_ref();
    let path = path.as_ref();
    match opts.method {
        ResolveMethod::Userspace => resolve_userspace(root, path, opts.follow_final),
        ResolveMethod::Kernel => match resolve_kernel(root, path, opts.follow_final)? {
            Ok(p) => Ok(p),
            Err(errno) => Err(kernel_error(root, path, errno)),
        },
        ResolveMethod::Auto => match resolve_kernel(root, path, opts.follow_final)? {
            Ok(p) => Ok(p),
            Err(Errno::LOOP) => Err(Error::SymlinkLoop {
                path: root.join(strip_root(path)),
            }),
            Err(_) => resolve_userspace(root, path, opts.follow_final),
        },
    }
}

fn kernel_error(root: &Path, path: &Path, errno: Errno) -> Error {
    let full = root.join(strip_root(path));
    match errno {
        Errno::LOOP => Error::SymlinkLoop { path: full },
        Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::TOOBIG => {
            Error::Unsupported(format!("openat2(RESOLVE_IN_ROOT): {errno}"))
        }
        e => Error::io(full, e),
    }
}

fn strip_root(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

/// The kernel path. The outer `Result` is for failures that are not about
/// the path (the root itself cannot be opened); the inner one carries the
/// errno of `openat2` so that `Auto` can decide to fall back.
fn resolve_kernel(
    root: &Path,
    path: &Path,
    follow_final: bool,
) -> Result<std::result::Result<PathBuf, Errno>> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(root)?;
    let rel = strip_root(path);
    let rel: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &rel
    };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow_final {
        flags |= OFlags::NOFOLLOW;
    }
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let mut attempt = 0;
    let fd = loop {
        match rustix::fs::openat2(&root_fd, rel, flags, Mode::empty(), resolve) {
            Ok(fd) => break fd,
            // RESOLVE_IN_ROOT answers EAGAIN when a rename raced the walk.
            Err(Errno::AGAIN) if attempt < 8 => attempt += 1,
            Err(e) => return Ok(Err(e)),
        }
    };
    let real_root = proc_fd_path(&root_fd).at(root)?;
    let real = proc_fd_path(&fd).at(root)?;
    let inside = match real.strip_prefix(&real_root) {
        Ok(p) => p.to_path_buf(),
        // Cannot happen with RESOLVE_IN_ROOT; refuse rather than guess.
        Err(_) => return Ok(Err(Errno::XDEV)),
    };
    Ok(Ok(root.join(inside)))
}

fn proc_fd_path(fd: &impl std::os::fd::AsRawFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The userspace walk: component by component, `lstat` each, splice symlink
/// targets into the remaining components.
fn resolve_userspace(root: &Path, path: &Path, follow_final: bool) -> Result<PathBuf> {
    let mut pending: VecDeque<OsString> = split(path.as_os_str()).collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0u32;
    while let Some(comp) = pending.pop_front() {
        if comp == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&comp);
        let is_last = pending.is_empty();
        let md = match std::fs::symlink_metadata(&candidate) {
            Ok(md) => md,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) =>
            {
                resolved.push(comp);
                continue;
            }
            Err(e) => return Err(Error::io(candidate, e)),
        };
        if md.file_type().is_symlink() && (!is_last || follow_final) {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(Error::SymlinkLoop {
                    path: root.join(strip_root(path)),
                });
            }
            let target = std::fs::read_link(&candidate).at(&candidate)?;
            if target.is_absolute() {
                resolved.clear();
            }
            for c in split(target.as_os_str())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                pending.push_front(c);
            }
        } else {
            resolved.push(comp);
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn split(p: &OsStr) -> impl Iterator<Item = OsString> + '_ {
    p.as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsStr::from_bytes(c).to_os_string())
}

/// The text of the file at `path` inside `root`, resolved as
/// [`resolve_in_root`] does (never leaving the root); empty when it is
/// missing or unreadable (an image without `/etc/passwd`, say).
pub fn read_in_root(root: &Path, path: &str) -> String {
    resolve_in_root(root, path, &ResolveOptions::default())
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}
