//! `berth build --output`: where a build's result goes, as BuildKit's
//! exporters say it.
//!
//! - `type=image` (the default), and `type=docker` without `dest`: the
//!   image is recorded in the store and tagged (`-t`, `name=`);
//! - `type=local,dest=DIR`: the final stage's filesystem written into
//!   `DIR` (created if missing);
//! - `type=tar,dest=FILE|-`: the same filesystem as one tar;
//! - `type=docker,dest=FILE|-`: an archive `docker load` reads (the
//!   layout [`Engine::save`] writes);
//! - `type=oci,dest=FILE|-`: an OCI image layout tarball;
//! - `type=cacheonly`: nothing but the build cache.
//!
//! Shorthands, as buildx has them: `-o DIR` is `type=local,dest=DIR`, `-o -`
//! is `type=tar,dest=-`. Except for `image` and `docker` without `dest`,
//! no image is recorded or tagged: the builder's result is held under a
//! lease (its layers are stored blobs and committed snapshots, which the
//! build cache keeps) while it is exported.
//!
//! The filesystem is read through a read-only overlay mount of the image's
//! snapshot chain, so whiteouts are applied (the merged view), and it
//! reaches `DIR` through the layer applier of `berth-fs`, which creates
//! every entry through directory descriptors below `DIR`: nothing is
//! written outside it, and the image's symlinks stay symlinks.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use berth_build::{BuildOutput, Context, ImageBackend, Progress, ReadView};
use berth_fs::{ApplyOptions, TarOptions, WhiteoutMode};
use berth_oci::{chain_ids, Digest, ImageConfig, MediaType, Reference};
use berth_store::{LayerRecord, Store};

use crate::archive::{ArchiveFormat, ArchiveImage};
use crate::build::BuildRequest;
use crate::images::{oci_manifest, parse_tag_reference};
use crate::{Engine, Error, Result};

/// Where an exported file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportDest {
    /// Standard output (`dest=-`).
    Stdout,
    File(PathBuf),
}

/// `berth build --output`: where the result of a build goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildExport {
    /// Recorded in the store and tagged with the `-t` tags and `names`.
    Image { names: Vec<String> },
    /// The final stage's filesystem, written into a directory.
    Local(PathBuf),
    /// The final stage's filesystem as a tar.
    Tar(ExportDest),
    /// A `docker load` archive; named `names`, else with the `-t` tags.
    DockerArchive {
        dest: ExportDest,
        names: Vec<String>,
    },
    /// An OCI image layout tarball; named as [`BuildExport::DockerArchive`].
    OciArchive {
        dest: ExportDest,
        names: Vec<String>,
    },
    /// Nothing: the build only fills the cache.
    CacheOnly,
}

impl Default for BuildExport {
    fn default() -> Self {
        BuildExport::Image { names: Vec::new() }
    }
}

impl BuildExport {
    /// Parses one `--output` value: `type=TYPE[,dest=…][,name=…]` (comma
    /// separated, a field may be double-quoted to hold commas), or a
    /// shorthand: `-` (a tar on standard output) or a directory.
    pub fn parse(spec: &str) -> Result<BuildExport> {
        if spec.trim().is_empty() {
            return Err(Error::Invalid("invalid output: empty value".into()));
        }
        let fields = csv_fields(spec)?;
        let single = fields.len() == 1 && fields.first().map(String::as_str) == Some(spec);
        if single && !spec.starts_with("type=") {
            return Ok(if spec == "-" {
                BuildExport::Tar(ExportDest::Stdout)
            } else {
                BuildExport::Local(PathBuf::from(spec))
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut attrs = Vec::new();
        for field in &fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(Error::Invalid(format!(
                    "invalid output: invalid value {field}"
                )));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "type" => kind = Some(value.to_string()),
                "dest" => dest = Some(value.to_string()),
                other => attrs.push((other.to_string(), value.to_string())),
            }
        }
        let Some(kind) = kind else {
            return Err(Error::Invalid(
                "invalid output: type is required for output".into(),
            ));
        };
        let mut names = Vec::new();
        for (key, value) in &attrs {
            let supported = match (key.as_str(), kind.as_str()) {
                ("name", "image" | "docker" | "oci") => {
                    names.extend(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|n| !n.is_empty())
                            .map(str::to_string),
                    );
                    true
                }
                // What berth does anyway.
                ("tar", "docker" | "oci") => value == "true",
                ("push", "image" | "docker" | "oci") => value == "false",
                ("platform-split", "local" | "tar") => true,
                _ => false,
            };
            if !supported {
                return Err(Error::Invalid(format!(
                    "invalid output: {key}={value} is not supported for type={kind}"
                )));
            }
        }
        let file_dest = |dest: Option<String>| match dest.as_deref() {
            None | Some("-") => ExportDest::Stdout,
            Some(path) => ExportDest::File(PathBuf::from(path)),
        };
        let no_dest = |dest: &Option<String>| match dest {
            Some(d) => Err(Error::Invalid(format!(
                "invalid output: dest={d} is not supported by the {kind} exporter"
            ))),
            None => Ok(()),
        };
        Ok(match kind.as_str() {
            "local" => match dest.as_deref() {
                Some(d) if !d.is_empty() => BuildExport::Local(PathBuf::from(d)),
                _ => {
                    return Err(Error::Invalid(
                        "invalid output: dest is required for local output".into(),
                    ))
                }
            },
            "tar" => BuildExport::Tar(file_dest(dest)),
            "docker" => match dest {
                None => BuildExport::Image { names },
                dest => BuildExport::DockerArchive {
                    dest: file_dest(dest),
                    names,
                },
            },
            "oci" => BuildExport::OciArchive {
                dest: file_dest(dest),
                names,
            },
            "image" => {
                no_dest(&dest)?;
                BuildExport::Image { names }
            }
            "cacheonly" => {
                no_dest(&dest)?;
                BuildExport::CacheOnly
            }
            "registry" => {
                return Err(Error::Invalid(
                    "invalid output: type=registry: pushing is not supported yet".into(),
                ))
            }
            other => {
                return Err(Error::Invalid(format!(
                    "invalid output: unknown type {other:?} (use local, tar, docker, oci, image or cacheonly)"
                )))
            }
        })
    }

    /// Whether the image is recorded in the store.
    pub fn stores_image(&self) -> bool {
        matches!(self, BuildExport::Image { .. })
    }

    /// Whether the export is written to standard output.
    pub fn writes_stdout(&self) -> bool {
        matches!(
            self,
            BuildExport::Tar(ExportDest::Stdout)
                | BuildExport::DockerArchive {
                    dest: ExportDest::Stdout,
                    ..
                }
                | BuildExport::OciArchive {
                    dest: ExportDest::Stdout,
                    ..
                }
        )
    }

    /// The exporter's name, as in `type=`.
    fn type_name(&self) -> &'static str {
        match self {
            BuildExport::Image { .. } => "image",
            BuildExport::Local(_) => "local",
            BuildExport::Tar(_) => "tar",
            BuildExport::DockerArchive { .. } => "docker",
            BuildExport::OciArchive { .. } => "oci",
            BuildExport::CacheOnly => "cacheonly",
        }
    }

    /// Refuses a destination of the wrong kind before anything is built.
    fn check_destination(&self) -> Result<()> {
        match self {
            BuildExport::Local(dir) => match std::fs::metadata(dir) {
                Ok(m) if !m.is_dir() => Err(Error::Invalid(format!(
                    "destination directory {} is a file",
                    dir.display()
                ))),
                _ => Ok(()),
            },
            BuildExport::Tar(ExportDest::File(path))
            | BuildExport::DockerArchive {
                dest: ExportDest::File(path),
                ..
            }
            | BuildExport::OciArchive {
                dest: ExportDest::File(path),
                ..
            } => match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => Err(Error::Invalid(format!(
                    "destination file {} is a directory",
                    path.display()
                ))),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Splits `a,b,"c,d"` into fields as Go's CSV reader does (a field that
/// starts with `"` runs to the closing quote; `""` inside is one quote).
fn csv_fields(spec: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = spec.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(Error::Invalid(format!(
                            "invalid output {spec:?}: unterminated quote"
                        )))
                    }
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "invalid output {spec:?}: extraneous text after a quoted field"
                    )))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// A built image that was not recorded: what the builder handed over.
#[derive(Debug)]
struct BuiltImage {
    id: Digest,
    config_bytes: Vec<u8>,
    config: ImageConfig,
    layers: Vec<LayerRecord>,
}

impl BuiltImage {
    /// The top of its snapshot chain (`None`: no layers).
    fn chain(&self) -> Option<Digest> {
        chain_ids(self.config.diff_ids()).last().cloned()
    }
}

/// The engine as the builder's backend, except that the final image is
/// kept (its blobs and snapshots under `lease`) instead of recorded.
struct Unrecorded<'e> {
    engine: &'e mut Engine,
    lease: String,
    image: Option<BuiltImage>,
}

impl ImageBackend for Unrecorded<'_> {
    fn store(&self) -> &Store {
        &self.engine.store
    }

    fn store_mut(&mut self) -> &mut Store {
        &mut self.engine.store
    }

    fn find_image(&self, name: &str) -> berth_build::Result<Option<Digest>> {
        ImageBackend::find_image(&*self.engine, name)
    }

    fn image_config(&self, id: &Digest) -> berth_build::Result<ImageConfig> {
        ImageBackend::image_config(&*self.engine, id)
    }

    fn store_image(
        &mut self,
        config_bytes: &[u8],
        config: &ImageConfig,
        layers: &[LayerRecord],
    ) -> berth_build::Result<Digest> {
        let meta = self.engine.store.meta_mut();
        for layer in layers {
            meta.lease_resource(&self.lease, "blob", &layer.blob.to_string())?;
        }
        for chain in chain_ids(config.diff_ids()) {
            meta.lease_resource(&self.lease, "snapshot", &chain.to_string())?;
        }
        let id = Digest::sha256_of(config_bytes);
        self.image = Some(BuiltImage {
            id: id.clone(),
            config_bytes: config_bytes.to_vec(),
            config: config.clone(),
            layers: layers.to_vec(),
        });
        Ok(id)
    }
}

impl Engine {
    /// Builds, then exports the result as `request.export` says, without
    /// recording an image. Progress (the build's steps, then the export's)
    /// goes to `progress`.
    pub(crate) fn build_and_export(
        &mut self,
        context: &mut Context,
        request: &BuildRequest,
        progress: &mut dyn Write,
    ) -> Result<BuildOutput> {
        let export = &request.export;
        export.check_destination()?;
        let names = match export {
            BuildExport::DockerArchive { names, .. } | BuildExport::OciArchive { names, .. } => {
                let names = if names.is_empty() {
                    &request.tags
                } else {
                    names
                };
                names
                    .iter()
                    .map(|n| parse_tag_reference(n))
                    .collect::<Result<Vec<_>>>()?
            }
            _ => Vec::new(),
        };
        if !request.tags.is_empty() && matches!(export, BuildExport::Local(_) | BuildExport::Tar(_))
        {
            tracing::warn!(
                "-t is ignored: the {} exporter does not make an image",
                export.type_name()
            );
        }
        let mut display = Progress::new(request.options.progress, progress);
        let lease = self.begin_lease("build-export")?;
        let result = self.build_and_export_leased(context, request, names, &lease, &mut display);
        let released = self.store.meta_mut().delete_lease(&lease);
        display.finish(result.is_ok());
        let out = result?;
        released?;
        Ok(out)
    }

    fn build_and_export_leased(
        &mut self,
        context: &mut Context,
        request: &BuildRequest,
        names: Vec<Reference>,
        lease: &str,
        display: &mut Progress<'_>,
    ) -> Result<BuildOutput> {
        let mut backend = Unrecorded {
            engine: self,
            lease: lease.to_string(),
            image: None,
        };
        let out =
            berth_build::build_with_progress(&mut backend, context, &request.options, display)?;
        let image = backend
            .image
            .take()
            .ok_or_else(|| Error::Invalid("the build made no image".into()))?;
        match &request.export {
            BuildExport::Image { .. } | BuildExport::CacheOnly => {}
            BuildExport::Local(dir) => {
                let (n, t) = display.start("exporting to client directory");
                self.export_local(&image, dir)?;
                display.note(n, "copying files done");
                display.done(n, t);
            }
            BuildExport::Tar(dest) => {
                let (n, t) = display.start("exporting to client tarball");
                write_to(dest, |w| self.export_tar(&image, w))?;
                display.note(n, "sending tarball done");
                display.done(n, t);
            }
            BuildExport::DockerArchive { dest, .. } | BuildExport::OciArchive { dest, .. } => {
                let format = if matches!(request.export, BuildExport::OciArchive { .. }) {
                    ArchiveFormat::Oci
                } else {
                    ArchiveFormat::Docker
                };
                let (n, t) = display.start(match format {
                    ArchiveFormat::Oci => "exporting to oci image format",
                    ArchiveFormat::Docker => "exporting to docker image format",
                });
                display.note(n, "exporting layers done");
                let manifest =
                    oci_manifest(&image.id, image.config_bytes.len() as u64, &image.layers)
                        .to_json()?;
                display.note(
                    n,
                    &format!("exporting manifest {} done", Digest::sha256_of(&manifest)),
                );
                display.note(n, &format!("exporting config {} done", image.id));
                let archived = ArchiveImage {
                    id: image.id.clone(),
                    config_bytes: image.config_bytes.clone(),
                    layers: image.layers.clone(),
                    manifest,
                    manifest_type: MediaType::OciManifest,
                    refs: names,
                };
                write_to(dest, |w| {
                    self.write_image_archive(vec![archived], format, w)
                })?;
                display.note(n, "sending tarball done");
                display.done(n, t);
            }
        }
        Ok(out)
    }

    /// Writes the image's filesystem into `dir` (created if missing).
    fn export_local(&self, image: &BuiltImage, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let view = ReadView::merged(&self.store, image.chain().as_ref())?;
        let (reader, writer) = std::io::pipe().map_err(|e| Error::io("export: a pipe", e))?;
        let opts = ApplyOptions {
            whiteout_mode: WhiteoutMode::Literal,
            allow_devices: false,
            ..ApplyOptions::default()
        };
        // The tree is written as a tar on one side of a pipe and applied
        // on the other, so only the applier, confined to `dir`, writes.
        let (applied, produced) = std::thread::scope(|s| {
            let producer = s.spawn(|| berth_fs::tar_dir(&view.root, writer, &tar_options()));
            let applied = berth_fs::apply_layer(reader, dir, &opts);
            (applied, producer.join())
        });
        applied?;
        match produced {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(Error::Invalid("export: the tar writer panicked".into())),
        }
    }

    /// Writes the image's filesystem as a tar to `writer`.
    fn export_tar(&self, image: &BuiltImage, writer: &mut dyn Write) -> Result<()> {
        let view = ReadView::merged(&self.store, image.chain().as_ref())?;
        berth_fs::tar_dir(&view.root, writer, &tar_options())?;
        Ok(())
    }
}

/// Tar options for exported filesystems: mtimes clamped to
/// `SOURCE_DATE_EPOCH` when it is set, xattrs kept.
fn tar_options() -> TarOptions {
    TarOptions {
        source_date_epoch: crate::time::source_date_epoch(),
        xattrs: true,
    }
}

/// Runs `write` on standard output or on a file that appears (mode 0644)
/// only once it is whole.
fn write_to(dest: &ExportDest, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    match dest {
        ExportDest::Stdout => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            write(&mut out)?;
            out.flush()
                .map_err(|e| Error::io("export: standard output", e))
        }
        ExportDest::File(path) => {
            let mut file = berth_fs::AtomicFile::create_with_mode(path, 0o644)?;
            {
                let mut out = BufWriter::new(&mut file);
                write(&mut out)?;
                out.flush()
                    .map_err(|e| Error::io(path.display().to_string(), e))?;
            }
            file.commit()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn file(p: &str) -> ExportDest {
        ExportDest::File(PathBuf::from(p))
    }

    #[test]
    fn shorthands() {
        assert_eq!(
            BuildExport::parse("out").unwrap(),
            BuildExport::Local("out".into())
        );
        assert_eq!(
            BuildExport::parse("-").unwrap(),
            BuildExport::Tar(ExportDest::Stdout)
        );
        // A directory name with `=` is still a directory.
        assert_eq!(
            BuildExport::parse("a=b").unwrap(),
            BuildExport::Local("a=b".into())
        );
    }

    #[test]
    fn types_and_destinations() {
        assert_eq!(
            BuildExport::parse("type=local,dest=d").unwrap(),
            BuildExport::Local("d".into())
        );
        assert_eq!(
            BuildExport::parse("type=tar").unwrap(),
            BuildExport::Tar(ExportDest::Stdout)
        );
        assert_eq!(
            BuildExport::parse("type=tar,dest=x.tar").unwrap(),
            BuildExport::Tar(file("x.tar"))
        );
        assert_eq!(
            BuildExport::parse("type=docker").unwrap(),
            BuildExport::Image { names: vec![] }
        );
        assert_eq!(
            BuildExport::parse("type=docker,name=app:1").unwrap(),
            BuildExport::Image {
                names: vec!["app:1".into()]
            }
        );
        assert_eq!(
            BuildExport::parse(r#"type=docker,dest=-,"name=a:1,b:2""#).unwrap(),
            BuildExport::DockerArchive {
                dest: ExportDest::Stdout,
                names: vec!["a:1".into(), "b:2".into()]
            }
        );
        assert_eq!(
            BuildExport::parse("type=oci,dest=o.tar,tar=true").unwrap(),
            BuildExport::OciArchive {
                dest: file("o.tar"),
                names: vec![]
            }
        );
        assert_eq!(
            BuildExport::parse("type=image").unwrap(),
            BuildExport::Image { names: vec![] }
        );
        assert_eq!(
            BuildExport::parse("type=cacheonly").unwrap(),
            BuildExport::CacheOnly
        );
    }

    #[test]
    fn bad_outputs_are_refused() {
        for bad in [
            "",
            "type=nope",
            "type=local",
            "type=local,dest=d,junk",
            "type=image,dest=x",
            "type=image,push=true",
            "type=oci,tar=false",
            "type=registry,name=x",
            "type=local,dest=d,name=x",
            r#"type=tar,"dest=x"#,
        ] {
            let err = BuildExport::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid output"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn stdout_outputs() {
        assert!(BuildExport::parse("-").unwrap().writes_stdout());
        assert!(BuildExport::parse("type=oci").unwrap().writes_stdout());
        assert!(!BuildExport::parse("type=docker").unwrap().writes_stdout());
        assert!(!BuildExport::parse("d").unwrap().writes_stdout());
    }
}
