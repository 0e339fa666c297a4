//! `berth dockerfile lint`: every problem of a Dockerfile, as
//! `FILE:LINE:COL: severity: message` with the offending line.
//!
//! Errors are what would stop a build (syntax, instruction validation, stage
//! references); warnings follow BuildKit's build checks (same rule names), and
//! the `# check=skip=…;error=true` directive applies to them.

use std::collections::BTreeMap;

use crate::ast::{Dockerfile, Instruction};
use crate::instructions::{Command, CommandLine, KEYWORDS};
use crate::span::{Pos, Span};
use crate::stages::{plan_lenient, platform_args, Plan, PREDEFINED_ARGS};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// BuildKit's check name for warnings; empty for errors.
    pub rule: &'static str,
    pub message: String,
    pub span: Span,
}

impl Finding {
    fn error(message: impl Into<String>, span: Span) -> Self {
        Finding {
            severity: Severity::Error,
            rule: "",
            message: message.into(),
            span,
        }
    }

    fn warning(rule: &'static str, message: impl Into<String>, span: Span) -> Self {
        Finding {
            severity: Severity::Warning,
            rule,
            message: message.into(),
            span,
        }
    }
}

/// The result of linting a file.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Renders every finding for `file`, whose text is `source`.
    pub fn render(&self, file: &str, source: &str) -> String {
        let lines: Vec<&str> = source.lines().collect();
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&render_finding(file, &lines, f));
        }
        out
    }
}

/// One finding: `FILE:LINE:COL: severity: message`, the line, a caret.
pub fn render_finding(file: &str, lines: &[&str], f: &Finding) -> String {
    let Pos { line, col } = f.span.start;
    let severity = match f.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let rule = if f.rule.is_empty() {
        String::new()
    } else {
        format!("{}: ", f.rule)
    };
    let mut out = format!("{file}:{line}:{col}: {severity}: {rule}{}\n", f.message);
    if let Some(text) = (line as usize).checked_sub(1).and_then(|i| lines.get(i)) {
        let gutter = line.to_string();
        out.push_str(&format!(" {gutter} | {text}\n"));
        let width = if f.span.end.line == line && f.span.end.col > col {
            (f.span.end.col - col) as usize
        } else {
            text.chars()
                .count()
                .saturating_sub(col.saturating_sub(1) as usize)
                .max(1)
        };
        out.push_str(&format!(
            " {} | {}{}\n",
            " ".repeat(gutter.len()),
            " ".repeat(col.saturating_sub(1) as usize),
            "^".repeat(width)
        ));
    }
    out
}

/// Lints a Dockerfile's bytes.
pub fn lint(source: &[u8]) -> Report {
    let mut report = Report::default();
    let df = match crate::parse(source) {
        Ok(df) => df,
        Err(e) => {
            report.findings.push(Finding::error(e.message(), e.span));
            return report;
        }
    };
    for w in &df.warnings {
        report.findings.push(Finding::warning(
            "NoEmptyContinuation",
            w.short.clone(),
            w.span,
        ));
    }
    check_unknown_and_casing(&df, &mut report);
    check_legacy_key_value(&df, &mut report);
    let (plan, errors) = plan_lenient(&df);
    for e in errors {
        report.findings.push(Finding::error(e.message, e.span));
    }
    check_plan(&df, &plan, &mut report);
    apply_check_directive(&df, &mut report);
    report
        .findings
        .sort_by_key(|f| (f.span.start, std::cmp::Reverse(f.severity)));
    report.findings.dedup();
    report
}

/// `ENV key value` instead of `ENV key=value` (the parser marks the old form
/// with an empty separator).
fn check_legacy_key_value(df: &Dockerfile, report: &mut Report) {
    for node in &df.instructions {
        let name = node.name();
        if name != "ENV" && name != "LABEL" {
            continue;
        }
        let crate::ast::Args::Values(values) = &node.args else {
            continue;
        };
        if let [key, _, sep] = values.as_slice() {
            if sep.text.is_empty() {
                report.findings.push(Finding::warning(
                    "LegacyKeyValueFormat",
                    format!("\"{name} key=value\" should be used instead of legacy \"{name} key value\" format"),
                    key.span,
                ));
            }
        }
    }
}

fn check_unknown_and_casing(df: &Dockerfile, report: &mut Report) {
    let known: Vec<&Instruction> = df
        .instructions
        .iter()
        .filter(|i| KEYWORDS.contains(&i.name().as_ref()))
        .collect();
    let lower = known
        .iter()
        .filter(|i| !i.keyword.text.bytes().any(|b| b.is_ascii_uppercase()))
        .count();
    let majority_lower = lower * 2 > known.len();
    for i in known {
        let text = &i.keyword.text;
        let consistent = if majority_lower {
            !text.bytes().any(|b| b.is_ascii_uppercase())
        } else {
            !text.bytes().any(|b| b.is_ascii_lowercase())
        };
        if !consistent {
            report.findings.push(Finding::warning(
                "ConsistentInstructionCasing",
                format!(
                    "Command '{text}' should match the case of the command majority ({})",
                    if majority_lower {
                        "lowercase"
                    } else {
                        "uppercase"
                    }
                ),
                i.keyword.span,
            ));
        }
    }
}

fn check_plan(df: &Dockerfile, plan: &Plan, report: &mut Report) {
    let builtins = platform_args("linux", "amd64", "");
    let no_build_args = BTreeMap::new();
    let meta = match plan.meta_env(&no_build_args, &builtins) {
        Ok(m) => m,
        Err(e) => {
            report
                .findings
                .push(Finding::error(e.error.to_string(), e.span));
            return;
        }
    };
    for arg in &plan.meta_args {
        check_secret_name("ARG", &arg.name, arg.span, report);
    }
    let from_nodes: Vec<&Instruction> = df
        .instructions
        .iter()
        .filter(|i| i.name() == "FROM")
        .collect();
    let mut deps = Vec::new();
    for stage in &plan.stages {
        if let Some(node) = from_nodes.get(stage.index) {
            check_from_casing(node, report);
        }
        if let Some(name) = &stage.from.name {
            if name.text == "scratch" || name.text == "context" {
                report.findings.push(Finding::warning(
                    "ReservedStageName",
                    format!(
                        "Stage name should not use the same name as reserved stage '{}'",
                        name.text
                    ),
                    name.span,
                ));
            }
        }
        check_stage_name_casing(from_nodes.get(stage.index).copied(), report);
        let expanded = match plan.expand_stage(stage, &no_build_args, &meta) {
            Ok(e) => e,
            Err(e) => {
                report
                    .findings
                    .push(Finding::error(e.error.to_string(), e.span));
                deps.push(Vec::new());
                continue;
            }
        };
        for u in &expanded.undefined {
            if u.span.start.line == stage.span.start.line
                && !PREDEFINED_ARGS.contains(&u.name.as_str())
            {
                report.findings.push(Finding::warning(
                    "UndefinedArgInFrom",
                    format!("FROM argument '{}' is not declared", u.name),
                    stage.from.image.span,
                ));
            }
        }
        if expanded.base.is_empty() {
            report.findings.push(Finding::error(
                "base name (".to_string() + &stage.from.image.text + ") should not be blank",
                stage.from.image.span,
            ));
        }
        check_stage_commands(stage.index, plan, &expanded.commands, report);
        deps.push(plan.dependencies(&expanded));
    }
    if let Some(i) = Plan::find_cycle(&deps) {
        if let Some(stage) = plan.stages.get(i) {
            let name = stage.name.clone().unwrap_or_else(|| i.to_string());
            report.findings.push(Finding::error(
                format!("circular dependency detected on stage: {name}"),
                stage.span,
            ));
        }
    }
}

fn check_from_casing(node: &Instruction, report: &mut Report) {
    let crate::ast::Args::Values(args) = &node.args else {
        return;
    };
    let Some(as_kw) = args.get(1) else {
        return;
    };
    let from_upper = node.keyword.text == node.keyword.text.to_uppercase();
    let as_upper = as_kw.text == as_kw.text.to_uppercase();
    if from_upper != as_upper {
        report.findings.push(Finding::warning(
            "FromAsCasing",
            format!(
                "'{}' and '{}' keywords' casing do not match",
                as_kw.text, node.keyword.text
            ),
            as_kw.span,
        ));
    }
}

fn check_stage_name_casing(node: Option<&Instruction>, report: &mut Report) {
    let Some(crate::ast::Args::Values(args)) = node.map(|n| &n.args) else {
        return;
    };
    if let Some(name) = args.get(2) {
        if name.text != name.text.to_lowercase() {
            report.findings.push(Finding::warning(
                "StageNameCasing",
                format!("Stage name '{}' should be lowercase", name.text),
                name.span,
            ));
        }
    }
}

fn check_secret_name(kind: &str, name: &str, span: Span, report: &mut Report) {
    const DENY: [&str; 8] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
    ];
    const ALSO: [&str; 2] = ["secret", "token"];
    let lower = name.to_lowercase();
    let parts: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let hit = parts.iter().any(|p| DENY.contains(p) || ALSO.contains(p));
    if hit {
        report.findings.push(Finding::warning(
            "SecretsUsedInArgOrEnv",
            format!("Do not use ARG or ENV instructions for sensitive data ({kind} \"{name}\")"),
            span,
        ));
    }
}

fn check_stage_commands(
    index: usize,
    plan: &Plan,
    commands: &[(Command, Span)],
    report: &mut Report,
) {
    let mut last_seen: BTreeMap<&'static str, Span> = BTreeMap::new();
    let mut saw_workdir = false;
    for (command, span) in commands {
        match command {
            Command::Cmd(line) | Command::Entrypoint(line) => {
                if let CommandLine::Shell(_) = line {
                    report.findings.push(Finding::warning(
                        "JSONArgsRecommended",
                        format!(
                            "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                            command.name()
                        ),
                        *span,
                    ));
                }
            }
            Command::Maintainer(_) => report.findings.push(Finding::warning(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                *span,
            )),
            Command::Workdir(w) => {
                if !saw_workdir && !w.text.starts_with('/') && !w.text.contains('$') {
                    report.findings.push(Finding::warning(
                        "WorkdirRelativePath",
                        format!("Relative workdir \"{}\" can have unexpected results if the base image changes", w.text),
                        w.span,
                    ));
                }
                saw_workdir = true;
            }
            Command::Env(kvs) => {
                for kv in kvs {
                    check_secret_name("ENV", &kv.key, kv.span, report);
                }
            }
            Command::Arg(args) => {
                for a in args {
                    check_secret_name("ARG", &a.name, a.span, report);
                }
            }
            Command::Copy(c) => {
                if let Some(from) = &c.from {
                    if plan.find_stage(from) == Some(index) {
                        report.findings.push(Finding::error(
                            format!("COPY --from={from} refers to the stage it is in (circular dependency)"),
                            *span,
                        ));
                    }
                }
            }
            _ => {}
        }
        for name in ["CMD", "ENTRYPOINT", "HEALTHCHECK"] {
            if command.name() == name {
                if let Some(prev) = last_seen.insert(name, *span) {
                    report.findings.push(Finding::warning(
                        "MultipleInstructionsDisallowed",
                        format!(
                            "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
                        ),
                        prev,
                    ));
                }
            }
        }
    }
}

/// `# check=skip=Rule1,Rule2;error=true`.
fn apply_check_directive(df: &Dockerfile, report: &mut Report) {
    let Some(check) = &df.directives.check else {
        return;
    };
    let mut skip: Vec<String> = Vec::new();
    let mut as_error = false;
    for part in check.value.split(';') {
        match part.trim().split_once('=') {
            Some(("skip", rules)) => skip.extend(rules.split(',').map(|r| r.trim().to_string())),
            Some(("error", v)) => as_error = v.trim().eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    report.findings.retain(|f| {
        f.severity == Severity::Error || !(skip.iter().any(|s| s == "all" || s == f.rule))
    });
    if as_error {
        for f in &mut report.findings {
            f.severity = Severity::Error;
        }
    }
}
