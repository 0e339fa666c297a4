//! Images: import a root filesystem, resolve names and IDs, list, tag,
//! remove, inspect and show history, with Docker's rules and output shapes.

use std::io::{Read, Write};

use berth_oci::{
    chain_ids, id_prefix, media_type, ContainerConfig, Descriptor, Digest, DigestWriter, History,
    ImageConfig, Manifest, MediaType, Reference, RootFs,
};
use berth_store::{GcOptions, ImageLayer, ImageRecord, LayerRecord};
use serde_json::{json, Value};

use crate::config_edit::apply_changes;
use crate::time::{now, parse_rfc3339, rfc3339};
use crate::{Engine, Error, Result};

/// Options of `berth import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `REPO[:TAG]` to tag the new image with.
    pub reference: Option<String>,
    /// Dockerfile instructions to apply to the config (`--change`).
    pub changes: Vec<String>,
    /// The history comment (`--message`).
    pub message: Option<String>,
}

/// An image to record: its config (bytes and parsed), its layer blobs, and
/// the manifest when one came with it.
#[derive(Debug)]
pub struct NewImage<'a> {
    pub config_bytes: &'a [u8],
    pub config: &'a ImageConfig,
    pub layers: &'a [LayerRecord],
    /// Kept as given; `None` writes berth's own OCI manifest.
    pub manifest: Option<Vec<u8>>,
    pub created_at: i64,
}

/// The OCI manifest berth writes for a config and its layer blobs.
pub fn oci_manifest(config: &Digest, config_size: u64, layers: &[LayerRecord]) -> Manifest {
    Manifest::new(
        MediaType::OciManifest,
        Descriptor::new(MediaType::OciConfig, config.clone(), config_size),
        layers
            .iter()
            .map(|l| {
                Descriptor::new(
                    MediaType::from(l.media_type.as_str()),
                    l.blob.clone(),
                    l.size,
                )
            })
            .collect(),
    )
}

/// One row of `berth images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: Digest,
    /// Familiar `repo:tag` names, sorted.
    pub repo_tags: Vec<String>,
    /// Seconds since the epoch.
    pub created: i64,
    pub size: u64,
}

/// What `rmi` did, line by line as Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// One row of `berth history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image ID for the top row, `None` (`<missing>`) below it.
    pub id: Option<Digest>,
    pub created: Option<i64>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// GC after removing images frees their content at once, as Docker does;
/// content of operations in progress is protected by their leases.
pub(crate) const IMMEDIATE_GC: GcOptions = GcOptions {
    grace: std::time::Duration::ZERO,
};

/// The gzip level for layers berth writes.
const LAYER_GZIP_LEVEL: u32 = 1;

impl Engine {
    /// Imports a root filesystem tarball (plain, gzip or zstd) as a
    /// one-layer image; returns its ID.
    pub fn import(&mut self, reader: impl Read, opts: &ImportOptions) -> Result<Digest> {
        let target = opts
            .reference
            .as_deref()
            .map(parse_tag_reference)
            .transpose()?;
        let guard = self.store.begin_write()?;
        let lease = self.begin_lease("import")?;
        let result = self.import_leased(reader, opts, target, &lease);
        self.store.meta_mut().delete_lease(&lease)?;
        drop(guard);
        result
    }

    /// Creates a lease that keeps what an operation writes safe from a
    /// concurrent GC until the image is recorded.
    pub(crate) fn begin_lease(&mut self, what: &str) -> Result<String> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let (secs, nanos) = now();
        let id = format!(
            "{what}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        // Expires on its own if this process dies mid-operation.
        self.store
            .meta_mut()
            .create_lease(&id, secs, Some(secs + 24 * 3600))?;
        Ok(id)
    }

    fn import_leased(
        &mut self,
        reader: impl Read,
        opts: &ImportOptions,
        target: Option<Reference>,
        lease: &str,
    ) -> Result<Digest> {
        let (_, mut tar) = berth_fs::decompress(reader)?;
        let ingest = self.store.content().ingest(None)?;
        let mut gz = berth_fs::gzip_writer(ingest, LAYER_GZIP_LEVEL);
        let mut hasher = DigestWriter::sha256();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = tar
                .read(&mut buf)
                .map_err(|e| Error::io("import stream", e))?;
            let Some(chunk) = buf.get(..n) else { break };
            if chunk.is_empty() {
                break;
            }
            hasher.update(chunk);
            gz.write_all(chunk)
                .map_err(|e| Error::io("import layer", e))?;
        }
        let ingest = gz.finish().map_err(|e| Error::io("import layer", e))?;
        let (blob, blob_size) = ingest.commit()?;
        self.store
            .meta_mut()
            .lease_resource(lease, "blob", &blob.to_string())?;
        let (diff_id, tar_size) = hasher.finish();
        if tar_size == 0 {
            return Err(Error::Invalid("import: the input is empty".into()));
        }

        let (secs, nanos) = now();
        let created = rfc3339(secs, nanos);
        let mut container_config = ContainerConfig::default();
        apply_changes(&mut container_config, &opts.changes)?;
        let config = ImageConfig {
            created: Some(created.clone()),
            architecture: berth_oci::Platform::host().architecture,
            os: "linux".to_string(),
            config: Some(container_config),
            rootfs: Some(RootFs {
                diff_ids: vec![diff_id.clone()],
                ..RootFs::default()
            }),
            history: vec![History {
                created: Some(created),
                created_by: String::new(),
                comment: opts
                    .message
                    .clone()
                    .unwrap_or_else(|| "Imported from -".to_string()),
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        let layer = LayerRecord {
            diff_id: diff_id.clone(),
            blob: blob.clone(),
            media_type: media_type::OCI_LAYER_TAR_GZIP.to_string(),
            size: blob_size,
        };
        let config_bytes = config.to_canonical_json()?;
        let image = NewImage {
            config_bytes: &config_bytes,
            config: &config,
            layers: &[layer],
            manifest: None,
            created_at: secs,
        };
        let id = self.store_image(image, Some(lease))?;
        if let Some(target) = target {
            self.store.meta_mut().set_tag(&target.to_string(), &id)?;
        }
        Ok(id)
    }

    /// Writes the config and manifest blobs, unpacks the layers into
    /// snapshots and records the image. Returns the image ID (the digest of
    /// `image.config_bytes`, kept as given so a loaded image keeps its ID).
    pub fn store_image(&mut self, image: NewImage<'_>, lease: Option<&str>) -> Result<Digest> {
        let NewImage {
            config_bytes,
            config,
            layers,
            manifest,
            created_at,
        } = image;
        let diff_ids = config.diff_ids();
        if diff_ids.len() != layers.len() {
            return Err(Error::Invalid(format!(
                "image has {} diff IDs but {} layers",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chain = chain_ids(diff_ids);
        let expected = Digest::sha256_of(config_bytes);
        if let Some(lease) = lease {
            let meta = self.store.meta_mut();
            meta.lease_resource(lease, "blob", &expected.to_string())?;
            for c in &chain {
                meta.lease_resource(lease, "snapshot", &c.to_string())?;
            }
        }
        let (id, _) = self.store.content().write_from(
            &mut &config_bytes[..],
            Some((expected, config_bytes.len() as u64)),
        )?;
        let mut size = 0;
        for (i, layer) in layers.iter().enumerate() {
            let parent = i.checked_sub(1).and_then(|p| chain.get(p));
            let Some(chain_id) = chain.get(i) else { break };
            let snapshot =
                self.store
                    .unpack_layer(chain_id, parent, &layer.diff_id, &layer.blob)?;
            size += snapshot.size;
        }
        let manifest_bytes = match manifest {
            Some(bytes) => bytes,
            None => oci_manifest(&id, config_bytes.len() as u64, layers).to_json()?,
        };
        if let Some(lease) = lease {
            self.store.meta_mut().lease_resource(
                lease,
                "blob",
                &Digest::sha256_of(&manifest_bytes).to_string(),
            )?;
        }
        let manifest_digest = self.store.content().write_blob(&manifest_bytes)?;
        let record = ImageRecord {
            id: id.clone(),
            manifest: Some(manifest_digest),
            created_at,
            size,
            layers: layers
                .iter()
                .map(|l| ImageLayer {
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                })
                .collect(),
        };
        self.store.meta_mut().put_image(&record, layers)?;
        Ok(id)
    }

    /// Finds an image by name (`busybox`, `app:1`, `app@sha256:…`), full ID
    /// (`sha256:…`) or unique ID prefix.
    pub fn resolve_image(&self, name: &str) -> Result<Digest> {
        let meta = self.store.meta();
        if let Ok(digest) = name.parse::<Digest>() {
            if meta.image(&digest)?.is_some() {
                return Ok(digest);
            }
        }
        if let Ok(reference) = Reference::parse(name) {
            if let Some(id) = meta.tag(&reference.to_string())? {
                return Ok(id);
            }
        }
        if let Some(prefix) = id_prefix(name) {
            let matches = meta.images_with_prefix(prefix)?;
            match matches.as_slice() {
                [one] => return Ok(one.clone()),
                [] => {}
                _ => {
                    return Err(Error::Conflict(format!(
                        "multiple IDs found with provided prefix: {prefix}"
                    )))
                }
            }
        }
        Err(Error::NotFound(format!("No such image: {name}")))
    }

    /// The config of an image.
    pub fn image_config(&self, id: &Digest) -> Result<ImageConfig> {
        Ok(ImageConfig::from_slice(&self.store.content().read(id)?)?)
    }

    /// Familiar names of the tags pointing at `id`, sorted.
    fn repo_tags(&self, id: &Digest) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .store
            .meta()
            .tags()?
            .into_iter()
            .filter(|(_, target)| target == id)
            .map(|(name, _)| familiar(&name))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every image with its tags (`berth images`); newest first.
    pub fn list_images(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for id in self.store.meta().image_ids()? {
            let Some(record) = self.store.meta().image(&id)? else {
                continue;
            };
            let created = self
                .image_config(&id)
                .ok()
                .and_then(|c| c.created.as_deref().and_then(parse_rfc3339))
                .unwrap_or(record.created_at);
            out.push(ImageSummary {
                repo_tags: self.repo_tags(&id)?,
                id,
                created,
                size: record.size,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `berth tag SOURCE TARGET`.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<()> {
        let id = self.resolve_image(source)?;
        let target = parse_tag_reference(target)?;
        self.store.meta_mut().set_tag(&target.to_string(), &id)?;
        Ok(())
    }

    /// `berth rmi [-f] NAME`: untags, and deletes the image when its last
    /// tag goes (or when it is named by ID).
    pub fn remove_image(&mut self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let id = self.resolve_image(name)?;
        let tags: Vec<String> = self
            .store
            .meta()
            .tags()?
            .into_iter()
            .filter(|(_, target)| *target == id)
            .map(|(n, _)| n)
            .collect();
        let named_tag = Reference::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|r| tags.contains(r));
        let users = self.containers_using(&id)?;
        if let Some(user) = users.first() {
            if !force && (named_tag.is_none() || tags.len() <= 1) {
                return Err(Error::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    user.get(..12).unwrap_or(user),
                    id.short()
                )));
            }
        }
        let mut out = Vec::new();
        if let Some(tag) = named_tag {
            self.store.meta_mut().remove_tag(&tag)?;
            out.push(Removed::Untagged(familiar(&tag)));
            if tags.len() > 1 {
                return Ok(out);
            }
        } else {
            if tags.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    id.short()
                )));
            }
            for tag in &tags {
                self.store.meta_mut().remove_tag(tag)?;
                out.push(Removed::Untagged(familiar(tag)));
            }
        }
        if !users.is_empty() {
            // Forced: untagged, but the image stays while a container
            // runs from its snapshots.
            for tag in &tags {
                let _ = self.store.meta_mut().remove_tag(tag);
                let untagged = Removed::Untagged(familiar(tag));
                if !out.contains(&untagged) {
                    out.push(untagged);
                }
            }
            return Ok(out);
        }
        self.store.remove_image(&id)?;
        out.push(Removed::Deleted(id));
        // Free what only this image used, as Docker does at once; anything
        // an operation in progress wrote is protected by its lease.
        self.store.gc(IMMEDIATE_GC)?;
        Ok(out)
    }

    /// `berth image prune`: removes dangling images (with `all`, every
    /// image), then their content. Returns what was removed and the bytes
    /// freed.
    pub fn prune_images(&mut self, all: bool) -> Result<(Vec<Removed>, u64)> {
        let victims = if all {
            self.store.meta().image_ids()?
        } else {
            self.store.dangling_images()?
        };
        let in_use = self.store.meta().images_in_use()?;
        let mut removed = Vec::new();
        for id in victims.into_iter().filter(|v| !in_use.contains(v)) {
            for (tag, target) in self.store.meta().tags()? {
                if target == id {
                    self.store.meta_mut().remove_tag(&tag)?;
                    removed.push(Removed::Untagged(familiar(&tag)));
                }
            }
            self.store.remove_image(&id)?;
            removed.push(Removed::Deleted(id));
        }
        let report = self.store.gc(IMMEDIATE_GC)?;
        Ok((removed, report.bytes_freed()))
    }

    /// `berth image inspect`: Docker's `ImageInspect` JSON.
    pub fn inspect_image(&self, name: &str) -> Result<Value> {
        let id = self.resolve_image(name)?;
        let record = self
            .store
            .meta()
            .image(&id)?
            .ok_or_else(|| Error::NotFound(format!("No such image: {name}")))?;
        let config = self.image_config(&id)?;
        let chain = chain_ids(config.diff_ids());
        let snapshots = self.store.snapshots();
        let mut lower = Vec::new();
        for c in chain.iter().rev() {
            if let Some(s) = snapshots.get(self.store.meta(), c)? {
                lower.push(snapshots.fs_dir(s.id).to_string_lossy().into_owned());
            }
        }
        let repo_digests: Vec<String> = Vec::new();
        let mut inspect = json!({
            "Id": id.to_string(),
            "RepoTags": self.repo_tags(&id)?,
            "RepoDigests": repo_digests,
            "Parent": "",
            "Comment": config.history.last().map(|h| h.comment.clone()).unwrap_or_default(),
            "Created": config.created.clone().unwrap_or_default(),
            "DockerVersion": "",
            "Author": config.author,
            "Config": config.config.clone().map(|c| serde_json::to_value(c).unwrap_or(Value::Null)),
            "Architecture": config.architecture,
            "Os": config.os,
            "Size": record.size,
            "GraphDriver": {
                "Name": "overlay2",
                "Data": { "LowerDir": lower.join(":") },
            },
            "RootFS": {
                "Type": "layers",
                "Layers": config.diff_ids().iter().map(Digest::to_string).collect::<Vec<_>>(),
            },
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        });
        if !config.variant.is_empty() {
            inspect["Variant"] = Value::String(config.variant.clone());
        }
        Ok(inspect)
    }

    /// `berth history`: newest step first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let id = self.resolve_image(name)?;
        let config = self.image_config(&id)?;
        let chain = chain_ids(config.diff_ids());
        let mut layer_sizes = Vec::new();
        for c in &chain {
            let size = self
                .store
                .snapshots()
                .get(self.store.meta(), c)?
                .map_or(0, |s| s.size);
            layer_sizes.push(size);
        }
        let mut layers = layer_sizes.into_iter();
        let mut rows: Vec<HistoryRow> = config
            .history
            .iter()
            .map(|h| HistoryRow {
                id: None,
                created: h.created.as_deref().and_then(parse_rfc3339),
                created_by: h.created_by.clone(),
                size: if h.empty_layer {
                    0
                } else {
                    layers.next().unwrap_or(0)
                },
                comment: h.comment.clone(),
            })
            .collect();
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(id);
        }
        Ok(rows)
    }
}

/// `REPO[:TAG]` for tagging: a digest is not allowed, `:latest` by default.
pub(crate) fn parse_tag_reference(text: &str) -> Result<Reference> {
    let reference = Reference::parse(text).map_err(|e| Error::Invalid(format!("{text}: {e}")))?;
    if reference.digest().is_some() {
        return Err(Error::Invalid(format!(
            "refusing to create a tag with a digest reference: {text}"
        )));
    }
    Ok(reference)
}

/// `docker.io/library/busybox:latest` → `busybox:latest`.
impl Engine {
    /// IDs of the containers created from image `id`.
    fn containers_using(&self, id: &Digest) -> Result<Vec<String>> {
        Ok(self
            .store
            .meta()
            .containers()?
            .into_iter()
            .filter(|c| c.image_id == *id)
            .map(|c| c.id)
            .collect())
    }
}

fn familiar(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar_string())
        .unwrap_or_else(|_| name.to_string())
}
