//! Applying a response filter's redactions: RFC 6901 JSON pointers into the result, each removing or replacing
//! a value. A removed array element leaves its array (so a tool removed from `tools/list` is hidden, not
//! `null`); a pointer to nothing redacts nothing (there was nothing to hide).

use serde_json::Value;

use gigmcp_types::policy::{RedactAction, Redaction};

/// Applies the redactions in order of their pointers, deepest and highest index first, so that removing an
/// array element never shifts an element another redaction points at.
pub fn apply(mut value: Value, redactions: Vec<Redaction>) -> Result<Value, String> {
    let mut parsed = Vec::with_capacity(redactions.len());
    for r in redactions {
        let tokens = parse_pointer(&r.pointer)?;
        parsed.push((tokens, r.action));
    }
    parsed.sort_by(|(a, _), (b, _)| compare_paths(b, a));
    for (tokens, action) in parsed {
        match action {
            RedactAction::Replace(new) => {
                if tokens.is_empty() {
                    value = new;
                } else if let Some(slot) = lookup(&mut value, &tokens) {
                    *slot = new;
                }
            }
            RedactAction::Remove => {
                let Some((last, parent)) = tokens.split_last() else {
                    value = Value::Null;
                    continue;
                };
                match lookup(&mut value, parent) {
                    Some(Value::Object(map)) => {
                        map.remove(last);
                    }
                    Some(Value::Array(items)) => {
                        if let Some(i) = array_index(last).filter(|i| *i < items.len()) {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(value)
}

fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("{pointer:?} is not a JSON pointer (it must start with '/')"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn array_index(token: &str) -> Option<usize> {
    if token != "0" && token.starts_with('0') {
        return None;
    }
    token.parse().ok()
}

/// Orders paths so that, sorted descending, children come before their parents and higher array indices
/// before lower ones.
fn compare_paths(a: &[String], b: &[String]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (array_index(x), array_index(y)) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

fn lookup<'a>(value: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(value, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => array_index(token).and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn remove(p: &str) -> Redaction {
        Redaction {
            pointer: p.into(),
            action: RedactAction::Remove,
        }
    }

    #[test]
    fn removing_array_elements_hides_them_without_shifting_others() {
        let value = json!({"tools": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]});
        let out = apply(value, vec![remove("/tools/1"), remove("/tools/3")]).unwrap();
        assert_eq!(out, json!({"tools": [{"name": "a"}, {"name": "c"}]}));
    }

    #[test]
    fn replace_and_escapes_and_missing_pointers() {
        let value = json!({"a/b": {"~k": "secret"}, "list": [1]});
        let out = apply(
            value,
            vec![
                Redaction {
                    pointer: "/a~1b/~0k".into(),
                    action: RedactAction::Replace(json!("[redacted]")),
                },
                remove("/nothing/here"),
                remove("/list/7"),
            ],
        )
        .unwrap();
        assert_eq!(out, json!({"a/b": {"~k": "[redacted]"}, "list": [1]}));
        assert!(apply(json!({}), vec![remove("no-slash")]).is_err());
    }

    #[test]
    fn a_child_is_redacted_before_its_parent_is_removed() {
        let value = json!({"x": [{"y": 1}, {"y": 2}]});
        let out = apply(value, vec![remove("/x/0"), remove("/x/0/y"), remove("/x/1/y")]).unwrap();
        assert_eq!(out, json!({"x": [{}]}));
    }
}
