//! JSON output as Go's `encoding/json` writes it, so that documents berth
//! writes look byte-for-byte like Docker's and digest the same way.
//!
//! Two differences from serde_json's compact output matter: Go escapes `<`,
//! `>` and `&` (as `\u003c`, `\u003e`, `\u0026`) and U+2028/U+2029, which are
//! common in `created_by` lines (`apt-get update && ...`). Field order is the
//! caller's business: structs serialise in declaration order (Go's struct
//! order), and [`to_vec_sorted_top`] sorts the top-level keys as BuildKit's
//! map-patched image configs have them.

use std::io;

use serde::{Deserialize, Serialize};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use serde_json::Value;

/// A compact formatter that adds Go's HTML-safe escapes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(fragment.get(start..i).unwrap_or_default().as_bytes())?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(fragment.get(start..).unwrap_or_default().as_bytes())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        CompactFormatter.write_char_escape(writer, char_escape)
    }
}

/// Serialises `value` compactly with Go's escaping.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Like [`to_vec`], with the keys of the top-level object sorted bytewise
/// (nested objects keep their order).
pub(crate) fn to_vec_sorted_top<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let sorted: serde_json::Map<String, Value> = entries.into_iter().collect();
            to_vec(&sorted)
        }
        other => to_vec(&other),
    }
}

/// Reads `null` as the default value, as Go does for slices and maps.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let s = "a && b <c> \u{2028}\"\\\n\u{1}é";
        let out = String::from_utf8(to_vec(s).unwrap()).unwrap();
        assert_eq!(
            out,
            "\"a \\u0026\\u0026 b \\u003cc\\u003e \\u2028\\\"\\\\\\n\\u0001é\""
        );
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn sorts_only_the_top_level() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"z":1,"y":2}}"#).unwrap();
        let out = String::from_utf8(to_vec_sorted_top(&v).unwrap()).unwrap();
        assert_eq!(out, r#"{"a":{"z":1,"y":2},"b":1}"#);
    }
}
