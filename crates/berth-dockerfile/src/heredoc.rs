//! Heredoc words (`<<EOF`, `<<-'EOF'`, `3<<EOF`) and finding them in an
//! instruction line.

use crate::ast::Heredoc;
use crate::shell::{EnvLookup, Lexer};
use crate::ParseErrorKind;

/// No variables: heredoc words are lexed for quotes only.
struct NoEnv;

impl EnvLookup for NoEnv {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Parses one word as a heredoc start. `Ok(None)` when it is not one.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ParseErrorKind> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (fd_text, rest) = word.split_at(digits);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = if fd_text.is_empty() {
        0
    } else {
        fd_text.parse().unwrap_or(u32::MAX)
    };
    let mut lexer = Lexer::new('\\');
    lexer.skip_unset_env = true;
    let words = lexer
        .process_words(rest, &NoEnv)
        .map_err(|e| ParseErrorKind::Syntax(e.to_string()))?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    lexer.raw_quotes = true;
    let raw_words = lexer
        .process_words(rest, &NoEnv)
        .map_err(|e| ParseErrorKind::Syntax(e.to_string()))?;
    let [raw_name] = raw_words.as_slice() else {
        return Err(ParseErrorKind::Syntax(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        )));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand: quotes(name) == quotes(raw_name),
        chomp,
        fd,
    }))
}

/// Every heredoc started on an instruction line, in order. A bare `<<` or
/// `<<-` joins the word after it (`RUN <<- EOF`).
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
    let mut lexer = Lexer::new('\\');
    lexer.raw_quotes = true;
    lexer.raw_escapes = true;
    lexer.skip_unset_env = true;
    let words = lexer.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        let bare = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let candidate = if bare == "<<" || bare == "<<-" {
            match iter.next() {
                Some(next) => format!("{word} {next}"),
                None => word.clone(),
            }
        } else {
            word.clone()
        };
        if let Some(doc) = parse_heredoc(&candidate)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Strips leading tabs from every line of a `<<-` body.
pub fn chomp_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}
