//! What the scheduler's event loop and workers share: the caches, the queue, the assumed
//! overlay and the backoff of pods waiting to be retried.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use skiff_api::cache::{Fifo, Store};
use skiff_api::client::Client;
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
    pub queue: Fifo<()>,
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
            queue: Fifo::new(),
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
    pub fn next_retry(&self, key: &str, unschedulable: Option<Fingerprint>) -> std::time::Duration {
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
            self.queue.add(key, ());
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
