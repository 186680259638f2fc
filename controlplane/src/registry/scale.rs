//! The scale subresource of replication controllers (`autoscaling/v1` Scale), which
//! `kubectl scale rc` reads and writes.

use serde::{Deserialize, Serialize};
use skiff_api::types::{ObjectMeta, ReplicationController};

skiff_api::api_object! {
    /// `autoscaling/v1` Scale: the replica count of a scalable object.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Scale {
        /// The desired replicas.
        #[serde(default)]
        pub spec: ScaleSpec,
        /// The observed replicas.
        #[serde(default)]
        pub status: ScaleStatus,
    }
}

/// The desired replica count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSpec {
    /// Desired number of pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

/// The observed replica count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStatus {
    /// Pods the controller last counted.
    #[serde(default)]
    pub replicas: i32,
    /// The pod selector as a label selector string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// The Scale view of a replication controller.
pub fn scale_of(rc: &ReplicationController) -> Scale {
    let selector = rc
        .spec
        .selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Scale {
        api_version: "autoscaling/v1".to_string(),
        kind: "Scale".to_string(),
        metadata: ObjectMeta {
            name: rc.metadata.name.clone(),
            namespace: rc.metadata.namespace.clone(),
            uid: rc.metadata.uid.clone(),
            resource_version: rc.metadata.resource_version.clone(),
            creation_timestamp: rc.metadata.creation_timestamp,
            ..ObjectMeta::default()
        },
        spec: ScaleSpec {
            replicas: Some(rc.spec.replicas.unwrap_or(1)),
        },
        status: ScaleStatus {
            replicas: rc.status.as_ref().map_or(0, |s| s.replicas),
            selector: Some(selector),
        },
    }
}

/// `rc` with the replica count `scale` asks for.
pub fn apply_scale(rc: &ReplicationController, scale: &Scale) -> ReplicationController {
    let mut scaled = rc.clone();
    scaled.spec.replicas = scale.spec.replicas.or(Some(0));
    scaled
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn scale_mirrors_the_controller() {
        let mut rc = ReplicationController::default();
        rc.metadata.name = Some("web".into());
        rc.metadata.resource_version = Some("9".into());
        rc.spec.replicas = Some(3);
        rc.spec.selector = BTreeMap::from([("app".into(), "web".into())]);
        let scale = scale_of(&rc);
        assert_eq!(scale.kind, "Scale");
        assert_eq!(scale.spec.replicas, Some(3));
        assert_eq!(scale.status.selector.as_deref(), Some("app=web"));
        assert_eq!(scale.metadata.resource_version.as_deref(), Some("9"));
        let mut wanted = scale.clone();
        wanted.spec.replicas = Some(5);
        assert_eq!(apply_scale(&rc, &wanted).spec.replicas, Some(5));
    }
}
