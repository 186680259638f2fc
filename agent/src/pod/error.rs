//! Why a pod sync step failed.

use std::path::PathBuf;

use crate::runtime::RuntimeError;

/// A failure of one step of a pod worker, naming the pod and what was attempted.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// A container engine call failed.
    #[error("pod {pod}: could not {action}: {source}")]
    Runtime {
        /// The pod as `namespace/name`.
        pod: String,
        /// What was attempted ("list containers", "start container web").
        action: String,
        /// The engine's error.
        source: RuntimeError,
    },
    /// A volume directory could not be created or removed.
    #[error("pod {pod}: could not {action} {path}: {source}")]
    Volume {
        /// The pod as `namespace/name`.
        pod: String,
        /// What was attempted ("create emptyDir", "remove pod directory").
        action: String,
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The pod spec cannot be turned into a container (unknown volume, bad image name).
    #[error("pod {pod}: container {container}: {message}")]
    Spec {
        /// The pod as `namespace/name`.
        pod: String,
        /// The container whose spec is unusable.
        container: String,
        /// What is wrong.
        message: String,
    },
}
