//! Checks of `metadata`: name, namespace, labels, annotations, owner references.

use std::collections::BTreeMap;

use super::field_error::FieldError;
use super::names;
use super::path::{child, index};
use crate::types::ObjectMeta;

/// Largest total size of all annotation keys and values, in bytes.
pub const ANNOTATIONS_MAX_TOTAL_BYTES: usize = 256 * 1024;

/// A name syntax check, such as [`names::dns1123_subdomain`].
pub type NameCheck = fn(&str) -> Vec<String>;

/// Checks `metadata` of an object whose name must be a DNS-1123 subdomain (most kinds).
pub fn validate_object_meta(meta: &ObjectMeta, namespaced: bool) -> Vec<FieldError> {
    validate_object_meta_with(meta, namespaced, names::dns1123_subdomain)
}

/// Checks `metadata` with a kind-specific name rule (services use DNS-1035 labels).
pub fn validate_object_meta_with(
    meta: &ObjectMeta,
    namespaced: bool,
    name_check: NameCheck,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = meta.name.as_deref().unwrap_or("");
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !name.is_empty() {
        push_problems(&mut errors, "metadata.name", name, name_check(name));
    } else if generate_name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    if !generate_name.is_empty() {
        push_problems(
            &mut errors,
            "metadata.generateName",
            generate_name,
            names::generate_name_prefix(generate_name, name_check),
        );
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errors.push(FieldError::required("metadata.namespace", ""));
        } else {
            push_problems(
                &mut errors,
                "metadata.namespace",
                namespace,
                names::dns1123_label(namespace),
            );
        }
    } else if !namespace.is_empty() {
        errors.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(generation) = meta.generation
        && generation < 0
    {
        errors.push(FieldError::invalid(
            "metadata.generation",
            generation,
            "must be greater than or equal to 0",
        ));
    }
    errors.extend(validate_labels(&meta.labels, "metadata.labels"));
    errors.extend(validate_annotations(
        &meta.annotations,
        "metadata.annotations",
    ));
    for (i, owner) in meta.owner_references.iter().enumerate() {
        let at = index("metadata.ownerReferences", i);
        for (field, value) in [
            ("apiVersion", &owner.api_version),
            ("kind", &owner.kind),
            ("name", &owner.name),
            ("uid", &owner.uid),
        ] {
            if value.is_empty() {
                errors.push(FieldError::required(child(&at, field), ""));
            }
        }
    }
    errors
}

/// Checks a label map (object labels, selectors, node selectors) found at `path`.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in labels {
        push_problems(&mut errors, path, key, names::qualified_name(key));
        push_problems(&mut errors, path, value, names::label_value(value));
    }
    errors
}

/// Checks annotation keys and the total size of the annotations found at `path`.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    for (key, value) in annotations {
        push_problems(
            &mut errors,
            path,
            key,
            names::qualified_name(&key.to_lowercase()),
        );
        total += key.len() + value.len();
    }
    if total > ANNOTATIONS_MAX_TOTAL_BYTES {
        errors.push(FieldError::too_long(path, ANNOTATIONS_MAX_TOTAL_BYTES));
    }
    errors
}

/// Turns a syntax check's problems into one Invalid error, joined with `; ` as Kubernetes does.
pub(crate) fn push_problems(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    problems: Vec<String>,
) {
    if !problems.is_empty() {
        errors.push(FieldError::invalid(field, value, problems.join("; ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldErrorKind;

    fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn good_meta_passes() {
        assert!(validate_object_meta(&meta("web.1", Some("default")), true).is_empty());
        assert!(validate_object_meta(&meta("node-1", None), false).is_empty());
    }

    #[test]
    fn name_is_required_unless_generate_name() {
        let mut m = meta("", Some("default"));
        let errors = validate_object_meta(&m, true);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].kind, FieldErrorKind::Required);
        assert_eq!(errors[0].field, "metadata.name");
        m.generate_name = Some("web-".into());
        assert!(validate_object_meta(&m, true).is_empty());
        m.generate_name = Some("Web-".into());
        assert_eq!(
            validate_object_meta(&m, true)[0].field,
            "metadata.generateName"
        );
    }

    #[test]
    fn bad_name_message_reads_like_kubernetes() {
        let errors = validate_object_meta(&meta("Bad_Name", Some("default")), true);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().starts_with(
                r#"metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of"#
            ),
            "{}",
            errors[0]
        );
        let long = "a".repeat(254);
        assert_eq!(
            validate_object_meta(&meta(&long, Some("default")), true).len(),
            1
        );
    }

    #[test]
    fn namespace_rules() {
        let errors = validate_object_meta(&meta("a", None), true);
        assert_eq!(errors[0].field, "metadata.namespace");
        assert_eq!(errors[0].kind, FieldErrorKind::Required);
        let errors = validate_object_meta(&meta("a", Some("Bad.Ns")), true);
        assert_eq!(errors[0].kind, FieldErrorKind::Invalid);
        let errors = validate_object_meta(&meta("a", Some(&"n".repeat(64))), true);
        assert_eq!(errors[0].field, "metadata.namespace");
        let errors = validate_object_meta(&meta("a", Some("default")), false);
        assert_eq!(errors[0].kind, FieldErrorKind::Forbidden);
    }

    #[test]
    fn labels_and_annotations() {
        let mut m = meta("a", Some("default"));
        m.labels.insert("skiff.io/role".into(), "edge".into());
        m.labels.insert("ok".into(), "".into());
        assert!(validate_object_meta(&m, true).is_empty());
        m.labels.insert("bad key".into(), "v".into());
        m.labels.insert("k".into(), "-bad".into());
        m.labels.insert("Bad.Prefix/x".into(), "v".into());
        m.annotations
            .insert("Kubectl.Kubernetes.io/Last".into(), "{}".into());
        m.annotations.insert("bad annotation".into(), "v".into());
        let errors = validate_object_meta(&m, true);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.labels",
                "metadata.labels",
                "metadata.labels",
                "metadata.annotations"
            ],
            "{errors:?}"
        );
    }

    #[test]
    fn annotations_total_size_is_capped() {
        let mut m = meta("a", Some("default"));
        m.annotations
            .insert("big".into(), "x".repeat(ANNOTATIONS_MAX_TOTAL_BYTES));
        let errors = validate_object_meta(&m, true);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].kind, FieldErrorKind::TooLong);
    }

    #[test]
    fn owner_references_need_identity() {
        let mut m = meta("a", Some("default"));
        m.owner_references
            .push(crate::types::OwnerReference::default());
        let errors = validate_object_meta(&m, true);
        assert_eq!(errors.len(), 4);
        assert_eq!(errors[0].field, "metadata.ownerReferences[0].apiVersion");
    }
}
