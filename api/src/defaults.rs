//! Defaults applied to objects on create, by the apiserver and by the agent for static pods.
//!
//! Every function only fills fields that are unset, so defaulting twice changes nothing.
//! Validation runs on defaulted objects.

use crate::types::{
    Container, ContainerPort, HttpGetAction, IntOrString, Lifecycle, LifecycleHandler, Node, Pod,
    PodSpec, Probe, ReplicationController, Service, values,
};

/// Namespace given to pods that name none.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Seconds between SIGTERM and SIGKILL when a pod names none.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Protocol of ports that name none.
pub const DEFAULT_PROTOCOL: &str = "TCP";
/// Probe delay before the first attempt, in seconds.
pub const PROBE_INITIAL_DELAY_SECONDS: i32 = 0;
/// Probe attempt timeout, in seconds.
pub const PROBE_TIMEOUT_SECONDS: i32 = 1;
/// Seconds between probe attempts.
pub const PROBE_PERIOD_SECONDS: i32 = 10;
/// Consecutive successes that make a probe pass.
pub const PROBE_SUCCESS_THRESHOLD: i32 = 1;
/// Consecutive failures that make a probe fail.
pub const PROBE_FAILURE_THRESHOLD: i32 = 3;
/// Path of HTTP probes that name none.
pub const PROBE_HTTP_PATH: &str = "/";
/// Scheme of HTTP probes that name none.
pub const PROBE_HTTP_SCHEME: &str = "HTTP";
/// Service type when none is given.
pub const SERVICE_TYPE_CLUSTER_IP: &str = "ClusterIP";
/// Service session affinity when none is given.
pub const SESSION_AFFINITY_NONE: &str = "None";

/// Defaults a pod: namespace `default`, then its spec (see [`default_pod_spec`]).
pub fn default_pod(pod: &mut Pod) {
    fill_type_meta(&mut pod.api_version, &mut pod.kind, "Pod");
    if pod.metadata.namespace.as_deref().unwrap_or("").is_empty() {
        pod.metadata.namespace = Some(DEFAULT_NAMESPACE.to_string());
    }
    default_pod_spec(&mut pod.spec);
}

/// Defaults a pod spec: restart policy `Always`, grace period 30 s, and every container.
pub fn default_pod_spec(spec: &mut PodSpec) {
    set_if_none(&mut spec.restart_policy, values::RESTART_ALWAYS);
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    }
    for container in &mut spec.containers {
        default_container(container);
    }
}

/// Defaults one container: pull policy from the image tag, port protocols, probes and hooks.
pub fn default_container(container: &mut Container) {
    if container.image_pull_policy.is_none() {
        container.image_pull_policy = Some(default_pull_policy(&container.image).to_string());
    }
    for port in &mut container.ports {
        default_container_port(port);
    }
    for probe in [
        &mut container.liveness_probe,
        &mut container.readiness_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    if let Some(lifecycle) = container.lifecycle.as_mut() {
        default_lifecycle(lifecycle);
    }
}

/// `Always` for images without a tag or tagged `latest` (and without a digest), else `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image_digest(image).is_some() {
        return values::PULL_IF_NOT_PRESENT;
    }
    match image_tag(image) {
        None | Some("latest") => values::PULL_ALWAYS,
        Some(_) => values::PULL_IF_NOT_PRESENT,
    }
}

/// The tag of an image reference: the text after a `:` that follows the last `/`.
///
/// `localhost:5000/app` has no tag (the `:` belongs to the registry); `app:1.2@sha256:…`
/// has tag `1.2`.
pub fn image_tag(image: &str) -> Option<&str> {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    let last_component = name.rsplit_once('/').map_or(name, |(_, last)| last);
    last_component.split_once(':').map(|(_, tag)| tag)
}

/// The digest of an image reference: the text after `@`, when present.
pub fn image_digest(image: &str) -> Option<&str> {
    image.split_once('@').map(|(_, digest)| digest)
}

/// Defaults a container port: protocol `TCP`.
pub fn default_container_port(port: &mut ContainerPort) {
    set_if_none(&mut port.protocol, DEFAULT_PROTOCOL);
}

/// Defaults a probe: Kubernetes' timings and the HTTP path and scheme.
pub fn default_probe(probe: &mut Probe) {
    fill(
        &mut probe.initial_delay_seconds,
        PROBE_INITIAL_DELAY_SECONDS,
    );
    fill(&mut probe.timeout_seconds, PROBE_TIMEOUT_SECONDS);
    fill(&mut probe.period_seconds, PROBE_PERIOD_SECONDS);
    fill(&mut probe.success_threshold, PROBE_SUCCESS_THRESHOLD);
    fill(&mut probe.failure_threshold, PROBE_FAILURE_THRESHOLD);
    if let Some(http) = probe.http_get.as_mut() {
        default_http_get(http);
    }
}

/// Defaults lifecycle hooks: HTTP path and scheme of HTTP hooks.
fn default_lifecycle(lifecycle: &mut Lifecycle) {
    for handler in [&mut lifecycle.pre_stop, &mut lifecycle.post_start]
        .into_iter()
        .flatten()
    {
        default_handler(handler);
    }
}

/// Defaults the HTTP action of a lifecycle handler.
fn default_handler(handler: &mut LifecycleHandler) {
    if let Some(http) = handler.http_get.as_mut() {
        default_http_get(http);
    }
}

/// Defaults an HTTP GET action: path `/`, scheme `HTTP`.
pub fn default_http_get(http: &mut HttpGetAction) {
    set_if_none(&mut http.path, PROBE_HTTP_PATH);
    set_if_none(&mut http.scheme, PROBE_HTTP_SCHEME);
}

/// Defaults a replication controller: 1 replica, selector and labels from the template, and
/// the template's pod spec.
pub fn default_replication_controller(rc: &mut ReplicationController) {
    fill_type_meta(&mut rc.api_version, &mut rc.kind, "ReplicationController");
    if rc.spec.replicas.is_none() {
        rc.spec.replicas = Some(1);
    }
    if let Some(template) = rc.spec.template.as_mut() {
        if rc.spec.selector.is_empty() {
            rc.spec.selector = template.metadata.labels.clone();
        }
        if rc.metadata.labels.is_empty() {
            rc.metadata.labels = template.metadata.labels.clone();
        }
        default_pod_spec(&mut template.spec);
    }
}

/// Defaults a service: protocol `TCP`, target port = port, type `ClusterIP`, affinity `None`.
pub fn default_service(service: &mut Service) {
    fill_type_meta(&mut service.api_version, &mut service.kind, "Service");
    for port in &mut service.spec.ports {
        set_if_none(&mut port.protocol, DEFAULT_PROTOCOL);
        if port.target_port.is_none() {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    set_if_none(&mut service.spec.type_, SERVICE_TYPE_CLUSTER_IP);
    set_if_none(&mut service.spec.session_affinity, SESSION_AFFINITY_NONE);
}

/// Defaults a node: allocatable equals capacity when the agent reports none.
pub fn default_node(node: &mut Node) {
    fill_type_meta(&mut node.api_version, &mut node.kind, "Node");
    if let Some(status) = node.status.as_mut()
        && status.allocatable.is_empty()
    {
        status.allocatable = status.capacity.clone();
    }
}

/// Sets `apiVersion: v1` and `kind` when decoding left them empty.
fn fill_type_meta(api_version: &mut String, kind: &mut String, wanted_kind: &str) {
    if api_version.is_empty() {
        *api_version = "v1".to_string();
    }
    if kind.is_empty() {
        *kind = wanted_kind.to_string();
    }
}

/// Sets an unset string field.
fn set_if_none(field: &mut Option<String>, value: &str) {
    if field.is_none() {
        *field = Some(value.to_string());
    }
}

/// Sets an unset number field.
fn fill(field: &mut Option<i32>, value: i32) {
    if field.is_none() {
        *field = Some(value);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::types::{
        NodeStatus, PodTemplateSpec, Quantity, ReplicationControllerSpec, ServicePort,
        TcpSocketAction,
    };

    fn container(image: &str) -> Container {
        Container {
            name: "c".into(),
            image: image.into(),
            ..Container::default()
        }
    }

    #[test]
    fn image_tags_follow_reference_rules() {
        assert_eq!(image_tag("busybox"), None);
        assert_eq!(image_tag("busybox:1.36"), Some("1.36"));
        assert_eq!(image_tag("localhost:5000/x"), None);
        assert_eq!(image_tag("localhost:5000/x:2"), Some("2"));
        assert_eq!(image_tag("127.0.0.1:5055/skiff/busybox:1"), Some("1"));
        assert_eq!(image_tag("app@sha256:abc"), None);
        assert_eq!(image_tag("app:1@sha256:abc"), Some("1"));
        assert_eq!(image_digest("app:1@sha256:abc"), Some("sha256:abc"));
    }

    #[test]
    fn pull_policy_depends_on_tag_and_digest() {
        for (image, want) in [
            ("busybox", "Always"),
            ("busybox:latest", "Always"),
            ("busybox:1.36", "IfNotPresent"),
            ("localhost:5000/x", "Always"),
            ("localhost:5000/x:v1", "IfNotPresent"),
            ("busybox@sha256:0123", "IfNotPresent"),
            ("busybox:latest@sha256:0123", "IfNotPresent"),
        ] {
            assert_eq!(default_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn pod_defaults_fill_every_unset_field() {
        let mut c = container("busybox");
        c.ports = vec![ContainerPort {
            container_port: 80,
            ..ContainerPort::default()
        }];
        c.liveness_probe = Some(Probe {
            http_get: Some(HttpGetAction {
                port: IntOrString::Int(80),
                ..HttpGetAction::default()
            }),
            ..Probe::default()
        });
        c.readiness_probe = Some(Probe {
            tcp_socket: Some(TcpSocketAction {
                port: IntOrString::Int(80),
                host: None,
            }),
            period_seconds: Some(3),
            ..Probe::default()
        });
        let mut pod = Pod {
            spec: PodSpec {
                containers: vec![c, container("nginx:1.25")],
                ..PodSpec::default()
            },
            ..Pod::default()
        };
        default_pod(&mut pod);
        assert_eq!(pod.api_version, "v1");
        assert_eq!(pod.kind, "Pod");
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(pod.spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(pod.spec.termination_grace_period_seconds, Some(30));
        let c0 = &pod.spec.containers[0];
        assert_eq!(c0.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(c0.ports[0].protocol.as_deref(), Some("TCP"));
        let live = c0.liveness_probe.as_ref().unwrap();
        assert_eq!(live.initial_delay_seconds, Some(0));
        assert_eq!(live.timeout_seconds, Some(1));
        assert_eq!(live.period_seconds, Some(10));
        assert_eq!(live.success_threshold, Some(1));
        assert_eq!(live.failure_threshold, Some(3));
        let http = live.http_get.as_ref().unwrap();
        assert_eq!(http.path.as_deref(), Some("/"));
        assert_eq!(http.scheme.as_deref(), Some("HTTP"));
        let ready = c0.readiness_probe.as_ref().unwrap();
        assert_eq!(ready.period_seconds, Some(3), "set values are kept");
        assert_eq!(
            pod.spec.containers[1].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
        let again = {
            let mut p = pod.clone();
            default_pod(&mut p);
            p
        };
        assert_eq!(again, pod, "defaulting is idempotent");
    }

    #[test]
    fn pod_defaults_keep_set_values() {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("edge".into());
        pod.spec.restart_policy = Some("Never".into());
        pod.spec.termination_grace_period_seconds = Some(5);
        let mut c = container("busybox");
        c.image_pull_policy = Some("Never".into());
        pod.spec.containers.push(c);
        default_pod(&mut pod);
        assert_eq!(pod.metadata.namespace.as_deref(), Some("edge"));
        assert_eq!(pod.spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.spec.termination_grace_period_seconds, Some(5));
        assert_eq!(
            pod.spec.containers[0].image_pull_policy.as_deref(),
            Some("Never")
        );
    }

    #[test]
    fn replication_controller_defaults_from_template() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let mut rc = ReplicationController {
            spec: ReplicationControllerSpec {
                template: Some(PodTemplateSpec {
                    metadata: crate::types::ObjectMeta {
                        labels: labels.clone(),
                        ..Default::default()
                    },
                    spec: PodSpec {
                        containers: vec![container("busybox:1")],
                        ..PodSpec::default()
                    },
                }),
                ..ReplicationControllerSpec::default()
            },
            ..ReplicationController::default()
        };
        default_replication_controller(&mut rc);
        assert_eq!(rc.spec.replicas, Some(1));
        assert_eq!(rc.spec.selector, labels);
        assert_eq!(rc.metadata.labels, labels);
        let spec = &rc.spec.template.as_ref().unwrap().spec;
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
    }

    #[test]
    fn service_defaults() {
        let mut svc = Service::default();
        svc.spec.ports.push(ServicePort {
            port: 80,
            ..ServicePort::default()
        });
        svc.spec.ports.push(ServicePort {
            port: 81,
            target_port: Some(IntOrString::String("http".into())),
            protocol: Some("UDP".into()),
            ..ServicePort::default()
        });
        default_service(&mut svc);
        assert_eq!(svc.spec.ports[0].protocol.as_deref(), Some("TCP"));
        assert_eq!(svc.spec.ports[0].target_port, Some(IntOrString::Int(80)));
        assert_eq!(svc.spec.ports[1].protocol.as_deref(), Some("UDP"));
        assert_eq!(
            svc.spec.ports[1].target_port,
            Some(IntOrString::String("http".into()))
        );
        assert_eq!(svc.spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(svc.spec.session_affinity.as_deref(), Some("None"));
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let capacity = BTreeMap::from([("cpu".to_string(), Quantity::from_units(4))]);
        let mut node = Node {
            status: Some(NodeStatus {
                capacity: capacity.clone(),
                ..NodeStatus::default()
            }),
            ..Node::default()
        };
        default_node(&mut node);
        assert_eq!(node.status.unwrap().allocatable, capacity);
    }
}
