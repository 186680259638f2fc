//! Pod and node status reporting to the controlplane.
//!
//! Three loops, each an API client of the controlplane that logs and retries on failure and
//! never touches what runs on the node:
//!
//! * [`node::NodeReporter`] registers the Node and writes its status (capacity, addresses,
//!   versions, the Ready condition) every interval.
//! * [`pods::PodStatusReporter`] writes the status the pod workers compute onto each pod
//!   (coalesced: only the latest status of a pod is written).
//! * [`mirror::MirrorPodManager`] keeps a mirror pod in the controlplane for every static pod,
//!   so `kubectl get pods` shows static pods too; their status goes there like any other's.

pub mod api;
mod error;
#[cfg(test)]
mod fake;
pub mod mirror;
pub mod node;
pub mod pods;

pub use api::{NodeApi, PodApi};
pub use error::{StatusError, with_root_cause};
pub use mirror::MirrorPodManager;
pub use node::{HostFacts, NodeReporter, NodeStatusConfig};
pub use pods::{PodStatusReporter, PodStatusReporterConfig, ResendHandle};
