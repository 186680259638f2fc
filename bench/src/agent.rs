//! The real `skiff-agent` (release build) with its own node name, a free loopback port, a
//! temporary data directory, the benchmark image as infra image, and either a manifest
//! directory or a controlplane as its source of pods.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use crate::env::{self, EnvError, INFRA_COMMAND};
use crate::process::{Daemon, ProcessError};

/// How long the agent may take to answer /healthz.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How to run one agent.
#[derive(Clone, Debug, Default)]
pub struct AgentConfig {
    /// `--node-name`; every container it creates carries `io.skiff.node=<node>`.
    pub node: String,
    /// `--manifest-dir`, for static pods.
    pub manifest_dir: Option<PathBuf>,
    /// `--controlplane`, to take pods from the API.
    pub controlplane: Option<String>,
    /// `--pod-infra-image`; the infra command is busybox `sleep`.
    pub infra_image: String,
    /// Further flags, appended as given.
    pub extra_args: Vec<String>,
}

/// Why the agent could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The binary is missing or no port was free.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The data directory could not be created.
    #[error("could not create a data directory for skiff-agent: {0}")]
    DataDir(std::io::Error),
    /// The process failed to start or to become healthy.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    /// The process; dropped (stopped) before the data directory.
    daemon: Daemon,
    /// `http://127.0.0.1:<port>` of its own API.
    url: String,
    /// Its data directory (checkpoints), removed on drop.
    _data: TempDir,
}

impl Agent {
    /// Starts `target/release/skiff-agent` and waits for its `/healthz`.
    pub async fn start(config: &AgentConfig) -> Result<Self, AgentError> {
        let program = env::release_binary("skiff-agent")?;
        let data = tempfile::Builder::new()
            .prefix("skiff-bench-agent-")
            .tempdir()
            .map_err(AgentError::DataDir)?;
        let listen = format!("127.0.0.1:{}", env::free_port());
        let mut args = vec![
            "--node-name".to_string(),
            config.node.clone(),
            "--listen".to_string(),
            listen.clone(),
            "--data-dir".to_string(),
            data.path().join("data").to_string_lossy().into_owned(),
            "--pod-infra-image".to_string(),
            config.infra_image.clone(),
            "--pod-infra-command".to_string(),
            INFRA_COMMAND.join(" "),
        ];
        if let Some(dir) = &config.manifest_dir {
            args.push("--manifest-dir".to_string());
            args.push(dir.to_string_lossy().into_owned());
        }
        if let Some(url) = &config.controlplane {
            args.push("--controlplane".to_string());
            args.push(url.clone());
        }
        args.extend(config.extra_args.iter().cloned());
        let mut daemon = Daemon::spawn("skiff-agent", &program, &args, &[])?;
        let url = format!("http://{listen}");
        daemon
            .wait_http_ok(&format!("{url}/healthz"), START_TIMEOUT)
            .await?;
        Ok(Agent {
            daemon,
            url,
            _data: data,
        })
    }

    /// The agent's own API base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process, for its pid, RSS and log.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}
