//! Following pods through a watch: for every pod, the instant the watch first showed it bound
//! to a node and first showed it Running. Reconnects from the last resourceVersion when the
//! stream ends, relists on 410.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use skiff_api::client::{Api, Client, ClientError, ListParams};
use skiff_api::types::{Pod, WatchEvent};
use tokio::task::JoinHandle;

/// How often [`PodTracker::wait_for`] re-checks its condition (the marks carry their own
/// receive times, so this only bounds how soon the wait returns).
const CHECK_EVERY: Duration = Duration::from_millis(10);
/// Pause before reconnecting a watch that failed to open.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// Consecutive failed reconnects after which the tracker gives up.
const MAX_RECONNECT_FAILURES: u32 = 50;

/// Why following the pods failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The initial list failed.
    #[error("could not list pods: {0}")]
    List(#[source] ClientError),
    /// The condition did not hold in time.
    #[error("timed out after {timeout:?} waiting for {what} (last watch problem: {last_problem})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        timeout: Duration,
        /// The last error the watch reported, or `none`.
        last_problem: String,
    },
}

/// What the watch showed of one pod, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// First event with `spec.nodeName` set.
    pub bound: Option<Instant>,
    /// First event with `status.phase == Running`.
    pub running: Option<Instant>,
}

/// Shared between the watch task and readers.
#[derive(Debug, Default)]
struct State {
    /// Marks by pod name.
    pods: HashMap<String, Marks>,
    /// The last error the watch ran into, for timeout messages.
    last_problem: Option<String>,
}

/// Follows the pods of one namespace until dropped.
#[derive(Debug)]
pub struct PodTracker {
    /// Marks and problems, written by the watch task.
    state: Arc<Mutex<State>>,
    /// The watch task; aborted on drop.
    task: JoinHandle<()>,
}

impl PodTracker {
    /// Lists the pods of `namespace` (recording what they already show) and watches from
    /// that list's resourceVersion.
    pub async fn start(client: &Client, namespace: &str) -> Result<Self, WatchError> {
        let api: Api<Pod> = client.api(Some(namespace));
        let state = Arc::new(Mutex::new(State::default()));
        let resource_version = relist(&api, &state).await.map_err(WatchError::List)?;
        let task = tokio::spawn(follow(api, state.clone(), resource_version));
        Ok(PodTracker { state, task })
    }

    /// A copy of every pod's marks.
    pub fn snapshot(&self) -> HashMap<String, Marks> {
        lock(&self.state).pods.clone()
    }

    /// The marks of pod `name`, if the watch has shown it.
    pub fn marks(&self, name: &str) -> Option<Marks> {
        lock(&self.state).pods.get(name).copied()
    }

    /// Waits until `done` holds for the marks; `what` names the condition in the error.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&HashMap<String, Marks>) -> bool,
    ) -> Result<(), WatchError> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let state = lock(&self.state);
                if done(&state.pods) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(WatchError::Timeout {
                        what: what.to_string(),
                        timeout,
                        last_problem: state
                            .last_problem
                            .clone()
                            .unwrap_or_else(|| "none".to_string()),
                    });
                }
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}

impl Drop for PodTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Locks the state, whatever a panicking holder left behind.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records the marks `pod` shows now.
fn observe(state: &Mutex<State>, pod: &Pod, now: Instant) {
    let Some(name) = pod.metadata.name.clone() else {
        return;
    };
    let mut state = lock(state);
    let marks = state.pods.entry(name).or_default();
    if marks.bound.is_none() && pod.spec.node_name.is_some() {
        marks.bound = Some(now);
    }
    let running = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| phase == "Running");
    if marks.running.is_none() && running {
        marks.running = Some(now);
    }
}

/// Lists the pods, records their marks and returns the list's resourceVersion.
async fn relist(api: &Api<Pod>, state: &Mutex<State>) -> Result<Option<String>, ClientError> {
    let list = api.list(&ListParams::default()).await?;
    let now = Instant::now();
    for pod in &list.items {
        observe(state, pod, now);
    }
    Ok(list.metadata.resource_version)
}

/// The watch loop: reconnect from the last resourceVersion, relist after 410.
async fn follow(api: Api<Pod>, state: Arc<Mutex<State>>, mut resource_version: Option<String>) {
    let mut failures = 0;
    while failures < MAX_RECONNECT_FAILURES {
        let mut stream = match api
            .watch(&ListParams::default(), resource_version.as_deref())
            .await
        {
            Ok(stream) => stream,
            Err(err) => {
                failures += 1;
                lock(&state).last_problem = Some(format!("watch did not open: {err}"));
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        failures = 0;
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            match event {
                Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                    observe(&state, &pod, now);
                    resource_version = pod.metadata.resource_version.clone().or(resource_version);
                }
                Ok(WatchEvent::Deleted(pod) | WatchEvent::Bookmark(pod)) => {
                    resource_version = pod.metadata.resource_version.or(resource_version);
                }
                Ok(WatchEvent::Error(status)) => {
                    lock(&state).last_problem = Some(format!("watch error: {}", status.message));
                    if status.code == 410 {
                        match relist(&api, &state).await {
                            Ok(rv) => resource_version = rv,
                            Err(err) => {
                                lock(&state).last_problem = Some(format!("relist: {err}"));
                            }
                        }
                    }
                    break;
                }
                Err(err) => {
                    lock(&state).last_problem = Some(format!("watch stream: {err}"));
                    break;
                }
            }
        }
    }
}
