//! Replication controllers: keep a number of pods matching a selector alive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::pod::PodTemplateSpec;

crate::api_object! {
    /// Keeps `replicas` pods matching `selector` running.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ReplicationController {
        /// Desired replicas, selector and template.
        #[serde(default)]
        pub spec: ReplicationControllerSpec,
        /// Observed replicas.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<ReplicationControllerStatus>,
    }
}

/// The desired state of a replication controller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationControllerSpec {
    /// How many pods should run; defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Labels a pod must carry to count; defaults to the template's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// What new pods look like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// Seconds a new pod must be ready before it counts as available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
}

/// The observed state of a replication controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationControllerStatus {
    /// Live pods matching the selector.
    #[serde(default)]
    pub replicas: i32,
    /// Of those, the ones with the Ready condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Of those, the ones ready for minReadySeconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Pods whose labels match the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_labeled_replicas: Option<i32>,
    /// The generation the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
