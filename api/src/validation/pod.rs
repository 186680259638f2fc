//! Checks of pods and pod specs: containers, ports, probes, resources, volumes, updates.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use super::field_error::FieldError;
use super::meta::{push_problems, validate_labels, validate_object_meta};
use super::names;
use super::path::{child, index, key};
use crate::types::{
    Container, ContainerPort, IntOrString, Lifecycle, LifecycleHandler, Pod, PodSpec, Probe,
    Quantity, ResourceRequirements, Volume, values,
};

/// Restart policies a pod may name.
pub const RESTART_POLICIES: &[&str] = &[
    values::RESTART_ALWAYS,
    values::RESTART_ON_FAILURE,
    values::RESTART_NEVER,
];
/// Image pull policies a container may name.
pub const PULL_POLICIES: &[&str] = &[
    values::PULL_ALWAYS,
    values::PULL_IF_NOT_PRESENT,
    values::PULL_NEVER,
];
/// Port protocols.
pub const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
/// Schemes of HTTP probes and hooks.
pub const HTTP_SCHEMES: &[&str] = &["HTTP", "HTTPS"];
/// Types a hostPath volume may expect.
pub const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];
/// Media an emptyDir volume may use.
pub const EMPTY_DIR_MEDIA: &[&str] = &["", "Memory"];

/// Detail of every port-number range error.
pub(crate) const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";
/// Detail of negative values that must not be.
pub(crate) const NON_NEGATIVE_MSG: &str = "must be greater than or equal to 0";
/// Detail of values that must be at least one.
const AT_LEAST_ONE_MSG: &str = "must be greater than or equal to 1";
/// Detail of the Forbidden error for spec changes on update.
pub const POD_UPDATE_FORBIDDEN_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image` and `spec.nodeName` (only to set it)";

/// Checks a whole pod: metadata (namespaced, DNS-1123 subdomain name) and spec.
pub fn validate_pod(pod: &Pod) -> Vec<FieldError> {
    let mut errors = validate_object_meta(&pod.metadata, true);
    errors.extend(validate_pod_spec(&pod.spec, "spec"));
    errors
}

/// Checks an update: the new pod must be valid, and only images and an unset nodeName may change.
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errors = validate_pod(new);
    for (field, new_value, old_value) in [
        ("metadata.name", &new.metadata.name, &old.metadata.name),
        (
            "metadata.namespace",
            &new.metadata.namespace,
            &old.metadata.namespace,
        ),
    ] {
        if new_value != old_value {
            errors.push(FieldError::invalid(
                field,
                new_value.as_deref().unwrap_or(""),
                "field is immutable",
            ));
        }
    }
    if let (Some(new_uid), Some(old_uid)) = (&new.metadata.uid, &old.metadata.uid)
        && new_uid != old_uid
    {
        errors.push(FieldError::invalid(
            "metadata.uid",
            new_uid.as_str(),
            "field is immutable",
        ));
    }
    // Apply the changes that are allowed to the old spec; anything left over is forbidden.
    let mut allowed = old.spec.clone();
    for (old_container, new_container) in allowed.containers.iter_mut().zip(&new.spec.containers) {
        old_container.image.clone_from(&new_container.image);
    }
    match (&old.spec.node_name, &new.spec.node_name) {
        (None, _) => allowed.node_name.clone_from(&new.spec.node_name),
        (Some(old_node), new_node) if new_node.as_ref() != Some(old_node) => {
            errors.push(FieldError::forbidden(
                "spec.nodeName",
                "may not be changed once set",
            ));
            allowed.node_name.clone_from(&new.spec.node_name);
        }
        _ => {}
    }
    if allowed != new.spec {
        errors.push(FieldError::forbidden("spec", POD_UPDATE_FORBIDDEN_MSG));
    }
    errors
}

/// Checks a pod spec found at `path` (`spec`, or `spec.template.spec` in a controller).
pub fn validate_pod_spec(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let volumes = validate_volumes(&spec.volumes, &child(path, "volumes"), &mut errors);
    let containers_path = child(path, "containers");
    if spec.containers.is_empty() {
        errors.push(FieldError::required(&containers_path, ""));
    }
    let host_network = spec.host_network.unwrap_or(false);
    let mut container_names = HashSet::new();
    let mut host_ports = HashSet::new();
    for (i, container) in spec.containers.iter().enumerate() {
        let at = index(&containers_path, i);
        errors.extend(validate_container(container, &at, &volumes, host_network));
        if !container.name.is_empty() && !container_names.insert(container.name.as_str()) {
            errors.push(FieldError::duplicate(
                child(&at, "name"),
                container.name.as_str(),
            ));
        }
        for (j, port) in container.ports.iter().enumerate() {
            let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
                continue;
            };
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            if !host_ports.insert((host_port, protocol)) {
                errors.push(FieldError::duplicate(
                    child(&index(&child(&at, "ports"), j), "hostPort"),
                    format!("{host_port}/{protocol}"),
                ));
            }
        }
    }
    if let Some(policy) = &spec.restart_policy
        && !RESTART_POLICIES.contains(&policy.as_str())
    {
        errors.push(FieldError::not_supported(
            child(path, "restartPolicy"),
            policy,
            RESTART_POLICIES,
        ));
    }
    if let Some(grace) = spec.termination_grace_period_seconds
        && grace < 0
    {
        errors.push(FieldError::invalid(
            child(path, "terminationGracePeriodSeconds"),
            grace,
            NON_NEGATIVE_MSG,
        ));
    }
    errors.extend(validate_labels(
        &spec.node_selector,
        &child(path, "nodeSelector"),
    ));
    if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        push_problems(
            &mut errors,
            &child(path, "nodeName"),
            node,
            names::dns1123_subdomain(node),
        );
    }
    if let Some(hostname) = spec.hostname.as_deref().filter(|n| !n.is_empty()) {
        push_problems(
            &mut errors,
            &child(path, "hostname"),
            hostname,
            names::dns1123_label(hostname),
        );
    }
    errors
}

/// Checks the volumes and returns the names declared, for volume mounts to refer to.
fn validate_volumes<'a>(
    volumes: &'a [Volume],
    path: &str,
    errors: &mut Vec<FieldError>,
) -> HashSet<&'a str> {
    let mut declared = HashSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let at = index(path, i);
        let name_path = child(&at, "name");
        if volume.name.is_empty() {
            errors.push(FieldError::required(&name_path, ""));
        } else {
            push_problems(
                errors,
                &name_path,
                &volume.name,
                names::dns1123_label(&volume.name),
            );
            if !declared.insert(volume.name.as_str()) {
                errors.push(FieldError::duplicate(&name_path, volume.name.as_str()));
            }
        }
        let mut sources = 0;
        if let Some(host_path) = &volume.host_path {
            sources += 1;
            let hp = child(&at, "hostPath");
            if host_path.path.is_empty() {
                errors.push(FieldError::required(child(&hp, "path"), ""));
            } else if !host_path.path.starts_with('/') {
                errors.push(FieldError::invalid(
                    child(&hp, "path"),
                    host_path.path.as_str(),
                    "must be an absolute path",
                ));
            }
            if let Some(type_) = &host_path.type_
                && !HOST_PATH_TYPES.contains(&type_.as_str())
            {
                errors.push(FieldError::not_supported(
                    child(&hp, "type"),
                    type_,
                    HOST_PATH_TYPES,
                ));
            }
        }
        if let Some(empty_dir) = &volume.empty_dir {
            sources += 1;
            let ed = child(&at, "emptyDir");
            if sources > 1 {
                errors.push(FieldError::forbidden(
                    &ed,
                    "may not specify more than 1 volume type",
                ));
            }
            if let Some(medium) = &empty_dir.medium
                && !EMPTY_DIR_MEDIA.contains(&medium.as_str())
            {
                errors.push(FieldError::not_supported(
                    child(&ed, "medium"),
                    medium,
                    EMPTY_DIR_MEDIA,
                ));
            }
            if let Some(limit) = &empty_dir.size_limit
                && limit.is_negative()
            {
                errors.push(FieldError::invalid(
                    child(&ed, "sizeLimit"),
                    limit,
                    NON_NEGATIVE_MSG,
                ));
            }
        }
        if sources == 0 {
            errors.push(FieldError::required(&at, "must specify a volume type"));
        }
    }
    declared
}

/// Checks one container found at `path`.
fn validate_container(
    container: &Container,
    path: &str,
    volumes: &HashSet<&str>,
    host_network: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name_path = child(path, "name");
    if container.name.is_empty() {
        errors.push(FieldError::required(&name_path, ""));
    } else {
        push_problems(
            &mut errors,
            &name_path,
            &container.name,
            names::dns1123_label(&container.name),
        );
    }
    let image_path = child(path, "image");
    if container.image.trim().is_empty() {
        errors.push(FieldError::required(&image_path, ""));
    } else if container.image.trim() != container.image {
        errors.push(FieldError::invalid(
            &image_path,
            container.image.as_str(),
            "must not have leading or trailing whitespace",
        ));
    }
    errors.extend(validate_container_ports(
        &container.ports,
        &child(path, "ports"),
        host_network,
    ));
    for (i, env) in container.env.iter().enumerate() {
        let name_path = child(&index(&child(path, "env"), i), "name");
        if env.name.is_empty() {
            errors.push(FieldError::required(&name_path, ""));
        } else {
            push_problems(
                &mut errors,
                &name_path,
                &env.name,
                names::env_var_name(&env.name),
            );
        }
    }
    if let Some(resources) = &container.resources {
        errors.extend(validate_resources(resources, &child(path, "resources")));
    }
    let mut mount_paths = HashSet::new();
    for (i, mount) in container.volume_mounts.iter().enumerate() {
        let at = index(&child(path, "volumeMounts"), i);
        if mount.name.is_empty() {
            errors.push(FieldError::required(child(&at, "name"), ""));
        } else if !volumes.contains(mount.name.as_str()) {
            errors.push(FieldError::not_found(
                child(&at, "name"),
                mount.name.as_str(),
            ));
        }
        let mount_path = child(&at, "mountPath");
        if mount.mount_path.is_empty() {
            errors.push(FieldError::required(&mount_path, ""));
        } else if !mount.mount_path.starts_with('/') {
            errors.push(FieldError::invalid(
                &mount_path,
                mount.mount_path.as_str(),
                "must be an absolute path",
            ));
        } else if !mount_paths.insert(mount.mount_path.as_str()) {
            errors.push(FieldError::invalid(
                &mount_path,
                mount.mount_path.as_str(),
                "must be unique",
            ));
        }
    }
    if let Some(probe) = &container.liveness_probe {
        errors.extend(validate_probe(probe, &child(path, "livenessProbe"), true));
    }
    if let Some(probe) = &container.readiness_probe {
        errors.extend(validate_probe(probe, &child(path, "readinessProbe"), false));
    }
    if let Some(lifecycle) = &container.lifecycle {
        errors.extend(validate_lifecycle(lifecycle, &child(path, "lifecycle")));
    }
    if let Some(policy) = &container.image_pull_policy
        && !PULL_POLICIES.contains(&policy.as_str())
    {
        errors.push(FieldError::not_supported(
            child(path, "imagePullPolicy"),
            policy,
            PULL_POLICIES,
        ));
    }
    errors
}

/// Checks the ports of one container: numbers, protocols, unique IANA names, host addresses.
fn validate_container_ports(
    ports: &[ContainerPort],
    path: &str,
    host_network: bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut port_names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = index(path, i);
        if let Some(name) = port.name.as_deref() {
            let name_path = child(&at, "name");
            push_problems(&mut errors, &name_path, name, names::iana_svc_name(name));
            if !port_names.insert(name) {
                errors.push(FieldError::duplicate(&name_path, name));
            }
        }
        let container_port_path = child(&at, "containerPort");
        if port.container_port == 0 {
            errors.push(FieldError::required(&container_port_path, ""));
        } else if !is_port_number(port.container_port) {
            errors.push(FieldError::invalid(
                &container_port_path,
                port.container_port,
                PORT_RANGE_MSG,
            ));
        }
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            let host_port_path = child(&at, "hostPort");
            if !is_port_number(host_port) {
                errors.push(FieldError::invalid(
                    &host_port_path,
                    host_port,
                    PORT_RANGE_MSG,
                ));
            } else if host_network && host_port != port.container_port {
                errors.push(FieldError::invalid(
                    &host_port_path,
                    host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        if let Some(protocol) = &port.protocol {
            validate_protocol(protocol, &child(&at, "protocol"), &mut errors);
        }
        if let Some(ip) = port.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            validate_ip(ip, &child(&at, "hostIP"), &mut errors);
        }
    }
    errors
}

/// Checks a probe: exactly one handler, sane timings, and for liveness a success threshold of 1.
fn validate_probe(probe: &Probe, path: &str, liveness: bool) -> Vec<FieldError> {
    let handler = LifecycleHandler {
        exec: probe.exec.clone(),
        http_get: probe.http_get.clone(),
        tcp_socket: probe.tcp_socket.clone(),
    };
    let mut errors = validate_handler(&handler, path);
    for (field, value, min) in [
        ("initialDelaySeconds", probe.initial_delay_seconds, 0),
        ("timeoutSeconds", probe.timeout_seconds, 1),
        ("periodSeconds", probe.period_seconds, 1),
        ("successThreshold", probe.success_threshold, 1),
        ("failureThreshold", probe.failure_threshold, 1),
    ] {
        if let Some(value) = value
            && value < min
        {
            let detail = if min == 0 {
                NON_NEGATIVE_MSG
            } else {
                AT_LEAST_ONE_MSG
            };
            errors.push(FieldError::invalid(child(path, field), value, detail));
        }
    }
    if liveness
        && let Some(success) = probe.success_threshold
        && success > 1
    {
        errors.push(FieldError::invalid(
            child(path, "successThreshold"),
            success,
            "must be 1",
        ));
    }
    errors
}

/// Checks lifecycle hooks: each one carries exactly one handler.
fn validate_lifecycle(lifecycle: &Lifecycle, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, handler) in [
        ("preStop", &lifecycle.pre_stop),
        ("postStart", &lifecycle.post_start),
    ] {
        if let Some(handler) = handler {
            errors.extend(validate_handler(handler, &child(path, field)));
        }
    }
    errors
}

/// Checks that exactly one of exec, httpGet and tcpSocket is set, and that one's fields.
fn validate_handler(handler: &LifecycleHandler, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut handlers = 0;
    let mut count = |field: &str, errors: &mut Vec<FieldError>| {
        handlers += 1;
        if handlers > 1 {
            errors.push(FieldError::forbidden(
                child(path, field),
                "may not specify more than 1 handler type",
            ));
        }
    };
    if let Some(exec) = &handler.exec {
        count("exec", &mut errors);
        if exec.command.is_empty() {
            errors.push(FieldError::required(
                child(&child(path, "exec"), "command"),
                "",
            ));
        }
    }
    if let Some(http) = &handler.http_get {
        count("httpGet", &mut errors);
        let at = child(path, "httpGet");
        validate_port_number_or_name(&http.port, &child(&at, "port"), &mut errors);
        if let Some(scheme) = &http.scheme
            && !HTTP_SCHEMES.contains(&scheme.as_str())
        {
            errors.push(FieldError::not_supported(
                child(&at, "scheme"),
                scheme,
                HTTP_SCHEMES,
            ));
        }
        for (i, header) in http.http_headers.iter().enumerate() {
            if header.name.is_empty() {
                errors.push(FieldError::required(
                    child(&index(&child(&at, "httpHeaders"), i), "name"),
                    "",
                ));
            }
        }
    }
    if let Some(tcp) = &handler.tcp_socket {
        count("tcpSocket", &mut errors);
        validate_port_number_or_name(
            &tcp.port,
            &child(&child(path, "tcpSocket"), "port"),
            &mut errors,
        );
    }
    if handlers == 0 {
        errors.push(FieldError::required(path, "must specify a handler type"));
    }
    errors
}

/// Checks requests and limits: valid names, non-negative, requests no larger than limits.
fn validate_resources(resources: &ResourceRequirements, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let limits_path = child(path, "limits");
    let requests_path = child(path, "requests");
    for (map, map_path) in [
        (&resources.limits, &limits_path),
        (&resources.requests, &requests_path),
    ] {
        validate_resource_list(map, map_path, &mut errors);
    }
    for (name, request) in &resources.requests {
        if let Some(limit) = resources.limits.get(name)
            && request.cmp_value(limit).is_gt()
        {
            errors.push(FieldError::invalid(
                key(&requests_path, name),
                request,
                format!("must be less than or equal to {name} limit of {limit}"),
            ));
        }
    }
    errors
}

/// Checks one map of resource quantities (names and signs).
pub(crate) fn validate_resource_list(
    map: &BTreeMap<String, Quantity>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    for (name, quantity) in map {
        push_problems(errors, &key(path, name), name, names::qualified_name(name));
        if quantity.is_negative() {
            errors.push(FieldError::invalid(
                key(path, name),
                quantity,
                NON_NEGATIVE_MSG,
            ));
        }
    }
}

/// True for 1–65535.
pub(crate) fn is_port_number(port: i32) -> bool {
    (1..=65535).contains(&port)
}

/// Checks a port given as a number (1–65535) or as an IANA service name.
pub(crate) fn validate_port_number_or_name(
    port: &IntOrString,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    match port {
        IntOrString::Int(n) if !is_port_number(*n) => {
            errors.push(FieldError::invalid(path, *n, PORT_RANGE_MSG));
        }
        IntOrString::Int(_) => {}
        IntOrString::String(name) => {
            push_problems(errors, path, name, names::iana_svc_name(name));
        }
    }
}

/// Checks a protocol is TCP, UDP or SCTP.
pub(crate) fn validate_protocol(protocol: &str, path: &str, errors: &mut Vec<FieldError>) {
    if !PROTOCOLS.contains(&protocol) {
        errors.push(FieldError::not_supported(path, protocol, PROTOCOLS));
    }
}

/// Checks an IP address (v4 or v6).
pub(crate) fn validate_ip(ip: &str, path: &str, errors: &mut Vec<FieldError>) {
    if ip.parse::<IpAddr>().is_err() {
        errors.push(FieldError::invalid(
            path,
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
}
