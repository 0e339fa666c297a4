//! `builder prune` and the build cache row of `system df`: which cache
//! records go, and what they hold.
//!
//! A record is *dangling* when no image uses its layer blob (an
//! intermediate stage's layer, a superseded step): without `all` only those
//! are pruned, as Docker prunes only dangling build cache. The content of
//! removed records is freed by the GC that follows.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use berth_oci::Digest;

use crate::gc::{unix_seconds, Roots};
use crate::{CacheEntry, GcOptions, GcReport, Result, Store};

/// Which records [`Store::prune_build_cache`] removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildCachePruneOptions {
    /// Every record, not only dangling ones.
    pub all: bool,
    /// Only records not used for at least this long (`--filter until=`).
    pub unused_for: Option<Duration>,
    /// Stop once the cache holds at most this many bytes (`--keep-storage`),
    /// removing the least recently used first.
    pub keep_bytes: Option<u64>,
}

/// What [`Store::prune_build_cache`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildCachePruned {
    /// Keys of the removed records, least recently used first.
    pub removed: Vec<Digest>,
    /// The GC that freed their content.
    pub gc: GcReport,
}

/// The build cache row of `system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildCacheUsage {
    pub records: usize,
    /// Records whose layer an image uses.
    pub active: usize,
    /// Bytes of the records' blobs and snapshots, shared ones once.
    pub bytes: u64,
    /// Bytes of the blobs and snapshots only dangling records hold.
    pub reclaimable: u64,
}

impl Store {
    /// Removes the build cache records `opts` selects, then runs a GC with
    /// `gc` to free what they alone held.
    pub fn prune_build_cache(
        &mut self,
        opts: BuildCachePruneOptions,
        gc: GcOptions,
    ) -> Result<BuildCachePruned> {
        let entries = self.meta().cache_entries()?;
        let image_blobs = self.image_layer_blobs()?;
        let sizes = self.snapshot_sizes()?;
        let cutoff = opts
            .unused_for
            .map(|d| unix_seconds(SystemTime::now()).saturating_sub(secs(d)));
        let mut held = total_bytes(&entries, &sizes);
        let mut removed = Vec::new();
        // Least recently used first, so --keep-storage keeps the newest.
        for entry in &entries {
            if opts.keep_bytes.is_some_and(|keep| held <= keep) {
                break;
            }
            let dangling = !image_blobs.contains(&entry.blob);
            let old_enough = cutoff.is_none_or(|c| entry.last_used <= c);
            if (opts.all || dangling) && old_enough {
                removed.push(entry.key.clone());
                held = held.saturating_sub(entry_bytes(entry, &sizes));
            }
        }
        if removed.len() == entries.len() && opts.all {
            // Everything: the context checksums go too.
            self.meta_mut().clear_build_cache()?;
        } else {
            self.meta_mut().delete_cache_records(&removed)?;
        }
        let gc = self.gc(gc)?;
        tracing::debug!(
            records = removed.len(),
            bytes = gc.bytes_freed(),
            "build cache pruned"
        );
        Ok(BuildCachePruned { removed, gc })
    }

    /// The build cache's records and bytes (`berth system df`).
    pub fn build_cache_usage(&self) -> Result<BuildCacheUsage> {
        let entries = self.meta().cache_entries()?;
        let image_blobs = self.image_layer_blobs()?;
        let sizes = self.snapshot_sizes()?;
        let dangling: Vec<CacheEntry> = entries
            .iter()
            .filter(|e| !image_blobs.contains(&e.blob))
            .cloned()
            .collect();
        Ok(BuildCacheUsage {
            records: entries.len(),
            active: entries.len() - dangling.len(),
            bytes: total_bytes(&entries, &sizes),
            reclaimable: total_bytes(&dangling, &sizes),
        })
    }

    /// The layer blobs of every image.
    fn image_layer_blobs(&self) -> Result<HashSet<Digest>> {
        let rows = self.meta().snapshot_rows()?;
        Ok(self
            .reachable(Roots::ImagesOnly, &rows, SystemTime::now())?
            .blobs)
    }

    /// Recorded sizes of committed snapshots, by chain ID.
    fn snapshot_sizes(&self) -> Result<HashMap<Digest, u64>> {
        Ok(self
            .meta()
            .snapshot_rows()?
            .into_iter()
            .filter(|r| r.committed)
            .map(|r| (r.chain_id, r.size.unwrap_or(0)))
            .collect())
    }
}

/// A record's blob and snapshot bytes.
fn entry_bytes(entry: &CacheEntry, sizes: &HashMap<Digest, u64>) -> u64 {
    entry.size + sizes.get(&entry.chain_id).copied().unwrap_or(0)
}

/// The bytes of `entries`, each blob and snapshot once.
fn total_bytes(entries: &[CacheEntry], sizes: &HashMap<Digest, u64>) -> u64 {
    let mut blobs = HashSet::new();
    let mut chains = HashSet::new();
    let mut total = 0;
    for e in entries {
        if blobs.insert(&e.blob) {
            total += e.size;
        }
        if chains.insert(&e.chain_id) {
            total += sizes.get(&e.chain_id).copied().unwrap_or(0);
        }
    }
    total
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
