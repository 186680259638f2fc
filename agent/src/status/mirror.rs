//! Mirror pods: the controlplane's read-only copies of this node's static pods, so they show
//! in `kubectl get pods` with their status.
//!
//! A mirror pod has the static pod's namespace, name (`<name>-<node>`), labels, annotations
//! and spec, with `spec.nodeName` set to this node (so the scheduler leaves it alone) and the
//! annotation [`CONFIG_MIRROR_ANNOTATION`] holding the static pod's config hash. The manager
//! compares the static pods of the merged desired state with the mirror pods bound to this
//! node — on every change of the desired state and every resync interval — and creates the
//! missing ones (also when someone deleted one), replaces those whose hash is stale and deletes
//! those whose static pod is gone. Mirror pods are bound to this node, so they are in its
//! ContainerManifestList too; the controlplane source skips them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::types::{ObjectMeta, Pod};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::api::PodApi;
use super::error::{StatusError, with_root_cause};
use super::pods::ResendHandle;
use crate::config::manifest::{CONFIG_HASH_ANNOTATION, CONFIG_MIRROR_ANNOTATION};
use crate::config::{DesiredState, PodSource};

/// How often mirror pods are compared with the static pods without a change.
pub const DEFAULT_MIRROR_RESYNC_INTERVAL: Duration = Duration::from_secs(10);

/// The config hash a static pod's mirror must carry.
pub fn config_hash(static_pod: &Pod) -> String {
    let annotations = &static_pod.metadata.annotations;
    annotations
        .get(CONFIG_HASH_ANNOTATION)
        .or_else(|| annotations.get(CONFIG_MIRROR_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

/// Whether `pod` (from the controlplane) is a mirror pod.
pub fn is_mirror_pod(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .contains_key(CONFIG_MIRROR_ANNOTATION)
}

/// The mirror pod of `static_pod` on `node`: its identity, labels, annotations and spec, no
/// uid, resourceVersion or status (the server assigns those).
pub fn mirror_pod(static_pod: &Pod, node: &str) -> Pod {
    let mut annotations = static_pod.metadata.annotations.clone();
    annotations.insert(
        CONFIG_MIRROR_ANNOTATION.to_string(),
        config_hash(static_pod),
    );
    let mut spec = static_pod.spec.clone();
    spec.node_name = Some(node.to_string());
    Pod {
        api_version: "v1".to_string(),
        kind: "Pod".to_string(),
        metadata: ObjectMeta {
            name: static_pod.metadata.name.clone(),
            namespace: static_pod.metadata.namespace.clone(),
            labels: static_pod.metadata.labels.clone(),
            annotations,
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

/// One change to the controlplane's mirror pods.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorAction {
    /// Create this mirror pod.
    Create(Pod),
    /// Delete the stale mirror (namespace, name, resourceVersion), then create this one.
    Replace {
        /// The mirror to delete: namespace, name, resourceVersion.
        stale: (String, String, Option<String>),
        /// Its replacement.
        pod: Pod,
    },
    /// Delete the mirror whose static pod is gone: namespace, name, resourceVersion.
    Delete(String, String, Option<String>),
}

/// What to do so that `existing` (the pods bound to `node`) holds exactly one current mirror
/// for each of `static_pods`. A non-mirror pod holding a static pod's name is left alone.
pub fn plan(static_pods: &[&Pod], existing: &[Pod], node: &str) -> Vec<MirrorAction> {
    let key = |pod: &Pod| {
        (
            pod.metadata.namespace_or_empty().to_string(),
            pod.metadata.name_or_empty().to_string(),
        )
    };
    let on_node: BTreeMap<(String, String), &Pod> = existing
        .iter()
        .filter(|p| p.spec.node_name.as_deref() == Some(node))
        .map(|p| (key(p), p))
        .collect();
    let mut actions = Vec::new();
    let mut wanted = std::collections::BTreeSet::new();
    for static_pod in static_pods {
        let k = key(static_pod);
        wanted.insert(k.clone());
        let hash = config_hash(static_pod);
        match on_node.get(&k) {
            None => actions.push(MirrorAction::Create(mirror_pod(static_pod, node))),
            Some(current) if is_mirror_pod(current) => {
                let current_hash = current.metadata.annotations.get(CONFIG_MIRROR_ANNOTATION);
                if current_hash != Some(&hash) {
                    actions.push(MirrorAction::Replace {
                        stale: (k.0, k.1, current.metadata.resource_version.clone()),
                        pod: mirror_pod(static_pod, node),
                    });
                }
            }
            Some(_) => {}
        }
    }
    for (k, pod) in &on_node {
        if is_mirror_pod(pod) && !wanted.contains(k) {
            actions.push(MirrorAction::Delete(
                k.0.clone(),
                k.1.clone(),
                pod.metadata.resource_version.clone(),
            ));
        }
    }
    actions
}

/// Keeps a mirror pod in the controlplane for every static pod.
#[derive(Debug)]
pub struct MirrorPodManager<A> {
    /// The controlplane.
    api: A,
    /// This node.
    node_name: String,
    /// The merged desired state (its static pods are mirrored).
    desired: watch::Receiver<Arc<DesiredState>>,
    /// Asks the status reporter to write a new mirror's status.
    resend: Option<ResendHandle>,
    /// How often to compare without a change.
    resync: Duration,
}

impl<A: PodApi> MirrorPodManager<A> {
    /// A manager for `node_name`'s static pods in `desired`, through `api`.
    pub fn new(
        api: A,
        node_name: impl Into<String>,
        desired: watch::Receiver<Arc<DesiredState>>,
        resync: Duration,
    ) -> Self {
        MirrorPodManager {
            api,
            node_name: node_name.into(),
            desired,
            resend: None,
            resync,
        }
    }

    /// Asks `resend` to report a mirror's status again after the mirror is (re)created.
    pub fn with_resend(mut self, resend: ResendHandle) -> Self {
        self.resend = Some(resend);
        self
    }

    /// Syncs at once, then on every desired-state change and every resync interval.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut failing = false;
        loop {
            match self.sync().await {
                Ok(()) => {
                    if failing {
                        info!(node = %self.node_name, "mirror pods in sync again");
                        failing = false;
                    }
                }
                Err(error) => {
                    if failing {
                        debug!(node = %self.node_name, error = %with_root_cause(&error), "mirror pods still out of sync");
                    } else {
                        warn!(node = %self.node_name, error = %with_root_cause(&error), "could not sync mirror pods, will retry");
                        failing = true;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        // The sources are gone; keep the mirrors as they are.
                        shutdown.cancelled().await;
                        break;
                    }
                }
                () = tokio::time::sleep(self.resync) => {}
            }
        }
        debug!(node = %self.node_name, "mirror pod manager stopped");
    }

    /// One comparison of static pods and mirrors, and the changes it calls for.
    pub async fn sync(&mut self) -> Result<(), StatusError> {
        let desired = self.desired.borrow_and_update().clone();
        let statics: Vec<&Pod> = desired
            .pods
            .values()
            .filter(|d| matches!(d.source, PodSource::File(_)))
            .map(|d| &d.pod)
            .collect();
        let object = format!("pods of node {}", self.node_name);
        let existing = self
            .api
            .pods_on_node(&self.node_name)
            .await
            .map_err(|e| StatusError::api("list", &object, e))?;
        let mut first_error = None;
        for action in plan(&statics, &existing, &self.node_name) {
            if let Err(error) = self.execute(action).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Carries out one action; races with other writers are left to the next sync.
    async fn execute(&self, action: MirrorAction) -> Result<(), StatusError> {
        match action {
            MirrorAction::Create(pod) => self.create(&pod).await,
            MirrorAction::Replace { stale, pod } => {
                info!(pod = %format!("{}/{}", stale.0, stale.1), "static pod changed, replacing its mirror pod");
                self.delete(&stale.0, &stale.1, stale.2.as_deref()).await?;
                self.create(&pod).await
            }
            MirrorAction::Delete(namespace, name, rv) => {
                info!(pod = %format!("{namespace}/{name}"), "static pod gone, deleting its mirror pod");
                self.delete(&namespace, &name, rv.as_deref()).await
            }
        }
    }

    /// Creates a mirror pod and asks for its status to be reported.
    async fn create(&self, pod: &Pod) -> Result<(), StatusError> {
        let namespace = pod.metadata.namespace_or_empty();
        let name = pod.metadata.name_or_empty();
        match self.api.create_pod(pod).await {
            Ok(_) => {
                info!(pod = %format!("{namespace}/{name}"), "created mirror pod");
                if let Some(resend) = &self.resend {
                    resend.resend(namespace, name);
                }
                Ok(())
            }
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(StatusError::api(
                "create the mirror pod",
                &format!("{namespace}/{name}"),
                e,
            )),
        }
    }

    /// Deletes a mirror pod if it still has `rv`; already gone or changed is fine.
    async fn delete(
        &self,
        namespace: &str,
        name: &str,
        rv: Option<&str>,
    ) -> Result<(), StatusError> {
        match self.api.delete_pod(namespace, name, rv).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            Err(e) => Err(StatusError::api(
                "delete the mirror pod",
                &format!("{namespace}/{name}"),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::types::PodSpec;

    use super::*;
    use crate::config::DesiredPod;
    use crate::config::manifest::prepare_static_pod;
    use crate::status::fake::FakeControlplane;

    const NODE: &str = "edge-1";

    fn static_pod(name: &str, image: &str) -> Pod {
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: BTreeMap::from([("app".to_string(), name.to_string())]),
                ..ObjectMeta::default()
            },
            spec: PodSpec::one_container("c", image),
            ..Pod::default()
        };
        prepare_static_pod(&mut pod, NODE);
        pod
    }

    fn desired(pods: &[Pod]) -> DesiredState {
        let mut state = DesiredState::default();
        for pod in pods {
            state.pods.insert(
                format!(
                    "{}/{}",
                    pod.metadata.namespace_or_empty(),
                    pod.metadata.name_or_empty()
                ),
                DesiredPod {
                    pod: pod.clone(),
                    source: PodSource::File("/m/x.yaml".into()),
                },
            );
        }
        state
    }

    #[test]
    fn a_mirror_pod_copies_identity_labels_spec_and_carries_the_hash() {
        let web = static_pod("web", "busybox");
        let mirror = mirror_pod(&web, NODE);
        assert_eq!(mirror.metadata.name.as_deref(), Some("web-edge-1"));
        assert_eq!(mirror.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(mirror.metadata.labels["app"], "web");
        assert_eq!(mirror.metadata.uid, None);
        assert_eq!(
            mirror.metadata.annotations[CONFIG_MIRROR_ANNOTATION],
            web.metadata.annotations[CONFIG_HASH_ANNOTATION]
        );
        assert_eq!(mirror.spec.node_name.as_deref(), Some(NODE));
        assert_eq!(mirror.spec.containers, web.spec.containers);
        assert_eq!(mirror.status, None);
        assert!(is_mirror_pod(&mirror));
        assert!(skiff_api::validation::validate_pod(&mirror).is_empty());
    }

    #[test]
    fn the_plan_creates_replaces_and_deletes_only_mirrors() {
        let web = static_pod("web", "busybox");
        let db = static_pod("db", "busybox");
        let edited = static_pod("cache", "busybox:2");
        let mut stale = mirror_pod(&static_pod("cache", "busybox:1"), NODE);
        stale.metadata.resource_version = Some("4".into());
        let mut orphan = mirror_pod(&static_pod("old", "busybox"), NODE);
        orphan.metadata.resource_version = Some("5".into());
        let mut squatter = mirror_pod(&db, NODE);
        squatter.metadata.annotations.clear();
        let mut elsewhere = mirror_pod(&static_pod("other", "busybox"), "edge-2");
        elsewhere.spec.node_name = Some("edge-2".into());
        let current = mirror_pod(&web, NODE);
        let existing = vec![current, stale, orphan, squatter, elsewhere];

        let actions = plan(&[&web, &db, &edited], &existing, NODE);
        assert_eq!(
            actions,
            vec![
                MirrorAction::Replace {
                    stale: ("default".into(), "cache-edge-1".into(), Some("4".into())),
                    pod: mirror_pod(&edited, NODE),
                },
                MirrorAction::Delete("default".into(), "old-edge-1".into(), Some("5".into())),
            ]
        );
        assert_eq!(
            plan(&[&web], &[], NODE),
            vec![MirrorAction::Create(mirror_pod(&web, NODE))]
        );
    }

    #[tokio::test]
    async fn sync_keeps_one_mirror_per_static_pod() {
        let api = FakeControlplane::default();
        let web = static_pod("web", "busybox");
        let (tx, rx) = watch::channel(Arc::new(desired(std::slice::from_ref(&web))));
        let resend = ResendHandle::default();
        let mut manager = MirrorPodManager::new(api.clone(), NODE, rx, Duration::from_secs(60))
            .with_resend(resend);
        manager.sync().await.unwrap();
        let mirror = api.pod("default", "web-edge-1").unwrap();
        assert!(is_mirror_pod(&mirror));
        assert_eq!(mirror.spec.node_name.as_deref(), Some(NODE));

        // In sync: no writes.
        manager.sync().await.unwrap();
        assert_eq!(api.calls_like("POST"), 1);

        // Someone deleted it: recreated.
        api.remove_pod("default", "web-edge-1");
        manager.sync().await.unwrap();
        assert!(api.pod("default", "web-edge-1").is_some());
        assert_eq!(api.calls_like("POST"), 2);

        // The file was edited: replaced with the new hash.
        let edited = static_pod("web", "busybox:2");
        tx.send(Arc::new(desired(std::slice::from_ref(&edited))))
            .unwrap();
        manager.sync().await.unwrap();
        let mirror = api.pod("default", "web-edge-1").unwrap();
        assert_eq!(mirror.spec.containers[0].image, "busybox:2");
        assert_eq!(
            mirror.metadata.annotations[CONFIG_MIRROR_ANNOTATION],
            config_hash(&edited)
        );

        // The file was removed: the mirror goes.
        tx.send(Arc::new(DesiredState::default())).unwrap();
        manager.sync().await.unwrap();
        assert!(api.pod("default", "web-edge-1").is_none());
    }
}
