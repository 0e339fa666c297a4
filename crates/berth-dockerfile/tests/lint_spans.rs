//! Exact `FILE:LINE:COL` positions and messages for broken Dockerfiles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_dockerfile::lint::{lint, Severity};

/// The first error of `source`, rendered as `FILE:LINE:COL: message`.
fn first_error(source: &str) -> String {
    let report = lint(source.as_bytes());
    let f = report
        .findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .unwrap_or_else(|| panic!("no error for {source:?}: {:?}", report.findings));
    format!(
        "Dockerfile:{}:{}: {}",
        f.span.start.line, f.span.start.col, f.message
    )
}

#[test]
fn errors_point_at_the_right_place() {
    let cases: &[(&str, &str)] = &[
        ("FROM a\nFOO bar\n", "Dockerfile:2:1: unknown instruction: FOO (did you mean FROM?)"),
        ("FROM a\n  COPY --boo x y\n", "Dockerfile:2:8: unknown flag: --boo"),
        ("FROM a\nENV X\n", "Dockerfile:2:1: ENV must have two arguments"),
        ("FROM a\nRUN [\"a\", 1]\n", "Dockerfile:2:1: when using JSON array syntax, arrays must be comprised of strings only"),
        ("FROM a\nRUN <<EOF\necho\n", "Dockerfile:2:1: unterminated heredoc"),
        ("# escape=x\nFROM a\n", "Dockerfile:1:1: invalid escape token 'x' does not match ` or \\"),
        ("# syntax=a\n# syntax=b\nFROM a\n", "Dockerfile:2:1: only one syntax parser directive can be used"),
        ("", "Dockerfile:1:1: file with no instructions"),
        ("FROM a\nWORKDIR\n", "Dockerfile:2:1: WORKDIR requires exactly one argument"),
        ("FROM a AS 1x\n", "Dockerfile:1:11: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"),
        ("FROM a\nHEALTHCHECK --interval=abc CMD true\n", "Dockerfile:2:24: time: invalid duration \"abc\""),
        ("FROM a\nCOPY src \\\n  <<EOF\nx\nEOF\n", "Dockerfile:3:3: COPY cannot accept a heredoc as a destination"),
        ("RUN x\nFROM a\n", "Dockerfile:1:1: no build stage in current context"),
        ("FROM a AS x\nFROM b AS x\n", "Dockerfile:2:11: duplicate stage name \"x\""),
        ("FROM a\nRUN --mount=type=cache echo\n", "Dockerfile:2:13: mount target must be set"),
        ("FROM a\nRUN --network=wifi echo\n", "Dockerfile:2:15: unsupported network mode \"wifi\""),
        ("FROM a\nONBUILD ONBUILD RUN x\n", "Dockerfile:2:9: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FROM a\nSHELL sh -c\n", "Dockerfile:2:1: SHELL requires the arguments to be in JSON form"),
        ("FROM a\nCOPY --chmod=999 a b\n", "Dockerfile:2:14: invalid chmod parameter: \"999\""),
        ("FROM a\nCOPY --from=0 a b\n", "Dockerfile:2:1: COPY --from=0 refers to the stage it is in (circular dependency)"),
        ("FROM b AS a\nCOPY --from=b x y\nFROM a AS b\n", "Dockerfile:1:1: circular dependency detected on stage: a"),
        ("FROM a\nLABEL a=b c\n", "Dockerfile:2:1: Syntax error - can't find = in \"c\". Must be of the form: name=value"),
    ];
    let mut failures = Vec::new();
    for (source, want) in cases {
        let got = first_error(source);
        if got != *want {
            failures.push(format!("{source:?}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rendered_report_shows_the_line_and_a_caret() {
    let source = "FROM busybox\nRUN --boo=1 true\n";
    let report = lint(source.as_bytes());
    assert!(report.has_errors());
    let text = report.render("app/Dockerfile", source);
    assert_eq!(
        text,
        "app/Dockerfile:2:5: error: unknown flag: --boo\n 2 | RUN --boo=1 true\n   |     ^^^^^^^\n"
    );
}

#[test]
fn warnings_do_not_fail_and_check_directive_filters_them() {
    let source = "FROM a\nCMD echo hi\n";
    let report = lint(source.as_bytes());
    assert!(!report.has_errors());
    assert!(report
        .findings
        .iter()
        .any(|f| f.rule == "JSONArgsRecommended"));

    let skipped = lint(b"# check=skip=JSONArgsRecommended\nFROM a\nCMD echo hi\n");
    assert!(skipped.findings.is_empty(), "{:?}", skipped.findings);

    let strict = lint(b"# check=error=true\nFROM a\nCMD echo hi\n");
    assert!(strict.has_errors());
}

#[test]
fn undefined_arg_in_from_is_reported_and_declared_args_are_not() {
    let report = lint(b"FROM ${BASE}\n");
    assert!(report
        .findings
        .iter()
        .any(|f| f.rule == "UndefinedArgInFrom"));
    let report = lint(b"ARG BASE=alpine\nFROM ${BASE}\nFROM $TARGETPLATFORM\n");
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.rule == "UndefinedArgInFrom"),
        "{:?}",
        report.findings
    );
}

#[test]
fn legacy_env_form_is_a_warning() {
    let report = lint(b"FROM a\nENV PYTHONUNBUFFERED 1\nENV OK=1\n");
    let legacy: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "LegacyKeyValueFormat")
        .collect();
    assert_eq!(legacy.len(), 1);
    assert_eq!(
        (legacy[0].span.start.line, legacy[0].span.start.col),
        (2, 5)
    );
}
