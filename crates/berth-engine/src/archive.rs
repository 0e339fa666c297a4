//! `berth save` and `berth load`: image archives that Docker and OCI tools
//! read and write.
//!
//! [`Engine::save`] writes what Docker 25+ writes: an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) that also carries Docker's
//! legacy `manifest.json` (whose `Config` and `Layers` point at the blobs)
//! and `repositories`. Layers go out as stored (gzip). The tar is
//! deterministic: entries sorted, owner 0:0, mtime 0 (or
//! `SOURCE_DATE_EPOCH`). `berth build --output type=docker` writes the same
//! through the same writer; `type=oci` writes the plain OCI layout, without
//! Docker's files.
//!
//! [`Engine::load`] reads, possibly gzip- or zstd-compressed as a whole:
//! - Docker's old layout: `manifest.json`, `<id>.json` configs,
//!   `<layer-id>/layer.tar` uncompressed layers, `repositories`;
//! - Docker 25+'s layout: `manifest.json` pointing into `blobs/`;
//! - a plain OCI archive: `oci-layout`, `index.json` (names from the
//!   `io.containerd.image.name` annotation, or a full name in
//!   `org.opencontainers.image.ref.name`; a nested index resolves to the
//!   host platform) and blobs.
//!
//! The archive is streamed into a private directory under the store's
//! `tmp/`, hashing every file as it lands. Nothing is followed on disk: the
//! spool holds only directories and regular files, archive symlinks and hard
//! links are kept as in-archive aliases (refused when they lead outside the
//! archive), and every path named by `manifest.json` or a descriptor is
//! normalised and looked up in the spool's table. Everything (config
//! digests, blob digests and sizes, every layer's uncompressed digest
//! against the config's `diff_ids`, tag names) is verified before the store
//! is touched; a bad archive records nothing. The spool is removed in every
//! case.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use berth_oci::{
    media_type, Algorithm, Descriptor, Digest, DigestWriter, ImageConfig, Index, Manifest,
    MediaType, Platform, Reference,
};
use berth_store::{ImageRecord, LayerRecord, MAX_LAYER_BYTES};

use crate::images::{oci_manifest, NewImage};
use serde::{Deserialize, Serialize};

use crate::time::now;
use crate::{Engine, Error, Result};

/// One line of `berth load` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// `Loaded image: busybox:latest`.
    Image(String),
    /// `Loaded image ID: sha256:…`, for an image loaded without a name.
    ImageId(Digest),
    /// A name that pointed at another image moved to the loaded one.
    Renamed { name: String, old: Digest },
}

impl std::fmt::Display for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loaded::Image(name) => write!(f, "Loaded image: {name}"),
            Loaded::ImageId(id) => write!(f, "Loaded image ID: {id}"),
            Loaded::Renamed { name, old } => write!(
                f,
                "The image {name} already exists, renaming the old one with ID {old} to empty string"
            ),
        }
    }
}

/// The annotation containerd (and Docker 25+) put the full image name in.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI reference-name annotation (Docker writes the tag there).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest file accepted in an archive.
pub const MAX_ENTRY_BYTES: u64 = MAX_LAYER_BYTES;
/// Largest archive accepted (sum of its files).
pub const MAX_ARCHIVE_BYTES: u64 = 4 * MAX_LAYER_BYTES;
/// Most entries accepted in an archive.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Largest JSON document (manifest, index, config) read from an archive.
pub const MAX_JSON_BYTES: u64 = 32 << 20;
/// How deep nested indexes may go.
const MAX_INDEX_DEPTH: usize = 4;
/// How many aliases (archive symlinks) a path may go through.
const MAX_LINK_HOPS: usize = 16;

const OCI_LAYOUT: &str = "oci-layout";
const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion": "1.0.0"}"#;
const INDEX_JSON: &str = "index.json";
const MANIFEST_JSON: &str = "manifest.json";
const REPOSITORIES: &str = "repositories";

/// The gzip level of layers berth compresses (as `import`).
const LAYER_GZIP_LEVEL: u32 = 1;

/// One entry of Docker's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    /// `null` when the image is saved by ID, as Docker writes it.
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

/// An image chosen for saving, with the names it is saved under.
#[derive(Debug)]
struct SaveImage {
    id: Digest,
    refs: Vec<Reference>,
}

/// What goes into a saved archive under `blobs/`.
#[derive(Debug)]
enum BlobSource {
    Bytes(Vec<u8>),
    Stored(Digest, u64),
}

/// The layout of an image archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveFormat {
    /// What `docker save` (25+) writes: an OCI image layout that also
    /// carries Docker's `manifest.json` and `repositories`, so both
    /// `docker load` and OCI tools read it.
    Docker,
    /// A plain OCI image layout: `oci-layout`, `index.json`, `blobs/`.
    Oci,
}

/// One image as it goes into an archive: its config, its layers (stored
/// blobs), its manifest and the names it is listed under.
#[derive(Debug)]
pub(crate) struct ArchiveImage {
    pub id: Digest,
    pub config_bytes: Vec<u8>,
    pub layers: Vec<LayerRecord>,
    pub manifest: Vec<u8>,
    pub manifest_type: MediaType,
    pub refs: Vec<Reference>,
}

impl Engine {
    /// Writes the named images (names, IDs or ID prefixes) as one tar to
    /// `writer`. Every name is resolved, and every blob found, before a
    /// byte is written.
    pub fn save(&self, names: &[String], writer: impl Write) -> Result<()> {
        if names.is_empty() {
            return Err(Error::Invalid("save: no images named".into()));
        }
        let images = self
            .save_targets(names)?
            .into_iter()
            .map(|image| self.stored_archive_image(image))
            .collect::<Result<Vec<_>>>()?;
        self.write_image_archive(images, ArchiveFormat::Docker, writer)
    }

    /// A stored image, read and checked, ready for an archive.
    fn stored_archive_image(&self, image: SaveImage) -> Result<ArchiveImage> {
        let record = self
            .store
            .meta()
            .image(&image.id)?
            .ok_or_else(|| Error::NotFound(format!("No such image: {}", image.id)))?;
        let config_bytes = self.store.content().read(&image.id)?;
        let mut hasher = DigestWriter::new(image.id.algorithm());
        hasher.update(&config_bytes);
        if hasher.finish().0 != image.id {
            return Err(Error::Invalid(format!(
                "the config of image {} is corrupt",
                image.id
            )));
        }
        let mut layers = Vec::new();
        for layer in &record.layers {
            let size = self.store.content().size(&layer.blob)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "layer {} of image {} is missing its blob {}",
                    layer.diff_id, image.id, layer.blob
                ))
            })?;
            let media_type = self
                .store
                .meta()
                .layer_blobs(&layer.diff_id)?
                .into_iter()
                .find(|l| l.blob == layer.blob)
                .map_or_else(
                    || media_type::OCI_LAYER_TAR_GZIP.to_string(),
                    |l| l.media_type,
                );
            layers.push(LayerRecord {
                diff_id: layer.diff_id.clone(),
                blob: layer.blob.clone(),
                media_type,
                size,
            });
        }
        let (manifest, manifest_type) = self.manifest_for_save(&record, &config_bytes, &layers)?;
        Ok(ArchiveImage {
            id: image.id,
            config_bytes,
            layers,
            manifest,
            manifest_type,
            refs: image.refs,
        })
    }

    /// Writes `images` as one deterministic archive in `format`. Layer
    /// blobs are read from the content store as they are written.
    pub(crate) fn write_image_archive(
        &self,
        images: Vec<ArchiveImage>,
        format: ArchiveFormat,
        writer: impl Write,
    ) -> Result<()> {
        let mut blobs: BTreeMap<String, BlobSource> = BTreeMap::new();
        let mut items = Vec::new();
        let mut index_entries = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for image in images {
            let config = ImageConfig::from_slice(&image.config_bytes)?;
            let manifest_digest = Digest::sha256_of(&image.manifest);
            let manifest_size = image.manifest.len() as u64;

            let mut platform = Platform::new(&config.os, &config.architecture, &config.variant);
            platform.os_version = config.os_version.clone();
            if image.refs.is_empty() {
                // Saved by ID: listed without a name, so OCI tools see it.
                let mut desc = Descriptor::new(
                    image.manifest_type.clone(),
                    manifest_digest.clone(),
                    manifest_size,
                );
                desc.platform = Some(platform.clone());
                index_entries.push(desc);
            }
            for r in &image.refs {
                let mut desc = Descriptor::new(
                    image.manifest_type.clone(),
                    manifest_digest.clone(),
                    manifest_size,
                );
                desc.platform = Some(platform.clone());
                desc.annotations
                    .insert(ANNOTATION_IMAGE_NAME.to_string(), r.to_string());
                desc.annotations.insert(
                    ANNOTATION_REF_NAME.to_string(),
                    r.tag().unwrap_or_default().to_string(),
                );
                index_entries.push(desc);
                if let Some(top) = config.diff_ids().last() {
                    repositories.entry(r.familiar_name()).or_default().insert(
                        r.tag().unwrap_or_default().to_string(),
                        top.hex().to_string(),
                    );
                }
            }
            items.push(ManifestItem {
                config: blob_path(&image.id),
                repo_tags: (!image.refs.is_empty())
                    .then(|| image.refs.iter().map(Reference::familiar_string).collect()),
                layers: Some(image.layers.iter().map(|l| blob_path(&l.blob)).collect()),
            });
            blobs.insert(blob_path(&image.id), BlobSource::Bytes(image.config_bytes));
            blobs.insert(
                blob_path(&manifest_digest),
                BlobSource::Bytes(image.manifest),
            );
            for l in &image.layers {
                blobs.insert(
                    blob_path(&l.blob),
                    BlobSource::Stored(l.blob.clone(), l.size),
                );
            }
        }

        let index = Index::new(MediaType::OciIndex, index_entries).to_json()?;
        let mut files: BTreeMap<String, BlobSource> = blobs;
        files.insert(INDEX_JSON.into(), BlobSource::Bytes(index));
        files.insert(
            OCI_LAYOUT.into(),
            BlobSource::Bytes(OCI_LAYOUT_CONTENT.to_vec()),
        );
        if format == ArchiveFormat::Docker {
            let mut manifest_json = serde_json::to_vec(&items)
                .map_err(|e| Error::Invalid(format!("manifest.json: {e}")))?;
            manifest_json.push(b'\n');
            files.insert(MANIFEST_JSON.into(), BlobSource::Bytes(manifest_json));
            if !repositories.is_empty() {
                let mut repos = serde_json::to_vec(&repositories)
                    .map_err(|e| Error::Invalid(format!("repositories: {e}")))?;
                repos.push(b'\n');
                files.insert(REPOSITORIES.into(), BlobSource::Bytes(repos));
            }
        }
        self.write_archive(files, writer)
    }

    /// [`Engine::save`] into `path`, atomically: the file appears (mode
    /// 0600, as the docker CLI leaves it) only once the archive is whole.
    pub fn save_to_path(&self, names: &[String], path: &Path) -> Result<()> {
        let mut file = berth_fs::AtomicFile::create_with_mode(path, 0o600)?;
        {
            let mut out = io::BufWriter::new(&mut file);
            self.save(names, &mut out)?;
            out.flush()
                .map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        file.commit()?;
        Ok(())
    }

    /// The images to save and their names, as Docker picks them: a tagged
    /// name saves that tag, a bare repository name saves all its tags, an ID
    /// or digest reference saves the image without a name.
    fn save_targets(&self, names: &[String]) -> Result<Vec<SaveImage>> {
        let mut out: Vec<SaveImage> = Vec::new();
        let mut add = |id: Digest, r: Option<Reference>| {
            let pos = match out.iter().position(|i| i.id == id) {
                Some(p) => p,
                None => {
                    out.push(SaveImage {
                        id,
                        refs: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            if let (Some(r), Some(image)) = (r, out.get_mut(pos)) {
                if !image.refs.contains(&r) {
                    image.refs.push(r);
                }
            }
        };
        let tags = self.store.meta().tags()?;
        for name in names {
            let named = Reference::parse_named(name).ok();
            match named {
                Some(r) if r.tag().is_none() && r.digest().is_none() => {
                    let repo = r.name();
                    let mut found = false;
                    for (tag, id) in &tags {
                        let Ok(t) = Reference::parse_named(tag) else {
                            continue;
                        };
                        if t.name() == repo && t.tag().is_some() && t.digest().is_none() {
                            add(id.clone(), Some(t));
                            found = true;
                        }
                    }
                    if !found {
                        add(self.resolve_image(name)?, None);
                    }
                }
                Some(r) if r.digest().is_none() => match self.store.meta().tag(&r.to_string())? {
                    Some(id) => add(id, Some(r)),
                    None => add(self.resolve_image(name)?, None),
                },
                _ => add(self.resolve_image(name)?, None),
            }
        }
        Ok(out)
    }

    /// The manifest to ship for an image: the stored one when it describes
    /// exactly the stored config and layer blobs, else a fresh OCI manifest.
    fn manifest_for_save(
        &self,
        record: &ImageRecord,
        config_bytes: &[u8],
        layers: &[LayerRecord],
    ) -> Result<(Vec<u8>, MediaType)> {
        if let Some(digest) = &record.manifest {
            if let Ok(bytes) = self.store.content().read(digest) {
                if let Ok(m) = Manifest::from_slice(&bytes) {
                    let same = m.config.digest == record.id
                        && m.config.size == config_bytes.len() as u64
                        && m.layers.len() == layers.len()
                        && m.layers
                            .iter()
                            .zip(layers)
                            .all(|(d, l)| d.digest == l.blob && d.size == l.size);
                    if same && Digest::sha256_of(&bytes) == *digest {
                        let mt = m.media_type.clone().unwrap_or(MediaType::OciManifest);
                        return Ok((bytes, mt));
                    }
                }
            }
        }
        let m = oci_manifest(&record.id, config_bytes.len() as u64, layers);
        Ok((m.to_json()?, MediaType::OciManifest))
    }

    /// Writes `files` (sorted by path) as a deterministic tar, with the
    /// directories above them.
    fn write_archive(&self, files: BTreeMap<String, BlobSource>, writer: impl Write) -> Result<()> {
        let mtime = source_date_epoch();
        let mut dirs = BTreeSet::new();
        for path in files.keys() {
            let mut p = path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                dirs.insert(format!("{parent}/"));
                p = parent;
            }
        }
        let mut entries: BTreeMap<String, Option<BlobSource>> = BTreeMap::new();
        for d in dirs {
            entries.insert(d, None);
        }
        for (path, source) in files {
            entries.insert(path, Some(source));
        }
        let io_err = |e: io::Error| Error::io("save: writing the archive", e);
        let mut builder = tar::Builder::new(writer);
        for (path, source) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(mtime);
            header.set_path(&path).map_err(io_err)?;
            match source {
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    header.set_cksum();
                    builder.append(&header, io::empty()).map_err(io_err)?;
                }
                Some(BlobSource::Bytes(bytes)) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(bytes.len() as u64);
                    header.set_cksum();
                    builder.append(&header, bytes.as_slice()).map_err(io_err)?;
                }
                Some(BlobSource::Stored(digest, size)) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(size);
                    header.set_cksum();
                    let file = self.store.content().open(&digest)?;
                    // Exactly `size` bytes, whatever happens to the file.
                    let mut reader = BufReader::new(file).take(size);
                    let mut counted = CountingReader {
                        inner: &mut reader,
                        n: 0,
                    };
                    builder.append(&header, &mut counted).map_err(io_err)?;
                    if counted.n != size {
                        return Err(Error::Invalid(format!(
                            "blob {digest} changed size while it was saved"
                        )));
                    }
                }
            }
        }
        let mut writer = builder.into_inner().map_err(io_err)?;
        writer.flush().map_err(io_err)?;
        Ok(())
    }

    /// Reads an image archive (see the module docs) and records its images
    /// and tags. Returns what Docker prints, line by line.
    pub fn load(&mut self, reader: impl Read) -> Result<Vec<Loaded>> {
        let dir = self.store.scratch_dir("load")?;
        let guard = self.store.begin_write()?;
        let lease = self.begin_lease("load")?;
        let result = (|| {
            let spool = Spool::fill(dir.path(), reader)?;
            let plan = spool.plan()?;
            self.commit_plan(&spool, plan, &lease)
        })();
        self.store.meta_mut().delete_lease(&lease)?;
        drop(guard);
        drop(dir);
        result
    }

    /// Writes the verified images of a plan into the store.
    fn commit_plan(
        &mut self,
        spool: &Spool,
        plan: Vec<PlannedImage>,
        lease: &str,
    ) -> Result<Vec<Loaded>> {
        let mut out = Vec::new();
        let mut compressed: BTreeMap<String, (Digest, u64)> = BTreeMap::new();
        for image in plan {
            let mut records = Vec::new();
            for layer in &image.layers {
                let record = match &layer.source {
                    LayerSource::AsIs {
                        blob,
                        size,
                        media_type,
                    } => {
                        if self.store.content().size(blob)? != Some(*size) {
                            let mut file = spool.open(&layer.path)?;
                            self.store
                                .content()
                                .write_from(&mut file, Some((blob.clone(), *size)))?;
                        }
                        LayerRecord {
                            diff_id: layer.diff_id.clone(),
                            blob: blob.clone(),
                            media_type: media_type.clone(),
                            size: *size,
                        }
                    }
                    LayerSource::Uncompressed => {
                        let (blob, size) = match compressed.get(&layer.path) {
                            Some(done) => done.clone(),
                            None => {
                                let done = self.compress_layer(spool, layer)?;
                                compressed.insert(layer.path.clone(), done.clone());
                                done
                            }
                        };
                        LayerRecord {
                            diff_id: layer.diff_id.clone(),
                            blob,
                            media_type: media_type::OCI_LAYER_TAR_GZIP.to_string(),
                            size,
                        }
                    }
                };
                records.push(record);
            }
            let keep_manifest = image
                .manifest
                .filter(|_| image.layers.iter().all(PlannedLayer::is_as_is));
            let id = self.store_image(
                NewImage {
                    config_bytes: &image.config_bytes,
                    config: &image.config,
                    layers: &records,
                    manifest: keep_manifest,
                    created_at: now().0,
                },
                Some(lease),
            )?;
            if image.tags.is_empty() {
                out.push(Loaded::ImageId(id));
                continue;
            }
            for tag in &image.tags {
                let previous = self.store.meta_mut().set_tag(&tag.to_string(), &id)?;
                if let Some(old) = previous.filter(|old| *old != id) {
                    out.push(Loaded::Renamed {
                        name: tag.familiar_string(),
                        old,
                    });
                }
                out.push(Loaded::Image(tag.familiar_string()));
            }
        }
        Ok(out)
    }

    /// Stores an uncompressed spooled layer as a gzip blob (reusing a blob
    /// the store already has for that diff ID).
    fn compress_layer(&self, spool: &Spool, layer: &PlannedLayer) -> Result<(Digest, u64)> {
        for existing in self.store.meta().layer_blobs(&layer.diff_id)? {
            if existing.media_type == media_type::OCI_LAYER_TAR_GZIP
                && self.store.content().size(&existing.blob)? == Some(existing.size)
            {
                return Ok((existing.blob, existing.size));
            }
        }
        let mut file = spool.open(&layer.path)?;
        let ingest = self.store.content().ingest(None)?;
        let mut gz = berth_fs::gzip_writer(ingest, LAYER_GZIP_LEVEL);
        io::copy(&mut file, &mut gz).map_err(|e| Error::io("load: compressing a layer", e))?;
        let ingest = gz
            .finish()
            .map_err(|e| Error::io("load: compressing a layer", e))?;
        Ok(ingest.commit()?)
    }
}

/// `blobs/sha256/<hex>`.
fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

/// `SOURCE_DATE_EPOCH` if set and valid, else 0 (archive entries' mtime).
fn source_date_epoch() -> u64 {
    crate::time::source_date_epoch()
        .and_then(|e| u64::try_from(e).ok())
        .unwrap_or(0)
}

/// Counts what passes through.
struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------- loading

/// A regular file spooled from the archive.
#[derive(Debug, Clone)]
struct Spooled {
    sha256: Digest,
    size: u64,
}

/// The archive, unpacked into a private directory: regular files (hashed)
/// and directories only; links are recorded as aliases.
#[derive(Debug)]
struct Spool {
    dir: PathBuf,
    files: BTreeMap<String, Spooled>,
    dirs: BTreeSet<String>,
    links: BTreeMap<String, String>,
}

/// A verified image, ready to store.
#[derive(Debug)]
struct PlannedImage {
    config_bytes: Vec<u8>,
    config: ImageConfig,
    layers: Vec<PlannedLayer>,
    /// The archive's manifest, kept when every layer is stored as it came.
    manifest: Option<Vec<u8>>,
    tags: Vec<Reference>,
}

#[derive(Debug, Clone)]
struct PlannedLayer {
    /// Normalised path in the spool.
    path: String,
    diff_id: Digest,
    source: LayerSource,
}

impl PlannedLayer {
    fn is_as_is(&self) -> bool {
        matches!(self.source, LayerSource::AsIs { .. })
    }
}

#[derive(Debug, Clone)]
enum LayerSource {
    /// A compressed layer, stored as the blob it is.
    AsIs {
        blob: Digest,
        size: u64,
        media_type: String,
    },
    /// An uncompressed layer, gzip-compressed into a new blob.
    Uncompressed,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("invalid image archive: {}", msg.into()))
}

/// Normalises an archive path: relative, `/`-separated, `.` and empty parts
/// dropped. Refuses absolute paths, `..` and NUL.
fn normalize(path: &str) -> Result<String> {
    if path.starts_with('/') {
        return Err(invalid(format!("absolute path {path:?}")));
    }
    if path.contains('\0') {
        return Err(invalid(format!("path {path:?} contains NUL")));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid(format!("path {path:?} leaves the archive"))),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a link target against the directory holding the link, lexically;
/// refuses anything that leaves the archive.
fn resolve_link(base_dir: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(invalid(format!("link to absolute path {target:?}")));
    }
    let mut parts: Vec<&str> = base_dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(invalid(format!("link to {target:?} leaves the archive")));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// `blobs/<algo>/<hex>` → its digest.
fn digest_of_blob_path(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (algo, hex) = rest.split_once('/')?;
    format!("{algo}:{hex}").parse().ok()
}

/// Reads into a hasher and a file.
fn copy_hashing(mut reader: impl Read, file: &mut File, path: &str) -> Result<(Digest, u64)> {
    let mut hasher = DigestWriter::sha256();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("load: reading {path}"), e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        file.write_all(chunk)
            .map_err(|e| Error::io(format!("load: spooling {path}"), e))?;
    }
    Ok(hasher.finish())
}

impl Spool {
    /// Streams the (possibly compressed) archive into `dir`.
    fn fill(dir: &Path, reader: impl Read) -> Result<Spool> {
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            links: BTreeMap::new(),
        };
        let (_, stream) = berth_fs::decompress(reader)?;
        let mut archive = tar::Archive::new(stream);
        let read_err = |e: io::Error| Error::io("load: reading the archive", e);
        let mut total = 0u64;
        let mut count = 0u64;
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(invalid(format!("more than {MAX_ENTRIES} entries")));
            }
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let name = std::str::from_utf8(&raw)
                .map_err(|_| {
                    invalid(format!(
                        "entry name {:?} is not UTF-8",
                        String::from_utf8_lossy(&raw)
                    ))
                })?
                .to_string();
            let path = normalize(&name)?;
            if path.is_empty() {
                if kind.is_dir() {
                    continue;
                }
                return Err(invalid(format!("entry {name:?} has no name")));
            }
            spool.check_new(&path, &name)?;
            match kind {
                tar::EntryType::Directory => {
                    let target = spool.dir.join(&path);
                    std::fs::create_dir_all(&target)
                        .map_err(|e| Error::io(format!("load: spooling {name}"), e))?;
                    spool.dirs.insert(path);
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.header().size().map_err(read_err)?;
                    if size > MAX_ENTRY_BYTES {
                        return Err(invalid(format!(
                            "entry {name:?} is too large ({size} bytes; the limit is {MAX_ENTRY_BYTES})"
                        )));
                    }
                    total = total.saturating_add(size);
                    if total > MAX_ARCHIVE_BYTES {
                        return Err(invalid(format!(
                            "the archive is too large (over {MAX_ARCHIVE_BYTES} bytes)"
                        )));
                    }
                    let target = spool.dir.join(&path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| Error::io(format!("load: spooling {name}"), e))?;
                    }
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&target)
                        .map_err(|e| Error::io(format!("load: spooling {name}"), e))?;
                    let (sha256, written) = copy_hashing(&mut entry, &mut file, &name)?;
                    if written != size {
                        return Err(invalid(format!("entry {name:?} is truncated")));
                    }
                    spool.files.insert(
                        path,
                        Spooled {
                            sha256,
                            size: written,
                        },
                    );
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let link = entry
                        .link_name_bytes()
                        .ok_or_else(|| invalid(format!("link {name:?} has no target")))?
                        .into_owned();
                    let link = std::str::from_utf8(&link)
                        .map_err(|_| invalid(format!("link {name:?} has a non-UTF-8 target")))?
                        .to_string();
                    let target = if kind == tar::EntryType::Symlink {
                        let base = path.rsplit_once('/').map_or("", |(dir, _)| dir);
                        resolve_link(base, &link)
                    } else {
                        resolve_link("", &link)
                    }
                    .map_err(|_| {
                        invalid(format!(
                            "link {name:?} -> {link:?} points outside the archive"
                        ))
                    })?;
                    spool.links.insert(path, target);
                }
                other => {
                    return Err(invalid(format!(
                        "entry {name:?} has unsupported type {other:?}"
                    )))
                }
            }
        }
        Ok(spool)
    }

    /// Refuses a second entry with the same path, and entries under a link.
    fn check_new(&self, path: &str, name: &str) -> Result<()> {
        if self.files.contains_key(path) || self.links.contains_key(path) {
            return Err(invalid(format!("duplicate entry {name:?}")));
        }
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if self.links.contains_key(parent) || self.files.contains_key(parent) {
                return Err(invalid(format!(
                    "entry {name:?} is under a link or file {parent:?}"
                )));
            }
            p = parent;
        }
        Ok(())
    }

    /// A path named by the archive's own documents, resolved to a spooled
    /// regular file.
    fn lookup(&self, path: &str) -> Result<(String, &Spooled)> {
        let mut p = normalize(path)?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(f) = self.files.get(&p) {
                return Ok((p, f));
            }
            match self.links.get(&p) {
                Some(next) => p = next.clone(),
                None => return Err(invalid(format!("{path} is missing from the archive"))),
            }
        }
        Err(invalid(format!("too many links resolving {path}")))
    }

    /// Opens a spooled file by its resolved (normalised) path.
    fn open(&self, resolved: &str) -> Result<BufReader<File>> {
        let path = self.dir.join(resolved);
        File::open(&path)
            .map(BufReader::new)
            .map_err(|e| Error::io(format!("load: {resolved}"), e))
    }

    /// Reads a small JSON document.
    fn read_json(&self, path: &str) -> Result<(String, Vec<u8>)> {
        let (resolved, f) = self.lookup(path)?;
        if f.size > MAX_JSON_BYTES {
            return Err(invalid(format!(
                "{path} is too large ({} bytes; the limit is {MAX_JSON_BYTES})",
                f.size
            )));
        }
        let mut bytes = Vec::new();
        self.open(&resolved)?
            .take(MAX_JSON_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(format!("load: {path}"), e))?;
        Ok((resolved, bytes))
    }

    /// Checks that a spooled file has `digest` (and `size`, if given).
    fn verify(
        &self,
        resolved: &str,
        f: &Spooled,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<()> {
        if let Some(size) = size {
            if f.size != size {
                return Err(invalid(format!(
                    "{resolved}: expected {size} bytes for {digest}, found {}",
                    f.size
                )));
            }
        }
        let actual = if digest.algorithm() == Algorithm::Sha256 {
            f.sha256.clone()
        } else {
            let mut hasher = DigestWriter::new(digest.algorithm());
            io::copy(&mut self.open(resolved)?, &mut hasher)
                .map_err(|e| Error::io(format!("load: {resolved}"), e))?;
            hasher.finish().0
        };
        if actual != *digest {
            return Err(invalid(format!(
                "{resolved}: digest mismatch: expected {digest}, got {actual}"
            )));
        }
        Ok(())
    }

    /// Reads a blob named by a descriptor, verified.
    fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let path = blob_path(&desc.digest);
        if desc.size > MAX_JSON_BYTES {
            return Err(invalid(format!(
                "{path} is too large ({} bytes)",
                desc.size
            )));
        }
        let (resolved, bytes) = self.read_json(&path)?;
        let f = self.lookup(&resolved)?.1;
        self.verify(&resolved, f, &desc.digest, Some(desc.size))?;
        Ok(bytes)
    }

    /// Verifies everything and decides how each image will be stored.
    fn plan(&self) -> Result<Vec<PlannedImage>> {
        let mut diff_cache = BTreeMap::new();
        let mut images = if self.lookup(MANIFEST_JSON).is_ok() {
            self.plan_docker(&mut diff_cache)?
        } else if self.lookup(INDEX_JSON).is_ok() {
            self.plan_oci(&mut diff_cache)?
        } else if self.lookup(REPOSITORIES).is_ok() {
            return Err(invalid(
                "only a repositories file (the pre-1.10 Docker format) is not supported",
            ));
        } else {
            return Err(invalid("no manifest.json or index.json found"));
        };
        // One entry per image ID, names merged, in order of appearance.
        let mut merged: Vec<PlannedImage> = Vec::new();
        for image in images.drain(..) {
            let id = Digest::sha256_of(&image.config_bytes);
            match merged
                .iter_mut()
                .find(|m| Digest::sha256_of(&m.config_bytes) == id)
            {
                Some(m) => {
                    for t in image.tags {
                        if !m.tags.contains(&t) {
                            m.tags.push(t);
                        }
                    }
                }
                None => merged.push(image),
            }
        }
        Ok(merged)
    }

    /// Docker's `manifest.json` (old layout and 25+).
    fn plan_docker(&self, cache: &mut DiffCache) -> Result<Vec<PlannedImage>> {
        let (_, bytes) = self.read_json(MANIFEST_JSON)?;
        let items: Vec<ManifestItem> =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for item in items {
            let (config_path, config_bytes) = self.read_json(&item.config)?;
            let id = Digest::sha256_of(&config_bytes);
            if let Some(named) = digest_of_blob_path(&config_path) {
                let f = self.lookup(&config_path)?.1;
                self.verify(&config_path, f, &named, None)?;
            } else if let Some(hex) = config_path
                .rsplit('/')
                .next()
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                if hex != id.hex() {
                    return Err(invalid(format!(
                        "{config_path}: digest mismatch: the config hashes to {id}"
                    )));
                }
            }
            let config = ImageConfig::from_slice(&config_bytes)
                .map_err(|e| invalid(format!("{config_path}: {e}")))?;
            let layer_paths = item.layers.unwrap_or_default();
            let diff_ids = config.diff_ids();
            if diff_ids.len() != layer_paths.len() {
                return Err(invalid(format!(
                    "image {id} lists {} layers but its config has {} diff IDs",
                    layer_paths.len(),
                    diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for (path, diff_id) in layer_paths.iter().zip(diff_ids) {
                let (resolved, f) = self.lookup(path)?;
                if let Some(named) = digest_of_blob_path(&resolved) {
                    self.verify(&resolved, f, &named, None)?;
                }
                let layer = self.check_layer(cache, &resolved, diff_id, None)?;
                layers.push(layer);
            }
            let mut tags = Vec::new();
            for t in item.repo_tags.unwrap_or_default() {
                tags.push(parse_loaded_tag(&t)?);
            }
            out.push(PlannedImage {
                config_bytes,
                config,
                layers,
                manifest: None,
                tags,
            });
        }
        Ok(out)
    }

    /// A plain OCI layout: `index.json` and blobs.
    fn plan_oci(&self, cache: &mut DiffCache) -> Result<Vec<PlannedImage>> {
        let (_, bytes) = self
            .read_json(OCI_LAYOUT)
            .map_err(|_| invalid("index.json without oci-layout"))?;
        let layout: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("oci-layout: {e}")))?;
        match layout.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some("1.0.0") => {}
            other => {
                return Err(invalid(format!(
                    "unsupported OCI layout version {}",
                    other.unwrap_or("(none)")
                )))
            }
        }
        let (_, bytes) = self.read_json(INDEX_JSON)?;
        let index = Index::from_slice(&bytes).map_err(|e| invalid(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let tags = names_from_annotations(desc)?;
            let (manifest_bytes, manifest) = self.resolve_manifest(desc, 0)?;
            let config_bytes = self.read_blob(&manifest.config)?;
            let config = ImageConfig::from_slice(&config_bytes)
                .map_err(|e| invalid(format!("config {}: {e}", manifest.config.digest)))?;
            let diff_ids = config.diff_ids();
            if diff_ids.len() != manifest.layers.len() {
                return Err(invalid(format!(
                    "manifest lists {} layers but its config has {} diff IDs",
                    manifest.layers.len(),
                    diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for (ldesc, diff_id) in manifest.layers.iter().zip(diff_ids) {
                let path = blob_path(&ldesc.digest);
                let (resolved, f) = self.lookup(&path)?;
                self.verify(&resolved, f, &ldesc.digest, Some(ldesc.size))?;
                layers.push(self.check_layer(cache, &resolved, diff_id, Some(ldesc))?);
            }
            out.push(PlannedImage {
                config_bytes,
                config,
                layers,
                manifest: Some(manifest_bytes),
                tags,
            });
        }
        Ok(out)
    }

    /// Follows a descriptor to an image manifest, choosing the host
    /// platform in an index.
    fn resolve_manifest(&self, desc: &Descriptor, depth: usize) -> Result<(Vec<u8>, Manifest)> {
        if depth > MAX_INDEX_DEPTH {
            return Err(invalid("indexes nested too deep"));
        }
        let bytes = self.read_blob(desc)?;
        if desc.media_type.is_index() {
            let index =
                Index::from_slice(&bytes).map_err(|e| invalid(format!("{}: {e}", desc.digest)))?;
            let host = Platform::host();
            let chosen = index.select(&host).ok_or_else(|| {
                invalid(format!(
                    "index {} has no image for {}/{}",
                    desc.digest, host.os, host.architecture
                ))
            })?;
            return self.resolve_manifest(chosen, depth + 1);
        }
        if !desc.media_type.is_manifest() {
            return Err(invalid(format!(
                "{} has unsupported media type {}",
                desc.digest, desc.media_type
            )));
        }
        let manifest =
            Manifest::from_slice(&bytes).map_err(|e| invalid(format!("{}: {e}", desc.digest)))?;
        Ok((bytes, manifest))
    }

    /// Computes (once per file) the uncompressed digest of a layer and
    /// checks it against the config's diff ID.
    fn check_layer(
        &self,
        cache: &mut DiffCache,
        resolved: &str,
        diff_id: &Digest,
        desc: Option<&Descriptor>,
    ) -> Result<PlannedLayer> {
        let f = self.lookup(resolved)?.1.clone();
        let (actual, compression) = match cache.get(resolved) {
            Some(done) => done.clone(),
            None => {
                let (compression, stream) = berth_fs::decompress(self.open(resolved)?)?;
                let actual = if compression == berth_fs::Compression::None {
                    f.sha256.clone()
                } else {
                    let mut hasher = DigestWriter::new(diff_id.algorithm());
                    let copied = io::copy(&mut stream.take(MAX_LAYER_BYTES + 1), &mut hasher)
                        .map_err(|e| invalid(format!("{resolved}: {e}")))?;
                    if copied > MAX_LAYER_BYTES {
                        return Err(invalid(format!(
                            "layer {resolved} uncompresses to more than {MAX_LAYER_BYTES} bytes"
                        )));
                    }
                    hasher.finish().0
                };
                cache.insert(resolved.to_string(), (actual.clone(), compression));
                (actual, compression)
            }
        };
        let actual = if actual.algorithm() == diff_id.algorithm() {
            actual
        } else {
            let (_, stream) = berth_fs::decompress(self.open(resolved)?)?;
            let mut hasher = DigestWriter::new(diff_id.algorithm());
            io::copy(&mut stream.take(MAX_LAYER_BYTES + 1), &mut hasher)
                .map_err(|e| invalid(format!("{resolved}: {e}")))?;
            hasher.finish().0
        };
        if actual != *diff_id {
            return Err(invalid(format!(
                "layer {resolved}: its content hashes to {actual}, but the config says {diff_id}"
            )));
        }
        let source = match compression {
            berth_fs::Compression::None => LayerSource::Uncompressed,
            c => {
                let media_type = match desc {
                    Some(d) if d.media_type.is_layer() => d.media_type.as_str().to_string(),
                    _ if c == berth_fs::Compression::Zstd => {
                        media_type::OCI_LAYER_TAR_ZSTD.to_string()
                    }
                    _ => media_type::OCI_LAYER_TAR_GZIP.to_string(),
                };
                LayerSource::AsIs {
                    blob: f.sha256.clone(),
                    size: f.size,
                    media_type,
                }
            }
        };
        Ok(PlannedLayer {
            path: resolved.to_string(),
            diff_id: diff_id.clone(),
            source,
        })
    }
}

type DiffCache = BTreeMap<String, (Digest, berth_fs::Compression)>;

/// A `RepoTags` entry: `busybox:latest` → `docker.io/library/busybox:latest`.
fn parse_loaded_tag(text: &str) -> Result<Reference> {
    let r = Reference::parse(text).map_err(|e| invalid(format!("invalid tag {text:?}: {e}")))?;
    if r.digest().is_some() {
        return Err(invalid(format!("tag {text:?} has a digest")));
    }
    Ok(r)
}

/// The names of an OCI index entry: the containerd name annotation, else a
/// ref-name annotation that is a whole reference (`app:1`, `reg/app`), not
/// a bare tag.
fn names_from_annotations(desc: &Descriptor) -> Result<Vec<Reference>> {
    if let Some(name) = desc.annotations.get(ANNOTATION_IMAGE_NAME) {
        return Ok(vec![parse_loaded_tag(name)?]);
    }
    if let Some(name) = desc.annotations.get(ANNOTATION_REF_NAME) {
        if name.contains(':') || name.contains('/') {
            if let Ok(r) = parse_loaded_tag(name) {
                return Ok(vec![r]);
            }
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn normalize_refuses_escapes() {
        assert_eq!(normalize("./a//b/").unwrap(), "a/b");
        assert!(normalize("../x").is_err());
        assert!(normalize("a/../../x").is_err());
        assert!(normalize("/etc/passwd").is_err());
    }

    #[test]
    fn links_stay_inside() {
        assert_eq!(
            resolve_link("a/b", "../c/layer.tar").unwrap(),
            "a/c/layer.tar"
        );
        assert!(resolve_link("a", "../../etc/passwd").is_err());
        assert!(resolve_link("a", "/etc/passwd").is_err());
    }

    #[test]
    fn blob_paths() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(digest_of_blob_path(&blob_path(&d)), Some(d));
        assert_eq!(digest_of_blob_path("abc/layer.tar"), None);
    }
}
