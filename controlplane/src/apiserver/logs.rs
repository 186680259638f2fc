//! `GET /api/v1/namespaces/{namespace}/pods/{name}/log`: a container's output, read from the
//! agent of the pod's node (its API endpoint is the Node's `skiff.io/agent-endpoint`
//! annotation), as `kubectl logs` expects; with `follow=true` the agent's stream is passed on
//! as it arrives (`kubectl logs -f`), and `previous=true` reads the container's previous
//! instance, which the agent keeps until the next restart (`kubectl logs --previous`).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use skiff_api::Status;
use skiff_api::types::AGENT_ENDPOINT_ANNOTATION;

use super::request::Query;
use super::response::ApiResult;
use super::state::AppState;

/// How long the agent may take to answer.
pub(super) const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent could not be reached or answered nonsense.
fn unavailable(message: String) -> Status {
    Status::failure(503, "ServiceUnavailable", message)
}

/// Serves a container's log by asking the agent of the pod's node.
pub async fn pod_log(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let follow = query.flag("follow");
    let pod = state.pods.get(Some(&namespace), &name).await?;
    let names: Vec<&str> = pod
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let container = match (query.get("container"), names.as_slice()) {
        (Some(c), _) => c.to_string(),
        (None, [only]) => (*only).to_string(),
        (None, _) => {
            return Err(Status::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            ))
            .into());
        }
    };
    if !names.contains(&container.as_str()) {
        return Err(Status::bad_request(format!(
            "container {container} is not valid for pod {name}"
        ))
        .into());
    }
    let Some(node_name) = pod.spec.node_name.as_deref().filter(|n| !n.is_empty()) else {
        return Err(
            Status::bad_request(format!("pod {name} does not have a host assigned")).into(),
        );
    };
    let node = state.nodes.get(None, node_name).await?;
    let Some(endpoint) = node.metadata.annotations.get(AGENT_ENDPOINT_ANNOTATION) else {
        return Err(unavailable(format!(
            "node {node_name} does not publish its agent's address (annotation {AGENT_ENDPOINT_ANNOTATION})"
        ))
        .into());
    };
    let mut url = format!(
        "{}/containerLogs/{namespace}/{name}/{container}",
        endpoint.trim_end_matches('/')
    );
    let mut params = Vec::new();
    if let Some(tail) = query.number("tailLines")? {
        params.push(format!("tailLines={tail}"));
    }
    if follow {
        params.push("follow=true".to_string());
    }
    if query.flag("previous") {
        params.push("previous=true".to_string());
    }
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    // A followed log streams for as long as the client reads: only connecting is bounded.
    let mut request = state.agent_client.get(&url);
    if !follow {
        request = request.timeout(AGENT_TIMEOUT);
    }
    let response = request.send().await.map_err(|e| {
        unavailable(format!(
            "could not reach the agent of node {node_name} at {endpoint}: {e}"
        ))
    })?;
    let code = response.status();
    if follow && code.is_success() {
        let body = Body::from_stream(response.bytes_stream());
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response());
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| unavailable(format!("the agent of node {node_name} broke off: {e}")))?;
    if !code.is_success() {
        // The agent answers errors as Status objects; pass them on with their code.
        let status = serde_json::from_slice::<Status>(&body)
            .ok()
            .filter(|s| s.kind == "Status")
            .unwrap_or_else(|| {
                unavailable(format!("the agent of node {node_name} answered {code}"))
            });
        return Err(status.into());
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
}
