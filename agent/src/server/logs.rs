//! Container logs over the agent API, at the kubelet's path:
//! `GET /containerLogs/{namespace}/{pod}/{container}?tailLines=N[&follow=true][&previous=true]`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use skiff_api::Status;

use super::ServerState;
use super::handlers::status_response;
use crate::runtime::{ContainerRuntime, LogStream, RuntimeError};

/// Reads a container's output; object-safe so the server does not depend on the runtime type.
pub trait ContainerLogSource: Send + Sync + 'static {
    /// The container's stdout and stderr, the last `tail` lines when given.
    fn logs(
        &self,
        container_id: String,
        tail: Option<usize>,
    ) -> BoxFuture<'_, Result<String, RuntimeError>>;

    /// The container's output from the last `tail` lines on, as it is written.
    fn follow(
        &self,
        container_id: String,
        tail: Option<usize>,
    ) -> BoxFuture<'_, Result<LogStream, RuntimeError>>;
}

/// Serves logs from a [`ContainerRuntime`].
pub struct RuntimeLogs<R>(pub Arc<R>);

impl<R: ContainerRuntime> ContainerLogSource for RuntimeLogs<R> {
    fn logs(
        &self,
        container_id: String,
        tail: Option<usize>,
    ) -> BoxFuture<'_, Result<String, RuntimeError>> {
        Box::pin(async move { self.0.container_logs(&container_id, tail).await })
    }

    fn follow(
        &self,
        container_id: String,
        tail: Option<usize>,
    ) -> BoxFuture<'_, Result<LogStream, RuntimeError>> {
        Box::pin(async move { self.0.follow_logs(&container_id, tail).await })
    }
}

/// Query parameters of a log request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    /// Only the last N lines.
    tail_lines: Option<usize>,
    /// Keep streaming what the container writes.
    #[serde(default)]
    follow: bool,
    /// The previous (terminated) instance of the container instead of the current one.
    #[serde(default)]
    previous: bool,
}

/// `GET /containerLogs/{namespace}/{pod}/{container}`: the current container's output as
/// text, or a 404 `Status` naming what is missing.
pub async fn container_logs(
    State(state): State<ServerState>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    let Some(source) = &state.logs else {
        return status_response(Status::failure(
            404,
            skiff_api::status::reason::NOT_FOUND,
            "this agent does not serve container logs".to_string(),
        ));
    };
    let Some(pod) = state.pods.pod(&namespace, &pod_name) else {
        return status_response(Status::not_found("pods", &pod_name));
    };
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.iter().find(|c| c.name == container));
    let container_id = if query.previous {
        status
            .and_then(|c| c.last_state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.container_id.as_deref())
    } else {
        status.and_then(|c| c.container_id.as_deref())
    }
    .map(|id| id.strip_prefix("docker://").unwrap_or(id).to_string());
    let Some(container_id) = container_id else {
        let message = if query.previous {
            format!("previous terminated container \"{container}\" in pod \"{pod_name}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod_name}\" has not been created")
        };
        return status_response(Status::bad_request(message));
    };
    if query.follow {
        return match source.follow(container_id, query.tail_lines).await {
            Ok(stream) => {
                let body =
                    Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)));
                ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
            }
            Err(e) => log_error(e, &namespace, &pod_name, &container),
        };
    }
    match source.logs(container_id, query.tail_lines).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => log_error(e, &namespace, &pod_name, &container),
    }
}

/// A runtime error reading logs as a Status response.
fn log_error(e: RuntimeError, namespace: &str, pod_name: &str, container: &str) -> Response {
    if e.is_not_found() {
        return status_response(Status::not_found("containers", container));
    }
    status_response(Status::internal(format!(
        "could not read the logs of container {container} of pod {namespace}/{pod_name}: {e}"
    )))
}
