//! JSON bytes exactly as Go's `encoding/json.Marshal` writes them, for the registry's hashes and index.
//!
//! Field order and `omitempty` come from the schema types' serde attributes (declaration order); this module
//! supplies what serde_json does differently from Go: Go escapes `<`, `>`, `&`, U+2028 and U+2029 (its
//! `escapeHTML`), writes no whitespace, and writes other non-ASCII raw. Control characters agree already:
//! `\b \f \n \r \t` short (Go ≥ 1.22), the rest `\u00xx` in lowercase hex.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escaped.as_bytes())?;
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `json.Marshal(value)`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // The schema types hold only strings, integers, booleans, vectors and string-keyed maps: serializing
    // them cannot fail.
    value
        .serialize(&mut serializer)
        .expect("the catalog's types always serialize");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_characters_and_line_separators_are_escaped_like_go() {
        let text = "a<b>&c\u{2028}\u{2029}é\"\\\n\r\t\u{8}\u{c}\u{1}\u{7f}";
        assert_eq!(
            String::from_utf8(to_vec(text)).unwrap(),
            "\"a\\u003cb\\u003e\\u0026c\\u2028\\u2029é\\\"\\\\\\n\\r\\t\\b\\f\\u0001\u{7f}\""
        );
    }
}
