//! The HTTP API: Kubernetes core/v1 paths for pods, nodes, replication controllers,
//! services and endpoints over the registries (each serves its own reads and watches from
//! its watch cache; handlers only adapt HTTP), with discovery and the OpenAPI document
//! kubectl needs.
//!
//! [`run`] serves a [`router`] on a listener until its shutdown token is cancelled; open
//! watches end then too (they select on the same token). Every error answer is a `Status`
//! object with the right code: handlers return them, and a last layer turns the framework's
//! own plain-text rejections (unknown path 404, wrong method 405, …) into Status objects too.
//!
//! Content types: request bodies are JSON or YAML (`application/yaml`), at most
//! [`state::DEFAULT_MAX_BODY_BYTES`] (413 beyond). PATCH takes merge patches, strategic merge
//! patches and JSON patches (see [`patch`]); server-side apply is answered with 415.
//! Responses are JSON; `Accept: application/json;as=Table` gets a `meta.k8s.io/v1` Table.

// `Status` is the one error type (DESIGN §3); see the same note in `registry`.
#![allow(clippy::result_large_err)]

mod discovery;
mod fields;
mod handlers;
mod logs;
mod manifests;
mod openapi;
pub mod patch;
mod request;
mod response;
mod state;
mod subresources;
mod table;
mod watch;

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use skiff_api::Status;
use skiff_api::types::{Endpoints, Node, Pod, ReplicationController, Service};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use tracing::info;

pub use handlers::AfterDelete;
pub use response::{ApiError, ApiResult, json_response, status_response};
pub use state::{AppState, DEFAULT_MAX_BODY_BYTES, Inner, Served, ServerConfig};
pub use table::TableRow;

use self::handlers::{
    create, delete, get as get_one, list, patch as patch_one, patch_status, replace, replace_status,
};
use self::response::reason_for;

/// Why the API server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    /// Accepting or serving connections failed.
    #[error("the API server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Serves the API on `listener` until `shutdown` is cancelled, then waits for open requests
/// (watches end on the same token) and returns.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), ApiServerError> {
    if let Ok(address) = listener.local_addr() {
        info!(%address, "serving the Kubernetes API");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(ApiServerError::Serve)
}

/// Every route of the API, over `state`.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/api", get(discovery::api_versions))
        .route("/api/", get(discovery::api_versions))
        .route("/api/v1", get(discovery::core_v1_resources))
        .route("/api/v1/", get(discovery::core_v1_resources))
        .route("/apis", get(discovery::api_groups))
        .route("/apis/", get(discovery::api_groups))
        .route("/version", get(discovery::version))
        .route("/healthz", get(discovery::healthy))
        .route("/readyz", get(discovery::ready))
        .route("/livez", get(discovery::healthy))
        .route("/openapi/v3", get(openapi::root))
        .route("/openapi/v3/api/v1", get(openapi::core_v1))
        .route("/metrics", get(metrics));
    let router = kind_routes::<Pod>(router);
    let router = kind_routes::<Node>(router);
    let router = kind_routes::<ReplicationController>(router);
    let router = kind_routes::<Service>(router);
    let router = kind_routes::<Endpoints>(router);
    router
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/binding",
            post(subresources::bind),
        )
        .route("/api/v1/nodes/{name}/manifests", get(manifests::serve))
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            get(logs::pod_log),
        )
        .route(
            "/api/v1/namespaces/{namespace}/bindings",
            post(subresources::bind_collection),
        )
        .route(
            "/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale",
            get(subresources::get_scale)
                .put(subresources::put_scale)
                .patch(subresources::patch_scale),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn(errors_as_status))
        .layer(middleware::from_fn_with_state(
            state.config.metrics.clone(),
            crate::metrics::http::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `/metrics`: the controlplane's Prometheus metrics in the text format.
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.config.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => status_response(&Status::internal(format!("encoding metrics: {err}"))),
    }
}

/// The collection, object and `/status` routes of kind `T`.
fn kind_routes<T: Served + AfterDelete>(router: Router<AppState>) -> Router<AppState> {
    let collection = if T::NAMESPACED {
        format!("/api/v1/namespaces/{{namespace}}/{}", T::PLURAL)
    } else {
        format!("/api/v1/{}", T::PLURAL)
    };
    let object = format!("{collection}/{{name}}");
    let mut router = router
        .route(&collection, get(list::<T>).post(create::<T>))
        .route(
            &object,
            get(get_one::<T>)
                .put(replace::<T>)
                .patch(patch_one::<T>)
                .delete(delete::<T>),
        );
    if T::NAMESPACED {
        router = router.route(&format!("/api/v1/{}", T::PLURAL), get(list::<T>));
    }
    if T::HAS_STATUS {
        router = router.route(
            &format!("{object}/status"),
            get(get_one::<T>)
                .put(replace_status::<T>)
                .patch(patch_status::<T>),
        );
    }
    router
}

/// 404 for every path that is not served.
async fn not_found(request: Request) -> Response {
    status_response(&Status::failure(
        404,
        skiff_api::status::reason::NOT_FOUND,
        format!(
            "the server could not find the requested resource ({})",
            request.uri().path()
        ),
    ))
}

/// 405 for a served path with a method it does not take.
async fn method_not_allowed(request: Request) -> Response {
    status_response(&Status::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({} {})",
        request.method(),
        request.uri().path()
    )))
}

/// Turns any error answer that is not already JSON (a framework rejection) into a Status.
async fn errors_as_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let code = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if code.as_u16() < 400 || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let message = if text.is_empty() {
        code.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let status = Status::failure(code.as_u16(), reason_for(code), message);
    let mut response = status_response(&status);
    *response.status_mut() = code;
    response
}

#[cfg(test)]
mod tests;
