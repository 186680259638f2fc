//! Tests of service and endpoints validation.

use std::collections::BTreeMap;

use super::*;
use crate::defaults::default_service;
use crate::types::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, IntOrString, ObjectMeta, Service,
    ServicePort, ServiceSpec,
};

fn port(name: Option<&str>, number: i32) -> ServicePort {
    ServicePort {
        name: name.map(str::to_string),
        port: number,
        ..ServicePort::default()
    }
}

fn service(ports: Vec<ServicePort>) -> Service {
    let mut svc = Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: ServiceSpec {
            ports,
            selector: BTreeMap::from([("app".into(), "web".into())]),
            ..ServiceSpec::default()
        },
        ..Service::default()
    };
    default_service(&mut svc);
    svc
}

fn errors_of(svc: &Service) -> Vec<String> {
    validate_service(svc)
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn good_services_are_valid() {
    assert_eq!(
        errors_of(&service(vec![port(None, 80)])),
        Vec::<String>::new()
    );
    let mut svc = service(vec![port(Some("http"), 80), port(Some("https"), 443)]);
    svc.spec.ports[1].target_port = Some(IntOrString::String("https".into()));
    svc.spec.type_ = Some("NodePort".into());
    svc.spec.ports[0].node_port = Some(30080);
    svc.spec.cluster_ip = Some("10.0.0.10".into());
    assert_eq!(errors_of(&svc), Vec::<String>::new());
}

#[test]
fn service_names_are_dns1035_labels() {
    let mut svc = service(vec![port(None, 80)]);
    svc.metadata.name = Some("1web".into());
    let errors = validate_service(&svc);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "metadata.name");
}

#[test]
fn ports_are_required_and_in_range() {
    assert_eq!(errors_of(&service(vec![])), ["spec.ports: Required value"]);
    let mut svc = service(vec![port(None, 0)]);
    svc.spec.ports[0].target_port = Some(IntOrString::Int(70000));
    assert_eq!(
        errors_of(&svc),
        [
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ]
    );
}

#[test]
fn several_ports_need_unique_names() {
    let svc = service(vec![
        port(None, 80),
        port(Some("a"), 81),
        port(Some("a"), 82),
        port(Some("B_x"), 83),
        port(Some("c"), 83),
    ]);
    assert_eq!(
        errors_of(&svc),
        [
            "spec.ports[0].name: Required value",
            r#"spec.ports[2].name: Duplicate value: "a""#,
            r#"spec.ports[3].name: Invalid value: "B_x": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
            r#"spec.ports[4]: Duplicate value: "83/TCP""#,
        ]
    );
}

#[test]
fn protocols_types_affinity_target_names_and_node_ports() {
    let mut svc = service(vec![port(Some("a"), 80), port(Some("b"), 81)]);
    svc.spec.ports[0].protocol = Some("ICMP".into());
    svc.spec.ports[0].target_port = Some(IntOrString::String("Bad Name".into()));
    svc.spec.ports[0].node_port = Some(30000);
    svc.spec.session_affinity = Some("Sticky".into());
    svc.spec.cluster_ip = Some("10.0.0".into());
    let fields: Vec<String> = validate_service(&svc)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "spec.ports[0].protocol",
            "spec.ports[0].targetPort",
            "spec.ports[0].nodePort",
            "spec.sessionAffinity",
            "spec.clusterIP",
        ]
    );
    let mut svc = service(vec![port(Some("a"), 80), port(Some("b"), 81)]);
    svc.spec.type_ = Some("NodePort".into());
    svc.spec.ports[0].node_port = Some(70000);
    svc.spec.ports[1].node_port = Some(30001);
    svc.spec.ports.push(ServicePort {
        node_port: Some(30001),
        ..port(Some("c"), 82)
    });
    default_service(&mut svc);
    assert_eq!(
        errors_of(&svc),
        [
            "spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[2].nodePort: Duplicate value: 30001",
        ]
    );
    svc.spec.type_ = Some("LoadBalancer".into());
    assert!(errors_of(&svc)[0].starts_with("spec.type: Unsupported value: \"LoadBalancer\""));
}

fn endpoints(subsets: Vec<EndpointSubset>) -> Endpoints {
    Endpoints {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        subsets,
        ..Endpoints::default()
    }
}

fn address(ip: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.into(),
        ..EndpointAddress::default()
    }
}

#[test]
fn good_endpoints_are_valid() {
    let ep = endpoints(vec![EndpointSubset {
        addresses: vec![address("172.17.0.2")],
        not_ready_addresses: vec![address("fd00::2")],
        ports: vec![EndpointPort {
            name: None,
            port: 80,
            protocol: Some("TCP".into()),
        }],
    }]);
    assert_eq!(validate_endpoints(&ep), vec![]);
    assert_eq!(validate_endpoints(&endpoints(vec![])), vec![]);
}

#[test]
fn endpoint_errors_accumulate() {
    let ep = endpoints(vec![
        EndpointSubset::default(),
        EndpointSubset {
            addresses: vec![EndpointAddress {
                ip: "nope".into(),
                hostname: Some("A.B".into()),
                node_name: Some("Node_1".into()),
                target_ref: None,
            }],
            not_ready_addresses: vec![],
            ports: vec![
                EndpointPort {
                    name: None,
                    port: 0,
                    protocol: Some("ICMP".into()),
                },
                EndpointPort {
                    name: Some("x".into()),
                    port: 80,
                    protocol: None,
                },
            ],
        },
    ]);
    let fields: Vec<String> = validate_endpoints(&ep)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "subsets[0]",
            "subsets[0].ports",
            "subsets[1].addresses[0].ip",
            "subsets[1].addresses[0].hostname",
            "subsets[1].addresses[0].nodeName",
            "subsets[1].ports[0].name",
            "subsets[1].ports[0].port",
            "subsets[1].ports[0].protocol",
        ]
    );
}
