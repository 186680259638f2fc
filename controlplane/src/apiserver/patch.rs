//! PATCH bodies: JSON merge patch, JSON patch, and strategic merge patch.
//!
//! Strategic merge patch is implemented for what kubectl sends: maps merge like a merge
//! patch, lists of objects with a Kubernetes merge key (containers by `name`, container ports
//! by `containerPort`, volume mounts by `mountPath`, …) merge element by element, and the
//! directives `$patch` (replace/delete/merge), `$setElementOrder/…`, `$retainKeys` and
//! `$deleteFromPrimitiveList/…` are honoured. Other lists are replaced. Server-side apply
//! (`application/apply-patch+yaml`) is not supported: 415.

use serde_json::{Map, Value};
use skiff_api::Status;

use super::request::{parse_json, unsupported_media};

/// The patch formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 `application/merge-patch+json`.
    Merge,
    /// Kubernetes' `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// RFC 6902 `application/json-patch+json`.
    Json,
}

/// Every media type a PATCH may use.
pub const PATCH_MEDIA_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

impl PatchType {
    /// The patch type of a Content-Type; 415 for anything else.
    pub fn from_media_type(media: &str) -> Result<Self, Status> {
        match media {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::StrategicMerge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/apply-patch+yaml" => Err(unsupported_media(
                "application/apply-patch+yaml: server-side apply is not supported, use client-side kubectl apply",
                &PATCH_MEDIA_TYPES,
            )),
            other => Err(unsupported_media(other, &PATCH_MEDIA_TYPES)),
        }
    }
}

/// A parsed patch body.
#[derive(Debug, Clone)]
pub enum Patch {
    /// A merge patch document.
    Merge(Value),
    /// A strategic merge patch document.
    StrategicMerge(Value),
    /// JSON patch operations.
    Json(json_patch::Patch),
}

impl Patch {
    /// Parses a body of `patch_type`; 400 when malformed.
    pub fn parse(patch_type: PatchType, body: &[u8]) -> Result<Self, Status> {
        let value = parse_json(body)?;
        Ok(match patch_type {
            PatchType::Merge => Patch::Merge(require_object(value)?),
            PatchType::StrategicMerge => Patch::StrategicMerge(require_object(value)?),
            PatchType::Json => {
                Patch::Json(serde_json::from_value(value).map_err(|e| {
                    Status::bad_request(format!("the JSON patch is malformed: {e}"))
                })?)
            }
        })
    }

    /// Applies the patch to `original`; 422 when a JSON patch operation fails.
    pub fn apply(&self, original: &Value) -> Result<Value, Status> {
        let mut doc = original.clone();
        match self {
            Patch::Merge(patch) => json_patch::merge(&mut doc, patch),
            Patch::StrategicMerge(patch) => strategic_merge(&mut doc, patch, &[]),
            Patch::Json(patch) => json_patch::patch(&mut doc, &patch.0).map_err(|e| {
                Status::failure(
                    422,
                    skiff_api::status::reason::INVALID,
                    format!("the JSON patch could not be applied: {e}"),
                )
            })?,
        }
        Ok(doc)
    }
}

/// A merge patch must be an object to describe an object.
fn require_object(value: Value) -> Result<Value, Status> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(Status::bad_request("the patch must be a JSON object"))
    }
}

/// The merge key of the list at `path` (field names from the root, list indices left out).
fn merge_key(path: &[String]) -> Option<&'static str> {
    let last = path.last()?.as_str();
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
    match (parent, last) {
        (_, "containers" | "initContainers" | "volumes" | "env" | "imagePullSecrets") => {
            Some("name")
        }
        (_, "volumeMounts") => Some("mountPath"),
        (Some("containers" | "initContainers"), "ports") => Some("containerPort"),
        (Some("spec"), "ports") => Some("port"),
        (_, "conditions") => Some("type"),
        (Some("status"), "addresses") => Some("type"),
        (_, "ownerReferences") => Some("uid"),
        _ => None,
    }
}

/// Applies a strategic merge patch `patch` to `doc` at `path`.
fn strategic_merge(doc: &mut Value, patch: &Value, path: &[String]) {
    let Value::Object(patch_map) = patch else {
        *doc = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *doc = Value::Object(without_directives(patch_map));
            return;
        }
        Some("delete") => {
            *doc = Value::Null;
            return;
        }
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(target) = doc else {
        return;
    };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        let mut child_path = path.to_vec();
        child_path.push(key.clone());
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(_) => {
                let entry = target.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, value, &child_path);
                if entry.is_null() {
                    target.remove(key);
                }
            }
            Value::Array(items) => {
                let merged = merge_list(target.get(key), items, &child_path);
                target.insert(key.clone(), Value::Array(merged));
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$setElementOrder/")
            && let (Some(Value::Array(order)), Some(Value::Array(list))) =
                (Some(value), target.get_mut(field))
        {
            let mut field_path = path.to_vec();
            field_path.push(field.to_string());
            reorder(list, order, merge_key(&field_path));
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/")
            && let (Some(Value::Array(remove)), Some(Value::Array(list))) =
                (Some(value), target.get_mut(field))
        {
            list.retain(|v| !remove.contains(v));
        }
    }
    if let Some(Value::Array(keep)) = patch_map.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
}

/// Merges the patch list `items` into the list `original` at `path`.
fn merge_list(original: Option<&Value>, items: &[Value], path: &[String]) -> Vec<Value> {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let items: Vec<&Value> = items
        .iter()
        .filter(|i| !(i.get("$patch").is_some() && i.as_object().is_some_and(|o| o.len() == 1)))
        .collect();
    let (Some(key), false, Some(Value::Array(original))) = (merge_key(path), replace, original)
    else {
        return items.into_iter().map(strip_directives).collect();
    };
    let mut merged = original.clone();
    for item in items {
        let Some(id) = item.get(key) else {
            merged.push(strip_directives(item));
            continue;
        };
        let position = merged.iter().position(|m| m.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                merged.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut merged[i], item, path),
            (None, false) => merged.push(strip_directives(item)),
        }
    }
    merged
}

/// Orders `list` as `order` names its elements; unnamed elements keep their place after.
fn reorder(list: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id = |v: &Value| -> Value {
        match key {
            Some(key) => v.get(key).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(&id).collect();
    let mut rest = std::mem::take(list);
    for w in &wanted {
        if let Some(i) = rest.iter().position(|v| &id(v) == w) {
            list.push(rest.remove(i));
        }
    }
    list.extend(rest);
}

/// A copy of `value` without directive keys, recursively.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(without_directives(map)),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// A map without its directive keys, recursively.
fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_directives(v)))
        .collect()
}

/// A patch request's field validation and its parsed patch: dry runs are refused
/// and the size limit applies.
pub async fn read_patch(
    raw: Option<&str>,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<(super::request::FieldValidation, Patch), Status> {
    let query = super::request::Query::parse(raw);
    query.reject_dry_run()?;
    let validation = query.field_validation()?;
    let patch_type = PatchType::from_media_type(&super::request::content_type(headers))?;
    let bytes = super::request::read_body(body, limit).await?;
    let patch = Patch::parse(patch_type, &bytes)?;
    Ok((validation, patch))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn smp(original: Value, patch: Value) -> Value {
        Patch::StrategicMerge(patch).apply(&original).unwrap()
    }

    #[test]
    fn containers_merge_by_name_and_directives_are_honoured() {
        let pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}
        ]}});
        let patched = smp(
            pod,
            json!({
                "metadata": {"labels": {"a": null, "c": "3"}},
                "spec": {
                    "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
                    "containers": [{"name": "web", "image": "nginx:2"}]
                }
            }),
        );
        assert_eq!(patched["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(
            patched["spec"]["containers"],
            json!([
                {"name": "side", "image": "busybox"},
                {"name": "web", "image": "nginx:2", "ports": [{"containerPort": 80}]}
            ])
        );
        let deleted = smp(
            patched,
            json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}),
        );
        assert_eq!(deleted["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn lists_without_merge_keys_are_replaced_and_replace_directives_work() {
        let original = json!({"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}});
        let patched = smp(
            original.clone(),
            json!({"spec": {"containers": [{"name": "a", "args": ["z"]}]}}),
        );
        assert_eq!(patched["spec"]["containers"][0]["args"], json!(["z"]));
        let replaced = smp(
            original,
            json!({"spec": {"$patch": "replace", "containers": []}}),
        );
        assert_eq!(replaced["spec"], json!({"containers": []}));
    }

    #[test]
    fn merge_and_json_patches() {
        let original = json!({"spec": {"replicas": 1, "selector": {"app": "web"}}});
        let merged = Patch::parse(PatchType::Merge, br#"{"spec":{"replicas":3}}"#)
            .unwrap()
            .apply(&original)
            .unwrap();
        assert_eq!(
            merged["spec"],
            json!({"replicas": 3, "selector": {"app": "web"}})
        );
        let json = Patch::parse(
            PatchType::Json,
            br#"[{"op":"replace","path":"/spec/replicas","value":5}]"#,
        )
        .unwrap();
        assert_eq!(json.apply(&original).unwrap()["spec"]["replicas"], 5);
        let failing =
            Patch::parse(PatchType::Json, br#"[{"op":"remove","path":"/nope"}]"#).unwrap();
        assert_eq!(failing.apply(&original).unwrap_err().code, 422);
        assert_eq!(
            Patch::parse(PatchType::Merge, b"[1]").unwrap_err().code,
            400
        );
        assert_eq!(
            PatchType::from_media_type("application/apply-patch+yaml")
                .unwrap_err()
                .code,
            415
        );
    }
}
