//! The pod manager: one worker task per desired pod (keyed by uid), fed from the merged
//! desired state; workers for pods that stop being desired remove their containers, and
//! containers of this node whose pod no agent worker owns (left from before a restart) are
//! removed too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use skiff_api::types::Pod;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::PodManagerConfig;
use super::identity::{PodKey, node_filter};
use super::probes::ProbeResults;
use super::status_handle::PodStatusHandle;
use super::worker::{PodWorker, Shared};
use crate::config::DesiredState;
use crate::metrics::Metrics;
use crate::prober::Prober;
use crate::runtime::{ContainerRuntime, labels};

/// How often the manager looks for containers of pods it has no worker for, in resyncs.
const ORPHAN_SCAN_EVERY: u32 = 15;
/// How long shutdown waits for workers to notice the stop signal.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The running worker of one pod.
struct WorkerHandle {
    /// The desired pod; `None` tells the worker to remove the pod.
    desired: watch::Sender<Option<Arc<Pod>>>,
    /// The worker task; it ends once the pod is removed (or at shutdown).
    task: JoinHandle<()>,
}

/// Runs the desired pods on this node through a container runtime.
pub struct PodManager<R: ContainerRuntime, P> {
    /// What every worker shares.
    shared: Shared<R, P>,
}

impl<R: ContainerRuntime, P: ProbeResults> PodManager<R, P> {
    /// A manager running pods through `runtime`, reporting into `metrics`, deciding restarts
    /// and readiness from `probes`.
    pub fn new(
        runtime: Arc<R>,
        config: PodManagerConfig,
        metrics: Arc<Metrics>,
        probes: Arc<P>,
    ) -> Self {
        let host_ip = config.effective_host_ip();
        let hooks = Prober::new(Arc::clone(&runtime));
        PodManager {
            shared: Shared {
                hooks,
                runtime,
                probes,
                config: Arc::new(config),
                metrics,
                statuses: PodStatusHandle::new(),
                host_ip,
            },
        }
    }

    /// A read handle on every desired pod with its computed status.
    pub fn status_handle(&self) -> PodStatusHandle {
        self.shared.statuses.clone()
    }

    /// Runs until `shutdown`: every value of `desired` is taken as the complete set of pods
    /// this node should run (send it only once the sources have loaded). On shutdown it returns
    /// without stopping any container, so an agent restart restarts no pod.
    pub async fn run(
        self,
        mut desired: watch::Receiver<Arc<DesiredState>>,
        shutdown: CancellationToken,
    ) {
        let config = Arc::clone(&self.shared.config);
        info!(node = %config.node_name, "pod manager started");
        let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
        let mut desired_open = true;
        let mut resyncs = 0u32;
        loop {
            let state = desired.borrow_and_update().clone();
            self.apply(&state, &mut workers, &shutdown);
            if resyncs.is_multiple_of(ORPHAN_SCAN_EVERY) {
                self.remove_orphans(&mut workers, &shutdown).await;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = desired.changed(), if desired_open => {
                    if changed.is_err() {
                        // The sources are gone: keep running the last desired state.
                        desired_open = false;
                    }
                }
                () = tokio::time::sleep(config.resync_interval) => {
                    resyncs = resyncs.wrapping_add(1);
                }
            }
        }
        let deadline = Instant::now() + WORKER_STOP_TIMEOUT;
        for (uid, worker) in workers {
            if tokio::time::timeout_at(deadline, worker.task)
                .await
                .is_err()
            {
                warn!(uid = %uid, "pod worker did not stop in time");
            }
        }
        info!("pod manager stopped; containers keep running");
    }

    /// Hands every worker its desired pod, starts workers for new pods and tells workers of
    /// pods no longer desired to remove them.
    fn apply(
        &self,
        state: &DesiredState,
        workers: &mut HashMap<String, WorkerHandle>,
        shutdown: &CancellationToken,
    ) {
        let wanted: BTreeMap<String, &Pod> = state
            .pods
            .values()
            .map(|d| (PodKey::of(&d.pod).uid, &d.pod))
            .collect();
        self.shared
            .metrics
            .pods
            .set(i64::try_from(wanted.len()).unwrap_or(i64::MAX));
        // A worker that finished removing its pod is gone; a pod desired again gets a new one.
        workers.retain(|_, w| !w.task.is_finished());
        for (uid, pod) in &wanted {
            match workers.get(uid) {
                Some(worker) => {
                    worker.desired.send_if_modified(|current| {
                        if current.as_deref() == Some(*pod) {
                            false
                        } else {
                            *current = Some(Arc::new((*pod).clone()));
                            true
                        }
                    });
                }
                None => {
                    let key = PodKey::of(pod);
                    info!(pod = %key, uid = %key.uid, "new pod");
                    let handle = self.spawn(key, Some(Arc::new((*pod).clone())), shutdown);
                    workers.insert(uid.clone(), handle);
                }
            }
        }
        for (uid, worker) in workers.iter() {
            if !wanted.contains_key(uid) {
                worker
                    .desired
                    .send_if_modified(|current| current.take().is_some());
            }
        }
    }

    /// Starts the worker of one pod.
    fn spawn(
        &self,
        key: PodKey,
        pod: Option<Arc<Pod>>,
        shutdown: &CancellationToken,
    ) -> WorkerHandle {
        let (desired, rx) = watch::channel(pod.clone());
        let worker = PodWorker::new(self.shared.clone(), key, pod);
        let task = tokio::spawn(worker.run(rx, shutdown.clone()));
        WorkerHandle { desired, task }
    }

    /// Starts removal workers for containers of this node whose pod has no worker (pods
    /// deleted while the agent was down).
    async fn remove_orphans(
        &self,
        workers: &mut HashMap<String, WorkerHandle>,
        shutdown: &CancellationToken,
    ) {
        let filter = node_filter(&self.shared.config.node_name);
        let containers = match self.shared.runtime.list_containers(&filter).await {
            Ok(containers) => containers,
            Err(error) => {
                warn!(error = %error, "could not list containers to find orphans");
                return;
            }
        };
        for info in containers {
            let Some(uid) = info.label(labels::POD_UID) else {
                continue;
            };
            if workers.contains_key(uid) {
                continue;
            }
            let key = PodKey {
                namespace: info.label(labels::POD_NAMESPACE).unwrap_or("").to_string(),
                name: info.label(labels::POD_NAME).unwrap_or("").to_string(),
                uid: uid.to_string(),
            };
            info!(pod = %key, uid = %key.uid, "removing containers of a pod that is no longer desired");
            let handle = self.spawn(key, None, shutdown);
            workers.insert(uid.to_string(), handle);
        }
    }
}
