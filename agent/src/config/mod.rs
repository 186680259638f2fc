//! Desired-state sources: the manifest directory and the controlplane, merged.

pub mod desired;

pub use desired::{DesiredPod, DesiredState, PodSource};
