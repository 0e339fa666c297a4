//! The syntax tree: what the parser produces before instructions are typed.
//!
//! It mirrors BuildKit's `parser.Node` (so the `dump` printer can reproduce
//! its output byte for byte) but keeps a [`Span`] on every part.

use crate::directives::Directives;
use crate::span::Span;

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
    pub warnings: Vec<Warning>,
    /// Physical lines `first..=last` covered by the instructions.
    pub span: Span,
}

impl Dockerfile {
    /// The escape character in force (`\` unless a directive changed it).
    pub fn escape(&self) -> char {
        self.directives.escape
    }
}

/// A piece of text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// The arguments of an instruction as the parser splits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Plain values (split by the rules of the keyword).
    Values(Vec<Word>),
    /// The nested instruction of `ONBUILD`.
    Trigger(Box<Instruction>),
}

/// One instruction: a keyword, its flags and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The keyword exactly as written (`run`, `RUN`, `Run` …).
    pub keyword: Word,
    /// `--name[=value]` words, quotes and escapes processed.
    pub flags: Vec<Word>,
    pub args: Args,
    /// The arguments were written as a JSON array (exec form).
    pub json: bool,
    /// Heredoc bodies attached to this instruction, in order.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined) the instruction was read from.
    pub original: String,
    /// The physical lines of the instruction, heredoc bodies included.
    pub span: Span,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Instruction {
    /// The keyword upper-cased (`RUN`), as the instruction layer compares it.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        upper_keyword(&self.keyword.text)
    }

    /// The argument values (for ONBUILD: the trigger's keyword then its dump,
    /// as BuildKit's `nodeArgs` gives them).
    pub fn arg_texts(&self) -> Vec<String> {
        match &self.args {
            Args::Values(v) => v.iter().map(|w| w.text.clone()).collect(),
            Args::Trigger(sub) => {
                vec![sub.keyword.text.clone(), crate::dump::dump_instruction(sub)]
            }
        }
    }

    /// The first physical line of the instruction.
    pub fn line(&self) -> u32 {
        self.span.start.line
    }
}

/// `keyword` upper-cased; no allocation for the keywords of the reference.
pub fn upper_keyword(keyword: &str) -> std::borrow::Cow<'static, str> {
    match crate::instructions::KEYWORDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(keyword))
    {
        Some(k) => std::borrow::Cow::Borrowed(k),
        None => std::borrow::Cow::Owned(keyword.to_uppercase()),
    }
}

/// A here-document: `<<EOF … EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The body, with its original line endings.
    pub content: String,
    /// False when any part of the delimiter was quoted: no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body.
    pub chomp: bool,
    /// The file descriptor before `<<` (0 when none).
    pub fd: u32,
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub short: String,
    pub detail: String,
    pub url: String,
    pub span: Span,
}
