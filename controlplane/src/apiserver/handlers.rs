//! The generic handlers every kind is served by: list (and watch), get, create, replace,
//! patch and delete, plus the `/status` subresource.

use std::collections::HashMap;
use std::future::Future;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use skiff_api::Status;
use skiff_api::types::{Pod, ReplicationController};

use super::patch::read_patch;
use super::request::{Query, decode_object, decode_write, parse_json, read_body};
use super::response::{ApiResult, json_response};
use super::state::{AppState, Served};
use super::table::{table, wants_table};
use super::watch;
use crate::registry::{
    ContinueToken, DeleteOptions, ListOptions, ObjectFilter, UpdateTarget, delete_owned_pods,
};

/// Path parameters by name: `namespace` and `name` where the route has them.
pub type Params = Path<HashMap<String, String>>;

/// What happens after a delete, per kind (a replication controller's pods go with it).
pub trait AfterDelete: Sized {
    /// Runs after `deleted` left storage.
    fn after_delete(
        state: &AppState,
        deleted: &Self,
        options: &DeleteOptions,
    ) -> impl Future<Output = Result<(), Status>> + Send;
}

/// The namespace path parameter.
fn namespace(params: &HashMap<String, String>) -> Option<&str> {
    params.get("namespace").map(String::as_str)
}

/// The name path parameter.
fn name(params: &HashMap<String, String>) -> &str {
    params.get("name").map_or("", String::as_str)
}

/// `GET` on a collection: a list, or a watch with `watch=true`.
pub async fn list<T: Served>(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let filter = ObjectFilter::parse::<T>(
        namespace(&params),
        query.get("labelSelector"),
        query.get("fieldSelector"),
    )?;
    if query.flag("watch") {
        return watch::serve::<T>(&state, filter, &query, wants_table(&headers), upgrade.ok())
            .await;
    }
    let continue_token = query
        .get("continue")
        .map(ContinueToken::decode)
        .transpose()?;
    let limit = query
        .number("limit")?
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let list = T::registry(&state)
        .list(&ListOptions {
            filter,
            limit,
            continue_token,
        })
        .await?;
    if wants_table(&headers) {
        return Ok(json_response(
            StatusCode::OK,
            &table(&list.items, &list.metadata),
            &[],
        ));
    }
    Ok(json_response(StatusCode::OK, &list, &[]))
}

/// `GET` on an object (or its `/status`).
pub async fn get<T: Served>(
    State(state): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
) -> ApiResult {
    let object = T::registry(&state)
        .get(namespace(&params), name(&params))
        .await?;
    if wants_table(&headers) {
        let meta = skiff_api::types::ListMeta {
            resource_version: object.metadata().resource_version.clone(),
            ..Default::default()
        };
        return Ok(json_response(StatusCode::OK, &table([&object], &meta), &[]));
    }
    Ok(json_response(StatusCode::OK, &object, &[]))
}

/// `POST` on a collection: create.
pub async fn create<T: Served>(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let decoded = decode_write::<T>(
        raw.as_deref(),
        &headers,
        body,
        state.config.max_body_bytes,
        "v1",
        T::KIND,
    )
    .await?;
    let namespace = namespace(&params);
    check_namespace::<T>(decoded.object.metadata().namespace.as_deref(), namespace)?;
    let created = T::registry(&state)
        .create(namespace, decoded.object)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &created,
        &decoded.warnings,
    ))
}

/// 400 when the body names another namespace than the path.
fn check_namespace<T: Served>(body: Option<&str>, path: Option<&str>) -> Result<(), Status> {
    match (body, path) {
        (Some(body), Some(path)) if T::NAMESPACED && !body.is_empty() && body != path => {
            Err(Status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ))
        }
        _ => Ok(()),
    }
}

/// `PUT` on an object: replace everything but status.
pub async fn replace<T: Served>(
    state: State<AppState>,
    params: Params,
    raw: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    put::<T>(state, params, raw, headers, body, UpdateTarget::Main).await
}

/// `PUT` on `/status`: replace only status.
pub async fn replace_status<T: Served>(
    state: State<AppState>,
    params: Params,
    raw: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    put::<T>(state, params, raw, headers, body, UpdateTarget::Status).await
}

/// A PUT of `target`.
async fn put<T: Served>(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
    target: UpdateTarget,
) -> ApiResult {
    let decoded = decode_write::<T>(
        raw.as_deref(),
        &headers,
        body,
        state.config.max_body_bytes,
        "v1",
        T::KIND,
    )
    .await?;
    let updated = T::registry(&state)
        .update(namespace(&params), name(&params), target, decoded.object)
        .await?;
    Ok(json_response(StatusCode::OK, &updated, &decoded.warnings))
}

/// `PATCH` on an object.
pub async fn patch<T: Served>(
    state: State<AppState>,
    params: Params,
    raw: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    patch_target::<T>(state, params, raw, headers, body, UpdateTarget::Main).await
}

/// `PATCH` on `/status`.
pub async fn patch_status<T: Served>(
    state: State<AppState>,
    params: Params,
    raw: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    patch_target::<T>(state, params, raw, headers, body, UpdateTarget::Status).await
}

/// A PATCH of `target`: applied to the stored object inside one guaranteed update.
async fn patch_target<T: Served>(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
    target: UpdateTarget,
) -> ApiResult {
    let (validation, patch) =
        read_patch(raw.as_deref(), &headers, body, state.config.max_body_bytes).await?;
    let name = name(&params);
    let mut warnings = Vec::new();
    let updated = T::registry(&state)
        .guaranteed_update(namespace(&params), name, target, |current| {
            let original = serde_json::to_value(current)
                .map_err(|e| Status::internal(format!("could not encode {name}: {e}")))?;
            let decoded = decode_object::<T>(patch.apply(&original)?, "v1", T::KIND, validation)?;
            warnings = decoded.warnings;
            let patched = decoded.object;
            if patched.metadata().name_or_empty() != name {
                return Err(Status::bad_request(format!(
                    "the patch may not change metadata.name ({name})"
                )));
            }
            if patched.metadata().resource_version.is_some()
                && patched.metadata().resource_version != current.metadata().resource_version
            {
                return Err(Status::conflict(
                    T::PLURAL,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            Ok(Some(patched))
        })
        .await?;
    Ok(json_response(StatusCode::OK, &updated, &warnings))
}

/// `DELETE` on an object: immediate; answers with the deleted object.
pub async fn delete<T: Served + AfterDelete>(
    State(state): State<AppState>,
    Path(params): Params,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    query.reject_dry_run()?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let mut options: DeleteOptions = if bytes.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_value(parse_json(&bytes)?)
            .map_err(|e| Status::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(policy) = query.get("propagationPolicy") {
        options.propagation_policy = Some(policy.to_string());
    }
    if query.get("orphanDependents").is_some() {
        options.orphan_dependents = Some(query.flag("orphanDependents"));
    }
    if let Some(policy) = options.propagation_policy.as_deref()
        && !matches!(policy, "Orphan" | "Background" | "Foreground")
    {
        return Err(Status::bad_request(format!(
            "propagationPolicy must be Orphan, Background or Foreground, got {policy:?}"
        ))
        .into());
    }
    let deleted = T::registry(&state)
        .delete(namespace(&params), name(&params), &options)
        .await?;
    T::after_delete(&state, &deleted, &options).await?;
    Ok(json_response(StatusCode::OK, &deleted, &[]))
}

impl AfterDelete for ReplicationController {
    async fn after_delete(
        state: &AppState,
        deleted: &Self,
        options: &DeleteOptions,
    ) -> Result<(), Status> {
        if !options.orphans() {
            delete_owned_pods(&state.pods, deleted).await?;
        }
        Ok(())
    }
}

/// Kinds whose deletion touches nothing else.
macro_rules! no_after_delete {
    ($($ty:ty),*) => {$(
        impl AfterDelete for $ty {
            async fn after_delete(_: &AppState, _: &Self, _: &DeleteOptions) -> Result<(), Status> {
                Ok(())
            }
        }
    )*};
}

no_after_delete!(
    Pod,
    skiff_api::types::Node,
    skiff_api::types::Service,
    skiff_api::types::Endpoints
);
