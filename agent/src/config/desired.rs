//! The merged desired state every source feeds and every pod worker reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use skiff_api::types::Pod;

/// Where a desired pod came from; decides mirror pods and which checkpoint holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodSource {
    /// A static pod from a file in the manifest directory.
    File(PathBuf),
    /// A pod bound to this node in the controlplane.
    Controlplane,
}

/// One pod the agent should run: defaulted, validated, with namespace, name and uid set.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPod {
    /// The pod (metadata and spec; status is ignored).
    pub pod: Pod,
    /// Its source.
    pub source: PodSource,
}

/// Every pod the agent should run, keyed by `namespace/name`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredState {
    /// The pods by `namespace/name`.
    pub pods: BTreeMap<String, DesiredPod>,
}
