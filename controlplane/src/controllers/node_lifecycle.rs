//! The node lifecycle controller: notices nodes whose agent stopped posting status, marks them
//! Ready=Unknown and their pods not ready, and after the eviction timeout deletes their pods so
//! replication controllers replace them on healthy nodes.
//!
//! Node events queue the node's key and refresh what the controller remembers of its
//! heartbeat ([`health::Observed`]); a timer queues every node each monitor period, because a
//! heartbeat growing old is the absence of events. A sync decides with [`health::decide`].

mod health;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::controllers::follow::{follow, report_queue_depth};
use prometheus_client::metrics::gauge::Gauge;
use skiff_api::client::{Api, Client, DeleteParams};
use skiff_api::runtime::reflector::store;
use skiff_api::runtime::{Action, Change, ControllerConfig, IndexFn, Store, WorkQueue, controller};
use skiff_api::types::{Node, Pod, Resource, Time, values};
use skiff_api::wait::jittered_interval;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

use self::health::{Observed, Timing, decide, with_unknown_conditions};
use super::config::ControllersConfig;
use super::error::ControllerError;
use super::pod_state::is_mirror;

/// Largest random stretch of one node monitor period.
const MONITOR_JITTER: f64 = 0.1;
/// Index of pods by the node they are bound to.
const BY_NODE: &str = "node";
/// Reason set on the Ready condition of pods whose node stopped reporting.
const REASON_NODE_NOT_READY: &str = "NodeNotReady";
/// Message set on the Ready condition of pods whose node stopped reporting.
const MESSAGE_NODE_NOT_READY: &str = "The node this pod runs on stopped reporting.";

/// The node lifecycle controller's shared state.
struct NodeLifecycle {
    /// The API connection.
    client: Client,
    /// Cached nodes.
    nodes: Store<Node>,
    /// Cached pods, indexed by node.
    pods: Store<Pod>,
    /// Keys of nodes to look at.
    queue: WorkQueue,
    /// What was last observed of every node, on this process's clock.
    observed: Mutex<HashMap<String, Observed>>,
    /// Grace period and eviction timeout.
    timing: Timing,
}

/// Runs the node lifecycle controller until `shutdown`.
pub(crate) async fn run(
    client: Client,
    config: ControllersConfig,
    queue_depth: Option<Gauge>,
    shutdown: CancellationToken,
) {
    let by_node: IndexFn<Pod> = Box::new(|p: &Pod| {
        p.spec
            .node_name
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect()
    });
    let (node_writer, nodes) = store::<Node>(Vec::new());
    let (pod_writer, pods) = store::<Pod>(vec![(BY_NODE, by_node)]);
    let controller = Arc::new(NodeLifecycle {
        client: client.clone(),
        nodes: nodes.clone(),
        pods: pods.clone(),
        queue: WorkQueue::with_shutdown(shutdown.clone()),
        observed: Mutex::new(HashMap::new()),
        timing: Timing {
            grace_period: config.node_monitor_grace_period,
            eviction_timeout: config.pod_eviction_timeout,
        },
    });
    let mut tasks = JoinSet::new();
    report_queue_depth(&mut tasks, &controller.queue, queue_depth, &shutdown);
    follow(
        &mut tasks,
        &client,
        node_writer,
        &controller,
        &shutdown,
        |c, change| c.node_changed(&change),
    );
    // Pods are only read when a node is looked at; their events need no reaction.
    follow(
        &mut tasks,
        &client,
        pod_writer,
        &controller,
        &shutdown,
        |_, _| {},
    );
    tokio::select! {
        _ = shutdown.cancelled() => {}
        () = async { nodes.wait_synced().await; pods.wait_synced().await } => {
            info!("node lifecycle controller caches synced");
            let c = Arc::clone(&controller);
            tasks.spawn(controller::run(
                controller.queue.clone(),
                ControllerConfig::new("node-lifecycle", 1),
                shutdown.clone(),
                move |key| {
                    let c = Arc::clone(&c);
                    async move { c.sync(&key).await }
                },
            ));
            let c = Arc::clone(&controller);
            let (period, shutdown) = (config.node_monitor_period, shutdown.clone());
            tasks.spawn(async move { c.monitor(period, shutdown).await });
        }
    }
    shutdown.cancelled().await;
    controller.queue.close();
    while tasks.join_next().await.is_some() {}
}

impl NodeLifecycle {
    /// Takes the lock on the observations (consistent after every call, so poisoning is moot).
    fn observed(&self) -> MutexGuard<'_, HashMap<String, Observed>> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what a node event shows and queues the node.
    fn node_changed(&self, change: &Change<Node>) {
        match change {
            Change::Added(node) | Change::Updated { new: node, .. } => {
                self.observe(node, Instant::now());
                self.queue.add(&node.key());
            }
            Change::Deleted(node) => {
                self.observed().remove(&node.key());
            }
        }
    }

    /// Updates the observation of `node` at `now` and returns it.
    fn observe(&self, node: &Node, now: Instant) -> Observed {
        let mut observed = self.observed();
        let previous = observed.remove(&node.key());
        let current = Observed::observe(previous, node, now);
        observed.insert(node.key(), current.clone());
        current
    }

    /// Queues every node each `period`: heartbeats age without events.
    async fn monitor(&self, period: std::time::Duration, shutdown: CancellationToken) {
        // Jittered, so controllers restarted together do not check in step.
        let mut ticks = jittered_interval(period, MONITOR_JITTER);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            for node in self.nodes.list() {
                self.queue.add(&node.key());
            }
        }
    }

    /// Looks at one node and acts on what [`decide`] says.
    #[instrument(skip(self), fields(node = %key))]
    async fn sync(&self, key: &str) -> Result<Action, ControllerError> {
        let Some(node) = self.nodes.get(key) else {
            self.observed().remove(key);
            return Ok(Action::await_change());
        };
        let now = Instant::now();
        let observed = self.observe(&node, now);
        let plan = decide(&observed, &node, now, self.timing);
        if plan.mark_unknown {
            warn!(
                grace_period = ?self.timing.grace_period,
                "node stopped posting status; marking it Ready=Unknown"
            );
            let marked = with_unknown_conditions(&node, Time::now());
            let api: Api<Node> = self.client.api(None);
            match api.update_status(&marked).await {
                Ok(_) => {
                    if let Some(o) = self.observed().get_mut(key) {
                        o.marked_not_ready(now);
                    }
                }
                Err(e) if e.is_not_found() => return Ok(Action::await_change()),
                Err(e) => {
                    return Err(ControllerError::api("update the status of", "Node", key, e));
                }
            }
        }
        let pods = self.pods.by_index(BY_NODE, key);
        if plan.evict_pods {
            return self
                .evict_pods(key, &pods)
                .await
                .map(|()| Action::await_change());
        }
        if plan.mark_pods_not_ready {
            self.mark_pods_not_ready(&pods).await?;
        }
        Ok(Action::await_change())
    }

    /// Sets the Ready condition of `pods` to False where it is not already.
    async fn mark_pods_not_ready(&self, pods: &[Arc<Pod>]) -> Result<(), ControllerError> {
        let mut first_error = None;
        for pod in pods {
            let Some(updated) = not_ready(pod) else {
                continue;
            };
            info!(pod = %pod.key(), "marking pod not ready: its node stopped reporting");
            let api: Api<Pod> = self.client.api(pod.metadata.namespace.as_deref());
            match api.update_status(&updated).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    first_error.get_or_insert(ControllerError::api(
                        "mark not ready",
                        "Pod",
                        pod.key(),
                        e,
                    ));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes the pods of a node that was not Ready for the eviction timeout.
    async fn evict_pods(&self, node: &str, pods: &[Arc<Pod>]) -> Result<(), ControllerError> {
        let mut first_error = None;
        // A static pod's mirror cannot run elsewhere; it goes and comes with its agent.
        let evictable = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && !is_mirror(p));
        for pod in evictable {
            warn!(
                pod = %pod.key(),
                node,
                eviction_timeout = ?self.timing.eviction_timeout,
                "evicting pod from a node that is not ready"
            );
            let api: Api<Pod> = self.client.api(pod.metadata.namespace.as_deref());
            match api
                .delete(pod.metadata.name_or_empty(), &DeleteParams::default())
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    first_error.get_or_insert(ControllerError::api("evict", "Pod", pod.key(), e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// `pod` with its Ready condition set to False because its node stopped reporting; None when
/// there is nothing to change (no Ready condition, or already False).
fn not_ready(pod: &Pod) -> Option<Pod> {
    let mut pod = pod.clone();
    let condition = pod
        .status
        .as_mut()?
        .conditions
        .iter_mut()
        .find(|c| c.type_ == values::COND_READY && c.status != "False")?;
    condition.status = "False".to_string();
    condition.reason = Some(REASON_NODE_NOT_READY.to_string());
    condition.message = Some(MESSAGE_NODE_NOT_READY.to_string());
    condition.last_transition_time = Some(Time::now());
    Some(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::pod_state::fixtures::{pod, with_status};
    use crate::controllers::pod_state::is_ready;

    #[test]
    fn pods_with_a_ready_condition_are_marked_not_ready_once() {
        let ready = with_status(pod("ns", "a", &[]), "Running", Some("10.0.0.1"), true);
        let marked = not_ready(&ready).unwrap();
        assert!(!is_ready(&marked));
        let condition = crate::controllers::pod_state::ready_condition(&marked).unwrap();
        assert_eq!(condition.reason.as_deref(), Some("NodeNotReady"));
        assert!(
            not_ready(&marked).is_none(),
            "already False: nothing to write"
        );
        assert!(
            not_ready(&pod("ns", "b", &[])).is_none(),
            "no status: nothing to write"
        );
    }
}
