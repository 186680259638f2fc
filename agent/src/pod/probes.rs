//! What the pod workers need from the prober, behind a small trait so that pod logic is tested
//! with scripted probe results.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use skiff_api::types::{Container, Probe};
use tokio::sync::watch;

use crate::prober::{ContainerKey, ProbeKind, ProbeManager, ProbeTarget};
use crate::runtime::ContainerRuntime;

/// Starts, stops and reads the liveness and readiness probes of running containers.
pub trait ProbeResults: Send + Sync + 'static {
    /// Makes sure `probe` of `kind` runs against the container in `key` (idempotent: an
    /// already running worker for the same container and kind is kept).
    fn ensure(
        &self,
        key: ContainerKey,
        kind: ProbeKind,
        probe: &Probe,
        target: ProbeTarget,
        started_at: Instant,
    ) -> impl Future<Output = ()> + Send;

    /// Stops every probe of one container (it exited or was replaced).
    fn remove_container(&self, container_id: &str) -> impl Future<Output = ()> + Send;

    /// Stops every probe of one pod (it is being removed).
    fn remove_pod(&self, pod_uid: &str) -> impl Future<Output = ()> + Send;

    /// The current conclusion of the `kind` probe of a container: `Some(true)` healthy / ready,
    /// `Some(false)` unhealthy / not ready, `None` when no such probe runs.
    fn healthy(&self, container_id: &str, kind: ProbeKind) -> Option<bool>;

    /// A counter bumped whenever a result of a container of pod `pod_uid` flips, to wake that
    /// pod's worker (and no other).
    fn changes(&self, pod_uid: &str) -> watch::Receiver<u64>;
}

/// containerPort → hostPort of the container's published ports (where probes and hooks connect
/// on 127.0.0.1 when the pod IP is unknown).
pub(crate) fn host_ports(container: &Container) -> HashMap<i32, u16> {
    container
        .ports
        .iter()
        .filter_map(|p| {
            let host = u16::try_from(p.host_port?).ok().filter(|h| *h > 0)?;
            Some((p.container_port, host))
        })
        .collect()
}

/// The real prober: one worker per (container, kind), results by container id.
impl<R: ContainerRuntime> ProbeResults for ProbeManager<R> {
    async fn ensure(
        &self,
        key: ContainerKey,
        kind: ProbeKind,
        probe: &Probe,
        target: ProbeTarget,
        started_at: Instant,
    ) {
        ProbeManager::ensure(self, key, kind, probe, target, started_at);
    }

    async fn remove_container(&self, container_id: &str) {
        ProbeManager::remove_container(self, container_id);
    }

    async fn remove_pod(&self, pod_uid: &str) {
        ProbeManager::remove_pod(self, pod_uid);
    }

    fn healthy(&self, container_id: &str, kind: ProbeKind) -> Option<bool> {
        self.result(container_id, kind).map(|state| state.healthy)
    }

    fn changes(&self, pod_uid: &str) -> watch::Receiver<u64> {
        ProbeManager::changes(self, pod_uid)
    }
}

/// No probes at all: every container without probe results (for agents and tests that run
/// without a prober).
#[derive(Debug)]
pub struct NoProbes {
    /// Kept so that [`ProbeResults::changes`] receivers never see a closed channel.
    changes: watch::Sender<u64>,
}

impl NoProbes {
    /// A prober that never reports anything.
    pub fn new() -> Self {
        NoProbes {
            changes: watch::Sender::new(0),
        }
    }
}

impl Default for NoProbes {
    fn default() -> Self {
        NoProbes::new()
    }
}

impl ProbeResults for NoProbes {
    async fn ensure(
        &self,
        _key: ContainerKey,
        _kind: ProbeKind,
        _probe: &Probe,
        _target: ProbeTarget,
        _started_at: Instant,
    ) {
    }

    async fn remove_container(&self, _container_id: &str) {}

    async fn remove_pod(&self, _pod_uid: &str) {}

    fn healthy(&self, _container_id: &str, _kind: ProbeKind) -> Option<bool> {
        None
    }

    fn changes(&self, _pod_uid: &str) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// One probe the pod worker asked for, as [`ScriptedProbes`] records it.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsuredProbe {
    /// The container.
    pub key: ContainerKey,
    /// Liveness or readiness.
    pub kind: ProbeKind,
    /// Where it would connect.
    pub target: ProbeTarget,
}

/// The state behind [`ScriptedProbes`].
#[derive(Debug, Default)]
struct Script {
    /// Probes currently ensured, keyed by container id and kind.
    active: Vec<EnsuredProbe>,
    /// Results set by the test: (container id, kind) → healthy.
    results: Vec<((String, ProbeKind), bool)>,
    /// Per pod uid, bumped when a result of one of its containers is set.
    changes: HashMap<String, watch::Sender<u64>>,
}

/// Probe results set by hand, for tests of the pod workers (and of anything built on them).
#[derive(Debug, Clone)]
pub struct ScriptedProbes {
    /// What was ensured and what the test decided.
    script: Arc<Mutex<Script>>,
}

impl Default for ScriptedProbes {
    fn default() -> Self {
        ScriptedProbes::new()
    }
}

impl ScriptedProbes {
    /// No probes, no results.
    pub fn new() -> Self {
        ScriptedProbes {
            script: Arc::default(),
        }
    }

    /// Locks the script; a poisoned lock still yields the data.
    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the result of the `kind` probe of `container_id` and wakes the worker of its pod
    /// (known once the probe was ensured).
    pub fn set(&self, container_id: &str, kind: ProbeKind, healthy: bool) {
        let mut script = self.lock();
        script
            .results
            .retain(|(k, _)| k != &(container_id.to_string(), kind));
        script
            .results
            .push(((container_id.to_string(), kind), healthy));
        let pod = script
            .active
            .iter()
            .find(|p| p.key.container_id == container_id)
            .map(|p| p.key.pod_uid.clone());
        if let Some(pod) = pod {
            script
                .changes
                .entry(pod)
                .or_insert_with(|| watch::Sender::new(0))
                .send_modify(|n| *n += 1);
        }
    }

    /// The probes currently ensured.
    pub fn active(&self) -> Vec<EnsuredProbe> {
        self.lock().active.clone()
    }
}

impl ProbeResults for ScriptedProbes {
    async fn ensure(
        &self,
        key: ContainerKey,
        kind: ProbeKind,
        _probe: &Probe,
        target: ProbeTarget,
        _started_at: Instant,
    ) {
        let mut script = self.lock();
        if !script
            .active
            .iter()
            .any(|p| p.key.container_id == key.container_id && p.kind == kind)
        {
            script.active.push(EnsuredProbe { key, kind, target });
        }
    }

    async fn remove_container(&self, container_id: &str) {
        self.lock()
            .active
            .retain(|p| p.key.container_id != container_id);
    }

    async fn remove_pod(&self, pod_uid: &str) {
        self.lock().active.retain(|p| p.key.pod_uid != pod_uid);
    }

    fn healthy(&self, container_id: &str, kind: ProbeKind) -> Option<bool> {
        let script = self.lock();
        if !script
            .active
            .iter()
            .any(|p| p.key.container_id == container_id && p.kind == kind)
        {
            return None;
        }
        let found = script
            .results
            .iter()
            .find(|((id, k), _)| id == container_id && *k == kind)
            .map(|(_, healthy)| *healthy);
        // Like the prober: liveness starts healthy, readiness starts not ready.
        Some(found.unwrap_or(kind == ProbeKind::Liveness))
    }

    fn changes(&self, pod_uid: &str) -> watch::Receiver<u64> {
        self.lock()
            .changes
            .entry(pod_uid.to_string())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }
}
