//! A small JSON reader with Go `encoding/json` decoding rules, for the exec
//! form (`["a", "b"]`) and JSON directives. Lone surrogates decode to U+FFFD
//! as in Go; nesting is bounded.

/// Go allows 10,000; a smaller bound keeps recursion safe on small thread stacks.
const MAX_DEPTH: usize = 1_000;

/// A decoded JSON value (numbers are kept as their text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// A JSON string element of an exec-form array, with its byte range in the
/// source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// What the exec-form reader found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExecForm {
    /// Not JSON (or not an array): the shell form applies.
    NotJson,
    /// A JSON array with an element that is not a string: a hard error.
    NotStringArray,
    /// A JSON array of strings.
    Strings(Vec<Element>),
}

pub(crate) const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Reads `text` as an exec-form JSON array of strings.
pub(crate) fn parse_exec_form(text: &str) -> ExecForm {
    let offset = text.len() - text.trim_start().len();
    let trimmed = &text[offset..];
    if !trimmed.starts_with('[') {
        return ExecForm::NotJson;
    }
    let mut reader = Reader::new(trimmed);
    let Some(spanned) = reader.array_with_spans() else {
        return ExecForm::NotJson;
    };
    reader.skip_ws();
    if reader.pos != reader.bytes.len() {
        return ExecForm::NotJson;
    }
    let mut out = Vec::with_capacity(spanned.len());
    for (value, start, end) in spanned {
        match value {
            Value::String(s) => out.push(Element {
                value: s,
                start: start + offset,
                end: end + offset,
            }),
            _ => return ExecForm::NotStringArray,
        }
    }
    ExecForm::Strings(out)
}

/// Parses a whole JSON document.
pub(crate) fn parse_value(text: &str) -> Option<Value> {
    let mut reader = Reader::new(text);
    reader.skip_ws();
    let v = reader.value(0)?;
    reader.skip_ws();
    (reader.pos == reader.bytes.len()).then_some(v)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The top-level array, keeping each element's byte range.
    fn array_with_spans(&mut self) -> Option<Vec<(Value, usize, usize)>> {
        if !self.eat(b'[') {
            return None;
        }
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b']') {
            return Some(items);
        }
        loop {
            self.skip_ws();
            let start = self.pos;
            let v = self.value(1)?;
            items.push((v, start, self.pos));
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b']') {
                return Some(items);
            }
            return None;
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat(b']') {
                    return Some(Value::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b']') {
                        return Some(Value::Array(items));
                    }
                    return None;
                }
            }
            b'{' => {
                self.pos += 1;
                let mut fields = Vec::new();
                self.skip_ws();
                if self.eat(b'}') {
                    return Some(Value::Object(fields));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.skip_ws();
                    if !self.eat(b':') {
                        return None;
                    }
                    self.skip_ws();
                    fields.push((key, self.value(depth + 1)?));
                    self.skip_ws();
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b'}') {
                        return Some(Value::Object(fields));
                    }
                    return None;
                }
            }
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Option<Value> {
        if self.bytes.get(self.pos..)?.starts_with(word.as_bytes()) {
            self.pos += word.len();
            Some(v)
        } else {
            None
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        self.eat(b'-');
        if self.eat(b'0') {
            // a leading zero stands alone
        } else if self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(Value::Number(self.text.get(start..self.pos)?.to_string()))
    }

    fn hex4(&mut self) -> Option<u32> {
        let s = self.text.get(self.pos..self.pos + 4)?;
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(s, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        loop {
            let rest = self.text.get(self.pos..)?;
            let c = rest.chars().next()?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Some(out),
                '\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\x08'),
                        b'f' => out.push('\x0C'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return None,
                    }
                }
                c if (c as u32) < 0x20 => return None,
                c => out.push(c),
            }
        }
    }

    /// After `\u`: one code point, joining a surrogate pair when one follows.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            let save = self.pos;
            if self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
                self.pos += 2;
                if let Some(second) = self.hex4() {
                    if (0xDC00..0xE000).contains(&second) {
                        let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                        return Some(char::from_u32(c).unwrap_or('\u{fffd}'));
                    }
                }
            }
            self.pos = save;
            return Some('\u{fffd}');
        }
        Some(char::from_u32(first).unwrap_or('\u{fffd}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(text: &str) -> Option<Vec<String>> {
        match parse_exec_form(text) {
            ExecForm::Strings(v) => Some(v.into_iter().map(|e| e.value).collect()),
            _ => None,
        }
    }

    #[test]
    fn exec_form() {
        assert_eq!(strings(r#"[ "a", "b" ]"#).unwrap(), ["a", "b"]);
        assert_eq!(strings(r#"["\ud83d\ude00"]"#).unwrap(), ["😀"]);
        assert_eq!(strings(r#"["\ud83d x"]"#).unwrap(), ["\u{fffd} x"]);
        assert_eq!(strings("[]").unwrap(), Vec::<String>::new());
        assert!(strings("['a']").is_none());
        assert!(strings(r#"["a"] x"#).is_none());
        assert_eq!(parse_exec_form("[1]"), ExecForm::NotStringArray);
        assert_eq!(parse_exec_form("[\"a\", [1]]"), ExecForm::NotStringArray);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse_exec_form(&deep), ExecForm::NotJson);
    }
}
