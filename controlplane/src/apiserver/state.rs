//! What every handler shares: one registry per kind (each owning its watch cache), the
//! per-node manifest view, and the tuning.

use std::sync::Arc;

use skiff_api::types::{Endpoints, Node, Pod, ReplicationController, Service};
use tokio_util::sync::CancellationToken;

use crate::metrics::ControlplaneMetrics;
use crate::pki::Pki;
use crate::registry::{NodeManifests, Registry, Strategy};
use crate::storage::AnyStorage;
use crate::watchcache::WatchCacheConfig;

/// Largest request body accepted: 3 MiB, as Kubernetes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Tuning of the API server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Watch window, client buffer and bookmark interval of every kind's watch cache.
    pub watch: WatchCacheConfig,
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Where requests, watches and storage operations are counted (`/metrics`).
    pub metrics: ControlplaneMetrics,
    /// The cluster CA and the API's certificates; `None` runs without TLS (`--insecure-http`
    /// only), where node bootstrap is not offered.
    pub pki: Option<Arc<Pki>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            watch: WatchCacheConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            metrics: ControlplaneMetrics::new(),
            pki: None,
        }
    }
}

/// The shared state of the API server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Everything, behind one pointer.
    inner: Arc<Inner>,
}

/// The parts of [`AppState`].
pub struct Inner {
    /// The store every registry writes to.
    pub storage: Arc<AnyStorage>,
    /// Pods (their watch cache indexes them by node).
    pub pods: Registry<Pod>,
    /// Each node's ContainerManifestList, derived from the pods.
    pub node_manifests: NodeManifests,
    /// Nodes.
    pub nodes: Registry<Node>,
    /// Replication controllers.
    pub replication_controllers: Registry<ReplicationController>,
    /// Services.
    pub services: Registry<Service>,
    /// Endpoints.
    pub endpoints: Registry<Endpoints>,
    /// Tuning.
    pub config: ServerConfig,
    /// Cancelled when the server shuts down; ends watches and the watch caches.
    pub shutdown: CancellationToken,
    /// One connection pool to the agents, for `pods/{name}/log`.
    pub agent_client: reqwest::Client,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl AppState {
    /// Starts one registry (with its watch cache) per kind over `storage`; the caches stop
    /// when `shutdown` is cancelled. Must run inside a tokio runtime.
    pub fn start(
        storage: Arc<AnyStorage>,
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let pods: Registry<Pod> = registry(&storage, &config, &shutdown);
        let inner = Inner {
            node_manifests: NodeManifests::new(pods.clone()),
            pods,
            nodes: registry(&storage, &config, &shutdown),
            replication_controllers: registry(&storage, &config, &shutdown),
            services: registry(&storage, &config, &shutdown),
            endpoints: registry(&storage, &config, &shutdown),
            agent_client: reqwest::Client::builder()
                .connect_timeout(super::logs::AGENT_TIMEOUT)
                .build()
                .unwrap_or_default(),
            storage,
            config,
            shutdown,
        };
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// True once every watch cache has loaded its first list.
    pub fn is_ready(&self) -> bool {
        self.pods.is_ready()
            && self.nodes.is_ready()
            && self.replication_controllers.is_ready()
            && self.services.is_ready()
            && self.endpoints.is_ready()
    }

    /// Waits until every watch cache has loaded its first list.
    pub async fn ready(&self) -> Result<(), skiff_api::Status> {
        self.pods.ready().await?;
        self.nodes.ready().await?;
        self.replication_controllers.ready().await?;
        self.services.ready().await?;
        self.endpoints.ready().await
    }
}

/// Starts the registry of kind `T` with the server's watch tuning.
fn registry<T: Strategy>(
    storage: &Arc<AnyStorage>,
    config: &ServerConfig,
    shutdown: &CancellationToken,
) -> Registry<T> {
    Registry::start(Arc::clone(storage), config.watch.clone(), shutdown.clone())
}

/// A kind the API server serves: where its registry is in the state.
pub trait Served: Strategy + crate::apiserver::table::TableRow {
    /// The kind's registry.
    fn registry(state: &AppState) -> &Registry<Self>;
}

/// Implements [`Served`] for kinds whose registry is the state field of the same name.
macro_rules! served {
    ($($ty:ty => $field:ident),* $(,)?) => {$(
        impl Served for $ty {
            fn registry(state: &AppState) -> &Registry<Self> {
                &state.$field
            }
        }
    )*};
}

served!(
    Pod => pods,
    Node => nodes,
    ReplicationController => replication_controllers,
    Service => services,
    Endpoints => endpoints,
);
