//! The runtime's own vocabulary: what to create, what is running, how a command ended. The pod
//! layer translates Pods into these; nothing here knows about skiff-api types.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::image_ref::ImageRef;
use super::labels;

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The Docker container name (`skiff_<container>_<pod>_<namespace>_<uid8>_<attempt>`).
    pub name: String,
    /// The image to run; it must be present (see [`super::ContainerRuntime::pull_image`]).
    pub image: ImageRef,
    /// Replaces the image's entrypoint when set (Kubernetes `command`).
    pub command: Option<Vec<String>>,
    /// Replaces the image's cmd when set (Kubernetes `args`).
    pub args: Option<Vec<String>>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// The working directory; the image's when unset.
    pub working_dir: Option<String>,
    /// Docker labels; carries the identity (see [`super::labels`]).
    pub labels: BTreeMap<String, String>,
    /// Which network namespace the container gets.
    pub network_mode: NetworkMode,
    /// Host port bindings (for the infra container, which owns the pod's network).
    pub port_bindings: Vec<PortBinding>,
    /// Host directories mounted into the container (hostPath and emptyDir volumes).
    pub binds: Vec<BindMount>,
    /// Memory limit in bytes.
    pub memory_limit_bytes: Option<i64>,
    /// CPU limit in units of 10^-9 CPUs.
    pub nano_cpus: Option<i64>,
    /// Relative CPU weight (Docker's default is 1024).
    pub cpu_shares: Option<i64>,
    /// The signal `stop_container` sends first; the image's (or SIGTERM) when unset.
    pub stop_signal: Option<String>,
    /// The container's hostname; Docker refuses it with `NetworkMode::Container`.
    pub hostname: Option<String>,
    /// Extra `/etc/hosts` entries as (hostname, ip); Docker refuses them with `NetworkMode::Container`.
    pub extra_hosts: Vec<(String, String)>,
    /// Allocate a pseudo-TTY (Kubernetes `tty`).
    pub tty: bool,
    /// Keep stdin open (Kubernetes `stdin`).
    pub open_stdin: bool,
}

impl ContainerConfig {
    /// A config with only a name and an image; everything else at its default.
    pub fn new(name: impl Into<String>, image: ImageRef) -> Self {
        ContainerConfig {
            name: name.into(),
            image,
            command: None,
            args: None,
            env: Vec::new(),
            working_dir: None,
            labels: BTreeMap::new(),
            network_mode: NetworkMode::Bridge,
            port_bindings: Vec::new(),
            binds: Vec::new(),
            memory_limit_bytes: None,
            nano_cpus: None,
            cpu_shares: None,
            stop_signal: None,
            hostname: None,
            extra_hosts: Vec::new(),
            tty: false,
            open_stdin: false,
        }
    }
}

/// The network namespace a container runs in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Docker's default bridge network (the infra container).
    #[default]
    Bridge,
    /// Share the network namespace of another container, by id (`container:<id>`).
    Container(String),
    /// The host's network namespace.
    Host,
    /// No network at all.
    None,
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::Bridge => f.write_str("bridge"),
            NetworkMode::Container(id) => write!(f, "container:{id}"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::None => f.write_str("none"),
        }
    }
}

/// A transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// TCP, the default.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// One container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    /// The port inside the container.
    pub container_port: u16,
    /// Its protocol.
    pub protocol: Protocol,
    /// The host address to bind; all addresses when unset.
    pub host_ip: Option<IpAddr>,
    /// The host port; 0 lets Docker choose one.
    pub host_port: u16,
}

/// A host directory mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The directory (or file) on the host.
    pub host_path: PathBuf,
    /// Where it appears in the container.
    pub container_path: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// Selects containers by Docker labels; all conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    /// (key, Some(value)) requires the label to equal value; (key, None) requires it to exist.
    pub conditions: Vec<(String, Option<String>)>,
}

impl LabelFilter {
    /// A filter that matches every container (use with care: also containers skiff did not make).
    pub fn new() -> Self {
        LabelFilter::default()
    }

    /// Requires the label `key` to be present, with any value.
    pub fn has(mut self, key: impl Into<String>) -> Self {
        self.conditions.push((key.into(), None));
        self
    }

    /// Requires the label `key` to equal `value`.
    pub fn eq(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.conditions.push((key.into(), Some(value.into())));
        self
    }

    /// Whether `labels` satisfy every condition (what Docker's `label=` filter does).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.conditions.iter().all(|(key, value)| match value {
            Some(value) => labels.get(key) == Some(value),
            None => labels.contains_key(key),
        })
    }

    /// The values for Docker's `label` list filter (`key` or `key=value`).
    pub fn docker_filters(&self) -> Vec<String> {
        self.conditions
            .iter()
            .map(|(key, value)| match value {
                Some(value) => format!("{key}={value}"),
                None => key.clone(),
            })
            .collect()
    }
}

/// The lifecycle state of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Created but never started.
    Created,
    /// Its main process runs.
    Running,
    /// Frozen by `docker pause`.
    Paused,
    /// Being restarted by Docker's own restart policy (skiff does not use one).
    Restarting,
    /// Its main process ended.
    Exited {
        /// The process's exit code (137 after SIGKILL, 143 after SIGTERM).
        exit_code: i64,
        /// When it ended, if known.
        finished_at: Option<DateTime<Utc>>,
    },
    /// Being removed.
    Removing,
    /// Docker failed to stop or remove it; only removal helps.
    Dead,
    /// A state this code does not know, as Docker spelled it.
    Unknown(String),
}

impl ContainerState {
    /// Running or paused: the process exists.
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
}

/// What the runtime knows about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The Docker id (64 hex).
    pub id: String,
    /// The Docker name, without the leading `/`.
    pub name: String,
    /// Its labels (identity, see [`super::labels`]).
    pub labels: BTreeMap<String, String>,
    /// The image as it was given at create time.
    pub image: String,
    /// The id of the image it runs (`sha256:…`).
    pub image_id: String,
    /// Its lifecycle state.
    pub state: ContainerState,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it last started, if ever.
    pub started_at: Option<DateTime<Utc>>,
    /// When it last ended, if ever.
    pub finished_at: Option<DateTime<Utc>>,
    /// The exit code of the last run, if it ended.
    pub exit_code: Option<i64>,
    /// Whether the kernel OOM killer ended the last run.
    pub oom_killed: bool,
    /// Docker's error for the last start, e.g. "executable file not found".
    pub error: Option<String>,
    /// The restart count from the [`labels::RESTART_COUNT`] label (0 when absent).
    pub restart_count: u32,
    /// Its address on the bridge network (none for `container:` / host mode or when stopped).
    pub ip_address: Option<IpAddr>,
}

impl ContainerInfo {
    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// The restart count carried in `labels` (0 when absent or unparseable).
    pub fn restart_count_from(labels: &BTreeMap<String, String>) -> u32 {
        labels
            .get(labels::RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// How a command run with `exec` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// The command's exit code.
    pub exit_code: i64,
    /// Its stdout and stderr interleaved, cut at [`EXEC_OUTPUT_LIMIT`] bytes.
    pub output: String,
    /// Whether output was cut.
    pub truncated: bool,
}

/// The most output `exec` keeps (probe messages need only the start).
pub const EXEC_OUTPUT_LIMIT: usize = 64 * 1024;

/// Aggregated progress of one image pull.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// Layers the pull has seen so far.
    pub layers_total: usize,
    /// Layers downloaded and extracted, or already present.
    pub layers_done: usize,
    /// Bytes downloaded so far, over all layers.
    pub bytes_done: u64,
    /// Bytes to download, over the layers whose size is known.
    pub bytes_total: u64,
}

/// Which engine runs the containers, for node status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// The engine kind, e.g. `docker`.
    pub engine: String,
    /// The engine's version, e.g. `20.10.24`.
    pub version: String,
    /// The API version in use, e.g. `1.41`.
    pub api_version: String,
}
