//! The agent assembled from its parts: [`Agent::start`] wires the Docker runtime, the pod
//! sources (manifest directory, controlplane) and their merge, the pod manager, the status
//! loops, the service proxy and the HTTP API, and returns a handle once the API listens.
//!
//! The binary is a thin shell around it (flags → [`AgentConfig`], logging, signals), so a test
//! or another program can run an agent in-process the same way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use skiff_api::client::{ClientConfig, ClientError};
use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::checkpoint::CheckpointStore;
use crate::config::controlplane::{self, ControlplaneSource, ControlplaneSourceConfig};
use crate::config::dir::{self, DirSource, DirSourceConfig};
use crate::config::{MergeError, Merger};
use crate::metrics::Metrics;
use crate::pod::{PodManager, PodManagerConfig};
use crate::prober::ProbeManager;
use crate::proxy::{self, ProxyConfig};
use crate::runtime::docker::DockerRuntime;
use crate::runtime::{ImageRef, RuntimeError};
use crate::server::{self, RuntimeLogs, ServerError, ServerState};
use crate::status::mirror::DEFAULT_MIRROR_RESYNC_INTERVAL;
use crate::status::{
    HostFacts, MirrorPodManager, NodeReporter, NodeStatusConfig, PodStatusReporter,
    PodStatusReporterConfig,
};

/// Everything an agent is started with; the binary builds it from its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// This node's name; None: the host name, lowercased. Must be a DNS-1123 subdomain.
    pub node_name: Option<String>,
    /// Directory of static pod manifests; None: no file source.
    pub manifest_dir: Option<PathBuf>,
    /// How often the manifest directory is fully rescanned, besides file events.
    pub rescan_interval: Duration,
    /// The controlplane to register with, take pods from and report status to; None: none.
    pub controlplane: Option<ClientConfig>,
    /// Address of the agent's HTTP API (port 0: any free port, see [`Agent::api_addr`]).
    pub listen: SocketAddr,
    /// Docker Engine address; None: `$DOCKER_HOST`, else the local socket.
    pub docker_host: Option<String>,
    /// Directory for checkpoints of desired pods and for pod volumes; created when missing.
    pub data_dir: PathBuf,
    /// Image of the infra container that holds each pod's network namespace and ports.
    pub pod_infra_image: String,
    /// Command of the infra container; None: the image's own.
    pub pod_infra_command: Option<Vec<String>>,
    /// A docker config.json with registry credentials for image pulls.
    pub docker_config: Option<PathBuf>,
    /// First delay of crash-loop and image-pull backoff.
    pub backoff_base: Duration,
    /// Largest crash-loop and image-pull backoff delay.
    pub backoff_max: Duration,
    /// How often every pod is re-checked against the engine without an event.
    pub resync_interval: Duration,
    /// How often the node status (the Ready heartbeat) is written to the controlplane.
    pub node_status_interval: Duration,
    /// How many pods the node admits, reported as its `pods` capacity.
    pub max_pods: i64,
    /// Where the service proxy listens (with a controlplane); None: no service proxy.
    pub proxy_bind_address: Option<IpAddr>,
    /// How long shutdown waits for the agent's tasks before it gives up on them.
    pub shutdown_timeout: Duration,
}

/// The same defaults as the binary's flags (a test in `cli` holds them equal).
impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            node_name: None,
            manifest_dir: None,
            rescan_interval: Duration::from_secs(20),
            controlplane: None,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10250),
            docker_host: None,
            data_dir: PathBuf::from("./skiff-agent-data"),
            pod_infra_image: crate::runtime::infra_image::DEFAULT_INFRA_IMAGE.to_string(),
            pod_infra_command: None,
            docker_config: None,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            resync_interval: Duration::from_secs(2),
            node_status_interval: Duration::from_secs(10),
            max_pods: 110,
            proxy_bind_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            shutdown_timeout: Duration::from_secs(15),
        }
    }
}

/// Why the agent could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The node name is not a DNS-1123 subdomain.
    #[error("invalid node name {name:?}: {problems}")]
    NodeName {
        /// The name given or derived from the host name.
        name: String,
        /// What is wrong with it.
        problems: String,
    },
    /// No node name was given and the host name could not be read.
    #[error("could not read the host name; give the node a name: {0}")]
    HostName(#[source] sysinfo::Error),
    /// The data directory could not be created.
    #[error("could not create data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A path could not be made absolute.
    #[error("invalid path {}: {source}", path.display())]
    Path {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Docker Engine did not answer.
    #[error("could not connect to the Docker Engine: {0}")]
    Docker(#[source] RuntimeError),
    /// A pod source could not be registered with the merge.
    #[error("could not register a pod source: {0}")]
    Source(#[from] MergeError),
    /// The controlplane settings are unusable (URL, CA bundle, token).
    #[error("invalid controlplane settings for {url}: {source}")]
    Controlplane {
        /// The controlplane URL.
        url: String,
        /// What the client refused.
        #[source]
        source: ClientError,
    },
    /// The HTTP API could not listen.
    #[error("could not listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the host's resources failed (its blocking task died).
    #[error("could not read the host's resources: {0}")]
    HostFacts(#[source] JoinError),
    /// The HTTP API stopped with an error, which stopped the agent.
    #[error("the agent HTTP API failed: {0}")]
    Server(#[source] ServerError),
    /// The task that runs and stops the agent died.
    #[error("the agent's supervising task failed: {0}")]
    Supervisor(#[source] JoinError),
}

/// A running agent: where its API listens, and a way to stop it and wait for the end.
#[derive(Debug)]
pub struct Agent {
    /// The address the HTTP API is bound to (the real port when 0 was asked for).
    api_addr: SocketAddr,
    /// The node name in use.
    node_name: String,
    /// Cancelling it stops the agent.
    shutdown: CancellationToken,
    /// Runs the agent until `shutdown`, then drains its tasks.
    supervisor: JoinHandle<Result<(), AgentError>>,
}

impl Agent {
    /// Starts an agent; it runs until `shutdown` is cancelled (or its HTTP API fails).
    /// Returns once every part is started and the HTTP API listens; pod workers start when
    /// every source has reported. Containers outlive the agent.
    pub async fn start(
        config: AgentConfig,
        shutdown: CancellationToken,
    ) -> Result<Agent, AgentError> {
        let node_name = node_name(config.node_name.as_deref())?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| AgentError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let data_dir = absolute(&config.data_dir)?;
        let runtime = Arc::new(
            DockerRuntime::connect(config.docker_host.as_deref())
                .await
                .map_err(AgentError::Docker)?,
        );
        let metrics = Arc::new(Metrics::new());
        let merger = Merger::new(Some(CheckpointStore::new(&data_dir)));
        let mut tasks = JoinSet::new();
        let mut sources = Vec::new();

        if let Some(dir) = &config.manifest_dir {
            let dir = absolute(dir)?;
            let (sender, restored) = merger.add_source(dir::SOURCE_NAME)?;
            let mut source_config = DirSourceConfig::new(&dir, &node_name);
            source_config.rescan_interval = config.rescan_interval;
            let source = DirSource::new(source_config, sender, restored.as_ref());
            tasks.spawn(source.run(shutdown.clone()));
            sources.push(format!("file:{}", dir.display()));
        }
        let client = match &config.controlplane {
            Some(client_config) => {
                let client = client_config
                    .build()
                    .map_err(|source| AgentError::Controlplane {
                        url: client_config.url.clone(),
                        source,
                    })?;
                let (sender, restored) = merger.add_source(controlplane::SOURCE_NAME)?;
                let source_config = ControlplaneSourceConfig::new(&node_name);
                let source =
                    ControlplaneSource::new(client.clone(), source_config, sender, restored);
                tasks.spawn(source.run(shutdown.clone()));
                sources.push(format!("controlplane:{}", client_config.url));
                Some(client)
            }
            None => None,
        };
        if sources.is_empty() {
            warn!("no source of pods: give a manifest directory or a controlplane");
        }

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| AgentError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let api_addr = listener.local_addr().unwrap_or(config.listen);

        prepare_infra_image(&runtime, &config.pod_infra_image).await;
        let mut pod_config = PodManagerConfig::new(&node_name, &config.pod_infra_image, &data_dir);
        pod_config.infra_command = config.pod_infra_command.clone();
        pod_config.docker_config = config.docker_config.clone();
        pod_config.backoff_base = config.backoff_base;
        pod_config.backoff_cap = config.backoff_max;
        pod_config.resync_interval = config.resync_interval;
        let host_ip = pod_config.effective_host_ip();
        let log_runtime = runtime.clone();
        let probes = Arc::new(ProbeManager::new(runtime.clone()));
        let pod_manager = PodManager::new(runtime.clone(), pod_config, metrics.clone(), probes);
        if let Some(client) = client {
            // Node registration and heartbeat, pod status and mirror pods: API clients only,
            // they never change what runs on the node.
            let facts = {
                let node = node_name.clone();
                tokio::task::spawn_blocking(move || HostFacts::detect(&node))
                    .await
                    .map_err(AgentError::HostFacts)?
            };
            let mut node_config = NodeStatusConfig::new(&node_name, host_ip);
            node_config.agent_endpoint = Some(agent_endpoint(api_addr, host_ip));
            node_config.interval = config.node_status_interval;
            node_config.max_pods = config.max_pods;
            if let Some(bind_address) = config.proxy_bind_address {
                let proxy_config = ProxyConfig {
                    bind_address,
                    ..ProxyConfig::default()
                };
                let (client, shutdown) = (client.clone(), shutdown.clone());
                tasks.spawn(async move {
                    if let Err(err) = proxy::run(client, proxy_config, shutdown).await {
                        error!(error = %err, "service proxy stopped");
                    }
                });
            }
            let node_reporter = NodeReporter::new(client.clone(), runtime, node_config, facts);
            tasks.spawn(node_reporter.run(shutdown.clone()));
            let pod_reporter = PodStatusReporter::new(
                client.clone(),
                pod_manager.status_handle(),
                PodStatusReporterConfig::default(),
            );
            let mirrors = MirrorPodManager::new(
                client,
                &node_name,
                merger.subscribe(),
                DEFAULT_MIRROR_RESYNC_INTERVAL,
            )
            .with_resend(pod_reporter.resend_handle());
            tasks.spawn(pod_reporter.run(shutdown.clone()));
            tasks.spawn(mirrors.run(shutdown.clone()));
        }
        let state = ServerState {
            pods: Arc::new(pod_manager.status_handle()),
            metrics,
            logs: Some(Arc::new(RuntimeLogs(log_runtime))),
        };
        let server = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let result = server::run(listener, state, shutdown.clone()).await;
                if let Err(err) = &result {
                    error!(error = %err, "agent HTTP API stopped; stopping the agent");
                    shutdown.cancel();
                }
                result
            }
        });

        // Pod workers start from a complete desired state: every source has reported (or
        // said it is unavailable, in which case its checkpoint stands in).
        tasks.spawn({
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = merger.wait_ready() => {}
                    () = shutdown.cancelled() => return,
                }
                pod_manager.run(merger.subscribe(), shutdown).await;
            }
        });

        info!(
            node = %node_name,
            listen = %api_addr,
            sources = %sources.join(","),
            data_dir = %data_dir.display(),
            "skiff-agent started"
        );
        let supervisor = tokio::spawn(supervise(
            tasks,
            server,
            shutdown.clone(),
            config.shutdown_timeout,
        ));
        Ok(Agent {
            api_addr,
            node_name,
            shutdown,
            supervisor,
        })
    }

    /// The address the HTTP API listens on.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The node name the agent runs as.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Asks the agent to stop (the same as cancelling the token it was started with).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the agent has stopped: its shutdown was asked for and its tasks drained
    /// (or the shutdown timeout passed). Fails when the HTTP API failed.
    pub async fn wait(self) -> Result<(), AgentError> {
        self.supervisor.await.map_err(AgentError::Supervisor)?
    }
}

/// Waits for `shutdown`, then gives the agent's tasks `timeout` to finish; the result is the
/// HTTP API's.
async fn supervise(
    mut tasks: JoinSet<()>,
    server: JoinHandle<Result<(), ServerError>>,
    shutdown: CancellationToken,
    timeout: Duration,
) -> Result<(), AgentError> {
    shutdown.cancelled().await;
    info!("shutting down; containers keep running");
    let server_abort = server.abort_handle();
    let drained = tokio::time::timeout(timeout, async move {
        while let Some(result) = tasks.join_next().await {
            if let Err(err) = result {
                warn!(error = %err, "agent task failed");
            }
        }
        server.await
    })
    .await;
    let result = match drained {
        Err(_) => {
            // Dropping the JoinSet aborted the other tasks.
            server_abort.abort();
            warn!(timeout = ?timeout, "some agent tasks did not stop in time");
            Ok(())
        }
        Ok(Ok(served)) => served.map_err(AgentError::Server),
        Ok(Err(err)) => {
            warn!(error = %err, "agent HTTP API task failed");
            Ok(())
        }
    };
    info!("skiff-agent stopped");
    result
}

/// The URL the controlplane reaches this agent's API at: the listen address, or the host's
/// address when the agent listens on every interface.
fn agent_endpoint(listen: SocketAddr, host_ip: IpAddr) -> String {
    let ip = if listen.ip().is_unspecified() {
        host_ip
    } else {
        listen.ip()
    };
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{}", listen.port()),
        IpAddr::V6(v6) => format!("http://[{v6}]:{}", listen.port()),
    }
}

/// The node name: the given one, else the host name lowercased; must be a DNS-1123 subdomain.
pub fn node_name(given: Option<&str>) -> Result<String, AgentError> {
    let name = match given {
        Some(name) => name.to_string(),
        None => sysinfo::System::host_name()
            .map_err(AgentError::HostName)?
            .to_lowercase(),
    };
    let problems = skiff_api::validation::names::dns1123_subdomain(&name);
    if !problems.is_empty() {
        return Err(AgentError::NodeName {
            name,
            problems: problems.join("; "),
        });
    }
    Ok(name)
}

/// `path` made absolute against the working directory, so logs and checkpoints name it fully.
fn absolute(path: &Path) -> Result<PathBuf, AgentError> {
    std::path::absolute(path).map_err(|source| AgentError::Path {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds the agent's own infra image before any pod syncs, so the first pods do not wait on
/// it and nothing is ever pulled for it. Failures are logged: pod workers retry on their own.
async fn prepare_infra_image(runtime: &DockerRuntime, infra_image: &str) {
    let image = match ImageRef::parse(infra_image) {
        Ok(image) => image,
        Err(err) => {
            warn!(image = infra_image, error = %err, "invalid pod infra image; pods cannot start");
            return;
        }
    };
    match runtime.ensure_infra_image(&image).await {
        Ok(Some(id)) => {
            info!(image = %image, image_id = %id, "pod infra image ready, built locally")
        }
        Ok(None) => {}
        Err(err) => {
            warn!(image = %image, error = %err, "could not build the pod infra image; pods will retry")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_endpoint_is_reachable_from_the_controlplane() {
        let host: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            agent_endpoint("127.0.0.1:10250".parse().unwrap(), host),
            "http://127.0.0.1:10250"
        );
        assert_eq!(
            agent_endpoint("0.0.0.0:10250".parse().unwrap(), host),
            "http://192.0.2.7:10250"
        );
        assert_eq!(
            agent_endpoint("[::1]:9".parse().unwrap(), host),
            "http://[::1]:9"
        );
    }

    #[test]
    fn node_names_must_be_dns_subdomains() {
        assert_eq!(node_name(Some("edge-1")).unwrap(), "edge-1");
        assert!(node_name(Some("Edge_1")).is_err());
        assert!(!node_name(None).unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_invalid_node_name_fails_the_start_before_anything_runs() {
        let data = tempfile::tempdir().unwrap();
        let config = AgentConfig {
            node_name: Some("Not_A_Name".to_string()),
            data_dir: data.path().join("state"),
            ..AgentConfig::default()
        };
        let err = Agent::start(config, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, AgentError::NodeName { .. }), "{err}");
        assert!(!data.path().join("state").exists());
    }
}
