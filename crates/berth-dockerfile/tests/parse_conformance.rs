//! Data-driven tests of the parser, dump printer and instruction layer
//! against `shared/conformance` (BuildKit's own test files and tables).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../testsupport/conformance.rs"]
mod support;

use berth_dockerfile::directives::detect_directive;
use berth_dockerfile::heredoc::{heredocs_from_line, parse_heredoc};
use berth_dockerfile::instructions::parse_instruction;
use berth_dockerfile::{dump, parse, testing};
use serde_json::Value;
use support::{conformance_dir, read_bytes, read_text, report};

fn case_dirs(set: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(conformance_dir().join(set))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn golden_dumps_byte_for_byte() {
    let cases = case_dirs("dockerfile-parse");
    assert_eq!(cases.len(), 33, "expected 33 golden cases");
    let mut failures = Vec::new();
    for case in &cases {
        let input = read_bytes(&format!("dockerfile-parse/{case}/Dockerfile"));
        let expected = read_text(&format!("dockerfile-parse/{case}/result"));
        match parse(&input) {
            Ok(df) => {
                let got = dump(&df);
                if got != expected {
                    failures.push(format!("{case}:\n--- expected\n{expected}--- got\n{got}"));
                }
            }
            Err(e) => failures.push(format!("{case}: parse failed: {e}")),
        }
    }
    report("dockerfile-parse", &failures);
}

#[test]
fn negative_files_fail_with_a_line() {
    let cases = case_dirs("dockerfile-parse-negative");
    assert_eq!(cases.len(), 4);
    let mut failures = Vec::new();
    for case in &cases {
        let input = read_bytes(&format!("dockerfile-parse-negative/{case}/Dockerfile"));
        match parse(&input) {
            Ok(df) => failures.push(format!("{case}: parsed: {}", dump(&df))),
            Err(e) if e.span.start.line == 0 => failures.push(format!("{case}: no line: {e}")),
            Err(_) => {}
        }
    }
    report("dockerfile-parse-negative", &failures);
}

#[test]
fn line_numbers() {
    let df = parse(&read_bytes(
        "dockerfile-parse-extra/line-numbers/Dockerfile",
    ))
    .unwrap();
    let table = read_text("dockerfile-parse-extra/line-numbers/lines.tsv");
    let mut checked = 0;
    for row in table.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (start, end): (u32, u32) = (cols[1].parse().unwrap(), cols[2].parse().unwrap());
        let span = if cols[0] == "root" {
            df.span
        } else {
            let i: usize = cols[0].trim_start_matches("child-").parse().unwrap();
            df.instructions[i].span
        };
        assert_eq!(
            (span.start.line, span.last_line()),
            (start, end),
            "{}",
            cols[0]
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn empty_continuation_warnings() {
    let dir = "dockerfile-parse-extra/empty-continuation-warnings";
    let df = parse(&read_bytes(&format!("{dir}/Dockerfile"))).unwrap();
    assert_eq!(dump(&df), read_text(&format!("{dir}/result.derived")));
    assert_eq!(df.warnings.len(), 2);
    let table = read_text(&format!("{dir}/expected-warnings.tsv"));
    let mut checked = 0;
    for row in table.lines().skip(1) {
        let (i, needle) = row.split_once('\t').unwrap();
        let i: usize = i.parse().unwrap();
        assert!(
            df.warnings[i].short.contains(needle),
            "warning {i} {:?} lacks {needle:?}",
            df.warnings[i].short
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn line_too_long() {
    let dir = "dockerfile-parse-extra/line-too-long";
    let err = parse(&read_bytes(&format!("{dir}/Dockerfile"))).unwrap_err();
    let expected = read_text(&format!("{dir}/expected-error"));
    assert!(err.to_string().contains(expected.trim()), "{err}");
}

fn check_heredoc_case(dir: &str) -> usize {
    let df = parse(&read_bytes(&format!("{dir}/Dockerfile"))).unwrap();
    assert_eq!(
        dump(&df),
        read_text(&format!("{dir}/result.derived")),
        "{dir}"
    );
    let expected: Value =
        serde_json::from_str(&read_text(&format!("{dir}/heredocs.json"))).unwrap();
    let mut failures = Vec::new();
    let mut heredocs = 0;
    let rows = expected.as_array().unwrap();
    for row in rows {
        let child = row["child"].as_u64().unwrap() as usize;
        let got = &df.instructions[child].heredocs;
        let want = row["heredocs"].as_array().unwrap();
        heredocs += want.len();
        let got_json: Vec<Value> = got
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": h.name, "content": h.content, "expand": h.expand,
                    "chomp": h.chomp, "fd": h.fd,
                })
            })
            .collect();
        if &got_json != want {
            failures.push(format!("child {child}: want {want:?}, got {got_json:?}"));
        }
    }
    report(dir, &failures);
    heredocs
}

#[test]
fn heredocs_extracted() {
    assert_eq!(
        check_heredoc_case("dockerfile-heredoc/extracts-heredoc"),
        24
    );
    assert_eq!(
        check_heredoc_case("dockerfile-heredoc/json-form-no-heredoc"),
        0
    );
}

#[test]
fn heredoc_words() {
    let table = read_text("dockerfile-heredoc/heredoc-words.tsv");
    let mut failures = Vec::new();
    let mut rows = 0;
    for row in table.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (word, outcome, name) = (cols[0], cols[1], cols[2]);
        rows += 1;
        let got = parse_heredoc(word);
        let ok = match (outcome, &got) {
            ("heredoc", Ok(Some(h))) => h.name == name,
            ("error", Err(_)) => true,
            ("not-heredoc", Ok(None)) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("{word:?}: want {outcome} {name}, got {got:?}"));
        }
    }
    assert_eq!(rows, 20);
    report("heredoc-words", &failures);
}

#[test]
fn heredoc_lines() {
    let table = read_text("dockerfile-heredoc/heredoc-lines.tsv");
    let mut failures = Vec::new();
    let mut rows = 0;
    for row in table.lines().skip(1) {
        let (line, names) = row.split_once('\t').unwrap();
        let want: Vec<String> = serde_json::from_str(names).unwrap();
        let got: Vec<String> = heredocs_from_line(line)
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        if got != want {
            failures.push(format!("{line:?}: want {want:?}, got {got:?}"));
        }
        rows += 1;
    }
    assert_eq!(rows, 10);
    report("heredoc-lines", &failures);
}

fn jsonl(rel: &str) -> Vec<Value> {
    read_text(rel)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn parse_words_table() {
    let rows = jsonl("dockerfile-parse-units/parse-words.jsonl");
    assert_eq!(rows.len(), 8);
    let mut failures = Vec::new();
    for row in &rows {
        let input = row["input"].as_str().unwrap();
        let want: Vec<String> = serde_json::from_value(row["words"].clone()).unwrap();
        let got = testing::parse_words(input, '\\');
        if got != want {
            failures.push(format!("{input:?}: want {want:?}, got {got:?}"));
        }
    }
    report("parse-words", &failures);
}

#[test]
fn json_arrays_table() {
    let rows = jsonl("dockerfile-parse-units/json-arrays.jsonl");
    assert_eq!(rows.len(), 16);
    let mut failures = Vec::new();
    for row in &rows {
        let input = row["input"].as_str().unwrap();
        let got = testing::exec_form(input);
        let ok = if row["valid"].as_bool().unwrap() {
            let want: Vec<String> = serde_json::from_value(row["values"].clone()).unwrap();
            got == Ok(Some(want))
        } else {
            got.is_err()
        };
        if !ok {
            failures.push(format!("{input:?}: got {got:?}"));
        }
    }
    report("json-arrays", &failures);
}

#[test]
fn directives_table() {
    let rows = jsonl("dockerfile-parse-units/directives.jsonl");
    assert_eq!(rows.len(), 17);
    let mut failures = Vec::new();
    for row in &rows {
        let input = row["input"].as_str().unwrap();
        match row["function"].as_str().unwrap() {
            "ParseAll" => {
                let want: Vec<(String, String)> = row["directives"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        (
                            d["name"].as_str().unwrap().into(),
                            d["value"].as_str().unwrap().into(),
                        )
                    })
                    .collect();
                // The parser reads directives; add an instruction so the file parses.
                let got = parse(format!("{input}FROM x\n").as_bytes()).map(|df| {
                    df.directives
                        .all
                        .iter()
                        .map(|d| (d.name.clone(), d.value.clone()))
                        .collect::<Vec<_>>()
                });
                if got.as_ref() != Ok(&want) {
                    failures.push(format!("ParseAll {input:?}: want {want:?}, got {got:?}"));
                }
            }
            function => {
                let key = row.get("key").and_then(Value::as_str).unwrap_or("syntax");
                let got = detect_directive(input, key);
                let ok_want = row["ok"].as_bool().unwrap();
                let mut ok = got.is_some() == ok_want;
                if let Some(found) = &got {
                    if let Some(r) = row.get("ref").and_then(Value::as_str) {
                        ok &= found.reference == r;
                    }
                    if let Some(c) = row.get("cmdline").and_then(Value::as_str) {
                        ok &= found.cmdline == c;
                    }
                    if let Some(l) = row.get("line").and_then(Value::as_u64) {
                        ok &= u64::from(found.line) == l;
                    }
                }
                if !ok {
                    failures.push(format!(
                        "{function} {key} {input:?}: want {row}, got {got:?}"
                    ));
                }
            }
        }
    }
    report("directives", &failures);
}

#[test]
fn instruction_negative_cases() {
    let table = read_text("instructions-negative/cases.tsv");
    let mut failures = Vec::new();
    let mut rows = 0;
    for row in table.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (case, how, expected) = (cols[0], cols[1], cols[2]);
        rows += 1;
        let input = read_bytes(&format!("instructions-negative/{case}/Dockerfile"));
        let df = match parse(&input) {
            Ok(df) => df,
            Err(e) => {
                failures.push(format!("{case}: parse failed: {e}"));
                continue;
            }
        };
        match parse_instruction(&df.instructions[0]) {
            Ok(c) => failures.push(format!("{case}: accepted as {c:?}")),
            Err(e) => {
                let ok = match how {
                    "exact" => e.message == expected,
                    _ => e.message.contains(expected),
                };
                if !ok || e.span.start.line == 0 {
                    failures.push(format!(
                        "{case}: want {how} {expected:?}, got {:?} at {}",
                        e.message, e.span
                    ));
                }
            }
        }
    }
    assert_eq!(rows, 19);
    report("instructions-negative", &failures);
}
