//! The replication manager: keeps the number of live pods matching each replication
//! controller's selector equal to its `spec.replicas`.
//!
//! Caches of RCs and pods (all namespaces) feed a queue of RC keys: an RC event queues the RC,
//! a pod event queues every RC whose selector matches the pod's old or new labels and the RC
//! that manages it. A sync counts the RC's live pods and creates from the template or deletes
//! the surplus, guarded by [`expectations`] so it never acts twice on the same shortage.

mod expectations;
mod pods;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::controllers::follow::{follow, report_queue_depth};
use futures::future::join_all;
use prometheus_client::metrics::gauge::Gauge;
use skiff_api::client::{Api, Client, DeleteParams};
use skiff_api::runtime::reflector::{BY_NAMESPACE, by_namespace, store};
use skiff_api::runtime::{Action, Change, ControllerConfig, Store, WorkQueue, controller};
use skiff_api::types::{Pod, ReplicationController, Resource};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use self::expectations::{Expectations, Readiness};
use self::pods::{
    active_pods, compute_status, controller_key, new_pod, owner_reference, pods_to_adopt,
    pods_to_delete, pods_to_release, selector,
};
use super::config::ControllersConfig;
use super::error::ControllerError;
use super::labels::selector_matches;

/// The most pods one sync creates or deletes, so a typo of `replicas: 100000` is gradual.
const BURST: usize = 500;

/// The replication manager's shared state.
struct Manager {
    /// The API connection.
    client: Client,
    /// Cached replication controllers.
    rcs: Store<ReplicationController>,
    /// Cached pods of all namespaces, indexed by namespace.
    pods: Store<Pod>,
    /// Keys of RCs to sync.
    queue: WorkQueue,
    /// Creations and deletions issued and not yet observed.
    expectations: Expectations,
}

/// Runs the replication manager until `shutdown`.
pub(crate) async fn run(
    client: Client,
    config: ControllersConfig,
    queue_depth: Option<Gauge>,
    shutdown: CancellationToken,
) {
    let (rc_writer, rcs) = store::<ReplicationController>(vec![(BY_NAMESPACE, by_namespace())]);
    let (pod_writer, pods) = store::<Pod>(vec![(BY_NAMESPACE, by_namespace())]);
    let manager = Arc::new(Manager {
        client: client.clone(),
        rcs: rcs.clone(),
        pods: pods.clone(),
        queue: WorkQueue::with_shutdown(shutdown.clone()),
        expectations: Expectations::new(config.expectations_timeout),
    });
    let mut tasks = JoinSet::new();
    report_queue_depth(&mut tasks, &manager.queue, queue_depth, &shutdown);
    follow(
        &mut tasks,
        &client,
        rc_writer,
        &manager,
        &shutdown,
        |c, change| c.rc_changed(change),
    );
    follow(
        &mut tasks,
        &client,
        pod_writer,
        &manager,
        &shutdown,
        |c, change| c.pod_changed(change),
    );
    tokio::select! {
        _ = shutdown.cancelled() => {}
        () = async { rcs.wait_synced().await; pods.wait_synced().await } => {
            info!("replication manager caches synced");
            let m = Arc::clone(&manager);
            tasks.spawn(controller::run(
                manager.queue.clone(),
                ControllerConfig::new("replication", config.replication_workers),
                shutdown.clone(),
                move |key| {
                    let m = Arc::clone(&m);
                    async move { m.sync(&key).await }
                },
            ));
        }
    }
    shutdown.cancelled().await;
    manager.queue.close();
    while tasks.join_next().await.is_some() {}
}

impl Manager {
    /// Queues the RC whose event arrived; a deleted RC's expectations are dropped.
    fn rc_changed(&self, change: Change<ReplicationController>) {
        match change {
            Change::Added(rc) | Change::Updated { new: rc, .. } => {
                self.queue.add(&rc.key());
            }
            Change::Deleted(rc) => {
                self.expectations.forget(&rc.key());
                self.queue.add(&rc.key());
            }
        }
    }

    /// Records observed creations and deletions, then queues every RC the pod concerns.
    fn pod_changed(&self, change: Change<Pod>) {
        let mut concerned = BTreeSet::new();
        match change {
            Change::Added(pod) => {
                if let Some(rc) = controller_key(&pod) {
                    if pod.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(&rc, &pod.key());
                    } else {
                        self.expectations.creation_observed(&rc);
                    }
                }
                self.concerned_rcs(&pod, &mut concerned);
            }
            Change::Updated { old, new } => {
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                    && let Some(rc) = controller_key(&new)
                {
                    self.expectations.deletion_observed(&rc, &new.key());
                }
                self.concerned_rcs(&old, &mut concerned);
                self.concerned_rcs(&new, &mut concerned);
            }
            Change::Deleted(pod) => {
                if let Some(rc) = controller_key(&pod) {
                    self.expectations.deletion_observed(&rc, &pod.key());
                }
                self.concerned_rcs(&pod, &mut concerned);
            }
        }
        for key in concerned {
            self.queue.add(&key);
        }
    }

    /// Adds the keys of the RCs `pod` matters to: its controller and every RC in its
    /// namespace whose selector matches its labels.
    fn concerned_rcs(&self, pod: &Pod, into: &mut BTreeSet<String>) {
        if let Some(key) = controller_key(pod) {
            into.insert(key);
        }
        for rc in self
            .rcs
            .by_index(BY_NAMESPACE, pod.metadata.namespace_or_empty())
        {
            if selector_matches(selector(&rc), &pod.metadata.labels) {
                into.insert(rc.key());
            }
        }
    }

    /// Brings one RC to its desired replica count and reports its status.
    #[instrument(skip(self), fields(rc = %key))]
    async fn sync(&self, key: &str) -> Result<Action, ControllerError> {
        let Some(rc) = self.rcs.get(key) else {
            // Deleted: the apiserver removes its pods; nothing is left to do here.
            self.expectations.forget(key);
            return Ok(Action::await_change());
        };
        let namespace = rc.metadata.namespace_or_empty().to_string();
        let candidates = self.pods.by_index(BY_NAMESPACE, &namespace);
        let active = active_pods(&rc, &candidates);
        let mut outcome = Action::await_change();
        let mut first_error = None;

        match self.expectations.readiness(key, Instant::now()) {
            Readiness::Satisfied => {
                if let Err(e) = self.manage_replicas(key, &rc, &active).await {
                    first_error.get_or_insert(e);
                }
            }
            Readiness::Waiting(remaining) => {
                debug!(?remaining, "waiting to observe earlier creates or deletes");
                outcome = Action::requeue(remaining);
            }
        }
        if let Err(e) = self.claim_pods(&rc, &candidates, &active).await {
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.report_status(&rc, &active).await {
            first_error.get_or_insert(e);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    /// Creates or deletes pods until `active` would equal `spec.replicas`.
    async fn manage_replicas(
        &self,
        key: &str,
        rc: &ReplicationController,
        active: &[Arc<Pod>],
    ) -> Result<(), ControllerError> {
        let want = usize::try_from(rc.spec.replicas.unwrap_or(1)).unwrap_or(0);
        let have = active.len();
        if have < want {
            let count = (want - have).min(BURST);
            self.create_pods(key, rc, count).await
        } else if have > want {
            let victims = pods_to_delete(active, (have - want).min(BURST));
            self.delete_pods(key, &victims).await
        } else {
            Ok(())
        }
    }

    /// Creates `count` pods for `rc`, in batches of 1, 2, 4 … so that a failing create (a
    /// quota, an invalid template) fails once rather than `count` times.
    async fn create_pods(
        &self,
        key: &str,
        rc: &ReplicationController,
        count: usize,
    ) -> Result<(), ControllerError> {
        let Some(pod) = new_pod(rc) else {
            warn!("replication controller has no pod template; cannot create pods");
            return Ok(());
        };
        info!(count, "creating pods");
        self.expectations
            .expect_creations(key, count, Instant::now());
        let api = self
            .client
            .api::<Pod>(Some(rc.metadata.namespace_or_empty()));
        let mut remaining = count;
        let mut batch = 1;
        while remaining > 0 {
            let size = batch.min(remaining);
            remaining -= size;
            let results = join_all((0..size).map(|_| api.create(&pod))).await;
            let mut error = None;
            for result in results {
                match result {
                    Ok(created) => debug!(pod = %created.key(), "created pod"),
                    Err(e) => {
                        // No event will come for a pod that was not created.
                        self.expectations.creation_observed(key);
                        error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = error {
                for _ in 0..remaining {
                    self.expectations.creation_observed(key);
                }
                return Err(ControllerError::api(
                    "create a pod for",
                    "ReplicationController",
                    key,
                    e,
                ));
            }
            batch *= 2;
        }
        Ok(())
    }

    /// Deletes `victims`, the surplus pods of `key`.
    async fn delete_pods(&self, key: &str, victims: &[Arc<Pod>]) -> Result<(), ControllerError> {
        let pod_keys: Vec<String> = victims.iter().map(|p| p.key()).collect();
        info!(count = victims.len(), pods = ?pod_keys, "deleting surplus pods");
        self.expectations
            .expect_deletions(key, &pod_keys, Instant::now());
        let results = join_all(victims.iter().map(|pod| async move {
            let api = self.client.api::<Pod>(pod.metadata.namespace.as_deref());
            (
                pod,
                api.delete(pod.metadata.name_or_empty(), &DeleteParams::default())
                    .await,
            )
        }))
        .await;
        let mut error = None;
        for (pod, result) in results {
            match result {
                Ok(()) => {}
                // Already gone: its delete event is on its way.
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    self.expectations.deletion_observed(key, &pod.key());
                    error.get_or_insert(ControllerError::api("delete", "Pod", pod.key(), e));
                }
            }
        }
        error.map_or(Ok(()), Err)
    }

    /// Adopts matching pods without a controller and lets go of managed pods whose labels
    /// stopped matching, so a cascading delete of the RC takes exactly its replicas.
    async fn claim_pods(
        &self,
        rc: &ReplicationController,
        candidates: &[Arc<Pod>],
        active: &[Arc<Pod>],
    ) -> Result<(), ControllerError> {
        let mut first_error = None;
        for pod in pods_to_adopt(active) {
            let mut adopted = (*pod).clone();
            adopted.metadata.owner_references.push(owner_reference(rc));
            debug!(pod = %pod.key(), "adopting pod");
            if let Err(e) = self.update_pod(&adopted).await {
                first_error.get_or_insert(ControllerError::api("adopt", "Pod", pod.key(), e));
            }
        }
        for pod in pods_to_release(rc, candidates) {
            let mut released = (*pod).clone();
            let uid = rc.metadata.uid.clone().unwrap_or_default();
            released.metadata.owner_references.retain(|r| r.uid != uid);
            info!(pod = %pod.key(), "releasing pod whose labels no longer match");
            if let Err(e) = self.update_pod(&released).await {
                first_error.get_or_insert(ControllerError::api("release", "Pod", pod.key(), e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes a pod's metadata back (compare-and-swap on its resourceVersion); a pod that
    /// is gone needs nothing.
    async fn update_pod(&self, pod: &Pod) -> Result<(), skiff_api::client::ClientError> {
        let api: Api<Pod> = self.client.api(pod.metadata.namespace.as_deref());
        match api.update(pod).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Updates `status` of the RC when the counts changed.
    async fn report_status(
        &self,
        rc: &ReplicationController,
        active: &[Arc<Pod>],
    ) -> Result<(), ControllerError> {
        let status = compute_status(rc, active, chrono::Utc::now());
        if rc.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut updated = rc.clone();
        updated.status = Some(status);
        let api: Api<ReplicationController> = self.client.api(rc.metadata.namespace.as_deref());
        match api.update_status(&updated).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(ControllerError::api(
                "update the status of",
                "ReplicationController",
                rc.key(),
                e,
            )),
        }
    }
}
