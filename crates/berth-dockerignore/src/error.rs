//! The error type shared by the reader and the matcher.

/// Everything that can go wrong while reading ignore-file patterns or matching
/// paths against them.
///
/// The `Display` strings are the ones moby's Go code prints, so messages shown
/// to users read the same as Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IgnoreError {
    /// A pattern is malformed. Raised by [`PatternMatcher::new`] when Go's
    /// `filepath.Match` would reject the pattern (for example `[]a]`, `[x-]`,
    /// an unclosed `[` or a lone trailing `\`), or at match time when the
    /// regular expression upstream derives from the pattern does not compile
    /// (for example the reversed range in `[Local-Only]`).
    ///
    /// [`PatternMatcher::new`]: crate::PatternMatcher::new
    #[error("syntax error in pattern")]
    BadPattern {
        /// The cleaned pattern (without any leading `!`) that failed.
        pattern: String,
    },
    /// A pattern consisting of a lone `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// [`MatchInfo`](crate::MatchInfo) from a parent directory was produced by
    /// a matcher with a different number of patterns.
    #[error("wrong number of values in parentMatched")]
    WrongParentCount {
        /// Number of patterns in the matcher.
        expected: usize,
        /// Number of entries in the supplied parent information.
        got: usize,
    },
    /// An ignore-file line is 64 KiB or longer, which Go's line scanner
    /// (and therefore Docker) refuses.
    #[error("bufio.Scanner: token too long")]
    LineTooLong {
        /// 1-based number of the offending line.
        line: usize,
    },
}
