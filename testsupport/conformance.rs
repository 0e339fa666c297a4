//! Shared by the data-driven tests of several crates (included with
//! `#[path]`): finds `shared/conformance` and reports failing rows together.
#![allow(dead_code)]

use std::path::PathBuf;

/// The conformance folder: `$BERTH_CONFORMANCE_DIR`, else `shared/conformance`
/// beside the repository. Missing data fails the test; it is never skipped.
pub fn conformance_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_CONFORMANCE_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "BERTH_CONFORMANCE_DIR={} is not a directory",
            dir.display()
        );
        return dir;
    }
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance"
    ));
    assert!(
        dir.is_dir(),
        "conformance data not found at {} (set BERTH_CONFORMANCE_DIR)",
        dir.display()
    );
    dir
}

/// The bytes of `rel` under the conformance folder.
pub fn read_bytes(rel: &str) -> Vec<u8> {
    let path = conformance_dir().join(rel);
    match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// The text of `rel` under the conformance folder.
pub fn read_text(rel: &str) -> String {
    match String::from_utf8(read_bytes(rel)) {
        Ok(s) => s,
        Err(e) => panic!("{rel} is not UTF-8: {e}"),
    }
}

/// Fails with every failing row listed.
pub fn report(table: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{table}: {} failing row(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
