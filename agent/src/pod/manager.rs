//! The pod manager: one worker task per desired pod (keyed by uid), fed from the merged
//! desired state; workers for pods that stop being desired remove their containers, and
//! containers of this node whose pod no agent worker owns (left from before a restart) are
//! removed too. Every resync pass lists the node's containers once and hands each worker its
//! pod's slice, so the workers of a pass list nothing themselves.

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
use super::worker::{PodWorker, Resync, Shared};
use crate::config::DesiredState;
use crate::metrics::Metrics;
use crate::prober::Prober;
use crate::runtime::{ContainerInfo, ContainerRuntime, labels};

/// How often the manager looks for containers of pods it has no worker for, in resync passes.
const ORPHAN_SCAN_EVERY: u32 = 15;
/// How long shutdown waits for workers to notice the stop signal.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The running worker of one pod.
struct WorkerHandle {
    /// The desired pod; `None` tells the worker to remove the pod.
    desired: watch::Sender<Option<Arc<Pod>>>,
    /// The resync passes: the pod's slice of each node-wide listing.
    resyncs: watch::Sender<Option<Resync>>,
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
        let state = desired.borrow_and_update().clone();
        self.apply(&state, &mut workers, &shutdown);
        // The new workers sync on their own at once; this pass only looks for orphans.
        if let Some(listing) = self.list_node().await {
            self.remove_orphans(&listing, &mut workers, &shutdown);
        }
        let mut passes = tokio::time::interval_at(
            Instant::now() + config.resync_interval,
            config.resync_interval,
        );
        passes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pass = 0u32;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = desired.changed(), if desired_open => {
                    if changed.is_err() {
                        // The sources are gone: keep running the last desired state.
                        desired_open = false;
                    }
                    let state = desired.borrow_and_update().clone();
                    self.apply(&state, &mut workers, &shutdown);
                }
                _ = passes.tick() => {
                    pass = pass.wrapping_add(1);
                    self.resync(&mut workers, pass.is_multiple_of(ORPHAN_SCAN_EVERY), &shutdown)
                        .await;
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
        let (resyncs, resyncs_rx) = watch::channel(None);
        let worker = PodWorker::new(self.shared.clone(), key, pod);
        let task = tokio::spawn(worker.run(rx, resyncs_rx, shutdown.clone()));
        WorkerHandle {
            desired,
            resyncs,
            task,
        }
    }

    /// Lists every container of this node once; `None` (logged) when the engine fails.
    async fn list_node(&self) -> Option<Listing> {
        let filter = node_filter(&self.shared.config.node_name);
        match self.shared.runtime.list_containers(&filter).await {
            Ok(containers) => Some(Listing::group(containers)),
            Err(error) => {
                warn!(error = %error, "could not list the node's containers");
                None
            }
        }
    }

    /// One resync pass: one node-wide listing, each worker woken with its pod's slice (or, when
    /// the listing failed, told to list its own); with `scan_orphans`, containers of pods
    /// without a worker get a removal worker.
    async fn resync(
        &self,
        workers: &mut HashMap<String, WorkerHandle>,
        scan_orphans: bool,
        shutdown: &CancellationToken,
    ) {
        workers.retain(|_, w| !w.task.is_finished());
        let taken_at = Instant::now();
        let listing = self.list_node().await;
        for (uid, worker) in workers.iter() {
            let containers = listing.as_ref().map(|l| l.slice(uid));
            worker.resyncs.send_replace(Some(Resync {
                taken_at,
                containers,
            }));
        }
        if scan_orphans && let Some(listing) = &listing {
            self.remove_orphans(listing, workers, shutdown);
        }
    }

    /// Starts removal workers for containers of this node whose pod has no worker (pods
    /// deleted while the agent was down).
    fn remove_orphans(
        &self,
        listing: &Listing,
        workers: &mut HashMap<String, WorkerHandle>,
        shutdown: &CancellationToken,
    ) {
        for (uid, containers) in &listing.pods {
            if workers.contains_key(uid) {
                continue;
            }
            let Some(info) = containers.first() else {
                continue;
            };
            let key = PodKey {
                namespace: info.label(labels::POD_NAMESPACE).unwrap_or("").to_string(),
                name: info.label(labels::POD_NAME).unwrap_or("").to_string(),
                uid: uid.clone(),
            };
            info!(pod = %key, uid = %key.uid, "removing containers of a pod that is no longer desired");
            let handle = self.spawn(key, None, shutdown);
            workers.insert(uid.clone(), handle);
        }
    }
}

/// One node-wide listing, by pod uid.
struct Listing {
    /// The containers of each pod, by the `io.skiff.pod.uid` label.
    pods: BTreeMap<String, Arc<Vec<ContainerInfo>>>,
}

impl Listing {
    /// Groups the node's containers by pod uid (those without one are not the agent's).
    fn group(containers: Vec<ContainerInfo>) -> Self {
        let mut pods: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
        for info in containers {
            if let Some(uid) = info.label(labels::POD_UID) {
                pods.entry(uid.to_string()).or_default().push(info);
            }
        }
        Listing {
            pods: pods
                .into_iter()
                .map(|(uid, c)| (uid, Arc::new(c)))
                .collect(),
        }
    }

    /// The containers of pod `uid` (none when it has none).
    fn slice(&self, uid: &str) -> Arc<Vec<ContainerInfo>> {
        self.pods.get(uid).cloned().unwrap_or_default()
    }
}
