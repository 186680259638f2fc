//! The skiff node agent (the kubelet): makes the Docker Engine match the desired pods from the
//! manifest directory and the controlplane, and reports their status.
//!
//! [`agent::Agent::start`] assembles a running agent from an [`agent::AgentConfig`]; [`cli`]
//! holds the binary's flags. The in-memory fakes (`runtime::fake`) exist only in tests and
//! with the `test-util` feature.

pub mod agent;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod pod;
pub mod prober;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod status;

#[cfg(test)]
mod test_logs;
