//! The ContainerManifestList: one node's whole desired state, pushed to its agent.

use serde::{Deserialize, Serialize};

use super::meta::ListMeta;
use super::pod::Pod;
use super::resource::Resource;

/// Every pod bound to one node, as the agent should run them.
///
/// Items carry metadata and spec; status is left out because status changes never change
/// what a node should run. `metadata.resourceVersion` is the store revision the list was
/// consistent at, so an agent can checkpoint it and resume a watch from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerManifestList {
    /// Always `v1`.
    #[serde(default)]
    pub api_version: String,
    /// Always `ContainerManifestList`.
    #[serde(default)]
    pub kind: String,
    /// Revision the list is consistent at.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The node this list is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The pods bound to the node, ordered by namespace and name.
    #[serde(default)]
    pub items: Vec<Pod>,
}

impl ContainerManifestList {
    /// A list for `node` at `resource_version`, with kind and apiVersion filled in.
    pub fn new(node: &str, resource_version: String, items: Vec<Pod>) -> Self {
        ContainerManifestList {
            api_version: "v1".to_string(),
            kind: "ContainerManifestList".to_string(),
            metadata: ListMeta {
                resource_version: Some(resource_version),
                ..ListMeta::default()
            },
            node_name: Some(node.to_string()),
            items,
        }
    }

    /// The list for `node` at `resource_version` holding `pods` as the node runs them
    /// ([`Pod::for_node`]), ordered by `namespace/name`: the one place that says what a
    /// node's desired state is, for the controlplane that sends it and the agent that reads it.
    pub fn from_pods<'a>(
        node: &str,
        resource_version: String,
        pods: impl IntoIterator<Item = &'a Pod>,
    ) -> Self {
        let mut items: Vec<Pod> = pods.into_iter().map(Pod::for_node).collect();
        items.sort_by_cached_key(Resource::key);
        Self::new(node, resource_version, items)
    }
}

impl Pod {
    /// The pod as its node sees it: metadata and spec without `status` and
    /// `metadata.resourceVersion`, which change without changing what the node runs. Two
    /// versions of a pod that differ only there compare equal after this.
    pub fn for_node(&self) -> Pod {
        let mut pod = self.clone();
        pod.status = None;
        pod.metadata.resource_version = None;
        pod
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PodStatus;

    /// A pod `namespace/name` at resourceVersion `rv` with a status.
    fn pod(namespace: &str, name: &str, rv: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some(namespace.into());
        pod.metadata.name = Some(name.into());
        pod.metadata.resource_version = Some(rv.into());
        pod.status = Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        });
        pod
    }

    #[test]
    fn a_node_sees_neither_status_nor_resource_version() {
        let seen = pod("default", "web", "7").for_node();
        assert_eq!(seen.status, None);
        assert_eq!(seen.metadata.resource_version, None);
        assert_eq!(seen, pod("default", "web", "9").for_node());
    }

    #[test]
    fn lists_are_ordered_by_key_and_normalised() {
        let pods = [
            pod("kube", "b", "3"),
            pod("default", "z", "4"),
            pod("default", "a", "5"),
        ];
        let list = ContainerManifestList::from_pods("edge-1", "12".into(), &pods);
        let keys: Vec<String> = list.items.iter().map(Resource::key).collect();
        assert_eq!(keys, ["default/a", "default/z", "kube/b"]);
        assert!(list.items.iter().all(|p| p.status.is_none()));
        assert_eq!(list.node_name.as_deref(), Some("edge-1"));
        assert_eq!(list.metadata.resource_version.as_deref(), Some("12"));
        assert_eq!(list.kind, "ContainerManifestList");
    }
}
