//! `berth build` through the engine: the engine is the builder's
//! [`ImageBackend`] (names, configs, recording images), and tags the result.

use std::io::Write;

use berth_build::{BuildOptions, BuildOutput, Context, ImageBackend};
use berth_oci::{Digest, ImageConfig};
use berth_store::{BuildCachePruneOptions, BuildCachePruned, LayerRecord, Store};

use crate::export::BuildExport;
use crate::images::{parse_tag_reference, NewImage, IMMEDIATE_GC};
use crate::time::now;
use crate::{Engine, Error, Result};

/// A build and the names to give its image.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub options: BuildOptions,
    /// `-t`, each `name[:tag]`.
    pub tags: Vec<String>,
    /// `--output`: where the result goes (default: the store).
    pub export: BuildExport,
}

fn backend_error(e: Error) -> berth_build::Error {
    match e {
        Error::Build(b) => b,
        Error::Store(s) => berth_build::Error::Store(s),
        Error::NotFound(m) => berth_build::Error::NotFound(m),
        other => berth_build::Error::Backend(other.to_string()),
    }
}

impl ImageBackend for Engine {
    fn store(&self) -> &Store {
        &self.store
    }

    fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    fn find_image(&self, name: &str) -> berth_build::Result<Option<Digest>> {
        match self.resolve_image(name) {
            Ok(id) => Ok(Some(id)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(backend_error(e)),
        }
    }

    fn image_config(&self, id: &Digest) -> berth_build::Result<ImageConfig> {
        Engine::image_config(self, id).map_err(backend_error)
    }

    fn store_image(
        &mut self,
        config_bytes: &[u8],
        config: &ImageConfig,
        layers: &[LayerRecord],
    ) -> berth_build::Result<Digest> {
        let lease = self.begin_lease("build").map_err(backend_error)?;
        let (secs, _) = now();
        let result = Engine::store_image(
            self,
            NewImage {
                config_bytes,
                config,
                layers,
                manifest: None,
                created_at: secs,
            },
            Some(&lease),
        );
        let _ = self.store.meta_mut().delete_lease(&lease);
        result.map_err(backend_error)
    }
}

impl Engine {
    /// Builds an image from `context` and tags it, or exports it as
    /// `request.export` says (see [`BuildExport`]); progress goes to
    /// `progress`. Must run in a single-threaded process.
    pub fn build(
        &mut self,
        context: &mut Context,
        request: &BuildRequest,
        progress: &mut dyn Write,
    ) -> Result<BuildOutput> {
        let BuildExport::Image { names } = &request.export else {
            return self.build_and_export(context, request, progress);
        };
        let tags = request
            .tags
            .iter()
            .chain(names)
            .map(|t| parse_tag_reference(t))
            .collect::<Result<Vec<_>>>()?;
        let out = berth_build::build(self, context, &request.options, progress)?;
        for tag in tags {
            self.store.meta_mut().set_tag(&tag.to_string(), &out.id)?;
        }
        Ok(out)
    }

    /// A stage worker's part of a parent build (see
    /// [`berth_build::build_for_parent`]).
    pub fn build_for_parent(
        &mut self,
        context: &mut Context,
        options: &BuildOptions,
        progress: &mut dyn Write,
    ) -> Result<()> {
        berth_build::build_for_parent(self, context, options, progress)?;
        Ok(())
    }

    /// `berth builder prune`: removes the build cache records `opts`
    /// selects and frees what only they held, at once; with `all`, also
    /// empties the RUN cache mounts no build is using.
    pub fn prune_build_cache(&mut self, opts: BuildCachePruneOptions) -> Result<BuildCachePruned> {
        let pruned = self.store.prune_build_cache(opts, IMMEDIATE_GC)?;
        if opts.all {
            berth_build::remove_cache_mounts(&self.store)?;
        }
        Ok(pruned)
    }
}
