//! The skiff node agent (the kubelet): makes the Docker Engine match the desired pods from the
//! manifest directory and the controlplane, and reports their status.

pub mod checkpoint;
pub mod config;
pub mod metrics;
pub mod pod;
pub mod prober;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod status;
