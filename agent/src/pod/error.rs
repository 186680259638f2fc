//! Why a pod sync step failed.

use std::path::PathBuf;

use super::volumes::MountError;
use crate::runtime::{ImageRefError, RuntimeError};

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
    /// The pod spec cannot be turned into a container (a mount names no usable volume).
    #[error("pod {pod}: container {container}: {source}")]
    Spec {
        /// The pod as `namespace/name`.
        pod: String,
        /// The container whose spec is unusable.
        container: String,
        /// What is wrong with its mounts.
        source: MountError,
    },
    /// The infra image reference does not parse (a container's bad image is a waiting state).
    #[error("pod {pod}: infra image {image:?}: {source}")]
    Image {
        /// The pod as `namespace/name`.
        pod: String,
        /// The reference as written.
        image: String,
        /// Why it does not parse.
        source: ImageRefError,
    },
}

impl PodError {
    /// The failure without the pod's name, for status messages that sit on the pod already.
    pub fn detail(&self) -> String {
        match self {
            PodError::Runtime { source, .. } => source.to_string(),
            PodError::Volume { source, .. } => source.to_string(),
            PodError::Spec { source, .. } => source.to_string(),
            PodError::Image { image, source, .. } => format!("infra image {image:?}: {source}"),
        }
    }
}
