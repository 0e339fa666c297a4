//! Container records: the ID, the unique name and the image each container
//! was created from. A record keeps its image from being deleted; the
//! container's configuration and run state live in `containers/<id>/`.

use berth_oci::Digest;
use rusqlite::{params, OptionalExtension};

use crate::meta::Metadata;
use crate::{Error, Result};

/// A row of the containers table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    /// 64 lowercase hex digits.
    pub id: String,
    /// The name without Docker's leading `/`.
    pub name: String,
    pub image_id: Digest,
    /// Unix nanoseconds.
    pub created_at: i64,
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn into_record(
    (id, name, image, created_at): (String, String, String, i64),
) -> Result<ContainerRecord> {
    let image_id = image
        .parse()
        .map_err(|e| Error::Schema(format!("corrupt image ID of container {id}: {e}")))?;
    Ok(ContainerRecord {
        id,
        name,
        image_id,
        created_at,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

impl Metadata {
    /// Records a new container; a name or ID already taken is a conflict.
    pub fn insert_container(&mut self, record: &ContainerRecord) -> Result<()> {
        let res = self.write(|tx| {
            tx.execute(
                "INSERT INTO containers (id, name, image_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    record.id,
                    record.name,
                    record.image_id.to_string(),
                    record.created_at
                ],
            )?;
            Ok(())
        });
        match res {
            Err(Error::Db(e)) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "Conflict. The container name \"/{}\" is already in use. You have to remove (or rename) that container to be able to reuse that name.",
                record.name
            ))),
            other => other,
        }
    }

    /// Every container, newest first.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, name, image_id, created_at FROM containers ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([], row_to_record)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(into_record(row?)?);
        }
        Ok(out)
    }

    /// The container with exactly this ID.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        let row = self
            .conn()
            .query_row(
                "SELECT id, name, image_id, created_at FROM containers WHERE id = ?1",
                params![id],
                row_to_record,
            )
            .optional()?;
        row.map(into_record).transpose()
    }

    /// Renames a container; a name in use is a conflict.
    pub fn rename_container(&mut self, id: &str, name: &str) -> Result<()> {
        let res = self.write(|tx| {
            let n = tx.execute(
                "UPDATE containers SET name = ?2 WHERE id = ?1",
                params![id, name],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("No such container: {id}")));
            }
            Ok(())
        });
        match res {
            Err(Error::Db(e)) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "Error when allocating new name: Conflict. The container name \"/{name}\" is already in use. You have to remove (or rename) that container to be able to reuse that name."
            ))),
            other => other,
        }
    }

    /// Removes a container's record (no error when it is already gone).
    pub fn remove_container(&mut self, id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM containers WHERE id = ?1", params![id])?;
            Ok(())
        })
    }

    /// The IDs of the images some container was created from.
    pub fn images_in_use(&self) -> Result<Vec<Digest>> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT DISTINCT image_id FROM containers")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            let text = row?;
            out.push(
                text.parse()
                    .map_err(|e| Error::Schema(format!("corrupt image ID {text}: {e}")))?,
            );
        }
        Ok(out)
    }
}
