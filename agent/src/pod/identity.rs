//! Who a pod is on this node: its key, the labels its containers carry, their (informational)
//! names and the label filter that finds them again.

use std::collections::BTreeMap;
use std::fmt;

use skiff_api::types::Pod;

use crate::runtime::{LabelFilter, labels};

/// The identity of one pod: what its containers are labelled with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid; the worker key and the label that finds its containers.
    pub uid: String,
}

impl PodKey {
    /// The key of `pod`; a pod without uid (never the case for desired pods) gets
    /// `namespace.name` so that it still has a stable identity.
    pub fn of(pod: &Pod) -> Self {
        let namespace = pod.metadata.namespace_or_empty().to_string();
        let name = pod.metadata.name_or_empty().to_string();
        let uid = pod
            .metadata
            .uid
            .clone()
            .filter(|uid| !uid.is_empty())
            .unwrap_or_else(|| format!("{namespace}.{name}"));
        PodKey {
            namespace,
            name,
            uid,
        }
    }

    /// The first eight name-safe characters of the uid, for container names.
    pub fn uid8(&self) -> String {
        self.uid
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect()
    }

    /// The Docker name of attempt `attempt` of container `container` (informational only):
    /// `skiff_<container>_<pod>_<namespace>_<uid8>_<attempt>`.
    pub fn container_name(&self, container: &str, attempt: u32) -> String {
        let name = format!(
            "skiff_{container}_{}_{}_{}_{attempt}",
            self.name,
            self.namespace,
            self.uid8()
        );
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }

    /// The labels of a container of this pod created by the agent of `node`.
    pub fn labels(
        &self,
        node: &str,
        container: &str,
        hash: &str,
        restart_count: u32,
    ) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::NODE.to_string(), node.to_string()),
            (labels::POD_NAMESPACE.to_string(), self.namespace.clone()),
            (labels::POD_NAME.to_string(), self.name.clone()),
            (labels::POD_UID.to_string(), self.uid.clone()),
            (labels::CONTAINER_NAME.to_string(), container.to_string()),
            (labels::CONTAINER_HASH.to_string(), hash.to_string()),
            (labels::RESTART_COUNT.to_string(), restart_count.to_string()),
        ])
    }

    /// The filter that lists every container of this pod made by the agent of `node`.
    pub fn filter(&self, node: &str) -> LabelFilter {
        LabelFilter::new()
            .eq(labels::NODE, node)
            .eq(labels::POD_UID, self.uid.clone())
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The filter that lists every container made by the agent of `node`.
pub fn node_filter(node: &str) -> LabelFilter {
    LabelFilter::new()
        .eq(labels::NODE, node)
        .has(labels::POD_UID)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::types::ObjectMeta;

    #[test]
    fn names_labels_and_filters() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web-node1".into()),
                namespace: Some("default".into()),
                uid: Some("1a2b3c4d-5e6f".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let key = PodKey::of(&pod);
        assert_eq!(key.to_string(), "default/web-node1");
        assert_eq!(
            key.container_name("nginx", 2),
            "skiff_nginx_web-node1_default_1a2b3c4d_2"
        );
        let labels = key.labels("node1", "nginx", "abc", 2);
        assert_eq!(labels[labels::RESTART_COUNT], "2");
        assert!(key.filter("node1").matches(&labels));
        assert!(!key.filter("node2").matches(&labels));
        assert!(node_filter("node1").matches(&labels));
    }
}
