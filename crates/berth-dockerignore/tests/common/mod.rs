//! Shared helpers for the data-driven tests: locating the conformance corpus
//! and reading its tab-separated tables.
//!
//! The corpus is read in place from `shared/conformance` (or from
//! `$BERTH_CONFORMANCE_DIR`); nothing from it is copied into this crate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;

#[path = "../../../../testsupport/conformance.rs"]
mod support;
use support::conformance_dir;

/// Path of a file under `dockerignore/`.
pub fn data_file(name: &str) -> PathBuf {
    conformance_dir().join("dockerignore").join(name)
}

/// One table row, by column name.
pub type Row = HashMap<String, String>;

/// Reads a tab-separated table with a header row. Values are raw (no
/// quoting); every row must have as many fields as the header.
pub fn read_tsv(name: &str) -> Vec<Row> {
    let path = data_file(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.split('\n').filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().expect("header row").split('\t').collect();
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                fields.len(),
                header.len(),
                "{name} row {}: wrong number of fields",
                i + 1
            );
            header
                .iter()
                .zip(fields)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Decodes a JSON array of strings (the `patterns` column).
pub fn json_strings(value: &str) -> Vec<String> {
    serde_json::from_str(value).unwrap_or_else(|e| panic!("bad JSON {value:?}: {e}"))
}

/// Field accessor that names the missing column.
pub fn col<'a>(row: &'a Row, name: &str) -> &'a str {
    row.get(name)
        .unwrap_or_else(|| panic!("missing column {name}"))
}
