//! Errors of the service proxy.

use std::net::SocketAddr;

/// Why the proxy as a whole stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A watch of services or endpoints ended, which the watcher never does by itself.
    #[error("the watch of {kind} ended unexpectedly")]
    WatchEnded {
        /// `services` or `endpoints`.
        kind: &'static str,
    },
}

/// Why one client connection could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The service has no ready endpoint for this port.
    #[error("service {service} port {port} has no ready endpoints")]
    NoEndpoints {
        /// `namespace/name` of the service.
        service: String,
        /// The service port's name (or number when unnamed).
        port: String,
    },
    /// Every endpoint refused the connection or did not answer in time.
    #[error("service {service} port {port}: no endpoint accepted the connection (tried {tried:?})")]
    AllEndpointsFailed {
        /// `namespace/name` of the service.
        service: String,
        /// The service port's name (or number when unnamed).
        port: String,
        /// The endpoints tried, in order.
        tried: Vec<SocketAddr>,
    },
}
