//! Discovery (`/api`, `/api/v1`, `/apis`), `/version` and the health endpoints, so kubectl
//! and client libraries find what is served.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use skiff_api::types::{Endpoints, Node, Pod, ReplicationController, Resource, Service};

use super::response::json_response;
use super::state::AppState;

/// The Kubernetes version whose core/v1 API skiff speaks (kubectl checks version skew).
pub const KUBERNETES_MINOR: &str = "32";

/// Verbs of a kind's main resource.
const VERBS: [&str; 7] = [
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// Verbs of a `/status` subresource.
const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// `GET /api`: the legacy group's versions.
pub async fn api_versions(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        }),
        &[],
    )
}

/// `GET /apis`: no named groups.
pub async fn api_groups() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        &[],
    )
}

/// The discovery entry of kind `T`'s main resource.
fn entry<T: Resource>(categories: &[&str]) -> Value {
    let mut entry = json!({
        "name": T::PLURAL,
        "singularName": T::SINGULAR,
        "namespaced": T::NAMESPACED,
        "kind": T::KIND,
        "verbs": VERBS,
    });
    if !T::SHORT_NAMES.is_empty() {
        entry["shortNames"] = json!(T::SHORT_NAMES);
    }
    if !categories.is_empty() {
        entry["categories"] = json!(categories);
    }
    entry
}

/// The discovery entry of subresource `sub` of kind `T`.
fn subresource<T: Resource>(sub: &str, kind: &str, verbs: &[&str]) -> Value {
    json!({
        "name": format!("{}/{sub}", T::PLURAL),
        "singularName": "",
        "namespaced": T::NAMESPACED,
        "kind": kind,
        "verbs": verbs,
    })
}

/// `GET /api/v1`: every resource and subresource served.
pub async fn core_v1_resources() -> Response {
    let mut scale = subresource::<ReplicationController>("scale", "Scale", &STATUS_VERBS);
    scale["group"] = json!("autoscaling");
    scale["version"] = json!("v1");
    let resources = vec![
        json!({
            "name": "bindings",
            "singularName": "binding",
            "namespaced": true,
            "kind": "Binding",
            "verbs": ["create"],
        }),
        entry::<Endpoints>(&[]),
        entry::<Node>(&[]),
        subresource::<Node>("status", "Node", &STATUS_VERBS),
        entry::<Pod>(&["all"]),
        subresource::<Pod>("binding", "Binding", &["create"]),
        subresource::<Pod>("log", "Pod", &["get"]),
        subresource::<Pod>("status", "Pod", &STATUS_VERBS),
        entry::<ReplicationController>(&["all"]),
        scale,
        subresource::<ReplicationController>("status", "ReplicationController", &STATUS_VERBS),
        entry::<Service>(&["all"]),
        subresource::<Service>("status", "Service", &STATUS_VERBS),
    ];
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "v1",
            "resources": resources,
        }),
        &[],
    )
}

/// `GET /version`.
pub async fn version() -> Response {
    let skiff = env!("CARGO_PKG_VERSION");
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1",
            "minor": KUBERNETES_MINOR,
            "gitVersion": format!("v1.{KUBERNETES_MINOR}.0+skiff-{skiff}"),
            "gitCommit": "",
            "gitTreeState": "",
            "buildDate": "",
            "goVersion": "",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, skiff_api::platform::host_go_arch()),
        }),
        &[],
    )
}

/// `GET /readyz`: `ok` once every watch cache has loaded, 503 before.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        healthy().await
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "watch caches are still loading",
        )
            .into_response()
    }
}

/// `GET /healthz`, `/livez`: `ok` once the server answers.
pub async fn healthy() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok",
    )
        .into_response()
}
