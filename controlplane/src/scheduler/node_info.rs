//! A node together with the pods that already hold resources on it (bound or assumed).

use std::sync::Arc;

use skiff_api::runtime::{IndexFn, Store};
use skiff_api::types::{Node, Pod, Resource};

use super::assumed::AssumedPods;
use super::resources::{
    Resources, is_terminated, node_allocatable, pod_requests, pod_requests_for_scoring,
};

/// One node as the scheduling algorithm sees it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The node object.
    pub node: Arc<Node>,
    /// Live pods placed on the node: bound in the store or assumed by this scheduler.
    pub pods: Vec<Arc<Pod>>,
    /// What the node offers pods.
    pub allocatable: Resources,
    /// The sum of the live pods' requests, for the fit filter.
    pub requested: Resources,
    /// The sum of the live pods' requests with defaults for empty ones, for scoring.
    pub non_zero_requested: Resources,
}

impl NodeInfo {
    /// Builds the view of `node` with `pods` on it; terminated pods are left out.
    pub fn new(node: Arc<Node>, pods: impl IntoIterator<Item = Arc<Pod>>) -> Self {
        let pods: Vec<Arc<Pod>> = pods.into_iter().filter(|p| !is_terminated(p)).collect();
        let mut requested = Resources::default();
        let mut non_zero_requested = Resources::default();
        for pod in &pods {
            requested.add(&pod_requests(pod));
            non_zero_requested.add(&pod_requests_for_scoring(pod));
        }
        NodeInfo {
            allocatable: node_allocatable(&node),
            node,
            pods,
            requested,
            non_zero_requested,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name_or_empty()
    }
}

/// Index of the pod store by `spec.nodeName`.
pub const NODE_INDEX: &str = "nodeName";

/// The index function behind [`NODE_INDEX`].
pub fn index_by_node() -> IndexFn<Pod> {
    Box::new(|pod: &Pod| pod.spec.node_name.iter().cloned().collect())
}

/// Every node with what is bound to it in the store plus what this scheduler assumed there.
///
/// An assumed pod is counted only while the store still shows it unbound, so a pod is never
/// counted twice (the store wins once the binding arrives).
pub fn snapshot(nodes: &Store<Node>, pods: &Store<Pod>, assumed: &AssumedPods) -> Vec<NodeInfo> {
    nodes
        .list()
        .into_iter()
        .map(|node| {
            let name = node.metadata.name_or_empty().to_string();
            let bound = pods.by_index(NODE_INDEX, &name);
            let pending_bind = assumed
                .on_node(&name)
                .filter(|p| {
                    pods.get(&p.key())
                        .is_none_or(|stored| stored.spec.node_name.is_none())
                })
                .cloned()
                .collect::<Vec<_>>();
            NodeInfo::new(node, bound.into_iter().chain(pending_bind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use skiff_api::runtime::Writer;
    use skiff_api::types::ObjectMeta;

    use super::*;

    fn pod(name: &str, node: Option<&str>) -> Pod {
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        pod.spec.node_name = node.map(str::to_string);
        pod
    }

    fn node(name: &str) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node
    }

    #[test]
    fn snapshot_counts_bound_and_assumed_pods_once() {
        let (mut pod_writer, pods) = Writer::<Pod>::new();
        pod_writer.add_indexer(NODE_INDEX, index_by_node());
        let (node_writer, nodes) = Writer::<Node>::new();
        node_writer.apply(node("n1"));
        node_writer.apply(node("n2"));
        pod_writer.apply(pod("bound", Some("n1")));
        pod_writer.apply(pod("assumed", None));
        pod_writer.apply(pod("caught-up", Some("n2")));

        let mut assumed = AssumedPods::new(Duration::from_secs(30));
        let now = Instant::now();
        assumed.assume(&pod("assumed", None), "n1", now);
        // Assumed on n1, but the store already shows it bound on n2: count it once, on n2.
        assumed.assume(&pod("caught-up", None), "n1", now);

        let infos = snapshot(&nodes, &pods, &assumed);
        let count = |name: &str| {
            infos
                .iter()
                .find(|i| i.name() == name)
                .map(|i| i.pods.len())
                .unwrap()
        };
        assert_eq!(count("n1"), 2);
        assert_eq!(count("n2"), 1);
        let n1 = infos.iter().find(|i| i.name() == "n1").unwrap();
        assert_eq!(n1.requested.pods, 2);
    }
}
