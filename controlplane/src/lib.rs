//! The skiff controlplane: a slim apiserver over an embedded store or etcd, a scheduler and
//! controllers that talk to the apiserver only through `skiff_api::client`.

pub mod apiserver;
pub mod controllers;
pub mod kubeconfig;
pub mod metrics;
pub mod registry;
pub mod scheduler;
pub mod storage;
pub mod watchcache;
