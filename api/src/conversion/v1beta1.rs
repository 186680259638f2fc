//! The 2014 legacy `ContainerManifest` (`version: v1beta1`) and its conversion to and from a Pod.
//!
//! A manifest is what early kubelets read from their manifest directory: an `id`, a list of
//! containers with `memory` in bytes and `cpu` in millicores, volumes with a `source`, and a
//! restart policy written as `{always: {}}`. It is only an input format: it converts into a
//! core/v1 [`Pod`], and [`pod_to_manifest`] converts back what the legacy format can hold.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConversionError;
use crate::defaults;
use crate::types::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction, HostPathVolumeSource,
    HttpGetAction, IntOrString, ObjectMeta, Pod, PodSpec, Probe, Quantity, ResourceRequirements,
    TcpSocketAction, Volume, VolumeMount, values,
};

/// The only `version` a legacy manifest may carry.
pub const VERSION: &str = "v1beta1";

/// A legacy pod description: `version: v1beta1`, `id`, `containers`, `volumes`, …
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerManifest {
    /// Always `v1beta1`.
    #[serde(default)]
    pub version: String,
    /// The pod's name.
    #[serde(default)]
    pub id: String,
    /// The pod's UID, when the author fixed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The containers.
    #[serde(default)]
    pub containers: Vec<ManifestContainer>,
    /// The volumes the containers may mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ManifestVolume>,
    /// `{always: {}}`, `{onFailure: {}}` or `{never: {}}` (plain names accepted too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// Run in the host's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
}

/// One container of a legacy manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestContainer {
    /// Name, unique within the manifest.
    #[serde(default)]
    pub name: String,
    /// Image reference.
    #[serde(default)]
    pub image: String,
    /// Entrypoint override.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Ports, same shape as core/v1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Environment variables, same shape as core/v1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// CPU limit in millicores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Where volumes are mounted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<ManifestVolumeMount>,
    /// Restart the container when this probe fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<ManifestProbe>,
    /// `PullAlways`, `PullNever` or `PullIfNotPresent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
}

/// A volume mount of a legacy container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestVolumeMount {
    /// Name of the manifest volume.
    #[serde(default)]
    pub name: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Path inside the container (the oldest manifests called it `path`).
    #[serde(default, alias = "path")]
    pub mount_path: String,
}

/// A legacy liveness probe: one handler plus delay and timeout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestProbe {
    /// Send an HTTP GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<ManifestHttpGet>,
    /// Open a TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<ManifestTcpSocket>,
    /// Run a command in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// Seconds after start before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds before an attempt counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
}

/// A legacy HTTP probe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestHttpGet {
    /// Path to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port number or name.
    #[serde(default)]
    pub port: IntOrString,
    /// Host to connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A legacy TCP probe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestTcpSocket {
    /// Port number or name.
    #[serde(default)]
    pub port: IntOrString,
}

/// A legacy volume: a name and where its content comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestVolume {
    /// Name the mounts refer to.
    #[serde(default)]
    pub name: String,
    /// The content; none means an empty directory, as in the legacy API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ManifestVolumeSource>,
}

/// Exactly one of a host directory or an empty directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestVolumeSource {
    /// A directory of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_dir: Option<HostDir>,
    /// A scratch directory for the pod's lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDir>,
}

/// A host directory source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostDir {
    /// Path on the host.
    #[serde(default)]
    pub path: String,
}

/// An empty directory source; it has no settings, written `emptyDir: {}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyDir {}

/// When containers are restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Whatever the exit code.
    Always,
    /// After a non-zero exit.
    OnFailure,
    /// Never.
    Never,
}

impl RestartPolicy {
    /// The legacy map key: `always`, `onFailure`, `never`.
    pub fn legacy_key(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "onFailure",
            RestartPolicy::Never => "never",
        }
    }

    /// The core/v1 value: `Always`, `OnFailure`, `Never`.
    pub fn v1_name(self) -> &'static str {
        match self {
            RestartPolicy::Always => values::RESTART_ALWAYS,
            RestartPolicy::OnFailure => values::RESTART_ON_FAILURE,
            RestartPolicy::Never => values::RESTART_NEVER,
        }
    }

    /// Reads a legacy key or a core/v1 name, in any letter case.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "always" => Some(RestartPolicy::Always),
            "onfailure" => Some(RestartPolicy::OnFailure),
            "never" => Some(RestartPolicy::Never),
            _ => None,
        }
    }
}

impl Serialize for RestartPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.legacy_key(), &EmptyDir {})?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for RestartPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Either `Always` or `{always: {}}`.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Map(BTreeMap<String, serde_json::Value>),
        }
        let name = match Raw::deserialize(deserializer)? {
            Raw::Name(name) => name,
            Raw::Map(map) => {
                let mut keys = map.into_keys();
                match (keys.next(), keys.next()) {
                    (Some(key), None) => key,
                    _ => {
                        return Err(D::Error::custom(
                            "restartPolicy must have exactly one of always, onFailure, never",
                        ));
                    }
                }
            }
        };
        RestartPolicy::from_name(&name).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown restartPolicy {name:?}; expected always, onFailure or never"
            ))
        })
    }
}

/// When images are pulled, as the legacy API spelled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    /// Pull before every start.
    #[serde(alias = "Always")]
    PullAlways,
    /// Never pull.
    #[serde(alias = "Never")]
    PullNever,
    /// Pull when missing.
    #[serde(alias = "IfNotPresent")]
    PullIfNotPresent,
}

impl PullPolicy {
    /// The core/v1 value.
    pub fn v1_name(self) -> &'static str {
        match self {
            PullPolicy::PullAlways => values::PULL_ALWAYS,
            PullPolicy::PullNever => values::PULL_NEVER,
            PullPolicy::PullIfNotPresent => values::PULL_IF_NOT_PRESENT,
        }
    }

    /// From the core/v1 value.
    pub fn from_v1(name: &str) -> Option<Self> {
        match name {
            values::PULL_ALWAYS => Some(PullPolicy::PullAlways),
            values::PULL_NEVER => Some(PullPolicy::PullNever),
            values::PULL_IF_NOT_PRESENT => Some(PullPolicy::PullIfNotPresent),
            _ => None,
        }
    }
}

/// Converts a legacy manifest into a core/v1 Pod, mapping every field.
///
/// `id` → `metadata.name`, `uuid` → `metadata.uid`, `memory` → `limits.memory` (bytes),
/// `cpu` → `limits.cpu` (millicores), `source.hostDir` → `hostPath`, no source or
/// `source.emptyDir` → `emptyDir`. The pod is not defaulted.
pub fn manifest_to_pod(manifest: &ContainerManifest) -> Result<Pod, ConversionError> {
    if manifest.version != VERSION {
        return Err(ConversionError::UnsupportedVersion(
            manifest.version.clone(),
        ));
    }
    let volumes = manifest
        .volumes
        .iter()
        .map(volume_to_v1)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pod {
        api_version: "v1".to_string(),
        kind: "Pod".to_string(),
        metadata: ObjectMeta {
            name: Some(manifest.id.clone()).filter(|id| !id.is_empty()),
            uid: manifest.uuid.clone(),
            ..ObjectMeta::default()
        },
        spec: PodSpec {
            volumes,
            containers: manifest.containers.iter().map(container_to_v1).collect(),
            restart_policy: manifest.restart_policy.map(|p| p.v1_name().to_string()),
            host_network: manifest.host_network,
            ..PodSpec::default()
        },
        status: None,
    })
}

/// Converts a legacy volume; a source with both kinds set is an error.
fn volume_to_v1(volume: &ManifestVolume) -> Result<Volume, ConversionError> {
    let mut v1 = Volume {
        name: volume.name.clone(),
        ..Volume::default()
    };
    match &volume.source {
        None => v1.empty_dir = Some(EmptyDirVolumeSource::default()),
        Some(source) => {
            if source.host_dir.is_some() && source.empty_dir.is_some() {
                return Err(ConversionError::InvalidManifest {
                    field: format!("volumes[{}].source", volume.name),
                    reason: "may not specify both hostDir and emptyDir".to_string(),
                });
            }
            v1.host_path = source.host_dir.as_ref().map(|dir| HostPathVolumeSource {
                path: dir.path.clone(),
                type_: None,
            });
            v1.empty_dir = source
                .empty_dir
                .as_ref()
                .map(|_| EmptyDirVolumeSource::default());
            if v1.host_path.is_none() && v1.empty_dir.is_none() {
                v1.empty_dir = Some(EmptyDirVolumeSource::default());
            }
        }
    }
    Ok(v1)
}

/// Converts a legacy container.
fn container_to_v1(container: &ManifestContainer) -> Container {
    let mut limits = BTreeMap::new();
    if let Some(memory) = container.memory {
        limits.insert("memory".to_string(), Quantity::from_bytes(memory));
    }
    if let Some(cpu) = container.cpu {
        limits.insert("cpu".to_string(), Quantity::from_millis(cpu));
    }
    Container {
        name: container.name.clone(),
        image: container.image.clone(),
        command: container.command.clone(),
        working_dir: container.working_dir.clone(),
        ports: container.ports.clone(),
        env: container.env.clone(),
        resources: (!limits.is_empty()).then(|| ResourceRequirements {
            limits,
            requests: BTreeMap::new(),
        }),
        volume_mounts: container
            .volume_mounts
            .iter()
            .map(|m| VolumeMount {
                name: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only,
            })
            .collect(),
        liveness_probe: container.liveness_probe.as_ref().map(probe_to_v1),
        image_pull_policy: container.image_pull_policy.map(|p| p.v1_name().to_string()),
        ..Container::default()
    }
}

/// Converts a legacy liveness probe.
fn probe_to_v1(probe: &ManifestProbe) -> Probe {
    Probe {
        exec: probe.exec.clone(),
        http_get: probe.http_get.as_ref().map(|h| HttpGetAction {
            path: h.path.clone(),
            port: h.port.clone(),
            host: h.host.clone(),
            ..HttpGetAction::default()
        }),
        tcp_socket: probe.tcp_socket.as_ref().map(|t| TcpSocketAction {
            port: t.port.clone(),
            host: None,
        }),
        initial_delay_seconds: probe.initial_delay_seconds,
        timeout_seconds: probe.timeout_seconds,
        ..Probe::default()
    }
}

/// Converts a Pod back into a legacy manifest, for what the legacy format can hold.
///
/// Fields that change what runs but have no legacy form (args, readiness probes, lifecycle
/// hooks, requests, probe thresholds other than the defaults, HTTPS probes, typed host
/// paths, …) are a [`ConversionError::NotRepresentable`]. Fields that only matter to the API
/// (namespace, labels, annotations, status, nodeName, nodeSelector, hostname, grace period)
/// are dropped.
pub fn pod_to_manifest(pod: &Pod) -> Result<ContainerManifest, ConversionError> {
    let spec = &pod.spec;
    let restart_policy = match spec.restart_policy.as_deref() {
        None => None,
        Some(name) => Some(RestartPolicy::from_name(name).ok_or_else(|| {
            not_representable("spec.restartPolicy", format!("unknown policy {name:?}"))
        })?),
    };
    let containers = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| container_from_v1(c, &format!("spec.containers[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let volumes = spec
        .volumes
        .iter()
        .enumerate()
        .map(|(i, v)| volume_from_v1(v, &format!("spec.volumes[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ContainerManifest {
        version: VERSION.to_string(),
        id: pod.metadata.name.clone().unwrap_or_default(),
        uuid: pod.metadata.uid.clone(),
        containers,
        volumes,
        restart_policy,
        host_network: spec.host_network,
    })
}

/// A [`ConversionError::NotRepresentable`] for `field`.
fn not_representable(field: &str, reason: impl Into<String>) -> ConversionError {
    ConversionError::NotRepresentable {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Converts a core/v1 volume back.
fn volume_from_v1(volume: &Volume, path: &str) -> Result<ManifestVolume, ConversionError> {
    let source = match (&volume.host_path, &volume.empty_dir) {
        (Some(host_path), None) => {
            if host_path.type_.as_deref().is_some_and(|t| !t.is_empty()) {
                return Err(not_representable(
                    &format!("{path}.hostPath.type"),
                    "legacy host directories have no type",
                ));
            }
            ManifestVolumeSource {
                host_dir: Some(HostDir {
                    path: host_path.path.clone(),
                }),
                empty_dir: None,
            }
        }
        (None, Some(empty_dir)) => {
            if empty_dir.medium.as_deref().is_some_and(|m| !m.is_empty())
                || empty_dir.size_limit.is_some()
            {
                return Err(not_representable(
                    &format!("{path}.emptyDir"),
                    "legacy empty directories have no medium or size limit",
                ));
            }
            ManifestVolumeSource {
                host_dir: None,
                empty_dir: Some(EmptyDir {}),
            }
        }
        _ => {
            return Err(not_representable(
                path,
                "a legacy volume has exactly one of hostDir and emptyDir",
            ));
        }
    };
    Ok(ManifestVolume {
        name: volume.name.clone(),
        source: Some(source),
    })
}

/// Converts a core/v1 container back.
fn container_from_v1(c: &Container, path: &str) -> Result<ManifestContainer, ConversionError> {
    let field = |name: &str| format!("{path}.{name}");
    for (name, unset) in [
        ("args", c.args.is_empty()),
        ("readinessProbe", c.readiness_probe.is_none()),
        ("lifecycle", c.lifecycle.is_none()),
    ] {
        if !unset {
            return Err(not_representable(
                &field(name),
                "the legacy format has no such field",
            ));
        }
    }
    let mut memory = None;
    let mut cpu = None;
    if let Some(resources) = &c.resources {
        if !resources.requests.is_empty() {
            return Err(not_representable(
                &field("resources.requests"),
                "the legacy format has limits only",
            ));
        }
        for (name, quantity) in &resources.limits {
            let at = field(&format!("resources.limits[{name}]"));
            match name.as_str() {
                "memory" => {
                    let bytes = quantity.as_units();
                    if Quantity::from_bytes(bytes).cmp_value(quantity).is_ne() {
                        return Err(not_representable(&at, "not a whole number of bytes"));
                    }
                    memory = Some(bytes);
                }
                "cpu" => {
                    let millis = quantity.as_millis();
                    if Quantity::from_millis(millis).cmp_value(quantity).is_ne() {
                        return Err(not_representable(&at, "not a whole number of millicores"));
                    }
                    cpu = Some(millis);
                }
                _ => {
                    return Err(not_representable(
                        &at,
                        "the legacy format limits only memory and cpu",
                    ));
                }
            }
        }
    }
    let image_pull_policy = match c.image_pull_policy.as_deref() {
        None => None,
        Some(name) => Some(PullPolicy::from_v1(name).ok_or_else(|| {
            not_representable(
                &field("imagePullPolicy"),
                format!("unknown policy {name:?}"),
            )
        })?),
    };
    let liveness_probe = match &c.liveness_probe {
        None => None,
        Some(probe) => Some(probe_from_v1(probe, &field("livenessProbe"))?),
    };
    Ok(ManifestContainer {
        name: c.name.clone(),
        image: c.image.clone(),
        command: c.command.clone(),
        working_dir: c.working_dir.clone(),
        ports: c.ports.clone(),
        env: c.env.clone(),
        memory,
        cpu,
        volume_mounts: c
            .volume_mounts
            .iter()
            .map(|m| ManifestVolumeMount {
                name: m.name.clone(),
                read_only: m.read_only,
                mount_path: m.mount_path.clone(),
            })
            .collect(),
        liveness_probe,
        image_pull_policy,
    })
}

/// Converts a core/v1 probe back; thresholds other than the defaults cannot be held.
fn probe_from_v1(probe: &Probe, path: &str) -> Result<ManifestProbe, ConversionError> {
    for (name, value, default) in [
        (
            "periodSeconds",
            probe.period_seconds,
            defaults::PROBE_PERIOD_SECONDS,
        ),
        (
            "successThreshold",
            probe.success_threshold,
            defaults::PROBE_SUCCESS_THRESHOLD,
        ),
        (
            "failureThreshold",
            probe.failure_threshold,
            defaults::PROBE_FAILURE_THRESHOLD,
        ),
    ] {
        if value.is_some_and(|v| v != default) {
            return Err(not_representable(
                &format!("{path}.{name}"),
                format!("the legacy format always uses {default}"),
            ));
        }
    }
    let http_get = match &probe.http_get {
        None => None,
        Some(http) => {
            if http.scheme.as_deref().is_some_and(|s| s != "HTTP") {
                return Err(not_representable(
                    &format!("{path}.httpGet.scheme"),
                    "legacy HTTP probes are plain HTTP",
                ));
            }
            if !http.http_headers.is_empty() {
                return Err(not_representable(
                    &format!("{path}.httpGet.httpHeaders"),
                    "legacy HTTP probes send no headers",
                ));
            }
            Some(ManifestHttpGet {
                path: http.path.clone(),
                port: http.port.clone(),
                host: http.host.clone(),
            })
        }
    };
    let tcp_socket = match &probe.tcp_socket {
        None => None,
        Some(tcp) => {
            if tcp.host.is_some() {
                return Err(not_representable(
                    &format!("{path}.tcpSocket.host"),
                    "legacy TCP probes always target the pod",
                ));
            }
            Some(ManifestTcpSocket {
                port: tcp.port.clone(),
            })
        }
    };
    Ok(ManifestProbe {
        http_get,
        tcp_socket,
        exec: probe.exec.clone(),
        initial_delay_seconds: probe.initial_delay_seconds,
        timeout_seconds: probe.timeout_seconds,
    })
}
