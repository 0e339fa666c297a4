//! Unpacking a layer tar into a directory, safely.
//!
//! [`apply_layer`] streams a tar (see [`apply_layer_compressed`] for gzip and
//! zstd) into `target`: regular files, directories, symlinks, hardlinks,
//! fifos, and devices when allowed; owners, modes, mtimes and `SCHILY.xattr.*`
//! extended attributes; directory modes and mtimes are set after their
//! contents. Whiteouts (`.wh.NAME`, `.wh..wh..opq`) either act on the target
//! ([`WhiteoutMode::Remove`], for a flattened tree) or are converted into
//! overlayfs form ([`WhiteoutMode::Overlay`], for a snapshot that will be an
//! overlay lowerdir).
//!
//! Nothing outside `target` is ever touched:
//! - names are cleaned lexically; a leading `/` is dropped (as Docker does),
//!   a `..` that would climb above the target, or a NUL byte, refuses the entry;
//! - every entry is created through directory descriptors opened with
//!   `O_NOFOLLOW` from the target down: if a parent component is a symlink
//!   (or not a directory) the entry is refused, so a symlink — planted earlier
//!   in the same archive, or swapped in concurrently — is never followed;
//! - hardlink targets are cleaned the same way, must exist inside the target,
//!   and are reached without following symlinks (a hardlink to a symlink
//!   links the symlink itself, as `link(2)` does);
//! - a relative symlink target that lexically climbs above the target is
//!   refused (Docker's rule); absolute targets are kept, since they are only
//!   ever interpreted inside the container's root;
//! - devices are skipped unless [`ApplyOptions::allow_devices`];
//! - [`ApplyOptions::max_bytes`] caps both the tar stream read and the bytes
//!   written to files (sparse files included), so a decompression bomb stops
//!   with [`Error::TooLarge`].
//!
//! Memory is bounded: file contents stream through one buffer; what is kept
//! per entry is its path (to know, for an opaque directory, what this layer
//! added) and, for directories, their final mode and mtime. PAX and GNU
//! long-name records are read whole by the `tar` crate, which `max_bytes`
//! bounds too.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use crate::at::{clear_dir, open_dir_at, remove_all_at, reopen_dir, type_at};
use crate::compress::decompress;
use crate::error::{Error, IoContext, Result};

/// Prefix of an AUFS/OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Prefix of AUFS metadata names (`.wh..wh.plnk` and friends), never content.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The opaque-directory marker.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The overlayfs xattr marking a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

/// What to do with whiteout entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Apply them: `.wh.NAME` deletes NAME from the target, an opaque marker
    /// deletes what the directory held before this layer.
    #[default]
    Remove,
    /// Convert them to overlayfs form: a 0/0 character device for a deleted
    /// name, `trusted.overlay.opaque=y` on an opaque directory.
    Overlay,
    /// Not whiteouts at all: `.wh.` names are ordinary files (a copy of
    /// user files, as `docker cp` extracts them).
    Literal,
}

/// Options for [`apply_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// How whiteouts are handled.
    pub whiteout_mode: WhiteoutMode,
    /// Create character and block devices (otherwise they are skipped and counted).
    pub allow_devices: bool,
    /// Cap on bytes read from the tar stream and on bytes written to files.
    pub max_bytes: Option<u64>,
    /// chown entries to the archive's uid/gid (needs root; default: when root).
    pub preserve_owners: bool,
    /// Apply `SCHILY.xattr.*` records (`trusted.overlay.*` is always ignored).
    pub xattrs: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteout_mode: WhiteoutMode::Remove,
            allow_devices: false,
            max_bytes: None,
            preserve_owners: rustix::process::geteuid().is_root(),
            xattrs: true,
        }
    }
}

/// What [`apply_layer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyStats {
    /// Entries read (extension headers not counted).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directories created or updated.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hardlinks created.
    pub hardlinks: u64,
    /// Device nodes created.
    pub devices: u64,
    /// Fifos created.
    pub fifos: u64,
    /// Whiteouts applied or converted.
    pub whiteouts: u64,
    /// Opaque markers applied or converted.
    pub opaque_dirs: u64,
    /// Entries skipped (devices when not allowed, AUFS metadata, the root entry).
    pub skipped: u64,
    /// Bytes written to regular files.
    pub bytes: u64,
}

/// Apply an uncompressed layer tar to `target` (which must exist).
pub fn apply_layer<R: Read>(
    reader: R,
    target: impl AsRef<Path>,
    opts: &ApplyOptions,
) -> Result<ApplyStats> {
    let target = target.as_ref();
    let hit = Rc::new(Cell::new(false));
    let limited = Limited {
        inner: reader,
        read: 0,
        limit: opts.max_bytes,
        hit: hit.clone(),
    };
    let root = rustix::fs::open(
        target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(target)?;
    let mut applier = Applier {
        root,
        target: target.to_path_buf(),
        opts,
        stats: ApplyStats::default(),
        layer_paths: HashSet::new(),
        dirs: Vec::new(),
        written: 0,
        buf: vec![0u8; 256 * 1024],
        hit,
        parent_cache: None,
    };
    let mut archive = tar::Archive::new(limited);
    let entries = archive.entries().map_err(|e| applier.stream_error(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| applier.stream_error(e))?;
        applier.entry(&mut entry)?;
    }
    applier.finish_dirs()?;
    Ok(applier.stats)
}

/// Apply a layer that may be gzip- or zstd-compressed (told by magic bytes).
/// `max_bytes` applies to the decompressed stream.
pub fn apply_layer_compressed<R: Read>(
    reader: R,
    target: impl AsRef<Path>,
    opts: &ApplyOptions,
) -> Result<ApplyStats> {
    let (_, stream) = decompress(reader)?;
    apply_layer(stream, target, opts)
}

/// Extract an archive that is not an image layer (ADD's auto-extraction,
/// a build context): plain, gzip, zstd, bzip2 or xz, told by magic bytes.
/// `max_bytes` applies to the decompressed stream.
pub fn apply_archive<R: Read>(
    reader: R,
    target: impl AsRef<Path>,
    opts: &ApplyOptions,
) -> Result<ApplyStats> {
    let (_, stream) = crate::compress::decompress_archive(reader)?;
    apply_layer(stream, target, opts)
}

/// Clean an archive name into components: empty and `.` components dropped
/// (so a leading `/` is too), `..` resolved lexically; climbing above the
/// root or a NUL byte is an error.
pub(crate) fn clean_name(raw: &[u8]) -> std::result::Result<Vec<OsString>, &'static str> {
    if raw.contains(&0) {
        return Err("name contains a NUL byte");
    }
    let mut out: Vec<OsString> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("name climbs out of the target");
                }
            }
            _ => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

fn join(comps: &[OsString]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    out
}

struct Limited<R> {
    inner: R,
    read: u64,
    limit: Option<u64>,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if let Some(limit) = self.limit {
            if self.read > limit {
                self.hit.set(true);
                return Err(io::Error::other("layer size limit exceeded"));
            }
        }
        Ok(n)
    }
}

struct DeferredDir {
    comps: Vec<OsString>,
    mode: u32,
    mtime: i64,
}

struct Applier<'o> {
    root: OwnedFd,
    target: PathBuf,
    opts: &'o ApplyOptions,
    stats: ApplyStats,
    /// Paths (relative, `/`-joined) this layer created: kept by an opaque marker.
    layer_paths: HashSet<Vec<u8>>,
    dirs: Vec<DeferredDir>,
    written: u64,
    buf: Vec<u8>,
    hit: Rc<Cell<bool>>,
    /// The directory the last entry went into: archives list a directory's
    /// files together, so most entries reuse it instead of walking from
    /// the target again. Dropped whenever an entry could change a directory
    /// on that path.
    parent_cache: Option<(Vec<OsString>, OwnedFd)>,
}

/// The metadata of an entry, read before its content.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Applier<'_> {
    fn stream_error(&self, e: io::Error) -> Error {
        if self.hit.get() {
            Error::TooLarge {
                limit: self.opts.max_bytes.unwrap_or(0),
            }
        } else {
            Error::Archive(e)
        }
    }

    fn rel_path(&self, comps: &[OsString]) -> PathBuf {
        let mut p = self.target.clone();
        p.extend(comps);
        p
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let etype = entry.header().entry_type();
        if matches!(etype, EntryType::XGlobalHeader) {
            return Ok(());
        }
        self.stats.entries += 1;
        let comps = clean_name(&raw).map_err(|r| Error::entry(&raw, r))?;
        let Some((name, parents)) = comps.split_last() else {
            // The root itself ("./"): the target's own metadata is not the layer's to set.
            self.stats.skipped += 1;
            return Ok(());
        };
        let whiteouts = self.opts.whiteout_mode != WhiteoutMode::Literal;
        if whiteouts
            && parents
                .iter()
                .any(|p| p.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(Error::entry(&raw, "whiteout name used as a directory"));
        }
        let is_v7_dir = etype == EntryType::Regular && raw.ends_with(b"/");
        let plain_file = matches!(etype, EntryType::Regular | EntryType::Continuous) && !is_v7_dir;
        let replaces_cached = self
            .parent_cache
            .as_ref()
            .is_some_and(|(cached, _)| cached.starts_with(&comps));
        if !plain_file || replaces_cached {
            self.parent_cache = None;
        }
        if whiteouts && name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&raw, parents, name);
        }
        let meta = self.meta(&raw, entry)?;
        let parent = self.cached_parent(&raw, parents)?;
        let path_key = join(&comps);
        match etype {
            _ if is_v7_dir => self.dir(&raw, &parent, &comps, &meta)?,
            EntryType::Directory => self.dir(&raw, &parent, &comps, &meta)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&raw, &parent, &comps, &meta, entry)?
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .ok_or_else(|| Error::entry(&raw, "symlink without a target"))?;
                self.symlink(&raw, &parent, &comps, &link, &meta)?
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .ok_or_else(|| Error::entry(&raw, "hardlink without a target"))?;
                self.hardlink(&raw, &parent, &comps, &link)?
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if etype != EntryType::Fifo && !self.opts.allow_devices {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                self.node(&raw, &parent, &comps, etype, entry.header(), &meta)?
            }
            other => {
                return Err(Error::entry(
                    &raw,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ))
            }
        }
        self.layer_paths.insert(path_key);
        Ok(())
    }

    fn meta<R: Read>(&self, raw: &[u8], entry: &mut tar::Entry<'_, R>) -> Result<Meta> {
        let h = entry.header();
        let bad = |what: &str| Error::entry(raw, format!("unreadable {what}"));
        let mode = h.mode().map_err(|_| bad("mode"))? & 0o7777;
        let id = |v: u64, what: &str| -> Result<u32> {
            match u32::try_from(v) {
                Ok(v) if v != u32::MAX => Ok(v),
                _ => Err(Error::entry(raw, format!("{what} out of range"))),
            }
        };
        let uid = id(h.uid().map_err(|_| bad("uid"))?, "uid")?;
        let gid = id(h.gid().map_err(|_| bad("gid"))?, "gid")?;
        let mtime = i64::try_from(h.mtime().map_err(|_| bad("mtime"))?).unwrap_or(i64::MAX);
        let mut xattrs = Vec::new();
        if self.opts.xattrs {
            if let Some(exts) = entry.pax_extensions().map_err(|_| bad("PAX records"))? {
                for ext in exts {
                    let ext = ext.map_err(|_| bad("PAX record"))?;
                    let key = ext.key_bytes();
                    let Some(name) = key.strip_prefix(XATTR_PAX_PREFIX.as_bytes()) else {
                        continue;
                    };
                    if name.is_empty() || name.contains(&0) || name.starts_with(b"trusted.overlay.")
                    {
                        continue;
                    }
                    xattrs.push((
                        OsStr::from_bytes(name).to_os_string(),
                        ext.value_bytes().to_vec(),
                    ));
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    /// [`Applier::open_parent`] (creating), through the one-entry cache.
    fn cached_parent(&mut self, raw: &[u8], parents: &[OsString]) -> Result<OwnedFd> {
        if let Some((cached, fd)) = &self.parent_cache {
            if cached.as_slice() == parents {
                return rustix::io::fcntl_dupfd_cloexec(fd, 0)
                    .map_err(|e| Error::io(self.rel_path(parents), e));
            }
        }
        let fd = self
            .open_parent(raw, parents, true)?
            .ok_or_else(|| Error::entry(raw, "parent directory vanished"))?;
        let copy = rustix::io::fcntl_dupfd_cloexec(&fd, 0)
            .map_err(|e| Error::io(self.rel_path(parents), e))?;
        self.parent_cache = Some((parents.to_vec(), copy));
        Ok(fd)
    }

    /// Walk `parents` from the target with `O_NOFOLLOW`, creating missing
    /// directories (0755) when `create`; `None` when one is missing and not
    /// `create`. A symlink or non-directory on the way refuses the entry.
    fn open_parent(
        &mut self,
        raw: &[u8],
        parents: &[OsString],
        create: bool,
    ) -> Result<Option<OwnedFd>> {
        let mut fd = reopen_dir(&self.root).at(&self.target)?;
        for (i, p) in parents.iter().enumerate() {
            let next = match open_dir_at(&fd, p) {
                Ok(next) => next,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&fd, p, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(Error::io(self.rel_path(&parents[..=i]), e)),
                    }
                    let next =
                        open_dir_at(&fd, p).map_err(|e| self.parent_error(raw, parents, i, e))?;
                    rustix::fs::fchmod(&next, Mode::from_raw_mode(0o755))
                        .at(&self.rel_path(&parents[..=i]))?;
                    self.layer_paths.insert(join(&parents[..=i]));
                    next
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(self.parent_error(raw, parents, i, e)),
            };
            fd = next;
        }
        Ok(Some(fd))
    }

    fn parent_error(&self, raw: &[u8], parents: &[OsString], i: usize, e: Errno) -> Error {
        match e {
            Errno::LOOP | Errno::NOTDIR => Error::entry(
                raw,
                format!(
                    "parent {:?} is a symlink or not a directory",
                    String::from_utf8_lossy(&join(&parents[..=i]))
                ),
            ),
            e => Error::io(self.rel_path(&parents[..=i]), e),
        }
    }

    fn whiteout(&mut self, raw: &[u8], parents: &[OsString], name: &OsStr) -> Result<()> {
        let name = name.as_bytes();
        if name == WHITEOUT_OPAQUE.as_bytes() {
            self.stats.opaque_dirs += 1;
            let dir = self
                .open_parent(raw, parents, true)?
                .ok_or_else(|| Error::entry(raw, "opaque directory vanished"))?;
            let dir_path = self.rel_path(parents);
            match self.opts.whiteout_mode {
                WhiteoutMode::Overlay => {
                    rustix::fs::fsetxattr(&dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                        .at(&dir_path)?;
                }
                WhiteoutMode::Remove | WhiteoutMode::Literal => {
                    let prefix = join(parents);
                    let layer_paths = &self.layer_paths;
                    clear_dir(&dir, |child| {
                        let mut key = prefix.clone();
                        if !key.is_empty() {
                            key.push(b'/');
                        }
                        key.extend_from_slice(child.as_bytes());
                        layer_paths.contains(&key)
                    })
                    .at(&dir_path)?;
                }
            }
            return Ok(());
        }
        if name.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            self.stats.skipped += 1;
            return Ok(());
        }
        let victim = name.get(WHITEOUT_PREFIX.len()..).unwrap_or(&[]);
        if victim.is_empty() || victim == b"." || victim == b".." {
            return Err(Error::entry(
                raw,
                "whiteout names nothing that can be removed",
            ));
        }
        let victim = OsStr::from_bytes(victim);
        self.stats.whiteouts += 1;
        let mut comps = parents.to_vec();
        comps.push(victim.to_os_string());
        let path = self.rel_path(&comps);
        match self.opts.whiteout_mode {
            WhiteoutMode::Remove | WhiteoutMode::Literal => {
                if let Some(dir) = self.open_parent(raw, parents, false)? {
                    remove_all_at(&dir, victim).at(&path)?;
                }
            }
            WhiteoutMode::Overlay => {
                let dir = self
                    .open_parent(raw, parents, true)?
                    .ok_or_else(|| Error::entry(raw, "whiteout parent vanished"))?;
                remove_all_at(&dir, victim).at(&path)?;
                rustix::fs::mknodat(
                    &dir,
                    victim,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .at(&path)?;
                self.layer_paths.insert(join(&comps));
            }
        }
        Ok(())
    }

    fn dir(
        &mut self,
        _raw: &[u8],
        parent: &OwnedFd,
        comps: &[OsString],
        meta: &Meta,
    ) -> Result<()> {
        let path = self.rel_path(comps);
        let name = last(comps);
        match type_at(parent, name).at(&path)? {
            Some(FileType::Directory) => {}
            Some(_) => {
                remove_all_at(parent, name).at(&path)?;
                rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)).at(&path)?;
            }
            None => rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)).at(&path)?,
        }
        let dir = open_dir_at(parent, name).at(&path)?;
        self.owner_and_xattrs(&dir, &path, meta)?;
        self.dirs.push(DeferredDir {
            comps: comps.to_vec(),
            mode: meta.mode,
            mtime: meta.mtime,
        });
        self.stats.dirs += 1;
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        raw: &[u8],
        parent: &OwnedFd,
        comps: &[OsString],
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        let size = entry.size();
        self.written = self.written.saturating_add(size);
        if let Some(limit) = self.opts.max_bytes {
            if self.written > limit {
                return Err(Error::TooLarge { limit });
            }
        }
        let path = self.rel_path(comps);
        let name = last(comps);
        remove_all_at(parent, name).at(&path)?;
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .at(&path)?;
        let mut file = File::from(fd);
        let mut copied = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.stream_error(e)),
            };
            copied += n as u64;
            if copied > size {
                return Err(Error::entry(raw, "entry longer than its declared size"));
            }
            let chunk = self.buf.get(..n).unwrap_or(&[]);
            file.write_all(chunk).at(&path)?;
        }
        self.stats.bytes += copied;
        self.owner_and_xattrs(&file, &path, meta)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode)).at(&path)?;
        rustix::fs::futimens(&file, &times(meta.mtime)).at(&path)?;
        self.stats.files += 1;
        Ok(())
    }

    fn symlink(
        &mut self,
        raw: &[u8],
        parent: &OwnedFd,
        comps: &[OsString],
        link: &[u8],
        meta: &Meta,
    ) -> Result<()> {
        if link.is_empty() || link.contains(&0) {
            return Err(Error::entry(raw, "invalid symlink target"));
        }
        if !link.starts_with(b"/") {
            // Docker's rule: the target, taken from the link's directory,
            // must not lexically climb out of the root.
            let mut depth = comps.len().saturating_sub(1);
            for c in link.split(|b| *b == b'/') {
                match c {
                    b"" | b"." => {}
                    b".." => {
                        depth = depth.checked_sub(1).ok_or_else(|| {
                            Error::entry(raw, "symlink target climbs out of the target")
                        })?;
                    }
                    _ => depth += 1,
                }
            }
        }
        let path = self.rel_path(comps);
        let name = last(comps);
        remove_all_at(parent, name).at(&path)?;
        rustix::fs::symlinkat(OsStr::from_bytes(link), parent, name).at(&path)?;
        if self.opts.preserve_owners {
            rustix::fs::chownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .at(&path)?;
        }
        rustix::fs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .at(&path)?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn hardlink(
        &mut self,
        raw: &[u8],
        parent: &OwnedFd,
        comps: &[OsString],
        link: &[u8],
    ) -> Result<()> {
        let src =
            clean_name(link).map_err(|r| Error::entry(raw, format!("hardlink target: {r}")))?;
        let Some((src_name, src_parents)) = src.split_last() else {
            return Err(Error::entry(raw, "hardlink to the root"));
        };
        if src == comps {
            return Err(Error::entry(raw, "hardlink to itself"));
        }
        let src_dir = self
            .open_parent(raw, src_parents, false)?
            .ok_or_else(|| Error::entry(raw, "hardlink target does not exist"))?;
        match type_at(&src_dir, src_name).at(&self.rel_path(&src))? {
            None => return Err(Error::entry(raw, "hardlink target does not exist")),
            Some(FileType::Directory) => {
                return Err(Error::entry(raw, "hardlink target is a directory"))
            }
            Some(_) => {}
        }
        let path = self.rel_path(comps);
        let name = last(comps);
        remove_all_at(parent, name).at(&path)?;
        rustix::fs::linkat(&src_dir, src_name, parent, name, AtFlags::empty()).at(&path)?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    fn node(
        &mut self,
        raw: &[u8],
        parent: &OwnedFd,
        comps: &[OsString],
        etype: EntryType,
        header: &tar::Header,
        meta: &Meta,
    ) -> Result<()> {
        let path = self.rel_path(comps);
        let name = last(comps);
        let (ftype, dev) = match etype {
            EntryType::Fifo => (FileType::Fifo, 0),
            t => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let ft = if t == EntryType::Block {
                    FileType::BlockDevice
                } else {
                    FileType::CharacterDevice
                };
                (ft, rustix::fs::makedev(major, minor))
            }
        };
        remove_all_at(parent, name).at(&path)?;
        rustix::fs::mknodat(parent, name, ftype, Mode::from_raw_mode(0o600), dev).at(&path)?;
        // Reopen without following: what we just made must still be a node.
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .at(&path)?;
        if self.opts.preserve_owners {
            rustix::fs::chownat(
                &fd,
                "",
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::EMPTY_PATH,
            )
            .at(&path)?;
        }
        // chmod through /proc would follow; fchmodat on the parent with a
        // name that we just created is the portable way (no AT_SYMLINK_NOFOLLOW
        // on older kernels). The type check below guards against a swap.
        match type_at(parent, name).at(&path)? {
            Some(t) if t == ftype => {}
            _ => return Err(Error::entry(raw, "node replaced while being created")),
        }
        rustix::fs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .at(&path)?;
        rustix::fs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .at(&path)?;
        if ftype == FileType::Fifo {
            self.stats.fifos += 1;
        } else {
            self.stats.devices += 1;
        }
        Ok(())
    }

    fn owner_and_xattrs(&self, fd: impl AsFd, path: &Path, meta: &Meta) -> Result<()> {
        let fd = fd.as_fd();
        if self.opts.preserve_owners {
            rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .at(path)?;
        }
        for (name, value) in &meta.xattrs {
            match rustix::fs::fsetxattr(fd, name.as_os_str(), value, XattrFlags::empty()) {
                Ok(()) | Err(Errno::NOTSUP) => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        let mut done: HashSet<&[OsString]> = HashSet::new();
        for d in dirs.iter().rev() {
            if !done.insert(&d.comps) {
                continue;
            }
            let Some((name, parents)) = d.comps.split_last() else {
                continue;
            };
            // Later entries may have replaced or removed it: then skip.
            let parent = match self.open_parent(b"", parents, false) {
                Ok(Some(p)) => p,
                _ => continue,
            };
            let dir = match open_dir_at(&parent, name) {
                Ok(fd) => fd,
                Err(_) => continue,
            };
            let path = self.rel_path(&d.comps);
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(d.mode)).at(&path)?;
            rustix::fs::futimens(&dir, &times(d.mtime)).at(&path)?;
        }
        Ok(())
    }
}

fn last(comps: &[OsString]) -> &OsStr {
    comps
        .last()
        .map(|c| c.as_os_str())
        .unwrap_or(OsStr::new("."))
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(raw: &str) -> std::result::Result<Vec<String>, &'static str> {
        clean_name(raw.as_bytes()).map(|v| {
            v.into_iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn cleans_names() {
        assert_eq!(names("a/b/c").unwrap(), ["a", "b", "c"]);
        assert_eq!(names("/etc/x").unwrap(), ["etc", "x"]);
        assert_eq!(names("./a//b/./").unwrap(), ["a", "b"]);
        assert_eq!(names("a/../b").unwrap(), ["b"]);
        assert!(names("./").unwrap().is_empty());
        assert!(names("../x").is_err());
        assert!(names("/../x").is_err());
        assert!(names("a/../../x").is_err());
        assert!(names("a\0b").is_err());
    }
}
