//! Pod workers: desired versus actual, create/kill/restart, restart policy, backoff.
//!
//! The [`PodManager`] runs one worker task per pod (keyed by uid) and lists the node's
//! containers once per resync pass, handing each worker its pod's slice (by the
//! `io.skiff.pod.uid` label; names are never parsed). A sync is observe → `plan` (a pure
//! function deciding every action) → execute → publish. It makes sure the infra container
//! holds the pod's network and host ports, and brings each container in line with its spec: create what is missing, leave running containers whose
//! spec hash matches alone (also across agent restarts), replace those whose hash changed,
//! restart exited ones per restart policy with crash-loop backoff, kill those whose liveness
//! probe failed. Each container's lifecycle is a named state ([`Waiting`]: `ErrImagePull`,
//! `ImagePullBackOff`, `CrashLoopBackOff`, …, or running / terminated as the engine reports),
//! and one [`RetryBackoff`] type paces both image pulls and restarts. Statuses go to a
//! [`PodStatusHandle`] that the HTTP server and the status reporter read.

mod backoff;
mod config;
mod container_spec;
mod error;
mod execute;
mod hash;
mod identity;
mod kill;
mod manager;
mod observed;
mod ops;
mod plan;
mod policy;
mod probes;
mod publish;
mod records;
mod status;
mod status_handle;
mod volumes;
mod worker;

#[cfg(test)]
mod tests;

pub use backoff::{RetryBackoff, go_duration};
pub use config::{
    DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_BACKOFF_RESET_AFTER,
    DEFAULT_RESYNC_INTERVAL, PodManagerConfig, detect_host_ip,
};
pub use error::PodError;
pub use hash::{container_hash, infra_hash};
pub use identity::PodKey;
pub use manager::PodManager;
pub use probes::{EnsuredProbe, NoProbes, ProbeResults, ScriptedProbes};
pub use status::Waiting;
pub use status_handle::PodStatusHandle;
