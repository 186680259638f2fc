//! Unknown-field detection: compare what a client sent with what the decoded object
//! encodes back to.

use serde_json::Value;

/// Paths of fields present in `sent` but absent from `known` (the decoded object encoded
/// again), e.g. `spec.containers[0].foo`, sorted. Empty values (null, `{}`, `[]`) are not
/// reported: the types drop empty optional fields when encoding.
pub fn unknown_fields(sent: &Value, known: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(sent, known, "", &mut found);
    found.sort();
    found
}

/// Recursive part of [`unknown_fields`].
fn walk(sent: &Value, known: &Value, path: &str, found: &mut Vec<String>) {
    match (sent, known) {
        (Value::Object(sent), Value::Object(known)) => {
            for (key, value) in sent {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(known_value) => walk(value, known_value, &child, found),
                    None if is_empty(value) => {}
                    None => found.push(child),
                }
            }
        }
        (Value::Array(sent), Value::Array(known)) => {
            for (i, (s, k)) in sent.iter().zip(known).enumerate() {
                walk(s, k, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Null, an empty object, an empty array or an empty string.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_nested_unknown_fields_and_ignores_empty_ones() {
        let sent = json!({
            "metadata": {"name": "a", "labels": {}, "creationTimestamp": null, "x": 1},
            "spec": {"containers": [{"name": "c"}, {"name": "d", "y": [1]}], "z": {"q": 1}}
        });
        let known = json!({
            "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c"}, {"name": "d"}]}
        });
        assert_eq!(
            unknown_fields(&sent, &known),
            ["metadata.x", "spec.containers[1].y", "spec.z"]
        );
        assert!(unknown_fields(&known, &known).is_empty());
    }
}
