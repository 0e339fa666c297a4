//! The pattern list and its matching strategies.

use crate::clean::{clean_path, parent_dir};
use crate::error::IgnoreError;
use crate::pattern::Pattern;
use crate::syntax::is_valid_glob;

/// An ordered list of compiled `.dockerignore` patterns.
///
/// Paths given to the match methods are slash-separated and relative to the
/// build context (`src/main.rs`, not `./src/main.rs`). They are used as given:
/// the methods do not clean them. The result is `true` when the path is
/// *excluded* from the context.
///
/// Patterns are checked in order and the last one that applies wins. An
/// ordinary pattern excludes a path that it matches, or whose parent
/// directory (at any depth) it matches; a `!` pattern re-includes in the same
/// way. Patterns that cannot change the current answer are skipped, which
/// also means a broken pattern only reports its error when it is reached.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// Per-pattern results for a directory, handed to
/// [`PatternMatcher::matches_using_parent_results`] when matching the
/// directory's children.
///
/// `MatchInfo::default()` means "no information": the parents are then
/// checked from scratch, which is also right for entries at the context root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

impl MatchInfo {
    /// Whether this carries no parent information.
    pub fn is_empty(&self) -> bool {
        self.parent_matched.is_empty()
    }
}

impl PatternMatcher {
    /// Builds a matcher from patterns as they come from
    /// [`read_patterns`](crate::read_patterns) (or any list of strings).
    ///
    /// Each pattern is trimmed of whitespace; empty ones are dropped. The rest
    /// is cleaned like Go's `filepath.Clean` (see [`clean_path`]); a leading
    /// `!` then marks an exception.
    ///
    /// # Errors
    ///
    /// [`IgnoreError::IllegalExclusion`] for a lone `!`, and
    /// [`IgnoreError::BadPattern`] for a pattern Go's `filepath.Match` calls
    /// malformed (`[]a]`, `[-]`, `[x-]`, `[a-b-c]`, an unclosed `[`, a lone
    /// trailing `\`). Some problems only show up when the pattern is used;
    /// see [`IgnoreError::BadPattern`].
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, IgnoreError> {
        let mut compiled = Vec::with_capacity(patterns.len());
        let mut exclusions = false;
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean_path(trimmed);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(IgnoreError::IllegalExclusion),
                Some(rest) => (true, rest),
                None => (false, cleaned.as_ref()),
            };
            if !is_valid_glob(body) {
                return Err(IgnoreError::BadPattern {
                    pattern: body.to_owned(),
                });
            }
            exclusions |= exclusion;
            compiled.push(Pattern::new(body.to_owned(), exclusion));
        }
        Ok(PatternMatcher {
            patterns: compiled,
            exclusions,
        })
    }

    /// Whether any pattern is a `!` exception. When there are none, a walker
    /// can skip the contents of an excluded directory entirely.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// The active patterns, in order (empty ones dropped).
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are no active patterns (nothing is ever excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Upstream `MatchesOrParentMatches`: whether `path` is excluded, taking
    /// every parent directory into account.
    ///
    /// # Errors
    ///
    /// [`IgnoreError::BadPattern`] when a pattern that has to be evaluated
    /// cannot be compiled (see [`MatchKind::Invalid`](crate::MatchKind)).
    pub fn matches_or_parent_matches(&self, path: &str) -> Result<bool, IgnoreError> {
        let parent = parent_dir(path);
        let has_parent = parent != ".";
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.is_exclusion() != matched {
                continue;
            }
            let mut hit = pattern.matches(path)?;
            if !hit && has_parent {
                hit = any_ancestor_matches(pattern, &parent);
            }
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }

    /// Upstream `MatchesExact`: like
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches) but
    /// without looking at parent directories.
    ///
    /// # Errors
    ///
    /// As for [`matches_or_parent_matches`](Self::matches_or_parent_matches).
    pub fn matches_exact(&self, path: &str) -> Result<bool, IgnoreError> {
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.is_exclusion() != matched {
                continue;
            }
            if pattern.matches(path)? {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }

    /// Upstream `MatchesUsingParentResults`: like
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches), but the
    /// caller passes the [`MatchInfo`] returned for the parent directory, so a
    /// tree walk costs one match per pattern and entry instead of one per
    /// pattern, entry and ancestor. Pass `&MatchInfo::default()` for entries
    /// at the root of the context (or when nothing is known about the
    /// parent). The returned `MatchInfo` is what to pass for this entry's
    /// children if it is a directory.
    ///
    /// # Errors
    ///
    /// [`IgnoreError::WrongParentCount`] when `parent` came from a matcher
    /// with a different number of patterns; otherwise as for
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches).
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> Result<(bool, MatchInfo), IgnoreError> {
        let known = &parent.parent_matched;
        if !known.is_empty() && known.len() != self.patterns.len() {
            return Err(IgnoreError::WrongParentCount {
                expected: self.patterns.len(),
                got: known.len(),
            });
        }
        let mut info = vec![false; self.patterns.len()];
        let mut matched = false;
        let mut parent_path = None;
        for ((pattern, slot), &parent_hit) in self
            .patterns
            .iter()
            .zip(info.iter_mut())
            .zip(known.iter().chain(std::iter::repeat(&false)))
        {
            let mut hit = parent_hit;
            if !hit {
                if pattern.is_exclusion() != matched {
                    continue;
                }
                hit = pattern.matches(path)?;
                if !hit && known.is_empty() {
                    // No parent information: check the ancestors directly.
                    let parent: &str = parent_path.get_or_insert_with(|| parent_dir(path));
                    if parent != "." {
                        hit = any_ancestor_matches(pattern, parent);
                    }
                }
            }
            *slot = hit;
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok((
            matched,
            MatchInfo {
                parent_matched: info,
            },
        ))
    }

    /// Upstream `MatchesUsingParentResult` (deprecated there): the caller
    /// passes only whether the parent directory was excluded. This gives
    /// wrong answers when an exception re-includes something below an
    /// excluded directory and a later pattern excludes it again; prefer
    /// [`matches_using_parent_results`](Self::matches_using_parent_results).
    ///
    /// # Errors
    ///
    /// As for [`matches_or_parent_matches`](Self::matches_or_parent_matches).
    pub fn matches_using_parent_result(
        &self,
        path: &str,
        parent_matched: bool,
    ) -> Result<bool, IgnoreError> {
        let mut matched = parent_matched;
        for pattern in &self.patterns {
            if pattern.is_exclusion() != matched {
                continue;
            }
            if pattern.matches(path)? {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }

    /// Upstream's deprecated `(*PatternMatcher).Matches`: like
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches) but
    /// only the single ancestor with as many components as the pattern is
    /// tried (so `**/dir` does not match `dir/file`). Still used by the
    /// Docker CLI to decide whether the Dockerfile and `.dockerignore` are
    /// excluded (see
    /// [`trim_build_files_from_excludes`](crate::trim_build_files_from_excludes)).
    ///
    /// # Errors
    ///
    /// As for [`matches_or_parent_matches`](Self::matches_or_parent_matches).
    pub fn matches_legacy(&self, path: &str) -> Result<bool, IgnoreError> {
        let parent = parent_dir(path);
        let has_parent = parent != ".";
        let parent_components = parent.split('/').count();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.is_exclusion() != matched {
                continue;
            }
            let mut hit = pattern.matches(path)?;
            if !hit && has_parent && pattern.components() <= parent_components {
                hit = pattern.matches_quiet(leading_components(&parent, pattern.components()));
            }
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }
}

/// Tries `pattern` on each ancestor prefix of `parent` (`a`, `a/b`, … up to
/// `parent` itself), shortest first. Errors count as "no match", as upstream.
fn any_ancestor_matches(pattern: &Pattern, parent: &str) -> bool {
    for (i, b) in parent.bytes().enumerate() {
        if b == b'/' && pattern.matches_quiet(parent.get(..i).unwrap_or("")) {
            return true;
        }
    }
    pattern.matches_quiet(parent)
}

/// The first `count` `/`-separated components of `path`, joined.
fn leading_components(path: &str, count: usize) -> &str {
    let mut seen = 0;
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' {
            seen += 1;
            if seen == count {
                return path.get(..i).unwrap_or("");
            }
        }
    }
    path
}

/// Upstream's package-level `MatchesOrParentMatches`: builds a matcher, cleans
/// `path`, and reports `false` for a path that cleans to `.`.
///
/// # Errors
///
/// Construction errors from [`PatternMatcher::new`] and match errors.
pub fn matches_or_parent_matches<S: AsRef<str>>(
    path: &str,
    patterns: &[S],
) -> Result<bool, IgnoreError> {
    let pm = PatternMatcher::new(patterns)?;
    let path = clean_path(path);
    if path == "." {
        return Ok(false);
    }
    pm.matches_or_parent_matches(&path)
}

/// Upstream's deprecated package-level `Matches`: builds a matcher, cleans
/// `path`, reports `false` for `.`, and otherwise uses
/// [`PatternMatcher::matches_legacy`].
///
/// # Errors
///
/// Construction errors from [`PatternMatcher::new`] and match errors.
pub fn matches_legacy<S: AsRef<str>>(path: &str, patterns: &[S]) -> Result<bool, IgnoreError> {
    let pm = PatternMatcher::new(patterns)?;
    let path = clean_path(path);
    if path == "." {
        return Ok(false);
    }
    pm.matches_legacy(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading() {
        assert_eq!(leading_components("a/b/c", 1), "a");
        assert_eq!(leading_components("a/b/c", 2), "a/b");
        assert_eq!(leading_components("a/b/c", 3), "a/b/c");
        assert_eq!(leading_components("/a", 1), "");
    }

    #[test]
    fn legacy_checks_one_ancestor_only() {
        assert!(!matches_legacy("dir/file", &["**/dir"]).unwrap());
        assert!(matches_or_parent_matches("dir/file", &["**/dir"]).unwrap());
        assert!(matches_legacy("docs/README.md", &["docs"]).unwrap());
        assert!(!matches_legacy(".", &["*"]).unwrap());
    }

    #[test]
    fn wrong_parent_count() {
        let pm = PatternMatcher::new(&["a", "b"]).unwrap();
        let other = PatternMatcher::new(&["a"]).unwrap();
        let (_, info) = other
            .matches_using_parent_results("a", &MatchInfo::default())
            .unwrap();
        let err = pm.matches_using_parent_results("a/x", &info).unwrap_err();
        assert_eq!(err.to_string(), "wrong number of values in parentMatched");
    }

    #[test]
    fn errors_only_when_reached() {
        // The broken pattern is skipped because `**` already matched.
        let pm = PatternMatcher::new(&["**", "[Local-Only]"]).unwrap();
        assert!(pm.matches_or_parent_matches("x").unwrap());
        let pm = PatternMatcher::new(&["[Local-Only]"]).unwrap();
        let err = pm.matches_or_parent_matches("x").unwrap_err();
        assert_eq!(err.to_string(), "syntax error in pattern");
    }
}
