//! The Endpoints a service should have, computed from the pods its selector matches.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_api::types::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, IntOrString, ObjectMeta,
    ObjectReference, Pod, Resource, Service, ServicePort,
};

use crate::controllers::labels::selector_matches;
use crate::controllers::pod_state::{is_being_deleted, is_ready, is_terminal};

/// The protocol of ports that do not name one.
const DEFAULT_PROTOCOL: &str = "TCP";

/// The container port `service_port` reaches on `pod`: its `targetPort` number, the number
/// of the container port named by it, or the service port itself when none is given. None
/// when the name is not a port of the pod.
pub(crate) fn resolve_target_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    match &service_port.target_port {
        None => Some(service_port.port),
        Some(IntOrString::Int(0)) => Some(service_port.port),
        Some(IntOrString::Int(port)) => Some(*port),
        Some(IntOrString::String(name)) => {
            let protocol = service_port.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL);
            pod.spec
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL) == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// True when `pod` is an endpoint candidate of `service`: same namespace, matching labels,
/// an IP, and neither finished nor being deleted.
fn is_backend(service: &Service, pod: &Pod) -> bool {
    pod.metadata.namespace == service.metadata.namespace
        && selector_matches(&service.spec.selector, &pod.metadata.labels)
        && pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .is_some_and(|ip| !ip.is_empty())
        && !is_being_deleted(pod)
        && !is_terminal(pod)
}

/// The address of `pod` in an Endpoints object.
fn address(pod: &Pod) -> EndpointAddress {
    EndpointAddress {
        ip: pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
        hostname: None,
        node_name: pod.spec.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: Some(Pod::KIND.to_string()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
    }
}

/// A port as a sortable key: (name, port, protocol).
type PortKey = (Option<String>, i32, Option<String>);

/// The subsets of `service` over `pods`: ready pods under `addresses`, the others under
/// `notReadyAddresses`, grouped by the port numbers their named target ports resolve to.
pub(crate) fn desired_subsets(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let mut groups: BTreeMap<Vec<PortKey>, EndpointSubset> = BTreeMap::new();
    for pod in pods.iter().filter(|p| is_backend(service, p)) {
        let ports: Vec<PortKey> = service
            .spec
            .ports
            .iter()
            .filter_map(|sp| {
                resolve_target_port(pod, sp).map(|port| {
                    let protocol = sp
                        .protocol
                        .clone()
                        .unwrap_or_else(|| DEFAULT_PROTOCOL.to_string());
                    (sp.name.clone(), port, Some(protocol))
                })
            })
            .collect();
        if ports.is_empty() && !service.spec.ports.is_empty() {
            // None of the service's ports exist on this pod: nothing to send it.
            continue;
        }
        let subset = groups.entry(ports).or_default();
        if is_ready(pod) {
            subset.addresses.push(address(pod));
        } else {
            subset.not_ready_addresses.push(address(pod));
        }
    }
    groups
        .into_iter()
        .map(|(ports, mut subset)| {
            let order = |a: &EndpointAddress, b: &EndpointAddress| {
                (&a.ip, a.target_ref.as_ref().and_then(|r| r.name.as_ref()))
                    .cmp(&(&b.ip, b.target_ref.as_ref().and_then(|r| r.name.as_ref())))
            };
            subset.addresses.sort_by(order);
            subset.not_ready_addresses.sort_by(order);
            subset.ports = ports
                .into_iter()
                .map(|(name, port, protocol)| EndpointPort {
                    name,
                    port,
                    protocol,
                })
                .collect();
            subset
        })
        .collect()
}

/// The Endpoints object `service` should have over `pods`: same name and namespace, the
/// service's labels, and the computed subsets.
pub(crate) fn desired_endpoints(service: &Service, pods: &[Arc<Pod>]) -> Endpoints {
    let mut endpoints = Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: service.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        subsets: desired_subsets(service, pods),
        ..Endpoints::default()
    };
    endpoints.set_type_meta();
    endpoints
}

/// True when `current` differs from `desired` in what the controller owns (subsets, labels).
pub(crate) fn needs_write(current: Option<&Endpoints>, desired: &Endpoints) -> bool {
    current.is_none_or(|c| {
        c.subsets != desired.subsets || c.metadata.labels != desired.metadata.labels
    })
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{Container, ContainerPort, ServiceSpec};

    use super::*;
    use crate::controllers::pod_state::fixtures::{pod, with_status};

    fn service(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                labels: [("team".to_string(), "a".to_string())].into(),
                ..Default::default()
            },
            spec: ServiceSpec {
                ports,
                selector: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn port(name: &str, port: i32, target: Option<IntOrString>) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            target_port: target,
            ..Default::default()
        }
    }

    /// A web pod with `ip`, readiness, and a container port named `http` = `http_port`.
    fn backend(name: &str, ip: &str, ready: bool, http_port: i32) -> Arc<Pod> {
        let mut p = with_status(
            pod("ns", name, &[("app", "web")]),
            "Running",
            Some(ip),
            ready,
        );
        p.spec.node_name = Some("n1".into());
        p.spec.containers = vec![Container {
            name: "c".into(),
            ports: vec![ContainerPort {
                name: Some("http".into()),
                container_port: http_port,
                ..Default::default()
            }],
            ..Default::default()
        }];
        Arc::new(p)
    }

    fn ips(addresses: &[EndpointAddress]) -> Vec<&str> {
        addresses.iter().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_pods_are_listed_apart() {
        let svc = service(vec![port("web", 80, Some(IntOrString::Int(8080)))]);
        let pods = vec![
            backend("b", "10.0.0.2", true, 1),
            backend("a", "10.0.0.1", true, 1),
            backend("c", "10.0.0.3", false, 1),
        ];
        let subsets = desired_subsets(&svc, &pods);
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.0.0.3"]);
        assert_eq!(
            subsets[0].ports,
            vec![EndpointPort {
                name: Some("web".into()),
                port: 8080,
                protocol: Some("TCP".into())
            }]
        );
        let a = &subsets[0].addresses[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let target = a.target_ref.as_ref().unwrap();
        assert_eq!(
            (
                target.kind.as_deref(),
                target.name.as_deref(),
                target.namespace.as_deref(),
                target.uid.as_deref()
            ),
            (Some("Pod"), Some("a"), Some("ns"), Some("uid-a"))
        );
    }

    #[test]
    fn named_target_ports_resolve_per_pod_into_separate_subsets() {
        let svc = service(vec![port(
            "web",
            80,
            Some(IntOrString::String("http".into())),
        )]);
        let pods = vec![
            backend("a", "10.0.0.1", true, 8080),
            backend("b", "10.0.0.2", true, 9090),
            backend("c", "10.0.0.3", false, 8080),
        ];
        let subsets = desired_subsets(&svc, &pods);
        let summary: Vec<(i32, Vec<&str>, Vec<&str>)> = subsets
            .iter()
            .map(|s| {
                (
                    s.ports[0].port,
                    ips(&s.addresses),
                    ips(&s.not_ready_addresses),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (8080, vec!["10.0.0.1"], vec!["10.0.0.3"]),
                (9090, vec!["10.0.0.2"], vec![]),
            ]
        );
    }

    #[test]
    fn ports_default_to_the_service_port_and_unknown_names_are_skipped() {
        let p = backend("a", "10.0.0.1", true, 8080);
        assert_eq!(resolve_target_port(&p, &port("x", 80, None)), Some(80));
        assert_eq!(
            resolve_target_port(&p, &port("x", 80, Some(IntOrString::Int(0)))),
            Some(80)
        );
        assert_eq!(
            resolve_target_port(&p, &port("x", 80, Some(IntOrString::String("nope".into())))),
            None
        );
        let mut udp = port("x", 80, Some(IntOrString::String("http".into())));
        udp.protocol = Some("UDP".into());
        assert_eq!(resolve_target_port(&p, &udp), None, "protocols must match");

        // A pod with none of the service's ports gets no address at all.
        let svc = service(vec![port(
            "web",
            80,
            Some(IntOrString::String("nope".into())),
        )]);
        assert!(desired_subsets(&svc, &[p]).is_empty());
    }

    #[test]
    fn pods_without_ip_being_deleted_finished_or_elsewhere_are_left_out() {
        let svc = service(vec![port("web", 80, None)]);
        let no_ip = Arc::new(with_status(
            pod("ns", "no-ip", &[("app", "web")]),
            "Pending",
            None,
            false,
        ));
        let mut deleting = (*backend("deleting", "10.0.0.9", true, 1)).clone();
        deleting.metadata.deletion_timestamp = Some(skiff_api::types::Time::now());
        let mut failed = (*backend("failed", "10.0.0.8", false, 1)).clone();
        if let Some(s) = failed.status.as_mut() {
            s.phase = Some("Failed".into());
        }
        let mut other_ns = (*backend("other", "10.0.0.7", true, 1)).clone();
        other_ns.metadata.namespace = Some("elsewhere".into());
        let mut other_labels = (*backend("db", "10.0.0.6", true, 1)).clone();
        other_labels.metadata.labels = [("app".to_string(), "db".to_string())].into();
        let pods = vec![
            no_ip,
            Arc::new(deleting),
            Arc::new(failed),
            Arc::new(other_ns),
            Arc::new(other_labels),
        ];
        assert!(desired_subsets(&svc, &pods).is_empty());
    }

    #[test]
    fn endpoints_are_written_only_when_they_change() {
        let svc = service(vec![port("web", 80, None)]);
        let pods = vec![backend("a", "10.0.0.1", true, 1)];
        let desired = desired_endpoints(&svc, &pods);
        assert_eq!(desired.kind, "Endpoints");
        assert_eq!(desired.metadata.name.as_deref(), Some("web"));
        assert_eq!(desired.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(desired.metadata.labels, svc.metadata.labels);
        assert!(needs_write(None, &desired));

        let mut current = desired.clone();
        current.metadata.resource_version = Some("17".into());
        current.metadata.uid = Some("x".into());
        assert!(!needs_write(Some(&current), &desired));

        let not_ready = desired_endpoints(&svc, &[backend("a", "10.0.0.1", false, 1)]);
        assert!(needs_write(Some(&current), &not_ready));
        let mut relabelled = current.clone();
        relabelled.metadata.labels.clear();
        assert!(needs_write(Some(&relabelled), &desired));
    }
}
