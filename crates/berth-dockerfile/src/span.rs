//! Source positions: every node of the syntax tree carries a [`Span`].
//!
//! Lines and columns are 1-based; columns count characters, and a span's end
//! is exclusive. A logical line (an instruction joined from continuation
//! lines) keeps a [`LineMap`] so that any byte range of it maps back to the
//! physical lines it came from.

use std::fmt;

/// A position in the Dockerfile: 1-based line and 1-based character column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub const fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

/// A half-open range `[start, end)` of the Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub const fn new(start: Pos, end: Pos) -> Self {
        Span { start, end }
    }

    /// A span covering whole lines `first..=last` (column 1 to the line's end is
    /// not known here, so the end is the start of the next line).
    pub const fn lines(first: u32, last: u32) -> Self {
        Span {
            start: Pos::new(first, 1),
            end: Pos::new(last + 1, 1),
        }
    }

    /// The last line the span touches.
    pub fn last_line(&self) -> u32 {
        if self.end.col == 1 && self.end.line > self.start.line {
            self.end.line - 1
        } else {
            self.end.line
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.start.line, self.start.col)
    }
}

/// One physical line's contribution to a logical line.
#[derive(Debug, Clone)]
struct Segment {
    /// Byte offset in the logical line where this segment starts.
    logical_start: usize,
    /// Physical line number (1-based).
    line: u32,
    /// Column (1-based) in the physical line of the segment's first character.
    col: u32,
    /// Bytes and characters coincide (columns need no counting).
    ascii: bool,
}

/// Maps byte offsets of a logical line back to physical positions.
#[derive(Debug, Clone, Default)]
pub struct LineMap {
    segments: Vec<Segment>,
    text: String,
}

impl LineMap {
    pub(crate) fn new() -> Self {
        LineMap::default()
    }

    /// Appends `text`, which starts at column `col` of physical line `line`.
    pub(crate) fn push(&mut self, text: &str, line: u32, col: u32) {
        self.segments.push(Segment {
            logical_start: self.text.len(),
            line,
            col,
            ascii: text.is_ascii(),
        });
        self.text.push_str(text);
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn clear(&mut self) {
        self.segments.clear();
        self.text.clear();
    }

    /// The position of byte `offset` of the logical line.
    pub fn pos(&self, offset: usize) -> Pos {
        let idx = self
            .segments
            .partition_point(|s| s.logical_start <= offset)
            .saturating_sub(1);
        let Some(seg) = self.segments.get(idx) else {
            return Pos::new(1, 1);
        };
        let seg_end = self
            .segments
            .get(idx + 1)
            .map_or(self.text.len(), |s| s.logical_start);
        let offset = offset.min(seg_end);
        let chars = if seg.ascii {
            offset.saturating_sub(seg.logical_start)
        } else {
            self.text
                .get(seg.logical_start..offset)
                .map_or(0, |s| s.chars().count())
        };
        Pos::new(seg.line, seg.col + chars as u32)
    }

    /// The span of bytes `start..end` of the logical line.
    pub fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.pos(start), self.pos(end))
    }
}
