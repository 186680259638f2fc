//! `Status` (kind: Status): the one error type on the wire and in Rust code.
//!
//! Every failed API call answers with a Status carrying an HTTP `code`, a machine-readable
//! `reason`, a message that reads like Kubernetes' (`pods "web" already exists`) and, for
//! validation failures, every cause with its field path.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Machine-readable reasons, as spelled by Kubernetes.
pub mod reason {
    /// 404: the object does not exist.
    pub const NOT_FOUND: &str = "NotFound";
    /// 409: an object with that name exists.
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    /// 409: the write lost an optimistic-concurrency race.
    pub const CONFLICT: &str = "Conflict";
    /// 422: the object failed validation.
    pub const INVALID: &str = "Invalid";
    /// 400: the request could not be understood.
    pub const BAD_REQUEST: &str = "BadRequest";
    /// 410: the requested resourceVersion is too old.
    pub const EXPIRED: &str = "Expired";
    /// 410: the resource is gone.
    pub const GONE: &str = "Gone";
    /// 413: the request body is too large.
    pub const REQUEST_ENTITY_TOO_LARGE: &str = "RequestEntityTooLarge";
    /// 401: no valid credentials.
    pub const UNAUTHORIZED: &str = "Unauthorized";
    /// 403: credentials do not allow this.
    pub const FORBIDDEN: &str = "Forbidden";
    /// 405: the verb is not supported on this path.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// 500: the server failed.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// 504: the server timed out.
    pub const TIMEOUT: &str = "Timeout";
    /// 415: the content type is not supported.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    /// 406: no acceptable representation.
    pub const NOT_ACCEPTABLE: &str = "NotAcceptable";
}

/// Field-error kinds used in `details.causes[].reason`, as Kubernetes spells them.
pub mod cause {
    /// The value is not allowed.
    pub const FIELD_VALUE_INVALID: &str = "FieldValueInvalid";
    /// A required value is missing.
    pub const FIELD_VALUE_REQUIRED: &str = "FieldValueRequired";
    /// The value repeats one that must be unique.
    pub const FIELD_VALUE_DUPLICATE: &str = "FieldValueDuplicate";
    /// The value is not one of the supported ones.
    pub const FIELD_VALUE_NOT_SUPPORTED: &str = "FieldValueNotSupported";
    /// The value may not be set here.
    pub const FIELD_VALUE_FORBIDDEN: &str = "FieldValueForbidden";
    /// The value is too long.
    pub const FIELD_VALUE_TOO_LONG: &str = "FieldValueTooLong";
    /// The field is unknown (strict field validation).
    pub const FIELD_VALUE_UNKNOWN: &str = "FieldValueUnknown";
    /// The value refers to something that does not exist (e.g. an undeclared volume).
    pub const FIELD_VALUE_NOT_FOUND: &str = "FieldValueNotFound";
    /// The list has too many items.
    pub const FIELD_VALUE_TOO_MANY: &str = "FieldValueTooMany";
}

/// The result of an API call that did not return an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    #[serde(default)]
    pub kind: String,
    /// Always `v1`.
    #[serde(default)]
    pub api_version: String,
    /// Unused list metadata, kept for wire compatibility.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Machine-readable reason (see [`reason`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The object and field errors involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// HTTP status code.
    #[serde(default)]
    pub code: u16,
}

/// Which object a Status is about, and the individual causes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// Name of the object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// API group (empty for core).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Resource kind or plural, as Kubernetes puts it (`pods`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// UID of the object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Every individual error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds after which the client may retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<i32>,
}

/// One error, usually a field that failed validation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCause {
    /// Kind of error (see [`cause`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Field path, e.g. `spec.containers[1].name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl Status {
    /// A failure Status with the given code, reason and message.
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Status {
            kind: "Status".to_string(),
            api_version: "v1".to_string(),
            metadata: serde_json::Map::new(),
            status: Some("Failure".to_string()),
            message: message.into(),
            reason: reason.to_string(),
            details: None,
            code,
        }
    }

    /// A success Status, as returned by deletes that do not return the object.
    pub fn success(details: Option<StatusDetails>) -> Self {
        Status {
            kind: "Status".to_string(),
            api_version: "v1".to_string(),
            status: Some("Success".to_string()),
            details,
            code: 200,
            ..Status::default()
        }
    }

    /// Attaches the object's resource plural and name.
    pub fn with_details(mut self, kind: &str, name: &str) -> Self {
        let details = self.details.get_or_insert_with(StatusDetails::default);
        details.kind = kind.to_string();
        details.name = name.to_string();
        self
    }

    /// 404: `pods "web" not found`.
    pub fn not_found(resource: &str, name: &str) -> Self {
        Status::failure(
            404,
            reason::NOT_FOUND,
            format!("{resource} \"{name}\" not found"),
        )
        .with_details(resource, name)
    }

    /// 409: `pods "web" already exists`.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        Status::failure(
            409,
            reason::ALREADY_EXISTS,
            format!("{resource} \"{name}\" already exists"),
        )
        .with_details(resource, name)
    }

    /// 409: `Operation cannot be fulfilled on pods "web": <why>`.
    pub fn conflict(resource: &str, name: &str, why: &str) -> Self {
        Status::failure(
            409,
            reason::CONFLICT,
            format!("Operation cannot be fulfilled on {resource} \"{name}\": {why}"),
        )
        .with_details(resource, name)
    }

    /// 422 with every cause: `Pod "web" is invalid: [spec.containers[0].name: Required value, …]`.
    pub fn invalid(kind: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let listed: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let summary = match listed.len() {
            1 => listed[0].clone(),
            _ => format!("[{}]", listed.join(", ")),
        };
        let mut status = Status::failure(
            422,
            reason::INVALID,
            format!("{kind} \"{name}\" is invalid: {summary}"),
        )
        .with_details(kind, name);
        if let Some(details) = status.details.as_mut() {
            details.causes = causes;
        }
        status
    }

    /// 400: the request was malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Status::failure(400, reason::BAD_REQUEST, message)
    }

    /// 410: `too old resource version: 5 (12)`.
    pub fn expired(message: impl Into<String>) -> Self {
        Status::failure(410, reason::EXPIRED, message)
    }

    /// 413: the body exceeds the limit.
    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Status::failure(413, reason::REQUEST_ENTITY_TOO_LARGE, message)
    }

    /// 401: credentials missing or wrong.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Status::failure(401, reason::UNAUTHORIZED, message)
    }

    /// 403: `pods "web" is forbidden: <why>`.
    pub fn forbidden(resource: &str, name: &str, why: &str) -> Self {
        Status::failure(
            403,
            reason::FORBIDDEN,
            format!("{resource} \"{name}\" is forbidden: {why}"),
        )
        .with_details(resource, name)
    }

    /// 405: the verb is not supported on the path.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Status::failure(405, reason::METHOD_NOT_ALLOWED, message)
    }

    /// 500: `Internal error occurred: <why>`.
    pub fn internal(message: impl fmt::Display) -> Self {
        Status::failure(
            500,
            reason::INTERNAL_ERROR,
            format!("Internal error occurred: {message}"),
        )
    }

    /// True for 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.reason == reason::NOT_FOUND || (self.reason.is_empty() && self.code == 404)
    }

    /// True for 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.reason == reason::ALREADY_EXISTS
    }

    /// True for 409 Conflict.
    pub fn is_conflict(&self) -> bool {
        self.reason == reason::CONFLICT
    }

    /// True for 422 Invalid.
    pub fn is_invalid(&self) -> bool {
        self.reason == reason::INVALID
    }

    /// True for 410 Expired or Gone: the client must relist.
    pub fn is_expired(&self) -> bool {
        self.code == 410 || self.reason == reason::EXPIRED || self.reason == reason::GONE
    }
}

impl StatusCause {
    /// A cause for `field` of kind `reason` with `message`.
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        StatusCause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{} ({})", self.reason, self.code)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for Status {}

/// Converts any error into a Status; an error that is not already a Status becomes a 500.
pub fn to_status(error: &(dyn std::error::Error + 'static)) -> Status {
    match error.downcast_ref::<Status>() {
        Some(status) => status.clone(),
        None => Status::internal(error),
    }
}

impl From<serde_json::Error> for Status {
    fn from(error: serde_json::Error) -> Self {
        Status::bad_request(format!("could not decode the request body: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_kubernetes() {
        assert_eq!(
            Status::already_exists("pods", "web").message,
            "pods \"web\" already exists"
        );
        assert_eq!(
            Status::not_found("pods", "web").message,
            "pods \"web\" not found"
        );
        let invalid = Status::invalid(
            "Pod",
            "web",
            vec![
                StatusCause::new(
                    cause::FIELD_VALUE_REQUIRED,
                    "spec.containers[0].image",
                    "Required value",
                ),
                StatusCause::new(
                    cause::FIELD_VALUE_INVALID,
                    "spec.containers[0].ports[0].containerPort",
                    "Invalid value: 70000: must be between 1 and 65535, inclusive",
                ),
            ],
        );
        assert_eq!(invalid.code, 422);
        assert!(
            invalid
                .message
                .starts_with("Pod \"web\" is invalid: [spec.containers[0].image: Required value, ")
        );
        assert_eq!(invalid.details.as_ref().map(|d| d.causes.len()), Some(2));
    }

    #[test]
    fn constructors_set_codes_and_predicates() {
        assert!(Status::not_found("pods", "a").is_not_found());
        assert!(Status::already_exists("pods", "a").is_already_exists());
        assert!(Status::conflict("pods", "a", "stale").is_conflict());
        assert!(Status::invalid("Pod", "a", vec![]).is_invalid());
        assert!(Status::expired("too old").is_expired());
        for (status, code) in [
            (Status::bad_request("x"), 400),
            (Status::unauthorized("x"), 401),
            (Status::forbidden("pods", "a", "no"), 403),
            (Status::method_not_allowed("x"), 405),
            (Status::request_entity_too_large("x"), 413),
            (Status::internal("x"), 500),
        ] {
            assert_eq!(status.code, code);
            assert_eq!(status.status.as_deref(), Some("Failure"));
        }
    }

    #[test]
    fn unknown_errors_become_internal() {
        let io = std::io::Error::other("disk on fire");
        let status = to_status(&io);
        assert_eq!(status.code, 500);
        assert_eq!(status.reason, reason::INTERNAL_ERROR);
        let known = Status::not_found("pods", "a");
        assert!(to_status(&known).is_not_found());
    }

    #[test]
    fn wire_shape_round_trips() {
        let status = Status::already_exists("pods", "web");
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["kind"], "Status");
        assert_eq!(json["apiVersion"], "v1");
        assert_eq!(json["status"], "Failure");
        assert_eq!(json["reason"], "AlreadyExists");
        assert_eq!(json["code"], 409);
        assert_eq!(json["details"]["name"], "web");
        let back: Status = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
    }
}
