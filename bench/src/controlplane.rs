//! The real `skiff-controlplane` (release build) on a free loopback port, over the embedded
//! store in a temporary directory or over an etcd under a unique prefix.

use std::time::Duration;

use skiff_api::client::{Client, ClientError};
use tempfile::TempDir;

use crate::env::{self, EnvError};
use crate::process::{Daemon, ProcessError};

/// How long the controlplane may take to answer /healthz.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Which store the controlplane runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// The embedded redb store in a fresh temporary `--data-dir`.
    Embedded,
    /// An etcd at `endpoint`, every key under `prefix` (`--etcd-prefix`).
    Etcd {
        /// Client URL, e.g. `http://127.0.0.1:40123`.
        endpoint: String,
        /// Key prefix unique to this run, e.g. `/bench-<uuid>`.
        prefix: String,
    },
}

impl Store {
    /// A short name for reports: `embedded` or `etcd`.
    pub fn label(&self) -> &'static str {
        match self {
            Store::Embedded => "embedded",
            Store::Etcd { .. } => "etcd",
        }
    }
}

/// Why the controlplane could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum ControlplaneError {
    /// The binary is missing or no port was free.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The data directory could not be created.
    #[error("could not create a data directory for skiff-controlplane: {0}")]
    DataDir(std::io::Error),
    /// The process failed to start or to become healthy.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The API client could not be built.
    #[error("could not build an API client: {0}")]
    Client(#[from] ClientError),
}

/// A running controlplane.
#[derive(Debug)]
pub struct Controlplane {
    /// The process; dropped (stopped) before the data directory.
    daemon: Daemon,
    /// `http://127.0.0.1:<port>`.
    url: String,
    /// Its data directory (embedded store), removed on drop.
    _data: TempDir,
}

impl Controlplane {
    /// Starts `target/release/skiff-controlplane` on `store` with `extra_args` appended, and
    /// waits for `/healthz`.
    pub async fn start(store: &Store, extra_args: &[String]) -> Result<Self, ControlplaneError> {
        let program = env::release_binary("skiff-controlplane")?;
        let data = tempfile::Builder::new()
            .prefix("skiff-bench-cp-")
            .tempdir()
            .map_err(ControlplaneError::DataDir)?;
        let listen = format!("127.0.0.1:{}", env::free_port());
        let mut args = vec!["--listen".to_string(), listen.clone()];
        match store {
            Store::Embedded => {
                args.push("--data-dir".to_string());
                args.push(data.path().join("store").to_string_lossy().into_owned());
            }
            Store::Etcd { endpoint, prefix } => {
                args.extend([
                    "--etcd-endpoints".to_string(),
                    endpoint.clone(),
                    "--etcd-prefix".to_string(),
                    prefix.clone(),
                ]);
            }
        }
        args.extend(extra_args.iter().cloned());
        let mut daemon = Daemon::spawn("skiff-controlplane", &program, &args, &[])?;
        let url = format!("http://{listen}");
        daemon
            .wait_http_ok(&format!("{url}/healthz"), START_TIMEOUT)
            .await?;
        Ok(Controlplane {
            daemon,
            url,
            _data: data,
        })
    }

    /// The API's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A typed API client for it.
    pub fn client(&self) -> Result<Client, ControlplaneError> {
        Ok(Client::new(&self.url)?)
    }

    /// The process, for its pid, log and liveness.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}
