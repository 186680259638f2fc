//! The skiff controlplane: a slim apiserver over an embedded store or etcd, a scheduler and
//! controllers that talk to the apiserver only through `skiff_api::client`.
//!
//! [`Controlplane::start`] assembles and runs all of it from a [`ControlplaneConfig`]; the
//! binary only maps its flags ([`cli`]) onto that config.

pub mod apiserver;
mod assembly;
pub mod auth;
pub mod cli;
pub mod controllers;
pub mod kubeconfig;
pub mod metrics;
pub mod pki;
pub mod registry;
pub mod scheduler;
pub mod storage;
pub mod watchcache;

pub use assembly::{
    Controlplane, ControlplaneConfig, ControlplaneError, DEFAULT_SHUTDOWN_GRACE, local_url,
};
