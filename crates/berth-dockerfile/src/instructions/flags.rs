//! Instruction flags (`--name[=value]`), validated against the flags each
//! instruction accepts, as BuildKit's `BFlags`.

use std::collections::BTreeMap;

use super::InstructionError;
use crate::ast::Word;
use crate::span::Span;

/// What values a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=value`, at most once.
    String,
    /// `--mount=…`, repeatable.
    Strings,
}

/// The flags given to one instruction.
#[derive(Debug, Default)]
pub(crate) struct FlagSet {
    values: BTreeMap<&'static str, Vec<Word>>,
}

impl FlagSet {
    pub(crate) fn parse(
        given: &[Word],
        spec: &[(&'static str, FlagKind)],
    ) -> Result<FlagSet, InstructionError> {
        let mut set = FlagSet::default();
        for flag in given {
            let err = |m: String| InstructionError::new(m, flag.span);
            let Some(body) = flag.text.strip_prefix("--") else {
                return Err(err(format!("arg should start with -- : {}", flag.text)));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(spec_name, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(err(unknown_flag_message(name, spec)));
            };
            let entry = set.values.entry(spec_name).or_default();
            if kind != FlagKind::Strings && !entry.is_empty() {
                return Err(err(format!("Duplicate flag specified: {name}")));
            }
            let text = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" | "false" => v.to_ascii_lowercase(),
                    _ => {
                        return Err(err(format!(
                            "expecting boolean value for flag {name}, not: {v}"
                        )))
                    }
                },
                (_, None) => return Err(err(format!("Missing a value on flag: {name}"))),
                (_, Some(v)) => v.to_string(),
            };
            entry.push(Word {
                text,
                span: value_span(flag, name),
            });
        }
        Ok(set)
    }

    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| !v.is_empty())
    }

    pub(crate) fn word(&self, name: &str) -> Option<Word> {
        self.values.get(name).and_then(|v| v.first()).cloned()
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.word(name).map(|w| w.text)
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.word(name).is_some_and(|w| w.text == "true")
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.strings_with_spans(name)
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    pub(crate) fn strings_with_spans(&self, name: &str) -> Vec<Word> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

/// The span of a flag's value: after `--name=` when the flag sits on one line.
fn value_span(flag: &Word, name: &str) -> Span {
    let mut span = flag.span;
    if span.start.line == span.end.line {
        span.start.col += 3 + name.chars().count() as u32;
        span.start.col = span.start.col.min(span.end.col);
    }
    span
}

fn unknown_flag_message(name: &str, spec: &[(&'static str, FlagKind)]) -> String {
    let mut message = format!("unknown flag: --{name}");
    let best = spec
        .iter()
        .map(|(n, _)| (edit_distance(name, n), *n))
        .filter(|(d, n)| *d <= 2 && *d < n.len())
        .min();
    if let Some((_, suggestion)) = best {
        message.push_str(&format!(" (did you mean --{suggestion}?)"));
    }
    message
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}
