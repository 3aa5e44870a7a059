//! The subset of JSON Schema a plugin's configuration schema may use, and checking a configuration
//! against it.
//!
//! A schema is checked when the plugin is added: a keyword outside the subset refuses the plugin, so a
//! schema never silently means less than its author wrote. Supported: `type` (a name or a list), `properties`,
//! `required`, `additionalProperties` (boolean or schema), `items`, `enum`, `const`, `minimum`, `maximum`,
//! `minLength`, `maxLength`, `minItems`, `maxItems`, `anyOf`; annotations (`$schema`, `$id`, `title`,
//! `description`, `default`, `examples`, `$comment`, `format`) are ignored.

use serde_json::{Map, Value};

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "format",
];
const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "anyOf",
];
const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean", "null"];

/// Why a configuration schema is unusable: the message names the keyword and its JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// A schema that passed the subset check.
#[derive(Debug, Clone)]
pub struct Schema(Value);

impl Schema {
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| SchemaError(format!("the plugin's configuration schema is not JSON: {e}")))?;
        check_schema(&value, "#").map_err(SchemaError)?;
        Ok(Self(value))
    }

    /// Every violation, each with the JSON pointer of the value at fault.
    pub fn validate(&self, config: &Value) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        validate(&self.0, config, "", &mut errors);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn check_schema(schema: &Value, at: &str) -> Result<(), String> {
    let object = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(map) => map,
        _ => return Err(format!("{at}: a schema must be an object or a boolean")),
    };
    for (key, value) in object {
        if ANNOTATIONS.contains(&key.as_str()) {
            continue;
        }
        if !KEYWORDS.contains(&key.as_str()) {
            return Err(format!(
                "{at}: the keyword {key:?} is not supported by gigmcp's configuration schemas (see wit/README.md)"
            ));
        }
        match key.as_str() {
            "type" => {
                let names: Vec<&Value> = match value {
                    Value::Array(list) => list.iter().collect(),
                    other => vec![other],
                };
                for name in names {
                    if !name.as_str().is_some_and(|n| TYPES.contains(&n)) {
                        return Err(format!("{at}/type: {name} is not a JSON Schema type"));
                    }
                }
            }
            "properties" => {
                let props = value
                    .as_object()
                    .ok_or_else(|| format!("{at}/properties must be an object"))?;
                for (name, sub) in props {
                    check_schema(sub, &format!("{at}/properties/{name}"))?;
                }
            }
            "additionalProperties" | "items" => check_schema(value, &format!("{at}/{key}"))?,
            "anyOf" => {
                let list = value
                    .as_array()
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| format!("{at}/anyOf must be a non-empty array"))?;
                for (i, sub) in list.iter().enumerate() {
                    check_schema(sub, &format!("{at}/anyOf/{i}"))?;
                }
            }
            "required" if !value.as_array().is_some_and(|l| l.iter().all(Value::is_string)) => {
                return Err(format!("{at}/required must be an array of strings"));
            }
            "enum" if !value.is_array() => return Err(format!("{at}/enum must be an array")),
            "minimum" | "maximum" if !value.is_number() => return Err(format!("{at}/{key} must be a number")),
            "minLength" | "maxLength" | "minItems" | "maxItems" if !value.is_u64() => {
                return Err(format!("{at}/{key} must be a non-negative integer"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn pointer(at: &str) -> &str {
    if at.is_empty() { "(the configuration)" } else { at }
}

fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(format!("{}: not allowed here", pointer(at)));
            return;
        }
        Value::Object(map) => map,
        _ => return,
    };
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if !names.iter().any(|n| type_matches(n, value)) {
            errors.push(format!(
                "{}: expected {}, found {}",
                pointer(at),
                names.join(" or "),
                describe(value)
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        errors.push(format!(
            "{}: must be one of {}",
            pointer(at),
            Value::from(options.clone())
        ));
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        errors.push(format!("{}: must be {expected}", pointer(at)));
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let any = options.iter().any(|option| {
            let mut sub = Vec::new();
            validate(option, value, at, &mut sub);
            sub.is_empty()
        });
        if !any {
            errors.push(format!("{}: matches none of the allowed forms", pointer(at)));
        }
    }
    match value {
        Value::Object(map) => validate_object(schema, map, at, errors),
        Value::Array(items) => {
            bound(schema, "minItems", "maxItems", items.len(), "items", at, errors);
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{at}/{i}"), errors);
                }
            }
        }
        Value::String(text) => bound(
            schema,
            "minLength",
            "maxLength",
            text.chars().count(),
            "characters",
            at,
            errors,
        ),
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                errors.push(format!("{}: must be at least {min}", pointer(at)));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                errors.push(format!("{}: must be at most {max}", pointer(at)));
            }
        }
        _ => {}
    }
}

fn bound(
    schema: &Map<String, Value>,
    min_key: &str,
    max_key: &str,
    len: usize,
    unit: &str,
    at: &str,
    errors: &mut Vec<String>,
) {
    if let Some(min) = schema.get(min_key).and_then(Value::as_u64)
        && (len as u64) < min
    {
        errors.push(format!("{}: needs at least {min} {unit}", pointer(at)));
    }
    if let Some(max) = schema.get(max_key).and_then(Value::as_u64)
        && (len as u64) > max
    {
        errors.push(format!("{}: allows at most {max} {unit}", pointer(at)));
    }
}

fn validate_object(schema: &Map<String, Value>, map: &Map<String, Value>, at: &str, errors: &mut Vec<String>) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                errors.push(format!("{}: missing the required property {name:?}", pointer(at)));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, value) in map {
        let here = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
        match properties.and_then(|p| p.get(name)) {
            Some(sub) => validate(sub, value, &here, errors),
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => errors.push(format!("{here}: unknown property {name:?}")),
                Some(sub) => validate(sub, value, &here, errors),
                None => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SCHEMA: &str = r#"{
        "type": "object", "additionalProperties": false, "required": ["hosts"],
        "properties": {
            "hosts": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 2},
            "ttl": {"type": "integer", "minimum": 0, "maximum": 60},
            "mode": {"enum": ["a", "b"]},
            "servers": {"type": "object", "additionalProperties": {"type": "array"}}
        }
    }"#;

    #[test]
    fn a_valid_configuration_passes() {
        let schema = Schema::parse(SCHEMA).unwrap();
        schema
            .validate(&json!({"hosts": ["x"], "ttl": 5, "mode": "a", "servers": {"s": []}}))
            .unwrap();
    }

    #[test]
    fn every_violation_is_reported_with_its_pointer() {
        let schema = Schema::parse(SCHEMA).unwrap();
        let errors = schema
            .validate(&json!({"hosts": ["", "b", "c"], "ttl": 99, "mode": "z", "extra": 1, "servers": {"s": 1}}))
            .unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "/hosts/0",
            "/hosts: allows at most 2",
            "/ttl: must be at most 60",
            "/mode",
            "/extra",
            "/servers/s",
        ] {
            assert!(text.contains(expected), "{expected} missing in:\n{text}");
        }
        let errors = schema.validate(&json!({})).unwrap_err();
        assert!(errors[0].contains("required property \"hosts\""), "{errors:?}");
        assert!(schema.validate(&json!([])).is_err());
    }

    #[test]
    fn unsupported_keywords_refuse_the_schema() {
        let err = Schema::parse(r#"{"type":"object","patternProperties":{}}"#).unwrap_err();
        assert!(err.0.contains("patternProperties"), "{err}");
        assert!(Schema::parse(r#"{"type":"objekt"}"#).is_err());
        assert!(Schema::parse("nope").is_err());
        assert!(Schema::parse(r#"{"properties":{"a":{"pattern":"x"}}}"#).is_err());
    }
}
