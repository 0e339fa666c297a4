//! The Dockerfile frontend: parser directives, the spanned syntax tree,
//! heredocs, typed instructions, shell-word expansion, build stages, the
//! `dump` printer and lint.
//!
//! It follows BuildKit's `frontend/dockerfile` packages; the conformance data
//! in `shared/conformance` checks it byte for byte.
//!
//! Vocabulary: the *parser* turns bytes into an [`ast::Dockerfile`] of
//! [`ast::Instruction`]s (keyword, flags, argument words, heredocs, each with a
//! [`Span`]). The *instruction layer* ([`instructions`]) types and validates
//! them; [`stages`] groups them into build stages with ARG scoping; [`shell`]
//! expands `$VARS`; [`lint`] reports problems as `FILE:LINE:COL: message`.
//!
//! ```
//! let df = berth_dockerfile::parse(b"FROM busybox\nRUN echo hi\n").unwrap();
//! assert_eq!(berth_dockerfile::dump(&df), "(from \"busybox\")\n(run \"echo hi\")\n");
//! ```

pub mod ast;
pub mod directives;
pub mod dump;
pub mod heredoc;
pub mod instructions;
pub(crate) mod json;
pub mod lint;
pub mod parser;
pub mod shell;
pub mod span;
pub mod stages;
pub(crate) mod text;
pub(crate) mod words;

pub use ast::{Args, Dockerfile, Heredoc, Instruction, Warning, Word};
pub use dump::dump;
pub use parser::{parse, parse_str};
pub use span::{Pos, Span};
pub use text::go_quote;

/// What went wrong while parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// A malformed line, JSON array, ENV/LABEL, heredoc or empty file.
    #[error("{0}")]
    Syntax(String),
    /// A bad or repeated parser directive.
    #[error("{0}")]
    Directive(String),
}

/// A parse failure and the lines it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {}: {kind}", span.start.line)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub span: Span,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, span: Span) -> Self {
        ParseError { kind, span }
    }

    /// The message without the location.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

/// Test helpers shared by the crate's data-driven tests and the fuzz target.
#[doc(hidden)]
pub mod testing {
    /// Exposes the word splitter (`parseWords`) for the conformance tables.
    pub fn parse_words(text: &str, escape: char) -> Vec<String> {
        crate::words::parse_words(text, escape)
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    /// Exposes the exec-form reader: `Ok(Some(values))` for a JSON string
    /// array, `Ok(None)` for shell form, `Err` for a non-string array.
    pub fn exec_form(text: &str) -> Result<Option<Vec<String>>, String> {
        match crate::json::parse_exec_form(text) {
            crate::json::ExecForm::NotJson => Ok(None),
            crate::json::ExecForm::NotStringArray => Err(crate::json::NOT_STRING_ARRAY.into()),
            crate::json::ExecForm::Strings(v) => Ok(Some(v.into_iter().map(|e| e.value).collect())),
        }
    }
}
