//! Tunables of the service proxy.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// How the proxy listens, dials backends and keeps session affinity.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyConfig {
    /// The node address every service port listens on (127.0.0.1 keeps services node-local).
    pub bind_address: IpAddr,
    /// How long one backend may take to accept before the next one is tried.
    pub connect_timeout: Duration,
    /// How long a `ClientIP` affinity survives without new connections (Kubernetes: 3 h).
    pub session_affinity_timeout: Duration,
    /// First delay before retrying a port that could not be bound.
    pub bind_retry_base: Duration,
    /// Largest delay between retries of a port that could not be bound.
    pub bind_retry_cap: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            connect_timeout: Duration::from_secs(1),
            session_affinity_timeout: Duration::from_secs(3 * 60 * 60),
            bind_retry_base: Duration::from_secs(1),
            bind_retry_cap: Duration::from_secs(60),
        }
    }
}
