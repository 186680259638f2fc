//! Nodes: the machines agents run on, with their capacity and health.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::quantity::Quantity;
use super::time::Time;

/// Annotation on a Node with the base URL of its agent's HTTP API (`http://127.0.0.1:10250`),
/// which the apiserver uses for `pods/{name}/log`.
pub const AGENT_ENDPOINT_ANNOTATION: &str = "skiff.io/agent-endpoint";

crate::api_object! {
    /// A machine running a skiff agent.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Node {
        /// Administrative settings.
        #[serde(default)]
        pub spec: NodeSpec,
        /// What the agent reports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<NodeStatus>,
    }
}

/// Administrative settings of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    /// Cordoned: no new pods are scheduled here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<bool>,
    /// Address range for pods on this node, when the network assigns one.
    #[serde(default, rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
}

/// The observed state of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Total resources of the machine.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    /// Resources available to pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    /// Ready and pressure conditions with heartbeats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<NodeCondition>,
    /// Addresses the node is reachable at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    /// Versions and identity of the node's software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<NodeSystemInfo>,
}

/// One aspect of a node's health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCondition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the agent last reported this condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An address of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddress {
    /// `Hostname`, `InternalIP` or `ExternalIP`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The address.
    pub address: String,
}

/// Software versions and identity reported by the agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSystemInfo {
    /// Machine ID of the host.
    #[serde(default, rename = "machineID")]
    pub machine_id: String,
    /// Kernel version.
    #[serde(default)]
    pub kernel_version: String,
    /// Operating system image.
    #[serde(default)]
    pub os_image: String,
    /// `docker://<version>`.
    #[serde(default)]
    pub container_runtime_version: String,
    /// Version of the agent, in the kubelet's field.
    #[serde(default)]
    pub kubelet_version: String,
    /// Operating system, e.g. `linux`.
    #[serde(default)]
    pub operating_system: String,
    /// CPU architecture, e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
}
