//! One pod worker: owns the pod's containers, woken by desired-state changes, its own pod's
//! probe results, its own backoff timers and the manager's resync passes. Each wake-up runs one
//! [`PodWorker::sync`] — observe → [`plan`](super::plan::plan) →
//! [`execute`](super::execute::Executor) → publish — or, once the pod is no longer desired,
//! [`PodWorker::terminate`]. A sync lists the pod's containers at most once: a resync pass
//! hands the worker its pod's slice of the manager's node-wide listing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::types::Pod;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::config::PodManagerConfig;
use super::error::PodError;
use super::execute::Executor;
use super::identity::PodKey;
use super::kill;
use super::observed::Observed;
use super::ops::Engine;
use super::plan::{Now, SandboxAction, plan};
use super::probes::ProbeResults;
use super::publish::Published;
use super::records::PodRecords;
use super::status_handle::PodStatusHandle;
use crate::metrics::Metrics;
use crate::prober::Prober;
use crate::runtime::{ContainerInfo, ContainerRuntime};

/// What every worker shares: the engine, the prober, settings, metrics and the status table.
pub(crate) struct Shared<R: ContainerRuntime, P> {
    /// The container engine.
    pub runtime: Arc<R>,
    /// Liveness and readiness results.
    pub probes: Arc<P>,
    /// The manager's settings.
    pub config: Arc<PodManagerConfig>,
    /// Where syncs, pulls and restarts are counted.
    pub metrics: Arc<Metrics>,
    /// Where computed statuses go.
    pub statuses: PodStatusHandle,
    /// The node's address (hostIP, podIP of hostNetwork pods).
    pub host_ip: IpAddr,
    /// Runs lifecycle hooks (exec, HTTP GET, TCP) the way probes run.
    pub hooks: Prober<R>,
}

impl<R: ContainerRuntime, P> Clone for Shared<R, P> {
    fn clone(&self) -> Self {
        Shared {
            runtime: Arc::clone(&self.runtime),
            probes: Arc::clone(&self.probes),
            config: Arc::clone(&self.config),
            metrics: Arc::clone(&self.metrics),
            statuses: self.statuses.clone(),
            host_ip: self.host_ip,
            hooks: self.hooks.clone(),
        }
    }
}

/// One resync pass of the manager as one worker receives it.
#[derive(Clone, Debug)]
pub(crate) struct Resync {
    /// When the node-wide listing started.
    pub taken_at: Instant,
    /// The pod's containers from that listing; `None` when it failed (the worker lists its own).
    pub containers: Option<Arc<Vec<ContainerInfo>>>,
}

/// The desired pod as the worker knows it.
#[derive(Debug, Default)]
struct Desired {
    /// The desired pod; `None` once it is no longer desired (or for orphans found at start).
    pod: Option<Arc<Pod>>,
    /// The last desired pod, kept for its hooks and grace period while terminating.
    last: Option<Arc<Pod>>,
}

/// The worker of one pod.
pub(crate) struct PodWorker<R: ContainerRuntime, P> {
    /// Engine, prober, settings, metrics, statuses.
    shared: Shared<R, P>,
    /// The pod's identity (its uid finds its containers).
    key: PodKey,
    /// The desired pod and the last one.
    desired: Desired,
    /// What it remembers between syncs.
    records: PodRecords,
    /// What it last published.
    published: Published,
    /// The earliest moment a backoff or state change needs another sync.
    wake_at: Option<Instant>,
    /// When the last sync that changed containers ended: listings older than that are stale.
    mutated_at: Option<Instant>,
}

impl<R: ContainerRuntime, P: ProbeResults> PodWorker<R, P> {
    /// A worker for the pod `key`, desired as `pod` (`None`: only clean up its containers).
    pub fn new(shared: Shared<R, P>, key: PodKey, pod: Option<Arc<Pod>>) -> Self {
        let records = PodRecords::new(&shared.config);
        PodWorker {
            shared,
            key,
            desired: Desired {
                last: pod.clone(),
                pod,
            },
            records,
            published: Published::default(),
            wake_at: None,
            mutated_at: None,
        }
    }

    /// Replaces the desired pod (`None`: it is no longer desired).
    pub fn set_desired(&mut self, pod: Option<Arc<Pod>>) {
        if let Some(pod) = &pod {
            self.desired.last = Some(Arc::clone(pod));
        }
        self.desired.pod = pod;
    }

    /// The earliest moment a backoff or state change asked for another sync.
    #[cfg(test)]
    pub fn wake_at(&self) -> Option<Instant> {
        self.wake_at
    }

    /// What the worker remembers between syncs.
    #[cfg(test)]
    pub fn records(&self) -> &PodRecords {
        &self.records
    }

    /// The engine, for this pod.
    fn engine(&self) -> Engine<'_, R, P> {
        Engine::new(&self.shared, &self.key)
    }

    /// The pod's containers: from `resync` when its listing saw every change this worker
    /// made, else from one listing of the pod's own containers.
    async fn observe(&self, resync: Option<Resync>) -> Result<Vec<ContainerInfo>, PodError> {
        let fresh = resync.and_then(|r| {
            let seen_all = self.mutated_at.is_none_or(|at| r.taken_at >= at);
            r.containers.filter(|_| seen_all)
        });
        match fresh {
            Some(containers) => Ok(containers.as_ref().clone()),
            None => self.engine().list().await,
        }
    }

    /// One reconcile pass for the desired pod, listing its containers; publishes its status.
    #[cfg(test)]
    pub async fn sync(&mut self) -> Result<(), PodError> {
        self.sync_from(None).await
    }

    /// One reconcile pass, from the containers of `resync` when they are fresh enough.
    async fn sync_from(&mut self, resync: Option<Resync>) -> Result<(), PodError> {
        let Some(pod) = self.desired.pod.clone() else {
            return Ok(());
        };
        let now = Now::current();
        self.wake_at = None;
        let mut view = Observed::group(self.observe(resync).await?);
        self.records.note_start_time(&view);
        if self
            .shared
            .statuses
            .get(&self.key.namespace, &self.key.name)
            .is_none()
        {
            // A new pod shows as Pending with its containers creating before the first
            // (possibly long) pull, and the pull's progress can be written into it.
            self.published
                .publish(&self.shared, &self.key, &pod, &view, &self.records);
        }
        let engine = Engine::new(&self.shared, &self.key);
        let hook_ip = self.published.pod_ip();
        let mut executor = Executor::new(engine, &mut self.records, &mut view, hook_ip, now);
        // A second pass only follows a new sandbox: the containers are planned against it.
        for _ in 0..2 {
            executor.note_liveness();
            let actions = executor.plan(&pod);
            debug!(
                sandbox = actions.sandbox.kind(),
                containers = actions.containers.len(),
                wake_at = ?actions.wake_at,
                "planned sync"
            );
            if !executor.apply(&pod, actions).await {
                break;
            }
        }
        executor.collect_garbage(Some(&pod)).await;
        let outcome = executor.finish();
        self.wake_at = outcome.wake_at;
        if outcome.mutated {
            self.mutated_at = Some(Instant::now());
        }
        self.records.retain_kill_messages(&view);
        self.published
            .publish(&self.shared, &self.key, &pod, &view, &self.records);
        Ok(())
    }

    /// Stops and removes every container of the pod (see [`PodWorker::terminate_from`]),
    /// listing them first. Returns whether nothing of the pod is left.
    #[cfg(test)]
    pub async fn terminate(&mut self) -> Result<bool, PodError> {
        self.terminate_from(None).await
    }

    /// Stops and removes every container of the pod — application containers first, all at
    /// once, each with the pod's grace period; the infra container last — then its volume
    /// directories and probes. Returns whether nothing of the pod is left.
    async fn terminate_from(&mut self, resync: Option<Resync>) -> Result<bool, PodError> {
        let observed = Observed::group(self.observe(resync).await?);
        if observed.is_empty() {
            self.finish_removal().await;
            return Ok(true);
        }
        let actions = plan(
            None,
            &observed,
            &self.records,
            Now::current(),
            &self.shared.config,
        );
        let SandboxAction::KillPod {
            kill,
            stop_infra,
            remove,
        } = actions.sandbox
        else {
            return Ok(false);
        };
        let engine = self.engine();
        let pod = self.desired.last.as_deref();
        let pod_ip = self.published.pod_ip();
        let gone = kill::remove_all(&engine, pod, &kill, &stop_infra, &remove, pod_ip).await;
        self.mutated_at = Some(Instant::now());
        if !gone {
            return Ok(false);
        }
        self.finish_removal().await;
        Ok(true)
    }

    /// The pod's containers are gone: drop its probes, volume directories and gauge share.
    async fn finish_removal(&mut self) {
        self.shared.probes.remove_pod(&self.key.uid).await;
        if let Err(error) =
            super::volumes::remove_pod_dir(&self.shared.config.data_dir, &self.key.uid)
        {
            let error = PodError::Volume {
                pod: self.key.to_string(),
                action: "remove pod directory".into(),
                path: error.path,
                source: error.source,
            };
            warn!(error = %error, "could not remove the pod directory");
        }
        self.published.clear(&self.shared.metrics);
        self.records.clear();
    }

    /// The wake-up time after a sync, if a backoff or state change asked for one.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        self.wake_at.map(|w| w.max(now))
    }

    /// Runs the worker until the pod is gone (terminated and no longer desired) or `shutdown`.
    /// `resyncs` brings the manager's passes.
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Pod>>>,
        mut resyncs: watch::Receiver<Option<Resync>>,
        shutdown: CancellationToken,
    ) {
        let span = info_span!("pod", pod = %self.key, uid = %self.key.uid);
        async move {
            let mut probe_changes = Some(self.shared.probes.changes(&self.key.uid));
            let mut resyncs_open = true;
            let mut resync: Option<Resync> = None;
            loop {
                let wanted = desired.borrow_and_update().clone();
                let desired_now = wanted.is_some();
                self.set_desired(wanted);
                let started = Instant::now();
                let pass = resync.take();
                if desired_now {
                    let result = tokio::select! {
                        () = shutdown.cancelled() => return,
                        result = self.sync_from(pass) => result,
                    };
                    self.shared
                        .metrics
                        .sync_duration
                        .observe(started.elapsed().as_secs_f64());
                    if let Err(error) = result {
                        warn!(error = %error, "pod sync failed; retrying");
                    }
                } else {
                    self.shared.statuses.remove(&self.key.uid);
                    let result = tokio::select! {
                        () = shutdown.cancelled() => return,
                        result = self.terminate_from(pass) => result,
                    };
                    match result {
                        Ok(true) if desired.borrow().is_none() => {
                            info!("pod removed");
                            return;
                        }
                        Ok(_) => {}
                        Err(error) => warn!(error = %error, "pod removal failed; retrying"),
                    }
                }
                let wake = self.next_wake(Instant::now());
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    changed = desired.changed() => {
                        if changed.is_err() {
                            // The manager is gone: it only drops workers when shutting down.
                            return;
                        }
                    }
                    changed = resyncs.changed(), if resyncs_open => {
                        if changed.is_ok() {
                            resync = resyncs.borrow_and_update().clone();
                        } else {
                            resyncs_open = false;
                        }
                    }
                    changed = wait_changed(&mut probe_changes) => {
                        if !changed {
                            probe_changes = None;
                        }
                    }
                    () = sleep_until(wake) => {}
                }
            }
        }
        .instrument(span)
        .await;
    }
}

/// Sleeps until `at`; forever when there is nothing to wake for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Waits for the next probe-result change of the pod; false once the prober is gone.
async fn wait_changed(changes: &mut Option<watch::Receiver<u64>>) -> bool {
    match changes {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Shortens `text` for log fields.
pub(super) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// How long a backoff waits before reporting the back-off state of a failed attempt: half the
/// delay (so both the error and the back-off are visible), at most the delay itself.
pub(super) fn report_after(delay: Duration) -> Duration {
    delay / 2
}
