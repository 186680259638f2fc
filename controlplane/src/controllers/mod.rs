//! Replication, endpoints and node lifecycle controllers, all API clients.
//!
//! Each controller is built on [`skiff_api::runtime`]: informers keep stores of the kinds it
//! reads and turn each change (with the object's previous state) into keys on a
//! [`WorkQueue`](skiff_api::runtime::WorkQueue), and `runtime::controller::run` lets workers
//! reconcile one key at a time through the API. Nothing polls the apiserver; the only timer
//! is the node lifecycle's (jittered) heartbeat-age check, because time passing is not an
//! event.

mod config;
mod endpoints;
mod error;
mod follow;
mod labels;
mod node_lifecycle;
mod pod_state;
mod replication;

pub use config::{ControllersArgs, ControllersConfig};
pub use error::ControllerError;

use skiff_api::client::Client;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::metrics::{ControllerLabel, ControlplaneMetrics};
use prometheus_client::metrics::gauge::Gauge;

/// Runs the replication manager, the endpoints controller and the node lifecycle controller
/// against the apiserver behind `client` until `shutdown` is cancelled.
///
/// Returns an error only when one of the controllers stops unexpectedly (a panic); API errors
/// are retried per key with backoff and never end the controllers.
pub async fn run(
    client: Client,
    config: ControllersConfig,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    run_with_metrics(client, config, None, shutdown).await
}

/// [`run`], with each controller's queue depth kept current in `metrics` when given.
pub async fn run_with_metrics(
    client: Client,
    config: ControllersConfig,
    metrics: Option<ControlplaneMetrics>,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    info!(
        node_monitor_grace_period = ?config.node_monitor_grace_period,
        pod_eviction_timeout = ?config.pod_eviction_timeout,
        "starting controllers"
    );
    let mut tasks = JoinSet::new();
    {
        let (client, config, shutdown) = (client.clone(), config.clone(), shutdown.clone());
        let metrics = metrics.clone();
        tasks.spawn(async move {
            let depth = queue_gauge(metrics.as_ref(), "replication");
            replication::run(client, config, depth, shutdown).await;
            "replication"
        });
    }
    {
        let (client, config, shutdown) = (client.clone(), config.clone(), shutdown.clone());
        let metrics = metrics.clone();
        tasks.spawn(async move {
            let depth = queue_gauge(metrics.as_ref(), "endpoints");
            endpoints::run(client, config, depth, shutdown).await;
            "endpoints"
        });
    }
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let depth = queue_gauge(metrics.as_ref(), "node-lifecycle");
            node_lifecycle::run(client, config, depth, shutdown).await;
            "node-lifecycle"
        });
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(name) => info!(controller = name, "controller stopped"),
            Err(source) => {
                // One controller died: stop the others too, and report it.
                shutdown.cancel();
                if result.is_ok() {
                    result = Err(ControllerError::Task { source });
                }
            }
        }
    }
    result
}

/// The queue-depth gauge of `controller` in `metrics`, if any.
fn queue_gauge(metrics: Option<&ControlplaneMetrics>, controller: &'static str) -> Option<Gauge> {
    metrics.map(|m| {
        m.queue_depth
            .get_or_create(&ControllerLabel { controller })
            .clone()
    })
}
