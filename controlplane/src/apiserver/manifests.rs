//! Each node's ContainerManifestList: `GET /api/v1/nodes/{node}/manifests`, and its watch.
//!
//! The list is a view derived from the pod watch cache's `spec.nodeName` index (DESIGN §2):
//! there is no second copy to keep in step. A watch sends the whole list again whenever the
//! set of pods bound to the node or any of their metadata or specs changes; status-only
//! changes send nothing. A watch that resumes from the current revision sends nothing until
//! something changes; one that resumes from an older revision (however old) gets the current
//! list at once, so this watch never needs to answer 410.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use futures::StreamExt;
use skiff_api::types::{ContainerManifestList, Pod, WatchEvent};

use super::request::Query;
use super::response::{ApiResult, json_response};
use super::state::AppState;
use super::watch::{chunked, pump};
use crate::registry::ObjectFilter;
use crate::watchcache::{CachedObject, EventType, POD_NODE_INDEX, WatchItem, WatchRequest};

/// The pods of one node as the agent should see them, keyed `namespace/name`.
#[derive(Debug, Default)]
struct NodeView {
    /// Each pod with status and resourceVersion stripped, so only what matters compares.
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
        let mut manifest = pod.clone();
        manifest.status = None;
        manifest.metadata.resource_version = None;
        let key = view_key(pod);
        if self.pods.get(&key) == Some(&manifest) {
            return false;
        }
        self.pods.insert(key, manifest);
        true
    }

    /// Removes a pod; true when it was there.
    fn remove(&mut self, pod: &Pod) -> bool {
        self.pods.remove(&view_key(pod)).is_some()
    }

    /// The list at `revision`.
    fn list(&self, node: &str, revision: i64) -> ContainerManifestList {
        ContainerManifestList::new(
            node,
            revision.to_string(),
            self.pods.values().cloned().collect(),
        )
    }
}

/// The view's key of a pod: `namespace/name`.
fn view_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace_or_empty(),
        pod.metadata.name_or_empty()
    )
}

/// One watch event as a JSON line.
fn line(event: &WatchEvent<ContainerManifestList>) -> Bytes {
    let mut bytes = serde_json::to_vec(event).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// `GET /api/v1/nodes/{node}/manifests[?watch=true&resourceVersion=N]`.
pub async fn serve(
    State(state): State<AppState>,
    Path(node): Path<String>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    state.pods.cache.ready().await?;
    let (objects, revision) = state.pods.cache.by_index(POD_NODE_INDEX, &node);
    let view = NodeView::from_cached(&objects);
    if !query.flag("watch") {
        return Ok(json_response(
            StatusCode::OK,
            &view.list(&node, revision),
            &[],
        ));
    }
    let from = query.revision("resourceVersion")?.filter(|rv| *rv > 0);
    let timeout = query.number("timeoutSeconds")?.map(Duration::from_secs);
    let filter = ObjectFilter::parse::<Pod>(None, None, Some(&format!("spec.nodeName={node}")))?;
    let pods = state
        .pods
        .cache
        .watch_or_error(WatchRequest {
            resource_version: Some(revision),
            filter,
            bookmarks: false,
            timeout,
        })
        .await;
    let initial = match from {
        Some(rv) if rv >= revision => None,
        _ => Some(line(&WatchEvent::Added(view.list(&node, revision)))),
    };
    tracing::debug!(%node, ?from, revision, resend = initial.is_some(), "manifest watch");
    let updates = futures::stream::unfold(
        (pods, view, node),
        |(mut pods, mut view, node)| async move {
            loop {
                let item = pods.next().await?;
                match item {
                    WatchItem::Event { kind, object } => {
                        let changed = match kind {
                            EventType::Added | EventType::Modified => view.put(&object.object),
                            EventType::Deleted => view.remove(&object.object),
                        };
                        if changed {
                            let event = WatchEvent::Modified(view.list(&node, object.revision()));
                            return Some((line(&event), (pods, view, node)));
                        }
                    }
                    WatchItem::Bookmark(_) => {}
                    WatchItem::Error(status) => {
                        let event: WatchEvent<ContainerManifestList> = WatchEvent::Error(status);
                        return Some((line(&event), (pods, view, node)));
                    }
                }
            }
        },
    );
    let lines = futures::stream::iter(initial).chain(updates);
    Ok(match upgrade.ok() {
        Some(upgrade) => {
            let shutdown = state.shutdown.clone();
            upgrade.on_upgrade(move |socket| pump(socket, lines, shutdown))
        }
        None => chunked(lines),
    })
}
