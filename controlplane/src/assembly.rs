//! The controlplane assembled: storage, one registry per kind, the API server and, unless
//! the config leaves them out, the scheduler and the controllers in-process (as API clients
//! of this server). [`Controlplane::start`] is what the binary and the tests call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::Status;
use skiff_api::client::{Client, ClientError};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::apiserver::{self, ApiServerError, AppState, ServerConfig};
use crate::controllers::{self, ControllerError, ControllersConfig};
use crate::scheduler::{self, SchedulerConfig, SchedulerError};
use crate::storage::{self, StorageConfig, StorageError};

/// How long open requests may take to finish after shutdown, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything a controlplane is started with.
#[derive(Debug, Clone)]
pub struct ControlplaneConfig {
    /// Address the API listens on (plain HTTP); port 0 picks a free one (see
    /// [`Controlplane::address`]).
    pub listen: SocketAddr,
    /// Where objects live: the embedded store or etcd.
    pub storage: StorageConfig,
    /// Tuning of the API server and its watch caches.
    pub server: ServerConfig,
    /// The in-process scheduler's tuning; `None` runs no scheduler.
    pub scheduler: Option<SchedulerConfig>,
    /// The in-process controllers' tuning; `None` runs no controllers.
    pub controllers: Option<ControllersConfig>,
    /// How long open requests, then the scheduler and controllers, may take to stop.
    pub shutdown_grace: Duration,
}

impl ControlplaneConfig {
    /// A controlplane on `listen` over `storage` with default tuning, the scheduler and the
    /// controllers included.
    pub fn new(listen: SocketAddr, storage: StorageConfig) -> Self {
        ControlplaneConfig {
            listen,
            storage,
            server: ServerConfig::default(),
            scheduler: Some(SchedulerConfig::default()),
            controllers: Some(ControllersConfig::default()),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// Why a controlplane did not start, or how it ended.
#[derive(Debug, thiserror::Error)]
pub enum ControlplaneError {
    /// The store could not be opened.
    #[error("could not open storage {config:?}: {source}")]
    Storage {
        /// The store asked for.
        config: StorageConfig,
        /// What the backend reported.
        #[source]
        source: StorageError,
    },
    /// The listen address could not be bound (or read back).
    #[error("could not listen on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: SocketAddr,
        /// What the OS reported.
        #[source]
        source: std::io::Error,
    },
    /// The in-process parts could not build a client of the local API.
    #[error("the local API URL {url} is not usable: {source}")]
    LocalClient {
        /// The URL of this server's listener.
        url: String,
        /// What the client reported.
        #[source]
        source: ClientError,
    },
    /// The API server failed while serving.
    #[error(transparent)]
    ApiServer(#[from] ApiServerError),
    /// The in-process scheduler stopped with an error.
    #[error("the scheduler stopped: {0}")]
    Scheduler(#[source] SchedulerError),
    /// The in-process controllers stopped with an error.
    #[error("the controllers stopped: {0}")]
    Controllers(#[source] ControllerError),
    /// The controlplane's own task panicked.
    #[error("the controlplane task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// A running controlplane: its address, and a way to stop it and wait for the end.
#[derive(Debug)]
pub struct Controlplane {
    /// The address the API actually listens on.
    address: SocketAddr,
    /// The API server's state (registries, watch caches).
    state: AppState,
    /// Stops this controlplane (a child of the token it was started with).
    shutdown: CancellationToken,
    /// Serves until shutdown, then waits for the parts.
    task: JoinHandle<Result<(), ControlplaneError>>,
}

impl Controlplane {
    /// Opens the store, binds the listener, starts the registries, the API server and the
    /// configured in-process parts, and returns once the API accepts connections. It runs
    /// until `shutdown` (or [`Controlplane::stop`]) cancels it: then open watches end,
    /// in-flight requests get [`ControlplaneConfig::shutdown_grace`] to finish, and the
    /// parts stop.
    pub async fn start(
        config: ControlplaneConfig,
        shutdown: CancellationToken,
    ) -> Result<Controlplane, ControlplaneError> {
        let storage =
            storage::open(&config.storage)
                .await
                .map_err(|source| ControlplaneError::Storage {
                    config: config.storage.clone(),
                    source,
                })?;
        match &config.storage {
            StorageConfig::Embedded { path } => {
                info!(data_dir = %path.display(), "using the embedded store");
            }
            StorageConfig::Etcd { endpoints, prefix } => info!(?endpoints, %prefix, "using etcd"),
        }
        let listen_error = |source| ControlplaneError::Listen {
            address: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(listen_error)?;
        let address = listener.local_addr().map_err(listen_error)?;
        let shutdown = shutdown.child_token();
        let storage = storage.instrumented(config.server.metrics.clone());
        let state = AppState::start(Arc::new(storage), config.server.clone(), shutdown.clone());
        let parts = start_parts(&config, address, &shutdown)?;
        let task = tokio::spawn(serve(
            listener,
            state.clone(),
            parts,
            shutdown.clone(),
            config.shutdown_grace,
        ));
        Ok(Controlplane {
            address,
            state,
            shutdown,
            task,
        })
    }

    /// The address the API listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The URL of the API, as in-process clients reach it.
    pub fn url(&self) -> String {
        local_url(self.address)
    }

    /// Waits until every watch cache has loaded its first list (`/readyz` answers 200).
    pub async fn ready(&self) -> Result<(), Status> {
        self.state.ready().await
    }

    /// Starts stopping it (as cancelling the start token does).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Waits until it has stopped: the API server's failure first, else the first failure
    /// of the scheduler or the controllers.
    pub async fn wait(self) -> Result<(), ControlplaneError> {
        self.task.await.map_err(ControlplaneError::Task)?
    }
}

/// The in-process scheduler and controllers `config` asks for, as API clients of `address`.
fn start_parts(
    config: &ControlplaneConfig,
    address: SocketAddr,
    shutdown: &CancellationToken,
) -> Result<JoinSet<Result<(), ControlplaneError>>, ControlplaneError> {
    let mut parts = JoinSet::new();
    if config.scheduler.is_none() && config.controllers.is_none() {
        return Ok(parts);
    }
    let url = local_url(address);
    let client =
        Client::new(&url).map_err(|source| ControlplaneError::LocalClient { url, source })?;
    if let Some(mut scheduler) = config.scheduler.clone() {
        scheduler
            .metrics
            .get_or_insert_with(|| config.server.metrics.clone());
        let (client, token) = (client.clone(), shutdown.clone());
        parts.spawn(async move {
            scheduler::run(client, scheduler, token).await.map_err(|e| {
                error!(error = %e, "the scheduler stopped");
                ControlplaneError::Scheduler(e)
            })
        });
    }
    if let Some(controllers) = config.controllers.clone() {
        let token = shutdown.clone();
        let metrics = config.server.metrics.clone();
        parts.spawn(async move {
            controllers::run_with_metrics(client, controllers, Some(metrics), token)
                .await
                .map_err(|e| {
                    error!(error = %e, "the controllers stopped");
                    ControlplaneError::Controllers(e)
                })
        });
    }
    Ok(parts)
}

/// Serves the API until shutdown (at most `grace` longer for open requests), then gives
/// the parts `grace` to stop.
async fn serve(
    listener: TcpListener,
    state: AppState,
    mut parts: JoinSet<Result<(), ControlplaneError>>,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), ControlplaneError> {
    let server = apiserver::run(listener, state, shutdown.clone());
    let forced = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        result = server => result.map_err(|e| {
            error!(error = %e, "the API server failed");
            ControlplaneError::from(e)
        }),
        () = forced => {
            warn!(?grace, "requests still open after the grace period; stopping anyway");
            Ok(())
        }
    };
    shutdown.cancel();
    let mut failure = None;
    let joined = tokio::time::timeout(grace, async {
        while let Some(joined) = parts.join_next().await {
            let result = joined.map_err(ControlplaneError::Task).and_then(|r| r);
            if let Err(e) = result {
                failure.get_or_insert(e);
            }
        }
    })
    .await;
    if joined.is_err() {
        warn!("the scheduler or controllers did not stop in time");
    }
    info!("stopped");
    served?;
    failure.map_or(Ok(()), Err)
}

/// The URL in-process API clients use to reach a listener on `listen`.
pub fn local_url(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        match listen {
            SocketAddr::V4(_) => "127.0.0.1".to_string(),
            SocketAddr::V6(_) => "[::1]".to_string(),
        }
    } else {
        match listen {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        }
    };
    format!("http://{host}:{}", listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_clients_reach_the_listener() {
        assert_eq!(
            local_url("0.0.0.0:6443".parse().unwrap()),
            "http://127.0.0.1:6443"
        );
        assert_eq!(
            local_url("127.0.0.1:7000".parse().unwrap()),
            "http://127.0.0.1:7000"
        );
    }

    #[tokio::test]
    async fn starts_on_a_free_port_and_stops_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ControlplaneConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            StorageConfig::Embedded {
                path: dir.path().to_path_buf(),
            },
        );
        config.shutdown_grace = Duration::from_secs(5);
        let shutdown = CancellationToken::new();
        let controlplane = Controlplane::start(config, shutdown.clone()).await.unwrap();
        assert_ne!(controlplane.address().port(), 0);
        controlplane.ready().await.unwrap();
        let client = Client::new(&controlplane.url()).unwrap();
        let nodes = client
            .api::<skiff_api::types::Node>(None)
            .list(&Default::default())
            .await
            .unwrap();
        assert!(nodes.items.is_empty());
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), controlplane.wait())
            .await
            .expect("stops within the grace periods")
            .unwrap();
    }

    #[tokio::test]
    async fn a_taken_address_is_a_listen_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = ControlplaneConfig::new(
            taken.local_addr().unwrap(),
            StorageConfig::Embedded {
                path: dir.path().to_path_buf(),
            },
        );
        let err = Controlplane::start(config, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, ControlplaneError::Listen { .. }), "{err}");
    }
}
