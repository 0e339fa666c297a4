//! Construction-time syntax check.
//!
//! Upstream validates every pattern by asking Go's `filepath.Match` to match
//! it against `"."` and keeping only the error. That function reports
//! `ErrBadPattern` exactly when one of the pattern's star-separated chunks is
//! malformed (it finishes parsing a chunk even after a mismatch and checks the
//! chunks it never reached), so the check below parses every chunk without
//! matching anything. Unix rules: `\` escapes the next character.

/// Returns `true` when Go's `filepath.Match` accepts `pattern` as
/// syntactically valid.
pub(crate) fn is_valid_glob(pattern: &str) -> bool {
    let mut rest = pattern.as_bytes();
    loop {
        while let Some((&b'*', tail)) = rest.split_first() {
            rest = tail;
        }
        if rest.is_empty() {
            return true;
        }
        let (chunk, tail) = split_chunk(rest);
        if !chunk_is_valid(chunk) {
            return false;
        }
        rest = tail;
    }
}

/// Splits off the text up to the next `*` that is outside a bracket
/// expression. Escaped characters are skipped over. `rest` must not start
/// with `*`.
fn split_chunk(rest: &[u8]) -> (&[u8], &[u8]) {
    let mut in_class = false;
    let mut i = 0;
    while let Some(&b) = rest.get(i) {
        match b {
            b'\\' if i + 1 < rest.len() => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    rest.split_at(i.min(rest.len()))
}

/// Parses one chunk (no unbracketed `*` inside) the way `filepath.Match`
/// does, reporting whether it is well formed.
fn chunk_is_valid(mut chunk: &[u8]) -> bool {
    while let Some((&b, tail)) = chunk.split_first() {
        match b {
            b'[' => {
                chunk = tail;
                if let Some((&b'^', t)) = chunk.split_first() {
                    chunk = t;
                }
                let mut ranges = 0usize;
                loop {
                    if ranges > 0 {
                        if let Some((&b']', t)) = chunk.split_first() {
                            chunk = t;
                            break;
                        }
                    }
                    match class_char(chunk) {
                        Some(t) => chunk = t,
                        None => return false,
                    }
                    if let Some((&b'-', t)) = chunk.split_first() {
                        match class_char(t) {
                            Some(t) => chunk = t,
                            None => return false,
                        }
                    }
                    ranges += 1;
                }
            }
            b'\\' => {
                // An escape needs a character to escape; the escaped byte is
                // then taken literally.
                match tail.split_first() {
                    Some((_, t)) => chunk = t,
                    None => return false,
                }
            }
            _ => chunk = tail,
        }
    }
    true
}

/// One (possibly escaped) character of a bracket expression. Fails on an
/// unescaped `-` or `]`, on a missing character, and when nothing follows the
/// character (the class would be unterminated).
fn class_char(chunk: &[u8]) -> Option<&[u8]> {
    let mut c = chunk;
    match c.first() {
        None | Some(b'-') | Some(b']') => return None,
        Some(b'\\') => {
            c = c.get(1..)?;
            if c.is_empty() {
                return None;
            }
        }
        Some(_) => {}
    }
    let len = utf8_len(*c.first()?)?;
    let rest = c.get(len..)?;
    if rest.is_empty() {
        return None;
    }
    Some(rest)
}

/// Length of the UTF-8 sequence introduced by `lead`, or `None` when `lead`
/// cannot start one.
fn utf8_len(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7F => Some(1),
        0xC0..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF7 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_glob;

    #[test]
    fn go_match_errors() {
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "a\\", "*[",
            "a*b[", "[]", "[^]", "*\\",
        ] {
            assert!(!is_valid_glob(bad), "{bad:?} should be rejected");
        }
        for good in [
            "",
            "*",
            "**",
            "abc",
            "a*b?c",
            "[\\]a]",
            "[\\-]",
            "[x\\-]",
            "[\\-x]",
            "[a-ζ]*",
            "[Local-Only]",
            "[*]",
            "[[:alpha:]]",
            "a]",
            "\\*",
            "a\\\\",
            "é[é]",
        ] {
            assert!(is_valid_glob(good), "{good:?} should be accepted");
        }
    }
}
