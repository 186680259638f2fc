//! Pod spec → runtime [`ContainerConfig`]: the infra container that holds the pod's network
//! namespace and host ports, and the application containers that join it.

use std::net::IpAddr;

use skiff_api::types::{Container, ContainerPort, Pod};

use super::config::PodManagerConfig;
use super::identity::PodKey;
use super::volumes::{self, MountError};
use crate::runtime::{
    ContainerConfig, ImageRef, NetworkMode, PortBinding, Protocol, labels::INFRA_CONTAINER_NAME,
};

/// Longest hostname Docker and DNS accept.
const MAX_HOSTNAME: usize = 63;

/// The infra container of `pod`: the infra image and command, every host port of every
/// container bound on it, the pod's hostname.
pub fn infra_config(
    config: &PodManagerConfig,
    key: &PodKey,
    pod: &Pod,
    image: ImageRef,
    hash: &str,
    attempt: u32,
) -> ContainerConfig {
    let mut infra = ContainerConfig::new(key.container_name(INFRA_CONTAINER_NAME, attempt), image);
    infra.command = config.infra_command.clone().filter(|c| !c.is_empty());
    infra.labels = key.labels(&config.node_name, INFRA_CONTAINER_NAME, hash, attempt);
    infra.network_mode = NetworkMode::Bridge;
    infra.port_bindings = host_port_bindings(pod);
    let hostname = pod
        .spec
        .hostname
        .clone()
        .unwrap_or_else(|| key.name.clone());
    infra.hostname = Some(hostname.chars().take(MAX_HOSTNAME).collect());
    infra
}

/// Application container `container` of `pod`, joined to `network`.
#[allow(clippy::too_many_arguments)]
pub fn app_config(
    config: &PodManagerConfig,
    key: &PodKey,
    pod: &Pod,
    container: &Container,
    image: ImageRef,
    hash: &str,
    restart_count: u32,
    network: NetworkMode,
) -> Result<ContainerConfig, MountError> {
    let mut app = ContainerConfig::new(key.container_name(&container.name, restart_count), image);
    app.command = (!container.command.is_empty()).then(|| container.command.clone());
    app.args = (!container.args.is_empty()).then(|| container.args.clone());
    app.env = container
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    app.working_dir = container.working_dir.clone().filter(|d| !d.is_empty());
    app.labels = key.labels(&config.node_name, &container.name, hash, restart_count);
    if network == NetworkMode::Host {
        // Host-network pods have no infra container: their ports are the host's already.
        app.hostname = None;
    }
    app.network_mode = network;
    app.binds = volumes::bind_mounts(&config.data_dir, &key.uid, &pod.spec, container)?;
    if let Some(resources) = &container.resources {
        app.memory_limit_bytes = resources
            .limits
            .get("memory")
            .map(|q| q.as_units())
            .filter(|b| *b > 0);
        app.nano_cpus = resources
            .limits
            .get("cpu")
            .map(|q| q.as_millis().saturating_mul(1_000_000))
            .filter(|n| *n > 0);
    }
    Ok(app)
}

/// The host port bindings of every container port of `pod` that asks for a host port.
pub fn host_port_bindings(pod: &Pod) -> Vec<PortBinding> {
    pod.spec
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter_map(port_binding)
        .collect()
}

/// The binding of one port, if it names a host port.
fn port_binding(port: &ContainerPort) -> Option<PortBinding> {
    let host_port = u16::try_from(port.host_port?).ok().filter(|p| *p > 0)?;
    Some(PortBinding {
        container_port: u16::try_from(port.container_port).ok()?,
        protocol: protocol(port.protocol.as_deref()),
        host_ip: port
            .host_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok()),
        host_port,
    })
}

/// The runtime protocol of a Kubernetes protocol name (TCP when unset or unknown).
fn protocol(name: Option<&str>) -> Protocol {
    match name.map(str::to_ascii_uppercase).as_deref() {
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use skiff_api::types::{EnvVar, ObjectMeta, PodSpec, Quantity, ResourceRequirements};

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("0123456789".into()),
                ..Default::default()
            },
            spec: PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: "busybox:1".into(),
                    command: vec!["sh".into()],
                    args: vec!["-c".into(), "sleep 1".into()],
                    working_dir: Some("/tmp".into()),
                    env: vec![EnvVar {
                        name: "A".into(),
                        value: None,
                    }],
                    ports: vec![
                        ContainerPort {
                            container_port: 80,
                            host_port: Some(8080),
                            protocol: Some("TCP".into()),
                            host_ip: Some("127.0.0.1".into()),
                            ..Default::default()
                        },
                        ContainerPort {
                            container_port: 53,
                            protocol: Some("UDP".into()),
                            ..Default::default()
                        },
                    ],
                    resources: Some(ResourceRequirements {
                        limits: BTreeMap::from([
                            ("memory".into(), "64Mi".parse::<Quantity>().unwrap()),
                            ("cpu".into(), "250m".parse::<Quantity>().unwrap()),
                        ]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn infra_holds_the_host_ports() {
        let config = PodManagerConfig::new("n1", "pause:1", "/data");
        let pod = pod();
        let key = PodKey::of(&pod);
        let image = ImageRef::parse("pause:1").unwrap();
        let infra = infra_config(&config, &key, &pod, image, "h", 0);
        assert_eq!(infra.name, "skiff_POD_web_default_01234567_0");
        assert_eq!(infra.hostname.as_deref(), Some("web"));
        assert_eq!(
            infra.port_bindings,
            vec![PortBinding {
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 8080,
            }]
        );
    }

    #[test]
    fn app_maps_command_env_and_limits() {
        let config = PodManagerConfig::new("n1", "pause:1", "/data");
        let pod = pod();
        let key = PodKey::of(&pod);
        let c = &pod.spec.containers[0];
        let image = ImageRef::parse(&c.image).unwrap();
        let network = NetworkMode::Container("infra".into());
        let app = app_config(&config, &key, &pod, c, image, "h", 3, network.clone()).unwrap();
        assert_eq!(app.name, "skiff_app_web_default_01234567_3");
        assert_eq!(app.command, Some(vec!["sh".to_string()]));
        assert_eq!(app.args.as_ref().unwrap().len(), 2);
        assert_eq!(app.env, vec![("A".to_string(), String::new())]);
        assert_eq!(app.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(app.network_mode, network);
        assert_eq!(app.memory_limit_bytes, Some(64 << 20));
        assert_eq!(app.nano_cpus, Some(250_000_000));
        assert_eq!(app.labels[crate::runtime::labels::RESTART_COUNT], "3");
        assert!(app.port_bindings.is_empty());
    }
}
