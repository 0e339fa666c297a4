//! Shared helpers for the integration tests: a raw tar writer that will
//! write whatever names it is given, and a tree snapshot for comparisons.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

/// A tar stream built header by header, without the `tar` crate's checks.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

fn put(field: &mut [u8], value: &[u8]) {
    assert!(value.len() <= field.len(), "field too small for {value:?}");
    field.fill(0);
    field[..value.len()].copy_from_slice(value);
}

fn pad(bytes: &mut Vec<u8>) {
    let rem = bytes.len() % 512;
    if rem != 0 {
        bytes.resize(bytes.len() + 512 - rem, 0);
    }
}

impl RawTar {
    pub fn new() -> Self {
        Self::default()
    }

    /// A header with a raw name/linkname, the given type, mode and data.
    pub fn entry(
        &mut self,
        name: &[u8],
        kind: EntryType,
        link: &[u8],
        mode: u32,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_ustar();
        put(&mut h.as_old_mut().name, name);
        put(&mut h.as_old_mut().linkname, link);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        self.header_and_data(h, data)
    }

    pub fn header_and_data(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        pad(&mut self.bytes);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name.as_bytes(), EntryType::Regular, b"", 0o644, data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name.as_bytes(), EntryType::Directory, b"", 0o755, b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Symlink,
            target.as_bytes(),
            0o777,
            b"",
        )
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Link,
            target.as_bytes(),
            0o644,
            b"",
        )
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while base + len.to_string().len() != len {
                len = base + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let mut h = Header::new_ustar();
        put(&mut h.as_old_mut().name, b"PaxHeaders/x");
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        self.header_and_data(h, &body)
    }

    /// A GNU long-name header applying to the next entry.
    pub fn gnu_longname(&mut self, name: &[u8]) -> &mut Self {
        let mut data = name.to_vec();
        data.push(0);
        let mut h = Header::new_gnu();
        put(&mut h.as_old_mut().name, b"././@LongLink");
        h.set_entry_type(EntryType::GNULongName);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        self.header_and_data(h, &data)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.bytes);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// Everything observable about one path in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    /// Hash of the content (keeps failure messages short).
    pub content: u64,
    pub link: Option<PathBuf>,
    pub rdev: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Snapshot of a tree: relative path → node (the root itself included as "").
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, path: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let md = std::fs::symlink_metadata(path).unwrap();
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "other"
    };
    let content = if ft.is_file() {
        hash(&std::fs::read(path).unwrap())
    } else {
        0
    };
    let link = if ft.is_symlink() {
        Some(std::fs::read_link(path).unwrap())
    } else {
        None
    };
    let mut xattrs = Vec::new();
    if !ft.is_symlink() {
        let mut names = vec![0u8; 4096];
        if let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) {
            for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
                let name = String::from_utf8_lossy(name).into_owned();
                let mut value = vec![0u8; 4096];
                if let Ok(m) = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]) {
                    xattrs.push((name, value[..m].to_vec()));
                }
            }
        }
        xattrs.sort();
    }
    let rel = path.strip_prefix(root).unwrap().to_path_buf();
    out.insert(
        rel,
        Node {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            size: if ft.is_dir() { 0 } else { md.len() },
            content,
            link,
            rdev: md.rdev(),
            xattrs,
        },
    );
    if ft.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            walk(root, &p, out);
        }
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Names directly inside `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Entry names of a plain tar stream, in order.
pub fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}
