//! RFC 6901 JSON pointers over `serde_json::Value`: building them and editing the value they point at.

use serde_json::Value;

/// Escapes one reference token (`~` → `~0`, `/` → `~1`).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Splits a pointer into unescaped tokens; None if it is not a pointer.
pub fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// The value at `pointer`, mutably.
pub fn get_mut<'a>(value: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
    value.pointer_mut(pointer)
}

/// Removes the value at `pointer` (a member from its object, an element from its array). Returns whether
/// something was removed.
pub fn remove(value: &mut Value, pointer: &str) -> bool {
    let Some(tokens) = tokens(pointer) else {
        return false;
    };
    let Some((last, parent)) = tokens.split_last() else {
        return false;
    };
    let parent_pointer: String = parent.iter().map(|t| format!("/{}", pointer_token(t))).collect();
    match value.pointer_mut(&parent_pointer) {
        Some(Value::Object(map)) => map.remove(last).is_some(),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn remove_members_and_elements() {
        let mut v = json!({"a/b": {"c": 1, "d": 2}, "list": [1, 2, 3]});
        assert!(remove(&mut v, "/a~1b/c"));
        assert!(remove(&mut v, "/list/1"));
        assert!(!remove(&mut v, "/missing"));
        assert!(!remove(&mut v, "nope"));
        assert_eq!(v, json!({"a/b": {"d": 2}, "list": [1, 3]}));
    }
}
