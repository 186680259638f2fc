//! The controlplane source (`--controlplane`): the pods bound to this node, from its
//! ContainerManifestList.
//!
//! The node's list is a [`ListWatch`] source ([`NodeManifests`]) followed by the runtime's
//! [`watcher`]; [`ControlplaneSource::run`] publishes what it yields:
//!
//! * **Start.** The checkpointed list (pods and resourceVersion) is published at once, so an
//!   agent restarted while the controlplane is down runs its last known pods and restarts
//!   nothing; the watcher then resumes from the checkpointed resourceVersion. Without a
//!   checkpoint it lists first and, if that fails, the source says it is unavailable so the
//!   agent still starts.
//! * **List** (`GET /api/v1/nodes/{node}/manifests`): publish the pods (the merge
//!   checkpoints them with the list's resourceVersion); the watcher then watches from it.
//! * **Watch** (websocket, from the last resourceVersion): every ADDED/MODIFIED event carries
//!   the whole list, which replaces the published set; a BOOKMARK only moves the
//!   resourceVersion. Resuming from the current resourceVersion yields nothing, so nothing
//!   restarts. A 410 Expired lists again; any other failure reconnects from the last
//!   resourceVersion; a watch idle for too long is reopened. Failures and relists wait a
//!   jittered exponential backoff, so a fleet of agents does not reconnect in step.
//!
//! While the controlplane is unreachable nothing is published: the desired state stays as it
//! was and the pods keep running. Mirror pods (the controlplane's copies of this node's static
//! pods, marked with [`CONFIG_MIRROR_ANNOTATION`]) are bound to this node too and so appear in
//! the list; they are skipped, or every static pod would run twice.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use skiff_api::client::{Client, ClientError, ListParams, WatchStream};
use skiff_api::defaults::default_pod;
use skiff_api::runtime::{Event, ListWatch, WatcherConfig, WatcherError, watcher};
use skiff_api::types::{ContainerManifestList, Resource};
use skiff_api::validation::validate_pod;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::desired::{DesiredPod, PodSource};
use super::manifest::{CONFIG_MIRROR_ANNOTATION, format_errors};
use super::merge::{SourceSender, SourceState, pod_key};
use crate::status::with_root_cause;

/// The name of this source in the merge and its checkpoint file.
pub const SOURCE_NAME: &str = "controlplane";
/// First reconnect delay.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Largest reconnect delay.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Each reconnect delay is shortened by a random share up to this, so a fleet of agents
/// does not reconnect to a restarted controlplane in the same instant.
pub const DEFAULT_BACKOFF_JITTER: f64 = 0.5;
/// After this long without a failure, reconnect delays start over from the base.
pub const DEFAULT_BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);
/// A watch that delivered nothing for this long is reopened from the same resourceVersion,
/// in case the connection died silently.
pub const DEFAULT_WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The two calls the source needs from the controlplane; [`Client`] is the real one.
pub trait ManifestApi: Send + Sync + 'static {
    /// The node's current ContainerManifestList.
    fn manifests(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<ContainerManifestList, ClientError>> + Send;

    /// A watch of the node's ContainerManifestList from `resource_version` (None: the current
    /// list first, as ADDED).
    fn watch_manifests(
        &self,
        node: &str,
        resource_version: Option<&str>,
    ) -> impl Future<Output = Result<WatchStream<ContainerManifestList>, ClientError>> + Send;
}

impl ManifestApi for Client {
    async fn manifests(&self, node: &str) -> Result<ContainerManifestList, ClientError> {
        Client::manifests(self, node).await
    }

    async fn watch_manifests(
        &self,
        node: &str,
        resource_version: Option<&str>,
    ) -> Result<WatchStream<ContainerManifestList>, ClientError> {
        Client::watch_manifests(self, node, resource_version).await
    }
}

/// One node's ContainerManifestList as a [`ListWatch`] source: its list is the one
/// ContainerManifestList, and every watch event carries the whole list again.
#[derive(Debug, Clone)]
pub struct NodeManifests<A> {
    /// The controlplane.
    api: A,
    /// Whose list to follow.
    node: String,
}

impl<A: ManifestApi> NodeManifests<A> {
    /// The list of `node`, through `api`.
    pub fn new(api: A, node: impl Into<String>) -> Self {
        NodeManifests {
            api,
            node: node.into(),
        }
    }
}

impl<A: ManifestApi> ListWatch for NodeManifests<A> {
    type Item = ContainerManifestList;

    async fn list(
        &self,
        _params: &ListParams,
    ) -> Result<(Vec<ContainerManifestList>, String), ClientError> {
        let list = self.api.manifests(&self.node).await?;
        let resource_version = list.metadata.resource_version.clone().unwrap_or_default();
        Ok((vec![list], resource_version))
    }

    async fn watch(
        &self,
        _params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream<ContainerManifestList>, ClientError> {
        self.api
            .watch_manifests(&self.node, Some(resource_version))
            .await
    }

    fn resource_version(item: &ContainerManifestList) -> Option<String> {
        item.metadata.resource_version.clone()
    }
}

/// Settings of the controlplane source.
#[derive(Debug, Clone)]
pub struct ControlplaneSourceConfig {
    /// This node's name: whose ContainerManifestList to follow.
    pub node_name: String,
    /// First reconnect delay.
    pub backoff_base: Duration,
    /// Largest reconnect delay.
    pub backoff_cap: Duration,
    /// Random share by which a reconnect delay is shortened (0.5: by up to half).
    pub backoff_jitter: f64,
    /// How long the connection must go well before reconnect delays start over.
    pub backoff_reset_after: Duration,
    /// How long a watch may stay silent before it is reopened.
    pub watch_idle_timeout: Duration,
}

impl ControlplaneSourceConfig {
    /// Settings for node `node_name` with the default backoff and idle timeout.
    pub fn new(node_name: impl Into<String>) -> Self {
        ControlplaneSourceConfig {
            node_name: node_name.into(),
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            backoff_jitter: DEFAULT_BACKOFF_JITTER,
            backoff_reset_after: DEFAULT_BACKOFF_RESET_AFTER,
            watch_idle_timeout: DEFAULT_WATCH_IDLE_TIMEOUT,
        }
    }

    /// The watcher settings these describe, resuming from `resume_from` when known.
    fn watcher(&self, resume_from: Option<String>) -> WatcherConfig {
        WatcherConfig {
            params: ListParams::default(),
            backoff_base: self.backoff_base,
            backoff_cap: self.backoff_cap,
            backoff_jitter: self.backoff_jitter,
            backoff_reset_after: self.backoff_reset_after,
            idle_timeout: Some(self.watch_idle_timeout),
            resume_from,
        }
    }
}

/// The running source: follows the node's list, publishes to the merge (which checkpoints).
#[derive(Debug)]
pub struct ControlplaneSource<A> {
    /// The controlplane.
    api: A,
    /// Its settings.
    config: ControlplaneSourceConfig,
    /// The checkpoint it starts from, if any.
    restored: Option<SourceState>,
    /// Publishes to the merge and remembers what it published.
    publisher: Publisher,
}

/// The publishing half of the source: what was published and how the connection fares.
#[derive(Debug)]
struct Publisher {
    /// This node's name.
    node: String,
    /// Where it publishes its pods.
    sender: SourceSender,
    /// The resourceVersion of the last list seen (published or checkpointed).
    resource_version: Option<String>,
    /// The source has told the merge something (its state, or that it is unavailable).
    reported: bool,
    /// The last failure was logged as a warning (cleared on the next success), so an outage
    /// is one warning and one recovery line, not one line per attempt.
    failing: bool,
}

impl<A: ManifestApi> ControlplaneSource<A> {
    /// A source following `config.node_name`'s list through `api`, publishing through
    /// `sender`; `restored` is its checkpoint (as returned by `Merger::add_source`).
    pub fn new(
        api: A,
        config: ControlplaneSourceConfig,
        sender: SourceSender,
        restored: Option<SourceState>,
    ) -> Self {
        let resource_version = restored.as_ref().and_then(|s| s.resource_version.clone());
        let publisher = Publisher {
            node: config.node_name.clone(),
            sender,
            resource_version,
            reported: false,
            failing: false,
        };
        ControlplaneSource {
            api,
            config,
            restored,
            publisher,
        }
    }

    /// The resourceVersion the source would resume from now.
    pub fn resource_version(&self) -> Option<&str> {
        self.publisher.resource_version.as_deref()
    }

    /// Publishes the checkpoint, then lists and watches until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let ControlplaneSource {
            api,
            config,
            restored,
            mut publisher,
        } = self;
        let node = config.node_name.clone();
        if let Some(state) = restored {
            info!(
                node = %node,
                pods = state.pods.len(),
                resource_version = state.resource_version.as_deref().unwrap_or(""),
                "running the checkpointed controlplane pods until the controlplane answers"
            );
            publisher.sender.publish(state).await;
            publisher.reported = true;
        }
        let resume_from = publisher.resource_version.clone();
        let source = NodeManifests::new(api, node.clone());
        let mut events = Box::pin(watcher(source, config.watcher(resume_from)));
        loop {
            let item = tokio::select! {
                () = shutdown.cancelled() => break,
                item = events.next() => item,
            };
            match item {
                None => break,
                Some(Ok(event)) => publisher.on_event(event).await,
                Some(Err(WatcherError::Expired { resource_version })) => info!(
                    node = %node,
                    resource_version = %resource_version,
                    "resourceVersion too old for the manifests watch, listing again"
                ),
                Some(Err(error)) => publisher.failed(&error),
            }
        }
        debug!(node = %node, "controlplane source stopped");
    }
}

impl Publisher {
    /// Publishes what one watcher event says.
    async fn on_event(&mut self, event: Event<ContainerManifestList>) {
        self.recovered();
        match event {
            Event::Restarted(lists, resource_version) => match lists.into_iter().next() {
                Some(list) => self.apply(list).await,
                None => self.move_to(resource_version).await,
            },
            Event::Applied(list) => self.apply(list).await,
            Event::Progress(resource_version) => self.move_to(resource_version).await,
            Event::Deleted(_) => {
                debug!(node = %self.node, "ignoring a DELETED manifests event");
            }
        }
    }

    /// Publishes the pods of `list` (the merge checkpoints them with its resourceVersion).
    async fn apply(&mut self, list: ContainerManifestList) {
        let resource_version = list
            .metadata
            .resource_version
            .clone()
            .or_else(|| self.resource_version.clone());
        let pods = pods_from_list(&list, &self.node);
        let current = self.sender.current();
        if current.pods != pods {
            let (added, removed) = key_changes(&current.pods, &pods);
            info!(
                node = %self.node,
                resource_version = resource_version.as_deref().unwrap_or(""),
                pods = pods.len(),
                added = ?added,
                removed = ?removed,
                "desired pods from the controlplane changed"
            );
        }
        self.resource_version = resource_version.clone();
        self.sender
            .publish(SourceState {
                pods,
                resource_version,
            })
            .await;
        self.reported = true;
    }

    /// Records a new resourceVersion with the same pods (a bookmark).
    async fn move_to(&mut self, resource_version: String) {
        let pods = self.sender.current().pods.clone();
        self.resource_version = Some(resource_version.clone());
        self.sender
            .publish(SourceState {
                pods,
                resource_version: Some(resource_version),
            })
            .await;
        self.reported = true;
    }

    /// Logs a failure (a warning for the first of an outage) and makes sure the merge does
    /// not wait for this source.
    fn failed(&mut self, error: &WatcherError) {
        let action = match error {
            WatcherError::List(_) => "list",
            _ => "watch",
        };
        if self.failing {
            debug!(node = %self.node, action, error = %with_root_cause(error), "controlplane still unreachable");
        } else {
            warn!(
                node = %self.node,
                action,
                error = %with_root_cause(error),
                pods_kept = self.sender.current().pods.len(),
                "controlplane unreachable, keeping the last known pods"
            );
            self.failing = true;
        }
        if !self.reported {
            self.sender.unavailable();
            self.reported = true;
        }
    }

    /// Logs the end of an outage.
    fn recovered(&mut self) {
        if self.failing {
            info!(node = %self.node, "controlplane reachable again");
            self.failing = false;
        }
    }
}

/// The pods this node runs out of `list`: mirror pods and pods bound elsewhere are skipped;
/// each pod is defaulted, stripped of what changes without changing what runs (status,
/// resourceVersion) and validated (an invalid one is skipped with a warning).
pub fn pods_from_list(list: &ContainerManifestList, node: &str) -> Vec<DesiredPod> {
    let mut pods = Vec::with_capacity(list.items.len());
    let mut seen = BTreeSet::new();
    for item in &list.items {
        let meta = &item.metadata;
        let key = item.key();
        if meta.annotations.contains_key(CONFIG_MIRROR_ANNOTATION) {
            debug!(pod = %key, "skipping mirror pod of a static pod");
            continue;
        }
        if let Some(bound) = item.spec.node_name.as_deref()
            && bound != node
        {
            warn!(pod = %key, bound_to = bound, node, "skipping a pod bound to another node");
            continue;
        }
        // What the node runs, as the controlplane's manifest view defines it.
        let mut pod = item.for_node();
        default_pod(&mut pod);
        pod.spec.node_name = Some(node.to_string());
        if pod.metadata.uid.as_deref().is_none_or(str::is_empty) {
            warn!(pod = %key, "skipping a controlplane pod without uid");
            continue;
        }
        let errors = validate_pod(&pod);
        if !errors.is_empty() {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            warn!(pod = %key, errors = %format_errors(&errors), "skipping an invalid controlplane pod");
            continue;
        }
        let desired = DesiredPod {
            pod,
            source: PodSource::Controlplane,
        };
        if !seen.insert(pod_key(&desired)) {
            warn!(pod = %key, "skipping a pod listed twice");
            continue;
        }
        pods.push(desired);
    }
    pods
}

/// The `namespace/name` keys only in `new` and only in `old`.
fn key_changes(old: &[DesiredPod], new: &[DesiredPod]) -> (Vec<String>, Vec<String>) {
    let old: BTreeSet<String> = old.iter().map(pod_key).collect();
    let new: BTreeSet<String> = new.iter().map(pod_key).collect();
    (
        new.difference(&old).cloned().collect(),
        old.difference(&new).cloned().collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use skiff_api::Status;
    use skiff_api::types::{ObjectMeta, Pod, PodSpec, WatchEvent};
    use tokio::sync::watch;

    use super::*;
    use crate::checkpoint::CheckpointStore;
    use crate::config::{DesiredState, Merger};

    const NODE: &str = "edge-1";

    /// One scripted watch connection.
    enum Conn {
        /// Connecting fails.
        Refuse(ClientError),
        /// These events, then the stream stays open (`hang`) or ends.
        Events(
            Vec<Result<WatchEvent<ContainerManifestList>, ClientError>>,
            bool,
        ),
    }

    /// A controlplane whose answers are scripted; unscripted calls fail as if it were down.
    #[derive(Clone, Default)]
    struct FakeApi {
        /// Scripted answers and the calls made.
        inner: Arc<Mutex<Script>>,
    }

    #[derive(Default)]
    struct Script {
        lists: VecDeque<Result<ContainerManifestList, ClientError>>,
        watches: VecDeque<Conn>,
        calls: Vec<String>,
    }

    fn down() -> ClientError {
        ClientError::Api(Box::new(Status::failure(
            503,
            "ServiceUnavailable",
            "controlplane down",
        )))
    }

    fn expired() -> Status {
        Status::expired("too old resource version")
    }

    impl FakeApi {
        fn list(&self, list: ContainerManifestList) {
            self.inner.lock().unwrap().lists.push_back(Ok(list));
        }
        fn conn(&self, conn: Conn) {
            self.inner.lock().unwrap().watches.push_back(conn);
        }
        fn calls(&self) -> Vec<String> {
            self.inner.lock().unwrap().calls.clone()
        }
    }

    impl ManifestApi for FakeApi {
        async fn manifests(&self, node: &str) -> Result<ContainerManifestList, ClientError> {
            assert_eq!(node, NODE);
            let mut script = self.inner.lock().unwrap();
            script.calls.push("list".to_string());
            script.lists.pop_front().unwrap_or_else(|| Err(down()))
        }

        async fn watch_manifests(
            &self,
            node: &str,
            resource_version: Option<&str>,
        ) -> Result<WatchStream<ContainerManifestList>, ClientError> {
            assert_eq!(node, NODE);
            let mut script = self.inner.lock().unwrap();
            script
                .calls
                .push(format!("watch:{}", resource_version.unwrap_or("-")));
            match script.watches.pop_front() {
                None => Err(down()),
                Some(Conn::Refuse(error)) => Err(error),
                Some(Conn::Events(events, hang)) => {
                    let events = futures::stream::iter(events);
                    if hang {
                        Ok(Box::pin(events.chain(futures::stream::pending())))
                    } else {
                        Ok(Box::pin(events))
                    }
                }
            }
        }
    }

    fn pod(name: &str, image: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            spec: PodSpec {
                node_name: Some(NODE.into()),
                ..PodSpec::one_container("c", image)
            },
            ..Pod::default()
        }
    }

    fn mirror(name: &str) -> Pod {
        let mut pod = pod(name, "busybox");
        pod.metadata
            .annotations
            .insert(CONFIG_MIRROR_ANNOTATION.into(), "abc".into());
        pod
    }

    fn list(rv: &str, items: Vec<Pod>) -> ContainerManifestList {
        ContainerManifestList::new(NODE, rv.to_string(), items)
    }

    fn config() -> ControlplaneSourceConfig {
        ControlplaneSourceConfig {
            backoff_base: Duration::from_millis(5),
            backoff_cap: Duration::from_millis(20),
            ..ControlplaneSourceConfig::new(NODE)
        }
    }

    /// A merger with checkpoints in `dir`, the source started on it, and its desired state.
    struct Running {
        merger: Merger,
        desired: watch::Receiver<Arc<DesiredState>>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(api: &FakeApi, dir: &std::path::Path) -> Running {
        let merger = Merger::new(Some(CheckpointStore::new(dir)));
        let (sender, restored) = merger.add_source(SOURCE_NAME).unwrap();
        let desired = merger.subscribe();
        let shutdown = CancellationToken::new();
        let source = ControlplaneSource::new(api.clone(), config(), sender, restored);
        let task = tokio::spawn(source.run(shutdown.clone()));
        Running {
            merger,
            desired,
            shutdown,
            task,
        }
    }

    impl Running {
        async fn stop(self) {
            self.shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(5), self.task)
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// Waits (up to 5 s) until `check` holds.
    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !check() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn names(state: &DesiredState) -> Vec<String> {
        state.pods.keys().cloned().collect()
    }

    fn checkpoint(dir: &std::path::Path) -> Option<SourceState> {
        CheckpointStore::new(dir).load(SOURCE_NAME)
    }

    #[test]
    fn pods_from_list_skips_mirrors_and_foreign_pods_and_defaults_the_rest() {
        let mut foreign = pod("elsewhere", "busybox");
        foreign.spec.node_name = Some("edge-2".into());
        let mut no_uid = pod("anonymous", "busybox");
        no_uid.metadata.uid = None;
        let mut invalid = pod("invalid", "busybox");
        invalid.spec.containers[0].image = String::new();
        let mut with_status = pod("web", "busybox:1");
        with_status.status = Some(Default::default());
        let list = list(
            "9",
            vec![
                with_status,
                mirror("static-edge-1"),
                foreign,
                no_uid,
                invalid,
                pod("web", "busybox:2"),
            ],
        );
        let pods = pods_from_list(&list, NODE);
        assert_eq!(pods.len(), 1, "{pods:#?}");
        let web = &pods[0];
        assert_eq!(web.source, PodSource::Controlplane);
        assert_eq!(web.pod.metadata.name.as_deref(), Some("web"));
        assert_eq!(web.pod.spec.containers[0].image, "busybox:1");
        assert_eq!(web.pod.status, None);
        assert_eq!(web.pod.metadata.resource_version, None);
        assert_eq!(web.pod.spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            web.pod.spec.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
    }

    #[tokio::test]
    async fn first_start_lists_publishes_checkpoints_and_watches_from_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let api = FakeApi::default();
        api.list(list("5", vec![pod("a", "busybox"), mirror("s-edge-1")]));
        api.conn(Conn::Events(
            vec![Ok(WatchEvent::Modified(list(
                "8",
                vec![pod("a", "busybox"), pod("b", "busybox")],
            )))],
            true,
        ));
        let mut running = start(&api, dir.path());
        running.merger.wait_ready().await;
        until("pods a and b", || {
            names(&running.desired.borrow_and_update())
                == ["default/a".to_string(), "default/b".to_string()]
        })
        .await;
        assert_eq!(api.calls(), ["list", "watch:5"]);
        until("checkpoint at 8", || {
            checkpoint(dir.path()).and_then(|s| s.resource_version) == Some("8".into())
        })
        .await;
        let saved = checkpoint(dir.path()).unwrap();
        assert_eq!(saved.pods.len(), 2);
        assert!(
            saved
                .pods
                .iter()
                .all(|p| p.source == PodSource::Controlplane)
        );
        running.stop().await;
    }

    #[tokio::test]
    async fn restart_while_the_controlplane_is_down_keeps_the_checkpointed_pods() {
        let dir = tempfile::tempdir().unwrap();
        // A previous run left pod a at resourceVersion 5.
        let previous = SourceState {
            pods: pods_from_list(&list("5", vec![pod("a", "busybox")]), NODE),
            resource_version: Some("5".into()),
        };
        CheckpointStore::new(dir.path())
            .save(SOURCE_NAME, &previous)
            .unwrap();

        let api = FakeApi::default();
        let mut running = start(&api, dir.path());
        tokio::time::timeout(Duration::from_secs(5), running.merger.wait_ready())
            .await
            .unwrap();
        assert_eq!(names(&running.desired.borrow_and_update()), ["default/a"]);
        // Several failed reconnects later, all from the checkpointed resourceVersion …
        until("three reconnects", || api.calls().len() >= 3).await;
        assert!(
            api.calls().iter().all(|c| c == "watch:5"),
            "{:?}",
            api.calls()
        );
        // … nothing changed in the desired state.
        assert!(!running.desired.has_changed().unwrap());
        assert_eq!(checkpoint(dir.path()), Some(previous));
        running.stop().await;
    }

    #[tokio::test]
    async fn resuming_at_the_current_version_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let previous = SourceState {
            pods: pods_from_list(&list("5", vec![pod("a", "busybox")]), NODE),
            resource_version: Some("5".into()),
        };
        CheckpointStore::new(dir.path())
            .save(SOURCE_NAME, &previous)
            .unwrap();
        let before = std::fs::read(CheckpointStore::new(dir.path()).path(SOURCE_NAME)).unwrap();
        let api = FakeApi::default();
        // The controlplane is back, nothing happened since 5: the watch stays silent.
        api.conn(Conn::Events(vec![], true));
        let mut running = start(&api, dir.path());
        running.merger.wait_ready().await;
        running.desired.mark_unchanged();
        until("the watch", || api.calls() == ["watch:5"]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(api.calls(), ["watch:5"]);
        assert!(!running.desired.has_changed().unwrap());
        let after = std::fs::read(CheckpointStore::new(dir.path()).path(SOURCE_NAME)).unwrap();
        assert_eq!(before, after, "the checkpoint was not rewritten");
        running.stop().await;
    }

    #[tokio::test]
    async fn an_expired_resource_version_relists_at_connect_or_as_an_event() {
        let dir = tempfile::tempdir().unwrap();
        CheckpointStore::new(dir.path())
            .save(
                SOURCE_NAME,
                &SourceState {
                    pods: pods_from_list(&list("5", vec![pod("a", "busybox")]), NODE),
                    resource_version: Some("5".into()),
                },
            )
            .unwrap();
        let api = FakeApi::default();
        api.conn(Conn::Refuse(ClientError::Api(Box::new(expired()))));
        api.list(list("20", vec![pod("b", "busybox")]));
        api.conn(Conn::Events(
            vec![
                Ok(WatchEvent::Bookmark(list("25", vec![]))),
                Ok(WatchEvent::Error(Box::new(expired()))),
            ],
            false,
        ));
        api.list(list("30", vec![pod("b", "busybox"), pod("c", "busybox")]));
        api.conn(Conn::Events(vec![], true));
        let mut running = start(&api, dir.path());
        until("pods b and c", || {
            names(&running.desired.borrow_and_update())
                == ["default/b".to_string(), "default/c".to_string()]
        })
        .await;
        until("the last watch", || api.calls().len() == 5).await;
        assert_eq!(
            api.calls(),
            ["watch:5", "list", "watch:20", "list", "watch:30"]
        );
        until("checkpoint at 30", || {
            checkpoint(dir.path()).and_then(|s| s.resource_version) == Some("30".into())
        })
        .await;
        running.stop().await;
    }

    #[tokio::test]
    async fn a_broken_watch_resumes_from_the_last_version_seen() {
        let dir = tempfile::tempdir().unwrap();
        let api = FakeApi::default();
        api.list(list("5", vec![pod("a", "busybox")]));
        api.conn(Conn::Events(
            vec![
                Ok(WatchEvent::Modified(list("6", vec![pod("a", "busybox:2")]))),
                Err(down()),
            ],
            false,
        ));
        api.conn(Conn::Refuse(down()));
        api.conn(Conn::Events(
            vec![Ok(WatchEvent::Bookmark(list("9", vec![])))],
            false,
        ));
        api.conn(Conn::Events(vec![], true));
        let mut running = start(&api, dir.path());
        until("four watches", || api.calls().len() == 5).await;
        assert_eq!(
            api.calls(),
            ["list", "watch:5", "watch:6", "watch:6", "watch:9"]
        );
        let state = running.desired.borrow_and_update().clone();
        assert_eq!(
            state.pods["default/a"].pod.spec.containers[0].image,
            "busybox:2"
        );
        until("checkpoint at 9", || {
            checkpoint(dir.path()).and_then(|s| s.resource_version) == Some("9".into())
        })
        .await;
        assert_eq!(checkpoint(dir.path()).unwrap().pods.len(), 1);
        running.stop().await;
    }

    #[tokio::test]
    async fn a_first_start_without_controlplane_reports_unavailable_and_keeps_trying() {
        let dir = tempfile::tempdir().unwrap();
        let api = FakeApi::default();
        let mut running = start(&api, dir.path());
        tokio::time::timeout(Duration::from_secs(5), running.merger.wait_ready())
            .await
            .unwrap();
        assert!(running.desired.borrow_and_update().pods.is_empty());
        until("two lists", || api.calls().len() >= 2).await;
        assert!(api.calls().iter().all(|c| c == "list"));
        api.list(list("3", vec![pod("a", "busybox")]));
        until("pod a", || {
            names(&running.desired.borrow_and_update()) == ["default/a".to_string()]
        })
        .await;
        running.stop().await;
    }
}
