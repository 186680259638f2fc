//! Node registration and heartbeat.
//!
//! At start the agent creates its Node (name, the well-known hostname/os/arch labels, the
//! host's capacity, addresses and software versions) or, when it exists, makes sure it carries
//! those labels. Then, every interval, it re-reads the node and writes its status with the
//! Ready condition: `True` while the container runtime answers, `False` when it does not.
//! `lastHeartbeatTime` moves on every report, `lastTransitionTime` only when the status flips
//! (compared with what the controlplane holds, so a flip by the node lifecycle controller to
//! `Unknown` counts too). A 409 Conflict re-reads the node and applies the status again.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::types::{
    AGENT_ENDPOINT_ANNOTATION, Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo,
    ObjectMeta, Quantity, Time,
};
use skiff_api::wait::{Backoff, jitter};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::api::NodeApi;
use super::error::{StatusError, with_root_cause};
use crate::runtime::{ContainerRuntime, RuntimeVersion};

/// Largest random stretch of one heartbeat interval, so agents restarted together do not
/// report in step.
const HEARTBEAT_JITTER: f64 = 0.1;

/// How often the node status is written (the kubelet's default).
pub const DEFAULT_NODE_STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// How many pods the node admits, reported as its `pods` capacity (the kubelet's default).
pub const DEFAULT_MAX_PODS: i64 = 110;
/// How many times one status write is retried after a 409 Conflict.
pub const MAX_CONFLICT_RETRIES: u32 = 5;
/// Label with the node's host name.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// Label with the node's operating system.
pub const LABEL_OS: &str = "kubernetes.io/os";
/// Label with the node's CPU architecture (Go's names: amd64, arm64, …).
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
/// The condition type the scheduler and node lifecycle controller read.
pub const CONDITION_READY: &str = "Ready";
/// Ready reason while the agent and its runtime work.
pub const REASON_READY: &str = "KubeletReady";
/// Ready reason when the container runtime does not answer.
pub const REASON_NOT_READY: &str = "KubeletNotReady";

/// Settings of node registration and heartbeat.
#[derive(Debug, Clone)]
pub struct NodeStatusConfig {
    /// The node's name.
    pub node_name: String,
    /// How often the status is written.
    pub interval: Duration,
    /// The `pods` capacity.
    pub max_pods: i64,
    /// The node's `InternalIP`.
    pub host_ip: IpAddr,
    /// First delay between failed registrations (doubling, jittered, up to 30 s).
    pub retry_base: Duration,
    /// Base URL of this agent's HTTP API, published on the Node for `kubectl logs`.
    pub agent_endpoint: Option<String>,
}

impl NodeStatusConfig {
    /// Settings for `node_name` at `host_ip` with the kubelet's defaults.
    pub fn new(node_name: impl Into<String>, host_ip: IpAddr) -> Self {
        NodeStatusConfig {
            node_name: node_name.into(),
            interval: DEFAULT_NODE_STATUS_INTERVAL,
            max_pods: DEFAULT_MAX_PODS,
            host_ip,
            retry_base: Duration::from_millis(500),
            agent_endpoint: None,
        }
    }
}

/// What the agent knows about its host; read once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// CPU cores.
    pub cpu_cores: i64,
    /// Memory in bytes.
    pub memory_bytes: i64,
    /// The host name (the `Hostname` address).
    pub hostname: String,
    /// Kernel version.
    pub kernel_version: String,
    /// Distribution name, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub os_image: String,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// `linux`.
    pub operating_system: String,
    /// Go's architecture name: `amd64`, `arm64`, `arm`, …
    pub architecture: String,
}

impl HostFacts {
    /// Reads the host: sysinfo for CPUs, memory and versions, `/proc/meminfo` when sysinfo
    /// cannot tell, `/etc/os-release` and `/etc/machine-id`.
    pub fn detect(node_name: &str) -> HostFacts {
        use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let system = System::new_with_specifics(refresh).ok();
        let cpus = system.as_ref().map_or(0, |s| s.cpus().len());
        let cpus = if cpus > 0 {
            cpus
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        };
        let memory = system.as_ref().map_or(0, System::total_memory);
        let memory = if memory > 0 {
            memory
        } else {
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|text| meminfo_total_bytes(&text))
                .unwrap_or(0)
        };
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|text| os_release_pretty_name(&text))
            .or_else(|| System::long_os_version().ok())
            .unwrap_or_else(|| "unknown".to_string());
        HostFacts {
            cpu_cores: i64::try_from(cpus).unwrap_or(i64::MAX),
            memory_bytes: i64::try_from(memory).unwrap_or(i64::MAX),
            hostname: System::host_name().unwrap_or_else(|_| node_name.to_string()),
            kernel_version: System::kernel_version().unwrap_or_default(),
            os_image,
            machine_id: std::fs::read_to_string("/etc/machine-id")
                .map(|id| id.trim().to_string())
                .unwrap_or_default(),
            operating_system: std::env::consts::OS.to_string(),
            architecture: skiff_api::platform::host_go_arch().to_string(),
        }
    }
}

/// `MemTotal` of `/proc/meminfo` in bytes.
pub fn meminfo_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// `PRETTY_NAME` of `/etc/os-release`, unquoted.
pub fn os_release_pretty_name(os_release: &str) -> Option<String> {
    let value = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    let value = value.trim().trim_matches('"').trim_matches('\'');
    (!value.is_empty()).then(|| value.to_string())
}

/// Whether the container runtime answers, as the Ready condition reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeHealth {
    /// It answered with this version.
    Up(RuntimeVersion),
    /// It did not, with this error.
    Down(String),
}

/// The labels the agent puts on its node.
pub fn node_labels(node_name: &str, facts: &HostFacts) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_HOSTNAME.to_string(), node_name.to_string()),
        (LABEL_OS.to_string(), facts.operating_system.clone()),
        (LABEL_ARCH.to_string(), facts.architecture.clone()),
    ])
}

/// Sets the agent's labels on `node`; true if anything changed. Other labels stay.
pub fn apply_labels(node: &mut Node, labels: &BTreeMap<String, String>) -> bool {
    let mut changed = false;
    for (key, value) in labels {
        if node.metadata.labels.get(key) != Some(value) {
            node.metadata.labels.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

/// The Ready condition at `now`: its transition time is kept from `previous` when the status
/// is the same, else it is `now`.
pub fn ready_condition(
    previous: Option<&NodeCondition>,
    health: &RuntimeHealth,
    now: Time,
) -> NodeCondition {
    let (status, reason, message) = match health {
        RuntimeHealth::Up(_) => (
            "True",
            REASON_READY,
            "skiff-agent is posting ready status".to_string(),
        ),
        RuntimeHealth::Down(error) => (
            "False",
            REASON_NOT_READY,
            format!("container runtime is down: {error}"),
        ),
    };
    let last_transition_time = match previous {
        Some(previous) if previous.status == status => previous.last_transition_time.or(Some(now)),
        _ => Some(now),
    };
    NodeCondition {
        type_: CONDITION_READY.to_string(),
        status: status.to_string(),
        last_heartbeat_time: Some(now),
        last_transition_time,
        reason: Some(reason.to_string()),
        message: Some(message),
    }
}

/// Writes the agent's view into `node.status`: capacity, allocatable, addresses, software
/// versions and the Ready condition (other conditions stay as they are).
pub fn apply_status(
    node: &mut Node,
    config: &NodeStatusConfig,
    facts: &HostFacts,
    health: &RuntimeHealth,
    now: Time,
) {
    let status = node.status.get_or_insert_with(NodeStatus::default);
    let capacity = BTreeMap::from([
        ("cpu".to_string(), Quantity::from_units(facts.cpu_cores)),
        (
            "memory".to_string(),
            Quantity::from_bytes(facts.memory_bytes),
        ),
        ("pods".to_string(), Quantity::from_units(config.max_pods)),
    ]);
    status.allocatable = capacity.clone();
    status.capacity = capacity;
    status.addresses = vec![
        NodeAddress {
            type_: "InternalIP".to_string(),
            address: config.host_ip.to_string(),
        },
        NodeAddress {
            type_: "Hostname".to_string(),
            address: facts.hostname.clone(),
        },
    ];
    let runtime_version = match health {
        RuntimeHealth::Up(version) => format!("{}://{}", version.engine, version.version),
        // Keep what was reported while the runtime answered.
        RuntimeHealth::Down(_) => status
            .node_info
            .as_ref()
            .map(|info| info.container_runtime_version.clone())
            .unwrap_or_default(),
    };
    status.node_info = Some(NodeSystemInfo {
        machine_id: facts.machine_id.clone(),
        kernel_version: facts.kernel_version.clone(),
        os_image: facts.os_image.clone(),
        container_runtime_version: runtime_version,
        kubelet_version: format!("v{}", env!("CARGO_PKG_VERSION")),
        operating_system: facts.operating_system.clone(),
        architecture: facts.architecture.clone(),
    });
    let ready = ready_condition(
        status
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY),
        health,
        now,
    );
    match status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == CONDITION_READY)
    {
        Some(slot) => *slot = ready,
        None => status.conditions.push(ready),
    }
}

/// The Node the agent registers: name, labels and its first status.
pub fn new_node(
    config: &NodeStatusConfig,
    facts: &HostFacts,
    health: &RuntimeHealth,
    now: Time,
) -> Node {
    let mut node = Node {
        api_version: "v1".to_string(),
        kind: "Node".to_string(),
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: node_labels(&config.node_name, facts),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    apply_endpoint(&mut node, config.agent_endpoint.as_deref());
    apply_status(&mut node, config, facts, health, now);
    node
}

/// Publishes the agent's API endpoint on `node`; true if anything changed.
pub fn apply_endpoint(node: &mut Node, endpoint: Option<&str>) -> bool {
    let Some(endpoint) = endpoint else {
        return false;
    };
    let annotations = &mut node.metadata.annotations;
    if annotations
        .get(AGENT_ENDPOINT_ANNOTATION)
        .map(String::as_str)
        == Some(endpoint)
    {
        return false;
    }
    annotations.insert(AGENT_ENDPOINT_ANNOTATION.to_string(), endpoint.to_string());
    true
}

/// Registers the node and keeps its status fresh.
#[derive(Debug)]
pub struct NodeReporter<A, R> {
    /// The controlplane.
    api: A,
    /// The container runtime, asked for its version on every heartbeat.
    runtime: Arc<R>,
    /// Settings.
    config: NodeStatusConfig,
    /// The host, read once.
    facts: HostFacts,
}

impl<A: NodeApi, R: ContainerRuntime> NodeReporter<A, R> {
    /// A reporter for `config.node_name` through `api`, describing `facts` and `runtime`.
    pub fn new(api: A, runtime: Arc<R>, config: NodeStatusConfig, facts: HostFacts) -> Self {
        NodeReporter {
            api,
            runtime,
            config,
            facts,
        }
    }

    /// Registers, then heartbeats every interval until `shutdown`; re-registers if the node
    /// is deleted. Failures are logged and retried (registration with a jittered backoff).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(self.config.retry_base, Duration::from_secs(30), 0.5);
        let mut registered = false;
        let mut failing = false;
        loop {
            let result = if registered {
                self.heartbeat().await
            } else {
                self.register().await
            };
            let delay = match result {
                Ok(()) => {
                    if failing {
                        info!(node = %self.config.node_name, "node status reaches the controlplane again");
                        failing = false;
                    }
                    if !registered {
                        info!(node = %self.config.node_name, "node registered");
                        registered = true;
                        backoff.reset();
                        // Heartbeat at once: the node is Ready as soon as possible.
                        continue;
                    }
                    backoff.reset();
                    jitter(self.config.interval, HEARTBEAT_JITTER)
                }
                Err(StatusError::NotFound { .. }) => {
                    warn!(node = %self.config.node_name, "node was deleted from the controlplane, registering again");
                    registered = false;
                    backoff.next_delay()
                }
                Err(error) => {
                    if failing {
                        debug!(node = %self.config.node_name, error = %with_root_cause(&error), "node status still failing");
                    } else {
                        warn!(node = %self.config.node_name, error = %with_root_cause(&error), "could not report node status");
                        failing = true;
                    }
                    if registered {
                        jitter(self.config.interval, HEARTBEAT_JITTER)
                    } else {
                        backoff.next_delay()
                    }
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        debug!(node = %self.config.node_name, "node reporter stopped");
    }

    /// The runtime's health now.
    async fn health(&self) -> RuntimeHealth {
        match self.runtime.version().await {
            Ok(version) => RuntimeHealth::Up(version),
            Err(error) => RuntimeHealth::Down(error.to_string()),
        }
    }

    /// The object name for errors and logs.
    fn object(&self) -> String {
        format!("node {}", self.config.node_name)
    }

    /// Creates the node, or makes sure an existing one carries the agent's labels.
    pub async fn register(&self) -> Result<(), StatusError> {
        let name = &self.config.node_name;
        let labels = node_labels(name, &self.facts);
        for _ in 0..=MAX_CONFLICT_RETRIES {
            let existing = self
                .api
                .get_node(name)
                .await
                .map_err(|e| StatusError::api("read", &self.object(), e))?;
            let Some(mut node) = existing else {
                let health = self.health().await;
                let node = new_node(&self.config, &self.facts, &health, Time::now());
                match self.api.create_node(&node).await {
                    Ok(_) => return Ok(()),
                    // Created meanwhile (another start of this agent): label it.
                    Err(e) if e.is_already_exists() => continue,
                    Err(e) => return Err(StatusError::api("create", &self.object(), e)),
                }
            };
            let labelled = apply_labels(&mut node, &labels);
            let published = apply_endpoint(&mut node, self.config.agent_endpoint.as_deref());
            if !labelled && !published {
                return Ok(());
            }
            match self.api.update_node(&node).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(StatusError::api("label", &self.object(), e)),
            }
        }
        Err(StatusError::Conflicts {
            object: self.object(),
            attempts: MAX_CONFLICT_RETRIES + 1,
        })
    }

    /// Writes the node's status once: re-read, apply, `PUT …/status`, again on conflict.
    pub async fn heartbeat(&self) -> Result<(), StatusError> {
        let name = &self.config.node_name;
        let health = self.health().await;
        for _ in 0..=MAX_CONFLICT_RETRIES {
            let Some(mut node) = self
                .api
                .get_node(name)
                .await
                .map_err(|e| StatusError::api("read", &self.object(), e))?
            else {
                return Err(StatusError::NotFound {
                    object: self.object(),
                });
            };
            apply_status(&mut node, &self.config, &self.facts, &health, Time::now());
            match self.api.update_node_status(&node).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => {
                    debug!(node = %name, "node status conflict, re-reading");
                }
                Err(e) if e.is_not_found() => {
                    return Err(StatusError::NotFound {
                        object: self.object(),
                    });
                }
                Err(e) => {
                    return Err(StatusError::api("update the status of", &self.object(), e));
                }
            }
        }
        Err(StatusError::Conflicts {
            object: self.object(),
            attempts: MAX_CONFLICT_RETRIES + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::runtime::fake::FakeRuntime;
    use crate::status::fake::FakeControlplane;

    fn facts() -> HostFacts {
        HostFacts {
            cpu_cores: 4,
            memory_bytes: 8 * 1024 * 1024 * 1024,
            hostname: "host-a".into(),
            kernel_version: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            machine_id: "abc".into(),
            operating_system: "linux".into(),
            architecture: "amd64".into(),
        }
    }

    fn config() -> NodeStatusConfig {
        NodeStatusConfig::new("edge-1", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)))
    }

    fn up() -> RuntimeHealth {
        RuntimeHealth::Up(RuntimeVersion {
            engine: "docker".into(),
            version: "20.10.24".into(),
            api_version: "1.41".into(),
        })
    }

    fn at(secs: i64) -> Time {
        Time::from_unix(1_700_000_000 + secs).unwrap()
    }

    fn ready(node: &Node) -> NodeCondition {
        node.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY)
            .unwrap()
            .clone()
    }

    #[test]
    fn host_files_parse() {
        let meminfo = "MemTotal:       16303460 kB\nMemFree:  1 kB\n";
        assert_eq!(meminfo_total_bytes(meminfo), Some(16_303_460 * 1024));
        assert_eq!(meminfo_total_bytes("MemFree: 1 kB"), None);
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os_release_pretty_name(os).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os_release_pretty_name("NAME=x"), None);
        // The architecture mapping itself is tested in skiff_api::platform.
        let detected = HostFacts::detect("edge-1");
        assert!(detected.cpu_cores >= 1);
        assert!(detected.memory_bytes > 0);
        assert_eq!(detected.operating_system, "linux");
    }

    #[test]
    fn a_new_node_has_labels_capacity_addresses_info_and_ready() {
        let node = new_node(&config(), &facts(), &up(), at(0));
        assert_eq!(node.metadata.name.as_deref(), Some("edge-1"));
        assert_eq!(node.metadata.labels[LABEL_HOSTNAME], "edge-1");
        assert_eq!(node.metadata.labels[LABEL_OS], "linux");
        assert_eq!(node.metadata.labels[LABEL_ARCH], "amd64");
        let status = node.status.as_ref().unwrap();
        assert_eq!(status.capacity["cpu"], Quantity::from_units(4));
        assert_eq!(status.capacity["memory"].as_units(), 8 * 1024 * 1024 * 1024);
        assert_eq!(status.capacity["pods"], Quantity::from_units(110));
        assert_eq!(status.allocatable, status.capacity);
        assert_eq!(
            status.addresses,
            vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: "10.0.0.5".into()
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: "host-a".into()
                },
            ]
        );
        let info = status.node_info.as_ref().unwrap();
        assert_eq!(info.container_runtime_version, "docker://20.10.24");
        assert_eq!(info.architecture, "amd64");
        assert!(info.kubelet_version.starts_with('v'));
        let ready = ready(&node);
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_heartbeat_time, Some(at(0)));
        assert_eq!(ready.last_transition_time, Some(at(0)));
        assert!(skiff_api::validation::validate_node(&node).is_empty());
    }

    #[test]
    fn the_transition_time_moves_only_when_ready_flips() {
        let mut node = new_node(&config(), &facts(), &up(), at(0));
        apply_status(&mut node, &config(), &facts(), &up(), at(10));
        let c = ready(&node);
        assert_eq!(
            (c.last_heartbeat_time, c.last_transition_time),
            (Some(at(10)), Some(at(0)))
        );

        let down = RuntimeHealth::Down("connection refused".into());
        apply_status(&mut node, &config(), &facts(), &down, at(20));
        let c = ready(&node);
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some(REASON_NOT_READY));
        assert!(c.message.unwrap().contains("connection refused"));
        assert_eq!(c.last_transition_time, Some(at(20)));
        // The runtime version reported while it answered stays.
        assert_eq!(
            node.status
                .as_ref()
                .unwrap()
                .node_info
                .as_ref()
                .unwrap()
                .container_runtime_version,
            "docker://20.10.24"
        );

        // The node lifecycle controller marked it Unknown meanwhile: back to True is a flip.
        apply_status(&mut node, &config(), &facts(), &up(), at(30));
        let status = node.status.as_mut().unwrap();
        status.conditions[0].status = "Unknown".into();
        status.conditions.push(NodeCondition {
            type_: "MemoryPressure".into(),
            status: "False".into(),
            ..NodeCondition::default()
        });
        apply_status(&mut node, &config(), &facts(), &up(), at(40));
        let c = ready(&node);
        assert_eq!(
            (c.status.as_str(), c.last_transition_time),
            ("True", Some(at(40)))
        );
        assert_eq!(node.status.as_ref().unwrap().conditions.len(), 2);
    }

    #[test]
    fn labels_are_added_and_others_kept() {
        let mut node = Node::default();
        node.metadata.labels.insert("zone".into(), "a".into());
        node.metadata
            .labels
            .insert(LABEL_OS.into(), "windows".into());
        let labels = node_labels("edge-1", &facts());
        assert!(apply_labels(&mut node, &labels));
        assert!(!apply_labels(&mut node, &labels));
        assert_eq!(node.metadata.labels.len(), 4);
        assert_eq!(node.metadata.labels[LABEL_OS], "linux");
    }

    fn reporter(api: &FakeControlplane) -> NodeReporter<FakeControlplane, FakeRuntime> {
        NodeReporter::new(api.clone(), Arc::new(FakeRuntime::new()), config(), facts())
    }

    #[tokio::test]
    async fn registers_once_labels_an_existing_node_and_heartbeats_through_conflicts() {
        let api = FakeControlplane::default();
        let reporter = reporter(&api);
        reporter.register().await.unwrap();
        let node = api.node("edge-1").unwrap();
        assert_eq!(ready(&node).status, "True");
        // Registering again changes nothing.
        reporter.register().await.unwrap();
        assert_eq!(api.calls_like("POST"), 1);
        assert_eq!(api.calls_like("PUT nodes/edge-1"), 0);

        // Someone removed a label: registration puts it back, keeping the status.
        {
            let mut state = api.state();
            let node = state.nodes.get_mut("edge-1").unwrap();
            node.metadata.labels.remove(LABEL_ARCH);
        }
        reporter.register().await.unwrap();
        let node = api.node("edge-1").unwrap();
        assert_eq!(node.metadata.labels[LABEL_ARCH], "amd64");
        assert!(node.status.is_some());

        // Two concurrent writers: the heartbeat re-reads and succeeds on the third try.
        api.state().races = 2;
        reporter.heartbeat().await.unwrap();
        assert_eq!(api.calls_like("PUT nodes/edge-1/status"), 3);
        api.state().races = MAX_CONFLICT_RETRIES + 1;
        assert!(matches!(
            reporter.heartbeat().await,
            Err(StatusError::Conflicts { .. })
        ));

        api.state().nodes.clear();
        assert!(matches!(
            reporter.heartbeat().await,
            Err(StatusError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn run_registers_again_after_the_node_is_deleted_and_survives_an_outage() {
        let api = FakeControlplane::default();
        let mut config = config();
        config.interval = Duration::from_millis(10);
        config.retry_base = Duration::from_millis(5);
        api.state().down = true;
        let reporter =
            NodeReporter::new(api.clone(), Arc::new(FakeRuntime::new()), config, facts());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(reporter.run(shutdown.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let wait = |what: &'static str, check: &dyn Fn() -> bool| {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            check()
        };
        while !wait("retries", &|| api.calls().len() >= 3) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        api.state().down = false;
        while !wait("a heartbeat", &|| {
            api.calls_like("PUT nodes/edge-1/status") >= 2
        }) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        api.state().nodes.clear();
        while !wait("a new registration", &|| api.node("edge-1").is_some()) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(api.calls_like("POST nodes/edge-1"), 2);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
