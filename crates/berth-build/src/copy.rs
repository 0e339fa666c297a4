//! COPY and ADD with local sources, written straight into the step's
//! mounted root (no container), with BuildKit's rules: a directory source
//! copies its contents; a file lands at the destination, or inside it when
//! the destination ends with `/` or is an existing directory; several
//! sources need a destination ending with `/`. Symlinks are copied as
//! links; destination paths resolve symlinks inside the root and never
//! leave it. Context files keep their mode and mtime and become root-owned
//! (or `--chown`); files from another stage keep their owners. ADD
//! extracts local tar archives (plain, gzip, zstd, bzip2, xz), never files
//! it downloaded.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_dockerfile::instructions::InlineFile;
use berth_fs::{resolve_in_root, ResolveOptions};
use berth_oci::{Digest, DigestWriter};
use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};

use crate::context::SourceEntry;
use crate::{Error, Result};

/// One COPY/ADD source: its name as written and its entries (the top
/// first).
#[derive(Debug)]
pub(crate) struct Source {
    pub name: String,
    pub entries: Vec<SourceEntry>,
    /// Fetched by ADD from a URL or git: never extracted.
    pub fetched: bool,
}

/// Ownership and mode applied to copied entries.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Attrs {
    /// `--chown`, or root for context files; `None` keeps the source's.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub mode: Option<u32>,
}

/// Everything a copy needs, resolved.
#[derive(Debug)]
pub(crate) struct CopyPlan {
    pub sources: Vec<Source>,
    pub inline: Vec<InlineFile>,
    /// Absolute destination in the image, as written (a trailing `/` kept).
    pub dest: String,
    pub attrs: Attrs,
    /// ADD: extract archives.
    pub extract: bool,
    /// `--parents`: keep the sources' paths.
    pub parents: bool,
}

impl CopyPlan {
    /// One context source (`entries`, the top first) copied as it is to
    /// the root: a RUN bind mount's source.
    pub(crate) fn whole_source(name: &str, entries: Vec<SourceEntry>) -> CopyPlan {
        CopyPlan {
            sources: vec![Source {
                name: name.to_string(),
                entries,
                fetched: false,
            }],
            inline: Vec::new(),
            dest: "/".into(),
            attrs: Attrs::default(),
            extract: false,
            parents: false,
        }
    }
}

/// Mode bits with the file type, as checksummed.
fn kind_char(meta: &std::fs::Metadata) -> char {
    let ft = meta.file_type();
    if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        'f'
    } else {
        'o'
    }
}

/// The checksum input of the sources: path, type, mode, owners (when
/// kept), link target, content digest; never mtimes.
pub(crate) fn sources_digest(
    plan: &CopyPlan,
    content_sum: &mut dyn FnMut(&SourceEntry) -> Result<String>,
) -> Result<Digest> {
    let mut w = DigestWriter::sha256();
    for source in &plan.sources {
        w.update(format!("source {}\n", source.name).as_bytes());
        for e in &source.entries {
            let kind = kind_char(&e.meta);
            let owners = match plan.attrs.owner {
                Some(_) => String::new(),
                None => format!(" {}:{}", e.meta.uid(), e.meta.gid()),
            };
            let extra = match kind {
                'f' => content_sum(e)?,
                'l' => std::fs::read_link(&e.path)
                    .map(|t| t.to_string_lossy().into_owned())
                    .map_err(|err| Error::io(e.path.display(), err))?,
                _ => String::new(),
            };
            w.update(
                format!(
                    "{kind} {:?} {:o}{owners} {extra}\n",
                    e.rel,
                    e.meta.mode() & 0o7777
                )
                .as_bytes(),
            );
        }
    }
    for f in &plan.inline {
        w.update(format!("inline {:?} {:?}\n", f.name, f.data).as_bytes());
    }
    Ok(w.finish().0)
}

/// The digest of a file's content.
pub(crate) fn file_digest(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let mut w = DigestWriter::sha256();
    std::io::copy(&mut file, &mut w).map_err(|e| Error::io(path.display(), e))?;
    Ok(w.finish().0.to_string())
}

fn basename(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Where `path` (absolute in the image) is on the host, its parents'
/// symlinks resolved inside `root`; parents are created.
fn host_path(root: &Path, path: &str, attrs: &Attrs) -> Result<PathBuf> {
    let clean = berth_runtime::spec::clean_path(path);
    let (parent, name) = match clean.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => ("/", clean.as_str()),
    };
    let parent_host = resolve_in_root(root, parent, &ResolveOptions::default())?;
    if !parent_host.exists() {
        create_dirs(root, parent, attrs)?;
    }
    let parent_host = resolve_in_root(root, parent, &ResolveOptions::default())?;
    if name.is_empty() {
        return Ok(parent_host);
    }
    Ok(parent_host.join(name))
}

/// `mkdir -p` inside the root; new directories are 0755 and owned by
/// `--chown`'s user when given (as BuildKit does for the destination).
fn create_dirs(root: &Path, path: &str, attrs: &Attrs) -> Result<()> {
    let mut current = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current.push('/');
        current.push_str(part);
        let host = resolve_in_root(root, &current, &ResolveOptions::default())?;
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "cannot copy to {path}: {current} is not a directory"
                )))
            }
            Err(_) => {
                std::fs::create_dir(&host).map_err(|e| Error::io(host.display(), e))?;
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| Error::io(host.display(), e))?;
                if let Some((uid, gid)) = attrs.owner {
                    chown(&host, uid, gid)?;
                }
            }
        }
    }
    Ok(())
}

/// Creates a directory `path` inside the root (WORKDIR).
pub(crate) fn mkdir_in_root(root: &Path, path: &str, owner: Option<(u32, u32)>) -> Result<()> {
    create_dirs(root, path, &Attrs { owner, mode: None })
}

/// Changes a path's owner, never through a final symlink.
pub(crate) fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    rustix::fs::chownat(
        CWD,
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io(path.display(), e.into()))
}

fn set_mtime(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let t = Timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec() as _,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io(path.display(), e.into()))
}

/// Removes whatever non-directory (or, for a non-directory source, empty
/// directory) stands at `host`.
fn clear(host: &Path, for_dir: bool) -> Result<()> {
    match std::fs::symlink_metadata(host) {
        Ok(m) if m.is_dir() => {
            if for_dir {
                Ok(())
            } else {
                Err(Error::Invalid(format!(
                    "cannot replace directory {} with a file",
                    host.display()
                )))
            }
        }
        Ok(_) => std::fs::remove_file(host).map_err(|e| Error::io(host.display(), e)),
        Err(_) => Ok(()),
    }
}

fn copy_entry(e: &SourceEntry, host: &Path, attrs: &Attrs) -> Result<()> {
    let ft = e.meta.file_type();
    if ft.is_dir() {
        clear(host, true)?;
        if !host.is_dir() {
            std::fs::create_dir(host).map_err(|err| Error::io(host.display(), err))?;
        }
    } else if ft.is_symlink() {
        clear(host, false)?;
        let target = std::fs::read_link(&e.path).map_err(|err| Error::io(e.path.display(), err))?;
        std::os::unix::fs::symlink(&target, host).map_err(|err| Error::io(host.display(), err))?;
    } else if ft.is_file() {
        return copy_file(e, host, attrs);
    } else {
        // Devices, fifos and sockets are not copied from a context.
        return Ok(());
    }
    let (uid, gid) = attrs.owner.unwrap_or((e.meta.uid(), e.meta.gid()));
    chown(host, uid, gid)?;
    if !ft.is_symlink() {
        let mode = attrs.mode.unwrap_or(e.meta.mode() & 0o7777);
        std::fs::set_permissions(host, std::fs::Permissions::from_mode(mode))
            .map_err(|err| Error::io(host.display(), err))?;
    }
    Ok(())
}

/// A regular file, its owner, mode and mtime set through its descriptor
/// (path lookups through overlayfs are what a big COPY spends its time on).
fn copy_file(e: &SourceEntry, host: &Path, attrs: &Attrs) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(host)
    };
    let mut dst = match create() {
        Ok(f) => f,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            clear(host, false)?;
            create().map_err(|err| Error::io(host.display(), err))?
        }
        Err(err) => return Err(Error::io(host.display(), err)),
    };
    let mut src = std::fs::File::open(&e.path).map_err(|err| Error::io(e.path.display(), err))?;
    std::io::copy(&mut src, &mut dst).map_err(|err| Error::io(host.display(), err))?;
    let (uid, gid) = attrs.owner.unwrap_or((e.meta.uid(), e.meta.gid()));
    rustix::fs::fchown(
        &dst,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|err| Error::io(host.display(), err.into()))?;
    let mode = attrs.mode.unwrap_or(e.meta.mode() & 0o7777);
    rustix::fs::fchmod(&dst, rustix::fs::Mode::from_raw_mode(mode))
        .map_err(|err| Error::io(host.display(), err.into()))?;
    let t = Timespec {
        tv_sec: e.meta.mtime(),
        tv_nsec: e.meta.mtime_nsec() as _,
    };
    rustix::fs::futimens(
        &dst,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
    )
    .map_err(|err| Error::io(host.display(), err.into()))
}

/// True when `path` is a tar archive, plain or compressed (Docker's
/// test: the decompressed start is a valid tar header).
fn is_archive(path: &Path) -> bool {
    std::fs::File::open(path).is_ok_and(|f| berth_fs::is_tar_archive(std::io::BufReader::new(f)))
}

/// Writes the plan into `root`.
pub(crate) fn apply(root: &Path, plan: &CopyPlan) -> Result<()> {
    let dest_is_dir = plan.dest.ends_with('/')
        || plan.dest.ends_with("/.")
        || plan.sources.len() + plan.inline.len() > 1;
    let dest_clean = berth_runtime::spec::clean_path(&plan.dest);
    let dest_exists_dir = resolve_in_root(root, &dest_clean, &ResolveOptions::default())
        .map(|h| h.is_dir())
        .unwrap_or(false);
    for source in &plan.sources {
        let Some(top) = source.entries.first() else {
            continue;
        };
        let top_is_dir = top.meta.is_dir();
        let base = if plan.parents {
            let rel = crate::context::clean_relative(&source.name)?;
            let rel = if top_is_dir { rel } else { parent_of(&rel) };
            join(&dest_clean, &rel)
        } else {
            dest_clean.clone()
        };
        if plan.extract && !source.fetched && top.meta.is_file() && is_archive(&top.path) {
            create_dirs(root, &base, &plan.attrs)?;
            let host = resolve_in_root(root, &base, &ResolveOptions::default())?;
            let file =
                std::fs::File::open(&top.path).map_err(|e| Error::io(top.path.display(), e))?;
            let opts = berth_fs::ApplyOptions {
                max_bytes: Some(berth_store::MAX_LAYER_BYTES),
                ..berth_fs::ApplyOptions::default()
            };
            berth_fs::apply_archive(std::io::BufReader::new(file), &host, &opts)?;
            continue;
        }
        let top_target = if top_is_dir {
            create_dirs(root, &base, &plan.attrs)?;
            base.clone()
        } else if dest_is_dir || dest_exists_dir || plan.parents {
            create_dirs(root, &base, &plan.attrs)?;
            join(&base, basename(&top.path.to_string_lossy()))
        } else {
            base.clone()
        };
        let mut dirs: Vec<(PathBuf, &SourceEntry)> = Vec::new();
        // Host paths of the directories copied so far, by source path:
        // each is a real directory now, so its children need no resolving.
        let mut dir_hosts: std::collections::HashMap<&str, PathBuf> =
            std::collections::HashMap::new();
        if top_is_dir {
            let host = resolve_in_root(root, &top_target, &ResolveOptions::default())?;
            dir_hosts.insert("", host);
        }
        for e in &source.entries {
            if e.rel.is_empty() && top_is_dir {
                // The destination directory itself: contents only.
                continue;
            }
            let (parent, name) = e.rel.rsplit_once('/').unwrap_or(("", e.rel.as_str()));
            let host = match dir_hosts.get(parent) {
                Some(dir) if !e.rel.is_empty() => dir.join(name),
                _ => {
                    let target = if e.rel.is_empty() {
                        top_target.clone()
                    } else {
                        join(&top_target, &e.rel)
                    };
                    host_path(root, &target, &plan.attrs)?
                }
            };
            copy_entry(e, &host, &plan.attrs)?;
            if e.meta.is_dir() {
                dir_hosts.insert(e.rel.as_str(), host.clone());
                dirs.push((host, e));
            } else if !e.meta.is_file() {
                set_mtime(&host, &e.meta)?;
            }
        }
        // Directory mtimes last: writing their children changed them.
        for (host, e) in dirs.iter().rev() {
            set_mtime(host, &e.meta)?;
        }
    }
    for f in &plan.inline {
        let target = if dest_is_dir || dest_exists_dir {
            create_dirs(root, &dest_clean, &plan.attrs)?;
            join(&dest_clean, &f.name)
        } else {
            dest_clean.clone()
        };
        let host = host_path(root, &target, &plan.attrs)?;
        clear(&host, false)?;
        std::fs::write(&host, f.data.as_bytes()).map_err(|e| Error::io(host.display(), e))?;
        let (uid, gid) = plan.attrs.owner.unwrap_or((0, 0));
        chown(&host, uid, gid)?;
        std::fs::set_permissions(
            &host,
            std::fs::Permissions::from_mode(plan.attrs.mode.unwrap_or(0o644)),
        )
        .map_err(|e| Error::io(host.display(), e))?;
    }
    Ok(())
}

fn parent_of(rel: &str) -> String {
    rel.rsplit_once('/')
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

fn join(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_string()
    } else if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// `--chown=user[:group]`: names from the image's `/etc/passwd` and
/// `/etc/group`; without a group, the gid is the uid (Docker's rule).
pub(crate) fn resolve_chown(spec: &str, root: &Path) -> Result<(u32, u32)> {
    let read = |p: &str| {
        resolve_in_root(root, p, &ResolveOptions::default())
            .ok()
            .and_then(|h| std::fs::read_to_string(h).ok())
            .unwrap_or_default()
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => read("/etc/passwd")
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(user))
                    .then(|| f.nth(1).and_then(|u| u.parse::<u32>().ok()))
                    .flatten()
            })
            .ok_or_else(|| Error::Invalid(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}")))?,
    };
    let gid = match group {
        None | Some("") => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("/etc/group")
                .lines()
                .find_map(|l| {
                    let mut f = l.split(':');
                    (f.next() == Some(g))
                        .then(|| f.nth(1).and_then(|u| u.parse::<u32>().ok()))
                        .flatten()
                })
                .ok_or_else(|| Error::Invalid(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}")))?,
        },
    };
    Ok((uid, gid))
}

/// `--chmod=755` (octal).
pub(crate) fn parse_chmod(spec: &str) -> Result<u32> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Error::Invalid(format!("invalid chmod parameter: {spec:?}")))
}
