//! `berth cp`: copying files between a container's root filesystem and the
//! host, with Docker's path rules, on running and stopped containers.
//!
//! The container's root is untrusted: a running container can plant or
//! swap symlinks at any moment. So every path inside it is opened with
//! `openat2(RESOLVE_IN_ROOT)` (symlinks resolved as if the root were `/`,
//! `..` clamped at the root, magic links refused), the resulting descriptor
//! is used from then on (its `/proc/self/fd/N` path names that exact
//! directory, never a re-resolved one), reading walks the tree with
//! `O_NOFOLLOW` directory descriptors, and writing goes through
//! [`berth_fs::apply_layer`], which never follows a symlink either. Both
//! directions stream a tar between a producer thread and the extractor.
//!
//! The copy sees the container's overlay root only: volumes and bind
//! mounts inside a running container are not visible here (Docker's copy
//! runs in the container's mount namespace; this one does not).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_fs::{apply_layer, ApplyOptions, WhiteoutMode};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use super::prepare::is_mounted;
use super::prepare::{self, Layout};
use super::{state, Container};
use crate::{Engine, Error, Result};

/// `docker cp`'s flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `-a`: keep the source's uid/gid (otherwise files copied into a
    /// container belong to root, and files copied out to the caller).
    pub archive: bool,
    /// `-L`: follow a symlink that is the source itself.
    pub follow_link: bool,
}

impl Engine {
    /// Runs `f` with the container's root filesystem, given as a path that
    /// stays valid however the container's directory changes meanwhile (a
    /// `/proc/self/fd/N` of the mounted root). A stopped container's root is
    /// mounted for the call and unmounted after; its shim lock is held
    /// throughout, so no shim starts (and mounts or unmounts the root)
    /// while `f` runs. A running container's mounted root is used as is.
    pub fn with_container_root<T>(
        &self,
        container: &Container,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let dir = &container.dir;
        let rootfs = Layout(dir).rootfs();
        // A shim that is starting or stopping holds the lock while the root
        // is not (or no longer) mounted: wait a moment for either to settle.
        for _ in 0..100 {
            if let Some(lock) = state::try_lock_shim(dir)? {
                let was_mounted = is_mounted(&rootfs);
                if !was_mounted {
                    prepare::mount_rootfs(dir, &container.config)?;
                }
                let result = pin_dir(&rootfs).and_then(|root| f(&fd_path(&root)));
                if !was_mounted {
                    prepare::unmount_rootfs(dir);
                }
                drop(lock);
                return result;
            }
            if is_mounted(&rootfs) {
                // Pinned: a lazy unmount by the shim leaves this view intact.
                let root = pin_dir(&rootfs)?;
                return f(&fd_path(&root));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Error::Conflict(format!(
            "container {} is starting or stopping; try again",
            container.record.name
        )))
    }

    /// `berth cp HOST_SRC CONTAINER:DEST`.
    pub fn copy_to_container(
        &self,
        container: &Container,
        src: &Path,
        dest: &str,
        opts: &CopyOptions,
    ) -> Result<()> {
        refuse_read_only(container)?;
        let src_text = src.as_os_str().as_bytes();
        let follow = opts.follow_link || src_text.ends_with(b"/") || src_text.ends_with(b"/.");
        let source = HostSide
            .lookup(&src.to_string_lossy(), follow)?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "lstat {}: no such file or directory",
                    src.display()
                ))
            })?;
        let source_kind = SourceKind::of(src_text, &source.1);
        let owner = (!opts.archive).then_some((0, 0));
        self.with_container_root(container, |root| {
            let side = ContainerSide::new(root, container)?;
            let (target, top) = plan_destination(&side, dest, &source_kind)?;
            let apply = extract_options(true);
            pump(
                |out| write_tree(out, &source.0, top.as_deref(), owner),
                |input| apply_into(input, &target, &apply, &side),
            )
        })
    }

    /// `berth cp - CONTAINER:DEST`: a tar stream extracted into the
    /// existing directory DEST.
    pub fn extract_to_container(
        &self,
        container: &Container,
        dest: &str,
        tar: impl Read,
    ) -> Result<()> {
        refuse_read_only(container)?;
        self.with_container_root(container, |root| {
            let side = ContainerSide::new(root, container)?;
            let target = match side.lookup(dest, true)? {
                Some((fd, st)) if is_dir(&st) => fd,
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "destination \"{}:{dest}\" must be a directory",
                        container.record.name
                    )))
                }
                None => return Err(side.missing(dest)),
            };
            apply_into(tar, &target, &extract_options(true), &side)
        })
    }

    /// `berth cp CONTAINER:SRC HOST_DEST`.
    pub fn copy_from_container(
        &self,
        container: &Container,
        src: &str,
        dest: &Path,
        opts: &CopyOptions,
    ) -> Result<()> {
        self.with_container_root(container, |root| {
            let side = ContainerSide::new(root, container)?;
            let (source, kind) = container_source(&side, src, opts)?;
            let (target, top) = plan_destination(&HostSide, &dest.to_string_lossy(), &kind)?;
            let apply = extract_options(opts.archive);
            pump(
                |out| write_tree(out, &source, top.as_deref(), None),
                |input| apply_into(input, &target, &apply, &HostSide),
            )
        })
    }

    /// `berth cp CONTAINER:SRC -`: SRC as a tar stream, its top entry named
    /// after SRC's last component (or SRC's contents for `SRC/.`).
    pub fn archive_from_container(
        &self,
        container: &Container,
        src: &str,
        opts: &CopyOptions,
        out: impl Write,
    ) -> Result<()> {
        self.with_container_root(container, |root| {
            let side = ContainerSide::new(root, container)?;
            let (source, kind) = container_source(&side, src, opts)?;
            let top = if kind.contents_only {
                None
            } else {
                Some(kind.base.clone().unwrap_or_else(|| OsString::from(".")))
            };
            write_tree(out, &source, top.as_deref(), None)
                .map_err(|e| Error::io(format!("{}:{src}", container.record.name), e))
        })
    }
}

fn refuse_read_only(container: &Container) -> Result<()> {
    if container.config.run.read_only {
        return Err(Error::Invalid(
            "container rootfs is marked read-only".to_string(),
        ));
    }
    Ok(())
}

fn extract_options(preserve_owners: bool) -> ApplyOptions {
    ApplyOptions {
        whiteout_mode: WhiteoutMode::Literal,
        allow_devices: false,
        max_bytes: None,
        preserve_owners,
        xattrs: false,
    }
}

/// Opens the source inside the container; Docker's "Could not find" when
/// it is not there.
fn container_source(
    side: &ContainerSide<'_>,
    src: &str,
    opts: &CopyOptions,
) -> Result<(OwnedFd, SourceKind)> {
    let follow = opts.follow_link || src.ends_with('/') || src.ends_with("/.");
    let (fd, st) = side.lookup(src, follow)?.ok_or_else(|| side.missing(src))?;
    let kind = SourceKind::of(src.as_bytes(), &st);
    Ok((fd, kind))
}

/// What is being copied, as Docker's rules need it.
struct SourceKind {
    is_dir: bool,
    /// `SRC/.`: the directory's contents, not the directory.
    contents_only: bool,
    /// The last component of SRC (`None` for `/`).
    base: Option<OsString>,
}

impl SourceKind {
    fn of(path: &[u8], st: &Stat) -> SourceKind {
        let is_dir = is_dir(st);
        let contents_only = is_dir && (path.ends_with(b"/.") || path == b".");
        let base = Path::new(OsStr::from_bytes(path))
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .next_back();
        SourceKind {
            is_dir,
            contents_only: contents_only || base.is_none(),
            base,
        }
    }
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// One side of a copy: the host, or a container's root.
trait Side {
    /// Opens `path` (`O_PATH`), following a final symlink when `follow`;
    /// `None` when it does not exist.
    fn lookup(&self, path: &str, follow: bool) -> Result<Option<(OwnedFd, Stat)>>;
    /// The path `fd` is at, in this side's terms.
    fn path_of(&self, fd: &OwnedFd) -> Result<String>;
    /// The error for a missing path.
    fn missing(&self, path: &str) -> Error;
    /// How this side names `path` in messages.
    fn describe(&self, path: &str) -> String;
}

struct HostSide;

impl Side for HostSide {
    fn lookup(&self, path: &str, follow: bool) -> Result<Option<(OwnedFd, Stat)>> {
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).map_err(|e| errno(path, e))?;
                Ok(Some((fd, st)))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(errno(path, e)),
        }
    }

    fn path_of(&self, fd: &OwnedFd) -> Result<String> {
        let path = fd_path(fd);
        std::fs::read_link(&path)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| Error::io(path.display().to_string(), e))
    }

    fn missing(&self, path: &str) -> Error {
        Error::NotFound(format!("lstat {path}: no such file or directory"))
    }

    fn describe(&self, path: &str) -> String {
        path.to_string()
    }
}

/// A container's root, pinned by a descriptor.
struct ContainerSide<'a> {
    root: OwnedFd,
    /// Where the root really is (for turning descriptors back into paths).
    real_root: PathBuf,
    container: &'a Container,
}

impl<'a> ContainerSide<'a> {
    fn new(root: &Path, container: &'a Container) -> Result<ContainerSide<'a>> {
        let root = pin_dir(root)?;
        let real_root = std::fs::read_link(fd_path(&root))
            .map_err(|e| Error::io(root_display(container), e))?;
        Ok(ContainerSide {
            root,
            real_root,
            container,
        })
    }
}

fn root_display(container: &Container) -> String {
    format!("the root of container {}", container.record.name)
}

impl Side for ContainerSide<'_> {
    fn lookup(&self, path: &str, follow: bool) -> Result<Option<(OwnedFd, Stat)>> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut attempt = 0;
        loop {
            match rustix::fs::openat2(&self.root, rel, flags, Mode::empty(), resolve) {
                Ok(fd) => {
                    let st = rustix::fs::fstat(&fd).map_err(|e| errno(path, e))?;
                    return Ok(Some((fd, st)));
                }
                // RESOLVE_IN_ROOT answers EAGAIN when a rename raced the walk.
                Err(Errno::AGAIN) if attempt < 8 => attempt += 1,
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::NOSYS) => {
                    return Err(Error::Invalid(
                        "berth cp needs openat2 (Linux 5.6 or later)".to_string(),
                    ))
                }
                Err(e) => return Err(errno(&self.describe(path), e)),
            }
        }
    }

    fn path_of(&self, fd: &OwnedFd) -> Result<String> {
        let real = std::fs::read_link(fd_path(fd))
            .map_err(|e| Error::io(root_display(self.container), e))?;
        let inside = real.strip_prefix(&self.real_root).map_err(|_| {
            Error::Invalid(format!(
                "{} resolved outside the container's root",
                real.display()
            ))
        })?;
        Ok(format!("/{}", inside.display()))
    }

    fn missing(&self, path: &str) -> Error {
        Error::NotFound(format!(
            "Could not find the file {path} in container {}",
            self.container.record.name
        ))
    }

    fn describe(&self, path: &str) -> String {
        format!("{}:{path}", self.container.record.name)
    }
}

fn errno(path: &str, e: Errno) -> Error {
    Error::io(path.to_string(), e.into())
}

/// Docker's rules for where a copy lands: the directory to extract into
/// and the name the source's top entry takes there (`None`: the source's
/// contents go straight into the directory).
fn plan_destination(
    side: &dyn Side,
    dest: &str,
    source: &SourceKind,
) -> Result<(OwnedFd, Option<OsString>)> {
    match side.lookup(dest, true)? {
        Some((fd, st)) if is_dir(&st) => {
            if source.contents_only {
                Ok((fd, None))
            } else {
                Ok((fd, source.base.clone()))
            }
        }
        Some(_) if source.is_dir => Err(Error::Invalid(format!(
            "cannot copy a directory to a file: {}",
            side.describe(dest)
        ))),
        Some((fd, _)) => {
            // An existing file is replaced; through a symlink, its target is.
            let real = side.path_of(&fd)?;
            into_parent(side, &real)
        }
        None if dest.ends_with('/') && !source.is_dir => Err(Error::NotFound(format!(
            "destination directory must exist: {}",
            side.describe(dest)
        ))),
        None => into_parent(side, dest),
    }
}

/// The parent directory of `path` (which must exist) and its last name.
fn into_parent(side: &dyn Side, path: &str) -> Result<(OwnedFd, Option<OsString>)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => (".", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::Invalid(format!(
            "invalid destination {}",
            side.describe(path)
        )));
    }
    match side.lookup(parent, true)? {
        Some((fd, st)) if is_dir(&st) => Ok((fd, Some(OsString::from(name)))),
        Some(_) => Err(Error::Invalid(format!(
            "{}: not a directory",
            side.describe(parent)
        ))),
        None => Err(side.missing(parent)),
    }
}

/// Extracts a tar into the directory `target` (a descriptor; never
/// re-resolved), refusing anything that would leave it.
fn apply_into(
    input: impl Read,
    target: &OwnedFd,
    opts: &ApplyOptions,
    side: &dyn Side,
) -> Result<()> {
    let path = fd_path(target);
    apply_layer(input, &path, opts).map_err(|e| {
        // Name the destination the user knows, not /proc/self/fd/N.
        let shown = side.path_of(target).unwrap_or_default();
        let text = e
            .to_string()
            .replace(&*path.to_string_lossy(), &side.describe(&shown));
        Error::Invalid(format!("copying into {}: {text}", side.describe(&shown)))
    })?;
    Ok(())
}

/// Runs `produce` (writing a tar) on a thread and `consume` (reading it)
/// here, connected by a pipe. A producer's failure wins over the
/// consumer's (which then sees a truncated stream).
fn pump(
    produce: impl FnOnce(&mut io::PipeWriter) -> io::Result<()> + Send,
    consume: impl FnOnce(&mut io::PipeReader) -> Result<()>,
) -> Result<()> {
    let (mut reader, mut writer) = io::pipe().map_err(|e| Error::io("a pipe".to_string(), e))?;
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || produce(&mut writer));
        let consumed = consume(&mut reader);
        drop(reader);
        let produced = producer
            .join()
            .map_err(|_| Error::Invalid("the copy's reader thread failed".to_string()))?;
        match (produced, consumed) {
            // The extractor stopped reading at the end of the archive.
            (Err(e), Ok(())) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            (Err(e), Err(c)) if e.kind() == io::ErrorKind::BrokenPipe => Err(c),
            (Err(e), _) => Err(Error::io("reading the copy's source".to_string(), e)),
            (Ok(()), consumed) => consumed,
        }
    })
}

/// `/proc/self/fd/N`: a path that names exactly what `fd` is.
fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn pin_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(path.display().to_string(), e.into()))
}

/// Writes `source` (an `O_PATH` descriptor) as a tar: its top entry named
/// `top`, or, for `None`, a directory's children at the top level. Nothing
/// below the source is reached through a symlink; `owner` replaces every
/// entry's uid/gid.
fn write_tree(
    out: impl Write,
    source: &OwnedFd,
    top: Option<&OsStr>,
    owner: Option<(u64, u64)>,
) -> io::Result<()> {
    let mut writer = TreeWriter {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        owner,
    };
    match top {
        Some(name) => writer.entry(&Place::Pinned(source), Path::new(name))?,
        None => {
            let dir = Place::Pinned(source).open(OFlags::RDONLY | OFlags::DIRECTORY)?;
            writer.children(&dir, Path::new(""))?;
        }
    }
    writer.tar.into_inner()?.flush()
}

/// Where an object is: a descriptor of it, or a name in a directory.
enum Place<'a> {
    Pinned(&'a OwnedFd),
    In(BorrowedFd<'a>, &'a OsStr),
}

impl Place<'_> {
    fn stat(&self) -> io::Result<Stat> {
        Ok(match self {
            Place::Pinned(fd) => rustix::fs::fstat(fd)?,
            Place::In(dir, name) => rustix::fs::statat(dir, *name, AtFlags::SYMLINK_NOFOLLOW)?,
        })
    }

    /// Opens the object itself; never through a symlink.
    fn open(&self, flags: OFlags) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC;
        Ok(match self {
            // Reopening the descriptor's own /proc link reaches exactly it.
            Place::Pinned(fd) => rustix::fs::open(fd_path(*fd), flags, Mode::empty())?,
            Place::In(dir, name) => {
                rustix::fs::openat(dir, *name, flags | OFlags::NOFOLLOW, Mode::empty())?
            }
        })
    }

    fn readlink(&self) -> io::Result<Vec<u8>> {
        let target = match self {
            Place::Pinned(fd) => rustix::fs::readlinkat(fd, "", Vec::new())?,
            Place::In(dir, name) => rustix::fs::readlinkat(dir, *name, Vec::new())?,
        };
        Ok(target.into_bytes())
    }
}

struct TreeWriter<W: Write> {
    tar: tar::Builder<W>,
    /// Files with several links already written, by (device, inode).
    links: HashMap<(u64, u64), PathBuf>,
    owner: Option<(u64, u64)>,
}

impl<W: Write> TreeWriter<W> {
    fn entry(&mut self, place: &Place<'_>, name: &Path) -> io::Result<()> {
        self.write_entry(place, name).map_err(|e| {
            if e.to_string().starts_with('/') || e.kind() == io::ErrorKind::BrokenPipe {
                e
            } else {
                io::Error::new(e.kind(), format!("/{}: {e}", name.display()))
            }
        })
    }

    fn write_entry(&mut self, place: &Place<'_>, name: &Path) -> io::Result<()> {
        let st = place.stat()?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let mut header = tar::Header::new_gnu();
        header.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self
            .owner
            .unwrap_or((u64::from(st.st_uid), u64::from(st.st_gid)));
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        header.set_size(0);
        match kind {
            FileType::Directory => {
                let dir = place.open(OFlags::RDONLY | OFlags::DIRECTORY)?;
                header.set_entry_type(tar::EntryType::Directory);
                self.tar.append_data(&mut header, name, io::empty())?;
                self.children(&dir, name)
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        header.set_entry_type(tar::EntryType::Link);
                        return self.tar.append_link(&mut header, name, first);
                    }
                    self.links.insert(key, name.to_path_buf());
                }
                // O_NONBLOCK: a fifo swapped in meanwhile must not hang us.
                let fd = place.open(OFlags::RDONLY | OFlags::NONBLOCK)?;
                let opened = rustix::fs::fstat(&fd)?;
                if FileType::from_raw_mode(opened.st_mode) != FileType::RegularFile {
                    return Err(io::Error::other(format!(
                        "{} changed while being copied",
                        name.display()
                    )));
                }
                let size = u64::try_from(opened.st_size).unwrap_or(0);
                header.set_size(size);
                header.set_entry_type(tar::EntryType::Regular);
                // Exactly `size` bytes, whatever the file does meanwhile.
                let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
                self.tar.append_data(&mut header, name, data)
            }
            FileType::Symlink => {
                let target = place.readlink()?;
                header.set_entry_type(tar::EntryType::Symlink);
                self.tar
                    .append_link(&mut header, name, OsStr::from_bytes(&target))
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                header.set_entry_type(match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                header.set_device_major(rustix::fs::major(st.st_rdev))?;
                header.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                self.tar.append_data(&mut header, name, io::empty())
            }
            // Sockets and the unknown are not copied (as tar does).
            _ => Ok(()),
        }
    }

    fn children(&mut self, dir: &OwnedFd, prefix: &Path) -> io::Result<()> {
        let mut names: Vec<OsString> = Vec::new();
        for entry in Dir::read_from(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        names.sort();
        for name in &names {
            self.entry(&Place::In(dir.as_fd(), name), &prefix.join(name))?;
        }
        Ok(())
    }
}
