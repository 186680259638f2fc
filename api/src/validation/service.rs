//! Checks of services and endpoints: ports, names, protocols, types and addresses.

use std::collections::HashSet;

use super::field_error::FieldError;
use super::meta::{
    NameCheck, push_problems, validate_labels, validate_object_meta, validate_object_meta_with,
};
use super::names;
use super::path::{child, index};
use super::pod::{
    PORT_RANGE_MSG, is_port_number, validate_ip, validate_port_number_or_name, validate_protocol,
};
use crate::types::{EndpointAddress, Endpoints, Service};

/// Service types skiff serves.
pub const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort"];
/// Session affinities.
pub const SESSION_AFFINITIES: &[&str] = &["None", "ClientIP"];

/// Checks a service: DNS-1035 name, ports, selector, type, affinity and cluster IP.
pub fn validate_service(service: &Service) -> Vec<FieldError> {
    let name_check: NameCheck = names::dns1035_label;
    let mut errors = validate_object_meta_with(&service.metadata, true, name_check);
    let spec = &service.spec;
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if !SERVICE_TYPES.contains(&type_) {
        errors.push(FieldError::not_supported("spec.type", type_, SERVICE_TYPES));
    }
    if spec.ports.is_empty() {
        errors.push(FieldError::required("spec.ports", ""));
    }
    let several = spec.ports.len() > 1;
    let mut port_names = HashSet::new();
    let mut port_protocols = HashSet::new();
    let mut node_ports = HashSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let at = index("spec.ports", i);
        let name_path = child(&at, "name");
        match port.name.as_deref().filter(|n| !n.is_empty()) {
            None if several => errors.push(FieldError::required(&name_path, "")),
            None => {}
            Some(name) => {
                push_problems(&mut errors, &name_path, name, names::dns1123_label(name));
                if !port_names.insert(name) {
                    errors.push(FieldError::duplicate(&name_path, name));
                }
            }
        }
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        if port.protocol.is_some() {
            validate_protocol(protocol, &child(&at, "protocol"), &mut errors);
        }
        let port_path = child(&at, "port");
        if !is_port_number(port.port) {
            errors.push(FieldError::invalid(&port_path, port.port, PORT_RANGE_MSG));
        } else if !port_protocols.insert((port.port, protocol)) {
            errors.push(FieldError::duplicate(
                &at,
                format!("{}/{protocol}", port.port),
            ));
        }
        if let Some(target) = &port.target_port {
            validate_port_number_or_name(target, &child(&at, "targetPort"), &mut errors);
        }
        if let Some(node_port) = port.node_port.filter(|p| *p != 0) {
            let node_port_path = child(&at, "nodePort");
            if type_ == "ClusterIP" {
                errors.push(FieldError::forbidden(
                    &node_port_path,
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else if !is_port_number(node_port) {
                errors.push(FieldError::invalid(
                    &node_port_path,
                    node_port,
                    PORT_RANGE_MSG,
                ));
            } else if !node_ports.insert((node_port, protocol)) {
                errors.push(FieldError::duplicate(&node_port_path, node_port));
            }
        }
    }
    errors.extend(validate_labels(&spec.selector, "spec.selector"));
    if let Some(affinity) = &spec.session_affinity
        && !SESSION_AFFINITIES.contains(&affinity.as_str())
    {
        errors.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            SESSION_AFFINITIES,
        ));
    }
    if let Some(ip) = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None")
    {
        validate_ip(ip, "spec.clusterIP", &mut errors);
    }
    errors
}

/// Checks endpoints: every subset has addresses and ports, addresses are IPs, ports are valid.
pub fn validate_endpoints(endpoints: &Endpoints) -> Vec<FieldError> {
    let mut errors = validate_object_meta(&endpoints.metadata, true);
    for (i, subset) in endpoints.subsets.iter().enumerate() {
        let at = index("subsets", i);
        if subset.addresses.is_empty() && subset.not_ready_addresses.is_empty() {
            errors.push(FieldError::required(
                &at,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (field, addresses) in [
            ("addresses", &subset.addresses),
            ("notReadyAddresses", &subset.not_ready_addresses),
        ] {
            for (j, address) in addresses.iter().enumerate() {
                validate_endpoint_address(address, &index(&child(&at, field), j), &mut errors);
            }
        }
        let ports_path = child(&at, "ports");
        if subset.ports.is_empty() {
            errors.push(FieldError::required(&ports_path, ""));
        }
        let several = subset.ports.len() > 1;
        let mut port_names = HashSet::new();
        for (j, port) in subset.ports.iter().enumerate() {
            let port_at = index(&ports_path, j);
            let name_path = child(&port_at, "name");
            match port.name.as_deref().filter(|n| !n.is_empty()) {
                None if several => errors.push(FieldError::required(&name_path, "")),
                None => {}
                Some(name) => {
                    push_problems(&mut errors, &name_path, name, names::dns1123_label(name));
                    if !port_names.insert(name) {
                        errors.push(FieldError::duplicate(&name_path, name));
                    }
                }
            }
            if !is_port_number(port.port) {
                errors.push(FieldError::invalid(
                    child(&port_at, "port"),
                    port.port,
                    PORT_RANGE_MSG,
                ));
            }
            if let Some(protocol) = &port.protocol {
                validate_protocol(protocol, &child(&port_at, "protocol"), &mut errors);
            }
        }
    }
    errors
}

/// Checks one endpoint address: an IP, and a DNS label hostname and subdomain node name if set.
fn validate_endpoint_address(address: &EndpointAddress, path: &str, errors: &mut Vec<FieldError>) {
    validate_ip(&address.ip, &child(path, "ip"), errors);
    if let Some(hostname) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
        push_problems(
            errors,
            &child(path, "hostname"),
            hostname,
            names::dns1123_label(hostname),
        );
    }
    if let Some(node) = address.node_name.as_deref().filter(|n| !n.is_empty()) {
        push_problems(
            errors,
            &child(path, "nodeName"),
            node,
            names::dns1123_subdomain(node),
        );
    }
}
