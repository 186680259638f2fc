//! The request handlers of the agent API.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use skiff_api::Status;
use skiff_api::types::{List, ListMeta, Pod};
use tracing::warn;

use super::{METRICS_CONTENT_TYPE, ServerState};

/// `GET /healthz`: the agent is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /pods`: a core/v1 `PodList` of every pod the agent runs, with status.
pub async fn list_pods(State(state): State<ServerState>) -> Json<List<Pod>> {
    let items = state.pods.pods().into_iter().map(with_type_meta).collect();
    Json(List {
        api_version: "v1".to_string(),
        kind: "PodList".to_string(),
        metadata: ListMeta::default(),
        items,
    })
}

/// `GET /pods/{namespace}/{name}`: one pod with status, or a 404 `Status`.
pub async fn get_pod(
    State(state): State<ServerState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match state.pods.pod(&namespace, &name) {
        Some(pod) => Json(with_type_meta(pod)).into_response(),
        None => status_response(Status::not_found("pods", &name)),
    }
}

/// `GET /metrics`: the agent's metrics in Prometheus text format.
pub async fn metrics(State(state): State<ServerState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            warn!(error = %err, "could not encode metrics");
            status_response(Status::internal(format!("could not encode metrics: {err}")))
        }
    }
}

/// Anything else: a 404 `Status` naming the path.
pub async fn not_found(uri: Uri) -> Response {
    status_response(Status::failure(
        404,
        skiff_api::status::reason::NOT_FOUND,
        format!("the agent API has no {}", uri.path()),
    ))
}

/// A `Status` as JSON with its own code as the HTTP status.
pub(super) fn status_response(status: Status) -> Response {
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(status)).into_response()
}

/// Fills `apiVersion` and `kind`, which a pod from a manifest may lack.
fn with_type_meta(mut pod: Pod) -> Pod {
    if pod.api_version.is_empty() {
        pod.api_version = "v1".to_string();
    }
    if pod.kind.is_empty() {
        pod.kind = "Pod".to_string();
    }
    pod
}
