//! A strict YAML 1.2 reader for manifests and toolspecs: YAML text → a JSON value that serde then reads
//! into the typed schema (exact-case keys, unknown fields refused).
//!
//! Decisions (docs/catalog.md has the reasons):
//! - Plain scalars resolve by the YAML 1.2 core schema, so `on`, `y` and `no` stay the strings the author
//!   wrote. The Go registry reads YAML 1.1, where they are booleans: every such plain scalar is reported as a
//!   [`Hazard`], and lint refuses it, so the two readers never silently disagree about a value.
//! - Duplicate keys, anchors, aliases, tags and more than one document are refused: a manifest needs none of
//!   them, and each is a way for two readers to see different data.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A plain scalar that a YAML 1.1 reader (the Go registry's) resolves to a boolean while YAML 1.2 keeps the
/// string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    pub line: usize,
    pub column: usize,
    pub text: String,
    /// What YAML 1.1 makes of it: `true` or `false`.
    pub yaml11: bool,
}

impl std::fmt::Display for Hazard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: the plain scalar {} is the boolean {} for a YAML 1.1 reader (the Go registry's); \
             quote it: \"{}\"",
            self.line, self.column, self.text, self.yaml11, self.text
        )
    }
}

#[derive(Debug)]
pub struct Document {
    pub value: Value,
    pub hazards: Vec<Hazard>,
}

/// Reads one YAML document. An empty text is `null`.
pub fn read(text: &str) -> Result<Document, YamlError> {
    let mut reader = Reader {
        parser: Parser::new_from_str(text),
        hazards: Vec::new(),
    };
    reader.expect_stream_start()?;
    let value = reader.document()?;
    Ok(Document {
        value,
        hazards: reader.hazards,
    })
}

struct Reader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    hazards: Vec<Hazard>,
}

fn error_at(span: &Span, message: impl Into<String>) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message: message.into(),
    }
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(YamlError {
                line: error.marker().line(),
                column: error.marker().col() + 1,
                message: error.info().to_owned(),
            }),
            None => Err(YamlError {
                line: 0,
                column: 0,
                message: "unexpected end of the YAML stream".into(),
            }),
        }
    }

    fn expect_stream_start(&mut self) -> Result<(), YamlError> {
        match self.next()? {
            (Event::StreamStart, _) => Ok(()),
            (_, span) => Err(error_at(&span, "expected the start of a YAML stream")),
        }
    }

    fn document(&mut self) -> Result<Value, YamlError> {
        let value = match self.next()? {
            (Event::StreamEnd, _) => return Ok(Value::Null),
            (Event::DocumentStart(_), _) => match self.next()? {
                (Event::DocumentEnd, _) => Value::Null,
                (event, span) => {
                    let value = self.node(event, span)?;
                    match self.next()? {
                        (Event::DocumentEnd, _) => value,
                        (_, span) => return Err(error_at(&span, "expected the end of the document")),
                    }
                }
            },
            (_, span) => return Err(error_at(&span, "expected a YAML document")),
        };
        match self.next()? {
            (Event::StreamEnd, _) => Ok(value),
            (_, span) => Err(error_at(&span, "more than one YAML document: a file holds exactly one")),
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Value, YamlError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                refuse_decorations(&span, anchor, tag.is_some())?;
                self.scalar(&text, style, &span)
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_decorations(&span, anchor, tag.is_some())?;
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => return Ok(Value::Array(items)),
                        (event, span) => items.push(self.node(event, span)?),
                    }
                }
            }
            Event::MappingStart(anchor, tag) => {
                refuse_decorations(&span, anchor, tag.is_some())?;
                let mut map = Map::new();
                loop {
                    let key = match self.next()? {
                        (Event::MappingEnd, _) => return Ok(Value::Object(map)),
                        (Event::Scalar(text, style, anchor, tag), span) => {
                            refuse_decorations(&span, anchor, tag.is_some())?;
                            if style == ScalarStyle::Plain {
                                self.note_hazard(&text, &span);
                            }
                            if map.contains_key(text.as_ref()) {
                                return Err(error_at(&span, format!("duplicate key {text}")));
                            }
                            text.into_owned()
                        }
                        (_, span) => return Err(error_at(&span, "a mapping key must be a plain string")),
                    };
                    let (event, span) = self.next()?;
                    let value = self.node(event, span)?;
                    map.insert(key, value);
                }
            }
            Event::Alias(_) => Err(error_at(&span, "aliases (*name) are not allowed")),
            _ => Err(error_at(&span, "unexpected YAML event")),
        }
    }

    fn scalar(&mut self, text: &str, style: ScalarStyle, span: &Span) -> Result<Value, YamlError> {
        if style != ScalarStyle::Plain {
            return Ok(Value::String(text.to_string()));
        }
        self.note_hazard(text, span);
        resolve_plain(text).map_err(|message| error_at(span, message))
    }

    fn note_hazard(&mut self, text: &str, span: &Span) {
        if let Some(yaml11) = yaml11_bool(text) {
            self.hazards.push(Hazard {
                line: span.start.line(),
                column: span.start.col() + 1,
                text: text.to_owned(),
                yaml11,
            });
        }
    }
}

fn refuse_decorations(span: &Span, anchor: usize, tagged: bool) -> Result<(), YamlError> {
    if anchor != 0 {
        return Err(error_at(span, "anchors (&name) are not allowed"));
    }
    if tagged {
        return Err(error_at(span, "tags (!name) are not allowed"));
    }
    Ok(())
}

/// The words YAML 1.1 reads as booleans but YAML 1.2 (core schema) keeps as strings.
fn yaml11_bool(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// The YAML 1.2 core schema's resolution of a plain scalar.
fn resolve_plain(text: &str) -> Result<Value, String> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(|n| Value::Number(n.into()))
            .map_err(|_| format!("the integer {text} is out of range"));
    }
    for (prefix, radix) in [("0o", 8), ("0x", 16)] {
        if let Some(digits) = text.strip_prefix(prefix)
            && !digits.is_empty()
            && digits.chars().all(|c| c.is_digit(radix))
        {
            return i64::from_str_radix(digits, radix)
                .map(|n| Value::Number(n.into()))
                .map_err(|_| format!("the integer {text} is out of range"));
        }
    }
    if is_core_float(unsigned) {
        return match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(number) => Ok(Value::Number(number)),
            None => Err(format!("the number {text} cannot be represented")),
        };
    }
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), ".inf" | ".nan") && (text == lower || text.to_ascii_uppercase() == text) {
        return Err(format!("{text} (infinity or not-a-number) is not allowed"));
    }
    Ok(Value::String(text.to_owned()))
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, after the sign.
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
        None => digits(mantissa),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => digits(e.strip_prefix(['-', '+']).unwrap_or(e)),
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_scalars_resolve_by_the_yaml_1_2_core_schema() {
        let doc =
            read("a: on\nb: 'yes'\nc: 1\nd: 0.1.0\ne: 1.5\nf: true\ng: ~\nh: 0x1f\ni: v1\nj: -2\nk: 1e3\nl: [x, 2]\n")
                .unwrap();
        assert_eq!(
            doc.value,
            json!({"a":"on","b":"yes","c":1,"d":"0.1.0","e":1.5,"f":true,"g":null,"h":31,"i":"v1","j":-2,
                   "k":1000.0,"l":["x",2]})
        );
        assert_eq!(doc.hazards.len(), 1, "only the plain `on` is a YAML 1.1 boolean");
        assert_eq!((doc.hazards[0].line, doc.hazards[0].text.as_str()), (1, "on"));
        assert!(doc.hazards[0].yaml11);
    }

    #[test]
    fn hazards_are_found_in_keys_and_in_any_case() {
        let doc = read("params:\n  - name: N\n  - {name: \"n\"}\nOFF: 1\n").unwrap();
        let texts: Vec<_> = doc.hazards.iter().map(|h| (h.text.as_str(), h.yaml11)).collect();
        assert_eq!(texts, [("N", false), ("OFF", false)]);
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_line() {
        let error = read("name: a\nversion: 1.0.0\nname: b\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.message.contains("duplicate key name"), "{error}");
    }

    #[test]
    fn anchors_aliases_tags_and_second_documents_are_refused() {
        for (text, needle) in [
            ("a: &x 1\nb: *x\n", "anchors"),
            ("a: !!str 1\n", "tags"),
            ("a: 1\n---\nb: 2\n", "more than one"),
            ("a: .inf\n", "infinity"),
            ("a: 99999999999999999999\n", "out of range"),
            ("a: [1\n", "line"),
        ] {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn an_empty_file_is_null() {
        assert_eq!(read("").unwrap().value, Value::Null);
        assert_eq!(read("# only a comment\n").unwrap().value, Value::Null);
    }
}
