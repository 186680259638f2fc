//! Scores: among the nodes that pass the filters, which is best? Pure functions, 0–100 each.

use std::collections::BTreeMap;

use skiff_api::types::{Pod, ReplicationController};

use super::resources::Resources;

/// The best score a single priority gives.
pub const MAX_SCORE: i64 = 100;

/// Least requested: the more CPU and memory stay free after placing the pod, the better.
///
/// `requests` and `requested` are the scoring amounts (empty pods count as defaults), so
/// nodes fill evenly even with pods that request nothing.
pub fn least_requested(
    requests: &Resources,
    allocatable: &Resources,
    requested: &Resources,
) -> i64 {
    let free_fraction = |want: i64, used: i64, offered: i64| -> i64 {
        if offered <= 0 {
            return 0;
        }
        let after = used.saturating_add(want);
        if after >= offered {
            return 0;
        }
        let free = i128::from(offered - after) * i128::from(MAX_SCORE) / i128::from(offered);
        i64::try_from(free).unwrap_or(0)
    };
    let cpu = free_fraction(
        requests.milli_cpu,
        requested.milli_cpu,
        allocatable.milli_cpu,
    );
    let memory = free_fraction(requests.memory, requested.memory, allocatable.memory);
    (cpu + memory) / 2
}

/// Which pods count as siblings of a pod for spreading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpreadGroup {
    /// Pods in the namespace matched by any of these replication controller selectors.
    Selectors {
        /// Namespace of the pod being placed.
        namespace: String,
        /// Selectors of the replication controllers that select the pod.
        selectors: Vec<BTreeMap<String, String>>,
    },
    /// Pods in the namespace with exactly the same labels.
    SameLabels {
        /// Namespace of the pod being placed.
        namespace: String,
        /// The pod's labels.
        labels: BTreeMap<String, String>,
    },
}

/// True when `selector` (equality-based, non-empty) selects `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The selector of a replication controller: its own, or its template's labels by default.
fn rc_selector(rc: &ReplicationController) -> BTreeMap<String, String> {
    if !rc.spec.selector.is_empty() {
        return rc.spec.selector.clone();
    }
    rc.spec
        .template
        .as_ref()
        .map(|t| t.metadata.labels.clone())
        .unwrap_or_default()
}

impl SpreadGroup {
    /// The group of `pod`: the replication controllers selecting it, or else its label set.
    pub fn of<'a>(pod: &Pod, rcs: impl IntoIterator<Item = &'a ReplicationController>) -> Self {
        let namespace = pod.metadata.namespace_or_empty().to_string();
        let labels = &pod.metadata.labels;
        let selectors: Vec<BTreeMap<String, String>> = rcs
            .into_iter()
            .filter(|rc| rc.metadata.namespace_or_empty() == namespace)
            .map(rc_selector)
            .filter(|selector| selects(selector, labels))
            .collect();
        if selectors.is_empty() {
            SpreadGroup::SameLabels {
                namespace,
                labels: labels.clone(),
            }
        } else {
            SpreadGroup::Selectors {
                namespace,
                selectors,
            }
        }
    }

    /// True when `other` belongs to this group.
    pub fn contains(&self, other: &Pod) -> bool {
        let other_ns = other.metadata.namespace_or_empty();
        match self {
            SpreadGroup::Selectors {
                namespace,
                selectors,
            } => {
                other_ns == namespace
                    && selectors.iter().any(|s| selects(s, &other.metadata.labels))
            }
            SpreadGroup::SameLabels { namespace, labels } => {
                other_ns == namespace && &other.metadata.labels == labels
            }
        }
    }

    /// How many of `pods` belong to this group.
    pub fn count<'a>(&self, pods: impl IntoIterator<Item = &'a Pod>) -> usize {
        pods.into_iter().filter(|p| self.contains(p)).count()
    }
}

/// Spreading: a node with fewer siblings than the most crowded candidate scores higher.
pub fn spread(count_on_node: usize, max_count: usize) -> i64 {
    if max_count == 0 {
        return MAX_SCORE;
    }
    let fewer = max_count.saturating_sub(count_on_node);
    i64::try_from(fewer.saturating_mul(100) / max_count).unwrap_or(0)
}

/// Picks the index of the highest score; ties are broken by `tie_break(n)`, which returns an
/// index below `n` (random in production, fixed in tests).
pub fn pick_best(scores: &[i64], tie_break: impl FnOnce(usize) -> usize) -> Option<usize> {
    let best = *scores.iter().max()?;
    let tied: Vec<usize> = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == best)
        .map(|(i, _)| i)
        .collect();
    let choice = tie_break(tied.len()).min(tied.len() - 1);
    tied.get(choice).copied()
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{ObjectMeta, PodTemplateSpec};

    use super::*;

    fn res(milli_cpu: i64, memory: i64) -> Resources {
        Resources {
            milli_cpu,
            memory,
            pods: 0,
        }
    }

    fn labelled(ns: &str, labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn least_requested_prefers_the_emptier_node() {
        let want = res(500, 500);
        let alloc = res(2000, 2000);
        let empty = least_requested(&want, &alloc, &res(0, 0));
        let half = least_requested(&want, &alloc, &res(1000, 1000));
        assert_eq!(empty, 75);
        assert_eq!(half, 25);
        assert_eq!(least_requested(&want, &alloc, &res(1600, 1600)), 0);
        assert_eq!(least_requested(&want, &res(0, 0), &res(0, 0)), 0);
        // CPU and memory weigh the same.
        assert_eq!(least_requested(&want, &alloc, &res(0, 1500)), 75 / 2);
    }

    #[test]
    fn spread_scores_fewer_siblings_higher() {
        assert_eq!(spread(0, 0), MAX_SCORE);
        assert_eq!(spread(0, 4), MAX_SCORE);
        assert_eq!(spread(2, 4), 50);
        assert_eq!(spread(4, 4), 0);
    }

    #[test]
    fn spread_group_uses_labels_or_controller_selectors() {
        let pod = labelled("ns", &[("app", "web"), ("pod-template-hash", "1")]);
        let same = labelled("ns", &[("app", "web"), ("pod-template-hash", "1")]);
        let sibling = labelled("ns", &[("app", "web"), ("pod-template-hash", "2")]);
        let elsewhere = labelled("other", &[("app", "web"), ("pod-template-hash", "1")]);

        let by_labels = SpreadGroup::of(&pod, []);
        assert!(by_labels.contains(&same));
        assert!(!by_labels.contains(&sibling), "labels must be equal");
        assert!(!by_labels.contains(&elsewhere), "namespaces differ");

        let mut rc = ReplicationController::default();
        rc.metadata.namespace = Some("ns".into());
        rc.spec.template = Some(PodTemplateSpec {
            metadata: ObjectMeta {
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            },
            ..Default::default()
        });
        let mut unrelated = rc.clone();
        unrelated.spec.selector = [("app".to_string(), "db".to_string())].into();
        let by_rc = SpreadGroup::of(&pod, [&rc, &unrelated]);
        assert!(
            matches!(by_rc, SpreadGroup::Selectors { ref selectors, .. } if selectors.len() == 1)
        );
        assert!(by_rc.contains(&sibling));
        assert!(!by_rc.contains(&elsewhere));
        assert_eq!(by_rc.count([&same, &sibling, &elsewhere]), 2);
    }

    #[test]
    fn pick_best_takes_the_top_score_and_breaks_ties() {
        assert_eq!(pick_best(&[], |_| 0), None);
        assert_eq!(pick_best(&[10, 30, 20], |_| 0), Some(1));
        assert_eq!(pick_best(&[30, 10, 30], |n| n - 1), Some(2));
        assert_eq!(pick_best(&[30, 10, 30], |_| 0), Some(0));
        assert_eq!(
            pick_best(&[5], |_| 99),
            Some(0),
            "out-of-range tie break is clamped"
        );
    }
}
