//! The agent's command line: every flag with its `SKIFF_AGENT_…` environment variable, its
//! config-file key (the long flag name) and default,
//! and how flags become an [`AgentConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use skiff_api::client::ClientConfig;
use skiff_api::duration::{parse_duration, parse_positive_duration};

use crate::agent::AgentConfig;

/// How long shutdown waits for the agent's tasks before it exits anyway.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// The skiff node agent: runs pods through the Docker Engine.
///
/// Every flag can also be set through the environment variable shown with it, or as a key of
/// the --config file; a flag beats the environment, which beats the file. The variables of
/// older releases (SKIFF_… without AGENT_) are still read, with a warning. Log verbosity
/// follows RUST_LOG (default `info`).
#[derive(Debug, Parser)]
#[command(name = "skiff-agent", version)]
pub struct Cli {
    /// YAML file of settings, one key per long flag (`node-name: edge-1`); flags and the
    /// environment override it.
    #[arg(long, env = "SKIFF_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory of static pod manifests (YAML or JSON Pods, or v1beta1 ContainerManifests).
    #[arg(long, env = "SKIFF_AGENT_MANIFEST_DIR", value_name = "DIR")]
    pub manifest_dir: Option<PathBuf>,

    /// URL of the controlplane (http://… or https://…) to register the node with, take pods
    /// from and report status to.
    #[arg(long, env = "SKIFF_AGENT_CONTROLPLANE", value_name = "URL", value_parser = parse_url)]
    pub controlplane: Option<String>,

    /// PEM bundle of the CAs to trust for an https controlplane [default: the built-in roots].
    #[arg(long, env = "SKIFF_AGENT_CONTROLPLANE_CA_FILE", value_name = "FILE")]
    pub controlplane_ca_file: Option<PathBuf>,

    /// This node's name [default: the host name, lowercased].
    #[arg(long, env = "SKIFF_AGENT_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,

    /// Address of the agent's HTTP API (/healthz, /pods, /metrics).
    #[arg(
        long,
        env = "SKIFF_AGENT_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:10250"
    )]
    pub listen: SocketAddr,

    /// Docker Engine address (unix:///… or tcp://…) [default: $DOCKER_HOST, else unix:///var/run/docker.sock].
    #[arg(long, env = "SKIFF_AGENT_DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,

    /// Directory for the agent's state: checkpoints of desired pods, pod volumes.
    #[arg(
        long,
        env = "SKIFF_AGENT_DATA_DIR",
        value_name = "DIR",
        default_value = "./skiff-agent-data"
    )]
    pub data_dir: PathBuf,

    /// Image of the infra container that holds each pod's network namespace and ports.
    #[arg(
        long,
        env = "SKIFF_AGENT_POD_INFRA_IMAGE",
        value_name = "IMAGE",
        default_value = crate::runtime::infra_image::DEFAULT_INFRA_IMAGE
    )]
    pub pod_infra_image: String,

    /// Command of the infra container, split on whitespace; repeat to append [default: the image's].
    #[arg(
        long,
        env = "SKIFF_AGENT_POD_INFRA_COMMAND",
        value_name = "COMMAND",
        allow_hyphen_values = true
    )]
    pub pod_infra_command: Vec<String>,

    /// A docker config.json with registry credentials for image pulls.
    #[arg(long, env = "SKIFF_AGENT_DOCKER_CONFIG", value_name = "FILE")]
    pub docker_config: Option<PathBuf>,

    /// First delay of crash-loop and image-pull backoff (doubles up to the max).
    #[arg(long, env = "SKIFF_AGENT_CRASHLOOP_BACKOFF_BASE", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub crashloop_backoff_base: Duration,

    /// Largest crash-loop and image-pull backoff delay.
    #[arg(long, env = "SKIFF_AGENT_CRASHLOOP_BACKOFF_MAX", value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub crashloop_backoff_max: Duration,

    /// How often every pod is re-checked against the engine without an event.
    #[arg(long, env = "SKIFF_AGENT_RESYNC_INTERVAL", value_name = "DURATION", default_value = "2s", value_parser = parse_positive_duration)]
    pub resync_interval: Duration,

    /// How often the manifest directory is fully rescanned, besides file events.
    #[arg(long, env = "SKIFF_AGENT_RESCAN_INTERVAL", value_name = "DURATION", default_value = "20s", value_parser = parse_positive_duration)]
    pub rescan_interval: Duration,

    /// How often the node status (the Ready heartbeat) is written to the controlplane.
    #[arg(long, env = "SKIFF_AGENT_NODE_STATUS_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub node_status_interval: Duration,

    /// How many pods the node admits, reported as its `pods` capacity.
    #[arg(long, env = "SKIFF_AGENT_MAX_PODS", value_name = "N", default_value_t = 110, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_pods: i64,

    /// Address the service proxy listens on for every service port (with --controlplane).
    #[arg(
        long,
        env = "SKIFF_AGENT_PROXY_BIND_ADDRESS",
        value_name = "IP",
        default_value = "127.0.0.1"
    )]
    pub proxy_bind_address: std::net::IpAddr,

    /// Do not run the service proxy.
    #[arg(long, env = "SKIFF_AGENT_NO_PROXY")]
    pub no_proxy: bool,

    /// Log line format.
    #[arg(long, env = "SKIFF_AGENT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines with `key=value` fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// Accepts `http://` and `https://` URLs.
pub fn parse_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|err| format!("invalid URL {text:?}: {err}"))?;
    match url.scheme() {
        "http" | "https" => Ok(text.to_string()),
        scheme => Err(format!(
            "unsupported URL scheme {scheme:?}, use http or https"
        )),
    }
}

impl Cli {
    /// The agent config these flags describe.
    pub fn agent_config(&self) -> AgentConfig {
        AgentConfig {
            node_name: self.node_name.clone(),
            manifest_dir: self.manifest_dir.clone(),
            rescan_interval: self.rescan_interval,
            controlplane: self.controlplane.as_ref().map(|url| {
                let config = ClientConfig::new(url.clone());
                match &self.controlplane_ca_file {
                    Some(ca_file) => config.with_ca_file(ca_file.clone()),
                    None => config,
                }
            }),
            listen: self.listen,
            docker_host: self.docker_host.clone(),
            data_dir: self.data_dir.clone(),
            pod_infra_image: self.pod_infra_image.clone(),
            pod_infra_command: infra_command(&self.pod_infra_command),
            docker_config: self.docker_config.clone(),
            backoff_base: self.crashloop_backoff_base,
            backoff_max: self.crashloop_backoff_max,
            resync_interval: self.resync_interval,
            node_status_interval: self.node_status_interval,
            max_pods: self.max_pods,
            proxy_bind_address: (!self.no_proxy).then_some(self.proxy_bind_address),
            shutdown_timeout: SHUTDOWN_TIMEOUT,
        }
    }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed_and_help_lists_every_flag_with_its_env_var() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for (flag, env) in [
            ("--manifest-dir", "SKIFF_AGENT_MANIFEST_DIR"),
            ("--controlplane", "SKIFF_AGENT_CONTROLPLANE"),
            ("--controlplane-ca-file", "SKIFF_AGENT_CONTROLPLANE_CA_FILE"),
            ("--node-name", "SKIFF_AGENT_NODE_NAME"),
            ("--listen", "SKIFF_AGENT_LISTEN"),
            ("--docker-host", "SKIFF_AGENT_DOCKER_HOST"),
            ("--data-dir", "SKIFF_AGENT_DATA_DIR"),
            ("--pod-infra-image", "SKIFF_AGENT_POD_INFRA_IMAGE"),
            ("--pod-infra-command", "SKIFF_AGENT_POD_INFRA_COMMAND"),
            ("--docker-config", "SKIFF_AGENT_DOCKER_CONFIG"),
            (
                "--crashloop-backoff-base",
                "SKIFF_AGENT_CRASHLOOP_BACKOFF_BASE",
            ),
            (
                "--crashloop-backoff-max",
                "SKIFF_AGENT_CRASHLOOP_BACKOFF_MAX",
            ),
            ("--resync-interval", "SKIFF_AGENT_RESYNC_INTERVAL"),
            ("--rescan-interval", "SKIFF_AGENT_RESCAN_INTERVAL"),
            ("--node-status-interval", "SKIFF_AGENT_NODE_STATUS_INTERVAL"),
            ("--max-pods", "SKIFF_AGENT_MAX_PODS"),
            ("--proxy-bind-address", "SKIFF_AGENT_PROXY_BIND_ADDRESS"),
            ("--no-proxy", "SKIFF_AGENT_NO_PROXY"),
            ("--log-format", "SKIFF_AGENT_LOG_FORMAT"),
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
            assert!(help.contains(env), "{env} missing from --help");
        }
    }

    #[test]
    fn defaults_and_humane_durations() {
        let cli = Cli::try_parse_from(["skiff-agent"]).unwrap();
        assert_eq!(cli.listen, "127.0.0.1:10250".parse().unwrap());
        assert_eq!(cli.data_dir, PathBuf::from("./skiff-agent-data"));
        assert_eq!(
            cli.pod_infra_image,
            crate::runtime::infra_image::DEFAULT_INFRA_IMAGE
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
    fn flag_defaults_are_the_agent_config_defaults() {
        let cli = Cli::try_parse_from(["skiff-agent"]).unwrap();
        assert_eq!(cli.agent_config(), AgentConfig::default());
    }

    #[test]
    fn flags_map_onto_the_agent_config() {
        let cli = Cli::try_parse_from([
            "skiff-agent",
            "--controlplane",
            "https://127.0.0.1:6443",
            "--controlplane-ca-file",
            "/etc/skiff/ca.pem",
            "--no-proxy",
            "--node-name",
            "edge-1",
            "--pod-infra-command",
            "sleep 1",
        ])
        .unwrap();
        let config = cli.agent_config();
        assert_eq!(
            config.controlplane,
            Some(ClientConfig::new("https://127.0.0.1:6443").with_ca_file("/etc/skiff/ca.pem"))
        );
        assert_eq!(config.proxy_bind_address, None);
        assert_eq!(config.node_name.as_deref(), Some("edge-1"));
        assert_eq!(
            config.pod_infra_command,
            Some(vec!["sleep".to_string(), "1".to_string()])
        );
        assert!(
            Cli::try_parse_from(["skiff-agent", "--controlplane-ca-file", "ca.pem"])
                .unwrap()
                .agent_config()
                .controlplane
                .is_none()
        );
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
}
