//! Responses: objects as JSON, `Status` errors with their code, and `Warning` headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use skiff_api::Status;
use skiff_api::status::reason;

/// A handler failure: the Status is the body, its `code` the HTTP status.
#[derive(Debug)]
pub struct ApiError(pub Status);

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        ApiError(status)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        status_response(&self.0)
    }
}

/// What handlers return.
pub type ApiResult = Result<Response, ApiError>;

/// A Status as a response with its own code.
pub fn status_response(status: &Status) -> Response {
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, status, &[])
}

/// `body` as JSON with `code`, and one `Warning: 299 - "…"` header per warning.
pub fn json_response<S: Serialize>(code: StatusCode, body: &S, warnings: &[String]) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => {
            let status = Status::internal(format!("could not encode the response: {e}"));
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_vec(&status).unwrap_or_default(),
            )
                .into_response();
        }
    };
    let mut response = (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    add_warnings(&mut response, warnings);
    response
}

/// Adds one `Warning` header per message, in the format kubectl prints.
pub fn add_warnings(response: &mut Response, warnings: &[String]) {
    for warning in warnings {
        let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
}

/// The reason Kubernetes gives an HTTP error code, for errors not raised as a Status
/// (framework rejections).
pub fn reason_for(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => reason::BAD_REQUEST,
        401 => reason::UNAUTHORIZED,
        403 => reason::FORBIDDEN,
        404 => reason::NOT_FOUND,
        405 => reason::METHOD_NOT_ALLOWED,
        406 => reason::NOT_ACCEPTABLE,
        409 => reason::CONFLICT,
        410 => reason::GONE,
        413 => reason::REQUEST_ENTITY_TOO_LARGE,
        415 => reason::UNSUPPORTED_MEDIA_TYPE,
        422 => reason::INVALID,
        504 => reason::TIMEOUT,
        _ => reason::INTERNAL_ERROR,
    }
}
