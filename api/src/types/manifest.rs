//! The ContainerManifestList: one node's whole desired state, pushed to its agent.

use serde::{Deserialize, Serialize};

use super::meta::ListMeta;
use super::pod::Pod;

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
}
