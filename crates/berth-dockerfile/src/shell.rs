//! Shell-word expansion as BuildKit's `shell.Lex`.
//!
//! This is the Dockerfile flavour of shell expansion that BuildKit applies to
//! instruction arguments (`frontend/dockerfile/shell`): it is *not* a shell.
//! A word is read once, left to right:
//!
//! * `'...'` keeps everything literally; `"..."` keeps everything except `$`
//!   expansions and the escapes `E"`, `E$` and `EE` (E being the escape
//!   character, `\` unless the Dockerfile says `` # escape=` ``). Outside
//!   quotes E makes the next character literal; a final lone E is dropped.
//! * `$NAME` and `${NAME}` expand a variable; a name is letters, digits and
//!   `_`, or a run of digits (`$10`), or one special parameter character
//!   (`@ * # ? - $ !`). Positional and special parameters are simply looked
//!   up like any name, so they are unset unless the environment has them.
//!   A `$` not followed by a name stays a `$`.
//! * `${V:-w}` `${V-w}` `${V:+w}` `${V+w}` `${V:?w}` `${V?w}` behave as in a
//!   POSIX shell (the colon forms treat an empty value like an unset one);
//!   `${V?}` fails with `V: is not allowed to be unset`, `${V:?}` on an empty
//!   value with `V: is not allowed to be empty`, and a non-empty `w` replaces
//!   those texts.
//! * `${V#p}` `${V##p}` `${V%p}` `${V%%p}` remove the shortest / longest
//!   matching prefix / suffix, and `${V/p/r}` `${V//p/r}` replace the first /
//!   every match of the pattern `p` (rules below).
//! * Anything else after a name in braces (`${V=x}`, `${V:=x}`, `${V:#p}`,
//!   `${V:x}`...) is an `unsupported modifier` error; `${}`, `${:...}` and
//!   `${{...` are a `bad substitution`.
//!
//! Patterns follow BuildKit, which translates them to Go regular expressions:
//! `*` matches any run of characters and `?` any one character, neither of
//! them matching a newline; `\*`, `\?`, `\\` are literal, `\}` and `\/` are
//! `}` and `/`; any other backslash escape is an error. There are **no**
//! bracket expressions in BuildKit's patterns: `[`, `]` are literal
//! characters. In `${V//p/r}` the replacement `r` is a Go regexp template, so
//! `$0` (put there with `\$0` or `'$0'`) stands for the matched text and `$$`
//! for a dollar; the single-replacement form `${V/p/r}` uses `r` literally.
//!
//! [`Lexer::process_words`] additionally splits the result into words at
//! whitespace that is neither quoted nor escaped, including whitespace that
//! comes from the value of an unquoted variable.
//!
//! **Upstream quirk not kept.** BuildKit shares one word buffer across the
//! nested scans of `${V<op>...}`, so its `ProcessWords` drops a partial word
//! before such an expansion (`ab${X:-c}d` gives `cd`). Here each nesting
//! level has its own buffer: `ab${X:-c}d` gives `abcd`, as `process_word`
//! does and as a shell would.
//!
//! Differences from upstream: nesting of `${...}` is limited to
//! [`MAX_NESTING`] levels (an [`ExpandErrorKind::TooDeep`] error beyond that;
//! Go has no limit), and variables are looked up through [`EnvLookup`], which
//! is case-sensitive (BuildKit on Windows is not).

mod pattern;
mod unicode;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use self::pattern::{replace_all, replace_first, reverse_pattern, trim_prefix, Pattern};
use self::unicode::{go_quote, is_digit, is_letter, is_space};

/// How deeply `${...}` expansions may nest inside one another.
pub const MAX_NESTING: usize = 128;

/// A set of variables to expand words with.
///
/// `None` means unset; `Some("")` is set but empty, which matters for the
/// forms without a colon (`${V-x}`, `${V?}`...).
pub trait EnvLookup {
    /// The value of the variable `name`, if it is set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> EnvLookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// A list of `(name, value)` pairs; when a name repeats the last one wins.
impl EnvLookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Same as the slice: the last pair with the name wins.
impl EnvLookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl<T: EnvLookup + ?Sized> EnvLookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// The expander, with BuildKit's options (`shell.Lex`).
///
/// All fields are plain options; [`Lexer::new`] turns all the flags off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\` by default, `` ` `` with `# escape=``.
    pub escape: char,
    /// Keep the quote characters of quoted parts in the output.
    pub raw_quotes: bool,
    /// Keep the escape characters in the output (the escaped character is
    /// still taken literally).
    pub raw_escapes: bool,
    /// Treat `'` and `"` as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written (`$V`, `${V}`,
    /// `${V:-x}`...) instead of expanding them.
    pub skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

/// The full result of an expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The expanded word, quotes removed, no field splitting.
    pub word: String,
    /// The same expansion split into words (as [`Lexer::process_words`]).
    pub words: Vec<String>,
    /// Names that were looked up and found set (even if empty).
    pub matched: BTreeSet<String>,
    /// Names that were looked up and found unset.
    pub unmatched: BTreeSet<String>,
}

/// An expansion failure: the word and what went wrong in it.
///
/// Displays like BuildKit's error: `failed to process "<word>": <kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// The word that was being expanded, as given.
    pub word: String,
    /// What went wrong.
    pub kind: ExpandErrorKind,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failed to process {}: {}",
            go_quote(&self.word),
            self.kind
        )
    }
}

impl std::error::Error for ExpandError {}

/// The reasons an expansion fails, with BuildKit's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    /// A `'` without its closing quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A `"` without its closing quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${` without its closing brace.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${V/p` or `${V//p` without the `/` before the replacement.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:...}`, `${{...`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// An operator that Dockerfiles do not support (`=`, `:=`, `:#`...).
    /// Holds the operator as written; the end of the word shows as U+FFFD.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${V?msg}` or `${V:?msg}` with `V` unset.
    #[error("{name}: {message}")]
    Unset {
        /// The variable.
        name: String,
        /// The expanded `msg`, or `is not allowed to be unset`.
        message: String,
    },
    /// `${V:?msg}` with `V` set to the empty string.
    #[error("{name}: {message}")]
    Empty {
        /// The variable.
        name: String,
        /// The expanded `msg`, or `is not allowed to be empty`.
        message: String,
    },
    /// A pattern with an invalid backslash escape.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern as BuildKit reports it (reversed for `%` and `%%`).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `${...}` nested deeper than [`MAX_NESTING`] (berth's limit).
    #[error("syntax error: ${{...}} nested deeper than {MAX_NESTING} levels")]
    TooDeep,
}

impl Lexer {
    /// A lexer with the given escape character and every option off.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expands `word` into one string (BuildKit's `ProcessWord`).
    pub fn process_word(&self, word: &str, env: &dyn EnvLookup) -> Result<String, ExpandError> {
        if self.is_literal(word) {
            return Ok(word.to_string());
        }
        self.expand(word, env, false).map(|e| e.word)
    }

    /// True when expansion cannot change `word`: no `$`, no quotes (when
    /// they are processed), no escape character and no leading BOM.
    fn is_literal(&self, word: &str) -> bool {
        !word.starts_with('\u{FEFF}')
            && !word.chars().any(|c| {
                c == '$'
                    || c == self.escape
                    || (!self.skip_process_quotes && (c == '\'' || c == '"'))
            })
    }

    /// Expands `word` and splits it into words (BuildKit's `ProcessWords`).
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn EnvLookup,
    ) -> Result<Vec<String>, ExpandError> {
        self.process_word_with_matches(word, env).map(|e| e.words)
    }

    /// Expands `word` and reports which variables it referenced
    /// (BuildKit's `ProcessWordWithMatches`).
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn EnvLookup,
    ) -> Result<Expanded, ExpandError> {
        self.expand(word, env, true)
    }

    /// [`Lexer::process_word_with_matches`] without the split into words
    /// (`words` is left empty): for callers that need only the word and
    /// which variables it used.
    pub fn process_word_tracking(
        &self,
        word: &str,
        env: &dyn EnvLookup,
    ) -> Result<Expanded, ExpandError> {
        self.expand(word, env, false)
    }

    fn expand(
        &self,
        word: &str,
        env: &dyn EnvLookup,
        split: bool,
    ) -> Result<Expanded, ExpandError> {
        let mut scan = Scan::new(self, env, word);
        scan.split_words = split;
        match scan.stop_on(None, self.raw_escapes) {
            Ok((word, words)) => Ok(Expanded {
                word,
                words,
                matched: scan.matched,
                unmatched: scan.unmatched,
            }),
            Err(kind) => Err(ExpandError {
                word: word.to_string(),
                kind,
            }),
        }
    }
}

/// The state of one expansion (BuildKit's `shellWord`).
struct Scan<'a> {
    /// Whether [`Words`] splitting is wanted (not for `process_word`).
    split_words: bool,
    lexer: &'a Lexer,
    env: &'a dyn EnvLookup,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    depth: usize,
    /// The word being built; shared by all nesting levels, as upstream.
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// Word splitting state of one nesting level.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    in_word: bool,
    /// Off when the caller wants only the joined word: nothing is split.
    split: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, c: char) {
        if !self.split {
            return;
        }
        if is_space(c) {
            if self.in_word && !buf.is_empty() {
                self.done.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(buf, c);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, c: char) {
        if !self.split {
            return;
        }
        buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        if !self.split {
            return;
        }
        for c in s.chars() {
            self.add_char(buf, c);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        if !self.split {
            return;
        }
        buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.done.push(std::mem::take(buf));
        }
        self.done
    }
}

type Step<T> = Result<T, ExpandErrorKind>;

impl<'a> Scan<'a> {
    fn new(lexer: &'a Lexer, env: &'a dyn EnvLookup, word: &str) -> Self {
        let chars: Vec<char> = word.chars().collect();
        // Go's text/scanner skips a byte order mark at the very start.
        let pos = usize::from(chars.first() == Some(&'\u{FEFF}'));
        Scan {
            lexer,
            env,
            chars,
            pos,
            raw_escapes: lexer.raw_escapes,
            depth: 0,
            split_words: true,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(value) => {
                self.matched.insert(name.to_string());
                Some(value.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Reads up to `stop` (consumed) or the end of the word; `None` for the
    /// top level. Returns the text and its words.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Step<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let result = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut buf = String::new();
        let mut words = Words {
            split: self.split_words,
            ..Words::default()
        };
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(c) = self.peek() {
            if stop == Some(c) {
                self.pos += 1;
                return Ok((result, words.finish(&mut buf)));
            }
            if c == '$' {
                let value = self.dollar()?;
                result.push_str(&value);
                words.add_string(&mut buf, &value);
            } else if quotes && (c == '\'' || c == '"') {
                let value = if c == '\'' {
                    self.single_quoted()?
                } else {
                    self.double_quoted()?
                };
                result.push_str(&value);
                words.add_raw_string(&mut buf, &value);
            } else {
                self.pos += 1;
                let mut c = c;
                if c == self.lexer.escape {
                    if self.raw_escapes {
                        words.add_raw_char(&mut buf, c);
                        result.push(c);
                    }
                    match self.next() {
                        Some(escaped) => c = escaped,
                        None => break,
                    }
                    words.add_raw_char(&mut buf, c);
                } else {
                    words.add_char(&mut buf, c);
                }
                result.push(c);
            }
        }
        if stop.is_some() {
            // Always at the end of the word here; the caller turns this into
            // the "missing" error of the construct it was reading.
            return Err(ExpandErrorKind::MissingBrace);
        }
        Ok((result, words.finish(&mut buf)))
    }

    fn single_quoted(&mut self) -> Step<String> {
        let mut result = String::new();
        if let Some(q) = self.next() {
            if self.lexer.raw_quotes {
                result.push(q);
            }
        }
        loop {
            match self.next() {
                None => return Err(ExpandErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Step<String> {
        let mut result = String::new();
        if let Some(q) = self.next() {
            if self.lexer.raw_quotes {
                result.push(q);
            }
        }
        loop {
            match self.peek() {
                None => return Err(ExpandErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(mut c) => {
                    self.pos += 1;
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(c);
                        }
                        match self.peek() {
                            // A final escape is dropped; the quote is open.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                self.pos += 1;
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(c);
                }
            }
        }
    }

    /// Reads a name after `$` (or `${`).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && is_digit(c) {
                while let Some(d) = self.peek().filter(|&d| is_digit(d)) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !is_letter(c) && !is_digit(c) && c != '_' {
                break;
            }
            self.pos += 1;
            name.push(c);
        }
        name
    }

    /// Handles a `$` at the current position.
    fn dollar(&mut self) -> Step<String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        if self.depth >= MAX_NESTING {
            return Err(ExpandErrorKind::TooDeep);
        }
        self.depth += 1;
        let result = self.braced();
        self.depth -= 1;
        result
    }

    /// Reads a nested part of `${...}` up to `stop`; on an error at the end
    /// of the word, reports `missing` instead.
    fn nested(&mut self, stop: char, raw_escapes: bool, missing: ExpandErrorKind) -> Step<String> {
        match self.stop_on(Some(stop), raw_escapes) {
            Ok((text, _)) => Ok(text),
            Err(ExpandErrorKind::TooDeep) => Err(ExpandErrorKind::TooDeep),
            Err(_) if self.at_end() => Err(missing),
            Err(e) => Err(e),
        }
    }

    /// The rest of `${`, after the opening brace.
    fn braced(&mut self) -> Step<String> {
        let name = self.name();
        let first = self.next();
        // Go's string(rune(-1)) for the end of the word.
        let mut op_text = first.unwrap_or('\u{FFFD}').to_string();
        match first {
            Some('}') => Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = first == Some(':');
                let mut op = first;
                if null_is_unset {
                    op = self.next();
                    op_text.push(op.unwrap_or('\u{FFFD}'));
                }
                let pattern_op = matches!(op, Some('#' | '%'));
                if null_is_unset && pattern_op {
                    return Err(ExpandErrorKind::UnsupportedModifier(op_text));
                }
                let word = self.nested('}', pattern_op, ExpandErrorKind::MissingBrace)?;
                let value = self.get_env(&name);
                if self.lexer.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{op_text}{word}}}"));
                }
                let unset_like = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match op {
                    Some('-') => Ok(if unset_like {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if unset_like { String::new() } else { word }),
                    Some('?') => match value {
                        None => Err(ExpandErrorKind::Unset {
                            name,
                            message: message_or(word, "is not allowed to be unset"),
                        }),
                        Some(v) if null_is_unset && v.is_empty() => Err(ExpandErrorKind::Empty {
                            name,
                            message: message_or(word, "is not allowed to be empty"),
                        }),
                        Some(v) => Ok(v),
                    },
                    Some(c @ ('#' | '%')) => {
                        let (greedy, pattern) = match word.strip_prefix(c) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let value = value.unwrap_or_default();
                        if c == '#' {
                            trim_prefix(&pattern, &value, greedy).map_err(|reason| {
                                ExpandErrorKind::InvalidPattern { pattern, reason }
                            })
                        } else {
                            // The shortest / longest suffix is the shortest /
                            // longest prefix of the reversed value.
                            let reversed = reverse_pattern(&pattern);
                            let value: String = value.chars().rev().collect();
                            match trim_prefix(&reversed, &value, greedy) {
                                Ok(trimmed) => Ok(trimmed.chars().rev().collect()),
                                Err(reason) => Err(ExpandErrorKind::InvalidPattern {
                                    pattern: reversed,
                                    reason,
                                }),
                            }
                        }
                    }
                    _ => Err(ExpandErrorKind::UnsupportedModifier(op_text)),
                }
            }
            Some('/') => {
                let replace_every = self.peek() == Some('/');
                if replace_every {
                    self.pos += 1;
                }
                let pattern = self.nested('/', true, ExpandErrorKind::MissingSlash)?;
                let replacement = self.nested('}', true, ExpandErrorKind::MissingBrace)?;
                let value = self.get_env(&name);
                if self.lexer.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let re = Pattern::compile(&pattern, true)
                    .map_err(|reason| ExpandErrorKind::InvalidPattern { pattern, reason })?;
                let value = value.unwrap_or_default();
                Ok(if replace_every {
                    replace_all(&re, &value, &replacement)
                } else {
                    replace_first(&re, &value, &replacement)
                })
            }
            _ => Err(ExpandErrorKind::UnsupportedModifier(op_text)),
        }
    }
}

fn message_or(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        let e = env(&[("A", "x y")]);
        assert_eq!(
            lex.process_word("a`$A\\b", &e).ok().as_deref(),
            Some("a$A\\b")
        );
        assert_eq!(
            lex.process_word("\"`\"`$A\"", &e).ok().as_deref(),
            Some("\"$A")
        );
        assert_eq!(lex.process_word("\"\\\"", &e).ok().as_deref(), Some("\\"));
        assert_eq!(
            lex.process_words("a`  b $A", &e).ok(),
            Some(vec![
                "a ".to_string(),
                "b".to_string(),
                "x".to_string(),
                "y".to_string()
            ])
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let depth = 10_000;
        let word = format!("{}x{}", "${a:-".repeat(depth), "}".repeat(depth));
        let e = env(&[]);
        let run = move || Lexer::default().process_word(&word, &e).map_err(|e| e.kind);
        // A small stack on purpose: the limit must hold well within it.
        let handle = std::thread::Builder::new().stack_size(1 << 20).spawn(run);
        let result = handle.ok().map(|h| h.join().ok());
        assert_eq!(result, Some(Some(Err(ExpandErrorKind::TooDeep))));

        let ok = format!(
            "{}x{}",
            "\"${a:-".repeat(MAX_NESTING),
            "}\"".repeat(MAX_NESTING)
        );
        assert_eq!(
            Lexer::default()
                .process_word(&ok, &env(&[]))
                .ok()
                .as_deref(),
            Some("x")
        );
    }

    #[test]
    fn non_ascii() {
        let e = env(&[("한국", "어"), ("V", "éé€€")]);
        let lex = Lexer::default();
        assert_eq!(lex.process_word("$한국!", &e).ok().as_deref(), Some("어!"));
        assert_eq!(
            lex.process_word("${V%€}|${V%%€*}|${V#?}", &e)
                .ok()
                .as_deref(),
            Some("éé€|éé|é€€")
        );
        assert_eq!(
            lex.process_word("${V/é/ü}|${V//€/}", &e).ok().as_deref(),
            Some("üé€€|éé")
        );
        // A Devanagari vowel sign is not a letter for Go, so it ends the name.
        assert_eq!(
            lex.process_word("$क\u{093E}", &e).ok().as_deref(),
            Some("\u{093E}")
        );
        assert_eq!(
            lex.process_word("\u{FEFF}a\u{FEFF}", &e).ok().as_deref(),
            Some("a\u{FEFF}")
        );
    }

    #[test]
    fn error_messages() {
        let e = env(&[("E", "")]);
        let lex = Lexer::default();
        let msg = |w: &str| lex.process_word(w, &e).err().map(|e| e.to_string());
        assert_eq!(
            msg("${X?}").as_deref(),
            Some("failed to process \"${X?}\": X: is not allowed to be unset")
        );
        assert_eq!(
            msg("${E:?}").as_deref(),
            Some("failed to process \"${E:?}\": E: is not allowed to be empty")
        );
        assert_eq!(
            msg("${E=1}").as_deref(),
            Some("failed to process \"${E=1}\": unsupported modifier (=) in substitution")
        );
        assert_eq!(
            msg("${E").as_deref(),
            Some("failed to process \"${E\": unsupported modifier (\u{FFFD}) in substitution")
        );
        assert_eq!(
            msg("${E:-").as_deref(),
            Some("failed to process \"${E:-\": syntax error: missing '}'")
        );
        assert_eq!(
            msg("${E/a").as_deref(),
            Some("failed to process \"${E/a\": syntax error: missing '/' in ${}")
        );
        assert_eq!(
            msg("${}").as_deref(),
            Some("failed to process \"${}\": syntax error: bad substitution")
        );
        assert_eq!(msg("'a").as_deref(), Some("failed to process \"'a\": unexpected end of statement while looking for matching single-quote"));
        assert_eq!(
            msg("${E%a\\b}").as_deref(),
            Some("failed to process \"${E%a\\\\b}\": invalid pattern (\\ba) in substitution: invalid escape '\\b'")
        );
    }

    #[test]
    fn options() {
        let e = env(&[("S", "set")]);
        let lex = Lexer {
            skip_unset_env: true,
            ..Lexer::default()
        };
        assert_eq!(
            lex.process_word("$U ${U} ${U:-x} ${U/a/b} ${U//a/b} $S ${S:+y}", &e)
                .ok()
                .as_deref(),
            Some("$U ${U} ${U:-x} ${U/a/b} ${U/a/b} set y")
        );
        let lex = Lexer {
            raw_quotes: true,
            ..Lexer::default()
        };
        assert_eq!(
            lex.process_word("'a'\"$S\"", &e).ok().as_deref(),
            Some("'a'\"set\"")
        );
        let lex = Lexer {
            raw_escapes: true,
            ..Lexer::default()
        };
        assert_eq!(
            lex.process_word("a\\ b\"\\$S\"", &e).ok().as_deref(),
            Some("a\\ b\\$S")
        );
        let lex = Lexer {
            skip_process_quotes: true,
            ..Lexer::default()
        };
        assert_eq!(
            lex.process_word("'$S' \"x", &e).ok().as_deref(),
            Some("'set' \"x")
        );
    }

    #[test]
    fn words_keep_text_before_nested_expansion() {
        let e = env(&[]);
        let lex = Lexer::default();
        assert_eq!(
            lex.process_word("ab${X:-c}d", &e).ok().as_deref(),
            Some("abcd")
        );
        assert_eq!(
            lex.process_words("ab${X:-c}d", &e).ok(),
            Some(vec!["abcd".to_string()])
        );
        assert_eq!(
            lex.process_words("a \"b${X:-c d}\"e f", &e).ok(),
            Some(vec!["a".to_string(), "bc de".to_string(), "f".to_string()])
        );
        assert_eq!(
            lex.process_words("x ab${X}d", &e).ok(),
            Some(vec!["x".to_string(), "abd".to_string()])
        );
    }

    /// A cheap deterministic fuzz: nothing may panic, and the three entry
    /// points must agree on success.
    #[test]
    fn random_words_do_not_panic() {
        const ALPHABET: &[char] = &[
            '$', '{', '}', ':', '-', '+', '?', '#', '%', '/', '\\', '\'', '"', '*', 'a', 'b', ' ',
            'é', '\n', '=', '`', '0', '@', '[', ']',
        ];
        let e = env(&[("a", "x*y a\nb"), ("b", ""), ("ab", "$0")]);
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap_or(0)
        };
        for round in 0..20_000 {
            let len = rand(24);
            let word: String = (0..len).map(|_| ALPHABET[rand(ALPHABET.len())]).collect();
            let lex = Lexer {
                escape: if round % 3 == 0 { '`' } else { '\\' },
                raw_quotes: round % 5 == 0,
                raw_escapes: round % 7 == 0,
                skip_process_quotes: round % 11 == 0,
                skip_unset_env: round % 2 == 0,
            };
            let one = lex.process_word(&word, &e);
            let many = lex.process_words(&word, &e);
            assert_eq!(one.is_ok(), many.is_ok(), "{word:?}");
        }
    }

    #[test]
    fn replacement_template() {
        let e = env(&[("V", "a-b"), ("R", "<$0>")]);
        let lex = Lexer::default();
        assert_eq!(
            lex.process_word("${V//-/$R}|${V/-/$R}", &e).ok().as_deref(),
            Some("a<->b|a<$0>b")
        );
        assert_eq!(
            lex.process_word("${V//-/\\$0}", &e).ok().as_deref(),
            Some("a\\-b")
        );
    }
}
