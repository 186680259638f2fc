//! One pod worker: owns the pod's containers, woken by desired-state changes, probe results,
//! its own backoff timers and a periodic resync. Each wake-up runs one [`PodWorker::sync`]
//! (make the containers match the spec) or, once the pod is no longer desired,
//! [`PodWorker::terminate`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::types::{Pod, PodStatus, Time};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::backoff::RetryBackoff;
use super::config::PodManagerConfig;
use super::error::PodError;
use super::identity::PodKey;
use super::observed::Observed;
use super::probes::ProbeResults;
use super::status::{StatusView, Waiting, pod_status, time};
use super::status_handle::PodStatusHandle;
use crate::metrics::Metrics;
use crate::prober::{ProbeKind, Prober};
use crate::runtime::{ContainerRuntime, RuntimeError};

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

/// What the worker remembers about one container of the spec between syncs.
#[derive(Debug)]
pub(crate) struct ContainerRecord {
    /// Delay between failed pulls of its image.
    pub pull_backoff: RetryBackoff,
    /// Delay between restarts when it keeps exiting.
    pub crash_backoff: RetryBackoff,
    /// Why it is not running, when the worker knows better than the engine.
    pub waiting: Option<Waiting>,
    /// The exited container whose exit was already fed into `crash_backoff`.
    pub accounted_exit: Option<String>,
}

impl ContainerRecord {
    /// A fresh record with the configured backoff timings.
    pub fn new(config: &PodManagerConfig) -> Self {
        ContainerRecord {
            pull_backoff: RetryBackoff::new(config.backoff_base, config.backoff_cap),
            crash_backoff: RetryBackoff::new(config.backoff_base, config.backoff_cap),
            waiting: None,
            accounted_exit: None,
        }
    }
}

/// The worker of one pod.
pub(crate) struct PodWorker<R: ContainerRuntime, P> {
    /// Engine, prober, settings, metrics, statuses.
    pub(super) shared: Shared<R, P>,
    /// The pod's identity (its uid finds its containers).
    pub(super) key: PodKey,
    /// The desired pod; `None` once it is no longer desired (or for orphans found at start).
    pub(super) pod: Option<Arc<Pod>>,
    /// The last desired pod, kept for its hooks and grace period while terminating.
    pub(super) last_pod: Option<Arc<Pod>>,
    /// Per-container memory, by container name.
    pub(super) records: BTreeMap<String, ContainerRecord>,
    /// Delay between failed attempts to make the infra container.
    pub(super) infra_backoff: RetryBackoff,
    /// Why the infra container cannot be made, for the pod status.
    pub(super) infra_message: Option<String>,
    /// When the agent first ran the pod (reported as startTime).
    pub(super) start_time: Option<Time>,
    /// The status last published, for condition transition times.
    pub(super) last_status: Option<PodStatus>,
    /// Application containers running at the last sync, for the containers gauge.
    pub(super) running_apps: i64,
    /// Why the agent killed a container (liveness failure), by container id.
    pub(super) kill_messages: HashMap<String, String>,
    /// The earliest moment a backoff or state change needs another sync.
    pub(super) wake_at: Option<Instant>,
}

impl<R: ContainerRuntime, P: ProbeResults> PodWorker<R, P> {
    /// A worker for the pod `key`, desired as `pod` (`None`: only clean up its containers).
    pub fn new(shared: Shared<R, P>, key: PodKey, pod: Option<Arc<Pod>>) -> Self {
        let infra_backoff =
            RetryBackoff::new(shared.config.backoff_base, shared.config.backoff_cap);
        PodWorker {
            shared,
            key,
            last_pod: pod.clone(),
            pod,
            records: BTreeMap::new(),
            infra_backoff,
            infra_message: None,
            start_time: None,
            last_status: None,
            running_apps: 0,
            kill_messages: HashMap::new(),
            wake_at: None,
        }
    }

    /// Replaces the desired pod (`None`: it is no longer desired).
    pub fn set_desired(&mut self, pod: Option<Arc<Pod>>) {
        if let Some(pod) = &pod {
            self.last_pod = Some(Arc::clone(pod));
        }
        self.pod = pod;
    }

    /// Asks for another sync at `at` at the latest.
    pub(super) fn wake(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// Lists the pod's containers (only those of this node, by labels).
    pub(super) async fn observe(&self) -> Result<Observed, PodError> {
        let filter = self.key.filter(&self.shared.config.node_name);
        let containers = self
            .shared
            .runtime
            .list_containers(&filter)
            .await
            .map_err(|source| self.runtime_error("list containers", source))?;
        Ok(Observed::group(containers))
    }

    /// A [`PodError::Runtime`] for this pod.
    pub(super) fn runtime_error(
        &self,
        action: impl Into<String>,
        source: RuntimeError,
    ) -> PodError {
        PodError::Runtime {
            pod: self.key.to_string(),
            action: action.into(),
            source,
        }
    }

    /// Computes the pod's status from `observed` and publishes it (and the containers gauge).
    pub(super) fn publish(&mut self, pod: &Pod, observed: &Observed) {
        let running = i64::try_from(observed.running_apps()).unwrap_or(i64::MAX);
        self.set_running_apps(running);
        let waiting = self
            .records
            .iter()
            .filter_map(|(name, r)| r.waiting.as_ref().map(|w| (name.as_str(), w)))
            .collect();
        let host_network = pod.spec.host_network.unwrap_or(false);
        let pod_ip = if host_network {
            Some(self.shared.host_ip)
        } else {
            observed
                .current_infra()
                .filter(|i| i.state.is_running())
                .and_then(|i| i.ip_address)
        };
        let view = StatusView {
            pod,
            observed,
            waiting,
            kill_messages: &self.kill_messages,
            pod_ip,
            host_ip: self.shared.host_ip,
            start_time: self.start_time,
            message: self.infra_message.clone(),
        };
        let probes = &self.shared.probes;
        let status = pod_status(
            &view,
            |container, info| {
                container.readiness_probe.is_none()
                    || probes.healthy(&info.id, ProbeKind::Readiness) == Some(true)
            },
            self.last_status.as_ref(),
        );
        if self.last_status.as_ref() != Some(&status) {
            debug!(pod = %self.key, phase = ?status.phase, "pod status changed");
        }
        let mut published = pod.clone();
        published.status = Some(status.clone());
        self.last_status = Some(status);
        self.shared.statuses.publish(&self.key.uid, published);
    }

    /// Moves the containers gauge by the change in this pod's running containers.
    pub(super) fn set_running_apps(&mut self, running: i64) {
        let delta = running - self.running_apps;
        if delta > 0 {
            self.shared.metrics.containers.inc_by(delta);
        } else if delta < 0 {
            self.shared.metrics.containers.dec_by(-delta);
        }
        self.running_apps = running;
    }

    /// Sets startTime once: the oldest container's creation (an adopted pod), else now.
    pub(super) fn note_start_time(&mut self, observed: &Observed) {
        if self.start_time.is_some() {
            return;
        }
        let oldest = observed
            .infra
            .iter()
            .chain(observed.all_apps())
            .filter_map(|c| c.created_at)
            .min();
        self.start_time = Some(oldest.map_or_else(Time::now, time));
    }

    /// The wake-up time after a sync: the resync interval, or earlier for a backoff or state.
    fn next_wake(&self, now: Instant) -> Instant {
        let resync = now + self.shared.config.resync_interval;
        self.wake_at.map_or(resync, |w| w.min(resync).max(now))
    }

    /// Runs the worker until the pod is gone (terminated and no longer desired) or `shutdown`.
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Pod>>>,
        shutdown: CancellationToken,
    ) {
        let span = info_span!("pod", pod = %self.key, uid = %self.key.uid);
        async move {
            let mut probe_changes = Some(self.shared.probes.changes());
            loop {
                let wanted = desired.borrow_and_update().clone();
                let desired_now = wanted.is_some();
                self.set_desired(wanted);
                let started = Instant::now();
                if desired_now {
                    let result = tokio::select! {
                        () = shutdown.cancelled() => return,
                        result = self.sync() => result,
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
                        result = self.terminate() => result,
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
                    changed = wait_changed(&mut probe_changes) => {
                        if !changed {
                            probe_changes = None;
                        }
                    }
                    () = tokio::time::sleep_until(wake) => {}
                }
            }
        }
        .instrument(span)
        .await;
    }
}

/// Waits for the next probe-result change; false once the prober is gone (never again ready).
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
