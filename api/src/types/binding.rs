//! Bindings: how a scheduler assigns a pod to a node.

use serde::{Deserialize, Serialize};

use super::meta::ObjectReference;

crate::api_object! {
    /// Binds the pod named in `metadata` to the node named in `target`.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Binding {
        /// The node: `kind: Node`, `name: <node>`.
        #[serde(default)]
        pub target: ObjectReference,
    }
}
