//! The pod binding subresource and the replication controller scale subresource.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use skiff_api::Status;
use skiff_api::types::{Binding, ReplicationController};

use super::handlers::Params;
use super::patch::read_patch;
use super::request::{decode_object, decode_write};
use super::response::{ApiResult, json_response};
use super::state::AppState;
use crate::registry::{Scale, UpdateTarget, apply_scale, bind_pod, scale_of};

/// `POST pods/{name}/binding`: bind the pod to a node; 201 with a Success Status.
pub async fn bind(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (namespace, name) = (
        params.get("namespace").cloned().unwrap_or_default(),
        params.get("name").cloned().unwrap_or_default(),
    );
    bind_from_body(&state, &namespace, Some(&name), raw, &headers, body).await
}

/// `POST namespaces/{ns}/bindings`: the older form, naming the pod in the body.
pub async fn bind_collection(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let namespace = params.get("namespace").cloned().unwrap_or_default();
    bind_from_body(&state, &namespace, None, raw, &headers, body).await
}

/// Decodes a Binding and binds the pod `name` (or the one the binding names).
async fn bind_from_body(
    state: &AppState,
    namespace: &str,
    name: Option<&str>,
    raw: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let decoded = decode_write::<Binding>(
        raw.as_deref(),
        headers,
        body,
        state.config.max_body_bytes,
        "v1",
        "Binding",
    )
    .await?;
    let binding = decoded.object;
    let pod = match name {
        Some(name) => name.to_string(),
        None => binding.metadata.name_or_empty().to_string(),
    };
    if pod.is_empty() {
        return Err(Status::bad_request("the binding names no pod (metadata.name)").into());
    }
    if let Some(ns) = binding.metadata.namespace.as_deref()
        && !ns.is_empty()
        && ns != namespace
    {
        return Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )
        .into());
    }
    bind_pod(&state.pods, namespace, &pod, &binding).await?;
    let mut success = Status::success(None);
    success.code = 201;
    Ok(json_response(
        StatusCode::CREATED,
        &success,
        &decoded.warnings,
    ))
}

/// `GET replicationcontrollers/{name}/scale`.
pub async fn get_scale(State(state): State<AppState>, Path(params): Params) -> ApiResult {
    let rc = state
        .replication_controllers
        .get(params.get("namespace").map(String::as_str), name(&params))
        .await?;
    Ok(json_response(StatusCode::OK, &scale_of(&rc), &[]))
}

/// `PUT replicationcontrollers/{name}/scale`: set `spec.replicas` (a resourceVersion in
/// the Scale is a precondition).
pub async fn put_scale(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let decoded = decode_write::<Scale>(
        raw.as_deref(),
        &headers,
        body,
        state.config.max_body_bytes,
        "autoscaling/v1",
        "Scale",
    )
    .await?;
    let scale = decoded.object;
    let name = name(&params);
    let updated = state
        .replication_controllers
        .guaranteed_update(
            params.get("namespace").map(String::as_str),
            name,
            UpdateTarget::Main,
            |rc| scaled(rc, &scale, name),
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &scale_of(&updated),
        &decoded.warnings,
    ))
}

/// `PATCH replicationcontrollers/{name}/scale`: the patch applies to the Scale view.
pub async fn patch_scale(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (validation, patch) =
        read_patch(raw.as_deref(), &headers, body, state.config.max_body_bytes).await?;
    let name = name(&params);
    let updated = state
        .replication_controllers
        .guaranteed_update(
            params.get("namespace").map(String::as_str),
            name,
            UpdateTarget::Main,
            |rc| {
                let current = serde_json::to_value(scale_of(rc))
                    .map_err(|e| Status::internal(format!("could not encode a Scale: {e}")))?;
                let scale = decode_object::<Scale>(
                    patch.apply(&current)?,
                    "autoscaling/v1",
                    "Scale",
                    validation,
                )?
                .object;
                scaled(rc, &scale, name)
            },
        )
        .await?;
    Ok(json_response(StatusCode::OK, &scale_of(&updated), &[]))
}

/// `rc` scaled as `scale` asks, after its resourceVersion precondition.
fn scaled(
    rc: &ReplicationController,
    scale: &Scale,
    name: &str,
) -> Result<Option<ReplicationController>, Status> {
    if let Some(rv) = scale.metadata.resource_version.as_deref()
        && rc.metadata.resource_version.as_deref() != Some(rv)
    {
        return Err(Status::conflict(
            "replicationcontrollers",
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(Some(apply_scale(rc, scale)))
}

/// The name path parameter.
fn name(params: &std::collections::HashMap<String, String>) -> &str {
    params.get("name").map_or("", String::as_str)
}
