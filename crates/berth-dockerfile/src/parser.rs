//! The line-level parser: physical lines → logical lines → [`Instruction`]s,
//! with BuildKit's rules for directives, comments, continuations and heredocs
//! (see `shared/conformance/README.md` §3).

use crate::ast::{Args, Dockerfile, Instruction, Warning, Word};
use crate::directives::{DirectiveReader, Directives};
use crate::heredoc::heredocs_from_line;
use crate::json::{parse_exec_form, ExecForm, NOT_STRING_ARRAY};
use crate::span::{LineMap, Span};
use crate::text::{split_whitespace_ranges, split_whitespace_ranges_n};
use crate::words::{extract_flags, parse_words};
use crate::{ParseError, ParseErrorKind};

/// BuildKit reads lines with a 64 KiB scanner buffer.
pub const MAX_LINE_LEN: usize = 65_535;

/// ONBUILD may nest (the instruction layer rejects it); bound the recursion.
const MAX_TRIGGER_DEPTH: usize = 32;

/// Parses a Dockerfile. Invalid UTF-8 is replaced by U+FFFD.
pub fn parse(source: &[u8]) -> Result<Dockerfile, ParseError> {
    parse_str(&String::from_utf8_lossy(source))
}

/// Parses a Dockerfile held in a string.
pub fn parse_str(source: &str) -> Result<Dockerfile, ParseError> {
    Parser::new(source).run()
}

/// Physical lines, each with its line ending.
struct Lines<'a> {
    rest: &'a str,
    line_no: u32,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Result<Option<&'a str>, ParseError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        self.line_no += 1;
        if trim_newline(line).len() > MAX_LINE_LEN {
            return Err(ParseError::new(
                ParseErrorKind::Syntax(format!(
                    "dockerfile line greater than max allowed size of {MAX_LINE_LEN}"
                )),
                Span::lines(self.line_no, self.line_no),
            ));
        }
        Ok(Some(line))
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// BuildKit's `isComment`: `#` after leading whitespace.
fn is_comment(line: &str) -> bool {
    trim_newline(line).trim_start().starts_with('#')
}

struct Parser<'a> {
    lines: Lines<'a>,
    directives: Directives,
    directive_reader: DirectiveReader,
    map: LineMap,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Self {
        Parser {
            lines: Lines {
                rest: source,
                line_no: 0,
            },
            directives: Directives::default(),
            directive_reader: DirectiveReader::default(),
            map: LineMap::new(),
        }
    }

    fn offer_directive(&mut self, token: &str) -> Result<(), ParseError> {
        let line = self.lines.line_no;
        self.directive_reader
            .offer(token, line, &mut self.directives)
            .map_err(|kind| ParseError::new(kind, Span::lines(line, line)))
    }

    /// Removes a trailing continuation (`E` plus blanks) per the escape
    /// character; returns the text and whether the logical line ends here.
    fn trim_continuation<'s>(&self, line: &'s str) -> (&'s str, bool) {
        let e = self.directives.escape;
        let without_blanks = line.trim_end_matches([' ', '\t']);
        let Some(before) = without_blanks.strip_suffix(e) else {
            return (line, true);
        };
        if before.is_empty() {
            return ("", false);
        }
        if before.ends_with(e) {
            return (line, true);
        }
        (before, false)
    }

    fn run(mut self) -> Result<Dockerfile, ParseError> {
        // About one instruction per 40 bytes in real Dockerfiles; reserving
        // up front saves copying the growing vector.
        let mut instructions = Vec::with_capacity(self.lines.rest.len() / 40 + 1);
        let mut warnings = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        while let Some(raw) = self.lines.next_line()? {
            let raw = if self.lines.line_no == 1 {
                raw.strip_prefix('\u{feff}').unwrap_or(raw)
            } else {
                raw
            };
            if is_comment(raw) {
                let after_first: String = raw.chars().skip(1).collect();
                let comment = after_first.trim();
                if comment.is_empty() {
                    comments.clear();
                } else {
                    comments.push(comment.to_string());
                }
            }
            let untrimmed = trim_newline(raw);
            let token = untrimmed.trim_start();
            self.offer_directive(token)?;
            let token = if is_comment(token) { "" } else { token };
            let start_line = self.lines.line_no;
            let (first, mut end_of_line) = self.trim_continuation(token);
            if end_of_line && first.is_empty() {
                continue;
            }
            self.map.clear();
            let lead = &untrimmed[..untrimmed.len() - untrimmed.trim_start().len()];
            let lead_chars = lead.chars().count();
            self.map.push(first, start_line, 1 + lead_chars as u32);

            let mut has_empty_continuation = false;
            while !end_of_line {
                let Some(raw) = self.lines.next_line()? else {
                    break;
                };
                let token = trim_newline(raw);
                self.offer_directive(token)?;
                if is_comment(raw) {
                    continue;
                }
                if token.trim_start().is_empty() {
                    has_empty_continuation = true;
                    continue;
                }
                let (piece, eol) = self.trim_continuation(token);
                end_of_line = eol;
                self.map.push(piece, self.lines.line_no, 1);
            }
            let line = self.map.text().to_string();
            let end_line = self.lines.line_no;
            if has_empty_continuation {
                warnings.push(Warning {
                    short: format!("Empty continuation line found in: {line}"),
                    detail: "Empty continuation lines will become errors in a future release"
                        .to_string(),
                    url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
                        .to_string(),
                    span: Span::lines(end_line, end_line),
                });
            }
            let mut instruction = self
                .node_from_line(&line, 0, std::mem::take(&mut comments), 0)
                .map_err(|kind| ParseError::new(kind, Span::lines(start_line, end_line)))?;
            if can_contain_heredoc(&instruction) && line.contains("<<") {
                let heredocs = heredocs_from_line(&line)
                    .map_err(|kind| ParseError::new(kind, Span::lines(start_line, end_line)))?;
                for mut heredoc in heredocs {
                    let mut terminated = false;
                    while let Some(raw) = self.lines.next_line()? {
                        let mut candidate = trim_newline(raw);
                        if heredoc.chomp {
                            candidate = candidate.trim_start_matches('\t');
                        }
                        if candidate == heredoc.name {
                            terminated = true;
                            break;
                        }
                        heredoc.content.push_str(raw);
                    }
                    if !terminated {
                        return Err(ParseError::new(
                            ParseErrorKind::Syntax("unterminated heredoc".to_string()),
                            Span::lines(start_line, self.lines.line_no),
                        ));
                    }
                    instruction.heredocs.push(heredoc);
                }
            }
            instruction.span = Span::lines(start_line, self.lines.line_no);
            instruction.original = line;
            instructions.push(instruction);
        }
        let (Some(first), Some(last)) = (instructions.first(), instructions.last()) else {
            let line = self.lines.line_no.max(1);
            return Err(ParseError::new(
                ParseErrorKind::Syntax("file with no instructions".to_string()),
                Span::lines(line, line),
            ));
        };
        let span = Span::new(first.span.start, last.span.end);
        Ok(Dockerfile {
            directives: self.directives,
            instructions,
            warnings,
            span,
        })
    }

    fn word(&self, text: impl Into<String>, start: usize, end: usize) -> Word {
        Word {
            text: text.into(),
            span: self.map.span(start, end),
        }
    }

    /// BuildKit's `newNodeFromLine` on `line`, which starts at byte `base` of
    /// the logical line.
    fn node_from_line(
        &self,
        line: &str,
        base: usize,
        comments: Vec<String>,
        depth: usize,
    ) -> Result<Instruction, ParseErrorKind> {
        let lead = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        let t0 = base + lead;
        let mut fields = split_whitespace_ranges_n(trimmed, 2);
        let (cmd_start, cmd_end) = fields.next().unwrap_or((0, 0));
        let keyword = self.word(&trimmed[cmd_start..cmd_end], t0 + cmd_start, t0 + cmd_end);
        let mut flags = Vec::new();
        let mut args_text = "";
        let mut args_base = t0 + trimmed.len();
        if let Some((rest_start, rest_end)) = fields.next() {
            let rest = &trimmed[rest_start..rest_end];
            let extracted = extract_flags(rest, self.directives.escape);
            for f in extracted.flags {
                flags.push(self.word(f.text, t0 + rest_start + f.start, t0 + rest_start + f.end));
            }
            let after = rest.get(extracted.rest_start..).unwrap_or("");
            let after_lead = after.len() - after.trim_start().len();
            args_text = after.trim();
            args_base = t0 + rest_start + extracted.rest_start + after_lead;
        }
        let (args, json) = match dispatch_name(&keyword.text).as_ref() {
            "add" | "copy" | "volume" => self.maybe_json_to_list(args_text, args_base)?,
            "arg" => (self.name_or_name_val(args_text, args_base), false),
            "cmd" | "entrypoint" | "run" | "shell" => self.maybe_json(args_text, args_base)?,
            "env" => (self.name_val(args_text, args_base, "ENV")?, false),
            "label" => (self.name_val(args_text, args_base, "LABEL")?, false),
            "expose" | "from" => (self.whitespace_delimited(args_text, args_base), false),
            "healthcheck" => self.health_config(args_text, args_base)?,
            "maintainer" | "stopsignal" | "user" | "workdir" => {
                (self.single_string(args_text, args_base), false)
            }
            "onbuild" => {
                if args_text.is_empty() {
                    (Args::Values(Vec::new()), false)
                } else if depth >= MAX_TRIGGER_DEPTH {
                    return Err(ParseErrorKind::Syntax(
                        "ONBUILD triggers nested too deeply".to_string(),
                    ));
                } else {
                    let mut sub =
                        self.node_from_line(args_text, args_base, Vec::new(), depth + 1)?;
                    sub.original = args_text.to_string();
                    (Args::Trigger(Box::new(sub)), false)
                }
            }
            _ => (
                Args::Values(vec![self.word("", args_base, args_base)]),
                false,
            ),
        };
        Ok(Instruction {
            keyword,
            flags,
            args,
            json,
            heredocs: Vec::new(),
            original: String::new(),
            span: Span::default(),
            comments,
        })
    }

    fn single_string(&self, rest: &str, base: usize) -> Args {
        if rest.is_empty() {
            return Args::Values(Vec::new());
        }
        Args::Values(vec![self.word(rest, base, base + rest.len())])
    }

    fn whitespace_delimited(&self, rest: &str, base: usize) -> Args {
        if rest.is_empty() {
            return Args::Values(Vec::new());
        }
        Args::Values(
            split_whitespace_ranges(rest)
                .into_iter()
                .map(|(s, e)| self.word(&rest[s..e], base + s, base + e))
                .collect(),
        )
    }

    fn json_args(&self, rest: &str, base: usize) -> Result<Option<Args>, ParseErrorKind> {
        match parse_exec_form(rest) {
            ExecForm::NotJson => Ok(None),
            ExecForm::NotStringArray => Err(ParseErrorKind::Syntax(NOT_STRING_ARRAY.to_string())),
            ExecForm::Strings(elements) => Ok(Some(Args::Values(
                elements
                    .into_iter()
                    .map(|e| self.word(e.value, base + e.start, base + e.end))
                    .collect(),
            ))),
        }
    }

    fn maybe_json(&self, rest: &str, base: usize) -> Result<(Args, bool), ParseErrorKind> {
        if rest.is_empty() {
            return Ok((Args::Values(Vec::new()), false));
        }
        Ok(match self.json_args(rest, base)? {
            Some(args) => (args, true),
            None => (self.single_string(rest, base), false),
        })
    }

    fn maybe_json_to_list(&self, rest: &str, base: usize) -> Result<(Args, bool), ParseErrorKind> {
        Ok(match self.json_args(rest, base)? {
            Some(args) => (args, true),
            None => (self.whitespace_delimited(rest, base), false),
        })
    }

    fn name_or_name_val(&self, rest: &str, base: usize) -> Args {
        Args::Values(
            parse_words(rest, self.directives.escape)
                .into_iter()
                .map(|w| self.word(w.text, base + w.start, base + w.end))
                .collect(),
        )
    }

    /// ENV and LABEL: `key value` (old form) or `key=value …`, as key, value,
    /// separator triples.
    fn name_val(&self, rest: &str, base: usize, key: &str) -> Result<Args, ParseErrorKind> {
        let words = parse_words(rest, self.directives.escape);
        let Some(first) = words.first() else {
            return Ok(Args::Values(Vec::new()));
        };
        let mut out = Vec::new();
        if !first.text.contains('=') {
            let mut parts = split_whitespace_ranges_n(rest, 2);
            let (Some((ks, ke)), Some((vs, ve))) = (parts.next(), parts.next()) else {
                return Err(ParseErrorKind::Syntax(format!(
                    "{key} must have two arguments"
                )));
            };
            out.push(self.word(&rest[ks..ke], base + ks, base + ke));
            out.push(self.word(&rest[vs..ve], base + vs, base + ve));
            out.push(self.word("", base + ve, base + ve));
            return Ok(Args::Values(out));
        }
        for w in &words {
            let Some(eq) = w.text.find('=') else {
                return Err(ParseErrorKind::Syntax(format!(
                    "Syntax error - can't find = in {}. Must be of the form: name=value",
                    crate::text::go_quote(&w.text)
                )));
            };
            let eq_pos = (w.start + eq).min(w.end);
            out.push(self.word(&w.text[..eq], base + w.start, base + eq_pos));
            out.push(self.word(&w.text[eq + 1..], base + eq_pos + 1, base + w.end));
            out.push(self.word("=", base + eq_pos, base + eq_pos + 1));
        }
        Ok(Args::Values(out))
    }

    /// HEALTHCHECK: TYPE (up to the first whitespace byte), then the CMD rule.
    fn health_config(&self, rest: &str, base: usize) -> Result<(Args, bool), ParseErrorKind> {
        let bytes = rest.as_bytes();
        let sep = bytes
            .iter()
            .position(|&b| crate::text::is_space_byte(b))
            .unwrap_or(bytes.len());
        if sep == 0 {
            return Ok((Args::Values(Vec::new()), false));
        }
        let next = bytes[sep..]
            .iter()
            .position(|&b| !crate::text::is_space_byte(b))
            .map_or(bytes.len(), |i| sep + i);
        let typ = String::from_utf8_lossy(&bytes[..sep]).into_owned();
        let cmd_text = String::from_utf8_lossy(&bytes[next..]).into_owned();
        let mut values = vec![self.word(typ, base, base + sep)];
        let (cmd, json) = self.maybe_json(&cmd_text, base + next)?;
        if let Args::Values(v) = cmd {
            values.extend(v);
        }
        Ok((Args::Values(values), json))
    }
}

/// The keyword lower-cased for dispatch (Go's `strings.ToLower`), without
/// allocating for the usual ASCII keywords.
fn dispatch_name(keyword: &str) -> std::borrow::Cow<'_, str> {
    const DISPATCHED: [&str; 18] = [
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    ];
    if keyword.is_ascii() && keyword.len() <= 11 {
        let mut buf = [0u8; 11];
        let lower = buf.get_mut(..keyword.len()).unwrap_or_default();
        lower.copy_from_slice(keyword.as_bytes());
        lower.make_ascii_lowercase();
        if let Some(name) = DISPATCHED.iter().find(|k| k.as_bytes() == &*lower) {
            return std::borrow::Cow::Borrowed(name);
        }
    }
    std::borrow::Cow::Owned(keyword.to_lowercase())
}

/// Heredocs are looked for in ADD, COPY and RUN (also as ONBUILD triggers),
/// never in the JSON form.
fn can_contain_heredoc(instruction: &Instruction) -> bool {
    let target = match &instruction.args {
        Args::Trigger(sub) if instruction.keyword.text.eq_ignore_ascii_case("onbuild") => sub,
        _ => instruction,
    };
    matches!(
        dispatch_name(&target.keyword.text).as_ref(),
        "add" | "copy" | "run"
    ) && !target.json
}
