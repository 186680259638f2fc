//! `GET /api/v1/nodes/{node}/manifests[?watch=true&resourceVersion=N]`: HTTP over the
//! per-node view [`NodeManifests`](crate::registry::NodeManifests), which owns the rules.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use futures::StreamExt;
use skiff_api::types::{ContainerManifestList, WatchEvent};

use super::request::Query;
use super::response::{ApiResult, json_response};
use super::state::AppState;
use super::watch::{chunked, pump};

/// One watch event as a JSON line.
fn line(event: &WatchEvent<ContainerManifestList>) -> Bytes {
    let mut bytes = serde_json::to_vec(event).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The list of `node`, or with `watch=true` its watch (websocket or chunked lines).
pub async fn serve(
    State(state): State<AppState>,
    Path(node): Path<String>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    if !query.flag("watch") {
        let list = state.node_manifests.list(&node).await?;
        return Ok(json_response(StatusCode::OK, &list, &[]));
    }
    let from = query.revision("resourceVersion")?;
    let timeout = query.number("timeoutSeconds")?.map(Duration::from_secs);
    let events = state.node_manifests.watch(&node, from, timeout).await?;
    // Counted as an open watch for as long as the stream lives.
    let open = state.config.metrics.watcher("nodes/manifests");
    let lines = events.map(move |event| {
        let _open = &open;
        line(&event)
    });
    Ok(match upgrade.ok() {
        Some(upgrade) => {
            let shutdown = state.shutdown.clone();
            upgrade.on_upgrade(move |socket| pump(socket, lines, shutdown))
        }
        None => chunked(lines),
    })
}
