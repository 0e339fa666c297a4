//! `.dockerignore` reading and matching with moby's `patternmatcher` semantics.
//!
//! Vocabulary: a *pattern* is one cleaned line of an ignore file; a leading `!`
//! makes it an *exclusion* (an exception that re-includes a path). A path is
//! ignored when the last pattern that applies to it, or to one of its parent
//! directories, is not an exclusion.
//!
//! The behaviour follows `github.com/moby/patternmatcher` v0.6.1 (the version
//! BuildKit vendors) and its `ignorefile` package:
//!
//! * [`read_patterns`] turns ignore-file bytes into patterns (`ReadAll`);
//! * [`PatternMatcher::new`] cleans and checks them;
//! * [`PatternMatcher::matches_or_parent_matches`] answers for one path, and
//!   [`PatternMatcher::matches_using_parent_results`] does the same cheaply
//!   during a directory walk;
//! * [`ignore_file_candidates`] / [`read_ignore_file`] pick the ignore file
//!   (`<Dockerfile>.dockerignore` before `.dockerignore`), and
//!   [`always_included`] names the files the builder always gets.
//!
//! Pattern syntax, after trimming and cleaning: `*` matches any run of
//! characters other than `/`, `?` one such character, `**` any number of
//! directories (`**/foo` also matches `foo`, a final `**` everything below),
//! `[...]`/`[^...]` a character class, `\x` escapes `x`; everything else is
//! literal and the whole path must match. Upstream implements the wildcard
//! forms by building a Go regular expression; this crate builds the same text
//! and reads it with Go's rules, so oddities carry over: an escaped letter is
//! a regexp escape (`\d` matches a digit), and `|`, `{` and `}`, which
//! upstream fails to escape, act as alternation and counted repetition once a
//! pattern contains a wildcard, bracket or escape. Known differences: Unicode
//! classes (`\p{..}`, reachable only by escaping the letter `p`) are reported
//! as [`IgnoreError::BadPattern`] instead of being matched, and Go's
//! "expression too large" limit is reproduced only approximately (it needs
//! patterns expanding to millions of regexp instructions). Patterns and paths
//! are `&str`, so bytes that are not UTF-8 cannot be expressed;
//! [`read_patterns`] replaces them with U+FFFD.
//!
//! Matching cost is linear in the path length times the pattern length for
//! any pattern (no backtracking), and the common pattern shapes are plain
//! string comparisons.
//!
//! # Walking a build context
//!
//! ```
//! use berth_dockerignore::{read_patterns, MatchInfo, PatternMatcher};
//!
//! let patterns = read_patterns(b"target\n*.log\n!keep.log\n")?;
//! let pm = PatternMatcher::new(&patterns)?;
//!
//! // Entries at the root get empty parent information...
//! let (target_excluded, target_info) =
//!     pm.matches_using_parent_results("target", &MatchInfo::default())?;
//! assert!(target_excluded);
//! // ...and children get their directory's `MatchInfo`.
//! let (bin_excluded, _) = pm.matches_using_parent_results("target/app", &target_info)?;
//! assert!(bin_excluded);
//!
//! assert!(pm.matches_or_parent_matches("debug.log")?);
//! assert!(!pm.matches_or_parent_matches("keep.log")?);
//! # Ok::<(), berth_dockerignore::IgnoreError>(())
//! ```

mod clean;
mod error;
mod ignorefile;
mod matcher;
mod pattern;
mod regex;
mod syntax;

pub use clean::clean_path;
pub use error::IgnoreError;
pub use ignorefile::{
    always_included, ignore_file_candidates, read_ignore_file, read_patterns,
    trim_build_files_from_excludes, IgnoreFile, DEFAULT_DOCKERFILE, DOCKERIGNORE,
};
pub use matcher::{matches_legacy, matches_or_parent_matches, MatchInfo, PatternMatcher};
pub use pattern::{MatchKind, Pattern};
