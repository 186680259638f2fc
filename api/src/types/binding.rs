//! Bindings: how a scheduler assigns a pod to a node.

use serde::{Deserialize, Serialize};

use super::meta::{ObjectMeta, ObjectReference};

/// Binds the pod named in `metadata` to the node named in `target`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// Always `v1`.
    #[serde(default)]
    pub api_version: String,
    /// Always `Binding`.
    #[serde(default)]
    pub kind: String,
    /// Name and namespace of the pod being bound.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The node: `kind: Node`, `name: <node>`.
    #[serde(default)]
    pub target: ObjectReference,
}
