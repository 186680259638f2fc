//! Where an HTTP or TCP probe connects: host and port from the action and the [`ProbeTarget`].

use std::net::{IpAddr, Ipv4Addr};

use skiff_api::types::{ContainerPort, IntOrString};

use super::ProbeTarget;

/// Why a probe's address could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A numeric port outside 1..=65535.
    #[error("port {0} is out of range")]
    PortOutOfRange(i64),
    /// A port name that no container port carries.
    #[error("no container port named {0:?}")]
    UnknownPortName(String),
    /// No explicit host, no pod IP and the port is not published on the host.
    #[error("the pod has no IP yet and port {0} is not published on the host")]
    NoAddress(u16),
}

/// A host (IP literal or DNS name, without brackets) and a port to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The host, as given or as an IP literal.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl Endpoint {
    /// The host as it goes into a URL authority (IPv6 literals in brackets).
    pub fn url_host(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.host.clone(),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.url_host(), self.port)
    }
}

/// Resolves a probe port (number, or container port name) against the container's ports. Like
/// Kubernetes, a name that matches no port but parses as a number is used as that number.
pub(crate) fn resolve_port(
    port: &IntOrString,
    ports: &[ContainerPort],
) -> Result<u16, TargetError> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            match ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
            {
                Some(p) => i64::from(p.container_port),
                None => name
                    .parse::<i64>()
                    .map_err(|_| TargetError::UnknownPortName(name.clone()))?,
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(TargetError::PortOutOfRange(number))
}

/// The endpoint a probe connects to: an explicit `host` with the container port; else the pod IP
/// with the container port; else, when the port is published, 127.0.0.1 with the host port.
pub(crate) fn resolve_endpoint(
    host: Option<&str>,
    port: &IntOrString,
    target: &ProbeTarget,
) -> Result<Endpoint, TargetError> {
    let port = resolve_port(port, &target.ports)?;
    let explicit = host
        .map(|h| h.trim().trim_start_matches('[').trim_end_matches(']'))
        .filter(|h| !h.is_empty());
    if let Some(host) = explicit {
        return Ok(Endpoint {
            host: host.to_string(),
            port,
        });
    }
    if let Some(ip) = target.pod_ip {
        return Ok(Endpoint {
            host: ip.to_string(),
            port,
        });
    }
    match target.host_ports.get(&i32::from(port)) {
        Some(host_port) if *host_port != 0 => Ok(Endpoint {
            host: Ipv4Addr::LOCALHOST.to_string(),
            port: *host_port,
        }),
        _ => Err(TargetError::NoAddress(port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, port: i32) -> ContainerPort {
        ContainerPort {
            name: Some(name.into()),
            container_port: port,
            ..ContainerPort::default()
        }
    }

    #[test]
    fn ports_resolve_by_number_and_name() {
        let ports = [named("http", 8080), named("metrics", 9090)];
        assert_eq!(resolve_port(&IntOrString::Int(80), &ports), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("metrics".into()), &ports),
            Ok(9090)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("81".into()), &ports),
            Ok(81)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("admin".into()), &ports),
            Err(TargetError::UnknownPortName("admin".into()))
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(70000), &ports),
            Err(TargetError::PortOutOfRange(70000))
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(0), &ports),
            Err(TargetError::PortOutOfRange(0))
        );
    }

    #[test]
    fn host_is_explicit_then_pod_ip_then_published_port() {
        let mut target = ProbeTarget {
            pod_ip: Some("172.17.0.5".parse().unwrap()),
            ..ProbeTarget::default()
        };
        target.host_ports.insert(80, 30080);
        let port = IntOrString::Int(80);
        assert_eq!(
            resolve_endpoint(Some("example.test"), &port, &target)
                .unwrap()
                .to_string(),
            "example.test:80"
        );
        assert_eq!(
            resolve_endpoint(Some(""), &port, &target)
                .unwrap()
                .to_string(),
            "172.17.0.5:80"
        );
        target.pod_ip = None;
        assert_eq!(
            resolve_endpoint(None, &port, &target).unwrap().to_string(),
            "127.0.0.1:30080"
        );
        assert_eq!(
            resolve_endpoint(None, &IntOrString::Int(81), &target),
            Err(TargetError::NoAddress(81))
        );
        target.pod_ip = Some("fd00::5".parse().unwrap());
        assert_eq!(
            resolve_endpoint(None, &port, &target).unwrap().to_string(),
            "[fd00::5]:80"
        );
    }
}
