//! The metadata DB (`berth.db`): SQLite in WAL mode with a busy timeout, so
//! the CLI and the daemon can share a store. The schema is versioned with
//! `PRAGMA user_version`; [`MIGRATIONS`] bring any older DB up to date, each
//! in its own transaction, and a DB from a newer berth is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_oci::Digest;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::{Error, Result};

/// The schema this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `MIGRATIONS[n]` takes a DB from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: images, tags, layers, snapshots, leases.
    "CREATE TABLE images (
        id          TEXT PRIMARY KEY,          -- config digest (the image ID)
        manifest    TEXT,                      -- manifest digest, when known
        created_at  INTEGER NOT NULL,          -- unix seconds, when stored
        size        INTEGER NOT NULL           -- uncompressed layer bytes
     );
     CREATE TABLE image_layers (
        image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        diff_id     TEXT NOT NULL,
        blob        TEXT NOT NULL,
        PRIMARY KEY (image_id, idx)
     );
     CREATE INDEX image_layers_blob ON image_layers(blob);
     CREATE TABLE tags (
        name        TEXT PRIMARY KEY,          -- normalised reference
        image_id    TEXT NOT NULL REFERENCES images(id)
     );
     CREATE INDEX tags_image ON tags(image_id);
     CREATE TABLE layers (
        diff_id     TEXT NOT NULL,             -- digest of the uncompressed tar
        blob        TEXT NOT NULL,             -- digest of the stored blob
        media_type  TEXT NOT NULL,
        size        INTEGER NOT NULL,          -- blob size
        PRIMARY KEY (diff_id, blob)
     );
     CREATE TABLE snapshots (
        chain_id    TEXT PRIMARY KEY,
        id          INTEGER NOT NULL UNIQUE,   -- snapshots/<id>/fs
        parent      TEXT REFERENCES snapshots(chain_id),
        diff_id     TEXT NOT NULL,
        committed   INTEGER NOT NULL DEFAULT 0,
        size        INTEGER
     );
     CREATE TABLE leases (
        id          TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER
     );
     CREATE TABLE lease_resources (
        lease_id    TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,             -- blob | snapshot
        key         TEXT NOT NULL,
        PRIMARY KEY (lease_id, kind, key)
     );",
    // 2: containers (their config and state live in containers/<id>/).
    "CREATE TABLE containers (
        id          TEXT PRIMARY KEY,          -- 64 hex digits
        name        TEXT NOT NULL UNIQUE,      -- without the leading '/'
        image_id    TEXT NOT NULL REFERENCES images(id),
        created_at  INTEGER NOT NULL           -- unix nanoseconds
     );
     CREATE INDEX containers_image ON containers(image_id);",
    // 3: networks and their endpoints (container attachments, IP allocations).
    "CREATE TABLE networks (
        id          TEXT PRIMARY KEY,          -- 64 hex
        name        TEXT NOT NULL UNIQUE,
        driver      TEXT NOT NULL,             -- bridge | host | null
        subnet      TEXT,                      -- IPv4 CIDR, bridge driver only
        gateway     TEXT,
        bridge      TEXT,                      -- the bridge device
        internal    INTEGER NOT NULL DEFAULT 0,
        labels      TEXT NOT NULL DEFAULT '{}',-- JSON object
        options     TEXT NOT NULL DEFAULT '{}',-- JSON object
        created_at  INTEGER NOT NULL           -- unix nanoseconds
     );
     CREATE TABLE network_endpoints (
        network_id  TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL,
        name        TEXT NOT NULL,             -- the container's name on the network
        aliases     TEXT NOT NULL DEFAULT '[]',-- JSON array
        ip          TEXT NOT NULL,
        mac         TEXT NOT NULL,
        host_ifname TEXT NOT NULL,             -- the host end of the veth pair
        hosts_path  TEXT,                      -- the container's /etc/hosts, kept current
        PRIMARY KEY (network_id, container_id),
        UNIQUE (network_id, ip)
     );
     CREATE INDEX network_endpoints_container ON network_endpoints(container_id);",
    // 4: named and anonymous volumes (`volumes/<name>/_data`).
    "CREATE TABLE volumes (
        name        TEXT PRIMARY KEY,
        driver      TEXT NOT NULL,             -- local
        created_at  INTEGER NOT NULL,          -- unix seconds
        labels      TEXT NOT NULL DEFAULT '{}', -- JSON object
        options     TEXT NOT NULL DEFAULT '{}', -- JSON object (driver options)
        anonymous   INTEGER NOT NULL DEFAULT 0
     );",
    // 5: build cache: one record per cached filesystem step of `berth build`.
    "CREATE TABLE build_cache (
        key         TEXT PRIMARY KEY,          -- digest of the step's inputs
        inputs      TEXT NOT NULL,             -- the inputs as JSON (explains a miss)
        chain_id    TEXT NOT NULL,             -- the snapshot the step produced
        diff_id     TEXT NOT NULL,
        blob        TEXT NOT NULL,             -- its layer blob
        media_type  TEXT NOT NULL,
        size        INTEGER NOT NULL,          -- blob size
        created     TEXT NOT NULL,             -- the history time of the step
        last_used   INTEGER NOT NULL
     );
     CREATE INDEX build_cache_blob ON build_cache(blob);
     CREATE TABLE build_context_sums (
        path        TEXT PRIMARY KEY,          -- absolute path of a context file
        stat        TEXT NOT NULL,             -- dev:ino:size:mtime:ctime:mode:uid:gid
        sum         TEXT NOT NULL              -- its content digest
     );",
];

/// An image as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest: Option<Digest>,
    pub created_at: i64,
    pub size: u64,
    /// Layers bottom-up.
    pub layers: Vec<ImageLayer>,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    pub diff_id: Digest,
    pub blob: Digest,
}

/// A stored blob of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub diff_id: Digest,
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A row of the snapshots table, committed or not (for check and GC; the
/// snapshot API itself only hands out committed [`crate::Snapshot`]s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub chain_id: Digest,
    /// `snapshots/<id>/`.
    pub id: i64,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    pub committed: bool,
    /// Unpacked bytes, once committed.
    pub size: Option<u64>,
}

/// The metadata DB.
#[derive(Debug)]
pub struct Metadata {
    conn: Connection,
    path: PathBuf,
}

fn digest_column(text: String) -> Result<Digest> {
    text.parse()
        .map_err(|e| Error::Schema(format!("corrupt digest in metadata: {e}")))
}

impl Metadata {
    /// Opens the DB, applying any migrations it lacks.
    pub fn open(path: &Path) -> Result<Metadata> {
        // Switching a new DB to WAL, and migrating it, can meet another
        // process doing the same; SQLite then answers "busy" without waiting
        // in some cases, so those steps are retried for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match Self::try_open(path) {
                Err(Error::Db(rusqlite::Error::SqliteFailure(e, _)))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn try_open(path: &Path) -> Result<Metadata> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut meta = Metadata {
            conn,
            path: path.to_path_buf(),
        };
        meta.migrate()?;
        Ok(meta)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for reads by the store's other modules.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The DB's schema version.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<()> {
        let current = self.schema_version()?;
        if current > SCHEMA_VERSION {
            return Err(Error::Schema(format!(
                "{}: schema version {current} is newer than this berth understands ({SCHEMA_VERSION}); upgrade berth",
                self.path.display()
            )));
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
            // Another process may have migrated while we waited for the lock.
            let now: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if now as usize > version {
                continue;
            }
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
            tracing::debug!(version = version + 1, "metadata schema migrated");
        }
        Ok(())
    }

    /// Runs `f` in one immediate (write-locking) transaction.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Records an image and its layers (replacing an earlier record).
    pub fn put_image(&mut self, image: &ImageRecord, blobs: &[LayerRecord]) -> Result<()> {
        self.write(|tx| {
            for b in blobs {
                tx.execute(
                    "INSERT OR REPLACE INTO layers (diff_id, blob, media_type, size) VALUES (?1, ?2, ?3, ?4)",
                    params![b.diff_id.to_string(), b.blob.to_string(), b.media_type, b.size as i64],
                )?;
            }
            let id = image.id.to_string();
            tx.execute("DELETE FROM image_layers WHERE image_id = ?1", params![id])?;
            tx.execute(
                "INSERT INTO images (id, manifest, created_at, size) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET manifest = COALESCE(excluded.manifest, manifest), size = excluded.size",
                params![id, image.manifest.as_ref().map(Digest::to_string), image.created_at, image.size as i64],
            )?;
            for (idx, layer) in image.layers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, idx, diff_id, blob) VALUES (?1, ?2, ?3, ?4)",
                    params![id, idx as i64, layer.diff_id.to_string(), layer.blob.to_string()],
                )?;
            }
            Ok(())
        })
    }

    /// The image with this ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        let row = self
            .conn
            .query_row(
                "SELECT manifest, created_at, size FROM images WHERE id = ?1",
                params![id.to_string()],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        let Some((manifest, created_at, size)) = row else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT diff_id, blob FROM image_layers WHERE image_id = ?1 ORDER BY idx",
        )?;
        let layers = stmt
            .query_map(params![id.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .map(|row| {
                let (diff_id, blob) = row?;
                Ok(ImageLayer {
                    diff_id: digest_column(diff_id)?,
                    blob: digest_column(blob)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(ImageRecord {
            id: id.clone(),
            manifest: manifest.map(digest_column).transpose()?,
            created_at,
            size: size.max(0) as u64,
            layers,
        }))
    }

    /// Every image ID.
    pub fn image_ids(&self) -> Result<Vec<Digest>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM images ORDER BY created_at DESC, id")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|row| digest_column(row?))
            .collect();
        ids
    }

    /// Image IDs whose hex starts with `prefix`.
    pub fn images_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>> {
        if !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2")?;
        let ids = stmt
            .query_map(params![prefix.len() as i64, prefix], |r| {
                r.get::<_, String>(0)
            })?
            .map(|row| digest_column(row?))
            .collect();
        ids
    }

    /// Removes an image record (its tags must be gone).
    pub fn delete_image(&mut self, id: &Digest) -> Result<bool> {
        self.write(|tx| {
            let tagged: i64 = tx.query_row(
                "SELECT count(*) FROM tags WHERE image_id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )?;
            if tagged > 0 {
                return Err(Error::Conflict(format!("image {id} is still tagged")));
            }
            Ok(tx.execute("DELETE FROM images WHERE id = ?1", params![id.to_string()])? > 0)
        })
    }

    /// Points tag `name` at an image; returns the image it pointed at before.
    pub fn set_tag(&mut self, name: &str, id: &Digest) -> Result<Option<Digest>> {
        self.write(|tx| {
            let previous: Option<String> = tx
                .query_row(
                    "SELECT image_id FROM tags WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![name, id.to_string()],
            )?;
            previous.map(digest_column).transpose()
        })
    }

    /// The image a tag points at.
    pub fn tag(&self, name: &str) -> Result<Option<Digest>> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT image_id FROM tags WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        id.map(digest_column).transpose()
    }

    /// Removes a tag; false if it did not exist.
    pub fn remove_tag(&mut self, name: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM tags WHERE name = ?1", params![name])? > 0))
    }

    /// Every tag and the image it names, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, image_id FROM tags ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .map(|row| {
                let (name, id) = row?;
                Ok((name, digest_column(id)?))
            })
            .collect();
        rows
    }

    /// The stored blobs of a layer.
    pub fn layer_blobs(&self, diff_id: &Digest) -> Result<Vec<LayerRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blob, media_type, size FROM layers WHERE diff_id = ?1")?;
        let rows = stmt
            .query_map(params![diff_id.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .map(|row| {
                let (blob, media_type, size) = row?;
                Ok(LayerRecord {
                    diff_id: diff_id.clone(),
                    blob: digest_column(blob)?,
                    media_type,
                    size: size.max(0) as u64,
                })
            })
            .collect();
        rows
    }

    /// Creates a lease that protects resources from GC until it is deleted
    /// (or expires).
    pub fn create_lease(
        &mut self,
        id: &str,
        created_at: i64,
        expires_at: Option<i64>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO leases (id, created_at, expires_at) VALUES (?1, ?2, ?3)",
                params![id, created_at, expires_at],
            )?;
            Ok(())
        })
    }

    /// Adds a resource (`blob` or `snapshot`, and its key) to a lease.
    pub fn lease_resource(&mut self, lease: &str, kind: &str, key: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO lease_resources (lease_id, kind, key) VALUES (?1, ?2, ?3)",
                params![lease, kind, key],
            )?;
            Ok(())
        })
    }

    pub fn delete_lease(&mut self, id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM leases WHERE id = ?1", params![id])?;
            Ok(())
        })
    }

    /// Keys of `kind` held by leases that have not expired at `now`.
    pub fn leased(&self, kind: &str, now: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.key FROM lease_resources r JOIN leases l ON l.id = r.lease_id
             WHERE r.kind = ?1 AND (l.expires_at IS NULL OR l.expires_at > ?2)",
        )?;
        let rows = stmt
            .query_map(params![kind, now], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Image IDs no tag points at (Docker's dangling images).
    pub fn untagged_image_ids(&self) -> Result<Vec<Digest>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM tags)
             ORDER BY created_at DESC, id",
        )?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|row| digest_column(row?))
            .collect();
        ids
    }

    /// Every row of the layers table.
    pub fn layer_records(&self) -> Result<Vec<LayerRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT diff_id, blob, media_type, size FROM layers ORDER BY blob")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .map(|row| {
                let (diff_id, blob, media_type, size) = row?;
                Ok(LayerRecord {
                    diff_id: digest_column(diff_id)?,
                    blob: digest_column(blob)?,
                    media_type,
                    size: size.max(0) as u64,
                })
            })
            .collect();
        rows
    }

    /// Forgets the layers stored as `blob` (once the blob is gone); returns
    /// how many rows went.
    pub fn delete_layer_records(&mut self, blob: &Digest) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM layers WHERE blob = ?1",
                params![blob.to_string()],
            )?)
        })
    }

    /// Every snapshot row, committed or not, by id.
    pub fn snapshot_rows(&self) -> Result<Vec<SnapshotRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT chain_id, id, parent, diff_id, committed, size FROM snapshots ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })?
            .map(|row| {
                let (chain_id, id, parent, diff_id, committed, size) = row?;
                Ok(SnapshotRow {
                    chain_id: digest_column(chain_id)?,
                    id,
                    parent: parent.map(digest_column).transpose()?,
                    diff_id: digest_column(diff_id)?,
                    committed: committed != 0,
                    size: size.map(|s| s.max(0) as u64),
                })
            })
            .collect();
        rows
    }

    /// Deletes the leases that expired at or before `now` (their resources
    /// go with them); returns how many.
    pub fn expire_leases(&mut self, now: i64) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM leases WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                params![now],
            )?)
        })
    }
}
