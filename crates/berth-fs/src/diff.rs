//! Writing a directory tree as a layer tar, deterministically.
//!
//! [`tar_dir`] writes a full layer from a directory; [`diff_overlay_upper`]
//! writes the layer of an overlayfs upper directory, turning overlay
//! whiteouts into OCI form (a 0/0 character device → `.wh.NAME`,
//! `trusted.overlay.opaque=y` → `DIR/.wh..wh..opq`).
//!
//! The output depends only on the tree: entries in depth-first order with
//! each directory's children sorted by name bytes (a directory before its
//! contents, the opaque marker right after its directory), USTAR headers with
//! PAX records where USTAR cannot say it (long names, long link targets,
//! large ids, xattrs), empty uname/gname, no atime/ctime, directories named
//! with a trailing `/`, files that share an inode written once and then as
//! hardlink entries to the first path. With
//! [`TarOptions::source_date_epoch`] every mtime later than it is clamped to
//! it (as `SOURCE_DATE_EPOCH` asks). `trusted.overlay.*` xattrs are never
//! written; sockets are skipped, as Docker does.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::apply::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::error::{Error, IoContext, Result};

/// Options for [`tar_dir`] and [`diff_overlay_upper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarOptions {
    /// Clamp every mtime to at most this many seconds since the epoch.
    pub source_date_epoch: Option<i64>,
    /// Write extended attributes as `SCHILY.xattr.*` PAX records.
    pub xattrs: bool,
}

impl Default for TarOptions {
    fn default() -> Self {
        TarOptions {
            source_date_epoch: None,
            xattrs: true,
        }
    }
}

/// What a tar writer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TarStats {
    /// Entries written (PAX headers not counted).
    pub entries: u64,
    /// Whiteout and opaque entries among them.
    pub whiteouts: u64,
    /// File content bytes written.
    pub bytes: u64,
}

/// Write the tree under `dir` (not `dir` itself) as a tar to `writer`;
/// returns the writer (finished, not flushed further) and statistics.
pub fn tar_dir<W: Write>(
    dir: impl AsRef<Path>,
    writer: W,
    opts: &TarOptions,
) -> Result<(W, TarStats)> {
    TreeWriter::new(writer, opts, false).run(dir.as_ref())
}

/// Write the overlayfs upper directory `upper` as an OCI layer tar,
/// converting overlay whiteouts into `.wh.` entries.
pub fn diff_overlay_upper<W: Write>(
    upper: impl AsRef<Path>,
    writer: W,
    opts: &TarOptions,
) -> Result<(W, TarStats)> {
    TreeWriter::new(writer, opts, true).run(upper.as_ref())
}

const BLOCK: usize = 512;
const OCTAL7_MAX: u64 = 0o7777777;
const OCTAL11_MAX: u64 = 0o77777777777;

enum Kind {
    Dir,
    File,
    Symlink,
    Char,
    Block,
    Fifo,
    /// An overlay whiteout (0/0 char device) written as `.wh.NAME`.
    Whiteout,
}

struct Child {
    emit: Vec<u8>,
    path: PathBuf,
    md: Metadata,
    kind: Kind,
}

struct TreeWriter<'o, W> {
    out: W,
    opts: &'o TarOptions,
    overlay: bool,
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: TarStats,
    buf: Vec<u8>,
}

/// One entry's header, before it is encoded.
struct Entry<'a> {
    name: &'a [u8],
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    link: &'a [u8],
    dev: (u32, u32),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'o, W: Write> TreeWriter<'o, W> {
    fn new(out: W, opts: &'o TarOptions, overlay: bool) -> Self {
        TreeWriter {
            out,
            opts,
            overlay,
            links: HashMap::new(),
            stats: TarStats::default(),
            buf: vec![0u8; 256 * 1024],
        }
    }

    fn run(mut self, dir: &Path) -> Result<(W, TarStats)> {
        self.visit(dir, &[])?;
        self.out.write_all(&[0u8; BLOCK * 2]).at(dir)?;
        self.out.flush().at(dir)?;
        Ok((self.out, self.stats))
    }

    fn clamp(&self, mtime: i64) -> i64 {
        let t = mtime.max(0);
        match self.opts.source_date_epoch {
            Some(epoch) => t.min(epoch.max(0)),
            None => t,
        }
    }

    fn visit(&mut self, dir: &Path, prefix: &[u8]) -> Result<()> {
        let mut children = Vec::new();
        for ent in std::fs::read_dir(dir).at(dir)? {
            let ent = ent.at(dir)?;
            let path = ent.path();
            let md = std::fs::symlink_metadata(&path).at(&path)?;
            let ft = md.file_type();
            let name = ent.file_name().into_vec();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_char_device() {
                if self.overlay && md.rdev() == 0 {
                    Kind::Whiteout
                } else {
                    Kind::Char
                }
            } else if ft.is_block_device() {
                Kind::Block
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                continue; // sockets
            };
            let base = if matches!(kind, Kind::Whiteout) {
                [WHITEOUT_PREFIX.as_bytes(), &name].concat()
            } else {
                name
            };
            let mut emit = prefix.to_vec();
            emit.extend_from_slice(&base);
            children.push(Child {
                emit,
                path,
                md,
                kind,
            });
        }
        children.sort_by(|a, b| a.emit.cmp(&b.emit));
        for child in children {
            self.child(&child)?;
        }
        Ok(())
    }

    fn child(&mut self, c: &Child) -> Result<()> {
        let md = &c.md;
        let mtime = self.clamp(md.mtime());
        let xattrs = if self.opts.xattrs && !matches!(c.kind, Kind::Whiteout) {
            read_xattrs(&c.path)?
        } else {
            Vec::new()
        };
        let mut e = Entry {
            name: &c.emit,
            kind: EntryType::Regular,
            mode: md.mode() & 0o7777,
            uid: u64::from(md.uid()),
            gid: u64::from(md.gid()),
            mtime,
            size: 0,
            link: &[],
            dev: (0, 0),
            xattrs,
        };
        match c.kind {
            Kind::Dir => {
                let mut name = c.emit.clone();
                name.push(b'/');
                e.name = &name;
                e.kind = EntryType::Directory;
                self.header(&c.path, &e)?;
                if self.overlay && is_opaque(&c.path)? {
                    let mut marker = name.clone();
                    marker.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
                    let m = Entry {
                        name: &marker,
                        kind: EntryType::Regular,
                        mode: e.mode & 0o777,
                        uid: e.uid,
                        gid: e.gid,
                        mtime,
                        size: 0,
                        link: &[],
                        dev: (0, 0),
                        xattrs: Vec::new(),
                    };
                    self.header(&c.path, &m)?;
                    self.stats.whiteouts += 1;
                }
                return self.visit(&c.path, &name);
            }
            Kind::Whiteout => {
                e.mode = 0o600;
                self.stats.whiteouts += 1;
                return self.header(&c.path, &e);
            }
            _ => {}
        }
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                e.kind = EntryType::Link;
                e.link = &first;
                return self.header(&c.path, &e);
            }
            self.links.insert(key, c.emit.clone());
        }
        match c.kind {
            Kind::File => {
                e.size = md.len();
                let mut f = File::open(&c.path).at(&c.path)?;
                self.header(&c.path, &e)?;
                self.content(&c.path, &mut f, e.size)
            }
            Kind::Symlink => {
                let target = std::fs::read_link(&c.path)
                    .at(&c.path)?
                    .into_os_string()
                    .into_vec();
                e.kind = EntryType::Symlink;
                e.link = &target;
                self.header(&c.path, &e)
            }
            Kind::Char | Kind::Block => {
                e.kind = if matches!(c.kind, Kind::Char) {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                let rdev = md.rdev();
                e.dev = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
                self.header(&c.path, &e)
            }
            Kind::Fifo => {
                e.kind = EntryType::Fifo;
                self.header(&c.path, &e)
            }
            Kind::Dir | Kind::Whiteout => Ok(()),
        }
    }

    fn content(&mut self, path: &Path, f: &mut File, size: u64) -> Result<()> {
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left.min(self.buf.len() as u64)).unwrap_or(BLOCK);
            let chunk = self.buf.get_mut(..want).unwrap_or(&mut []);
            let n = f.read(chunk).at(path)?;
            if n == 0 {
                return Err(Error::io(
                    path,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being archived",
                    ),
                ));
            }
            self.out
                .write_all(self.buf.get(..n).unwrap_or(&[]))
                .at(path)?;
            left -= n as u64;
        }
        self.stats.bytes += size;
        self.pad(path, size)
    }

    fn pad(&mut self, path: &Path, size: u64) -> Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][rem..]).at(path)?;
        }
        Ok(())
    }

    fn header(&mut self, path: &Path, e: &Entry<'_>) -> Result<()> {
        let mut pax: Vec<(&[u8], Vec<u8>)> = Vec::new();
        let mut h = Header::new_ustar();
        if !set_ustar_name(&mut h, e.name) {
            pax.push((b"path", e.name.to_vec()));
        }
        if !e.link.is_empty() {
            if e.link.len() <= 100 {
                copy_field(&mut h.as_old_mut().linkname, e.link);
            } else {
                pax.push((b"linkpath", e.link.to_vec()));
                copy_field(
                    &mut h.as_old_mut().linkname,
                    e.link.get(..100).unwrap_or(&[]),
                );
            }
        }
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        if e.uid > OCTAL7_MAX {
            pax.push((b"uid", e.uid.to_string().into_bytes()));
            h.set_uid(0);
        } else {
            h.set_uid(e.uid);
        }
        if e.gid > OCTAL7_MAX {
            pax.push((b"gid", e.gid.to_string().into_bytes()));
            h.set_gid(0);
        } else {
            h.set_gid(e.gid);
        }
        if e.size > OCTAL11_MAX {
            pax.push((b"size", e.size.to_string().into_bytes()));
            h.set_size(0);
        } else {
            h.set_size(e.size);
        }
        let mtime = u64::try_from(e.mtime).unwrap_or(0).min(OCTAL11_MAX);
        h.set_mtime(mtime);
        if matches!(e.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.dev.0).at(path)?;
            h.set_device_minor(e.dev.1).at(path)?;
        }
        let mut xkeys: Vec<Vec<u8>> = Vec::new();
        for (name, _) in &e.xattrs {
            xkeys.push([b"SCHILY.xattr.".as_slice(), name].concat());
        }
        for ((_, value), key) in e.xattrs.iter().zip(&xkeys) {
            pax.push((key, value.clone()));
        }
        if !pax.is_empty() {
            self.pax(path, e.name, &pax)?;
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes()).at(path)?;
        self.stats.entries += 1;
        Ok(())
    }

    fn pax(&mut self, path: &Path, name: &[u8], records: &[(&[u8], Vec<u8>)]) -> Result<()> {
        let mut body = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while base + len.to_string().len() != len {
                len = base + len.to_string().len();
            }
            body.extend_from_slice(len.to_string().as_bytes());
            body.push(b' ');
            body.extend_from_slice(k);
            body.push(b'=');
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let mut h = Header::new_ustar();
        let trimmed = name.strip_suffix(b"/").unwrap_or(name);
        let base = trimmed.rsplit(|b| *b == b'/').next().unwrap_or(b"");
        let pax_name = [b"PaxHeaders.0/".as_slice(), base].concat();
        copy_field(
            &mut h.as_old_mut().name,
            pax_name.get(..pax_name.len().min(100)).unwrap_or(&[]),
        );
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(body.len() as u64);
        h.set_cksum();
        self.out.write_all(h.as_bytes()).at(path)?;
        self.out.write_all(&body).at(path)?;
        self.pad(path, body.len() as u64)
    }
}

fn copy_field(field: &mut [u8], value: &[u8]) {
    for (dst, src) in field
        .iter_mut()
        .zip(value.iter().chain(std::iter::repeat(&0u8)))
    {
        *dst = *src;
    }
}

/// Put `name` in the USTAR name (and prefix) fields; false if it does not fit.
fn set_ustar_name(h: &mut Header, name: &[u8]) -> bool {
    if name.len() <= 100 {
        copy_field(&mut h.as_old_mut().name, name);
        return true;
    }
    let fits = name.len() <= 256;
    let split = if fits {
        let window = name.get(..name.len().min(156)).unwrap_or(&[]);
        window.iter().rposition(|b| *b == b'/')
    } else {
        None
    };
    if let (Some(i), Some(ustar)) = (split, h.as_ustar_mut()) {
        let (prefix, rest) = (
            name.get(..i).unwrap_or(&[]),
            name.get(i + 1..).unwrap_or(&[]),
        );
        if !rest.is_empty() && rest.len() <= 100 && prefix.len() <= 155 {
            copy_field(&mut ustar.prefix, prefix);
            copy_field(&mut ustar.name, rest);
            return true;
        }
    }
    copy_field(&mut h.as_old_mut().name, name.get(..100).unwrap_or(&[]));
    false
}

fn is_opaque(path: &Path) -> Result<bool> {
    let mut buf = [0u8; 8];
    match rustix::fs::lgetxattr(path, OVERLAY_OPAQUE_XATTR, &mut buf[..]) {
        Ok(n) => Ok(buf.get(..n) == Some(b"y".as_slice())),
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => Ok(false),
        Err(rustix::io::Errno::RANGE) => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The xattrs of `path` (not following a symlink), sorted by name, without
/// `trusted.overlay.*`.
pub(crate) fn read_xattrs(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match grow(
        || rustix::fs::llistxattr_query(path),
        |buf| rustix::fs::llistxattr(path, buf),
    ) {
        Ok(v) => v,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let cname = OsString::from_vec(name.to_vec());
        match grow(
            || rustix::fs::lgetxattr_query(path, cname.as_os_str()),
            |buf| rustix::fs::lgetxattr(path, cname.as_os_str(), buf),
        ) {
            Ok(value) => out.push((name.to_vec(), value)),
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    out.sort();
    Ok(out)
}

/// Call a size-probing xattr syscall until the buffer is big enough.
fn grow(
    query: impl Fn() -> rustix::io::Result<usize>,
    mut call: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    for _ in 0..8 {
        let size = query()?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(rustix::io::Errno::RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ustar_names() {
        let mut h = Header::new_ustar();
        assert!(set_ustar_name(&mut h, b"short"));
        let long = [b"d".repeat(120), b"/".to_vec(), b"f".repeat(50)].concat();
        let mut h = Header::new_ustar();
        assert!(set_ustar_name(&mut h, &long));
        assert_eq!(h.path_bytes().as_ref(), long.as_slice());
        let mut h = Header::new_ustar();
        assert!(!set_ustar_name(&mut h, &b"x".repeat(150)));
    }
}
