//! A small OpenAPI v3 document: enough for kubectl to see that every kind accepts
//! `fieldValidation`, so `create -f` and `apply` validate server-side and never need
//! `--validate=false`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use skiff_api::types::{Endpoints, Node, Pod, ReplicationController, Resource, Service};

use super::response::json_response;

/// Changes whenever the document below changes, so clients' caches refresh.
const DOCUMENT_HASH: &str = concat!("skiff-", env!("CARGO_PKG_VERSION"), "-1");

/// `GET /openapi/v3`: where each group version's document is.
pub async fn root() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "paths": {
                "api/v1": {"serverRelativeURL": format!("/openapi/v3/api/v1?hash={DOCUMENT_HASH}")}
            }
        }),
        &[],
    )
}

/// `GET /openapi/v3/api/v1`: the core/v1 document.
pub async fn core_v1() -> Response {
    let mut paths = Map::new();
    add_paths::<Pod>(&mut paths);
    add_paths::<Node>(&mut paths);
    add_paths::<ReplicationController>(&mut paths);
    add_paths::<Service>(&mut paths);
    add_paths::<Endpoints>(&mut paths);
    let schemas: Map<String, Value> = [
        schema::<Pod>(),
        schema::<Node>(),
        schema::<ReplicationController>(),
        schema::<Service>(),
        schema::<Endpoints>(),
    ]
    .into_iter()
    .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "openapi": "3.0.0",
            "info": {"title": "skiff", "version": format!("v1.{}", super::discovery::KUBERNETES_MINOR)},
            "paths": paths,
            "components": {"schemas": schemas},
        }),
        &[],
    )
}

/// The schema name of kind `T`.
fn schema_name<T: Resource>() -> String {
    format!("io.k8s.api.core.v1.{}", T::KIND)
}

/// A permissive schema for kind `T`, tagged with its group-version-kind.
fn schema<T: Resource>() -> (String, Value) {
    (
        schema_name::<T>(),
        json!({
            "type": "object",
            "description": format!("{} (served by skiff; validated by the server)", T::KIND),
            "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": T::KIND}],
        }),
    )
}

/// An operation on kind `T` with the given action, parameters and request body types.
fn operation<T: Resource>(action: &str, with_body: &[&str]) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name::<T>())});
    let mut op = json!({
        "operationId": format!("{action}{}", T::KIND),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": T::KIND},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
    });
    if !with_body.is_empty() {
        let content: Map<String, Value> = with_body
            .iter()
            .map(|media| ((*media).to_string(), json!({"schema": reference})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
        op["parameters"] = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true},
             "description": "Ignore, Warn (default) or Strict: what to do about unknown fields."},
        ]);
    }
    op
}

/// The path items of kind `T`: its collection and its objects.
fn add_paths<T: Resource>(paths: &mut Map<String, Value>) {
    let base = if T::NAMESPACED {
        format!("/api/v1/namespaces/{{namespace}}/{}", T::PLURAL)
    } else {
        format!("/api/v1/{}", T::PLURAL)
    };
    let objects = ["application/json", "application/yaml"];
    let patches = [
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    paths.insert(
        base.clone(),
        json!({
            "get": operation::<T>("list", &[]),
            "post": operation::<T>("post", &objects),
        }),
    );
    paths.insert(
        format!("{base}/{{name}}"),
        json!({
            "get": operation::<T>("get", &[]),
            "put": operation::<T>("put", &objects),
            "patch": operation::<T>("patch", &patches),
            "delete": operation::<T>("delete", &[]),
        }),
    );
}
