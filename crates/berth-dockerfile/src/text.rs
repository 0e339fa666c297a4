//! Small text helpers that reproduce Go's `unicode.IsSpace` and
//! `strconv.Quote` exactly, as the dump format requires.

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// Go's `unicode.IsSpace` applied to a single byte read as Latin-1 (the
/// byte-wise loops of BuildKit's flag and HEALTHCHECK parsers do this).
pub(crate) fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' | 0x85 | 0xA0)
}

/// Splits on runs of `[\t\v\f\r ]` (BuildKit's `reWhitespace`) like Go's `regexp.Split(s, -1)`, returning
/// byte ranges. An empty input gives one empty field, as Go does.
pub(crate) fn split_whitespace_ranges(s: &str) -> Vec<(usize, usize)> {
    split_whitespace_ranges_n(s, usize::MAX).collect()
}

/// Like [`split_whitespace_ranges`] with at most `n` fields; the last field
/// holds the rest of the text.
pub(crate) fn split_whitespace_ranges_n(
    s: &str,
    n: usize,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = s.as_bytes();
    let is_sep = |b: u8| matches!(b, b'\t' | 0x0B | 0x0C | b'\r' | b' ');
    let mut field_start = Some(0usize);
    let mut produced = 0usize;
    std::iter::from_fn(move || {
        let start = field_start?;
        produced += 1;
        if produced < n {
            if let Some(off) = bytes
                .get(start..)
                .and_then(|rest| rest.iter().position(|&b| is_sep(b)))
            {
                let sep_start = start + off;
                let mut sep_end = sep_start;
                while bytes.get(sep_end).is_some_and(|&b| is_sep(b)) {
                    sep_end += 1;
                }
                field_start = Some(sep_end);
                return Some((start, sep_start));
            }
        }
        field_start = None;
        Some((start, bytes.len()))
    })
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    go_quote_into(&mut out, s);
    out
}

/// Appends Go's `strconv.Quote(s)` to `out`.
pub fn go_quote_into(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' ' => out.push(' '),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0C' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0B' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space.
fn is_go_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !matches!(
        get_general_category(c),
        G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::Control
            | G::Format
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\t\x00\x7f"), r#""\t\x00\x7f""#);
        assert_eq!(go_quote("\u{a0}♥한"), "\"\\u00a0♥한\"");
        assert_eq!(go_quote("\u{e0000}"), "\"\\U000e0000\"");
    }

    #[test]
    fn split_like_go_regexp() {
        let s = "a  b\tc";
        let r: Vec<&str> = split_whitespace_ranges(s)
            .into_iter()
            .map(|(a, b)| &s[a..b])
            .collect();
        assert_eq!(r, ["a", "b", "c"]);
        let r: Vec<&str> = split_whitespace_ranges_n(s, 2)
            .map(|(a, b)| &s[a..b])
            .collect();
        assert_eq!(r, ["a", "b\tc"]);
        assert_eq!(split_whitespace_ranges(""), vec![(0, 0)]);
    }
}
