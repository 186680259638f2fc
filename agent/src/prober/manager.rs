//! The probe manager: starts, finds and stops one worker per (container, kind).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use skiff_api::types::Probe;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::worker::Worker;
use super::{ContainerKey, ProbeKind, ProbeState, ProbeTarget, ProbeTiming, Prober, lock};
use crate::runtime::ContainerRuntime;

/// Runs the liveness and readiness workers of every container and answers for their results.
///
/// Cheap to clone; all clones share the workers. Workers stop on [`ProbeManager::remove_container`],
/// [`ProbeManager::remove_pod`], or when the last clone is dropped.
pub struct ProbeManager<R: ContainerRuntime> {
    /// The shared part; its drop cancels every worker.
    inner: Arc<Inner<R>>,
}

impl<R: ContainerRuntime> Clone for ProbeManager<R> {
    fn clone(&self) -> Self {
        ProbeManager {
            inner: self.inner.clone(),
        }
    }
}

/// What all clones of a manager share. Workers never hold it, so its drop means "no manager".
struct Inner<R: ContainerRuntime> {
    /// Runs probe attempts; each worker gets a clone.
    prober: Prober<R>,
    /// The running workers by (container id, kind).
    workers: Mutex<HashMap<(String, ProbeKind), WorkerEntry>>,
    /// Per pod uid, the change counter its workers bump when a result flips.
    changes: Mutex<HashMap<String, Arc<watch::Sender<u64>>>>,
    /// Parent of every worker's token: cancelled when the manager is dropped.
    root: CancellationToken,
    /// Tracks the worker tasks (tests wait on it to see workers end).
    tracker: TaskTracker,
}

/// The manager's handle on one worker.
struct WorkerEntry {
    /// The pod it belongs to, for [`ProbeManager::remove_pod`].
    pod_uid: String,
    /// Stops the worker.
    cancel: CancellationToken,
    /// The worker's current conclusion.
    state: Arc<Mutex<ProbeState>>,
}

impl<R: ContainerRuntime> Drop for Inner<R> {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

impl<R: ContainerRuntime> ProbeManager<R> {
    /// A manager with no workers; exec probes run through `runtime`.
    pub fn new(runtime: Arc<R>) -> Self {
        ProbeManager {
            inner: Arc::new(Inner {
                prober: Prober::new(runtime),
                workers: Mutex::new(HashMap::new()),
                changes: Mutex::new(HashMap::new()),
                root: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// Starts the `kind` worker for `key.container_id` with `probe`'s timing, unless one runs
    /// already (then nothing changes: a changed spec means a new container id). The initial delay
    /// counts from `started_at`. Must be called inside a Tokio runtime.
    pub fn ensure(
        &self,
        key: ContainerKey,
        kind: ProbeKind,
        probe: &Probe,
        target: ProbeTarget,
        started_at: Instant,
    ) {
        let timing = ProbeTiming::from_probe(probe);
        self.ensure_with_timing(key, kind, probe, target, started_at, timing);
    }

    /// [`ProbeManager::ensure`] with an explicit timing instead of the probe's seconds (for tests
    /// that need sub-second periods).
    pub fn ensure_with_timing(
        &self,
        key: ContainerKey,
        kind: ProbeKind,
        probe: &Probe,
        target: ProbeTarget,
        started_at: Instant,
        timing: ProbeTiming,
    ) {
        let mut workers = lock(&self.inner.workers);
        let slot = (key.container_id.clone(), kind);
        if workers.contains_key(&slot) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(pod_uid = %key.pod_uid, container = %key.container_name, %kind,
                "cannot start a probe worker outside a Tokio runtime");
            return;
        };
        let state = Arc::new(Mutex::new(ProbeState::initial(kind, Instant::now())));
        let cancel = self.inner.root.child_token();
        debug!(pod_uid = %key.pod_uid, container = %key.container_name, %kind, ?timing,
            "starting probe worker");
        let worker = Worker {
            key: key.clone(),
            kind,
            probe: probe.clone(),
            target,
            timing: timing.sane(),
            started_at,
            prober: self.inner.prober.clone(),
            state: state.clone(),
            changes: self.pod_changes(&key.pod_uid),
            cancel: cancel.clone(),
        };
        self.inner.tracker.spawn_on(worker.run(), &runtime);
        workers.insert(
            slot,
            WorkerEntry {
                pod_uid: key.pod_uid,
                cancel,
                state,
            },
        );
    }

    /// Stops and forgets both workers of a container (no-op if it has none).
    pub fn remove_container(&self, container_id: &str) {
        lock(&self.inner.workers).retain(|(id, _), entry| {
            let keep = id != container_id;
            if !keep {
                entry.cancel.cancel();
            }
            keep
        });
    }

    /// Stops and forgets every worker of a pod (no-op if it has none); change counters that
    /// neither a worker nor a subscriber uses any more go too.
    pub fn remove_pod(&self, pod_uid: &str) {
        let mut workers = lock(&self.inner.workers);
        workers.retain(|_, entry| {
            let keep = entry.pod_uid != pod_uid;
            if !keep {
                entry.cancel.cancel();
            }
            keep
        });
        lock(&self.inner.changes).retain(|uid, sender| {
            sender.receiver_count() > 0 || workers.values().any(|w| &w.pod_uid == uid)
        });
    }

    /// The change counter of pod `pod_uid`, made on first use.
    fn pod_changes(&self, pod_uid: &str) -> Arc<watch::Sender<u64>> {
        Arc::clone(
            lock(&self.inner.changes)
                .entry(pod_uid.to_string())
                .or_insert_with(|| Arc::new(watch::Sender::new(0))),
        )
    }

    /// The current state of the `kind` worker of a container; `None` if there is no such worker.
    pub fn result(&self, container_id: &str, kind: ProbeKind) -> Option<ProbeState> {
        let workers = lock(&self.inner.workers);
        let entry = workers.get(&(container_id.to_string(), kind))?;
        let state = lock(&entry.state).clone();
        Some(state)
    }

    /// A receiver whose value is bumped whenever the `healthy` of a worker of pod `pod_uid`
    /// flips (not on removal): it wakes that pod's worker only.
    pub fn changes(&self, pod_uid: &str) -> watch::Receiver<u64> {
        self.pod_changes(pod_uid).subscribe()
    }

    /// The worker task tracker, so tests can watch workers end.
    #[cfg(test)]
    pub(crate) fn tracker(&self) -> TaskTracker {
        self.inner.tracker.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use skiff_api::types::{ExecAction, HttpGetAction, IntOrString};

    use super::*;
    use crate::prober::ProbeOutcome;
    use crate::prober::test_server::{Reply, TestServer, running_container};
    use crate::runtime::ExecResult;
    use crate::runtime::fake::FakeRuntime;

    /// Polls `check` every 10 ms until it holds; panics after 10 s.
    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Exec results follow `script` (exit codes), then `then` forever; returns the call counter
    /// and the instants of the calls.
    fn scripted(
        runtime: &FakeRuntime,
        script: &[i64],
        then: i64,
    ) -> (Arc<AtomicUsize>, Arc<Mutex<Vec<Instant>>>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let times = Arc::new(Mutex::new(Vec::new()));
        let script = Mutex::new(script.iter().copied().collect::<VecDeque<_>>());
        let (c, t) = (calls.clone(), times.clone());
        runtime.set_exec_handler(move |_, _| {
            t.lock().unwrap().push(Instant::now());
            c.fetch_add(1, Ordering::SeqCst);
            let exit_code = script.lock().unwrap().pop_front().unwrap_or(then);
            Ok(ExecResult {
                exit_code,
                output: String::new(),
                truncated: false,
            })
        });
        (calls, times)
    }

    fn exec_probe() -> Probe {
        Probe {
            exec: Some(ExecAction {
                command: vec!["check".into()],
            }),
            ..Probe::default()
        }
    }

    fn fast(success: u32, failure: u32) -> ProbeTiming {
        ProbeTiming {
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(20),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    fn key(pod: &str, name: &str, id: &str) -> ContainerKey {
        ContainerKey {
            pod_uid: pod.into(),
            container_name: name.into(),
            container_id: id.into(),
        }
    }

    fn target(id: &str) -> ProbeTarget {
        ProbeTarget {
            container_id: id.into(),
            ..ProbeTarget::default()
        }
    }

    #[tokio::test]
    async fn liveness_flips_at_exactly_failure_threshold_failures() {
        // Three failures, then successes: with threshold 3 it goes down and up again.
        let (runtime, id) = running_container().await;
        let (calls, _) = scripted(&runtime, &[1, 1, 1], 0);
        let manager = ProbeManager::new(Arc::new(runtime));
        let changes = manager.changes("pod-a");
        manager.ensure_with_timing(
            key("pod-a", "web", &id),
            ProbeKind::Liveness,
            &exec_probe(),
            target(&id),
            Instant::now(),
            fast(1, 3),
        );
        until("down and up again", || *changes.borrow() == 2).await;
        until("a few more probes", || calls.load(Ordering::SeqCst) >= 6).await;
        let state = manager.result(&id, ProbeKind::Liveness).unwrap();
        assert!(state.healthy);
        assert_eq!(state.last, ProbeOutcome::Success);
        assert_eq!(*changes.borrow(), 2, "no further flips");
    }

    #[tokio::test]
    async fn liveness_stays_healthy_below_failure_threshold() {
        let (runtime, id) = running_container().await;
        let (calls, _) = scripted(&runtime, &[1, 1, 1], 0);
        let manager = ProbeManager::new(Arc::new(runtime));
        let changes = manager.changes("pod-b");
        let k = key("pod-b", "web", &id);
        let fresh = manager.result(&id, ProbeKind::Liveness);
        assert!(fresh.is_none(), "no worker yet");
        manager.ensure_with_timing(
            k,
            ProbeKind::Liveness,
            &exec_probe(),
            target(&id),
            Instant::now(),
            fast(1, 4),
        );
        until("six probes", || calls.load(Ordering::SeqCst) >= 6).await;
        let state = manager.result(&id, ProbeKind::Liveness).unwrap();
        assert!(state.healthy);
        assert_eq!(
            *changes.borrow(),
            0,
            "three failures are below a threshold of four"
        );
    }

    #[tokio::test]
    async fn liveness_that_keeps_failing_goes_unhealthy() {
        let (runtime, id) = running_container().await;
        let (calls, _) = scripted(&runtime, &[], 1);
        let manager = ProbeManager::new(Arc::new(runtime));
        let mut changes = manager.changes("pod-c");
        manager.ensure_with_timing(
            key("pod-c", "web", &id),
            ProbeKind::Liveness,
            &exec_probe(),
            target(&id),
            Instant::now(),
            fast(1, 3),
        );
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("liveness flipped")
            .unwrap();
        let state = manager.result(&id, ProbeKind::Liveness).unwrap();
        assert!(!state.healthy);
        assert!(state.consecutive_failures >= 3);
        assert!(calls.load(Ordering::SeqCst) >= 3);
        assert_eq!(
            state.last,
            ProbeOutcome::Failure("command [\"check\"] exited with code 1".into())
        );
    }

    #[tokio::test]
    async fn readiness_starts_unready_and_follows_both_thresholds() {
        // s f s s (ready after two in a row) f f (unready after two in a row), then failing.
        let (runtime, id) = running_container().await;
        let (calls, _) = scripted(&runtime, &[0, 1, 0, 0, 1, 1], 1);
        let manager = ProbeManager::new(Arc::new(runtime));
        let changes = manager.changes("pod-d");
        let started = Instant::now();
        manager.ensure_with_timing(
            key("pod-d", "web", &id),
            ProbeKind::Readiness,
            &exec_probe(),
            target(&id),
            started,
            ProbeTiming {
                initial_delay: Duration::from_millis(500),
                ..fast(2, 2)
            },
        );
        let initial = manager.result(&id, ProbeKind::Readiness).unwrap();
        assert!(!initial.healthy, "readiness starts not ready");
        assert_eq!(initial.last, ProbeOutcome::Unknown);
        until("ready then unready", || *changes.borrow() == 2).await;
        until("more probes", || calls.load(Ordering::SeqCst) >= 9).await;
        let state = manager.result(&id, ProbeKind::Readiness).unwrap();
        assert!(!state.healthy);
        assert_eq!(*changes.borrow(), 2, "no further flips");
    }

    #[tokio::test]
    async fn the_first_probe_waits_for_the_initial_delay() {
        let (runtime, id) = running_container().await;
        let (_, times) = scripted(&runtime, &[], 0);
        let manager = ProbeManager::new(Arc::new(runtime));
        let started = Instant::now();
        manager.ensure_with_timing(
            key("pod-e", "web", &id),
            ProbeKind::Readiness,
            &exec_probe(),
            target(&id),
            started,
            ProbeTiming {
                initial_delay: Duration::from_millis(300),
                ..fast(1, 3)
            },
        );
        until("the first probe", || !times.lock().unwrap().is_empty()).await;
        let first = times.lock().unwrap()[0];
        assert!(first.duration_since(started) >= Duration::from_millis(300));
        until("ready", || {
            manager
                .result(&id, ProbeKind::Readiness)
                .is_some_and(|s| s.healthy)
        })
        .await;
    }

    #[tokio::test]
    async fn the_probe_timing_comes_from_the_spec_in_seconds() {
        // initialDelaySeconds: 3600 — nothing may run now; the worker still reports its state.
        let (runtime, id) = running_container().await;
        let (calls, _) = scripted(&runtime, &[], 0);
        let manager = ProbeManager::new(Arc::new(runtime));
        let probe = Probe {
            initial_delay_seconds: Some(3600),
            ..exec_probe()
        };
        manager.ensure(
            key("pod-f", "web", &id),
            ProbeKind::Liveness,
            &probe,
            target(&id),
            Instant::now(),
        );
        let state = manager.result(&id, ProbeKind::Liveness).unwrap();
        assert!(state.healthy, "liveness starts healthy");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn ensure_is_idempotent_and_removal_stops_workers() {
        let (runtime, id) = running_container().await;
        scripted(&runtime, &[], 0);
        let manager = ProbeManager::new(Arc::new(runtime));
        let tracker = manager.tracker();
        let start = |k: ContainerKey, kind| {
            let t = target(&k.container_id);
            manager.ensure_with_timing(k, kind, &exec_probe(), t, Instant::now(), fast(1, 3));
        };
        start(key("pod-g", "web", &id), ProbeKind::Liveness);
        start(key("pod-g", "web", &id), ProbeKind::Liveness);
        start(key("pod-g", "web", &id), ProbeKind::Readiness);
        start(key("pod-g", "side", "other-id"), ProbeKind::Liveness);
        start(key("pod-h", "db", "third-id"), ProbeKind::Readiness);
        assert_eq!(tracker.len(), 4);

        manager.remove_container(&id);
        until("two workers gone", || tracker.len() == 2).await;
        assert!(manager.result(&id, ProbeKind::Liveness).is_none());
        assert!(manager.result(&id, ProbeKind::Readiness).is_none());
        assert!(manager.result("other-id", ProbeKind::Liveness).is_some());

        manager.remove_pod("pod-g");
        until("pod-g's workers gone", || tracker.len() == 1).await;
        assert!(manager.result("other-id", ProbeKind::Liveness).is_none());
        assert!(manager.result("third-id", ProbeKind::Readiness).is_some());

        manager.remove_pod("no-such-pod");
        manager.remove_container("no-such-container");
        assert_eq!(tracker.len(), 1);
    }

    #[tokio::test]
    async fn dropping_the_last_manager_clone_stops_every_worker() {
        let (runtime, id) = running_container().await;
        let (calls, _) = scripted(&runtime, &[], 0);
        let manager = ProbeManager::new(Arc::new(runtime));
        let tracker = manager.tracker();
        let clone = manager.clone();
        manager.ensure_with_timing(
            key("pod-i", "web", &id),
            ProbeKind::Liveness,
            &exec_probe(),
            target(&id),
            Instant::now(),
            fast(1, 3),
        );
        until("probing", || calls.load(Ordering::SeqCst) >= 1).await;
        drop(manager);
        assert_eq!(tracker.len(), 1, "a clone still lives");
        assert!(clone.result(&id, ProbeKind::Liveness).is_some());
        drop(clone);
        tracker.close();
        tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .expect("workers stopped after the manager was dropped");
    }

    #[tokio::test]
    async fn a_flip_wakes_only_its_own_pod() {
        let (runtime, id) = running_container().await;
        scripted(&runtime, &[], 1);
        let manager = ProbeManager::new(Arc::new(runtime));
        let mut own = manager.changes("pod-x");
        let other = manager.changes("pod-y");
        manager.ensure_with_timing(
            key("pod-x", "web", &id),
            ProbeKind::Liveness,
            &exec_probe(),
            target(&id),
            Instant::now(),
            fast(1, 1),
        );
        tokio::time::timeout(Duration::from_secs(10), own.changed())
            .await
            .expect("pod-x woken")
            .unwrap();
        assert!(!manager.result(&id, ProbeKind::Liveness).unwrap().healthy);
        assert_eq!(*other.borrow(), 0, "pod-y is not woken by pod-x's probe");
        assert!(!other.has_changed().unwrap());
    }

    #[tokio::test]
    async fn a_probe_without_handler_is_never_healthy() {
        let (runtime, id) = running_container().await;
        let manager = ProbeManager::new(Arc::new(runtime));
        let mut changes = manager.changes("pod-j");
        manager.ensure_with_timing(
            key("pod-j", "web", &id),
            ProbeKind::Liveness,
            &Probe::default(),
            target(&id),
            Instant::now(),
            fast(1, 3),
        );
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("liveness flipped")
            .unwrap();
        let state = manager.result(&id, ProbeKind::Liveness).unwrap();
        assert!(!state.healthy);
        assert_eq!(state.last, ProbeOutcome::Unknown);
    }

    #[tokio::test]
    async fn an_http_readiness_probe_makes_the_container_ready() {
        let server = TestServer::start("127.0.0.1", |_| Reply::status(200, "ok")).await;
        let manager = ProbeManager::new(Arc::new(FakeRuntime::new()));
        let probe = Probe {
            http_get: Some(HttpGetAction {
                path: Some("/ready".into()),
                port: IntOrString::String("http".into()),
                ..HttpGetAction::default()
            }),
            ..Probe::default()
        };
        let target = ProbeTarget {
            container_id: "c-http".into(),
            pod_ip: Some(server.addr.ip()),
            ports: vec![skiff_api::types::ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(server.port()),
                ..Default::default()
            }],
            host_ports: HashMap::new(),
        };
        manager.ensure_with_timing(
            key("pod-k", "web", "c-http"),
            ProbeKind::Readiness,
            &probe,
            target,
            Instant::now(),
            fast(1, 3),
        );
        until("ready", || {
            manager
                .result("c-http", ProbeKind::Readiness)
                .is_some_and(|s| s.healthy)
        })
        .await;
        assert!(server.requests().iter().all(|r| r.path == "/ready"));
    }
}
