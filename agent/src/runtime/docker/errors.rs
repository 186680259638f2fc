//! Maps bollard errors to [`RuntimeError`], keeping the operation and the engine's message.

use bollard::errors::Error as BollardError;

use crate::runtime::RuntimeError;

/// Turns a failed engine call into a [`RuntimeError`]: 404 → NotFound, 409 → Conflict, anything
/// else → Docker; `operation` names what was attempted and on which object.
pub(super) fn map_error(operation: impl Into<String>, error: BollardError) -> RuntimeError {
    let operation = operation.into();
    match error {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => RuntimeError::NotFound { operation, message },
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => RuntimeError::Conflict { operation, message },
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => RuntimeError::Docker {
            operation,
            message: format!("{message} (HTTP {status_code})"),
        },
        BollardError::RequestTimeoutError => RuntimeError::Docker {
            operation,
            message: "the engine did not answer in time".to_string(),
        },
        other => RuntimeError::Docker {
            operation,
            message: other.to_string(),
        },
    }
}

/// The engine's explanation of a failed pull, without the HTTP framing.
pub(super) fn pull_message(error: BollardError) -> String {
    match error {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        BollardError::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16) -> BollardError {
        BollardError::DockerResponseServerError {
            status_code,
            message: "No such container: x".into(),
        }
    }

    #[test]
    fn maps_status_codes_and_names_the_operation() {
        let not_found = map_error("start container web", server(404));
        assert!(not_found.is_not_found());
        assert_eq!(
            not_found.to_string(),
            "could not start container web: not found: No such container: x"
        );
        assert!(map_error("create container web", server(409)).is_conflict());
        let other = map_error("stop container web", server(500));
        assert_eq!(
            other.to_string(),
            "could not stop container web: No such container: x (HTTP 500)"
        );
    }
}
