//! Compute resources as the scheduler counts them: CPU in millicores, memory in bytes, pods.

use skiff_api::types::{Container, Node, Pod, Quantity, values};

/// Resource name of CPU in requests and allocatable.
pub const CPU: &str = "cpu";
/// Resource name of memory in requests and allocatable.
pub const MEMORY: &str = "memory";
/// Resource name of the pod count in allocatable.
pub const PODS: &str = "pods";

/// Pods a node takes when it does not report `pods` in allocatable (the kubelet's default).
pub const DEFAULT_MAX_PODS: i64 = 110;
/// CPU a pod without requests counts as when scoring, so empty pods still spread (Kubernetes' value).
pub const DEFAULT_SCORING_MILLI_CPU: i64 = 100;
/// Memory a pod without requests counts as when scoring (Kubernetes' value: 200 MiB).
pub const DEFAULT_SCORING_MEMORY: i64 = 200 * 1024 * 1024;

/// An amount of each resource the scheduler accounts for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Number of pods.
    pub pods: i64,
}

impl Resources {
    /// Adds `other` to this amount, saturating instead of overflowing.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.pods = self.pods.saturating_add(other.pods);
    }
}

/// What a pod asks a node for: the sum of its containers' requests, plus one pod slot.
///
/// A container with a limit but no request counts its limit, as Kubernetes defaulting does.
pub fn pod_requests(pod: &Pod) -> Resources {
    let mut total = Resources {
        pods: 1,
        ..Resources::default()
    };
    for container in &pod.spec.containers {
        total.add(&container_requests(container));
    }
    total
}

/// What one container requests.
fn container_requests(container: &Container) -> Resources {
    let Some(resources) = &container.resources else {
        return Resources::default();
    };
    let amount = |name: &str| -> Option<&Quantity> {
        resources
            .requests
            .get(name)
            .or_else(|| resources.limits.get(name))
    };
    Resources {
        milli_cpu: amount(CPU).map_or(0, Quantity::as_millis).max(0),
        memory: amount(MEMORY).map_or(0, Quantity::as_units).max(0),
        pods: 0,
    }
}

/// The pod's requests for scoring: zero CPU or memory counts as the Kubernetes defaults.
pub fn pod_requests_for_scoring(pod: &Pod) -> Resources {
    let mut requests = pod_requests(pod);
    if requests.milli_cpu == 0 {
        requests.milli_cpu = DEFAULT_SCORING_MILLI_CPU;
    }
    if requests.memory == 0 {
        requests.memory = DEFAULT_SCORING_MEMORY;
    }
    requests
}

/// What a node offers pods: `status.allocatable`, falling back to `status.capacity`.
///
/// A resource the node does not report counts as zero, except `pods` (default 110).
pub fn node_allocatable(node: &Node) -> Resources {
    let Some(status) = &node.status else {
        return Resources {
            pods: DEFAULT_MAX_PODS,
            ..Resources::default()
        };
    };
    let amount = |name: &str| -> Option<&Quantity> {
        status
            .allocatable
            .get(name)
            .or_else(|| status.capacity.get(name))
    };
    Resources {
        milli_cpu: amount(CPU).map_or(0, Quantity::as_millis).max(0),
        memory: amount(MEMORY).map_or(0, Quantity::as_units).max(0),
        pods: amount(PODS)
            .map_or(DEFAULT_MAX_PODS, Quantity::as_units)
            .max(0),
    }
}

/// True when a pod has finished for good and no longer holds resources on its node.
pub fn is_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some(values::PHASE_SUCCEEDED) | Some(values::PHASE_FAILED)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::types::{NodeStatus, PodStatus, ResourceRequirements};

    use super::*;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, Quantity> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                .collect()
        };
        Container {
            name: "c".into(),
            image: "busybox".into(),
            resources: Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_requests_sum_containers_and_count_one_pod() {
        let mut pod = Pod::default();
        pod.spec.containers = vec![
            container(&[("cpu", "250m"), ("memory", "64Mi")], &[]),
            container(&[("cpu", "1")], &[("memory", "1Gi")]),
            Container::default(),
        ];
        assert_eq!(
            pod_requests(&pod),
            Resources {
                milli_cpu: 1250,
                memory: 64 * 1024 * 1024 + 1024 * 1024 * 1024,
                pods: 1
            }
        );
    }

    #[test]
    fn scoring_requests_default_empty_pods() {
        let pod = Pod::default();
        let r = pod_requests_for_scoring(&pod);
        assert_eq!(r.milli_cpu, DEFAULT_SCORING_MILLI_CPU);
        assert_eq!(r.memory, DEFAULT_SCORING_MEMORY);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn allocatable_falls_back_to_capacity_and_default_pods() {
        let mut node = Node::default();
        assert_eq!(node_allocatable(&node).pods, DEFAULT_MAX_PODS);
        let mut status = NodeStatus::default();
        status.capacity.insert("cpu".into(), "4".parse().unwrap());
        status
            .capacity
            .insert("memory".into(), "8Gi".parse().unwrap());
        status
            .allocatable
            .insert("cpu".into(), "3500m".parse().unwrap());
        status
            .allocatable
            .insert("pods".into(), "20".parse().unwrap());
        node.status = Some(status);
        assert_eq!(
            node_allocatable(&node),
            Resources {
                milli_cpu: 3500,
                memory: 8 * 1024 * 1024 * 1024,
                pods: 20
            }
        );
    }

    #[test]
    fn terminated_pods_hold_nothing() {
        let mut running = Pod::default();
        running.spec.containers = vec![container(&[("cpu", "1")], &[])];
        let mut done = running.clone();
        done.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(is_terminated(&done));
        assert!(!is_terminated(&running));
        let info = crate::scheduler::NodeInfo::new(
            std::sync::Arc::new(Node::default()),
            [running, done].map(std::sync::Arc::new),
        );
        assert_eq!(info.requested.milli_cpu, 1000);
        assert_eq!(info.requested.pods, 1);
        assert_eq!(info.pods.len(), 1);
    }
}
