//! Merging the sources' desired states into the one [`DesiredState`] the pod workers read.
//!
//! Every source (the manifest directory, later the controlplane) publishes its *full* set of
//! pods through its own [`SourceSender`]; the merger keeps the last set of each, merges them
//! in registration order (on a `namespace/name` clash the earlier source wins, logged once)
//! and publishes the result on a `watch` channel only when it differs from the last one.
//!
//! With a [`CheckpointStore`], each source's set is also written to disk whenever it changes,
//! and a source that has not reported yet (or reports itself unavailable) contributes its
//! checkpointed set, so the agent keeps its last known pods while a source is away.

use std::collections::BTreeSet;
use std::collections::btree_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tracing::{info, warn};

use super::desired::{DesiredPod, DesiredState};
use crate::checkpoint::CheckpointStore;

/// Everything one source wants to run, as it last published it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceState {
    /// The source's pods, each with namespace, name and uid set, in the source's order.
    pub pods: Vec<DesiredPod>,
    /// The source's own version of this set (the ContainerManifestList resourceVersion), kept in
    /// the checkpoint so a watch can resume from it.
    pub resource_version: Option<String>,
}

/// Why a source could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Two sources with one name would share one checkpoint.
    #[error("desired-state source {0:?} is already registered")]
    DuplicateSource(String),
}

/// Builds the merged desired state out of any number of sources.
#[derive(Debug, Clone)]
pub struct Merger {
    /// State shared with every [`SourceSender`].
    shared: Arc<Shared>,
}

/// What the merger and its senders share.
#[derive(Debug)]
struct Shared {
    /// The sources, in registration order (which is their precedence).
    inner: Mutex<Inner>,
    /// Where the merged state is published.
    desired: watch::Sender<Arc<DesiredState>>,
    /// True once every source has reported at least once (state or unavailable).
    ready: watch::Sender<bool>,
    /// Where each source's state is checkpointed; `None` disables checkpoints.
    checkpoints: Option<CheckpointStore>,
}

/// The mutable part of [`Shared`].
#[derive(Debug, Default)]
struct Inner {
    /// One slot per source.
    slots: Vec<Slot>,
    /// `(pod key, losing source)` clashes already logged, so each is logged once.
    conflicts: BTreeSet<(String, String)>,
}

/// One source's last state.
#[derive(Debug)]
struct Slot {
    /// The source's name, also its checkpoint's name.
    name: String,
    /// Its last published state (or its checkpoint until it publishes).
    state: Arc<SourceState>,
    /// It has published or declared itself unavailable at least once.
    reported: bool,
    /// `state` is on disk (loaded from there or written since it last changed).
    saved: bool,
}

impl Merger {
    /// A merger without sources; `checkpoints` (if any) persists each source's state.
    pub fn new(checkpoints: Option<CheckpointStore>) -> Self {
        let (desired, _) = watch::channel(Arc::new(DesiredState::default()));
        let (ready, _) = watch::channel(true);
        Merger {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner::default()),
                desired,
                ready,
                checkpoints,
            }),
        }
    }

    /// Registers a source named `name` (`file`, `controlplane`; also its checkpoint file name)
    /// behind every source registered before it. Returns its sender and the state loaded from its
    /// checkpoint, which the merger already uses as the source's contribution until it reports.
    pub fn add_source(
        &self,
        name: &str,
    ) -> Result<(SourceSender, Option<SourceState>), MergeError> {
        let restored = self
            .shared
            .checkpoints
            .as_ref()
            .and_then(|store| store.load(name));
        let mut inner = self.shared.lock();
        if inner.slots.iter().any(|slot| slot.name == name) {
            return Err(MergeError::DuplicateSource(name.to_string()));
        }
        if let Some(state) = &restored {
            info!(
                source = name,
                pods = state.pods.len(),
                "restored desired state from checkpoint"
            );
        }
        inner.slots.push(Slot {
            name: name.to_string(),
            state: Arc::new(restored.clone().unwrap_or_default()),
            reported: false,
            saved: restored.is_some(),
        });
        self.shared.republish(&mut inner);
        let index = inner.slots.len() - 1;
        drop(inner);
        let sender = SourceSender {
            shared: self.shared.clone(),
            index,
            name: name.to_string(),
        };
        Ok((sender, restored))
    }

    /// A receiver of the merged desired state; it changes only when the merge result changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<DesiredState>> {
        self.shared.desired.subscribe()
    }

    /// The merged desired state now.
    pub fn current(&self) -> Arc<DesiredState> {
        self.shared.desired.borrow().clone()
    }

    /// Whether every source has reported at least once.
    pub fn is_ready(&self) -> bool {
        *self.shared.ready.borrow()
    }

    /// Waits until every source has reported at least once (its state, or that it is
    /// unavailable), so pod workers do not start from a half-known desired state.
    pub async fn wait_ready(&self) {
        let mut ready = self.shared.ready.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

/// The handle one source publishes through. Not `Clone`: one source, one sender.
#[derive(Debug)]
pub struct SourceSender {
    /// The merger's shared state.
    shared: Arc<Shared>,
    /// This source's slot.
    index: usize,
    /// This source's name, for logs and the checkpoint.
    name: String,
}

impl SourceSender {
    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state the merger holds for this source (its last publish, or its checkpoint).
    pub fn current(&self) -> Arc<SourceState> {
        self.shared.lock().slots[self.index].state.clone()
    }

    /// Replaces this source's whole set of pods. The merged state is republished only if it
    /// changed, and the checkpoint is rewritten only if this source's state changed.
    pub async fn publish(&mut self, state: SourceState) {
        let to_save = {
            let mut inner = self.shared.lock();
            let slot = &mut inner.slots[self.index];
            slot.reported = true;
            if *slot.state != state {
                slot.state = Arc::new(state);
                slot.saved = false;
            }
            let to_save = (!slot.saved).then(|| slot.state.clone());
            self.shared.republish(&mut inner);
            to_save
        };
        if let (Some(state), Some(store)) = (to_save, self.shared.checkpoints.clone()) {
            self.save(store, state).await;
        }
    }

    /// Says the source cannot read its truth right now: its last known set stays in the merge
    /// (from the checkpoint at startup), and it counts as having reported.
    pub fn unavailable(&mut self) {
        let mut inner = self.shared.lock();
        inner.slots[self.index].reported = true;
        self.shared.republish(&mut inner);
    }

    /// Writes `state` as this source's checkpoint (off the async threads) and notes success.
    async fn save(&self, store: CheckpointStore, state: Arc<SourceState>) {
        let name = self.name.clone();
        let written = state.clone();
        let result = tokio::task::spawn_blocking(move || store.save(&name, &written)).await;
        match result {
            Ok(Ok(())) => {
                let mut inner = self.shared.lock();
                let slot = &mut inner.slots[self.index];
                if Arc::ptr_eq(&slot.state, &state) {
                    slot.saved = true;
                }
            }
            Ok(Err(err)) => warn!(source = %self.name, error = %err, "could not write checkpoint"),
            Err(err) => warn!(source = %self.name, error = %err, "checkpoint writer failed"),
        }
    }
}

impl Shared {
    /// Locks the sources; a panic elsewhere while holding the lock does not poison the merge.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Merges every slot, logs new clashes, publishes the result if it changed and updates
    /// readiness.
    fn republish(&self, inner: &mut Inner) {
        let (merged, conflicts) = merge(&inner.slots);
        for (key, loser) in conflicts.difference(&inner.conflicts) {
            let winner = merged
                .pods
                .get(key)
                .map(|pod| format!("{:?}", pod.source))
                .unwrap_or_default();
            warn!(pod = %key, ignored_source = %loser, kept = %winner, "pod defined by two sources, keeping the first");
        }
        inner.conflicts = conflicts;
        self.desired.send_if_modified(|current| {
            if **current == merged {
                false
            } else {
                *current = Arc::new(merged);
                true
            }
        });
        let ready = inner.slots.iter().all(|slot| slot.reported);
        self.ready.send_if_modified(|current| {
            let changed = *current != ready;
            *current = ready;
            changed
        });
    }
}

/// The merged state of `slots` (earlier slots win clashes) and the `(key, losing source)` clashes.
fn merge(slots: &[Slot]) -> (DesiredState, BTreeSet<(String, String)>) {
    let mut merged = DesiredState::default();
    let mut conflicts = BTreeSet::new();
    for slot in slots {
        for desired in &slot.state.pods {
            let key = pod_key(desired);
            match merged.pods.entry(key) {
                Entry::Occupied(taken) => {
                    conflicts.insert((taken.key().clone(), slot.name.clone()));
                }
                Entry::Vacant(free) => {
                    free.insert(desired.clone());
                }
            }
        }
    }
    (merged, conflicts)
}

/// `namespace/name`, the key of [`DesiredState::pods`].
pub fn pod_key(desired: &DesiredPod) -> String {
    let meta = &desired.pod.metadata;
    format!("{}/{}", meta.namespace_or_empty(), meta.name_or_empty())
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{ObjectMeta, Pod, PodSpec};

    use super::*;
    use crate::config::PodSource;

    fn pod(name: &str, image: &str, source: PodSource) -> DesiredPod {
        DesiredPod {
            pod: Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("default".into()),
                    uid: Some(format!("uid-{name}")),
                    ..ObjectMeta::default()
                },
                spec: PodSpec::one_container("c", image),
                ..Pod::default()
            },
            source,
        }
    }

    fn file_pod(name: &str, image: &str) -> DesiredPod {
        pod(
            name,
            image,
            PodSource::File(format!("/m/{name}.yaml").into()),
        )
    }

    fn state(pods: Vec<DesiredPod>) -> SourceState {
        SourceState {
            pods,
            resource_version: None,
        }
    }

    #[tokio::test]
    async fn publishes_only_when_the_merged_state_changes() {
        let merger = Merger::new(None);
        let mut rx = merger.subscribe();
        let (mut file, restored) = merger.add_source("file").unwrap();
        assert_eq!(restored, None);
        rx.mark_unchanged();

        file.publish(state(vec![file_pod("a", "busybox")])).await;
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            rx.borrow_and_update().pods.keys().collect::<Vec<_>>(),
            ["default/a"]
        );

        // The same set again: nothing new.
        file.publish(state(vec![file_pod("a", "busybox")])).await;
        assert!(!rx.has_changed().unwrap());

        // A changed container: published.
        file.publish(state(vec![file_pod("a", "busybox:2")])).await;
        assert!(rx.has_changed().unwrap());
        let current = rx.borrow_and_update().clone();
        assert_eq!(
            current.pods["default/a"].pod.spec.containers[0].image,
            "busybox:2"
        );

        file.publish(state(vec![])).await;
        assert!(rx.has_changed().unwrap());
        assert!(rx.borrow_and_update().pods.is_empty());
    }

    #[tokio::test]
    async fn a_source_that_changes_only_what_is_shadowed_publishes_nothing() {
        let merger = Merger::new(None);
        let (mut first, _) = merger.add_source("file").unwrap();
        let (mut second, _) = merger.add_source("controlplane").unwrap();
        first.publish(state(vec![file_pod("a", "busybox")])).await;
        let mut rx = merger.subscribe();
        second
            .publish(state(vec![pod("a", "other", PodSource::Controlplane)]))
            .await;
        assert!(!rx.has_changed().unwrap());
        assert_eq!(
            rx.borrow_and_update().pods["default/a"].source,
            PodSource::File("/m/a.yaml".into())
        );
        second
            .publish(state(vec![
                pod("a", "other", PodSource::Controlplane),
                pod("b", "x", PodSource::Controlplane),
            ]))
            .await;
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().pods.len(), 2);
    }

    #[tokio::test]
    async fn ready_once_every_source_reported() {
        let merger = Merger::new(None);
        let (mut file, _) = merger.add_source("file").unwrap();
        let (mut cp, _) = merger.add_source("controlplane").unwrap();
        assert!(!merger.is_ready());
        file.publish(state(vec![])).await;
        assert!(!merger.is_ready());
        cp.unavailable();
        assert!(merger.is_ready());
        tokio::time::timeout(std::time::Duration::from_secs(1), merger.wait_ready())
            .await
            .unwrap();
        assert!(matches!(
            merger.add_source("file"),
            Err(MergeError::DuplicateSource(_))
        ));
    }

    #[tokio::test]
    async fn checkpoints_are_written_on_change_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path());
        let path = store.path("file");
        {
            let merger = Merger::new(Some(store.clone()));
            let (mut file, restored) = merger.add_source("file").unwrap();
            assert_eq!(restored, None);
            file.publish(state(vec![file_pod("a", "busybox")])).await;
            assert!(path.exists());
            // Unchanged state: the file is not rewritten.
            std::fs::write(&path, b"sentinel").unwrap();
            file.publish(state(vec![file_pod("a", "busybox")])).await;
            assert_eq!(std::fs::read(&path).unwrap(), b"sentinel");
            file.publish(state(vec![file_pod("b", "busybox")])).await;
            assert_ne!(std::fs::read(&path).unwrap(), b"sentinel");
        }
        let merger = Merger::new(Some(store));
        let (mut file, restored) = merger.add_source("file").unwrap();
        let restored = restored.unwrap();
        assert_eq!(restored.pods, vec![file_pod("b", "busybox")]);
        // Until the source reports, its checkpoint is what the merge holds.
        assert_eq!(
            merger.current().pods.keys().collect::<Vec<_>>(),
            ["default/b"]
        );
        assert!(!merger.is_ready());
        file.unavailable();
        assert!(merger.is_ready());
        assert_eq!(merger.current().pods.len(), 1);
        file.publish(state(vec![])).await;
        assert!(merger.current().pods.is_empty());
    }
}
