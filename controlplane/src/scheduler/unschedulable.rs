//! A pod that fits nowhere: the Kubernetes-style message and the `PodScheduled=False` condition.

use std::collections::BTreeMap;
use std::fmt;

use skiff_api::types::{Pod, PodCondition, PodStatus, Time, values};

use super::filters::FilterFailure;

/// Reason of the PodScheduled condition of a pod that fits no node.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";

/// Why no node could take a pod: how many nodes there were and why each was filtered out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes were considered.
    pub nodes: usize,
    /// Reason → number of nodes that gave it (a node may give several).
    pub reasons: BTreeMap<FilterFailure, usize>,
}

impl FitError {
    /// Counts the failures of one node.
    pub fn record(&mut self, failures: &[FilterFailure]) {
        for failure in failures {
            *self.reasons.entry(*failure).or_default() += 1;
        }
    }
}

impl fmt::Display for FitError {
    /// `0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node selector.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            return f.write_str("0/0 nodes are available: no nodes are registered.");
        }
        // Kubernetes sorts the "count reason" strings, so the message is stable.
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(failure, count)| format!("{count} {}", failure.reason()))
            .collect();
        parts.sort();
        write!(
            f,
            "0/{} nodes are available: {}.",
            self.nodes,
            parts.join(", ")
        )
    }
}

/// The pod's PodScheduled condition, when it has one.
pub fn scheduled_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == values::COND_POD_SCHEDULED)
}

/// True when the pod already says `PodScheduled=False, Unschedulable` with this message,
/// so writing it again would only cause a write and a watch event for nothing.
pub fn already_marked(pod: &Pod, message: &str) -> bool {
    scheduled_condition(pod).is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(REASON_UNSCHEDULABLE)
            && c.message.as_deref() == Some(message)
    })
}

/// Sets `PodScheduled=False, reason Unschedulable, message` on `pod`, keeping every other
/// condition; the transition time moves only when the status flips. Returns false when
/// nothing changed.
pub fn mark_unschedulable(pod: &mut Pod, message: &str, now: Time) -> bool {
    if already_marked(pod, message) {
        return false;
    }
    let status = pod.status.get_or_insert_with(PodStatus::default);
    if status.phase.is_none() {
        status.phase = Some(values::PHASE_PENDING.to_string());
    }
    let wanted = |previous: Option<&PodCondition>| PodCondition {
        type_: values::COND_POD_SCHEDULED.to_string(),
        status: "False".to_string(),
        last_probe_time: None,
        last_transition_time: match previous {
            Some(p) if p.status == "False" => p.last_transition_time.or(Some(now)),
            _ => Some(now),
        },
        reason: Some(REASON_UNSCHEDULABLE.to_string()),
        message: Some(message.to_string()),
    };
    match status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == values::COND_POD_SCHEDULED)
    {
        Some(existing) => *existing = wanted(Some(existing)),
        None => status.conditions.push(wanted(None)),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_and_sorts_reasons_like_kubernetes() {
        let mut err = FitError {
            nodes: 2,
            ..Default::default()
        };
        err.record(&[FilterFailure::NodeSelectorMismatch]);
        err.record(&[FilterFailure::InsufficientMemory]);
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node selector."
        );

        let mut err = FitError {
            nodes: 3,
            ..Default::default()
        };
        err.record(&[
            FilterFailure::InsufficientCpu,
            FilterFailure::InsufficientMemory,
        ]);
        err.record(&[FilterFailure::InsufficientCpu]);
        err.record(&[FilterFailure::NotReady]);
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) were not ready, 2 Insufficient cpu."
        );

        assert_eq!(
            FitError::default().to_string(),
            "0/0 nodes are available: no nodes are registered."
        );
    }

    #[test]
    fn marking_sets_the_condition_once_and_keeps_others() {
        let t1 = Time::from_unix(1_000).unwrap();
        let t2 = Time::from_unix(2_000).unwrap();
        let mut pod = Pod {
            status: Some(PodStatus {
                conditions: vec![PodCondition {
                    type_: "Initialized".into(),
                    status: "True".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(mark_unschedulable(
            &mut pod,
            "0/1 nodes are available: x.",
            t1
        ));
        assert!(already_marked(&pod, "0/1 nodes are available: x."));
        assert!(!mark_unschedulable(
            &mut pod,
            "0/1 nodes are available: x.",
            t2
        ));

        // A new message keeps the transition time: the status did not flip.
        assert!(mark_unschedulable(
            &mut pod,
            "0/2 nodes are available: y.",
            t2
        ));
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(status.conditions.len(), 2);
        let cond = scheduled_condition(&pod).unwrap();
        assert_eq!(cond.status, "False");
        assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
        assert_eq!(cond.message.as_deref(), Some("0/2 nodes are available: y."));
        assert_eq!(cond.last_transition_time, Some(t1));
    }
}
