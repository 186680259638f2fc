//! The one error type of the container runtime, with the operation and object in every message.

use std::time::Duration;

/// Why a runtime operation failed. Every message names the operation and its object, e.g.
/// "could not start container skiff_web_nginx_default_1a2b3c4d_0: …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The container, image or exec does not exist (Docker 404).
    #[error("could not {operation}: not found: {message}")]
    NotFound {
        /// What was attempted, naming its object ("inspect container web").
        operation: String,
        /// The engine's explanation.
        message: String,
    },
    /// The object is in a state that forbids the operation, or the name is taken (Docker 409).
    #[error("could not {operation}: conflict: {message}")]
    Conflict {
        /// What was attempted, naming its object.
        operation: String,
        /// The engine's explanation.
        message: String,
    },
    /// Pulling an image failed (missing image, registry unreachable, denied).
    #[error("could not pull image {image}: {message}")]
    ImagePull {
        /// The normalized image reference.
        image: String,
        /// The registry's or engine's explanation.
        message: String,
    },
    /// An exec did not finish within its timeout (the process may still run in the container).
    #[error("exec {command:?} in container {container} did not finish within {timeout:?}")]
    ExecTimeout {
        /// The container the command ran in.
        container: String,
        /// The command line.
        command: Vec<String>,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The engine cannot be reached or the connection settings are unusable.
    #[error("could not connect to the container engine at {host}: {message}")]
    Connect {
        /// The engine address (`unix:///var/run/docker.sock`, `tcp://…`).
        host: String,
        /// What went wrong.
        message: String,
    },
    /// Any other engine failure.
    #[error("could not {operation}: {message}")]
    Docker {
        /// What was attempted, naming its object.
        operation: String,
        /// The engine's explanation (with its HTTP status when there was one).
        message: String,
    },
}

impl RuntimeError {
    /// True for [`RuntimeError::NotFound`]: the object is already gone.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::NotFound { .. })
    }

    /// True for [`RuntimeError::Conflict`]: e.g. the name is taken or the container not running.
    pub fn is_conflict(&self) -> bool {
        matches!(self, RuntimeError::Conflict { .. })
    }
}
