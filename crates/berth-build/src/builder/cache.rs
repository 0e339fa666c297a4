//! The build cache: a step's inputs hashed into its key, a record reused
//! when its layer is still stored, a miss explained, a result recorded.

use std::collections::BTreeMap;
use std::time::Instant;

use berth_oci::{chain_ids, Digest, RootFs};
use berth_store::{CacheRecord, LayerRecord};

use super::{Builder, State, EMPTY_LAYER};
use crate::layer::StepDir;
use crate::Result;

impl Builder<'_, '_> {
    /// Reuses a cached result for `inputs`; false on a miss.
    pub(super) fn try_cache(
        &mut self,
        inputs: &str,
        step_text: &str,
        n: usize,
        state: &mut State,
        created_by: &str,
    ) -> Result<bool> {
        let key = Digest::sha256_of(inputs.as_bytes());
        if self.opts.no_cache {
            return Ok(false);
        }
        let record = self.backend.store().meta().cache_record(&key)?;
        let Some(record) = record else {
            if self.opts.debug_cache {
                self.explain_miss(inputs, step_text, n)?;
            }
            return Ok(false);
        };
        if record.media_type == EMPTY_LAYER {
            self.reused.push(key);
            state.time = record.created.clone();
            state.push_history(created_by.to_string(), true);
            self.cached += 1;
            self.progress.cached(n);
            return Ok(true);
        }
        let store = self.backend.store();
        if store.content().size(&record.blob)?.is_none() {
            return Ok(false);
        }
        let mut diff_ids = state.diff_ids();
        diff_ids.push(record.diff_id.clone());
        let chain = chain_ids(&diff_ids);
        if chain.last() != Some(&record.chain_id) {
            return Ok(false);
        }
        if store
            .snapshots()
            .get(store.meta(), &record.chain_id)?
            .is_none()
        {
            let parent = state.chain.clone();
            self.backend.store_mut().unpack_layer(
                &record.chain_id,
                parent.as_ref(),
                &record.diff_id,
                &record.blob,
            )?;
        }
        // Marked used at the end, in one transaction.
        self.reused.push(key);
        state.time = record.created.clone();
        self.apply_layer(
            state,
            record.chain_id.clone(),
            LayerRecord {
                diff_id: record.diff_id,
                blob: record.blob,
                media_type: record.media_type,
                size: record.size,
            },
        );
        state.push_history(created_by.to_string(), false);
        self.cached += 1;
        self.progress.cached(n);
        Ok(true)
    }

    fn explain_miss(&mut self, inputs: &str, step_text: &str, n: usize) -> Result<()> {
        let prefix = format!("step={step_text}\n");
        let previous = self.backend.store().meta().cache_inputs_like(&prefix)?;
        let Some(previous) = previous else {
            self.progress
                .note(n, "cache miss: this instruction was never built before");
            return Ok(());
        };
        let old: BTreeMap<&str, &str> =
            previous.lines().filter_map(|l| l.split_once('=')).collect();
        let new: BTreeMap<&str, &str> = inputs.lines().filter_map(|l| l.split_once('=')).collect();
        let changed: Vec<&str> = new
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, _)| *k)
            .collect();
        let what = changed
            .iter()
            .map(|k| match *k {
                "parent" => "the parent layer (an earlier step or the base image changed)",
                "sources" => "the source files (content or metadata)",
                "args" => "build args",
                "env" => "the environment (ENV)",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(", ");
        self.progress
            .note(n, &format!("cache miss: changed: {what}"));
        Ok(())
    }

    fn apply_layer(&self, state: &mut State, chain: Digest, layer: LayerRecord) {
        let rootfs = state.config.rootfs.get_or_insert_with(|| RootFs {
            kind: "layers".into(),
            ..RootFs::default()
        });
        if rootfs.kind.is_empty() {
            rootfs.kind = "layers".into();
        }
        rootfs.diff_ids.push(layer.diff_id.clone());
        state.layers.push(layer);
        state.chain = Some(chain);
    }

    pub(super) fn commit(
        &mut self,
        step: StepDir,
        state: &mut State,
        inputs: &str,
        n: usize,
        t: Instant,
        created_by: String,
    ) -> Result<()> {
        let diff_ids = state.diff_ids();
        let committed = step.commit(self.backend.store_mut(), &diff_ids, self.epoch)?;
        state.time = self.build_time.clone();
        let key = Digest::sha256_of(inputs.as_bytes());
        let secs = crate::time::wall_now();
        let empty = Digest::sha256_of(b"");
        let record = match &committed {
            Some(c) => CacheRecord {
                key,
                inputs: inputs.to_string(),
                chain_id: c.chain_id.clone(),
                diff_id: c.layer.diff_id.clone(),
                blob: c.layer.blob.clone(),
                media_type: c.layer.media_type.clone(),
                size: c.layer.size,
                created: state.time.clone(),
            },
            None => CacheRecord {
                key,
                inputs: inputs.to_string(),
                chain_id: empty.clone(),
                diff_id: empty.clone(),
                blob: empty,
                media_type: EMPTY_LAYER.into(),
                size: 0,
                created: state.time.clone(),
            },
        };
        self.backend
            .store_mut()
            .meta_mut()
            .put_cache_record(&record, secs)?;
        match committed {
            Some(c) => {
                self.apply_layer(state, c.chain_id, c.layer);
                state.push_history(created_by, false);
            }
            None => state.push_history(created_by, true),
        }
        self.progress.done(n, t);
        Ok(())
    }
}
