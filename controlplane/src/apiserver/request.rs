//! Reading requests: query parameters, bodies (JSON or YAML, size-limited) and objects
//! with Kubernetes' field validation.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use skiff_api::Status;
use skiff_api::status::reason;

use super::fields::{is_ignored_field, unknown_fields};

/// The query string, decoded; the first value of a repeated parameter wins.
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut params = HashMap::new();
        if let Some(raw) = raw {
            for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
                params
                    .entry(key.into_owned())
                    .or_insert_with(|| value.into_owned());
            }
        }
        Query(params)
    }

    /// A parameter's value, when present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean parameter: `true` or `1`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    /// A non-negative integer parameter; 400 when it is not one.
    pub fn number(&self, name: &str) -> Result<Option<u64>, Status> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    Status::bad_request(format!("{name} must be a non-negative integer, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A resourceVersion parameter as a revision; 400 when it is not a number.
    pub fn revision(&self, name: &str) -> Result<Option<i64>, Status> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
                    Status::bad_request(format!("invalid {name} {v:?}: must be a number"))
                })
            })
            .transpose()
    }

    /// What `fieldValidation` asks for (Warn when absent, as Kubernetes).
    pub fn field_validation(&self) -> Result<FieldValidation, Status> {
        match self.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(Status::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
            ))),
        }
    }

    /// 400 for `dryRun`, which skiff does not implement.
    pub fn reject_dry_run(&self) -> Result<(), Status> {
        match self.get("dryRun") {
            Some(_) => Err(Status::bad_request(
                "dryRun is not supported by skiff; leave it out (kubectl: --dry-run=client)",
            )),
            None => Ok(()),
        }
    }
}

/// What to do about fields the kind does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Reject the request (400) listing them.
    Strict,
    /// Accept, with a `Warning` header per field.
    Warn,
    /// Accept silently.
    Ignore,
}

/// An object decoded from a request, with the warnings to send back.
#[derive(Debug)]
pub struct Decoded<T> {
    /// The object.
    pub object: T,
    /// `unknown field "…"` warnings (fieldValidation=Warn).
    pub warnings: Vec<String>,
}

/// A write request's body decoded as `kind` of `api_version`: dry runs are
/// refused, the size limit applies and unknown fields are handled per `fieldValidation`.
pub async fn decode_write<T: DeserializeOwned + serde::Serialize>(
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    api_version: &str,
    kind: &str,
) -> Result<Decoded<T>, Status> {
    let query = Query::parse(raw);
    query.reject_dry_run()?;
    let bytes = read_body(body, limit).await?;
    decode_object::<T>(
        parse_document(headers, &bytes)?,
        api_version,
        kind,
        query.field_validation()?,
    )
}

/// Reads the whole body; 413 when it is larger than `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, Status> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            Status::request_entity_too_large(format!(
                "the request body is larger than the limit of {limit} bytes"
            ))
        } else {
            Status::bad_request(format!("could not read the request body: {e}"))
        }
    })
}

/// The media type of the body, lowercased, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Parses a body as a JSON value: JSON, or YAML for `application/yaml`; 415 for other
/// media types, 400 naming the problem for malformed bodies.
pub fn parse_document(headers: &HeaderMap, body: &[u8]) -> Result<Value, Status> {
    let media = content_type(headers);
    match media.as_str() {
        "" | "application/json" | "text/json" | "*/*" => parse_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => parse_yaml(body),
        other => Err(unsupported_media(
            other,
            &["application/json", "application/yaml"],
        )),
    }
}

/// Parses a JSON body.
pub fn parse_json(body: &[u8]) -> Result<Value, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Status::bad_request("the request body is empty"));
    }
    serde_json::from_slice(body)
        .map_err(|e| Status::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// Parses a YAML body (one document).
fn parse_yaml(body: &[u8]) -> Result<Value, Status> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Status::bad_request(format!("the request body is not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Err(Status::bad_request("the request body is empty"));
    }
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| Status::bad_request(format!("the request body is not valid YAML: {e}")))
}

/// 415 naming the accepted media types.
pub fn unsupported_media(media: &str, accepted: &[&str]) -> Status {
    Status::failure(
        415,
        reason::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "the body of the request was in an unknown format ({media}) - accepted media types include: {}",
            accepted.join(", ")
        ),
    )
}

/// Decodes an object of kind `kind` from a parsed body, checking `apiVersion`/`kind` and
/// unknown fields per `validation`.
pub fn decode_object<T: DeserializeOwned + serde::Serialize>(
    value: Value,
    api_version: &str,
    kind: &str,
    validation: FieldValidation,
) -> Result<Decoded<T>, Status> {
    if !value.is_object() {
        return Err(Status::bad_request(format!(
            "the request body must be a JSON object describing a {kind}"
        )));
    }
    if let Some(sent) = value.get("kind").and_then(Value::as_str)
        && !sent.is_empty()
        && sent != kind
    {
        return Err(Status::bad_request(format!(
            "the kind of the request body ({sent}) does not match the expected kind ({kind})"
        )));
    }
    if let Some(sent) = value.get("apiVersion").and_then(Value::as_str)
        && !sent.is_empty()
        && sent != api_version
    {
        return Err(Status::bad_request(format!(
            "the API version in the data ({sent}) does not match the expected API version ({api_version})"
        )));
    }
    let object: T = serde_json::from_value(value.clone()).map_err(|e| {
        Status::bad_request(format!(
            "{kind} in version \"{api_version}\" cannot be handled as a {kind}: {e}"
        ))
    })?;
    let mut warnings = Vec::new();
    if validation != FieldValidation::Ignore {
        let known = serde_json::to_value(&object)
            .map_err(|e| Status::internal(format!("could not re-encode a {kind}: {e}")))?;
        let (ignored, unknown): (Vec<String>, Vec<String>) = unknown_fields(&value, &known)
            .into_iter()
            .partition(|f| is_ignored_field(f));
        warnings.extend(
            ignored
                .iter()
                .map(|f| format!("field \"{f}\" is not supported by skiff and was ignored")),
        );
        if !unknown.is_empty() {
            let listed: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            if validation == FieldValidation::Strict {
                return Err(Status::bad_request(format!(
                    "strict decoding error: {}",
                    listed.join(", ")
                )));
            }
            warnings.extend(listed);
        }
    }
    Ok(Decoded { object, warnings })
}

#[cfg(test)]
mod tests {
    use skiff_api::types::Pod;

    use super::*;

    #[test]
    fn queries_decode_and_first_value_wins() {
        let q = Query::parse(Some("labelSelector=app%3Dweb&watch=1&watch=false&limit=5"));
        assert_eq!(q.get("labelSelector"), Some("app=web"));
        assert!(q.flag("watch"));
        assert_eq!(q.number("limit").unwrap(), Some(5));
        assert_eq!(
            Query::parse(Some("limit=x"))
                .number("limit")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            Query::parse(None).field_validation().unwrap(),
            FieldValidation::Warn
        );
        assert!(
            Query::parse(Some("fieldValidation=Nope"))
                .field_validation()
                .is_err()
        );
    }

    #[test]
    fn json_and_yaml_bodies_parse_and_others_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/yaml".parse().unwrap());
        let value = parse_document(&headers, b"kind: Pod\nmetadata:\n  name: web\n").unwrap();
        assert_eq!(value["metadata"]["name"], "web");
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        let err = parse_document(&headers, b"{\"kind\": ").unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        headers.insert(
            header::CONTENT_TYPE,
            "application/vnd.kubernetes.protobuf".parse().unwrap(),
        );
        assert_eq!(parse_document(&headers, b"x").unwrap_err().code, 415);
    }

    #[test]
    fn field_validation_strict_warn_ignore() {
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {}},
            "spec": {"foo": 1, "containers": [{"name": "c", "image": "x", "bar": true}]}
        });
        let err =
            decode_object::<Pod>(body.clone(), "v1", "Pod", FieldValidation::Strict).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "strict decoding error: unknown field \"spec.containers[0].bar\", unknown field \"spec.foo\""
        );
        let warned =
            decode_object::<Pod>(body.clone(), "v1", "Pod", FieldValidation::Warn).unwrap();
        assert_eq!(warned.warnings.len(), 2);
        let ignored = decode_object::<Pod>(body, "v1", "Pod", FieldValidation::Ignore).unwrap();
        assert!(ignored.warnings.is_empty());
        assert_eq!(ignored.object.metadata.name.as_deref(), Some("web"));
    }

    #[test]
    fn kubernetes_fields_skiff_ignores_pass_strict_validation_with_a_warning() {
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"dnsPolicy": "ClusterFirst", "containers": [{"name": "c", "image": "x",
                     "terminationMessagePolicy": "File"}]}
        });
        let decoded = decode_object::<Pod>(body, "v1", "Pod", FieldValidation::Strict).unwrap();
        assert_eq!(
            decoded.warnings,
            [
                "field \"spec.containers[0].terminationMessagePolicy\" is not supported by skiff and was ignored",
                "field \"spec.dnsPolicy\" is not supported by skiff and was ignored",
            ]
        );
        let with_unknown = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"dnsPolicy": "ClusterFirst", "initContainers": [{"name": "i"}],
                     "containers": [{"name": "c", "image": "x"}]}
        });
        let err =
            decode_object::<Pod>(with_unknown, "v1", "Pod", FieldValidation::Strict).unwrap_err();
        assert_eq!(
            err.message,
            "strict decoding error: unknown field \"spec.initContainers\""
        );
    }

    #[test]
    fn wrong_kinds_and_types_are_bad_requests() {
        let service = serde_json::json!({"apiVersion": "v1", "kind": "Service"});
        let err = decode_object::<Pod>(service, "v1", "Pod", FieldValidation::Warn).unwrap_err();
        assert_eq!(err.code, 400);
        let bad = serde_json::json!({"kind": "Pod", "spec": {"containers": "nope"}});
        let err = decode_object::<Pod>(bad, "v1", "Pod", FieldValidation::Warn).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("Pod in version \"v1\" cannot be handled as a Pod")
        );
    }
}
