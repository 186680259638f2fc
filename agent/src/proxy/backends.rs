//! The pure part of the proxy: which ports a service wants and which endpoints serve each.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use skiff_api::types::{EndpointPort, EndpointSubset, Endpoints, Service, ServicePort};

/// Identifies one listening service port; a change of the listen port is a new key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortKey {
    /// The service's namespace.
    pub namespace: String,
    /// The service's name (also the name of its Endpoints object).
    pub name: String,
    /// The service port's name; empty for a single unnamed port.
    pub port_name: String,
    /// The node port listened on: `nodePort` when set, else `port`.
    pub listen_port: u16,
}

impl ServicePortKey {
    /// `namespace/name`, the service field of log lines.
    pub fn service(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The port's name, or its listen port when unnamed: the port field of log lines.
    pub fn port_label(&self) -> String {
        if self.port_name.is_empty() {
            self.listen_port.to_string()
        } else {
            self.port_name.clone()
        }
    }
}

impl fmt::Display for ServicePortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} port {} ({})",
            self.namespace,
            self.name,
            self.port_label(),
            self.listen_port
        )
    }
}

/// What one TCP service port should look like on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredPort {
    /// Which port of which service.
    pub key: ServicePortKey,
    /// The ready endpoints serving it, in the Endpoints object's order, without duplicates.
    pub backends: Vec<SocketAddr>,
    /// True for `sessionAffinity: ClientIP`.
    pub session_affinity: bool,
}

/// A service port the proxy does not serve, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedPort {
    /// The service port's name (may be empty).
    pub port_name: String,
    /// The port number as given.
    pub port: i32,
    /// Why it is skipped, for the log line.
    pub reason: String,
}

/// The TCP ports `service` wants served, with their backends from `endpoints` (None: no
/// Endpoints object yet, so no backends), and the ports skipped (UDP, SCTP, out of range).
pub fn desired_ports(
    service: &Service,
    endpoints: Option<&Endpoints>,
) -> (Vec<DesiredPort>, Vec<SkippedPort>) {
    let namespace = service.metadata.namespace_or_empty().to_string();
    let name = service.metadata.name_or_empty().to_string();
    let session_affinity = service.spec.session_affinity.as_deref() == Some("ClientIP");
    let mut wanted = Vec::new();
    let mut skipped = Vec::new();
    for port in &service.spec.ports {
        let port_name = port.name.clone().unwrap_or_default();
        let skip = |reason: String| SkippedPort {
            port_name: port_name.clone(),
            port: port.port,
            reason,
        };
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        if !protocol.eq_ignore_ascii_case("TCP") {
            skipped.push(skip(format!(
                "protocol {protocol} is not supported, only TCP"
            )));
            continue;
        }
        let listen = port.node_port.filter(|p| *p != 0).unwrap_or(port.port);
        let Some(listen_port) = u16::try_from(listen).ok().filter(|p| *p != 0) else {
            skipped.push(skip(format!("port {listen} is out of range")));
            continue;
        };
        wanted.push(DesiredPort {
            key: ServicePortKey {
                namespace: namespace.clone(),
                name: name.clone(),
                port_name,
                listen_port,
            },
            backends: endpoints
                .map(|e| backends_for_port(port, e))
                .unwrap_or_default(),
            session_affinity,
        });
    }
    (wanted, skipped)
}

/// The ready addresses of `endpoints` that serve `port`, each with the subset's port whose
/// name matches the service port's name (or the subset's only port when one side is unnamed).
/// `notReadyAddresses` never serve traffic.
pub fn backends_for_port(port: &ServicePort, endpoints: &Endpoints) -> Vec<SocketAddr> {
    let wanted = port.name.as_deref().unwrap_or("");
    let mut backends = Vec::new();
    for subset in &endpoints.subsets {
        let Some(target) = subset_port(subset, wanted) else {
            continue;
        };
        for address in &subset.addresses {
            let Ok(ip) = address.ip.parse::<IpAddr>() else {
                continue;
            };
            let backend = SocketAddr::new(ip, target);
            if !backends.contains(&backend) {
                backends.push(backend);
            }
        }
    }
    backends
}

/// The port number of `subset` serving the service port named `wanted`.
fn subset_port(subset: &EndpointSubset, wanted: &str) -> Option<u16> {
    let name_of = |p: &EndpointPort| p.name.clone().unwrap_or_default();
    let by_name = subset.ports.iter().find(|p| name_of(p) == wanted);
    let only = match subset.ports.as_slice() {
        [only] if wanted.is_empty() || name_of(only).is_empty() => Some(only),
        _ => None,
    };
    let port = by_name.or(only)?;
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    if !protocol.eq_ignore_ascii_case("TCP") {
        return None;
    }
    u16::try_from(port.port).ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{EndpointAddress, ObjectMeta, ServiceSpec};

    use super::*;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..Default::default()
        }
    }

    fn sport(name: Option<&str>, port: i32) -> ServicePort {
        ServicePort {
            name: name.map(str::to_string),
            port,
            ..Default::default()
        }
    }

    fn eport(name: Option<&str>, port: i32) -> EndpointPort {
        EndpointPort {
            name: name.map(str::to_string),
            port,
            protocol: None,
        }
    }

    fn addrs(ips: &[&str]) -> Vec<EndpointAddress> {
        ips.iter()
            .map(|ip| EndpointAddress {
                ip: (*ip).to_string(),
                ..Default::default()
            })
            .collect()
    }

    fn endpoints(subsets: Vec<EndpointSubset>) -> Endpoints {
        Endpoints {
            metadata: meta(),
            subsets,
            ..Default::default()
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn named_ports_take_the_matching_subset_port_and_only_ready_addresses() {
        let eps = endpoints(vec![
            EndpointSubset {
                addresses: addrs(&["10.0.0.1", "10.0.0.2"]),
                not_ready_addresses: addrs(&["10.0.0.9"]),
                ports: vec![eport(Some("http"), 8080), eport(Some("metrics"), 9090)],
            },
            EndpointSubset {
                addresses: addrs(&["10.0.1.1"]),
                not_ready_addresses: vec![],
                ports: vec![eport(Some("http"), 8081), eport(Some("metrics"), 9091)],
            },
        ]);
        assert_eq!(
            backends_for_port(&sport(Some("http"), 80), &eps),
            vec![
                sa("10.0.0.1:8080"),
                sa("10.0.0.2:8080"),
                sa("10.0.1.1:8081")
            ]
        );
        assert_eq!(
            backends_for_port(&sport(Some("metrics"), 90), &eps),
            vec![
                sa("10.0.0.1:9090"),
                sa("10.0.0.2:9090"),
                sa("10.0.1.1:9091")
            ]
        );
        assert!(backends_for_port(&sport(Some("admin"), 91), &eps).is_empty());
    }

    #[test]
    fn an_unnamed_port_takes_the_only_subset_port_and_bad_entries_are_left_out() {
        let eps = endpoints(vec![
            EndpointSubset {
                addresses: addrs(&["10.0.0.1", "not-an-ip", "10.0.0.1", "::1"]),
                not_ready_addresses: vec![],
                ports: vec![eport(None, 8080)],
            },
            EndpointSubset {
                addresses: addrs(&["10.0.0.5"]),
                not_ready_addresses: vec![],
                ports: vec![eport(None, 70000)],
            },
            EndpointSubset {
                addresses: addrs(&["10.0.0.6"]),
                not_ready_addresses: vec![],
                ports: vec![EndpointPort {
                    name: None,
                    port: 53,
                    protocol: Some("UDP".into()),
                }],
            },
        ]);
        assert_eq!(
            backends_for_port(&sport(None, 80), &eps),
            vec![sa("10.0.0.1:8080"), sa("[::1]:8080")]
        );
        // A named service port also takes a subset's only, unnamed port (hand-made Endpoints).
        assert_eq!(backends_for_port(&sport(Some("http"), 80), &eps).len(), 2);
    }

    #[test]
    fn desired_ports_listen_on_the_node_port_when_set_and_skip_non_tcp() {
        let service = Service {
            metadata: meta(),
            spec: ServiceSpec {
                ports: vec![
                    ServicePort {
                        node_port: Some(30080),
                        ..sport(Some("http"), 80)
                    },
                    ServicePort {
                        protocol: Some("UDP".into()),
                        ..sport(Some("dns"), 53)
                    },
                    sport(Some("admin"), 8443),
                    sport(Some("broken"), 0),
                ],
                session_affinity: Some("ClientIP".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let eps = endpoints(vec![EndpointSubset {
            addresses: addrs(&["10.0.0.1"]),
            not_ready_addresses: vec![],
            ports: vec![eport(Some("http"), 8080), eport(Some("admin"), 9443)],
        }]);
        let (wanted, skipped) = desired_ports(&service, Some(&eps));
        let summary: Vec<(String, u16, Vec<SocketAddr>, bool)> = wanted
            .into_iter()
            .map(|d| {
                (
                    d.key.port_name,
                    d.key.listen_port,
                    d.backends,
                    d.session_affinity,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("http".into(), 30080, vec![sa("10.0.0.1:8080")], true),
                ("admin".into(), 8443, vec![sa("10.0.0.1:9443")], true),
            ]
        );
        let skipped: Vec<&str> = skipped.iter().map(|s| s.port_name.as_str()).collect();
        assert_eq!(skipped, vec!["dns", "broken"]);
        // Without an Endpoints object the ports are still wanted, with no backends.
        let (wanted, _) = desired_ports(&service, None);
        assert!(wanted.iter().all(|d| d.backends.is_empty()));
        assert_eq!(wanted.len(), 2);
    }
}
