//! Watches on the wire: chunked JSON lines (kubectl, client-go) or a websocket (the skiff
//! client), one event per line or message, flushed as it happens.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::json;
use skiff_api::types::ListMeta;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::request::Query;
use super::response::ApiResult;
use super::state::{AppState, Served};
use super::table::table;
use crate::registry::ObjectFilter;
use crate::watchcache::{WatchItem, WatchRequest};

/// Serves a watch of `T` as a websocket when `upgrade` is set, else as chunked JSON lines.
pub async fn serve<T: Served>(
    state: &AppState,
    filter: ObjectFilter,
    query: &Query,
    as_table: bool,
    upgrade: Option<WebSocketUpgrade>,
) -> ApiResult {
    let request = WatchRequest {
        resource_version: query.revision("resourceVersion")?,
        filter,
        bookmarks: query.flag("allowWatchBookmarks"),
        timeout: query.number("timeoutSeconds")?.map(Duration::from_secs),
    };
    debug!(
        kind = T::KIND,
        resource_version = ?request.resource_version,
        websocket = upgrade.is_some(),
        "watch"
    );
    let items = T::registry(state).watch(request).await;
    // Counted as an open watch for as long as the stream lives.
    let open = state.config.metrics.watcher(T::PLURAL);
    let lines = items.map(move |item| {
        let _open = &open;
        encode(&item, as_table)
    });
    Ok(match upgrade {
        Some(upgrade) => {
            let shutdown = state.shutdown.clone();
            upgrade.on_upgrade(move |socket| pump(socket, lines, shutdown))
        }
        None => chunked(lines),
    })
}

/// One event as a JSON line; with `as_table`, the object is a one-row Table.
fn encode<T: Served>(item: &WatchItem<T>, as_table: bool) -> Bytes {
    match item {
        WatchItem::Event { object, .. } if as_table => {
            let meta = ListMeta {
                resource_version: object.object.metadata().resource_version.clone(),
                ..ListMeta::default()
            };
            let event = json!({
                "type": item.type_name(),
                "object": table([&object.object], &meta),
            });
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        }
        _ => item.to_json_line(),
    }
}

/// A streaming 200 response, one line per event.
pub(super) fn chunked(lines: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        Body::from_stream(lines.map(Ok::<_, Infallible>)),
    )
        .into_response()
}

/// Sends every line as a text message until the watch ends, the client goes away or the
/// server shuts down; then closes the socket.
pub(super) async fn pump(
    mut socket: WebSocket,
    lines: impl Stream<Item = Bytes> + Send + 'static,
    shutdown: CancellationToken,
) {
    let mut lines = std::pin::pin!(lines);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            line = lines.next() => {
                let Some(line) = line else { break };
                let text = line.strip_suffix(b"\n").map_or(line.clone(), |l| line.slice(0..l.len()));
                let Ok(text) = Utf8Bytes::try_from(text) else { break };
                if socket.send(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
