//! A private etcd for one benchmark run: the `etcd` on PATH, on free loopback ports, with a
//! temporary data directory; stopped and removed when dropped.

use std::time::Duration;

use tempfile::TempDir;

use crate::env::{self, EnvError};
use crate::process::{Daemon, ProcessError};

/// How long etcd may take to answer /health.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the private etcd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// etcd is not installed, or no port was free.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The data directory could not be created.
    #[error("could not create a data directory for etcd: {0}")]
    DataDir(std::io::Error),
    /// The process failed to start or to become healthy.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// A running private etcd.
#[derive(Debug)]
pub struct EtcdServer {
    /// The etcd process; dropped (stopped) before the data directory.
    daemon: Daemon,
    /// `http://127.0.0.1:<client port>`.
    endpoint: String,
    /// Its data directory, removed on drop.
    _data: TempDir,
}

impl EtcdServer {
    /// Starts etcd and waits until it reports healthy.
    pub async fn start() -> Result<Self, EtcdError> {
        let program = env::require_on_path("etcd", "the etcd benchmarks start a private etcd")?;
        let data = tempfile::Builder::new()
            .prefix("skiff-bench-etcd-")
            .tempdir()
            .map_err(EtcdError::DataDir)?;
        let client = format!("http://127.0.0.1:{}", env::free_port());
        let peer = format!("http://127.0.0.1:{}", env::free_port());
        let name = env::unique_name("skiff-bench");
        let args: Vec<String> = [
            "--name",
            &name,
            "--data-dir",
            &data.path().join("etcd").to_string_lossy(),
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("{name}={peer}"),
            "--initial-cluster-state",
            "new",
            "--log-level",
            "warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut daemon = Daemon::spawn("etcd", &program, &args, &[])?;
        daemon
            .wait_http_ok(&format!("{client}/health"), START_TIMEOUT)
            .await?;
        Ok(EtcdServer {
            daemon,
            endpoint: client,
            _data: data,
        })
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The etcd process, for its pid and log.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}
