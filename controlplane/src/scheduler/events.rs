//! Watch events → queue: which pods to look at, and when waiting pods deserve a new try.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use skiff_api::runtime::{Event, WatcherError};
use skiff_api::types::{Node, Pod, ReplicationController, Resource};
use tracing::{debug, warn};

use super::filters::node_condition;
use super::resources::{Resources, node_allocatable};
use super::state::{Fingerprint, SharedState, needs_scheduling};

/// What about a node can turn an unschedulable pod schedulable.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NodeSummary {
    /// Ready and not cordoned.
    schedulable: bool,
    /// What it offers pods.
    allocatable: Resources,
    /// Its labels (nodeSelector).
    labels: BTreeMap<String, String>,
}

impl NodeSummary {
    /// The summary of `node`.
    fn of(node: &Node) -> Self {
        NodeSummary {
            schedulable: node_condition(node).is_none(),
            allocatable: node_allocatable(node),
            labels: node.metadata.labels.clone(),
        }
    }
}

/// Turns pod and node events into queue entries; owned by the event loop.
pub struct EventHandler {
    /// The shared state.
    state: SharedState,
    /// The last summary of each node, to notice changes that matter.
    nodes: HashMap<String, NodeSummary>,
}

impl EventHandler {
    /// A handler over `state`.
    pub fn new(state: SharedState) -> Self {
        EventHandler {
            state,
            nodes: HashMap::new(),
        }
    }

    /// Handles one item of the pod reflector.
    pub fn pod_item(&mut self, item: Result<Event<Pod>, WatcherError>) {
        match item {
            Ok(Event::Restarted(pods, _)) => self.pods_listed(&pods),
            Ok(Event::Applied(pod)) => self.pod_applied(&pod),
            Ok(Event::Deleted(pod)) => self.pod_deleted(&pod),
            Ok(Event::Progress(_)) => {}
            Err(e) => warn!(error = %e, "pod watch failed; retrying"),
        }
    }

    /// Handles one item of the node reflector.
    pub fn node_item(&mut self, item: Result<Event<Node>, WatcherError>) {
        match item {
            Ok(Event::Restarted(nodes, _)) => {
                let fresh: HashMap<String, NodeSummary> = nodes
                    .iter()
                    .map(|n| (n.metadata.name_or_empty().to_string(), NodeSummary::of(n)))
                    .collect();
                let helped = fresh
                    .iter()
                    .any(|(name, s)| self.nodes.get(name) != Some(s));
                self.nodes = fresh;
                if helped {
                    self.retry_unschedulable("nodes relisted");
                }
            }
            Ok(Event::Applied(node)) => {
                let name = node.metadata.name_or_empty().to_string();
                let summary = NodeSummary::of(&node);
                if self.nodes.insert(name.clone(), summary.clone()) != Some(summary) {
                    self.retry_unschedulable(&name);
                }
            }
            Ok(Event::Deleted(node)) => {
                self.nodes.remove(node.metadata.name_or_empty());
            }
            Ok(Event::Progress(_)) => {}
            Err(e) => warn!(error = %e, "node watch failed; retrying"),
        }
    }

    /// Handles one item of the replication controller reflector (the store is all we need).
    pub fn rc_item(&mut self, item: Result<Event<ReplicationController>, WatcherError>) {
        if let Err(e) = item {
            debug!(error = %e, "replication controller watch failed; retrying");
        }
    }

    /// Drops assumptions the watch never confirmed and looks at those pods again.
    pub fn expire_assumed(&mut self) {
        let expired = self.state.assumed().expire(Instant::now());
        for key in expired {
            warn!(pod = %key, "binding not seen in time; looking at the pod again");
            self.state.queue.add(&key);
        }
    }

    /// A fresh list: reset what depends on pods and queue every unscheduled one.
    fn pods_listed(&mut self, pods: &[Pod]) {
        let store = &self.state.pods;
        self.state.assumed().reconcile(|key| store.get(key));
        self.state
            .waiting()
            .retain(|key, _| store.get(key).is_some_and(|p| needs_scheduling(&p)));
        for pod in pods.iter().filter(|p| needs_scheduling(p)) {
            self.state.queue.add(&pod.key());
        }
        self.retry_unschedulable("pods relisted");
    }

    /// A pod was added or changed.
    fn pod_applied(&mut self, pod: &Pod) {
        let key = pod.key();
        self.state.assumed().observe(pod);
        if !needs_scheduling(pod) {
            self.state.stop_waiting(&key);
            if pod.spec.node_name.is_some() && !is_active(pod) {
                // A finished pod frees its node's resources.
                self.retry_unschedulable("a pod finished");
            }
            return;
        }
        let unchanged_unschedulable = self
            .state
            .waiting()
            .get(&key)
            .and_then(|w| w.unschedulable.as_ref())
            .is_some_and(|seen| *seen == Fingerprint::of(pod));
        if unchanged_unschedulable {
            // Our own condition write, or a change that cannot help: wait for the backoff.
            return;
        }
        self.state.queue.add(&key);
    }

    /// A pod was deleted.
    fn pod_deleted(&mut self, pod: &Pod) {
        let key = pod.key();
        self.state.assumed().forget(&key);
        self.state.stop_waiting(&key);
        if pod.spec.node_name.is_some() {
            self.retry_unschedulable("a bound pod was deleted");
        }
    }

    /// Queues the pods waiting because they fit nowhere.
    fn retry_unschedulable(&self, why: &str) {
        let count = self.state.retry_unschedulable();
        if count > 0 {
            debug!(count, why, "retrying unschedulable pods");
        }
    }
}

/// True while a bound pod still holds its node's resources.
fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !super::resources::is_terminated(pod)
}
