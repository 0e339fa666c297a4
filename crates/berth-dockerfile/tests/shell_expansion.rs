//! Data-driven tests of shell-word expansion against the BuildKit tables in
//! `shared/conformance/shell-expansion` (see §5 of its README).
//!
//! Every table test runs all its rows, collects the failures and reports
//! them together, and checks the number of rows against the README.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use berth_dockerfile::shell::{EnvLookup, Lexer};
use serde_json::Value;

#[path = "../../../testsupport/conformance.rs"]
mod support;
use support::report;

fn read(name: &str) -> String {
    support::read_text(&format!("shell-expansion/{name}"))
}

/// Rows that cannot hold on this platform, with the reason.
const ENV_VAR_TEST_SKIPS: &[(&str, &str)] = &[
    ("he$pwd.", "Windows env names are case-insensitive"),
    ("안녕$pwd.", "Windows env names are case-insensitive"),
];

#[test]
fn env_var_test() {
    let text = read("envVarTest");
    let env: Vec<(String, String)> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lexer = Lexer::new('\\');
    let mut rows = 0;
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [platform, input, expected] = fields.as_slice() else {
            failures.push(format!("line {n}: not 3 fields: {line:?}"));
            continue;
        };
        rows += 1;
        match *platform {
            "A" | "U" => {}
            "W" => {
                match ENV_VAR_TEST_SKIPS.iter().find(|(i, _)| i == input) {
                    Some((_, reason)) => skipped.push(format!("line {n} {input:?}: {reason}")),
                    None => {
                        failures.push(format!("line {n}: W row {input:?} not in the skip list"))
                    }
                }
                continue;
            }
            other => {
                failures.push(format!("line {n}: bad platform {other:?}"));
                continue;
            }
        }
        let got = lexer.process_word(input, &env);
        match (got, *expected) {
            (Err(_), "error") => {}
            (Ok(word), "error") => {
                failures.push(format!("line {n}: {input:?} should fail, got {word:?}"))
            }
            (Ok(word), want) if word == want => {}
            (Ok(word), want) => {
                failures.push(format!("line {n}: {input:?} gave {word:?}, want {want:?}"))
            }
            (Err(e), want) => {
                failures.push(format!("line {n}: {input:?} failed ({e}), want {want:?}"))
            }
        }
    }
    report("envVarTest", &failures);
    assert_eq!(skipped.len(), 2, "skipped rows: {skipped:#?}");
    assert_eq!(rows, 230, "envVarTest row count (incl. skipped)");
}

#[test]
fn words_test() {
    let text = read("wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut env_lines = 0;
    let mut rows = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            // Leading spaces go, trailing spaces are part of the value.
            let entry = rest.trim_start_matches(' ');
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            env.push((key.to_string(), value.to_string()));
            env_lines += 1;
            continue;
        }
        let sides: Vec<&str> = line.split('|').collect();
        let [left, right] = sides.as_slice() else {
            failures.push(format!("line {n}: not exactly one '|': {line:?}"));
            continue;
        };
        rows += 1;
        let input = left.trim();
        let expected: Vec<&str> = right.trim_start_matches(' ').split(',').collect();
        let got = lexer.process_words(input, &env);
        match got {
            Err(_) if expected == ["error"] => {}
            Ok(words) if words == expected => {}
            Ok(words) => failures.push(format!(
                "line {n}: {input:?} gave {words:?}, want {expected:?}"
            )),
            Err(e) => failures.push(format!(
                "line {n}: {input:?} failed ({e}), want {expected:?}"
            )),
        }
    }
    report("wordsTest", &failures);
    assert_eq!(env_lines, 4, "wordsTest ENV lines");
    assert_eq!(rows, 24, "wordsTest row count");
}

const JSONL_KEYS: &[&str] = &[
    "input",
    "env",
    "expected",
    "error",
    "error_contains",
    "matched",
    "unmatched",
    "source",
    "not_guaranteed",
];

fn string_set(v: &Value) -> Option<BTreeSet<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn check_jsonl_row(lexer: &Lexer, row: &Value) -> Result<(), String> {
    let obj = row.as_object().ok_or("not an object")?;
    if let Some(key) = obj.keys().find(|k| !JSONL_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key {key:?} (platform-specific rows need handling)"
        ));
    }
    let input = row["input"].as_str().ok_or("no input")?;
    let env: BTreeMap<String, String> = row["env"]
        .as_object()
        .ok_or("no env")?
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                v.as_str().ok_or("env value not a string")?.to_string(),
            ))
        })
        .collect::<Result<_, String>>()?;
    let env_ref: &dyn EnvLookup = &env;
    let got = lexer.process_word_with_matches(input, env_ref);
    if row["error"].as_bool() == Some(true) {
        let err = match got {
            Ok(e) => return Err(format!("{input:?} should fail, got {:?}", e.word)),
            Err(err) => err,
        };
        if let Some(want) = row.get("error_contains").and_then(Value::as_str) {
            let msg = err.to_string();
            if !msg.contains(want) {
                return Err(format!("{input:?}: error {msg:?} lacks {want:?}"));
            }
        }
        return Ok(());
    }
    let expected = row["expected"].as_str().ok_or("no expected")?;
    let got = got.map_err(|e| format!("{input:?} failed ({e}), want {expected:?}"))?;
    if got.word != expected {
        return Err(format!("{input:?} gave {:?}, want {expected:?}", got.word));
    }
    for (key, have) in [("matched", &got.matched), ("unmatched", &got.unmatched)] {
        if let Some(want) = row.get(key) {
            let want = string_set(want).ok_or(format!("{key} is not a string list"))?;
            if &want != have {
                return Err(format!("{input:?}: {key} {have:?}, want {want:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn process_word_jsonl() {
    let text = read("process-word.jsonl");
    let lexer = Lexer::new('\\');
    let mut rows = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        let outcome = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("bad JSON: {e}"))
            .and_then(|row| check_jsonl_row(&lexer, &row));
        if let Err(e) = outcome {
            failures.push(format!("line {n}: {e}"));
        }
    }
    report("process-word.jsonl", &failures);
    assert_eq!(rows, 56, "process-word.jsonl row count");
}
