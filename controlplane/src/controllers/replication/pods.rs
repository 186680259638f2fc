//! The replication manager's decisions, without I/O: which pods count, which to delete first,
//! what the status says, and what a new pod looks like.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use skiff_api::types::{
    ObjectMeta, OwnerReference, Pod, ReplicationController, ReplicationControllerStatus, Resource,
    values,
};

use crate::controllers::labels::selector_matches;
use crate::controllers::pod_state::{
    is_being_deleted, is_mirror, is_ready, is_terminal, ready_condition,
};

/// The selector of `rc`: `spec.selector`, or the template's labels when that is empty (as
/// defaulting would have made it).
pub(crate) fn selector(rc: &ReplicationController) -> &BTreeMap<String, String> {
    if rc.spec.selector.is_empty()
        && let Some(template) = &rc.spec.template
    {
        return &template.metadata.labels;
    }
    &rc.spec.selector
}

/// The owner reference that marks a pod as managed by `rc`.
pub(crate) fn owner_reference(rc: &ReplicationController) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_string(),
        kind: ReplicationController::KIND.to_string(),
        name: rc.metadata.name_or_empty().to_string(),
        uid: rc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The pod's managing controller, when it has one.
pub(crate) fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .iter()
        .find(|r| r.controller == Some(true))
}

/// `namespace/name` of the replication controller managing `pod`, when one does.
pub(crate) fn controller_key(pod: &Pod) -> Option<String> {
    controller_of(pod)
        .filter(|r| r.kind == ReplicationController::KIND)
        .map(|r| format!("{}/{}", pod.metadata.namespace_or_empty(), r.name))
}

/// True when `pod` is managed by `rc` (by uid, so a new controller of the same name is not).
pub(crate) fn is_controlled_by(pod: &Pod, rc: &ReplicationController) -> bool {
    controller_of(pod).is_some_and(|r| {
        r.kind == ReplicationController::KIND && Some(&r.uid) == rc.metadata.uid.as_ref()
    })
}

/// True when `pod` is in `rc`'s namespace, matches its selector and is not managed by
/// another controller (nor a static pod's mirror, which nothing manages).
pub(crate) fn belongs_to(pod: &Pod, rc: &ReplicationController) -> bool {
    pod.metadata.namespace == rc.metadata.namespace
        && !is_mirror(pod)
        && selector_matches(selector(rc), &pod.metadata.labels)
        && (controller_of(pod).is_none() || is_controlled_by(pod, rc))
}

/// True when the pod counts as a replica: not being deleted and not finished.
pub(crate) fn is_live(pod: &Pod) -> bool {
    !is_being_deleted(pod) && !is_terminal(pod)
}

/// The live pods of `rc` among `pods`: the replicas it has.
pub(crate) fn active_pods(rc: &ReplicationController, pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| belongs_to(p, rc) && is_live(p))
        .cloned()
        .collect()
}

/// Pods managed by `rc` whose labels no longer match: they are let go, not deleted.
pub(crate) fn pods_to_release(rc: &ReplicationController, pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| {
            is_controlled_by(p, rc)
                && !is_being_deleted(p)
                && !selector_matches(selector(rc), &p.metadata.labels)
        })
        .cloned()
        .collect()
}

/// Live matching pods without a controller: `rc` adopts them.
pub(crate) fn pods_to_adopt(active: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    active
        .iter()
        .filter(|p| controller_of(p).is_none())
        .cloned()
        .collect()
}

/// How far along a pod is, for choosing deletions: less is cheaper to lose.
fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some(values::PHASE_RUNNING) => 2,
        Some(values::PHASE_UNKNOWN) => 1,
        _ => 0,
    }
}

/// Orders pods so that the ones to delete first come first: unscheduled before scheduled,
/// pending before unknown before running, not ready before ready, newer before older.
fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| p.spec.node_name.as_deref().is_some_and(|n| !n.is_empty());
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| {
            // Newer first: compare b to a. Pods without a timestamp count as newest.
            let created = |p: &Pod| p.metadata.creation_timestamp.map(|t| t.0);
            match (created(a), created(b)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(&x),
            }
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The `count` pods of `active` to delete when there are too many.
pub(crate) fn pods_to_delete(active: &[Arc<Pod>], count: usize) -> Vec<Arc<Pod>> {
    let mut ordered = active.to_vec();
    ordered.sort_by(|a, b| deletion_order(a, b));
    ordered.truncate(count);
    ordered
}

/// True when `pod` has been ready for at least `min_ready_seconds` at `now`.
fn is_available(pod: &Pod, min_ready_seconds: i64, now: DateTime<Utc>) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_condition(pod)
        .and_then(|c| c.last_transition_time)
        .is_some_and(|since| now - since.0 >= chrono::Duration::seconds(min_ready_seconds))
}

/// The status `rc` should report given its live pods.
pub(crate) fn compute_status(
    rc: &ReplicationController,
    active: &[Arc<Pod>],
    now: DateTime<Utc>,
) -> ReplicationControllerStatus {
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(active.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let template_labels = rc
        .spec
        .template
        .as_ref()
        .map(|t| t.metadata.labels.clone())
        .unwrap_or_default();
    let min_ready = i64::from(rc.spec.min_ready_seconds.unwrap_or(0));
    ReplicationControllerStatus {
        replicas: count(&|_| true),
        ready_replicas: Some(count(&is_ready)),
        available_replicas: Some(count(&|p| is_available(p, min_ready, now))),
        fully_labeled_replicas: Some(count(&|p| {
            template_labels
                .iter()
                .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
        })),
        observed_generation: rc.metadata.generation,
    }
}

/// A new pod for `rc` from its template; None when it has no template.
pub(crate) fn new_pod(rc: &ReplicationController) -> Option<Pod> {
    let template = rc.spec.template.as_ref()?;
    let mut pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rc.metadata.name_or_empty())),
            namespace: rc.metadata.namespace.clone(),
            labels: template.metadata.labels.clone(),
            annotations: template.metadata.annotations.clone(),
            owner_references: vec![owner_reference(rc)],
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        ..Pod::default()
    };
    pod.set_type_meta();
    Some(pod)
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{PodTemplateSpec, ReplicationControllerSpec, Time};

    use super::*;
    use crate::controllers::pod_state::fixtures::{pod, with_status};

    fn rc(replicas: i32) -> ReplicationController {
        ReplicationController {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("rc-uid".into()),
                generation: Some(4),
                ..Default::default()
            },
            spec: ReplicationControllerSpec {
                replicas: Some(replicas),
                selector: [("app".to_string(), "web".to_string())].into(),
                template: Some(PodTemplateSpec {
                    metadata: ObjectMeta {
                        labels: [
                            ("app".to_string(), "web".to_string()),
                            ("tier".to_string(), "front".to_string()),
                        ]
                        .into(),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                min_ready_seconds: None,
            },
            ..Default::default()
        }
    }

    fn owned(mut p: Pod, uid: &str) -> Pod {
        p.metadata.owner_references = vec![OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }];
        p
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter().map(|p| p.metadata.name_or_empty()).collect()
    }

    #[test]
    fn counts_live_matching_pods_not_owned_by_others() {
        let rc = rc(3);
        let mut mirror = pod("ns", "static-node1", &[("app", "web")]);
        mirror.metadata.annotations.insert(
            crate::controllers::pod_state::MIRROR_ANNOTATION.into(),
            "hash".into(),
        );
        let mut deleted = pod("ns", "deleting", &[("app", "web")]);
        deleted.metadata.deletion_timestamp = Some(Time::now());
        let pods: Vec<Arc<Pod>> = vec![
            pod("ns", "mine", &[("app", "web")]),
            owned(pod("ns", "owned", &[("app", "web")]), "rc-uid"),
            owned(pod("ns", "other-owner", &[("app", "web")]), "someone-else"),
            pod("other", "other-ns", &[("app", "web")]),
            pod("ns", "other-labels", &[("app", "db")]),
            with_status(
                pod("ns", "failed", &[("app", "web")]),
                "Failed",
                None,
                false,
            ),
            with_status(
                pod("ns", "succeeded", &[("app", "web")]),
                "Succeeded",
                None,
                false,
            ),
            deleted,
            mirror,
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let active = active_pods(&rc, &pods);
        assert_eq!(names(&active), vec!["mine", "owned"]);
        assert_eq!(names(&pods_to_adopt(&active)), vec!["mine"]);
    }

    #[test]
    fn relabelled_pods_are_released_not_counted() {
        let rc = rc(1);
        let pods: Vec<Arc<Pod>> = vec![
            owned(pod("ns", "still", &[("app", "web")]), "rc-uid"),
            owned(pod("ns", "moved", &[("app", "debug")]), "rc-uid"),
            owned(pod("ns", "foreign", &[("app", "debug")]), "other"),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        assert_eq!(names(&active_pods(&rc, &pods)), vec!["still"]);
        assert_eq!(names(&pods_to_release(&rc, &pods)), vec!["moved"]);
    }

    #[test]
    fn deletes_unscheduled_then_not_ready_then_newest_first() {
        let scheduled = |mut p: Pod| {
            p.spec.node_name = Some("n1".into());
            p
        };
        let created = |mut p: Pod, secs: i64| {
            p.metadata.creation_timestamp = Time::from_unix(secs);
            p
        };
        let l = &[("app", "web")];
        let pods: Vec<Arc<Pod>> = vec![
            created(
                scheduled(with_status(
                    pod("ns", "old-ready", l),
                    "Running",
                    None,
                    true,
                )),
                100,
            ),
            created(
                scheduled(with_status(
                    pod("ns", "new-ready", l),
                    "Running",
                    None,
                    true,
                )),
                200,
            ),
            scheduled(with_status(
                pod("ns", "not-ready", l),
                "Running",
                None,
                false,
            )),
            pod("ns", "unscheduled", l),
            scheduled(with_status(pod("ns", "pending", l), "Pending", None, false)),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        assert_eq!(
            names(&pods_to_delete(&pods, 5)),
            vec![
                "unscheduled",
                "pending",
                "not-ready",
                "new-ready",
                "old-ready"
            ]
        );
        assert_eq!(
            names(&pods_to_delete(&pods, 2)),
            vec!["unscheduled", "pending"]
        );
        assert!(pods_to_delete(&pods, 0).is_empty());
    }

    #[test]
    fn status_counts_ready_available_and_fully_labelled() {
        let mut rc = rc(3);
        rc.spec.min_ready_seconds = Some(30);
        let now = Time::from_unix(1_020).unwrap().0;
        let mut long_ready = with_status(
            pod("ns", "a", &[("app", "web"), ("tier", "front")]),
            "Running",
            None,
            true,
        );
        if let Some(status) = long_ready.status.as_mut() {
            status.conditions[0].last_transition_time = Time::from_unix(900);
        }
        let active: Vec<Arc<Pod>> = vec![
            long_ready,
            with_status(pod("ns", "b", &[("app", "web")]), "Running", None, true),
            pod("ns", "c", &[("app", "web"), ("tier", "front")]),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        assert_eq!(
            compute_status(&rc, &active, now),
            ReplicationControllerStatus {
                replicas: 3,
                ready_replicas: Some(2),
                available_replicas: Some(1),
                fully_labeled_replicas: Some(2),
                observed_generation: Some(4),
            }
        );
    }

    #[test]
    fn new_pods_come_from_the_template_and_point_at_their_controller() {
        let rc = rc(1);
        let pod = new_pod(&rc).unwrap();
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            pod.metadata.labels.get("tier").map(String::as_str),
            Some("front")
        );
        assert_eq!(pod.kind, "Pod");
        assert_eq!(pod.metadata.owner_references, vec![owner_reference(&rc)]);
        let owner = &pod.metadata.owner_references[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("ReplicationController", "web", "rc-uid")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert_eq!(controller_key(&pod).as_deref(), Some("ns/web"));
        assert!(is_controlled_by(&pod, &rc));

        let mut bare = rc.clone();
        bare.spec.template = None;
        assert!(new_pod(&bare).is_none());
    }

    #[test]
    fn the_selector_defaults_to_the_template_labels() {
        let mut rc = rc(1);
        rc.spec.selector.clear();
        assert_eq!(selector(&rc).len(), 2);
        assert!(belongs_to(
            &pod("ns", "p", &[("app", "web"), ("tier", "front")]),
            &rc
        ));
        assert!(!belongs_to(&pod("ns", "p", &[("app", "web")]), &rc));
    }
}
