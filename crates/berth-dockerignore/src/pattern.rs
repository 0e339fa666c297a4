//! One compiled pattern.
//!
//! Upstream sorts each pattern into one of four kinds the first time it is
//! used, and this crate does the same once, at construction:
//!
//! * **exact** – no wildcard, escape or bracket: the path must equal the
//!   pattern;
//! * **prefix** – such a pattern ending in `**`: the path must start with the
//!   pattern minus the `**` (so `dir/**` matches `dir/x` but not `dir`);
//! * **suffix** – a pattern *starting* with `**` whose remaining text is
//!   plain: the path must end with the pattern minus the `**` (so `**file`
//!   also matches `profile`), and `**/foo` also matches `foo` itself;
//! * **regexp** – everything else, translated into the same Go regular
//!   expression upstream builds (`*` → `[^/]*`, `?` → `[^/]`, `**/` →
//!   `(.*/)?`, a final `**` → `.*`, `\x` kept as a regexp escape, brackets
//!   passed through, `.+()$` escaped) and run by [`crate::regex`]. Upstream
//!   also intends to escape `|`, `{` and `}` but its lookup table drops
//!   them, so in such patterns they act as regexp alternation and counted
//!   repetition; this crate does the same.

use crate::error::IgnoreError;
use crate::regex::Regex;
use std::fmt;

/// How a pattern is matched, as decided by upstream's compile step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// Whole-path string equality.
    Exact,
    /// The path starts with the pattern without its trailing `**`.
    Prefix,
    /// The path ends with the pattern without its leading `**`.
    Suffix,
    /// A regular expression (see [`Pattern::regex_source`]).
    Regexp,
    /// The derived regular expression does not compile; matching with this
    /// pattern fails with [`IgnoreError::BadPattern`] every time.
    Invalid,
}

#[derive(Debug, Clone)]
enum Compiled {
    Exact,
    Prefix,
    Suffix,
    Regexp(Regex),
    Invalid,
}

/// A cleaned, precompiled pattern held by a
/// [`PatternMatcher`](crate::PatternMatcher).
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    components: usize,
    compiled: Compiled,
    regex_source: Option<String>,
}

impl Pattern {
    /// Compiles a cleaned pattern (without its `!`). `text` must already have
    /// passed the syntax check.
    pub(crate) fn new(text: String, exclusion: bool) -> Pattern {
        let (kind, source) = translate(&text);
        let (compiled, regex_source) = match kind {
            MatchKind::Exact => (Compiled::Exact, None),
            MatchKind::Prefix => (Compiled::Prefix, None),
            MatchKind::Suffix => (Compiled::Suffix, None),
            MatchKind::Regexp | MatchKind::Invalid => match Regex::new(&source) {
                Ok(re) => (Compiled::Regexp(re), Some(source)),
                Err(_) => (Compiled::Invalid, Some(source)),
            },
        };
        Pattern {
            components: text.split('/').count(),
            text,
            exclusion,
            compiled,
            regex_source,
        }
    }

    /// The cleaned pattern text, without the leading `!` of an exclusion.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception that re-includes paths.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// How this pattern is matched.
    pub fn match_kind(&self) -> MatchKind {
        match self.compiled {
            Compiled::Exact => MatchKind::Exact,
            Compiled::Prefix => MatchKind::Prefix,
            Compiled::Suffix => MatchKind::Suffix,
            Compiled::Regexp(_) => MatchKind::Regexp,
            Compiled::Invalid => MatchKind::Invalid,
        }
    }

    /// For [`MatchKind::Regexp`] and [`MatchKind::Invalid`] patterns, the Go
    /// regular expression upstream derives from the pattern (for example
    /// `^(.*/)?[^/]*\.txt$` for `**/*.txt`).
    pub fn regex_source(&self) -> Option<&str> {
        self.regex_source.as_deref()
    }

    /// Number of `/`-separated components, used by the legacy matcher.
    pub(crate) fn components(&self) -> usize {
        self.components
    }

    /// Matches `path` against this pattern alone (no parent logic).
    pub(crate) fn matches(&self, path: &str) -> Result<bool, IgnoreError> {
        let text = self.text.as_bytes();
        let path_bytes = path.as_bytes();
        match &self.compiled {
            Compiled::Exact => Ok(path == self.text),
            Compiled::Prefix => {
                let stem = text.get(..text.len().saturating_sub(2)).unwrap_or(&[]);
                Ok(path_bytes.starts_with(stem))
            }
            Compiled::Suffix => {
                let tail = text.get(2..).unwrap_or(&[]);
                if path_bytes.ends_with(tail) {
                    return Ok(true);
                }
                // `**/foo` also matches `foo`.
                Ok(tail.first() == Some(&b'/') && tail.get(1..) == Some(path_bytes))
            }
            Compiled::Regexp(re) => Ok(re.is_match(path)),
            Compiled::Invalid => Err(IgnoreError::BadPattern {
                pattern: self.text.clone(),
            }),
        }
    }

    /// Matches `path` when it is fine to swallow errors (upstream ignores
    /// errors when probing parent directories).
    pub(crate) fn matches_quiet(&self, path: &str) -> bool {
        self.matches(path).unwrap_or(false)
    }
}

impl fmt::Display for Pattern {
    /// Shows the cleaned pattern without any `!`, like upstream's `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Upstream's compile step: decides the kind and builds the regular
/// expression text (meaningful for [`MatchKind::Regexp`] only).
fn translate(pattern: &str) -> (MatchKind, String) {
    let mut re = String::with_capacity(pattern.len() * 2 + 2);
    re.push('^');
    let mut kind = MatchKind::Exact;
    let mut chars = pattern.chars().peekable();
    // Go's text/scanner silently drops a byte-order mark at the very start.
    if chars.peek() == Some(&'\u{FEFF}') {
        chars.next();
    }
    let mut first = true;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is the same as `**`.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    // Final `**`: everything below.
                    if kind == MatchKind::Exact {
                        kind = MatchKind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = MatchKind::Regexp;
                    }
                } else {
                    // Inner `**`: any number of directories, including none.
                    re.push_str("(.*/)?");
                    kind = MatchKind::Regexp;
                }
                if first {
                    kind = MatchKind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = MatchKind::Regexp;
            }
            '?' => {
                re.push_str("[^/]");
                kind = MatchKind::Regexp;
            }
            // Upstream means to escape `.+()|{}$`, but its lookup table only
            // has room for characters below 64, so `|`, `{` and `}` stay
            // regexp syntax (alternation, counted repetition).
            '.' | '+' | '(' | ')' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    kind = MatchKind::Regexp;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                kind = MatchKind::Regexp;
            }
            _ => re.push(ch),
        }
        first = false;
    }
    if kind == MatchKind::Regexp {
        re.push('$');
    }
    (kind, re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: &str) -> MatchKind {
        Pattern::new(p.to_owned(), false).match_kind()
    }

    fn hit(p: &str, path: &str) -> bool {
        Pattern::new(p.to_owned(), false).matches(path).unwrap()
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("a^b"), MatchKind::Exact);
        assert_eq!(kind("dir**"), MatchKind::Prefix);
        assert_eq!(kind("**.txt"), MatchKind::Suffix);
        assert_eq!(kind("**/a/**"), MatchKind::Regexp);
        assert_eq!(kind("[Local-Only]"), MatchKind::Invalid);
        assert_eq!(kind("[[:nope:]]"), MatchKind::Invalid);
        assert_eq!(kind("\\pL"), MatchKind::Invalid);
    }

    #[test]
    fn regexp_quirks_follow_go() {
        // `^` is literal in an exact pattern but an anchor in a regexp.
        assert!(hit("a^b", "a^b"));
        assert!(!hit("a^b*", "a^b"));
        // Suffix kind: `**file` is a plain suffix test.
        assert!(hit("**file", "profile"));
        assert!(hit("**/file", "file"));
        assert!(!hit("**/file", "profile"));
        // Escaped letters are regexp escapes, as upstream.
        assert!(hit("a\\d", "a1"));
        assert!(!hit("a\\d", "ad"));
        // POSIX classes inside brackets are understood by Go's regexp.
        assert!(hit("[[:alpha:]]", "x"));
        assert!(!hit("[[:alpha:]]", "1"));
        // `*` inside brackets becomes `[^/]*` first, and Go reads the result.
        assert!(hit("[*]", "]"));
        assert!(hit("[*]", "^/]"));
        // `**/` in the middle matches any number of directories.
        assert!(hit("a/**/b", "a/b"));
        assert!(hit("a/**/b", "a/x/y/b"));
        assert!(!hit("a/**/b", "a/xb"));
        // `.` produced by `**` does not cross a newline, negated classes do.
        assert!(!hit("a/**/b", "a/x\ny/b"));
        assert!(hit("a*b", "a\nb"));
        // Upstream leaves `|`, `{` and `}` unescaped: alternation and counts
        // once the pattern is a regexp, literal text while it is exact.
        assert!(hit("x*|y", "x/deep/path"));
        assert!(hit("x*|y", "some/y"));
        assert!(!hit("x*|y", "z"));
        assert!(hit("a{2}*", "aab"));
        assert!(!hit("a{2}*", "a{2}b"));
        assert!(hit("a|b", "a|b"));
        assert!(!hit("a|b", "a"));
    }

    #[test]
    fn bom_is_skipped_by_the_regexp_translation_only() {
        let p = Pattern::new("\u{FEFF}a*".to_owned(), false);
        assert_eq!(p.regex_source(), Some("^a[^/]*$"));
        assert!(p.matches("abc").unwrap());
        let exact = Pattern::new("\u{FEFF}a".to_owned(), false);
        assert!(!exact.matches("a").unwrap());
        assert!(exact.matches("\u{FEFF}a").unwrap());
    }

    #[test]
    fn invalid_fails_every_time() {
        let p = Pattern::new("[Local-Only]".to_owned(), false);
        assert!(p.matches("x").is_err());
        assert!(p.matches("x").is_err());
        assert!(!p.matches_quiet("x"));
    }
}
