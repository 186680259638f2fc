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

/// Kubernetes fields skiff accepts and ignores because ignoring them changes nothing on an
/// edge node (scheduling hints for features it lacks, identities it does not mint, security
/// settings Docker already defaults). Manifests copied from Kubernetes carry them routinely;
/// rejecting them under Strict validation would make users edit every file. Fields whose
/// meaning skiff cannot honour without running the pod differently (init containers, startup
/// probes, …) are NOT here: those stay unknown and Strict rejects them.
const IGNORED_POD_FIELDS: &[&str] = &[
    "spec.dnsPolicy",
    "spec.dnsConfig",
    "spec.serviceAccountName",
    "spec.serviceAccount",
    "spec.automountServiceAccountToken",
    "spec.securityContext",
    "spec.schedulerName",
    "spec.priority",
    "spec.priorityClassName",
    "spec.preemptionPolicy",
    "spec.tolerations",
    "spec.affinity",
    "spec.enableServiceLinks",
    "spec.imagePullSecrets",
    "spec.containers[*].terminationMessagePath",
    "spec.containers[*].terminationMessagePolicy",
    "spec.containers[*].securityContext",
    "spec.containers[*].stdin",
    "spec.containers[*].stdinOnce",
    "spec.containers[*].tty",
];

/// True for a field skiff knows from Kubernetes and deliberately ignores (see
/// [`IGNORED_POD_FIELDS`]), in a pod or in a replication controller's pod template.
pub fn is_ignored_field(path: &str) -> bool {
    let path = path.strip_prefix("spec.template.").unwrap_or(path);
    let mut normalized = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                normalized.push_str("[*]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => normalized.push(c),
        }
    }
    IGNORED_POD_FIELDS.iter().any(|f| *f == normalized)
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

    #[test]
    fn kubernetes_fields_skiff_ignores_are_recognised_in_pods_and_templates() {
        assert!(is_ignored_field("spec.dnsPolicy"));
        assert!(is_ignored_field(
            "spec.containers[3].terminationMessagePolicy"
        ));
        assert!(is_ignored_field("spec.template.spec.securityContext"));
        assert!(is_ignored_field("spec.template.spec.containers[0].tty"));
        assert!(!is_ignored_field("spec.initContainers"));
        assert!(!is_ignored_field("spec.containers[0].startupProbe"));
        assert!(!is_ignored_field("spec.foo"));
    }
}
