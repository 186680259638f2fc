//! Translation between the runtime's types and the Docker Engine API models.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, HostConfig,
    PortBinding as DockerPortBinding,
};
use chrono::{DateTime, Datelike, Utc};

use crate::runtime::{ContainerConfig, ContainerInfo, ContainerState};

/// The create request body for `config`.
pub(super) fn create_body(config: &ContainerConfig) -> ContainerCreateBody {
    let mut port_bindings: HashMap<String, Option<Vec<DockerPortBinding>>> = HashMap::new();
    for binding in &config.port_bindings {
        let key = format!("{}/{}", binding.container_port, binding.protocol);
        port_bindings
            .entry(key)
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(DockerPortBinding {
                host_ip: binding.host_ip.map(|ip| ip.to_string()),
                host_port: Some(if binding.host_port == 0 {
                    String::new()
                } else {
                    binding.host_port.to_string()
                }),
            });
    }
    let exposed_ports: Vec<String> = {
        let mut keys: Vec<String> = port_bindings.keys().cloned().collect();
        keys.sort();
        keys
    };
    let binds: Vec<String> = config
        .binds
        .iter()
        .map(|bind| {
            let mut spec = format!("{}:{}", bind.host_path.display(), bind.container_path);
            if bind.read_only {
                spec.push_str(":ro");
            }
            spec
        })
        .collect();
    let host_config = HostConfig {
        network_mode: Some(config.network_mode.to_string()),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        binds: (!binds.is_empty()).then_some(binds),
        memory: config.memory_limit_bytes,
        nano_cpus: config.nano_cpus,
        cpu_shares: config.cpu_shares,
        extra_hosts: (!config.extra_hosts.is_empty()).then(|| {
            config
                .extra_hosts
                .iter()
                .map(|(host, ip)| format!("{host}:{ip}"))
                .collect()
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(config.image.docker_name()),
        entrypoint: config.command.clone(),
        cmd: config.args.clone(),
        env: (!config.env.is_empty()).then(|| {
            config
                .env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect()
        }),
        working_dir: config.working_dir.clone(),
        labels: Some(
            config
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        stop_signal: config.stop_signal.clone(),
        hostname: config.hostname.clone(),
        tty: Some(config.tty),
        open_stdin: Some(config.open_stdin),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// A Docker timestamp, or `None` for Docker's "never" (`0001-01-01T00:00:00Z`) and garbage.
pub(super) fn parse_time(value: Option<&str>) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(value?)
        .ok()?
        .with_timezone(&Utc);
    (parsed.year() > 1).then_some(parsed)
}

/// What the runtime reports for an inspected container.
pub(super) fn container_info(inspect: ContainerInspectResponse) -> ContainerInfo {
    let docker_state = inspect.state.unwrap_or_default();
    let started_at = parse_time(docker_state.started_at.as_deref());
    let finished_at = parse_time(docker_state.finished_at.as_deref());
    let exit_code = docker_state.exit_code.unwrap_or(0);
    let state = match docker_state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerStateStatusEnum::EXITED) => ContainerState::Exited {
            exit_code,
            finished_at,
        },
        Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
        Some(other) => ContainerState::Unknown(other.to_string()),
        None => ContainerState::Unknown(String::new()),
    };
    let ended = matches!(state, ContainerState::Exited { .. } | ContainerState::Dead);
    let config = inspect.config.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let ip_address = inspect
        .network_settings
        .and_then(|settings| settings.networks)
        .and_then(|networks| {
            let bridge = networks
                .get("bridge")
                .and_then(|n| n.ip_address.clone())
                .filter(|ip| !ip.is_empty());
            bridge.or_else(|| {
                let mut names: Vec<&String> = networks.keys().collect();
                names.sort();
                names.into_iter().find_map(|name| {
                    networks[name]
                        .ip_address
                        .clone()
                        .filter(|ip| !ip.is_empty())
                })
            })
        })
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    ContainerInfo {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        restart_count: ContainerInfo::restart_count_from(&labels),
        labels,
        image: config.image.unwrap_or_default(),
        image_id: inspect.image.unwrap_or_default(),
        state,
        created_at: parse_time(inspect.created.as_deref()),
        started_at,
        finished_at,
        exit_code: ended.then_some(exit_code),
        oom_killed: docker_state.oom_killed.unwrap_or(false),
        error: docker_state.error.filter(|e| !e.is_empty()),
        ip_address,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use bollard::models::{
        ContainerConfig as DockerConfig, ContainerState as DockerState, EndpointSettings,
        NetworkSettings,
    };

    use super::*;
    use crate::runtime::{BindMount, ImageRef, NetworkMode, PortBinding, Protocol, labels};

    #[test]
    fn create_body_carries_every_field() {
        let mut config = ContainerConfig::new(
            "skiff_POD_web_default_1234abcd_0",
            ImageRef::parse("busybox").unwrap(),
        );
        config.command = Some(vec!["/bin/sh".into()]);
        config.args = Some(vec!["-c".into(), "sleep 1".into()]);
        config.env = vec![("A".into(), "1".into())];
        config.labels.insert(labels::POD_NAME.into(), "web".into());
        config.network_mode = NetworkMode::Container("abc".into());
        config.port_bindings = vec![PortBinding {
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8080,
        }];
        config.binds = vec![BindMount {
            host_path: PathBuf::from("/data"),
            container_path: "/mnt".into(),
            read_only: true,
        }];
        config.memory_limit_bytes = Some(64 << 20);
        config.extra_hosts = vec![("db".into(), "10.0.0.1".into())];
        let body = create_body(&config);
        assert_eq!(
            body.image.as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(body.entrypoint, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(body.exposed_ports, Some(vec!["80/tcp".to_string()]));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:abc"));
        assert_eq!(host.binds, Some(vec!["/data:/mnt:ro".to_string()]));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.1".to_string()]));
        let bindings = host.port_bindings.unwrap();
        let binding = &bindings["80/tcp"].as_ref().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("8080"));
    }

    #[test]
    fn container_info_from_inspect() {
        let inspect = ContainerInspectResponse {
            id: Some("abc".into()),
            name: Some("/skiff_web".into()),
            image: Some("sha256:1".into()),
            created: Some("2024-05-01T10:00:00.123456789Z".into()),
            state: Some(DockerState {
                status: Some(ContainerStateStatusEnum::EXITED),
                exit_code: Some(137),
                started_at: Some("2024-05-01T10:00:01Z".into()),
                finished_at: Some("2024-05-01T10:00:02Z".into()),
                oom_killed: Some(true),
                error: Some(String::new()),
                ..Default::default()
            }),
            config: Some(DockerConfig {
                image: Some("docker.io/library/busybox:latest".into()),
                labels: Some(HashMap::from([(labels::RESTART_COUNT.into(), "4".into())])),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([(
                    "bridge".into(),
                    EndpointSettings {
                        ip_address: Some("172.17.0.3".into()),
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = container_info(inspect);
        assert_eq!(info.name, "skiff_web");
        assert_eq!(info.restart_count, 4);
        assert_eq!(info.exit_code, Some(137));
        assert!(info.oom_killed);
        assert_eq!(info.error, None);
        assert_eq!(info.ip_address, Some("172.17.0.3".parse().unwrap()));
        assert!(matches!(
            info.state,
            ContainerState::Exited {
                exit_code: 137,
                finished_at: Some(_)
            }
        ));
        assert!(info.created_at.is_some());
        assert_eq!(parse_time(Some("0001-01-01T00:00:00Z")), None);
    }
}
