//! Userspace service proxy over services and endpoints.
//!
//! For every TCP port of every service the proxy listens on the node (at
//! [`ProxyConfig::bind_address`], on the port's `nodePort` when set, else its `port`) and
//! forwards each accepted connection to one ready endpoint of the Endpoints object of the same
//! name, round robin (or sticky per client IP for `sessionAffinity: ClientIP`), skipping
//! endpoints that refuse or do not connect in time.
//!
//! [`run`] follows Services and Endpoints in all namespaces through `skiff_api::runtime`
//! informers and feeds each change to a [`Proxy`], the single writer of the per-port state. Endpoint changes
//! reach new connections at once and never cut established ones; a port that disappears stops
//! listening while its connections finish. A [`Proxy`] can also be driven by hand — write
//! objects into a [`Writer`](skiff_api::runtime::Writer) and call [`Proxy::sync_service`] —
//! which is how the tests run it without an apiserver.

mod backends;
mod balancer;
mod config;
mod dial;
mod error;
mod listener;
mod state;

#[cfg(test)]
mod fake_apiserver;
#[cfg(test)]
mod tests;

use futures::StreamExt;
use skiff_api::client::Client;
use skiff_api::runtime::{Change, WatcherConfig, WatcherError, Writer, informer, watcher};
use skiff_api::types::{Endpoints, Service};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use backends::{DesiredPort, ServicePortKey, SkippedPort, backends_for_port, desired_ports};
pub use balancer::Balancer;
pub use config::ProxyConfig;
pub use error::{ForwardError, ProxyError};
pub use state::{PortStatus, Proxy};

/// One item of the merged service and endpoints informers.
enum Update {
    /// A service change (or a retried watch failure).
    Service(Result<Change<Service>, WatcherError>),
    /// An endpoints change (or a retried watch failure).
    Endpoints(Result<Change<Endpoints>, WatcherError>),
}

/// Runs the service proxy against the controlplane behind `client` until `shutdown` is
/// cancelled; the ports are released when it returns. Listening starts once both Services
/// and Endpoints are listed, and the last known state keeps being served while the
/// controlplane is unreachable.
pub async fn run(
    client: Client,
    config: ProxyConfig,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    let (service_writer, services) = Writer::<Service>::new();
    let (endpoints_writer, endpoints) = Writer::<Endpoints>::new();
    let service_updates = informer(
        service_writer,
        watcher(client.api::<Service>(None), WatcherConfig::default()),
    )
    .map(Update::Service)
    .boxed();
    let endpoints_updates = informer(
        endpoints_writer,
        watcher(client.api::<Endpoints>(None), WatcherConfig::default()),
    )
    .map(Update::Endpoints)
    .boxed();
    let mut updates = futures::stream::select(service_updates, endpoints_updates);

    info!(bind_address = %config.bind_address, "service proxy starting");
    let mut proxy = Proxy::new(config, services.clone(), endpoints.clone(), &shutdown);
    let mut synced = false;
    let result = loop {
        let update = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            update = updates.next() => update,
        };
        match update {
            None => {
                break Err(ProxyError::WatchEnded {
                    kind: "services and endpoints",
                });
            }
            Some(Update::Service(Err(error))) => {
                warn!(%error, "watch of services failed; retrying");
            }
            Some(Update::Endpoints(Err(error))) => {
                warn!(%error, "watch of endpoints failed; retrying");
            }
            Some(Update::Service(Ok(change))) if synced => proxy.on_service_change(&change),
            Some(Update::Endpoints(Ok(change))) if synced => proxy.on_endpoints_change(&change),
            Some(_) => {}
        }
        if !synced && services.is_synced() && endpoints.is_synced() {
            synced = true;
            info!(
                services = services.len(),
                endpoints = endpoints.len(),
                "service proxy synced"
            );
            proxy.sync_all();
        }
    };
    proxy.shutdown().await;
    info!("service proxy stopped");
    result
}
