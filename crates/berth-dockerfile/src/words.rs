//! BuildKit's word-level helpers: builder-flag extraction, `parseWords` (for
//! ENV, LABEL and ARG) and whitespace splitting. Each returns byte ranges into
//! its input so that spans can be kept.

use crate::text::is_space_byte;

/// A word and the byte range it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawWord {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// What [`extract_flags`] found at the start of an argument text.
#[derive(Debug)]
pub(crate) struct Flags {
    pub flags: Vec<RawWord>,
    /// Byte offset where the arguments begin (`line.len()` when none).
    pub rest_start: usize,
}

/// Reads `--flag` words from the start of `line`, byte by byte as BuildKit
/// does (a non-ASCII byte becomes the Latin-1 character of that byte). A word
/// `--` ends the flags and is dropped.
pub(crate) fn extract_flags(line: &str, escape: char) -> Flags {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let bytes = line.as_bytes();
    let escape = u8::try_from(escape).unwrap_or(b'\\');
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= bytes.len() {
        let ch = bytes.get(pos).copied().unwrap_or(0);
        if phase == Phase::Spaces {
            if pos == bytes.len() {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || bytes.get(pos + 1) != Some(&b'-') {
                return Flags {
                    flags,
                    rest_start: pos,
                };
            }
            phase = Phase::Word;
            word_start = pos;
        }
        if pos == bytes.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                flags.push(RawWord {
                    text: word,
                    start: word_start,
                    end: pos,
                });
            }
            break;
        }
        if phase == Phase::Word {
            if is_space_byte(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return Flags {
                        flags,
                        rest_start: pos,
                    };
                }
                if blank_ok || !word.is_empty() {
                    flags.push(RawWord {
                        text: std::mem::take(&mut word),
                        start: word_start,
                        end: pos,
                    });
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
        } else if ch == quote {
            // Phase::Quote
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        // In a word or in quotes alike: E takes the next byte literally, and
        // an E that ends the line is dropped (the word then ends with it).
        let mut c = ch;
        if ch == escape {
            if pos + 1 == bytes.len() {
                pos += 1;
                continue;
            }
            pos += 1;
            c = bytes.get(pos).copied().unwrap_or(0);
        }
        word.push(char::from(c));
        pos += 1;
    }
    Flags {
        flags,
        rest_start: bytes.len(),
    }
}

/// BuildKit's `parseWords`: splits on whitespace outside quotes, keeping the
/// quotes and escape characters in the words. A word is always its source
/// text, less an escape character that ends the whole input.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<RawWord> {
    let mut words = Vec::new();
    let mut chars = rest.char_indices().peekable();
    loop {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        let mut end = rest.len();
        while let Some((pos, ch)) = chars.next() {
            let escapes = match quote {
                None if ch.is_whitespace() => {
                    end = pos;
                    break;
                }
                None if ch == '\'' || ch == '"' => {
                    quote = Some(ch);
                    blank_ok = true;
                    false
                }
                None => ch == escape,
                Some(q) if ch == q => {
                    quote = None;
                    false
                }
                Some(q) => ch == escape && q != '\'',
            };
            if escapes && chars.next().is_none() {
                // An escape character at the very end is dropped.
                end = pos;
            }
        }
        let text = &rest[start..end];
        if blank_ok || !text.is_empty() {
            words.push(RawWord {
                text: text.to_string(),
                start,
                end,
            });
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(line: &str) -> (Vec<String>, &str) {
        let f = extract_flags(line, '\\');
        (
            f.flags.into_iter().map(|w| w.text).collect(),
            &line[f.rest_start..],
        )
    }

    #[test]
    fn flags_like_buildkit() {
        assert_eq!(
            flags("--a=1 --b x y"),
            (vec!["--a=1".into(), "--b".into()], "x y")
        );
        assert_eq!(flags("--a -- --b"), (vec!["--a".into()], " --b"));
        assert_eq!(flags("--doit"), (vec!["--doit".into()], ""));
        assert_eq!(flags("--x='a b' c"), (vec!["--x=a b".into()], "c"));
        assert_eq!(flags("-x"), (vec![], "-x"));
    }

    #[test]
    fn words_keep_quotes() {
        let w: Vec<String> = parse_words(r#"abc="123 456" def"#, '\\')
            .into_iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(w, [r#"abc="123 456""#, "def"]);
    }
}
