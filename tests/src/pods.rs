//! Reading pod and node status the way the e2e tests check it: is a pod running, why is a
//! container waiting, what does a condition say. Pure functions over `skiff_api` types.

use skiff_api::types::{ContainerStateTerminated, ContainerStatus, Node, Pod};

/// Phase `Running` with at least one container and every container running.
pub fn is_running(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && !status.container_statuses.is_empty()
        && status.container_statuses.iter().all(container_running)
}

/// Whether the container is in the running state.
pub fn container_running(status: &ContainerStatus) -> bool {
    status.state.as_ref().is_some_and(|s| s.running.is_some())
}

/// The reason of a waiting container (`ErrImagePull`, `CrashLoopBackOff`, …).
pub fn waiting_reason(status: &ContainerStatus) -> Option<String> {
    status.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

/// The message of a waiting container.
pub fn waiting_message(status: &ContainerStatus) -> Option<String> {
    status.state.as_ref()?.waiting.as_ref()?.message.clone()
}

/// How the previous run of a restarted container ended.
pub fn last_terminated(status: &ContainerStatus) -> Option<ContainerStateTerminated> {
    status.last_state.as_ref()?.terminated.clone()
}

/// The status of container `container` of `pod`.
pub fn container_status(pod: &Pod, container: &str) -> Option<ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .find(|s| s.name == container)
        .cloned()
}

/// The status (`True`, `False`, `Unknown`) of condition `type_` of `pod`.
pub fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// The status of the node's `Ready` condition.
pub fn node_ready_status(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

/// A one-line summary of a pod for failure messages: name, node, phase and conditions.
pub fn summary(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    format!(
        "{} node={:?} phase={:?} conditions={:?}",
        pod.metadata.name.as_deref().unwrap_or("?"),
        pod.spec.node_name,
        status.phase,
        status
            .conditions
            .iter()
            .map(|c| format!("{}={}", c.type_, c.status))
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{
        ContainerState, ContainerStateRunning, ContainerStateWaiting, NodeCondition, NodeStatus,
        PodCondition, PodStatus,
    };

    use super::*;

    fn running(name: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.to_string(),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }

    fn waiting(name: &str, reason: &str, message: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.to_string(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.to_string()),
                    message: Some(message.to_string()),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }

    fn pod(phase: &str, containers: Vec<ContainerStatus>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".to_string());
        pod.status = Some(PodStatus {
            phase: Some(phase.to_string()),
            conditions: vec![PodCondition {
                type_: "Ready".to_string(),
                status: "False".to_string(),
                ..PodCondition::default()
            }],
            container_statuses: containers,
            ..PodStatus::default()
        });
        pod
    }

    #[test]
    fn running_needs_the_phase_and_every_container() {
        assert!(is_running(&pod(
            "Running",
            vec![running("a"), running("b")]
        )));
        assert!(!is_running(&pod("Pending", vec![running("a")])));
        assert!(!is_running(&pod("Running", vec![])));
        let mixed = pod("Running", vec![running("a"), waiting("b", "X", "y")]);
        assert!(!is_running(&mixed));
        assert!(!is_running(&Pod::default()));
    }

    #[test]
    fn container_details_are_found_by_name() {
        let p = pod(
            "Pending",
            vec![running("a"), waiting("b", "ErrImagePull", "no")],
        );
        let b = container_status(&p, "b").unwrap();
        assert_eq!(waiting_reason(&b).as_deref(), Some("ErrImagePull"));
        assert_eq!(waiting_message(&b).as_deref(), Some("no"));
        assert_eq!(waiting_reason(&running("a")), None);
        assert_eq!(last_terminated(&b), None);
        assert!(container_status(&p, "c").is_none());
        assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
        assert_eq!(condition(&p, "ContainersReady"), None);
        assert_eq!(
            summary(&p),
            "web node=None phase=Some(\"Pending\") conditions=[\"Ready=False\"]"
        );
    }

    #[test]
    fn node_ready_reads_the_ready_condition() {
        let mut node = Node::default();
        assert_eq!(node_ready_status(&node), None);
        node.status = Some(NodeStatus {
            conditions: vec![NodeCondition {
                type_: "Ready".to_string(),
                status: "Unknown".to_string(),
                ..NodeCondition::default()
            }],
            ..NodeStatus::default()
        });
        assert_eq!(node_ready_status(&node).as_deref(), Some("Unknown"));
    }
}
