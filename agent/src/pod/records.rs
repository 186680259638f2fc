//! What a pod worker remembers between syncs: per container its backoffs, its named waiting
//! state and the exit already accounted for; per pod the sandbox backoff, why the sandbox
//! cannot be made, why the agent killed containers, and when the pod started.

use std::collections::{BTreeMap, HashMap};

use skiff_api::types::Time;
use tokio::time::Instant;

use super::backoff::RetryBackoff;
use super::config::PodManagerConfig;
use super::observed::Observed;
use super::status::{Waiting, time};

/// What the worker remembers about one container of the spec between syncs.
#[derive(Clone, Debug)]
pub(crate) struct ContainerRecord {
    /// Delay between failed pulls of its image.
    pull_backoff: RetryBackoff,
    /// Delay between restarts when it keeps exiting.
    crash_backoff: RetryBackoff,
    /// Why it is not running, when the worker knows better than the engine.
    waiting: Option<Waiting>,
    /// The exited container whose exit was already fed into `crash_backoff`.
    accounted_exit: Option<String>,
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

    /// The delay between failed pulls of its image.
    pub fn pull_backoff(&self) -> &RetryBackoff {
        &self.pull_backoff
    }

    /// The delay between pulls, to record a failed or a successful pull.
    pub fn pull_backoff_mut(&mut self) -> &mut RetryBackoff {
        &mut self.pull_backoff
    }

    /// The delay between restarts.
    pub fn crash_backoff(&self) -> &RetryBackoff {
        &self.crash_backoff
    }

    /// The exited container whose exit is already in the crash backoff.
    pub fn accounted_exit(&self) -> Option<&str> {
        self.accounted_exit.as_deref()
    }

    /// Takes the crash-loop bookkeeping the plan decided on.
    pub fn set_crash(&mut self, backoff: RetryBackoff, accounted_exit: Option<String>) {
        self.crash_backoff = backoff;
        self.accounted_exit = accounted_exit;
    }

    /// Sets (or clears) why it is not running.
    pub fn set_waiting(&mut self, waiting: Option<Waiting>) {
        self.waiting = waiting;
    }
}

/// Everything a pod worker remembers about its pod between syncs.
#[derive(Debug)]
pub(crate) struct PodRecords {
    /// Per-container memory, by container name.
    containers: BTreeMap<String, ContainerRecord>,
    /// A fresh container record (the configured backoff timings).
    template: ContainerRecord,
    /// Delay between failed attempts to make the infra container.
    infra_backoff: RetryBackoff,
    /// Why the infra container cannot be made, for the pod status.
    infra_message: Option<String>,
    /// Why the agent killed a container (liveness failure), by container id.
    kill_messages: HashMap<String, String>,
    /// When the agent first ran the pod (reported as startTime).
    start_time: Option<Time>,
}

impl PodRecords {
    /// Nothing remembered yet.
    pub fn new(config: &PodManagerConfig) -> Self {
        PodRecords {
            containers: BTreeMap::new(),
            template: ContainerRecord::new(config),
            infra_backoff: RetryBackoff::new(config.backoff_base, config.backoff_cap),
            infra_message: None,
            kill_messages: HashMap::new(),
            start_time: None,
        }
    }

    /// The record of container `name`, if it has one.
    #[cfg(test)]
    pub fn container(&self, name: &str) -> Option<&ContainerRecord> {
        self.containers.get(name)
    }

    /// The record of container `name`, or a fresh one (what a container without one starts as).
    pub fn container_or_fresh(&self, name: &str) -> &ContainerRecord {
        self.containers.get(name).unwrap_or(&self.template)
    }

    /// The record of container `name`, made on first use.
    pub fn container_mut(&mut self, name: &str) -> &mut ContainerRecord {
        self.containers
            .entry(name.to_string())
            .or_insert_with(|| self.template.clone())
    }

    /// Forgets the record of a container the spec no longer names.
    pub fn forget_container(&mut self, name: &str) {
        self.containers.remove(name);
    }

    /// Names of every container with a record.
    pub fn container_names(&self) -> impl Iterator<Item = &str> {
        self.containers.keys().map(String::as_str)
    }

    /// The named waiting state of each container that has one, by container name.
    pub fn waiting(&self) -> BTreeMap<&str, &Waiting> {
        self.containers
            .iter()
            .filter_map(|(name, r)| r.waiting.as_ref().map(|w| (name.as_str(), w)))
            .collect()
    }

    /// How long a new sandbox must still wait at `now`; `None` when it may be made.
    pub fn infra_backoff_until(&self, now: Instant) -> Option<Instant> {
        self.infra_backoff.remaining(now).map(|left| now + left)
    }

    /// The sandbox was made: its backoff starts over and its message goes.
    pub fn infra_created(&mut self) {
        self.infra_backoff.reset();
        self.infra_message = None;
    }

    /// The sandbox runs as wanted: no message.
    pub fn infra_ready(&mut self) {
        self.infra_message = None;
    }

    /// The sandbox could not be made at `at`: steps its backoff, keeps `message` for the
    /// status; returns the delay before the next attempt.
    pub fn infra_failed(&mut self, at: Instant, message: String) -> std::time::Duration {
        self.infra_message = Some(message);
        self.infra_backoff.fail_at(at)
    }

    /// Why the sandbox cannot be made, for the pod status.
    pub fn infra_message(&self) -> Option<&str> {
        self.infra_message.as_deref()
    }

    /// Remembers why the agent killed container `id`.
    pub fn note_kill(&mut self, id: &str, message: String) {
        self.kill_messages.insert(id.to_string(), message);
    }

    /// Why the agent killed containers, by container id.
    pub fn kill_messages(&self) -> &HashMap<String, String> {
        &self.kill_messages
    }

    /// Whether the agent killed container `id` itself (liveness failure).
    pub fn killed_by_agent(&self, id: &str) -> bool {
        self.kill_messages.contains_key(id)
    }

    /// Drops kill messages of containers that are gone.
    pub fn retain_kill_messages(&mut self, observed: &Observed) {
        self.kill_messages
            .retain(|id, _| observed.all_apps().any(|c| &c.id == id));
    }

    /// Sets startTime once: the oldest container's creation (an adopted pod), else now.
    pub fn note_start_time(&mut self, observed: &Observed) {
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

    /// When the agent first ran the pod.
    pub fn start_time(&self) -> Option<Time> {
        self.start_time
    }

    /// The pod is gone: forget everything but the timings.
    pub fn clear(&mut self) {
        self.containers.clear();
        self.kill_messages.clear();
        self.start_time = None;
    }
}
