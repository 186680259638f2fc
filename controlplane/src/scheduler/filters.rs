//! Filters: may this pod run on this node at all? Each is a pure function over values.

use std::collections::HashSet;

use skiff_api::types::{Node, Pod};

use super::node_info::NodeInfo;
use super::resources::{Resources, pod_requests};

/// Why a node was filtered out; the text is what the Unschedulable message counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterFailure {
    /// The node's Ready condition is not True.
    NotReady,
    /// The node is cordoned (`spec.unschedulable`).
    Unschedulable,
    /// The node's labels do not satisfy the pod's nodeSelector.
    NodeSelectorMismatch,
    /// A host port the pod wants is taken on the node.
    HostPortConflict,
    /// Not enough CPU left.
    InsufficientCpu,
    /// Not enough memory left.
    InsufficientMemory,
    /// The node's pod count is exhausted.
    TooManyPods,
}

impl FilterFailure {
    /// The Kubernetes-style reason text, counted per node in the Unschedulable message.
    pub fn reason(self) -> &'static str {
        match self {
            FilterFailure::NotReady => "node(s) were not ready",
            FilterFailure::Unschedulable => "node(s) were unschedulable",
            FilterFailure::NodeSelectorMismatch => "node(s) didn't match Pod's node selector",
            FilterFailure::HostPortConflict => {
                "node(s) didn't have free ports for the requested pod ports"
            }
            FilterFailure::InsufficientCpu => "Insufficient cpu",
            FilterFailure::InsufficientMemory => "Insufficient memory",
            FilterFailure::TooManyPods => "Too many pods",
        }
    }
}

/// Runs every filter in order; the first failing filter decides (the fit filter lists every
/// resource that is short). Ok when the pod may run on the node.
pub fn run_filters(pod: &Pod, info: &NodeInfo) -> Result<(), Vec<FilterFailure>> {
    if let Some(failure) = node_condition(&info.node) {
        return Err(vec![failure]);
    }
    if !node_selector_matches(pod, &info.node) {
        return Err(vec![FilterFailure::NodeSelectorMismatch]);
    }
    if !host_ports_free(pod, info.pods.iter().map(|p| p.as_ref())) {
        return Err(vec![FilterFailure::HostPortConflict]);
    }
    let short = resources_fit(&pod_requests(pod), &info.allocatable, &info.requested);
    if short.is_empty() { Ok(()) } else { Err(short) }
}

/// None when the node takes new pods: Ready condition True and not cordoned.
pub fn node_condition(node: &Node) -> Option<FilterFailure> {
    let ready = node.status.as_ref().is_some_and(|status| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    });
    if !ready {
        return Some(FilterFailure::NotReady);
    }
    if node.spec.unschedulable == Some(true) {
        return Some(FilterFailure::Unschedulable);
    }
    None
}

/// True when every `key: value` of the pod's nodeSelector is a label of the node.
pub fn node_selector_matches(pod: &Pod, node: &Node) -> bool {
    pod.spec
        .node_selector
        .iter()
        .all(|(key, value)| node.metadata.labels.get(key) == Some(value))
}

/// A host port a pod binds: address, protocol and port number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host address; `0.0.0.0` means every address.
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// Port number on the host.
    pub port: i32,
}

/// The wildcard address a host port without `hostIP` binds.
const ANY_ADDRESS: &str = "0.0.0.0";

/// The host ports `pod` binds; with hostNetwork every container port is a host port.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let host_network = pod.spec.host_network == Some(true);
    pod.spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter())
        .filter_map(|p| {
            let port = match p.host_port {
                Some(port) if port > 0 => port,
                _ if host_network && p.container_port > 0 => p.container_port,
                _ => return None,
            };
            let ip = match p.host_ip.as_deref() {
                None | Some("") | Some("::") => ANY_ADDRESS.to_string(),
                Some(ip) => ip.to_string(),
            };
            Some(HostPort {
                ip,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port,
            })
        })
        .collect()
}

/// True when two host ports cannot both be bound: same port and protocol, overlapping address.
fn conflicts(a: &HostPort, b: &HostPort) -> bool {
    a.port == b.port
        && a.protocol == b.protocol
        && (a.ip == b.ip || a.ip == ANY_ADDRESS || b.ip == ANY_ADDRESS)
}

/// True when none of `pod`'s host ports is taken by the pods already on the node.
pub fn host_ports_free<'a>(pod: &Pod, on_node: impl IntoIterator<Item = &'a Pod>) -> bool {
    let wanted = host_ports(pod);
    if wanted.is_empty() {
        return true;
    }
    let taken: HashSet<HostPort> = on_node.into_iter().flat_map(host_ports).collect();
    !wanted
        .iter()
        .any(|want| taken.iter().any(|used| conflicts(want, used)))
}

/// The resources that would be short if `requests` were added to `requested` on a node
/// offering `allocatable`; empty when the pod fits.
pub fn resources_fit(
    requests: &Resources,
    allocatable: &Resources,
    requested: &Resources,
) -> Vec<FilterFailure> {
    let mut short = Vec::new();
    let exceeds = |want: i64, used: i64, offered: i64| want > 0 && want > offered - used;
    if exceeds(
        requests.milli_cpu,
        requested.milli_cpu,
        allocatable.milli_cpu,
    ) {
        short.push(FilterFailure::InsufficientCpu);
    }
    if exceeds(requests.memory, requested.memory, allocatable.memory) {
        short.push(FilterFailure::InsufficientMemory);
    }
    if exceeds(requests.pods, requested.pods, allocatable.pods) {
        short.push(FilterFailure::TooManyPods);
    }
    short
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use skiff_api::types::{Container, ContainerPort, NodeCondition, NodeStatus};

    use super::*;

    fn ready_node(name: &str) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.status = Some(NodeStatus {
            conditions: vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        node
    }

    fn pod_with_ports(ports: Vec<ContainerPort>) -> Pod {
        let mut pod = Pod::default();
        pod.spec.containers = vec![Container {
            name: "c".into(),
            ports,
            ..Default::default()
        }];
        pod
    }

    fn host_port(port: i32, protocol: Option<&str>, ip: Option<&str>) -> ContainerPort {
        ContainerPort {
            host_port: Some(port),
            container_port: 80,
            protocol: protocol.map(str::to_string),
            host_ip: ip.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn only_ready_uncordoned_nodes_pass() {
        let node = ready_node("a");
        assert_eq!(node_condition(&node), None);

        let mut not_ready = node.clone();
        not_ready.status.as_mut().unwrap().conditions[0].status = "Unknown".into();
        assert_eq!(node_condition(&not_ready), Some(FilterFailure::NotReady));

        let no_status = Node::default();
        assert_eq!(node_condition(&no_status), Some(FilterFailure::NotReady));

        let mut cordoned = node.clone();
        cordoned.spec.unschedulable = Some(true);
        assert_eq!(
            node_condition(&cordoned),
            Some(FilterFailure::Unschedulable)
        );
    }

    #[test]
    fn node_selector_needs_every_label() {
        let mut node = ready_node("a");
        node.metadata.labels.insert("zone".into(), "edge".into());
        node.metadata.labels.insert("disk".into(), "ssd".into());
        let mut pod = Pod::default();
        assert!(node_selector_matches(&pod, &node), "empty selector matches");
        pod.spec.node_selector.insert("zone".into(), "edge".into());
        assert!(node_selector_matches(&pod, &node));
        pod.spec.node_selector.insert("disk".into(), "hdd".into());
        assert!(!node_selector_matches(&pod, &node));
        pod.spec.node_selector.remove("disk");
        pod.spec.node_selector.insert("gpu".into(), "yes".into());
        assert!(!node_selector_matches(&pod, &node));
    }

    #[test]
    fn host_ports_conflict_on_port_protocol_and_overlapping_address() {
        let existing = pod_with_ports(vec![host_port(8080, None, None)]);
        let same = pod_with_ports(vec![host_port(8080, Some("TCP"), None)]);
        assert!(!host_ports_free(&same, [&existing]));

        let udp = pod_with_ports(vec![host_port(8080, Some("UDP"), None)]);
        assert!(host_ports_free(&udp, [&existing]));

        let other_port = pod_with_ports(vec![host_port(8081, None, None)]);
        assert!(host_ports_free(&other_port, [&existing]));

        let on_ip = pod_with_ports(vec![host_port(8080, None, Some("10.0.0.1"))]);
        assert!(
            !host_ports_free(&on_ip, [&existing]),
            "wildcard overlaps any IP"
        );

        let bound_ip = pod_with_ports(vec![host_port(9000, None, Some("10.0.0.1"))]);
        let other_ip = pod_with_ports(vec![host_port(9000, None, Some("10.0.0.2"))]);
        assert!(host_ports_free(&other_ip, [&bound_ip]));
        assert!(!host_ports_free(&other_ip, [&bound_ip, &other_ip]));

        let no_ports = pod_with_ports(vec![]);
        assert!(host_ports_free(&no_ports, [&existing]));
    }

    #[test]
    fn host_network_pods_bind_their_container_ports() {
        let mut host_net = pod_with_ports(vec![ContainerPort {
            container_port: 53,
            protocol: Some("UDP".into()),
            ..Default::default()
        }]);
        host_net.spec.host_network = Some(true);
        let ports = host_ports(&host_net);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 53);
        let wants = pod_with_ports(vec![host_port(53, Some("UDP"), None)]);
        assert!(!host_ports_free(&wants, [&host_net]));
    }

    #[test]
    fn resources_fit_lists_every_short_resource() {
        let allocatable = Resources {
            milli_cpu: 2000,
            memory: 1000,
            pods: 3,
        };
        let requested = Resources {
            milli_cpu: 1500,
            memory: 900,
            pods: 2,
        };
        let fits = Resources {
            milli_cpu: 500,
            memory: 100,
            pods: 1,
        };
        assert!(resources_fit(&fits, &allocatable, &requested).is_empty());
        let too_big = Resources {
            milli_cpu: 501,
            memory: 101,
            pods: 1,
        };
        assert_eq!(
            resources_fit(&too_big, &allocatable, &requested),
            vec![
                FilterFailure::InsufficientCpu,
                FilterFailure::InsufficientMemory
            ]
        );
        let full = Resources {
            pods: 3,
            ..requested
        };
        assert_eq!(
            resources_fit(&fits, &allocatable, &full),
            vec![FilterFailure::TooManyPods]
        );
        let empty = Resources {
            pods: 1,
            ..Resources::default()
        };
        let overcommitted = Resources {
            milli_cpu: 5000,
            memory: 5000,
            pods: 0,
        };
        assert!(
            resources_fit(&empty, &allocatable, &overcommitted).is_empty(),
            "a pod requesting nothing fits an overcommitted node"
        );
    }

    #[test]
    fn run_filters_reports_the_first_failing_filter() {
        let mut node = ready_node("a");
        node.status
            .as_mut()
            .unwrap()
            .allocatable
            .insert("memory".into(), "1Gi".parse().unwrap());
        let mut pod = Pod::default();
        pod.spec.node_selector.insert("zone".into(), "x".into());
        let info = NodeInfo::new(Arc::new(node.clone()), Vec::new());
        assert_eq!(
            run_filters(&pod, &info),
            Err(vec![FilterFailure::NodeSelectorMismatch])
        );
        node.metadata.labels.insert("zone".into(), "x".into());
        let info = NodeInfo::new(Arc::new(node), Vec::new());
        assert_eq!(run_filters(&pod, &info), Ok(()));
    }
}
