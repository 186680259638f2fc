//! Checks of replication controllers: selector, replicas and the pod template.

use super::field_error::FieldError;
use super::meta::{validate_annotations, validate_labels, validate_object_meta};
use super::pod::{NON_NEGATIVE_MSG, validate_pod_spec};
use crate::types::{ReplicationController, values};

/// Checks a replication controller: a non-empty selector that matches the template's labels,
/// replicas ≥ 0, and a valid template whose restart policy is `Always`.
pub fn validate_replication_controller(rc: &ReplicationController) -> Vec<FieldError> {
    let mut errors = validate_object_meta(&rc.metadata, true);
    let spec = &rc.spec;
    if spec.selector.is_empty() {
        errors.push(FieldError::required("spec.selector", ""));
    } else {
        errors.extend(validate_labels(&spec.selector, "spec.selector"));
    }
    if let Some(replicas) = spec.replicas
        && replicas < 0
    {
        errors.push(FieldError::invalid(
            "spec.replicas",
            replicas,
            NON_NEGATIVE_MSG,
        ));
    }
    if let Some(min_ready) = spec.min_ready_seconds
        && min_ready < 0
    {
        errors.push(FieldError::invalid(
            "spec.minReadySeconds",
            min_ready,
            NON_NEGATIVE_MSG,
        ));
    }
    let Some(template) = &spec.template else {
        errors.push(FieldError::required("spec.template", ""));
        return errors;
    };
    let labels = &template.metadata.labels;
    errors.extend(validate_labels(labels, "spec.template.metadata.labels"));
    errors.extend(validate_annotations(
        &template.metadata.annotations,
        "spec.template.metadata.annotations",
    ));
    let selector_matches = spec.selector.iter().all(|(k, v)| labels.get(k) == Some(v));
    if !spec.selector.is_empty() && !selector_matches {
        let rendered = serde_json::to_string(labels).unwrap_or_default();
        errors.push(FieldError {
            kind: super::FieldErrorKind::Invalid,
            field: "spec.template.metadata.labels".to_string(),
            value: Some(rendered),
            detail: "`selector` does not match template `labels`".to_string(),
        });
    }
    errors.extend(validate_pod_spec(&template.spec, "spec.template.spec"));
    if let Some(policy) = &template.spec.restart_policy
        && policy != values::RESTART_ALWAYS
    {
        errors.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &[values::RESTART_ALWAYS],
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::defaults::default_replication_controller;
    use crate::types::{
        Container, ObjectMeta, PodSpec, PodTemplateSpec, ReplicationControllerSpec,
    };
    use crate::validation::FieldErrorKind;

    fn rc() -> ReplicationController {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let mut rc = ReplicationController {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: ReplicationControllerSpec {
                replicas: Some(2),
                template: Some(PodTemplateSpec {
                    metadata: ObjectMeta {
                        labels,
                        ..ObjectMeta::default()
                    },
                    spec: PodSpec {
                        containers: vec![Container {
                            name: "web".into(),
                            image: "busybox:1".into(),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    },
                }),
                ..ReplicationControllerSpec::default()
            },
            ..ReplicationController::default()
        };
        default_replication_controller(&mut rc);
        rc
    }

    fn kinds(rc: &ReplicationController) -> Vec<(String, FieldErrorKind)> {
        validate_replication_controller(rc)
            .into_iter()
            .map(|e| (e.field, e.kind))
            .collect()
    }

    #[test]
    fn defaulted_rc_is_valid() {
        assert_eq!(validate_replication_controller(&rc()), vec![]);
    }

    #[test]
    fn selector_is_required_and_must_match_template() {
        let mut r = rc();
        r.spec.selector.clear();
        assert_eq!(
            kinds(&r),
            [("spec.selector".to_string(), FieldErrorKind::Required)]
        );
        r.spec.selector.insert("app".into(), "db".into());
        let errors = validate_replication_controller(&r);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            r#"spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`"#
        );
    }

    #[test]
    fn replicas_template_and_restart_policy() {
        let mut r = rc();
        r.spec.replicas = Some(-1);
        r.spec.min_ready_seconds = Some(-5);
        if let Some(t) = r.spec.template.as_mut() {
            t.spec.restart_policy = Some("Never".into());
            t.spec.containers[0].image = String::new();
        }
        assert_eq!(
            kinds(&r),
            [
                ("spec.replicas".to_string(), FieldErrorKind::Invalid),
                ("spec.minReadySeconds".to_string(), FieldErrorKind::Invalid),
                (
                    "spec.template.spec.containers[0].image".to_string(),
                    FieldErrorKind::Required
                ),
                (
                    "spec.template.spec.restartPolicy".to_string(),
                    FieldErrorKind::NotSupported
                ),
            ]
        );
        r.spec.template = None;
        assert!(kinds(&r).contains(&("spec.template".to_string(), FieldErrorKind::Required)));
    }
}
