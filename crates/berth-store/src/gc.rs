//! Garbage collection: what the store can reach, and removal of the rest.
//!
//! The roots are every image record (tagged or not: dropping untagged images
//! is the prune policy's decision, made by [`Store::remove_image`] before a
//! GC), every build cache record (its blob and its chain's snapshots: only
//! [`Store::prune_build_cache`] drops those, as `docker builder prune` does)
//! and every unexpired lease. An image reaches its config blob, its
//! manifest blob and its layer blobs, and the snapshots of its chain IDs; a
//! snapshot reaches its parents. Whatever is left is removed: blobs,
//! committed snapshots (children before parents) and the `layers` rows of
//! blobs that are gone.
//!
//! Another process may be importing while GC runs. It leases what it
//! references before it relies on it (an existing blob it dedups against, a
//! snapshot it stacks on), so anything leased is kept. Its fresh blobs and
//! snapshots may exist before the image record that reaches them, so those
//! younger than [`GcOptions::grace`] (by mtime) are kept even when nothing
//! reaches them, as are the parents of uncommitted snapshots. The roots are
//! read a second time just before deleting, to narrow the window further.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_oci::{chain_ids, Digest};

use crate::{Error, Result, SnapshotRow, Store};

/// How [`Store::gc`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Unreachable blobs and snapshots written more recently than this are
    /// kept: an import may not have recorded its image yet.
    pub grace: Duration,
}

/// The default [`GcOptions::grace`]: one hour.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60 * 60);

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
        }
    }
}

/// What a GC removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    /// Bytes of the removed blob files.
    pub blob_bytes_freed: u64,
    pub snapshots_removed: usize,
    /// Recorded (unpacked) sizes of the removed snapshots.
    pub snapshot_bytes_freed: u64,
    /// `layers` rows dropped because their blob is gone.
    pub layer_records_removed: usize,
    pub leases_expired: usize,
    /// Unreachable blobs and snapshots kept because they are younger than
    /// the grace period.
    pub kept_in_grace: usize,
}

impl GcReport {
    /// Every byte freed (blobs and snapshots).
    pub fn bytes_freed(&self) -> u64 {
        self.blob_bytes_freed + self.snapshot_bytes_freed
    }
}

/// What `berth system df` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub images: usize,
    /// Images no tag points at.
    pub dangling_images: usize,
    /// Bytes of the blobs and snapshots any image reaches, shared ones once.
    pub image_bytes: u64,
    pub blobs: usize,
    /// Bytes of every blob file.
    pub blob_bytes: u64,
    pub snapshots: usize,
    /// Recorded sizes of every committed snapshot.
    pub snapshot_bytes: u64,
    /// Bytes a GC would free once the dangling images were removed: blobs
    /// and snapshots no tagged image, no build cache record and no lease
    /// reaches.
    pub reclaimable: u64,
}

/// Blobs and snapshots (by chain ID) reachable from the roots.
#[derive(Debug, Default)]
pub(crate) struct Reachable {
    pub(crate) blobs: HashSet<Digest>,
    pub(crate) snapshots: HashSet<Digest>,
}

/// Which images count as roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roots {
    AllImages,
    TaggedImages,
    /// No images, no build cache, no leases: only what images reach (for
    /// `image_bytes`).
    ImagesOnly,
}

impl Store {
    /// Removes every blob and snapshot nothing reaches, and expired leases.
    ///
    /// It waits for every [`WriteGuard`] (an import, load or build in any
    /// process) to finish, and holds new ones off while it runs, so nothing
    /// is collected between being written and being recorded.
    pub fn gc(&mut self, opts: GcOptions) -> Result<GcReport> {
        let _exclusive = self.lock_for_gc()?;
        let now = SystemTime::now();
        let mut report = GcReport {
            leases_expired: self.meta.expire_leases(unix_seconds(now))?,
            ..GcReport::default()
        };

        let rows = self.meta().snapshot_rows()?;
        let first = self.reachable(Roots::AllImages, &rows, now)?;
        let (blobs, _) = self.content().list()?;
        let mut blob_candidates: Vec<Digest> = blobs
            .into_iter()
            .filter(|d| !first.blobs.contains(d))
            .collect();
        let mut snapshot_candidates: Vec<&SnapshotRow> = rows
            .iter()
            .filter(|r| r.committed && !first.snapshots.contains(&r.chain_id))
            .collect();

        // Fresh content may belong to an import that has not recorded its
        // image yet.
        let before = blob_candidates.len() + snapshot_candidates.len();
        blob_candidates.retain(|d| !is_recent(&self.content().path(d), now, opts.grace));
        snapshot_candidates.retain(|r| {
            !is_recent(
                &self.snapshots().dir().join(r.id.to_string()),
                now,
                opts.grace,
            )
        });
        report.kept_in_grace = before - blob_candidates.len() - snapshot_candidates.len();

        // Read the roots again: an import may have finished meanwhile.
        let rows_now = self.meta().snapshot_rows()?;
        let second = self.reachable(Roots::AllImages, &rows_now, now)?;
        blob_candidates.retain(|d| !second.blobs.contains(d));
        snapshot_candidates.retain(|r| !second.snapshots.contains(&r.chain_id));

        // A kept snapshot (reached, fresh or being unpacked) keeps its
        // ancestors: the parent column is a foreign key.
        let doomed: HashSet<&Digest> = snapshot_candidates.iter().map(|r| &r.chain_id).collect();
        let parent_of: HashMap<&Digest, &Digest> = rows_now
            .iter()
            .filter_map(|r| r.parent.as_ref().map(|p| (&r.chain_id, p)))
            .collect();
        let mut needed: HashSet<&Digest> = HashSet::new();
        for row in rows_now.iter().filter(|r| !doomed.contains(&r.chain_id)) {
            let mut at = row.parent.as_ref();
            while let Some(parent) = at {
                if !needed.insert(parent) {
                    break;
                }
                at = parent_of.get(parent).copied();
            }
        }
        snapshot_candidates.retain(|r| !needed.contains(&r.chain_id));

        // Children before parents.
        let depth = depths(&rows);
        snapshot_candidates.sort_by_key(|r| {
            std::cmp::Reverse((depth.get(&r.chain_id).copied().unwrap_or(0), r.id))
        });
        for row in snapshot_candidates {
            self.snapshots
                .discard(&mut self.meta, &row.chain_id, row.id)?;
            report.snapshots_removed += 1;
            report.snapshot_bytes_freed += row.size.unwrap_or(0);
            tracing::debug!(chain_id = %row.chain_id, id = row.id, "snapshot removed");
        }

        for digest in blob_candidates {
            let Some(size) = self.content().size(&digest)? else {
                continue;
            };
            self.content().delete(&digest)?;
            report.blobs_removed += 1;
            report.blob_bytes_freed += size;
            tracing::debug!(%digest, size, "blob removed");
        }

        let mut gone = HashSet::new();
        for layer in self.meta().layer_records()? {
            if !gone.contains(&layer.blob) && self.content().size(&layer.blob)?.is_none() {
                gone.insert(layer.blob);
            }
        }
        for blob in gone {
            report.layer_records_removed += self.meta.delete_layer_records(&blob)?;
        }
        tracing::debug!(
            blobs = report.blobs_removed,
            snapshots = report.snapshots_removed,
            bytes = report.bytes_freed(),
            "garbage collected"
        );
        Ok(report)
    }

    /// Deletes an image record; its tags must be gone. What only it reached
    /// is freed by the next [`Store::gc`].
    pub fn remove_image(&mut self, id: &Digest) -> Result<()> {
        if self.meta.delete_image(id)? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("image {id}")))
        }
    }

    /// Images no tag points at, newest first.
    pub fn dangling_images(&self) -> Result<Vec<Digest>> {
        self.meta().untagged_image_ids()
    }

    /// Space used by images, blobs and snapshots (`berth system df`).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let now = SystemTime::now();
        let rows = self.meta().snapshot_rows()?;
        let (blobs, _) = self.content().list()?;
        let mut blob_sizes = HashMap::new();
        for digest in blobs {
            if let Some(size) = self.content().size(&digest)? {
                blob_sizes.insert(digest, size);
            }
        }
        let committed: Vec<&SnapshotRow> = rows.iter().filter(|r| r.committed).collect();
        let unreached_bytes = |reach: &Reachable| -> u64 {
            let blobs: u64 = blob_sizes
                .iter()
                .filter(|(d, _)| !reach.blobs.contains(*d))
                .map(|(_, s)| *s)
                .sum();
            let snaps: u64 = committed
                .iter()
                .filter(|r| !reach.snapshots.contains(&r.chain_id))
                .map(|r| r.size.unwrap_or(0))
                .sum();
            blobs + snaps
        };
        let blob_bytes: u64 = blob_sizes.values().sum();
        let snapshot_bytes: u64 = committed.iter().map(|r| r.size.unwrap_or(0)).sum();
        let by_images = self.reachable(Roots::ImagesOnly, &rows, now)?;
        let kept = self.reachable(Roots::TaggedImages, &rows, now)?;
        Ok(DiskUsage {
            images: self.meta().image_ids()?.len(),
            dangling_images: self.dangling_images()?.len(),
            image_bytes: (blob_bytes + snapshot_bytes).saturating_sub(unreached_bytes(&by_images)),
            blobs: blob_sizes.len(),
            blob_bytes,
            snapshots: committed.len(),
            snapshot_bytes,
            reclaimable: unreached_bytes(&kept),
        })
    }

    /// What the roots reach. `rows` are the snapshot rows, for parents.
    pub(crate) fn reachable(
        &self,
        roots: Roots,
        rows: &[SnapshotRow],
        now: SystemTime,
    ) -> Result<Reachable> {
        let mut reach = Reachable::default();
        let images = match roots {
            Roots::AllImages | Roots::ImagesOnly => self.meta().image_ids()?,
            Roots::TaggedImages => {
                let untagged: HashSet<Digest> =
                    self.meta().untagged_image_ids()?.into_iter().collect();
                self.meta()
                    .image_ids()?
                    .into_iter()
                    .filter(|id| !untagged.contains(id))
                    .collect()
            }
        };
        for id in images {
            let Some(image) = self.meta().image(&id)? else {
                continue;
            };
            reach.blobs.insert(image.id.clone());
            reach.blobs.extend(image.manifest.iter().cloned());
            let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
            reach
                .blobs
                .extend(image.layers.into_iter().map(|layer| layer.blob));
            reach.snapshots.extend(chain_ids(&diff_ids));
        }
        if roots != Roots::ImagesOnly {
            for entry in self.meta().cache_entries()? {
                reach.blobs.insert(entry.blob);
                reach.snapshots.insert(entry.chain_id);
            }
            let now = unix_seconds(now);
            for key in self.meta().leased("blob", now)? {
                match key.parse::<Digest>() {
                    Ok(d) => {
                        reach.blobs.insert(d);
                    }
                    Err(e) => tracing::warn!(%key, %e, "lease names an invalid blob digest"),
                }
            }
            for key in self.meta().leased("snapshot", now)? {
                match key.parse::<Digest>() {
                    Ok(d) => {
                        reach.snapshots.insert(d);
                    }
                    Err(e) => tracing::warn!(%key, %e, "lease names an invalid chain ID"),
                }
            }
            // An unpack in progress stacks on its parent.
            reach.snapshots.extend(
                rows.iter()
                    .filter(|r| !r.committed)
                    .filter_map(|r| r.parent.clone()),
            );
        }
        // Close over parents.
        let parents: HashMap<&Digest, &Digest> = rows
            .iter()
            .filter_map(|r| r.parent.as_ref().map(|p| (&r.chain_id, p)))
            .collect();
        let mut pending: Vec<Digest> = reach.snapshots.iter().cloned().collect();
        while let Some(chain) = pending.pop() {
            if let Some(parent) = parents.get(&chain) {
                if reach.snapshots.insert((*parent).clone()) {
                    pending.push((*parent).clone());
                }
            }
        }
        Ok(reach)
    }
}

/// How many ancestors each snapshot has (cycles, which only a corrupt DB
/// could hold, are cut off).
fn depths(rows: &[SnapshotRow]) -> HashMap<Digest, usize> {
    let parents: HashMap<&Digest, &Digest> = rows
        .iter()
        .filter_map(|r| r.parent.as_ref().map(|p| (&r.chain_id, p)))
        .collect();
    rows.iter()
        .map(|r| {
            let mut depth = 0;
            let mut at = &r.chain_id;
            while let Some(parent) = parents.get(at) {
                depth += 1;
                at = parent;
                if depth > rows.len() {
                    break;
                }
            }
            (r.chain_id.clone(), depth)
        })
        .collect()
}

/// True when `path` was modified less than `grace` ago (or in the future).
/// A path that cannot be read is treated as recent: keeping is the safe side.
fn is_recent(path: &Path, now: SystemTime, grace: Duration) -> bool {
    if grace.is_zero() {
        return false;
    }
    let modified = match std::fs::metadata(path).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    match now.duration_since(modified) {
        Ok(age) => age < grace,
        Err(_) => true,
    }
}

pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
