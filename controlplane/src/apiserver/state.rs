//! What every handler shares: one registry and one watch cache per kind, and the tuning.

use std::sync::Arc;

use skiff_api::types::{Endpoints, Node, Pod, ReplicationController, Service};
use tokio_util::sync::CancellationToken;

use crate::registry::{Registry, Strategy};
use crate::storage::AnyStorage;
use crate::watchcache::{IndexFn, POD_NODE_INDEX, WatchCache, WatchCacheConfig};

/// Largest request body accepted: 3 MiB, as Kubernetes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Tuning of the API server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Watch window, client buffer and bookmark interval of every kind's watch cache.
    pub watch: WatchCacheConfig,
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            watch: WatchCacheConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The registry and the watch cache of one kind.
pub struct ResourceHandle<T> {
    /// Reads and writes go here.
    pub registry: Registry<T>,
    /// Watches (and derived views such as pods by node) are served from here.
    pub cache: WatchCache<T>,
}

impl<T> Clone for ResourceHandle<T> {
    fn clone(&self) -> Self {
        ResourceHandle {
            registry: self.registry.clone(),
            cache: self.cache.clone(),
        }
    }
}

impl<T: Strategy> ResourceHandle<T> {
    /// Starts the watch cache of `T` and wraps it with a registry.
    fn start(
        storage: &Arc<AnyStorage>,
        config: &ServerConfig,
        indexers: Vec<(&'static str, IndexFn<T>)>,
        shutdown: &CancellationToken,
    ) -> Self {
        ResourceHandle {
            registry: Registry::new(Arc::clone(storage)),
            cache: WatchCache::start(
                Arc::clone(storage),
                config.watch.clone(),
                indexers,
                shutdown.clone(),
            ),
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
    /// Pods, with the [`POD_NODE_INDEX`] index (each node's ContainerManifestList).
    pub pods: ResourceHandle<Pod>,
    /// Nodes.
    pub nodes: ResourceHandle<Node>,
    /// Replication controllers.
    pub replication_controllers: ResourceHandle<ReplicationController>,
    /// Services.
    pub services: ResourceHandle<Service>,
    /// Endpoints.
    pub endpoints: ResourceHandle<Endpoints>,
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
    /// Starts one watch cache per kind over `storage`; they stop when `shutdown` is cancelled.
    /// Must run inside a tokio runtime.
    pub fn start(
        storage: Arc<AnyStorage>,
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let by_node: IndexFn<Pod> = |pod| pod.spec.node_name.clone().filter(|n| !n.is_empty());
        let inner = Inner {
            pods: ResourceHandle::start(
                &storage,
                &config,
                vec![(POD_NODE_INDEX, by_node)],
                &shutdown,
            ),
            nodes: ResourceHandle::start(&storage, &config, Vec::new(), &shutdown),
            replication_controllers: ResourceHandle::start(
                &storage,
                &config,
                Vec::new(),
                &shutdown,
            ),
            services: ResourceHandle::start(&storage, &config, Vec::new(), &shutdown),
            endpoints: ResourceHandle::start(&storage, &config, Vec::new(), &shutdown),
            storage,
            config,
            shutdown,
            agent_client: reqwest::Client::builder()
                .connect_timeout(super::logs::AGENT_TIMEOUT)
                .build()
                .unwrap_or_default(),
        };
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// True once every watch cache has loaded its first list.
    pub fn is_ready(&self) -> bool {
        self.pods.cache.is_ready()
            && self.nodes.cache.is_ready()
            && self.replication_controllers.cache.is_ready()
            && self.services.cache.is_ready()
            && self.endpoints.cache.is_ready()
    }

    /// Waits until every watch cache has loaded its first list.
    pub async fn ready(&self) -> Result<(), skiff_api::Status> {
        self.pods.cache.ready().await?;
        self.nodes.cache.ready().await?;
        self.replication_controllers.cache.ready().await?;
        self.services.cache.ready().await?;
        self.endpoints.cache.ready().await
    }
}

/// A kind the API server serves: how to find its handle in the state.
pub trait Served: Strategy + crate::apiserver::table::TableRow {
    /// The kind's registry and watch cache.
    fn handle(state: &AppState) -> &ResourceHandle<Self>;
}

impl Served for Pod {
    fn handle(state: &AppState) -> &ResourceHandle<Self> {
        &state.pods
    }
}

impl Served for Node {
    fn handle(state: &AppState) -> &ResourceHandle<Self> {
        &state.nodes
    }
}

impl Served for ReplicationController {
    fn handle(state: &AppState) -> &ResourceHandle<Self> {
        &state.replication_controllers
    }
}

impl Served for Service {
    fn handle(state: &AppState) -> &ResourceHandle<Self> {
        &state.services
    }
}

impl Served for Endpoints {
    fn handle(state: &AppState) -> &ResourceHandle<Self> {
        &state.endpoints
    }
}
