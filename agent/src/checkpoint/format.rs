//! The on-disk JSON of one source's checkpoint, versioned so a later agent can tell formats apart.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use skiff_api::types::Pod;

use crate::config::{DesiredPod, PodSource};

/// The format this agent writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Just the version, read first so a file in an unknown format is named as such.
#[derive(Debug, Deserialize)]
pub struct VersionProbe {
    /// The format version the file was written in.
    pub version: u32,
}

/// One source's last published desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointFile {
    /// Format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// Which source this is (`file`, `controlplane`), a guard against misplaced files.
    pub source: String,
    /// When it was written (RFC 3339), for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_at: Option<String>,
    /// The source's own version of its state (the ContainerManifestList resourceVersion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The pods, in the order the source published them.
    #[serde(default)]
    pub pods: Vec<CheckpointPod>,
}

/// One desired pod and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointPod {
    /// Its origin, so a restored static pod still knows its file.
    pub origin: Origin,
    /// The pod as the source published it.
    pub pod: Pod,
}

/// [`PodSource`] as stored: `{"file": "/path"}` or `"controlplane"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// A static pod from this file.
    File(PathBuf),
    /// A pod bound to this node in the controlplane.
    Controlplane,
}

impl From<&DesiredPod> for CheckpointPod {
    fn from(desired: &DesiredPod) -> Self {
        let origin = match &desired.source {
            PodSource::File(path) => Origin::File(path.clone()),
            PodSource::Controlplane => Origin::Controlplane,
        };
        CheckpointPod {
            origin,
            pod: desired.pod.clone(),
        }
    }
}

impl From<CheckpointPod> for DesiredPod {
    fn from(stored: CheckpointPod) -> Self {
        let source = match stored.origin {
            Origin::File(path) => PodSource::File(path),
            Origin::Controlplane => PodSource::Controlplane,
        };
        DesiredPod {
            pod: stored.pod,
            source,
        }
    }
}
