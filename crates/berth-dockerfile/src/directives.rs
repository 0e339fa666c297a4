//! Parser directives (`# syntax=…`, `# escape=…`, `# check=…`): only at the
//! top of the file, each at most once.

use crate::ParseErrorKind;

/// The directives a Dockerfile set, and the escape character in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub escape: char,
    pub syntax: Option<Directive>,
    pub check: Option<Directive>,
    /// Every directive in file order (names lower-cased).
    pub all: Vec<Directive>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
            all: Vec::new(),
        }
    }
}

/// One parser directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: String,
    /// 1-based physical line.
    pub line: u32,
}

const ALLOWED: [&str; 3] = ["syntax", "escape", "check"];

/// Reads directives line by line until the first line that is not one.
#[derive(Debug, Default)]
pub(crate) struct DirectiveReader {
    done: bool,
}

impl DirectiveReader {
    /// Offers one physical line (newline already removed). Returns the
    /// directive it holds while the directive block is still open.
    pub(crate) fn offer(
        &mut self,
        line: &str,
        line_no: u32,
        directives: &mut Directives,
    ) -> Result<(), ParseErrorKind> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = match_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if !ALLOWED.contains(&name.as_str()) {
            self.done = true;
            return Ok(());
        }
        if directives.all.iter().any(|d| d.name == name) {
            return Err(ParseErrorKind::Directive(format!(
                "only one {name} parser directive can be used"
            )));
        }
        let directive = Directive {
            name: name.clone(),
            value: value.to_string(),
            line: line_no,
        };
        match name.as_str() {
            "escape" => {
                directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseErrorKind::Directive(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        )))
                    }
                }
            }
            "syntax" => directives.syntax = Some(directive.clone()),
            _ => directives.check = Some(directive.clone()),
        }
        directives.all.push(directive);
        Ok(())
    }
}

/// Matches `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`.
fn match_directive(line: &str) -> Option<(&str, &str)> {
    match_directive_with(line, "#")
}

/// [`match_directive`] with another comment prefix (`//`).
fn match_directive_with<'a>(line: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = line.strip_prefix(prefix)?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let value = rest
        .trim_start_matches([' ', '\t'])
        .trim_end_matches([' ', '\t']);
    if value.is_empty() || value.contains(['\n', '\r']) {
        return None;
    }
    Some((name, value))
}

/// A directive found by [`detect_directive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedDirective {
    /// The value up to its first space (the frontend image reference for
    /// `syntax`).
    pub reference: String,
    /// The whole value.
    pub cmdline: String,
    /// 1-based line where it was found.
    pub line: u32,
}

/// BuildKit's `ParseDirective`/`DetectSyntax`: finds directive `key` at the
/// top of a file, also accepting a leading `#!` line, `//`-style directives
/// (only for `syntax`) and a JSON object (only for `syntax`).
pub fn detect_directive(source: &str, key: &str) -> Option<DetectedDirective> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let allow_alternatives = key == "syntax";
    if let Some(found) = detect_with_prefix(source, key, "#") {
        return Some(found);
    }
    if !allow_alternatives {
        return None;
    }
    if let Some(found) = detect_with_prefix(source, key, "//") {
        return Some(found);
    }
    detect_json(source, key)
}

fn detect_with_prefix(source: &str, key: &str, prefix: &str) -> Option<DetectedDirective> {
    for (i, line) in source.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i == 0 && line.starts_with("#!") {
            continue;
        }
        let (name, value) = match_directive_with(line, prefix)?;
        if !ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            return None;
        }
        if name.eq_ignore_ascii_case(key) {
            let reference = value.split(' ').next().unwrap_or_default().to_string();
            return Some(DetectedDirective {
                reference,
                cmdline: value.to_string(),
                line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            });
        }
    }
    None
}

/// A whole-file JSON object such as `{"syntax": "foo"}`.
fn detect_json(source: &str, key: &str) -> Option<DetectedDirective> {
    let value = crate::json::parse_value(source.trim())?;
    let crate::json::Value::Object(fields) = value else {
        return None;
    };
    fields.into_iter().find_map(|(k, v)| match v {
        crate::json::Value::String(s) if k == key => Some(DetectedDirective {
            reference: s.split(' ').next().unwrap_or_default().to_string(),
            cmdline: s,
            line: 1,
        }),
        _ => None,
    })
}
