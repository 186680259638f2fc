//! Desired-state sources: the manifest directory and the controlplane, merged.

pub mod controlplane;
pub mod desired;
pub mod dir;
pub mod manifest;
pub mod merge;

pub use desired::{DesiredPod, DesiredState, PodSource};
pub use dir::{DirScanner, DirSource, DirSourceConfig, ScanOutcome};
pub use merge::{MergeError, Merger, SourceSender, SourceState, pod_key};
