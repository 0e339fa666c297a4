//! What the builder resolves for `RUN --mount` before the cache lookup:
//! each mount's `from` (a stage, built first, or an image) and the
//! content of a bind's source, so that the step's key changes when what
//! it reads does; and the checksums of context sources COPY shares.

use std::collections::HashMap;

use berth_dockerfile::instructions::{Mount, MountType};
use berth_dockerfile::stages::StageRef;
use berth_dockerfile::Span;
use berth_oci::Digest;

use super::Builder;
use crate::context::{stat_key, SourceEntry};
use crate::copy::{self, CopyPlan};
use crate::run_mounts::{self, MountFrom, PlannedMount};
use crate::{Error, Result};

impl Builder<'_, '_> {
    /// Plans a RUN's `--mount`s (in stage `stage_index`, working directory
    /// `workdir`); errors point at the RUN line.
    pub(super) fn plan_run_mounts(
        &mut self,
        stage_index: usize,
        mounts: &[Mount],
        workdir: &str,
        span: Span,
        path: &mut Vec<usize>,
    ) -> Result<Vec<PlannedMount>> {
        let mut planned = Vec::new();
        for mount in mounts {
            let mut m = run_mounts::plan_mount(mount, workdir).map_err(|e| self.err_at(e, span))?;
            if !matches!(m.kind, MountType::Bind | MountType::Cache) {
                planned.push(m);
                continue;
            }
            match &mount.from {
                Some(from) => {
                    let chain = match self.plan.resolve(from, stage_index, false) {
                        StageRef::Stage(i) if i == stage_index => {
                            return Err(self.err_at(
                                format!("circular dependency detected on stage: {from}"),
                                span,
                            ))
                        }
                        StageRef::Stage(i) => self.stage(i, path)?.chain,
                        StageRef::Image(name) => self.base_image(&name, span)?.chain,
                    };
                    m.content = chain
                        .as_ref()
                        .map_or_else(|| "scratch".to_string(), Digest::to_string);
                    m.from = Some(MountFrom::Chain(chain));
                }
                None if m.kind == MountType::Bind => {
                    let mut trees = self
                        .context
                        .sources(&m.source)
                        .map_err(|e| self.err_at(e.to_string(), span))?;
                    if trees.len() != 1 {
                        return Err(self.err_at(
                            format!("bind source {:?} names more than one path", m.source),
                            span,
                        ));
                    }
                    let plan = CopyPlan::whole_source(&m.source, trees.pop().unwrap_or_default());
                    m.content = self.sources_digest(&plan, true)?.to_string();
                    m.entries = plan
                        .sources
                        .into_iter()
                        .next()
                        .map(|s| s.entries)
                        .unwrap_or_default();
                    m.from = Some(MountFrom::Context);
                }
                None => {}
            }
            planned.push(m);
        }
        Ok(planned)
    }

    /// The checksum of a copy plan's sources. Context files whose stat is
    /// unchanged take their content sum from the store's record; new sums
    /// are remembered (written when the build ends).
    pub(super) fn sources_digest(&mut self, plan: &CopyPlan, from_context: bool) -> Result<Digest> {
        let mut known: HashMap<String, (String, String)> = HashMap::new();
        // Downloaded sources (ADD of a URL or git) have no context checksums.
        let fetched: std::collections::HashSet<&std::path::Path> = plan
            .sources
            .iter()
            .filter(|s| s.fetched)
            .flat_map(|s| s.entries.iter().map(|e| e.path.as_path()))
            .collect();
        if from_context {
            let paths: Vec<String> = plan
                .sources
                .iter()
                .filter(|s| !s.fetched)
                .flat_map(|s| s.entries.iter())
                .filter(|e| e.meta.is_file())
                .map(|e| e.path.to_string_lossy().into_owned())
                .collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let rows = self.backend.store().meta().context_sums(&refs)?;
            for (p, row) in paths.iter().zip(rows) {
                if let Some(r) = row {
                    known.insert(p.clone(), r);
                }
            }
        }
        let new_sums = &mut self.new_sums;
        copy::sources_digest(plan, &mut |e: &SourceEntry| {
            if !from_context || fetched.contains(e.path.as_path()) {
                return copy::file_digest(&e.path);
            }
            let key = e.path.to_string_lossy().into_owned();
            let stat = stat_key(&e.meta);
            if let Some((s, sum)) = known.get(&key) {
                if *s == stat {
                    return Ok(sum.clone());
                }
            }
            let sum = copy::file_digest(&e.path)?;
            new_sums.push((key, stat, sum.clone()));
            Ok(sum)
        })
    }

    /// Renders a mount error that is the Dockerfile's doing at its line;
    /// store and I/O failures stay as they are.
    pub(super) fn mount_error(&self, e: Error, span: Span) -> Error {
        match e {
            Error::NotFound(_) | Error::Invalid(_) | Error::Unsupported(_) => {
                self.err_at(e.to_string(), span)
            }
            other => other,
        }
    }
}
