//! What the scheduler's event loop and workers share: the caches, the queue, the assumed
//! overlay and the backoff of pods waiting to be retried.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use skiff_api::client::Client;
use skiff_api::runtime::{Store, WorkQueue};
use skiff_api::types::{Node, Pod, PodSpec, ReplicationController};
use skiff_api::wait::Backoff;

use super::SchedulerConfig;
use super::algorithm::{random_tie_break, schedule};
use super::assumed::AssumedPods;
use super::node_info::snapshot;
use super::resources::is_terminated;
use super::scores::SpreadGroup;
use super::unschedulable::FitError;

/// The part of a pod that decides where it fits: when it changes, retry at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Fingerprint {
    /// The pod's spec (requests, ports, nodeSelector).
    spec: PodSpec,
    /// The pod's labels (spreading).
    labels: BTreeMap<String, String>,
}

impl Fingerprint {
    /// The fingerprint of `pod`.
    pub fn of(pod: &Pod) -> Self {
        Fingerprint {
            spec: pod.spec.clone(),
            labels: pod.metadata.labels.clone(),
        }
    }
}

/// A pod whose last attempt failed and that waits for a retry.
#[derive(Debug)]
pub struct Waiting {
    /// Delay before the next retry; grows with each failure.
    pub backoff: Backoff,
    /// Set when the pod fit no node: what it looked like then. Node changes retry it early;
    /// pod events retry it early only when this changed.
    pub unschedulable: Option<Fingerprint>,
}

/// The state shared by the event loop and the workers.
pub struct SchedulerState {
    /// The API connection used to bind and write status.
    pub client: Client,
    /// Tunables.
    pub config: SchedulerConfig,
    /// Every pod, indexed by node.
    pub pods: Store<Pod>,
    /// Every node.
    pub nodes: Store<Node>,
    /// Every replication controller, for spreading their pods.
    pub rcs: Store<ReplicationController>,
    /// Keys (`namespace/name`) of pods to look at.
    pub queue: WorkQueue,
    /// Pods placed by this scheduler and not yet seen bound. The lock also serialises
    /// decisions, so two workers never place against the same free capacity.
    pub assumed: Mutex<AssumedPods>,
    /// Pods waiting for a retry after a failed attempt, by key.
    pub waiting: Mutex<HashMap<String, Waiting>>,
}

impl SchedulerState {
    /// Shared state over the given caches.
    pub fn new(
        client: Client,
        config: SchedulerConfig,
        pods: Store<Pod>,
        nodes: Store<Node>,
        rcs: Store<ReplicationController>,
    ) -> Self {
        let assumed = AssumedPods::new(config.assume_ttl);
        SchedulerState {
            client,
            config,
            pods,
            nodes,
            rcs,
            queue: WorkQueue::new(),
            assumed: Mutex::new(assumed),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until the pod and node caches hold a complete list.
    pub async fn wait_synced(&self) {
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
    }

    /// Takes the assumed overlay.
    pub fn assumed(&self) -> MutexGuard<'_, AssumedPods> {
        lock(&self.assumed)
    }

    /// Takes the waiting map.
    pub fn waiting(&self) -> MutexGuard<'_, HashMap<String, Waiting>> {
        lock(&self.waiting)
    }

    /// Chooses a node for `pod` and, when one fits, assumes the pod there before returning,
    /// so the next decision already counts it.
    pub fn decide_and_assume(&self, pod: &Pod) -> Result<String, FitError> {
        let rcs = self.rcs.list();
        let group = SpreadGroup::of(pod, rcs.iter().map(|rc| rc.as_ref()));
        let mut assumed = self.assumed();
        let nodes = snapshot(&self.nodes, &self.pods, &assumed);
        let chosen = schedule(pod, &nodes, &group, random_tie_break)?;
        assumed.assume(pod, &chosen, Instant::now());
        Ok(chosen)
    }

    /// The delay before retrying `key` after a failure; `unschedulable` records that the
    /// pod fit nowhere (and what it looked like).
    pub fn next_retry(&self, key: &str, unschedulable: Option<Fingerprint>) -> Duration {
        let mut waiting = self.waiting();
        let entry = waiting.entry(key.to_string()).or_insert_with(|| Waiting {
            backoff: Backoff::new(
                self.config.unschedulable_backoff_base,
                self.config.unschedulable_backoff_cap,
                0.1,
            ),
            unschedulable: None,
        });
        entry.unschedulable = unschedulable;
        entry.backoff.next_delay()
    }

    /// Forgets the retry state of `key` (bound, deleted, or no longer ours to schedule).
    pub fn stop_waiting(&self, key: &str) {
        self.waiting().remove(key);
    }

    /// Queues every pod that waits because it fit nowhere: something changed that may help.
    pub fn retry_unschedulable(&self) -> usize {
        let keys: Vec<String> = self
            .waiting()
            .iter()
            .filter(|(_, w)| w.unschedulable.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            self.queue.add(key);
        }
        keys.len()
    }
}

/// True when the scheduler should place `pod`: unbound, not being deleted, not finished.
pub fn needs_scheduling(pod: &Pod) -> bool {
    pod.spec.node_name.is_none() && pod.metadata.deletion_timestamp.is_none() && !is_terminated(pod)
}

/// Takes a lock, recovering from poisoning (no critical section leaves data half-changed).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shared handle on the state.
pub type SharedState = Arc<SchedulerState>;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::runtime::Writer;
    use skiff_api::types::{NodeCondition, NodeStatus, ObjectMeta, Quantity};

    use super::*;
    use crate::scheduler::node_info::{NODE_INDEX, index_by_node};

    fn node(name: &str) -> Node {
        let allocatable: BTreeMap<String, Quantity> = [
            ("cpu".to_string(), "4".parse().unwrap()),
            ("memory".to_string(), "8Gi".parse().unwrap()),
            ("pods".to_string(), "110".parse().unwrap()),
        ]
        .into();
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                allocatable,
                conditions: vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// State over in-memory stores; the client points nowhere and is never used.
    fn state_with(nodes: &[&str], pods: &[Pod]) -> (SchedulerState, Writer<Pod>) {
        let (mut pod_writer, pod_store) = Writer::<Pod>::new();
        pod_writer.add_indexer(NODE_INDEX, index_by_node());
        pod_writer.replace(pods.to_vec(), "1".into());
        let (node_writer, node_store) = Writer::<Node>::new();
        node_writer.replace(nodes.iter().map(|n| node(n)).collect(), "1".into());
        let (_rc_writer, rc_store) = Writer::<ReplicationController>::new();
        let state = SchedulerState::new(
            Client::new("http://127.0.0.1:9").unwrap(),
            SchedulerConfig::default(),
            pod_store,
            node_store,
            rc_store,
        );
        (state, pod_writer)
    }

    #[test]
    fn assumed_pods_steer_the_next_decisions_before_any_watch_event() {
        let pods: Vec<Pod> = (0..10).map(|i| pod(&format!("p{i}"))).collect();
        let (state, _writer) = state_with(&["a", "b"], &pods);
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for p in &pods {
            let node = state.decide_and_assume(p).unwrap();
            *per_node.entry(node).or_default() += 1;
        }
        // The store never showed a binding; only the overlay kept the nodes even.
        assert_eq!(per_node.get("a"), Some(&5), "{per_node:?}");
        assert_eq!(per_node.get("b"), Some(&5), "{per_node:?}");
        assert_eq!(state.assumed().len(), 10);
    }

    #[test]
    fn the_store_takes_over_from_the_overlay_without_double_counting() {
        let first = pod("first");
        let (state, writer) = state_with(&["a", "b"], std::slice::from_ref(&first));
        let node = state.decide_and_assume(&first).unwrap();
        let mut bound = first.clone();
        bound.spec.node_name = Some(node.clone());
        writer.apply(bound.clone());
        state.assumed().observe(&bound);
        assert!(state.assumed().is_empty());
        // One pod on `node` either way: the next sibling goes to the other node.
        let next = state.decide_and_assume(&pod("second")).unwrap();
        assert_ne!(next, node);
    }

    #[test]
    fn retries_back_off_and_only_unschedulable_pods_are_retried_on_node_changes() {
        let (state, _writer) = state_with(&["a"], &[]);
        let first = state.next_retry("ns/x", Some(Fingerprint::of(&pod("x"))));
        let second = state.next_retry("ns/x", Some(Fingerprint::of(&pod("x"))));
        assert!(first >= Duration::from_secs(1) && first < Duration::from_millis(1100));
        assert!(second >= Duration::from_secs(2), "{second:?}");
        state.next_retry("ns/bind-failed", None);
        assert_eq!(state.retry_unschedulable(), 1);
        assert_eq!(state.queue.len(), 1);
        state.stop_waiting("ns/x");
        assert_eq!(state.retry_unschedulable(), 0);
    }

    #[test]
    fn only_live_unbound_pods_need_scheduling() {
        let mut p = pod("p");
        assert!(needs_scheduling(&p));
        p.spec.node_name = Some("a".into());
        assert!(!needs_scheduling(&p));
        let mut deleting = pod("d");
        deleting.metadata.deletion_timestamp = Some(skiff_api::types::Time::now());
        assert!(!needs_scheduling(&deleting));
    }
}
