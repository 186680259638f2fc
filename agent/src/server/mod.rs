//! The agent HTTP API: /healthz, /pods, /pods/{namespace}/{name}, /metrics and
//! /containerLogs/{namespace}/{pod}/{container}.
//!
//! [`run`] serves a [`router`] on a listener until its shutdown token is cancelled, so tests
//! start it on port 0 and stop it when they are done.

mod handlers;
mod logs;

pub use logs::{ContainerLogSource, RuntimeLogs};

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use skiff_api::types::Pod;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::metrics::Metrics;
use crate::pod::PodStatusHandle;

/// Content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Where the API reads the pods it reports: every pod the agent runs, with its status.
pub trait PodStatusSource: Send + Sync + 'static {
    /// Every pod, with status, ordered by namespace and name.
    fn pods(&self) -> Vec<Pod>;
    /// The pod `namespace/name`, if the agent runs it.
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod>;
}

impl PodStatusSource for PodStatusHandle {
    fn pods(&self) -> Vec<Pod> {
        PodStatusHandle::pods(self)
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.get(namespace, name)
    }
}

/// What the handlers read.
#[derive(Clone)]
pub struct ServerState {
    /// The pods and their statuses.
    pub pods: Arc<dyn PodStatusSource>,
    /// The metrics `/metrics` encodes.
    pub metrics: Arc<Metrics>,
    /// Where container logs come from; None answers log requests with 404.
    pub logs: Option<Arc<dyn ContainerLogSource>>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState").finish_non_exhaustive()
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Accepting or serving connections failed.
    #[error("agent HTTP server on {address} failed: {source}")]
    Serve {
        /// The address it listened on.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The routes of the agent API.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/pods", get(handlers::list_pods))
        .route("/pods/{namespace}/{name}", get(handlers::get_pod))
        .route("/metrics", get(handlers::metrics))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(logs::container_logs),
        )
        .fallback(handlers::not_found)
        .with_state(state)
}

/// Serves the agent API on `listener` until `shutdown` is cancelled; requests in flight finish.
pub async fn run(
    listener: TcpListener,
    state: ServerState,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let address = listener
        .local_addr()
        .map(|addr| addr.to_string())
        .unwrap_or_else(|_| "?".to_string());
    info!(address = %address, "agent HTTP API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|source| ServerError::Serve { address, source })
}

#[cfg(test)]
mod tests;
