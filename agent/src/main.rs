//! skiff-agent: the node agent. Reads the desired pods from its sources (the manifest
//! directory and the controlplane), runs them through the Docker Engine, serves its own HTTP
//! API and, with a controlplane, registers its node and reports node and pod status there.
//! SIGINT/SIGTERM stop the agent, never the containers: pods keep running across agent
//! restarts.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use skiff_agent::checkpoint::CheckpointStore;
use skiff_agent::config::Merger;
use skiff_agent::config::controlplane::{self, ControlplaneSource, ControlplaneSourceConfig};
use skiff_agent::config::dir::{self, DirSource, DirSourceConfig};
use skiff_agent::metrics::Metrics;
use skiff_agent::pod::{PodManager, PodManagerConfig};
use skiff_agent::prober::ProbeManager;
use skiff_agent::proxy::{self, ProxyConfig};
use skiff_agent::runtime::docker::DockerRuntime;
use skiff_agent::server::{self, RuntimeLogs, ServerState};
use skiff_agent::status::mirror::DEFAULT_MIRROR_RESYNC_INTERVAL;
use skiff_agent::status::{
    HostFacts, MirrorPodManager, NodeReporter, NodeStatusConfig, PodStatusReporter,
    PodStatusReporterConfig,
};
use skiff_api::client::Client;
use skiff_api::duration::{parse_duration, parse_positive_duration};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

/// How long shutdown waits for the agent's tasks before it exits anyway.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// The skiff node agent: runs pods through the Docker Engine.
///
/// Every flag can also be set through the environment variable shown with it. Log verbosity
/// follows RUST_LOG (default `info`).
#[derive(Debug, Parser)]
#[command(name = "skiff-agent", version)]
struct Cli {
    /// Directory of static pod manifests (YAML or JSON Pods, or v1beta1 ContainerManifests).
    #[arg(long, env = "SKIFF_MANIFEST_DIR", value_name = "DIR")]
    manifest_dir: Option<PathBuf>,

    /// URL of the controlplane (http://…) to register the node with, take pods from and report
    /// status to.
    #[arg(long, env = "SKIFF_CONTROLPLANE", value_name = "URL", value_parser = parse_url)]
    controlplane: Option<String>,

    /// This node's name [default: the host name, lowercased].
    #[arg(long, env = "SKIFF_NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,

    /// Address of the agent's HTTP API (/healthz, /pods, /metrics).
    #[arg(
        long,
        env = "SKIFF_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:10250"
    )]
    listen: SocketAddr,

    /// Docker Engine address (unix:///… or tcp://…) [default: $DOCKER_HOST, else unix:///var/run/docker.sock].
    #[arg(long, env = "SKIFF_DOCKER_HOST", value_name = "URL")]
    docker_host: Option<String>,

    /// Directory for the agent's state: checkpoints of desired pods, pod volumes.
    #[arg(
        long,
        env = "SKIFF_DATA_DIR",
        value_name = "DIR",
        default_value = "./skiff-agent-data"
    )]
    data_dir: PathBuf,

    /// Image of the infra container that holds each pod's network namespace and ports.
    #[arg(
        long,
        env = "SKIFF_POD_INFRA_IMAGE",
        value_name = "IMAGE",
        default_value = skiff_agent::runtime::infra_image::DEFAULT_INFRA_IMAGE
    )]
    pod_infra_image: String,

    /// Command of the infra container, split on whitespace; repeat to append [default: the image's].
    #[arg(
        long,
        env = "SKIFF_POD_INFRA_COMMAND",
        value_name = "COMMAND",
        allow_hyphen_values = true
    )]
    pod_infra_command: Vec<String>,

    /// A docker config.json with registry credentials for image pulls.
    #[arg(long, env = "SKIFF_DOCKER_CONFIG", value_name = "FILE")]
    docker_config: Option<PathBuf>,

    /// First delay of crash-loop and image-pull backoff (doubles up to the max).
    #[arg(long, env = "SKIFF_CRASHLOOP_BACKOFF_BASE", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    crashloop_backoff_base: Duration,

    /// Largest crash-loop and image-pull backoff delay.
    #[arg(long, env = "SKIFF_CRASHLOOP_BACKOFF_MAX", value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    crashloop_backoff_max: Duration,

    /// How often every pod is re-checked against the engine without an event.
    #[arg(long, env = "SKIFF_RESYNC_INTERVAL", value_name = "DURATION", default_value = "2s", value_parser = parse_positive_duration)]
    resync_interval: Duration,

    /// How often the manifest directory is fully rescanned, besides file events.
    #[arg(long, env = "SKIFF_RESCAN_INTERVAL", value_name = "DURATION", default_value = "20s", value_parser = parse_positive_duration)]
    rescan_interval: Duration,

    /// How often the node status (the Ready heartbeat) is written to the controlplane.
    #[arg(long, env = "SKIFF_NODE_STATUS_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    node_status_interval: Duration,

    /// How many pods the node admits, reported as its `pods` capacity.
    #[arg(long, env = "SKIFF_MAX_PODS", value_name = "N", default_value_t = 110, value_parser = clap::value_parser!(i64).range(1..))]
    max_pods: i64,

    /// Address the service proxy listens on for every service port (with --controlplane).
    #[arg(
        long,
        env = "SKIFF_PROXY_BIND_ADDRESS",
        value_name = "IP",
        default_value = "127.0.0.1"
    )]
    proxy_bind_address: std::net::IpAddr,

    /// Do not run the service proxy.
    #[arg(long, env = "SKIFF_NO_PROXY")]
    no_proxy: bool,

    /// Log line format.
    #[arg(long, env = "SKIFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines with `key=value` fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// Accepts `http://` and `https://` URLs.
fn parse_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|err| format!("invalid URL {text:?}: {err}"))?;
    match url.scheme() {
        "http" | "https" => Ok(text.to_string()),
        scheme => Err(format!(
            "unsupported URL scheme {scheme:?}, use http or https"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = format!("{err:#}"), "skiff-agent failed");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr in the chosen format, at the level RUST_LOG names (default `info`).
fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colors = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colors)
        // A failed log write must not panic (it would, reporting itself on a closed stderr).
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Wires runtime → pod manager → sources → merge → HTTP API, and runs until a signal.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let node_name = node_name(cli.node_name.as_deref())?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("could not create data directory {}", cli.data_dir.display()))?;
    let data_dir = absolute(&cli.data_dir)?;
    let runtime = Arc::new(
        DockerRuntime::connect(cli.docker_host.as_deref())
            .await
            .context("could not connect to the Docker Engine")?,
    );
    let metrics = Arc::new(Metrics::new());
    let merger = Merger::new(Some(CheckpointStore::new(&data_dir)));
    let mut tasks = JoinSet::new();
    let mut sources = Vec::new();

    if let Some(dir) = &cli.manifest_dir {
        let dir = absolute(dir)?;
        let (sender, restored) = merger.add_source(dir::SOURCE_NAME)?;
        let mut config = DirSourceConfig::new(&dir, &node_name);
        config.rescan_interval = cli.rescan_interval;
        let source = DirSource::new(config, sender, restored.as_ref());
        tasks.spawn(source.run(shutdown.clone()));
        sources.push(format!("file:{}", dir.display()));
    }
    let client = match &cli.controlplane {
        Some(url) => {
            Some(Client::new(url).with_context(|| format!("invalid --controlplane {url}"))?)
        }
        None => None,
    };
    if let (Some(client), Some(url)) = (&client, &cli.controlplane) {
        let (sender, restored) = merger.add_source(controlplane::SOURCE_NAME)?;
        let config = ControlplaneSourceConfig::new(&node_name);
        let source = ControlplaneSource::new(client.clone(), config, sender, restored);
        tasks.spawn(source.run(shutdown.clone()));
        sources.push(format!("controlplane:{url}"));
    }
    if sources.is_empty() {
        warn!("no source of pods: give --manifest-dir or --controlplane");
    }

    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("could not listen on {}", cli.listen))?;
    let listen = listener.local_addr().unwrap_or(cli.listen);

    let mut pod_config = PodManagerConfig::new(&node_name, &cli.pod_infra_image, &data_dir);
    pod_config.infra_command = infra_command(&cli.pod_infra_command);
    pod_config.docker_config = cli.docker_config.clone();
    pod_config.backoff_base = cli.crashloop_backoff_base;
    pod_config.backoff_cap = cli.crashloop_backoff_max;
    pod_config.resync_interval = cli.resync_interval;
    let host_ip = pod_config.effective_host_ip();
    let log_runtime = runtime.clone();
    let probes = Arc::new(ProbeManager::new(runtime.clone()));
    let pod_manager = PodManager::new(runtime.clone(), pod_config, metrics.clone(), probes);
    if let Some(client) = client {
        // Node registration and heartbeat, pod status and mirror pods: API clients only, they
        // never change what runs on the node.
        let facts = {
            let node = node_name.clone();
            tokio::task::spawn_blocking(move || HostFacts::detect(&node))
                .await
                .context("could not read the host's resources")?
        };
        let mut node_config = NodeStatusConfig::new(&node_name, host_ip);
        node_config.agent_endpoint = Some(agent_endpoint(listen, host_ip));
        node_config.interval = cli.node_status_interval;
        node_config.max_pods = cli.max_pods;
        if !cli.no_proxy {
            let config = ProxyConfig {
                bind_address: cli.proxy_bind_address,
                ..ProxyConfig::default()
            };
            let (client, shutdown) = (client.clone(), shutdown.clone());
            tasks.spawn(async move {
                if let Err(err) = proxy::run(client, config, shutdown).await {
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
    tasks.spawn({
        let shutdown = shutdown.clone();
        async move {
            if let Err(err) = server::run(listener, state, shutdown.clone()).await {
                error!(error = %err, "agent HTTP API stopped");
                shutdown.cancel();
            }
        }
    });

    info!(
        node = %node_name,
        listen = %listen,
        sources = %sources.join(","),
        data_dir = %data_dir.display(),
        "skiff-agent started"
    );

    // Pod workers start from a complete desired state: every source has reported (or said it
    // is unavailable, in which case its checkpoint stands in).
    tokio::select! {
        () = merger.wait_ready() => {}
        () = shutdown.cancelled() => {}
    }
    if !shutdown.is_cancelled() {
        tasks.spawn(pod_manager.run(merger.subscribe(), shutdown.clone()));
    }

    shutdown.cancelled().await;
    info!("shutting down; containers keep running");
    let drained = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        while let Some(result) = tasks.join_next().await {
            if let Err(err) = result {
                warn!(error = %err, "agent task failed");
            }
        }
    })
    .await;
    if drained.is_err() {
        warn!(timeout = ?SHUTDOWN_TIMEOUT, "some agent tasks did not stop in time");
    }
    info!("skiff-agent stopped");
    Ok(())
}

/// The URL the controlplane reaches this agent's API at: the listen address, or the host's
/// address when the agent listens on every interface.
fn agent_endpoint(listen: std::net::SocketAddr, host_ip: std::net::IpAddr) -> String {
    let ip = if listen.ip().is_unspecified() {
        host_ip
    } else {
        listen.ip()
    };
    match ip {
        std::net::IpAddr::V4(v4) => format!("http://{v4}:{}", listen.port()),
        std::net::IpAddr::V6(v6) => format!("http://[{v6}]:{}", listen.port()),
    }
}

/// The node name: the flag's, else the host name lowercased; must be a DNS-1123 subdomain.
fn node_name(flag: Option<&str>) -> anyhow::Result<String> {
    let name = match flag {
        Some(name) => name.to_string(),
        None => sysinfo::System::host_name()
            .context("could not read the host name; give --node-name")?
            .to_lowercase(),
    };
    let problems = skiff_api::validation::names::dns1123_subdomain(&name);
    if !problems.is_empty() {
        bail!("invalid node name {name:?}: {}", problems.join("; "));
    }
    Ok(name)
}

/// The infra command from `--pod-infra-command` values, each split on whitespace.
fn infra_command(values: &[String]) -> Option<Vec<String>> {
    let words: Vec<String> = values
        .iter()
        .flat_map(|value| value.split_whitespace())
        .map(str::to_string)
        .collect();
    (!words.is_empty()).then_some(words)
}

/// `path` made absolute against the working directory, so logs and checkpoints name it fully.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("invalid path {}", path.display()))
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(err), _) | (_, Err(err)) => {
            error!(error = %err, "could not install signal handlers");
            return;
        }
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    info!(signal = name, "received signal");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed_and_help_lists_every_flag_with_its_env_var() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for (flag, env) in [
            ("--manifest-dir", "SKIFF_MANIFEST_DIR"),
            ("--controlplane", "SKIFF_CONTROLPLANE"),
            ("--node-name", "SKIFF_NODE_NAME"),
            ("--listen", "SKIFF_LISTEN"),
            ("--docker-host", "SKIFF_DOCKER_HOST"),
            ("--data-dir", "SKIFF_DATA_DIR"),
            ("--pod-infra-image", "SKIFF_POD_INFRA_IMAGE"),
            ("--pod-infra-command", "SKIFF_POD_INFRA_COMMAND"),
            ("--docker-config", "SKIFF_DOCKER_CONFIG"),
            ("--crashloop-backoff-base", "SKIFF_CRASHLOOP_BACKOFF_BASE"),
            ("--crashloop-backoff-max", "SKIFF_CRASHLOOP_BACKOFF_MAX"),
            ("--resync-interval", "SKIFF_RESYNC_INTERVAL"),
            ("--rescan-interval", "SKIFF_RESCAN_INTERVAL"),
            ("--node-status-interval", "SKIFF_NODE_STATUS_INTERVAL"),
            ("--max-pods", "SKIFF_MAX_PODS"),
            ("--proxy-bind-address", "SKIFF_PROXY_BIND_ADDRESS"),
            ("--no-proxy", "SKIFF_NO_PROXY"),
            ("--log-format", "SKIFF_LOG_FORMAT"),
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
            assert!(help.contains(env), "{env} missing from --help");
        }
    }

    #[test]
    fn the_published_endpoint_is_reachable_from_the_controlplane() {
        let host: std::net::IpAddr = "192.0.2.7".parse().unwrap();
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
    fn defaults_and_humane_durations() {
        let cli = Cli::try_parse_from(["skiff-agent"]).unwrap();
        assert_eq!(cli.listen, "127.0.0.1:10250".parse().unwrap());
        assert_eq!(cli.data_dir, PathBuf::from("./skiff-agent-data"));
        assert_eq!(
            cli.pod_infra_image,
            skiff_agent::runtime::infra_image::DEFAULT_INFRA_IMAGE
        );
        assert_eq!(cli.crashloop_backoff_base, Duration::from_secs(10));
        assert_eq!(cli.crashloop_backoff_max, Duration::from_secs(300));
        assert_eq!(cli.rescan_interval, Duration::from_secs(20));
        assert_eq!(cli.node_status_interval, Duration::from_secs(10));
        assert_eq!(cli.max_pods, 110);
        assert_eq!(cli.log_format, LogFormat::Text);
        assert_eq!(infra_command(&cli.pod_infra_command), None);

        let cli = Cli::try_parse_from([
            "skiff-agent",
            "--crashloop-backoff-base",
            "500ms",
            "--rescan-interval",
            "5m",
            "--log-format",
            "json",
            "--controlplane",
            "http://127.0.0.1:6443",
            "--node-status-interval",
            "1s",
            "--max-pods",
            "20",
        ])
        .unwrap();
        assert_eq!(cli.node_status_interval, Duration::from_secs(1));
        assert_eq!(cli.max_pods, 20);
        assert!(Cli::try_parse_from(["skiff-agent", "--max-pods", "0"]).is_err());
        assert_eq!(cli.crashloop_backoff_base, Duration::from_millis(500));
        assert_eq!(cli.rescan_interval, Duration::from_secs(300));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(Cli::try_parse_from(["skiff-agent", "--resync-interval", "soon"]).is_err());
        assert!(Cli::try_parse_from(["skiff-agent", "--controlplane", "ftp://x"]).is_err());
    }

    #[test]
    fn infra_command_splits_on_whitespace_and_appends_repeats() {
        let cli = Cli::try_parse_from(["skiff-agent", "--pod-infra-command", "sleep  2147483647"])
            .unwrap();
        assert_eq!(
            infra_command(&cli.pod_infra_command),
            Some(vec!["sleep".to_string(), "2147483647".to_string()])
        );
        let cli = Cli::try_parse_from([
            "skiff-agent",
            "--pod-infra-command",
            "sh",
            "--pod-infra-command",
            "-c",
            "--pod-infra-command",
            "sleep",
        ])
        .unwrap();
        assert_eq!(
            infra_command(&cli.pod_infra_command),
            Some(vec!["sh".into(), "-c".into(), "sleep".into()])
        );
    }

    #[test]
    fn node_names_must_be_dns_subdomains() {
        assert_eq!(node_name(Some("edge-1")).unwrap(), "edge-1");
        assert!(node_name(Some("Edge_1")).is_err());
        assert!(!node_name(None).unwrap().is_empty());
    }
}
