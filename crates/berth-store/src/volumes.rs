//! Volumes: a row in the `volumes` table and a directory
//! `volumes/<name>/_data` (DESIGN.md §3). A volume becomes visible whole:
//! its directory is made under `tmp/`, renamed into `volumes/`, and only
//! then recorded; removal forgets the row first, then moves the directory
//! aside and deletes it. GC never touches `volumes/`.
//!
//! Names are checked for safety here (one path component); Docker's naming
//! policy lives in the engine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use crate::meta::Metadata;
use crate::{Error, Result, Store};

/// A volume as the store records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    /// `local`.
    pub driver: String,
    /// Unix seconds.
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
    /// Driver options (`-o`).
    pub options: BTreeMap<String, String>,
    /// Made for a container's anonymous mount (pruned without `--all`).
    pub anonymous: bool,
}

fn json_map(text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text)
        .map_err(|e| Error::Schema(format!("corrupt JSON map in volumes table: {e}")))
}

fn map_json(map: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(map).map_err(|e| Error::Invalid(format!("volume metadata: {e}")))
}

const VOLUME_COLUMNS: &str = "name, driver, created_at, labels, options, anonymous";

fn volume_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, i64, String, String, i64)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn volume_record(row: (String, String, i64, String, String, i64)) -> Result<VolumeRecord> {
    let (name, driver, created_at, labels, options, anonymous) = row;
    Ok(VolumeRecord {
        name,
        driver,
        created_at,
        labels: json_map(&labels)?,
        options: json_map(&options)?,
        anonymous: anonymous != 0,
    })
}

impl Metadata {
    /// Records a volume; `Conflict` when the name is taken.
    pub fn put_volume(&mut self, volume: &VolumeRecord) -> Result<()> {
        let labels = map_json(&volume.labels)?;
        let options = map_json(&volume.options)?;
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO volumes (name, driver, created_at, labels, options, anonymous)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    volume.name,
                    volume.driver,
                    volume.created_at,
                    labels,
                    options,
                    i64::from(volume.anonymous)
                ],
            )?;
            if inserted == 0 {
                return Err(Error::Conflict(format!(
                    "volume {} already exists",
                    volume.name
                )));
            }
            Ok(())
        })
    }

    /// The volume with this name.
    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {VOLUME_COLUMNS} FROM volumes WHERE name = ?1"),
                params![name],
                volume_row,
            )
            .optional()?;
        row.map(volume_record).transpose()
    }

    /// Every volume, by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {VOLUME_COLUMNS} FROM volumes ORDER BY name"
        ))?;
        let rows = stmt
            .query_map([], volume_row)?
            .map(|row| volume_record(row?))
            .collect();
        rows
    }

    /// Forgets a volume; false if it was not recorded.
    pub fn delete_volume(&mut self, name: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM volumes WHERE name = ?1", params![name])? > 0))
    }
}

/// A volume name is one path component, never `.`/`..` or hidden.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\0') {
        return Err(Error::Invalid(format!("invalid volume name {name:?}")));
    }
    Ok(())
}

impl Store {
    /// `volumes/`.
    pub fn volumes_dir(&self) -> PathBuf {
        self.root().join("volumes")
    }

    /// `volumes/<name>/_data`, where the volume's content lives.
    pub fn volume_data(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.volumes_dir().join(name).join("_data"))
    }

    /// Creates a volume: its directory appears whole (made in `tmp/`, then
    /// renamed) and is recorded after. Returns the data directory.
    pub fn create_volume(&mut self, volume: &VolumeRecord) -> Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        check_name(&volume.name)?;
        if self.meta().volume(&volume.name)?.is_some() {
            return Err(Error::Conflict(format!(
                "volume {} already exists",
                volume.name
            )));
        }
        let scratch = self.scratch_dir("volume")?;
        let staged = scratch.path().join("volume");
        for (dir, mode) in [(&staged, 0o701), (&staged.join("_data"), 0o755)] {
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(dir)
                .map_err(|e| Error::io(dir, e))?;
        }
        let final_dir = self.volumes_dir().join(&volume.name);
        std::fs::rename(&staged, &final_dir).map_err(|e| {
            if matches!(
                e.raw_os_error(),
                Some(libc_errno) if libc_errno == rustix::io::Errno::NOTEMPTY.raw_os_error()
                    || libc_errno == rustix::io::Errno::EXIST.raw_os_error()
            ) {
                Error::Conflict(format!(
                    "volume {}: {} exists without a record (see berth system check)",
                    volume.name,
                    final_dir.display()
                ))
            } else {
                Error::io(&final_dir, e)
            }
        })?;
        berth_fs::sync_dir(self.volumes_dir()).map_err(Error::Fs)?;
        if let Err(e) = self.meta_mut().put_volume(volume) {
            let _ = std::fs::remove_dir_all(&final_dir);
            return Err(e);
        }
        Ok(final_dir.join("_data"))
    }

    /// Removes a volume's record, then its directory. False if neither
    /// existed.
    pub fn remove_volume(&mut self, name: &str) -> Result<bool> {
        check_name(name)?;
        let recorded = self.meta_mut().delete_volume(name)?;
        let dir = self.volumes_dir().join(name);
        if !dir.exists() {
            return Ok(recorded);
        }
        // Out of `volumes/` at once; the scratch directory goes on drop
        // (or at the next start-up, if this process dies).
        let scratch = self.scratch_dir("volume-rm")?;
        let aside = scratch.path().join("volume");
        std::fs::rename(&dir, &aside).map_err(|e| Error::io(&dir, e))?;
        std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
        Ok(true)
    }

    /// Names of the directories under `volumes/` (for `system check`).
    pub fn volume_dirs(&self) -> Result<Vec<String>> {
        let dir = self.volumes_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> VolumeRecord {
        VolumeRecord {
            name: name.into(),
            driver: "local".into(),
            created_at: 1,
            labels: BTreeMap::from([("a".into(), "b".into())]),
            options: BTreeMap::new(),
            anonymous: false,
        }
    }

    #[test]
    fn create_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let data = store.create_volume(&record("data")).unwrap();
        assert!(data.is_dir());
        assert_eq!(data, store.volume_data("data").unwrap());
        assert_eq!(store.meta().volume("data").unwrap(), Some(record("data")));
        let again = store.create_volume(&record("data")).unwrap_err();
        assert_eq!(again.kind(), crate::ErrorKind::Conflict);
        std::fs::write(data.join("f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", data.join("escape")).unwrap();
        assert_eq!(store.meta().volumes().unwrap().len(), 1);
        assert!(store.remove_volume("data").unwrap());
        assert!(!data.exists());
        assert!(std::path::Path::new("/etc/passwd").exists());
        assert!(!store.remove_volume("data").unwrap());
        assert!(store.meta().volumes().unwrap().is_empty());
        assert!(store.volume_data("../x").is_err());
        assert!(store.create_volume(&record(".hidden")).is_err());
        // Nothing left in tmp/.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn check_matches_rows_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.create_volume(&record("ok")).unwrap();
        store.create_volume(&record("gone")).unwrap();
        std::fs::remove_dir_all(dir.path().join("volumes/gone")).unwrap();
        std::fs::create_dir_all(dir.path().join("volumes/stray/_data")).unwrap();
        let report = store.check().unwrap();
        let kinds: Vec<_> = report.faults.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                crate::FaultKind::MissingVolumeDir,
                crate::FaultKind::StrayVolumeDir
            ],
            "{:?}",
            report.faults
        );
        assert!(report.faults[1].subject.ends_with("volumes/stray"));
    }

    #[test]
    fn gc_keeps_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let data = store.create_volume(&record("kept")).unwrap();
        std::fs::write(data.join("f"), "x").unwrap();
        store
            .gc(crate::GcOptions {
                grace: std::time::Duration::ZERO,
            })
            .unwrap();
        assert!(data.join("f").is_file());
        assert!(store.meta().volume("kept").unwrap().is_some());
    }
}
