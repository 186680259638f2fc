//! What the controllers read from a pod's status: readiness, termination, deletion.

use skiff_api::types::{Pod, PodCondition, values};

/// Annotation the agent puts on the mirror pod of a static pod (one from its manifest dir).
pub(crate) const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// True for the mirror of a static pod: it lives and dies with its node's manifest files, so
/// no controller may own, count or evict it.
pub(crate) fn is_mirror(pod: &Pod) -> bool {
    pod.metadata.annotations.contains_key(MIRROR_ANNOTATION)
}

/// The pod's Ready condition, when it has one.
pub(crate) fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == values::COND_READY)
}

/// True when the pod's Ready condition is `True`.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// True when the pod has finished for good (phase Succeeded or Failed).
pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some(values::PHASE_SUCCEEDED | values::PHASE_FAILED)
    )
}

/// True when a deletion of the pod was requested.
pub(crate) fn is_being_deleted(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Pods for the controllers' unit tests.

    use std::collections::BTreeMap;

    use skiff_api::types::{ObjectMeta, Pod, PodCondition, PodStatus, Time};

    /// A pod `ns/name` with `labels`.
    pub(crate) fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Pod {
        Pod {
            api_version: "v1".into(),
            kind: "Pod".into(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                uid: Some(format!("uid-{name}")),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                creation_timestamp: Time::from_unix(1_000),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// `pod` with phase, IP and a Ready condition of `ready`.
    pub(crate) fn with_status(mut pod: Pod, phase: &str, ip: Option<&str>, ready: bool) -> Pod {
        pod.status = Some(PodStatus {
            phase: Some(phase.into()),
            pod_ip: ip.map(str::to_string),
            conditions: vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Time::from_unix(1_000),
                ..Default::default()
            }],
            ..Default::default()
        });
        pod
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn reads_readiness_and_termination() {
        let p = pod("ns", "a", &[]);
        assert!(!is_ready(&p) && !is_terminal(&p) && !is_being_deleted(&p));
        assert!(is_ready(&with_status(p.clone(), "Running", None, true)));
        assert!(!is_ready(&with_status(p.clone(), "Running", None, false)));
        assert!(is_terminal(&with_status(p.clone(), "Failed", None, false)));
        assert!(is_terminal(&with_status(
            p.clone(),
            "Succeeded",
            None,
            false
        )));
        let mut mirror = p.clone();
        mirror
            .metadata
            .annotations
            .insert(MIRROR_ANNOTATION.into(), "hash".into());
        assert!(is_mirror(&mirror) && !is_mirror(&p));
        let mut deleted = p;
        deleted.metadata.deletion_timestamp = Some(skiff_api::types::Time::now());
        assert!(is_being_deleted(&deleted));
    }
}
