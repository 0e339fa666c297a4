//! Build cache records: what a cached `berth build` step produced (its
//! layer and snapshot), keyed by the digest of the step's inputs, with the
//! inputs kept as JSON so that a miss can be explained; and the checksums of
//! build context files keyed by their stat, so that a no-op rebuild reads
//! no file twice.
//!
//! Cache records are GC roots (their blob and their chain's snapshots), so
//! removing images keeps the build cache, as Docker does; only
//! `berth builder prune` drops records. A record whose blob or snapshot is
//! gone anyway is a miss (the builder checks before it reuses one).

use berth_oci::Digest;
use rusqlite::{params, OptionalExtension};

use crate::{Error, Metadata, Result};

/// One cached step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    pub key: Digest,
    /// The key's inputs, as the builder wrote them.
    pub inputs: String,
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    /// RFC 3339 time the step first ran (its history entry's `created`).
    pub created: String,
}

/// What `builder prune` and `system df` need of a cache record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub key: Digest,
    pub chain_id: Digest,
    pub blob: Digest,
    /// Blob size.
    pub size: u64,
    /// Unix seconds the record was last written or hit.
    pub last_used: i64,
}

/// Most context checksums kept; older ones are dropped beyond it.
pub const MAX_CONTEXT_SUMS: i64 = 200_000;

fn digest(text: String) -> rusqlite::Result<Digest> {
    text.parse().map_err(|e: berth_oci::DigestError| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Metadata {
    /// The record for `key`.
    pub fn cache_record(&self, key: &Digest) -> Result<Option<CacheRecord>> {
        let row = self
            .conn()
            .query_row(
                "SELECT inputs, chain_id, diff_id, blob, media_type, size, created
                 FROM build_cache WHERE key = ?1",
                params![key.to_string()],
                |r| {
                    Ok(CacheRecord {
                        key: key.clone(),
                        inputs: r.get(0)?,
                        chain_id: digest(r.get(1)?)?,
                        diff_id: digest(r.get(2)?)?,
                        blob: digest(r.get(3)?)?,
                        media_type: r.get(4)?,
                        size: r.get::<_, i64>(5)?.max(0) as u64,
                        created: r.get(6)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    /// Records (or replaces) a cached step.
    pub fn put_cache_record(&mut self, record: &CacheRecord, now: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO build_cache
                 (key, inputs, chain_id, diff_id, blob, media_type, size, created, last_used)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    record.key.to_string(),
                    record.inputs,
                    record.chain_id.to_string(),
                    record.diff_id.to_string(),
                    record.blob.to_string(),
                    record.media_type,
                    record.size as i64,
                    record.created,
                    now
                ],
            )?;
            Ok(())
        })
    }

    /// Marks records used at `now` (one transaction).
    pub fn touch_cache_records(&mut self, keys: &[Digest], now: i64) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut stmt =
                tx.prepare_cached("UPDATE build_cache SET last_used = ?2 WHERE key = ?1")?;
            for key in keys {
                stmt.execute(params![key.to_string(), now])?;
            }
            Ok(())
        })
    }

    /// The inputs of the most recently used record whose inputs start with
    /// `prefix` (the builder's "same step, same parent" part), to explain a
    /// miss.
    pub fn cache_inputs_like(&self, prefix: &str) -> Result<Option<String>> {
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        Ok(self
            .conn()
            .query_row(
                "SELECT inputs FROM build_cache WHERE inputs LIKE ?1 ESCAPE '\\'
                 ORDER BY last_used DESC LIMIT 1",
                params![pattern],
                |r| r.get::<_, String>(0),
            )
            .optional()?)
    }

    /// Every cache record, least recently used first.
    pub fn cache_entries(&self) -> Result<Vec<CacheEntry>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT key, chain_id, blob, size, last_used FROM build_cache
             ORDER BY last_used, key",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CacheEntry {
                    key: digest(r.get(0)?)?,
                    chain_id: digest(r.get(1)?)?,
                    blob: digest(r.get(2)?)?,
                    size: r.get::<_, i64>(3)?.max(0) as u64,
                    last_used: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Removes the records of `keys` (one transaction); returns how many
    /// were there.
    pub fn delete_cache_records(&mut self, keys: &[Digest]) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let mut stmt = tx.prepare_cached("DELETE FROM build_cache WHERE key = ?1")?;
            let mut n = 0;
            for key in keys {
                n += stmt.execute(params![key.to_string()])?;
            }
            Ok(n)
        })
    }

    /// Removes every build cache record; returns how many.
    pub fn clear_build_cache(&mut self) -> Result<usize> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM build_cache", [])?;
            tx.execute("DELETE FROM build_context_sums", [])?;
            Ok(n)
        })
    }

    /// Checksums of context files recorded under `paths` with their stat.
    pub fn context_sums(&self, paths: &[&str]) -> Result<Vec<Option<(String, String)>>> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT stat, sum FROM build_context_sums WHERE path = ?1")?;
        paths
            .iter()
            .map(|p| {
                stmt.query_row(params![p], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(Error::from)
            })
            .collect()
    }

    /// Records `(path, stat, sum)` triples of context files.
    pub fn put_context_sums(&mut self, rows: &[(String, String, String)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO build_context_sums (path, stat, sum) VALUES (?1, ?2, ?3)",
            )?;
            for (path, stat, sum) in rows {
                stmt.execute(params![path, stat, sum])?;
            }
            drop(stmt);
            let count: i64 =
                tx.query_row("SELECT COUNT(*) FROM build_context_sums", [], |r| r.get(0))?;
            if count > MAX_CONTEXT_SUMS {
                tx.execute(
                    "DELETE FROM build_context_sums WHERE rowid IN
                     (SELECT rowid FROM build_context_sums ORDER BY rowid LIMIT ?1)",
                    params![count - MAX_CONTEXT_SUMS],
                )?;
            }
            Ok(())
        })
    }
}
