//! One test per pod rule, and the accumulation test.

use std::collections::BTreeMap;

use super::*;
use crate::defaults::default_pod;
use crate::types::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction, HostPathVolumeSource,
    HttpGetAction, IntOrString, Lifecycle, LifecycleHandler, ObjectMeta, Pod, PodSpec, Probe,
    Quantity, ResourceRequirements, TcpSocketAction, Volume, VolumeMount,
};

fn container(name: &str) -> Container {
    Container {
        name: name.into(),
        image: "busybox:1.36".into(),
        ..Container::default()
    }
}

fn pod_with(containers: Vec<Container>) -> Pod {
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..ObjectMeta::default()
        },
        spec: PodSpec {
            containers,
            ..PodSpec::default()
        },
        ..Pod::default()
    };
    default_pod(&mut pod);
    pod
}

fn pod() -> Pod {
    pod_with(vec![container("web")])
}

/// Validates after re-defaulting and returns `(field, kind)` of every error.
fn errors_of(mut pod: Pod) -> Vec<(String, FieldErrorKind)> {
    default_pod(&mut pod);
    validate_pod(&pod)
        .into_iter()
        .map(|e| (e.field, e.kind))
        .collect()
}

fn one(field: &str, kind: FieldErrorKind) -> Vec<(String, FieldErrorKind)> {
    vec![(field.to_string(), kind)]
}

fn http_probe(port: IntOrString) -> Probe {
    Probe {
        http_get: Some(HttpGetAction {
            port,
            ..HttpGetAction::default()
        }),
        ..Probe::default()
    }
}

#[test]
fn a_good_pod_is_valid() {
    let mut c = container("web");
    c.ports = vec![ContainerPort {
        name: Some("http".into()),
        container_port: 80,
        host_port: Some(8080),
        ..ContainerPort::default()
    }];
    c.liveness_probe = Some(http_probe(IntOrString::String("http".into())));
    c.readiness_probe = Some(Probe {
        tcp_socket: Some(TcpSocketAction {
            port: IntOrString::Int(80),
            host: None,
        }),
        ..Probe::default()
    });
    c.env = vec![EnvVar {
        name: "MY_VAR.x-1".into(),
        value: Some("1".into()),
    }];
    c.volume_mounts = vec![VolumeMount {
        name: "data".into(),
        mount_path: "/data".into(),
        read_only: None,
    }];
    c.resources = Some(ResourceRequirements {
        limits: BTreeMap::from([("cpu".into(), Quantity::from_millis(500))]),
        requests: BTreeMap::from([("cpu".into(), Quantity::from_millis(500))]),
    });
    let mut p = pod_with(vec![c]);
    p.spec.volumes = vec![Volume {
        name: "data".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    assert_eq!(validate_pod(&p), vec![]);
}

#[test]
fn bad_name_duplicate_container_and_port_yield_exactly_three_causes() {
    let mut second = container("web");
    second.ports = vec![ContainerPort {
        container_port: 70000,
        ..ContainerPort::default()
    }];
    let mut p = pod_with(vec![container("web"), second]);
    p.metadata.name = Some("Bad_Name".into());
    let errors = validate_pod(&p);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "metadata.name",
            "spec.containers[1].ports[0].containerPort",
            "spec.containers[1].name",
        ]
    );
    let status = to_status("Pod", "Bad_Name", &errors);
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    let causes = &status.details.as_ref().unwrap().causes;
    assert_eq!(causes.len(), 3);
    assert_eq!(causes[0].reason, "FieldValueInvalid");
    assert_eq!(causes[1].reason, "FieldValueInvalid");
    assert_eq!(causes[2].reason, "FieldValueDuplicate");
    assert_eq!(
        errors[1].to_string(),
        "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
    assert_eq!(
        errors[2].to_string(),
        r#"spec.containers[1].name: Duplicate value: "web""#
    );
    assert!(status.message.starts_with(r#"Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#));
}

#[test]
fn at_least_one_container() {
    assert_eq!(
        errors_of(pod_with(vec![])),
        one("spec.containers", FieldErrorKind::Required)
    );
}

#[test]
fn container_names_are_dns_labels() {
    assert_eq!(
        errors_of(pod_with(vec![container("Web_1")])),
        one("spec.containers[0].name", FieldErrorKind::Invalid)
    );
    assert_eq!(
        errors_of(pod_with(vec![container("")])),
        one("spec.containers[0].name", FieldErrorKind::Required)
    );
}

#[test]
fn image_is_required() {
    let mut c = container("web");
    c.image = String::new();
    assert_eq!(
        errors_of(pod_with(vec![c])),
        one("spec.containers[0].image", FieldErrorKind::Required)
    );
    let mut c = container("web");
    c.image = " busybox".into();
    assert_eq!(
        errors_of(pod_with(vec![c])),
        one("spec.containers[0].image", FieldErrorKind::Invalid)
    );
}

#[test]
fn volumes_have_unique_label_names_and_one_source() {
    let mut p = pod();
    p.spec.volumes = vec![
        Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        Volume {
            name: "Bad".into(),
            ..Volume::default()
        },
        Volume {
            name: "both".into(),
            host_path: Some(HostPathVolumeSource {
                path: "/srv".into(),
                type_: None,
            }),
            empty_dir: Some(EmptyDirVolumeSource::default()),
        },
        Volume {
            name: "rel".into(),
            host_path: Some(HostPathVolumeSource {
                path: "srv".into(),
                type_: Some("Weird".into()),
            }),
            ..Volume::default()
        },
        Volume {
            name: "mem".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Tape".into()),
                size_limit: None,
            }),
            ..Volume::default()
        },
    ];
    assert_eq!(
        errors_of(p),
        [
            (
                "spec.volumes[1].name".to_string(),
                FieldErrorKind::Duplicate
            ),
            ("spec.volumes[2].name".to_string(), FieldErrorKind::Invalid),
            ("spec.volumes[2]".to_string(), FieldErrorKind::Required),
            (
                "spec.volumes[3].emptyDir".to_string(),
                FieldErrorKind::Forbidden
            ),
            (
                "spec.volumes[4].hostPath.path".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.volumes[4].hostPath.type".to_string(),
                FieldErrorKind::NotSupported
            ),
            (
                "spec.volumes[5].emptyDir.medium".to_string(),
                FieldErrorKind::NotSupported
            ),
        ]
    );
}

#[test]
fn volume_mounts_name_declared_volumes_at_absolute_paths() {
    let mut c = container("web");
    c.volume_mounts = vec![
        VolumeMount {
            name: "missing".into(),
            mount_path: "/a".into(),
            read_only: None,
        },
        VolumeMount {
            name: "data".into(),
            mount_path: "relative".into(),
            read_only: None,
        },
        VolumeMount {
            name: "data".into(),
            mount_path: String::new(),
            read_only: None,
        },
        VolumeMount {
            name: "data".into(),
            mount_path: "/a".into(),
            read_only: None,
        },
    ];
    let mut p = pod_with(vec![c]);
    p.spec.volumes = vec![Volume {
        name: "data".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    let errors = validate_pod(&p);
    assert_eq!(
        errors[0].to_string(),
        r#"spec.containers[0].volumeMounts[0].name: Not found: "missing""#
    );
    assert_eq!(
        errors_of(p),
        [
            (
                "spec.containers[0].volumeMounts[0].name".to_string(),
                FieldErrorKind::NotFound
            ),
            (
                "spec.containers[0].volumeMounts[1].mountPath".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].volumeMounts[2].mountPath".to_string(),
                FieldErrorKind::Required
            ),
            (
                "spec.containers[0].volumeMounts[3].mountPath".to_string(),
                FieldErrorKind::Invalid
            ),
        ]
    );
}

#[test]
fn port_numbers_are_in_range() {
    let mut c = container("web");
    c.ports = vec![
        ContainerPort {
            container_port: 0,
            ..ContainerPort::default()
        },
        ContainerPort {
            container_port: -1,
            host_port: Some(65536),
            ..ContainerPort::default()
        },
        ContainerPort {
            container_port: 65535,
            host_port: Some(1),
            ..ContainerPort::default()
        },
    ];
    assert_eq!(
        errors_of(pod_with(vec![c])),
        [
            (
                "spec.containers[0].ports[0].containerPort".to_string(),
                FieldErrorKind::Required
            ),
            (
                "spec.containers[0].ports[1].containerPort".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].ports[1].hostPort".to_string(),
                FieldErrorKind::Invalid
            ),
        ]
    );
}

#[test]
fn the_same_host_port_and_protocol_twice_is_a_duplicate() {
    let port = |host: i32, protocol: &str| ContainerPort {
        container_port: 80,
        host_port: Some(host),
        protocol: Some(protocol.into()),
        ..ContainerPort::default()
    };
    let mut a = container("a");
    a.ports = vec![port(8080, "TCP"), port(8080, "UDP")];
    let mut b = container("b");
    b.ports = vec![port(8080, "TCP")];
    let p = pod_with(vec![a, b]);
    let errors = validate_pod(&p);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].to_string(),
        r#"spec.containers[1].ports[0].hostPort: Duplicate value: "8080/TCP""#
    );
}

#[test]
fn host_network_ports_must_match() {
    let mut c = container("web");
    c.ports = vec![ContainerPort {
        container_port: 80,
        host_port: Some(8080),
        ..ContainerPort::default()
    }];
    let mut p = pod_with(vec![c]);
    p.spec.host_network = Some(true);
    assert_eq!(
        errors_of(p),
        one(
            "spec.containers[0].ports[0].hostPort",
            FieldErrorKind::Invalid
        )
    );
}

#[test]
fn port_names_are_iana_names_and_unique() {
    let named = |name: &str, port: i32| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        ..ContainerPort::default()
    };
    let mut c = container("web");
    c.ports = vec![named("http", 80), named("http", 81), named("HTTP--x", 82)];
    assert_eq!(
        errors_of(pod_with(vec![c])),
        [
            (
                "spec.containers[0].ports[1].name".to_string(),
                FieldErrorKind::Duplicate
            ),
            (
                "spec.containers[0].ports[2].name".to_string(),
                FieldErrorKind::Invalid
            ),
        ]
    );
}

#[test]
fn policies_and_protocols_are_from_fixed_sets() {
    let mut c = container("web");
    c.image_pull_policy = Some("Sometimes".into());
    c.ports = vec![ContainerPort {
        container_port: 80,
        protocol: Some("ICMP".into()),
        host_ip: Some("not-an-ip".into()),
        ..ContainerPort::default()
    }];
    let mut p = pod_with(vec![c]);
    p.spec.restart_policy = Some("Sometimes".into());
    let errors = validate_pod(&p);
    assert_eq!(
        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        [
            r#"spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP""#,
            r#"spec.containers[0].ports[0].hostIP: Invalid value: "not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
            r#"spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never""#,
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
        ]
    );
}

#[test]
fn probes_need_exactly_one_handler() {
    let mut c = container("web");
    c.liveness_probe = Some(Probe::default());
    c.readiness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: vec!["true".into()],
        }),
        tcp_socket: Some(TcpSocketAction {
            port: IntOrString::Int(80),
            host: None,
        }),
        ..Probe::default()
    });
    let p = pod_with(vec![c]);
    let errors = validate_pod(&p);
    assert_eq!(
        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        [
            "spec.containers[0].livenessProbe: Required value: must specify a handler type",
            "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        ]
    );
}

#[test]
fn probe_timings_and_thresholds() {
    let mut c = container("web");
    c.liveness_probe = Some(Probe {
        period_seconds: Some(0),
        timeout_seconds: Some(0),
        success_threshold: Some(2),
        failure_threshold: Some(0),
        initial_delay_seconds: Some(-1),
        ..http_probe(IntOrString::Int(80))
    });
    c.readiness_probe = Some(Probe {
        success_threshold: Some(3),
        ..http_probe(IntOrString::Int(80))
    });
    assert_eq!(
        errors_of(pod_with(vec![c])),
        [
            (
                "spec.containers[0].livenessProbe.initialDelaySeconds".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].livenessProbe.timeoutSeconds".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].livenessProbe.periodSeconds".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].livenessProbe.failureThreshold".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].livenessProbe.successThreshold".to_string(),
                FieldErrorKind::Invalid
            ),
        ]
    );
}

#[test]
fn probe_ports_are_numbers_in_range_or_port_names() {
    let mut c = container("web");
    c.liveness_probe = Some(http_probe(IntOrString::Int(0)));
    c.readiness_probe = Some(Probe {
        tcp_socket: Some(TcpSocketAction {
            port: IntOrString::String("Not_A_Name".into()),
            host: None,
        }),
        ..Probe::default()
    });
    assert_eq!(
        errors_of(pod_with(vec![c])),
        [
            (
                "spec.containers[0].livenessProbe.httpGet.port".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].readinessProbe.tcpSocket.port".to_string(),
                FieldErrorKind::Invalid
            ),
        ]
    );
}

#[test]
fn lifecycle_hooks_need_one_handler() {
    let mut c = container("web");
    c.lifecycle = Some(Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction { command: vec![] }),
            ..LifecycleHandler::default()
        }),
        post_start: Some(LifecycleHandler::default()),
    });
    assert_eq!(
        errors_of(pod_with(vec![c])),
        [
            (
                "spec.containers[0].lifecycle.preStop.exec.command".to_string(),
                FieldErrorKind::Required
            ),
            (
                "spec.containers[0].lifecycle.postStart".to_string(),
                FieldErrorKind::Required
            ),
        ]
    );
}

#[test]
fn resources_are_non_negative_and_requests_fit_limits() {
    let mut c = container("web");
    c.resources = Some(ResourceRequirements {
        limits: BTreeMap::from([
            ("cpu".into(), "1".parse().unwrap()),
            ("memory".into(), "-1Mi".parse().unwrap()),
        ]),
        requests: BTreeMap::from([("cpu".into(), "1500m".parse().unwrap())]),
    });
    let errors = validate_pod(&pod_with(vec![c]));
    assert_eq!(
        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        [
            r#"spec.containers[0].resources.limits[memory]: Invalid value: "-1Mi": must be greater than or equal to 0"#,
            r#"spec.containers[0].resources.requests[cpu]: Invalid value: "1500m": must be less than or equal to cpu limit of 1"#,
        ]
    );
}

#[test]
fn grace_period_is_non_negative() {
    let mut p = pod();
    p.spec.termination_grace_period_seconds = Some(-1);
    assert_eq!(
        errors_of(p),
        one(
            "spec.terminationGracePeriodSeconds",
            FieldErrorKind::Invalid
        )
    );
}

#[test]
fn env_var_names() {
    let mut c = container("web");
    c.env = vec![
        EnvVar {
            name: "1BAD".into(),
            value: None,
        },
        EnvVar {
            name: String::new(),
            value: None,
        },
    ];
    assert_eq!(
        errors_of(pod_with(vec![c])),
        [
            (
                "spec.containers[0].env[0].name".to_string(),
                FieldErrorKind::Invalid
            ),
            (
                "spec.containers[0].env[1].name".to_string(),
                FieldErrorKind::Required
            ),
        ]
    );
}

#[test]
fn node_selector_node_name_and_hostname() {
    let mut p = pod();
    p.spec.node_selector.insert("bad key".into(), "v".into());
    p.spec.node_name = Some("Node_1".into());
    p.spec.hostname = Some("a.b".into());
    assert_eq!(
        errors_of(p),
        [
            ("spec.nodeSelector".to_string(), FieldErrorKind::Invalid),
            ("spec.nodeName".to_string(), FieldErrorKind::Invalid),
            ("spec.hostname".to_string(), FieldErrorKind::Invalid),
        ]
    );
}

#[test]
fn undefaulted_pods_do_not_panic_and_unset_fields_are_fine() {
    let p = Pod {
        metadata: ObjectMeta {
            name: Some("x".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: PodSpec {
            containers: vec![container("c")],
            ..PodSpec::default()
        },
        ..Pod::default()
    };
    assert_eq!(validate_pod(&p), vec![]);
    assert_eq!(
        validate_pod(&Pod::default())
            .into_iter()
            .map(|e| e.field)
            .collect::<Vec<_>>(),
        ["metadata.name", "metadata.namespace", "spec.containers"]
    );
}

#[test]
fn updates_may_change_images_and_set_the_node_only() {
    let old = pod();
    let mut new = old.clone();
    new.spec.containers[0].image = "busybox:1.37".into();
    new.spec.node_name = Some("edge-1".into());
    assert_eq!(validate_pod_update(&new, &old), vec![]);

    let bound = new.clone();
    let mut moved = bound.clone();
    moved.spec.node_name = Some("edge-2".into());
    let errors = validate_pod_update(&moved, &bound);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "spec.nodeName");
    assert_eq!(errors[0].kind, FieldErrorKind::Forbidden);

    let mut changed = bound.clone();
    changed.spec.containers[0].command = vec!["sh".into()];
    changed.spec.restart_policy = Some("Never".into());
    let errors = validate_pod_update(&changed, &bound);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN_MSG}")
    );

    let mut renamed = bound.clone();
    renamed.metadata.name = Some("other".into());
    renamed.metadata.namespace = Some("edge".into());
    let fields: Vec<String> = validate_pod_update(&renamed, &bound)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["metadata.name", "metadata.namespace"]);

    let mut new_uid = bound.clone();
    new_uid.metadata.uid = Some("b".into());
    let mut old_uid = bound;
    old_uid.metadata.uid = Some("a".into());
    assert_eq!(
        validate_pod_update(&new_uid, &old_uid)[0].field,
        "metadata.uid"
    );
}

#[test]
fn invalid_updates_also_report_the_new_pods_problems() {
    let old = pod();
    let mut new = old.clone();
    new.spec.containers[0].image = String::new();
    new.spec.containers.push(container("extra"));
    let fields: Vec<String> = validate_pod_update(&new, &old)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["spec.containers[0].image", "spec"]);
}
