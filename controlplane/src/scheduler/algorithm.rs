//! One scheduling decision: filter every node, score the ones left, pick the best.

use skiff_api::types::Pod;

use super::filters::run_filters;
use super::node_info::NodeInfo;
use super::resources::pod_requests_for_scoring;
use super::scores::{SpreadGroup, least_requested, pick_best, spread};
use super::unschedulable::FitError;

/// A node that passed the filters, with its scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Node name.
    pub node: String,
    /// Least-requested score, 0–100.
    pub least_requested: i64,
    /// Spreading score, 0–100.
    pub spread: i64,
}

impl Candidate {
    /// The combined score, every priority weighted 1.
    pub fn total(&self) -> i64 {
        self.least_requested + self.spread
    }
}

/// Filters and scores every node for `pod`; Err lists why no node fits.
pub fn candidates(
    pod: &Pod,
    nodes: &[NodeInfo],
    group: &SpreadGroup,
) -> Result<Vec<Candidate>, FitError> {
    let mut fit_error = FitError {
        nodes: nodes.len(),
        ..FitError::default()
    };
    let mut feasible: Vec<(&NodeInfo, usize)> = Vec::new();
    for info in nodes {
        match run_filters(pod, info) {
            Ok(()) => feasible.push((info, group.count(info.pods.iter().map(|p| p.as_ref())))),
            Err(failures) => fit_error.record(&failures),
        }
    }
    if feasible.is_empty() {
        return Err(fit_error);
    }
    let requests = pod_requests_for_scoring(pod);
    let max_siblings = feasible.iter().map(|(_, n)| *n).max().unwrap_or(0);
    Ok(feasible
        .into_iter()
        .map(|(info, siblings)| Candidate {
            node: info.name().to_string(),
            least_requested: least_requested(
                &requests,
                &info.allocatable,
                &info.non_zero_requested,
            ),
            spread: spread(siblings, max_siblings),
        })
        .collect())
}

/// Chooses the node for `pod`; ties between equal scores go to `tie_break(n)` (an index
/// below n). Err when no node passes the filters.
pub fn schedule(
    pod: &Pod,
    nodes: &[NodeInfo],
    group: &SpreadGroup,
    tie_break: impl FnOnce(usize) -> usize,
) -> Result<String, FitError> {
    let candidates = candidates(pod, nodes, group)?;
    let totals: Vec<i64> = candidates.iter().map(Candidate::total).collect();
    let best = pick_best(&totals, tie_break).unwrap_or(0);
    candidates
        .into_iter()
        .nth(best)
        .map(|c| c.node)
        .ok_or_else(|| FitError {
            nodes: nodes.len(),
            ..FitError::default()
        })
}

/// A random tie break: any index below `n`.
pub fn random_tie_break(n: usize) -> usize {
    if n <= 1 { 0 } else { rand::random_range(0..n) }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use skiff_api::types::{
        Container, Node, NodeCondition, NodeStatus, ObjectMeta, Quantity, ResourceRequirements,
    };

    use super::*;

    fn node(name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) -> Arc<Node> {
        let alloc: BTreeMap<String, Quantity> = [
            ("cpu".to_string(), cpu.parse().unwrap()),
            ("memory".to_string(), memory.parse().unwrap()),
            ("pods".to_string(), "110".parse().unwrap()),
        ]
        .into();
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
            status: Some(NodeStatus {
                allocatable: alloc,
                conditions: vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            },
            spec: skiff_api::types::PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: [
                            ("cpu".to_string(), cpu.parse().unwrap()),
                            ("memory".to_string(), memory.parse().unwrap()),
                        ]
                        .into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn prefers_the_emptier_node() {
        let busy = pod("busy", "1", "1Gi");
        let nodes = vec![
            NodeInfo::new(node("a", "2", "2Gi", &[]), vec![Arc::new(busy)]),
            NodeInfo::new(node("b", "2", "2Gi", &[]), Vec::new()),
        ];
        let p = pod("p", "100m", "100Mi");
        let group = SpreadGroup::of(&p, []);
        assert_eq!(schedule(&p, &nodes, &group, |_| 0).unwrap(), "b");
    }

    #[test]
    fn spreads_siblings_even_when_resources_tie() {
        // Sibling pods requesting nothing: only spreading tells the nodes apart... and the
        // scoring defaults, which also favour the node with fewer pods.
        let mut sibling = pod("s", "0", "0");
        sibling.spec.containers[0].resources = None;
        let nodes = vec![
            NodeInfo::new(node("a", "4", "8Gi", &[]), vec![Arc::new(sibling.clone())]),
            NodeInfo::new(node("b", "4", "8Gi", &[]), Vec::new()),
        ];
        let group = SpreadGroup::of(&sibling, []);
        let scored = candidates(&sibling, &nodes, &group).unwrap();
        assert_eq!(scored[0].spread, 0);
        assert_eq!(scored[1].spread, 100);
        assert_eq!(schedule(&sibling, &nodes, &group, |_| 0).unwrap(), "b");
    }

    #[test]
    fn ties_go_to_the_tie_break() {
        let nodes = vec![
            NodeInfo::new(node("a", "2", "2Gi", &[]), Vec::new()),
            NodeInfo::new(node("b", "2", "2Gi", &[]), Vec::new()),
        ];
        let p = pod("p", "100m", "100Mi");
        let group = SpreadGroup::of(&p, []);
        assert_eq!(schedule(&p, &nodes, &group, |_| 0).unwrap(), "a");
        assert_eq!(schedule(&p, &nodes, &group, |_| 1).unwrap(), "b");
        for _ in 0..20 {
            let chosen = schedule(&p, &nodes, &group, random_tie_break).unwrap();
            assert!(chosen == "a" || chosen == "b");
        }
    }

    #[test]
    fn no_fit_explains_every_node() {
        let nodes = vec![
            NodeInfo::new(node("small", "2", "1Gi", &[("zone", "a")]), Vec::new()),
            NodeInfo::new(node("labelled", "8", "64Gi", &[("zone", "b")]), Vec::new()),
        ];
        let mut p = pod("p", "1", "4Gi");
        p.spec.node_selector.insert("zone".into(), "a".into());
        let group = SpreadGroup::of(&p, []);
        let err = schedule(&p, &nodes, &group, |_| 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node selector."
        );
    }

    #[test]
    fn node_selector_pins_the_pod() {
        let nodes = vec![
            NodeInfo::new(node("a", "2", "2Gi", &[]), Vec::new()),
            NodeInfo::new(node("b", "2", "2Gi", &[("disk", "ssd")]), Vec::new()),
        ];
        let mut p = pod("p", "100m", "100Mi");
        p.spec.node_selector.insert("disk".into(), "ssd".into());
        let group = SpreadGroup::of(&p, []);
        assert_eq!(schedule(&p, &nodes, &group, |_| 0).unwrap(), "b");
    }
}
