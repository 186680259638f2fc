//! The containers of one pod as the runtime reports them, grouped by container name and
//! ordered newest attempt first, with the liveness verdicts of the running ones. One listing
//! per sync fills it; the executor keeps it current as it acts (inspecting what it changed).

use std::collections::{BTreeMap, BTreeSet};

use crate::runtime::{ContainerInfo, ContainerState, labels};

/// The actual containers of one pod.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Infra containers, newest attempt first.
    pub infra: Vec<ContainerInfo>,
    /// Application containers by their spec name, newest attempt first.
    pub apps: BTreeMap<String, Vec<ContainerInfo>>,
    /// Ids of running containers whose liveness probe failed (the prober's verdict).
    pub liveness_failed: BTreeSet<String>,
}

impl Observed {
    /// Groups the containers of one pod (listed by its labels).
    pub fn group(containers: Vec<ContainerInfo>) -> Self {
        let mut observed = Observed::default();
        for info in containers {
            match info.label(labels::CONTAINER_NAME) {
                Some(labels::INFRA_CONTAINER_NAME) => observed.infra.push(info),
                Some(name) => observed
                    .apps
                    .entry(name.to_string())
                    .or_default()
                    .push(info),
                // Without a container name it is not one of ours to reason about.
                None => {}
            }
        }
        observed.infra.sort_by(newest_first);
        for history in observed.apps.values_mut() {
            history.sort_by(newest_first);
        }
        observed
    }

    /// Puts `info` in place of the container with its id (or adds it), keeping the order.
    pub fn upsert(&mut self, info: ContainerInfo) {
        self.forget(&info.id);
        let history = match info.label(labels::CONTAINER_NAME) {
            Some(labels::INFRA_CONTAINER_NAME) => &mut self.infra,
            Some(name) => self.apps.entry(name.to_string()).or_default(),
            None => return,
        };
        history.push(info);
        history.sort_by(newest_first);
    }

    /// Drops the container with `id` (it was removed).
    pub fn forget(&mut self, id: &str) {
        self.infra.retain(|c| c.id != id);
        for history in self.apps.values_mut() {
            history.retain(|c| c.id != id);
        }
        self.apps.retain(|_, history| !history.is_empty());
        self.liveness_failed.remove(id);
    }

    /// The attempts of application container `name`, newest first (empty when none).
    pub fn app(&self, name: &str) -> &[ContainerInfo] {
        self.apps.get(name).map_or(&[], Vec::as_slice)
    }

    /// The newest infra container, if any.
    pub fn current_infra(&self) -> Option<&ContainerInfo> {
        self.infra.first()
    }

    /// Every application container, of every name.
    pub fn all_apps(&self) -> impl Iterator<Item = &ContainerInfo> {
        self.apps.values().flatten()
    }

    /// Whether there are no containers at all.
    pub fn is_empty(&self) -> bool {
        self.infra.is_empty() && self.apps.values().all(Vec::is_empty)
    }

    /// How many application containers run.
    pub fn running_apps(&self) -> usize {
        self.all_apps().filter(|c| c.state.is_running()).count()
    }
}

/// Orders attempts: higher restart count first, then later creation first.
fn newest_first(a: &ContainerInfo, b: &ContainerInfo) -> std::cmp::Ordering {
    b.restart_count
        .cmp(&a.restart_count)
        .then_with(|| b.created_at.cmp(&a.created_at))
}

/// Whether the container was created but never started (the agent stopped in between).
pub fn never_started(info: &ContainerInfo) -> bool {
    info.state == ContainerState::Created && info.started_at.is_none() && info.error.is_none()
}

/// The exit code that decides the restart policy: the real one, else 128 for a container that
/// could not run (Docker left no code), else 0.
pub fn exit_code(info: &ContainerInfo) -> i64 {
    match (&info.state, info.exit_code) {
        (ContainerState::Exited { exit_code, .. }, _) => *exit_code,
        (_, Some(code)) if code != 0 => code,
        _ if info.error.as_deref().is_some_and(|e| !e.is_empty()) => 128,
        (ContainerState::Dead, _) => 128,
        (_, code) => code.unwrap_or(0),
    }
}
