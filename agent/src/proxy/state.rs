//! The proxy's state: one listener per served service port, reconciled from the Service and
//! Endpoints caches by a single writer (the watch loop, or a test feeding values by hand).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use skiff_api::runtime::{Change, Store};
use skiff_api::types::{Endpoints, Service};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::backends::{ServicePortKey, SkippedPort, desired_ports};
use super::balancer::Balancer;
use super::config::ProxyConfig;
use super::dial::lock;
use super::listener::PortListener;

/// A snapshot of one served service port, for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// Which port of which service.
    pub key: ServicePortKey,
    /// The node address it listens on.
    pub address: SocketAddr,
    /// True once the port is bound (false while binding is being retried).
    pub bound: bool,
    /// The ready endpoints new connections go to.
    pub backends: Vec<SocketAddr>,
}

/// The service proxy's state. Only its owner changes it; listeners read their endpoints
/// through a shared balancer the owner updates in place.
pub struct Proxy {
    /// Tunables shared with every listener.
    config: Arc<ProxyConfig>,
    /// Services, as the reflector (or a test) keeps them.
    services: Store<Service>,
    /// Endpoints, as the reflector (or a test) keeps them.
    endpoints: Store<Endpoints>,
    /// The running listeners.
    ports: BTreeMap<ServicePortKey, PortListener>,
    /// Service ports already logged as skipped (`namespace/name`, port name, port), logged once.
    skipped: BTreeSet<(String, String, i32)>,
    /// Cancels every listener and forwarded connection; a child of the caller's token.
    connections: CancellationToken,
}

impl Proxy {
    /// A proxy serving what `services` and `endpoints` hold once synced; must run inside a
    /// Tokio runtime. Everything stops when `shutdown` is cancelled.
    pub fn new(
        config: ProxyConfig,
        services: Store<Service>,
        endpoints: Store<Endpoints>,
        shutdown: &CancellationToken,
    ) -> Self {
        Proxy {
            config: Arc::new(config),
            services,
            endpoints,
            ports: BTreeMap::new(),
            skipped: BTreeSet::new(),
            connections: shutdown.child_token(),
        }
    }

    /// Reacts to a service change the informer has already written into the store.
    pub fn on_service_change(&mut self, change: &Change<Service>) {
        let service = change.object();
        self.sync_service(
            service.metadata.namespace_or_empty(),
            service.metadata.name_or_empty(),
        );
    }

    /// Reacts to an endpoints change the informer has already written into the store.
    pub fn on_endpoints_change(&mut self, change: &Change<Endpoints>) {
        let endpoints = change.object();
        self.sync_service(
            endpoints.metadata.namespace_or_empty(),
            endpoints.metadata.name_or_empty(),
        );
    }

    /// Reconciles every service in the store and every one still served.
    pub fn sync_all(&mut self) {
        let mut names: BTreeSet<(String, String)> = self
            .ports
            .keys()
            .map(|k| (k.namespace.clone(), k.name.clone()))
            .collect();
        for service in self.services.list() {
            names.insert((
                service.metadata.namespace_or_empty().to_string(),
                service.metadata.name_or_empty().to_string(),
            ));
        }
        for (namespace, name) in names {
            self.sync_service(&namespace, &name);
        }
    }

    /// Makes the listeners of service `namespace/name` match the stores: listen on new ports,
    /// stop listening on ports gone, hand changed endpoints to new connections.
    pub fn sync_service(&mut self, namespace: &str, name: &str) {
        let store_key = format!("{namespace}/{name}");
        let service = self.services.get(&store_key);
        let endpoints = self.endpoints.get(&store_key);
        let (wanted, skipped) = service
            .as_deref()
            .map(|s| desired_ports(s, endpoints.as_deref()))
            .unwrap_or_default();
        self.log_skipped(&store_key, &skipped);

        let wanted_keys: BTreeSet<&ServicePortKey> = wanted.iter().map(|d| &d.key).collect();
        let stale: Vec<ServicePortKey> = self
            .ports
            .keys()
            .filter(|k| k.namespace == namespace && k.name == name && !wanted_keys.contains(k))
            .cloned()
            .collect();
        for key in stale {
            if let Some(listener) = self.ports.remove(&key) {
                debug!(
                    service = %key.service(),
                    port = %key.port_label(),
                    address = %listener.address(),
                    "service port gone; stopping its listener"
                );
                listener.stop();
            }
        }

        for desired in wanted {
            let affinity = desired
                .session_affinity
                .then_some(self.config.session_affinity_timeout);
            match self.ports.get(&desired.key) {
                Some(listener) => {
                    if listener.update(desired.backends.clone(), affinity) {
                        debug!(
                            service = %desired.key.service(),
                            port = %desired.key.port_label(),
                            endpoints = ?desired.backends,
                            "endpoints changed"
                        );
                    }
                }
                None => {
                    let address =
                        SocketAddr::new(self.config.bind_address, desired.key.listen_port);
                    debug!(
                        service = %desired.key.service(),
                        port = %desired.key.port_label(),
                        %address,
                        endpoints = ?desired.backends,
                        "serving service port"
                    );
                    let listener = PortListener::start(
                        desired.key.clone(),
                        address,
                        Balancer::new(desired.backends, affinity),
                        Arc::clone(&self.config),
                        &self.connections,
                    );
                    self.ports.insert(desired.key, listener);
                }
            }
        }
    }

    /// Every served service port with its current state.
    pub fn ports(&self) -> Vec<PortStatus> {
        self.ports
            .iter()
            .map(|(key, listener)| PortStatus {
                key: key.clone(),
                address: listener.address(),
                bound: listener.is_bound(),
                backends: lock(listener.balancer()).backends().to_vec(),
            })
            .collect()
    }

    /// The status of the port of service `namespace/name` named `port_name` ("" when unnamed).
    pub fn port(&self, namespace: &str, name: &str, port_name: &str) -> Option<PortStatus> {
        self.ports().into_iter().find(|p| {
            p.key.namespace == namespace && p.key.name == name && p.key.port_name == port_name
        })
    }

    /// Stops every listener and forwarded connection and waits until the ports are released.
    pub async fn shutdown(mut self) {
        self.connections.cancel();
        for (_, listener) in std::mem::take(&mut self.ports) {
            listener.stop_and_wait().await;
        }
    }

    /// Logs each newly skipped port of `service` once; forgets ports no longer skipped.
    fn log_skipped(&mut self, service: &str, skipped: &[SkippedPort]) {
        let now: BTreeSet<(String, String, i32)> = skipped
            .iter()
            .map(|s| (service.to_string(), s.port_name.clone(), s.port))
            .collect();
        for s in skipped {
            let id = (service.to_string(), s.port_name.clone(), s.port);
            if !self.skipped.contains(&id) {
                info!(%service, port = %s.port_name, number = s.port, reason = %s.reason, "skipping service port");
            }
        }
        self.skipped.retain(|(svc, ..)| svc != service);
        self.skipped.extend(now);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Without an explicit shutdown, listeners still must not outlive their owner.
        self.connections.cancel();
    }
}
