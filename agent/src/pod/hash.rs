//! Spec hashes: a container whose hash label differs from its spec's hash is replaced; one
//! whose hash matches is left alone (also across agent restarts).
//!
//! The hash covers only the fields that change what runs. Probes, lifecycle hooks, pull policy
//! and the infra container's id are not part of it, so editing them restarts nothing.
//!
//! The sandbox (infra container) hash covers the pod's network settings only, not the agent's
//! `--pod-infra-image` / `--pod-infra-command`: changing those, or upgrading the agent (whose
//! default infra image is versioned), keeps every running pod; new sandboxes use the new image.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use skiff_api::types::{Container, ContainerPort, PodSpec, Quantity};

/// The hashed view of one application container.
#[derive(Serialize)]
struct HashedContainer<'a> {
    /// The image as written.
    image: &'a str,
    /// Entrypoint override.
    command: &'a [String],
    /// Cmd override.
    args: &'a [String],
    /// Environment, in order.
    env: Vec<(&'a str, &'a str)>,
    /// Working directory.
    working_dir: Option<&'a str>,
    /// Declared ports (host ports decide the infra container's bindings).
    ports: &'a [ContainerPort],
    /// Mounts with the volume each one resolves to.
    volume_mounts: Vec<HashedMount<'a>>,
    /// Resource limits.
    limits: &'a BTreeMap<String, Quantity>,
    /// Host network or the pod's own namespace.
    host_network: bool,
}

/// The hashed view of one volume mount.
#[derive(Serialize)]
struct HashedMount<'a> {
    /// The volume name.
    name: &'a str,
    /// Where it is mounted.
    mount_path: &'a str,
    /// Read-only or not.
    read_only: bool,
    /// `hostPath:<path>`, `emptyDir` or `missing`.
    source: String,
}

/// The hashed view of the infra container: the pod's network settings, which only a new
/// sandbox can change (the agent-wide infra image and command are left out on purpose).
#[derive(Serialize)]
struct HashedInfra<'a> {
    /// Every port of every container (host ports are bound on the infra container).
    ports: Vec<&'a ContainerPort>,
    /// The pod's hostname.
    hostname: Option<&'a str>,
}

/// The spec hash of application container `container` of a pod with `spec`.
pub fn container_hash(spec: &PodSpec, container: &Container) -> String {
    let no_limits = BTreeMap::new();
    let hashed = HashedContainer {
        image: &container.image,
        command: &container.command,
        args: &container.args,
        env: container
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or("")))
            .collect(),
        working_dir: container.working_dir.as_deref(),
        ports: &container.ports,
        volume_mounts: container
            .volume_mounts
            .iter()
            .map(|m| HashedMount {
                name: &m.name,
                mount_path: &m.mount_path,
                read_only: m.read_only.unwrap_or(false),
                source: volume_source(spec, &m.name),
            })
            .collect(),
        limits: container
            .resources
            .as_ref()
            .map_or(&no_limits, |r| &r.limits),
        host_network: spec.host_network.unwrap_or(false),
    };
    digest(&hashed)
}

/// The spec hash of the infra container of a pod with `spec`. The infra image and command
/// are taken for the signature's sake only and do not change the hash: a running sandbox is
/// kept when the agent's infra settings change.
pub fn infra_hash(spec: &PodSpec, infra_image: &str, infra_command: Option<&[String]>) -> String {
    let _ = (infra_image, infra_command);
    let hashed = HashedInfra {
        ports: spec.containers.iter().flat_map(|c| &c.ports).collect(),
        hostname: spec.hostname.as_deref(),
    };
    digest(&hashed)
}

/// What volume `name` is, for the hash (data_dir paths are deliberately left out).
fn volume_source(spec: &PodSpec, name: &str) -> String {
    match spec.volumes.iter().find(|v| v.name == name) {
        Some(v) => match (&v.host_path, &v.empty_dir) {
            (Some(host), _) => format!("hostPath:{}", host.path),
            (None, Some(_)) => "emptyDir".to_string(),
            (None, None) => "unknown".to_string(),
        },
        None => "missing".to_string(),
    }
}

/// Hex sha256 of the JSON of `value` (struct field order makes it deterministic).
fn digest(value: &impl Serialize) -> String {
    // Serializing plain structs, strings and maps with string keys cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::types::{EnvVar, Probe, ResourceRequirements};

    fn container() -> Container {
        Container {
            name: "app".into(),
            image: "busybox:1".into(),
            command: vec!["sleep".into(), "100".into()],
            ..Default::default()
        }
    }

    #[test]
    fn hash_changes_with_what_runs_only() {
        let spec = PodSpec::default();
        let base = container_hash(&spec, &container());
        assert_eq!(base.len(), 64);
        assert_eq!(base, container_hash(&spec, &container()), "deterministic");

        let mut probe_only = container();
        probe_only.liveness_probe = Some(Probe::default());
        probe_only.image_pull_policy = Some("Always".into());
        assert_eq!(base, container_hash(&spec, &probe_only));

        let mut image = container();
        image.image = "busybox:2".into();
        assert_ne!(base, container_hash(&spec, &image));

        let mut env = container();
        env.env.push(EnvVar {
            name: "A".into(),
            value: Some("1".into()),
        });
        assert_ne!(base, container_hash(&spec, &env));

        let mut limits = container();
        limits.resources = Some(ResourceRequirements {
            limits: BTreeMap::from([("memory".into(), Quantity::from_bytes(1 << 20))]),
            ..Default::default()
        });
        assert_ne!(base, container_hash(&spec, &limits));

        let host = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        assert_ne!(base, container_hash(&host, &container()));
    }

    #[test]
    fn infra_hash_follows_ports_and_hostname() {
        let mut spec = PodSpec {
            containers: vec![container()],
            ..Default::default()
        };
        let a = infra_hash(&spec, "pause:1", None);
        assert_eq!(a.len(), 64);
        assert_eq!(a, infra_hash(&spec, "pause:1", None), "deterministic");
        let mut ports = spec.clone();
        ports.containers[0].ports.push(ContainerPort {
            container_port: 80,
            host_port: Some(8080),
            ..Default::default()
        });
        assert_ne!(a, infra_hash(&ports, "pause:1", None));
        spec.hostname = Some("web-0".into());
        assert_ne!(a, infra_hash(&spec, "pause:1", None));
    }

    #[test]
    fn infra_image_and_command_do_not_change_the_sandbox_hash() {
        let spec = PodSpec {
            containers: vec![container()],
            ..Default::default()
        };
        let a = infra_hash(&spec, "pause:1", None);
        assert_eq!(a, infra_hash(&spec, "pause:2", None), "another image");
        assert_eq!(
            a,
            infra_hash(&spec, "skiff.invalid/pause:9.9.9", None),
            "an upgraded agent's image"
        );
        let sleep = ["sleep".to_string(), "2147483647".to_string()];
        assert_eq!(
            a,
            infra_hash(&spec, "busybox", Some(&sleep)),
            "another command"
        );
    }
}
