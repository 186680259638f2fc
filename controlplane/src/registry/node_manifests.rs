//! Each node's ContainerManifestList (what `GET /api/v1/nodes/{node}/manifests` serves), and
//! its watch.
//!
//! The list is a view derived from the pod registry's watch cache, through its
//! `spec.nodeName` index (DESIGN §2): there is no second copy to keep in step. Items are the
//! pods as their node sees them ([`Pod::for_node`]). A watch sends the whole list again
//! whenever the set of pods bound to the node or any of their metadata or specs changes;
//! status-only changes send nothing. A watch that resumes from the current revision sends
//! nothing until something changes; one that resumes from an older revision (however old)
//! gets the current list at once, so this watch never needs to answer 410.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use skiff_api::Status;
use skiff_api::types::{ContainerManifestList, Pod, Resource, WatchEvent};
use tracing::debug;

use super::filter::ObjectFilter;
use super::store::Registry;
use crate::watchcache::{
    CachedObject, EventType, POD_NODE_INDEX, WatchItem, WatchRequest, WatchStream,
};

/// A watch of one node's manifests: a whole list per change, an ERROR item when the pod
/// watch under it fails.
pub type ManifestStream = BoxStream<'static, WatchEvent<ContainerManifestList>>;

/// The per-node manifest view over the pod registry; cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeManifests {
    /// The pods, whose watch cache indexes them by node.
    pods: Registry<Pod>,
}

impl NodeManifests {
    /// The view over `pods`.
    pub fn new(pods: Registry<Pod>) -> Self {
        NodeManifests { pods }
    }

    /// The current ContainerManifestList of `node`, at the revision the cache is at.
    pub async fn list(&self, node: &str) -> Result<ContainerManifestList, Status> {
        let (view, revision) = self.current(node).await?;
        Ok(view.list(node, revision))
    }

    /// Watches `node`'s list: first the whole list unless `from` is the current revision
    /// or newer, then a new list after every change of what the node runs; it ends after
    /// `timeout`, on shutdown, or when the pod watch under it ends.
    pub async fn watch(
        &self,
        node: &str,
        from: Option<i64>,
        timeout: Option<Duration>,
    ) -> Result<ManifestStream, Status> {
        let (view, revision) = self.current(node).await?;
        let filter =
            ObjectFilter::parse::<Pod>(None, None, Some(&format!("spec.nodeName={node}")))?;
        let pods = self
            .pods
            .watch(WatchRequest {
                resource_version: Some(revision),
                filter,
                bookmarks: false,
                timeout,
            })
            .await;
        let initial = match from.filter(|rv| *rv > 0) {
            Some(rv) if rv >= revision => None,
            _ => Some(WatchEvent::Added(view.list(node, revision))),
        };
        debug!(%node, ?from, revision, resend = initial.is_some(), "manifest watch");
        let updates = futures::stream::unfold(
            (pods, view, node.to_string()),
            |(mut pods, mut view, node)| async move {
                let event = view.next_event(&mut pods, &node).await?;
                Some((event, (pods, view, node)))
            },
        );
        Ok(futures::stream::iter(initial).chain(updates).boxed())
    }

    /// The view of `node` and the revision it is consistent at, once the cache is ready.
    async fn current(&self, node: &str) -> Result<(NodeView, i64), Status> {
        self.pods.ready().await?;
        let (objects, revision) = self.pods.cache().by_index(POD_NODE_INDEX, node);
        Ok((NodeView::from_cached(&objects), revision))
    }
}

/// The pods of one node as the node should see them, keyed `namespace/name`.
#[derive(Debug, Default)]
struct NodeView {
    /// Each pod as [`Pod::for_node`] makes it, so only what matters compares.
    pods: BTreeMap<String, Pod>,
}

impl NodeView {
    /// Builds the view from the cached pods bound to the node.
    fn from_cached(objects: &[Arc<CachedObject<Pod>>]) -> Self {
        let mut view = NodeView::default();
        for object in objects {
            view.put(&object.object);
        }
        view
    }

    /// Adds or replaces a pod; true when what the node should run changed.
    fn put(&mut self, pod: &Pod) -> bool {
        let manifest = pod.for_node();
        let key = pod.key();
        if self.pods.get(&key) == Some(&manifest) {
            return false;
        }
        self.pods.insert(key, manifest);
        true
    }

    /// Removes a pod; true when it was there.
    fn remove(&mut self, pod: &Pod) -> bool {
        self.pods.remove(&pod.key()).is_some()
    }

    /// The list at `revision`.
    fn list(&self, node: &str, revision: i64) -> ContainerManifestList {
        ContainerManifestList::from_pods(node, revision.to_string(), self.pods.values())
    }

    /// Applies pod events until one changes the view (its new list) or fails (an ERROR);
    /// None when the pod watch ends.
    async fn next_event(
        &mut self,
        pods: &mut WatchStream<Pod>,
        node: &str,
    ) -> Option<WatchEvent<ContainerManifestList>> {
        loop {
            match pods.next().await? {
                WatchItem::Event { kind, object } => {
                    let changed = match kind {
                        EventType::Added | EventType::Modified => self.put(&object.object),
                        EventType::Deleted => self.remove(&object.object),
                    };
                    if changed {
                        return Some(WatchEvent::Modified(self.list(node, object.revision())));
                    }
                }
                WatchItem::Bookmark(_) => {}
                WatchItem::Error(status) => return Some(WatchEvent::Error(status)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pod `name` in `default` at resourceVersion `rv`, running `image`.
    fn pod(name: &str, rv: &str, image: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("default".into());
        pod.metadata.name = Some(name.into());
        pod.metadata.resource_version = Some(rv.into());
        pod.spec.containers = vec![skiff_api::types::Container {
            name: "c".into(),
            image: image.into(),
            ..Default::default()
        }];
        pod
    }

    #[test]
    fn only_what_the_node_runs_changes_the_view() {
        let mut view = NodeView::default();
        assert!(view.put(&pod("web", "1", "busybox:1")));
        assert!(
            !view.put(&pod("web", "2", "busybox:1")),
            "a new resourceVersion only"
        );
        let mut with_status = pod("web", "3", "busybox:1");
        with_status.status = Some(Default::default());
        assert!(!view.put(&with_status), "a status change only");
        assert!(view.put(&pod("web", "4", "busybox:2")));
        let list = view.list("edge-1", 4);
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.items[0].metadata.resource_version, None);
        assert!(view.remove(&pod("web", "5", "busybox:2")));
        assert!(!view.remove(&pod("web", "5", "busybox:2")));
    }
}
