//! Tests of manifest decoding and legacy conversion.

use serde_json::json;

use super::v1beta1::{
    ContainerManifest, EmptyDir, HostDir, ManifestContainer, ManifestHttpGet, ManifestProbe,
    ManifestTcpSocket, ManifestVolume, ManifestVolumeMount, ManifestVolumeSource, PullPolicy,
    RestartPolicy,
};
use super::*;
use crate::defaults::default_pod;
use crate::types::{ContainerPort, EnvVar, IntOrString, Quantity};
use crate::validation::validate_pod;

const LEGACY: &str = r#"
# a 2014 kubelet manifest
version: v1beta1
id: web
uuid: 6a1b2c3d-0000-4000-8000-000000000001
containers:
  - name: web
    image: nginx:1.25
    command: ["nginx", "-g", "daemon off;"]
    workingDir: /srv
    ports:
      - name: http
        containerPort: 80
        hostPort: 8080
        protocol: TCP
        hostIP: 127.0.0.1
    env:
      - name: MODE
        value: edge
    memory: 134217728
    cpu: 500
    volumeMounts:
      - name: data
        readOnly: true
        mountPath: /data
      - name: scratch
        path: /tmp/scratch
    livenessProbe:
      httpGet:
        path: /healthz
        port: 80
        host: 127.0.0.1
      initialDelaySeconds: 5
      timeoutSeconds: 2
    imagePullPolicy: PullIfNotPresent
  - name: sidecar
    image: busybox
    livenessProbe:
      tcpSocket:
        port: http
volumes:
  - name: data
    source:
      hostDir:
        path: /srv/data
  - name: scratch
    source:
      emptyDir: {}
restartPolicy:
  onFailure: {}
hostNetwork: false
"#;

fn legacy_manifest() -> ContainerManifest {
    ContainerManifest {
        version: "v1beta1".into(),
        id: "web".into(),
        uuid: Some("6a1b2c3d-0000-4000-8000-000000000001".into()),
        containers: vec![
            ManifestContainer {
                name: "web".into(),
                image: "nginx:1.25".into(),
                command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
                working_dir: Some("/srv".into()),
                ports: vec![ContainerPort {
                    name: Some("http".into()),
                    host_port: Some(8080),
                    container_port: 80,
                    protocol: Some("TCP".into()),
                    host_ip: Some("127.0.0.1".into()),
                }],
                env: vec![EnvVar {
                    name: "MODE".into(),
                    value: Some("edge".into()),
                }],
                memory: Some(134_217_728),
                cpu: Some(500),
                volume_mounts: vec![
                    ManifestVolumeMount {
                        name: "data".into(),
                        read_only: Some(true),
                        mount_path: "/data".into(),
                    },
                    ManifestVolumeMount {
                        name: "scratch".into(),
                        read_only: None,
                        mount_path: "/tmp/scratch".into(),
                    },
                ],
                liveness_probe: Some(ManifestProbe {
                    http_get: Some(ManifestHttpGet {
                        path: Some("/healthz".into()),
                        port: IntOrString::Int(80),
                        host: Some("127.0.0.1".into()),
                    }),
                    initial_delay_seconds: Some(5),
                    timeout_seconds: Some(2),
                    ..ManifestProbe::default()
                }),
                image_pull_policy: Some(PullPolicy::PullIfNotPresent),
            },
            ManifestContainer {
                name: "sidecar".into(),
                image: "busybox".into(),
                liveness_probe: Some(ManifestProbe {
                    tcp_socket: Some(ManifestTcpSocket {
                        port: IntOrString::String("http".into()),
                    }),
                    ..ManifestProbe::default()
                }),
                ..ManifestContainer::default()
            },
        ],
        volumes: vec![
            ManifestVolume {
                name: "data".into(),
                source: Some(ManifestVolumeSource {
                    host_dir: Some(HostDir {
                        path: "/srv/data".into(),
                    }),
                    empty_dir: None,
                }),
            },
            ManifestVolume {
                name: "scratch".into(),
                source: Some(ManifestVolumeSource {
                    host_dir: None,
                    empty_dir: Some(EmptyDir {}),
                }),
            },
        ],
        restart_policy: Some(RestartPolicy::OnFailure),
        host_network: Some(false),
    }
}

#[test]
fn legacy_yaml_parses_into_the_manifest_type() {
    let manifest: ContainerManifest = serde_saphyr::from_str(LEGACY).unwrap();
    assert_eq!(manifest, legacy_manifest());
}

#[test]
fn legacy_manifest_maps_every_field_onto_the_pod() {
    let pods = decode_documents(LEGACY).unwrap();
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert_eq!(pod.api_version, "v1");
    assert_eq!(pod.kind, "Pod");
    assert_eq!(pod.metadata.name.as_deref(), Some("web"));
    assert_eq!(
        pod.metadata.uid.as_deref(),
        Some("6a1b2c3d-0000-4000-8000-000000000001")
    );
    assert_eq!(pod.spec.restart_policy.as_deref(), Some("OnFailure"));
    assert_eq!(pod.spec.host_network, Some(false));
    let web = &pod.spec.containers[0];
    assert_eq!(web.command, ["nginx", "-g", "daemon off;"]);
    assert_eq!(web.working_dir.as_deref(), Some("/srv"));
    assert_eq!(web.ports[0].host_port, Some(8080));
    assert_eq!(web.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(web.env[0].value.as_deref(), Some("edge"));
    let limits = &web.resources.as_ref().unwrap().limits;
    assert_eq!(limits["memory"].to_string(), "128Mi");
    assert_eq!(limits["memory"].as_units(), 134_217_728);
    assert_eq!(limits["cpu"].to_string(), "500m");
    assert_eq!(web.volume_mounts[0].read_only, Some(true));
    assert_eq!(web.volume_mounts[1].mount_path, "/tmp/scratch");
    let probe = web.liveness_probe.as_ref().unwrap();
    let http = probe.http_get.as_ref().unwrap();
    assert_eq!(http.path.as_deref(), Some("/healthz"));
    assert_eq!(http.port, IntOrString::Int(80));
    assert_eq!(http.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(probe.initial_delay_seconds, Some(5));
    assert_eq!(probe.timeout_seconds, Some(2));
    assert_eq!(web.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let sidecar = &pod.spec.containers[1];
    assert_eq!(
        sidecar
            .liveness_probe
            .as_ref()
            .unwrap()
            .tcp_socket
            .as_ref()
            .unwrap()
            .port,
        IntOrString::String("http".into())
    );
    assert_eq!(
        pod.spec.volumes[0].host_path.as_ref().unwrap().path,
        "/srv/data"
    );
    assert!(pod.spec.volumes[1].empty_dir.is_some());

    let mut defaulted = pod.clone();
    default_pod(&mut defaulted);
    assert_eq!(validate_pod(&defaulted), vec![]);
}

#[test]
fn legacy_manifest_round_trips_through_a_pod() {
    let manifest = legacy_manifest();
    let pod = manifest_to_pod(&manifest).unwrap();
    assert_eq!(pod_to_manifest(&pod).unwrap(), manifest);
}

#[test]
fn defaulted_legacy_pods_still_convert_back() {
    let manifest = legacy_manifest();
    let mut pod = manifest_to_pod(&manifest).unwrap();
    default_pod(&mut pod);
    let back = pod_to_manifest(&pod).unwrap();
    assert_eq!(back.id, manifest.id);
    assert_eq!(back.containers[0].memory, Some(134_217_728));
    assert_eq!(
        back.containers[1].image_pull_policy,
        Some(PullPolicy::PullAlways)
    );
}

#[test]
fn restart_policy_accepts_maps_and_plain_names() {
    for (text, want) in [
        ("{always: {}}", RestartPolicy::Always),
        ("{onFailure: {}}", RestartPolicy::OnFailure),
        ("{never: {}}", RestartPolicy::Never),
        ("Always", RestartPolicy::Always),
        ("OnFailure", RestartPolicy::OnFailure),
        ("never", RestartPolicy::Never),
    ] {
        let got: RestartPolicy = serde_saphyr::from_str(text).unwrap();
        assert_eq!(got, want, "{text}");
    }
    assert_eq!(
        serde_json::to_value(RestartPolicy::OnFailure).unwrap(),
        json!({"onFailure": {}})
    );
    for bad in ["Sometimes", "{always: {}, never: {}}", "{}"] {
        assert!(
            serde_saphyr::from_str::<RestartPolicy>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn pull_policies_accept_legacy_and_v1_names() {
    let legacy: PullPolicy = serde_json::from_value(json!("PullNever")).unwrap();
    assert_eq!(legacy, PullPolicy::PullNever);
    let v1: PullPolicy = serde_json::from_value(json!("IfNotPresent")).unwrap();
    assert_eq!(v1, PullPolicy::PullIfNotPresent);
    assert_eq!(
        serde_json::to_value(PullPolicy::PullAlways).unwrap(),
        json!("PullAlways")
    );
}

#[test]
fn volumes_without_a_source_are_empty_dirs_and_two_sources_are_an_error() {
    let pod = decode_document(json!({
        "version": "v1beta1", "id": "a",
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "v"}]
    }))
    .unwrap();
    assert!(pod.spec.volumes[0].empty_dir.is_some());
    let err = decode_document(json!({
        "version": "v1beta1", "id": "a",
        "volumes": [{"name": "v", "source": {"hostDir": {"path": "/x"}, "emptyDir": {}}}]
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid v1beta1 ContainerManifest: volumes[v].source: may not specify both hostDir and emptyDir"
    );
}

#[test]
fn v1_pods_decode_as_they_are() {
    let pod = decode_document(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "busybox", "ports": [{"containerPort": 80}]}]}
    }))
    .unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("web"));
    assert_eq!(pod.spec.containers[0].ports[0].container_port, 80);
}

#[test]
fn unsupported_documents_name_what_they_saw() {
    let cases = [
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
            "kind: Deployment is not supported; expected a v1 Pod or a v1beta1 ContainerManifest",
        ),
        (
            json!({"apiVersion": "v1beta3", "kind": "Pod"}),
            "apiVersion: v1beta3 is not supported for kind: Pod; expected a v1 Pod or a v1beta1 ContainerManifest",
        ),
        (
            json!({"apiVersion": "v1"}),
            "apiVersion: v1 is set but kind is missing; expected a v1 Pod or a v1beta1 ContainerManifest",
        ),
        (
            json!({"version": "v1beta2", "id": "x"}),
            "version: v1beta2 is not supported; expected a v1 Pod or a v1beta1 ContainerManifest",
        ),
        (
            json!({"id": "x", "containers": []}),
            "the document has neither apiVersion and kind nor version; expected a v1 Pod or a v1beta1 ContainerManifest",
        ),
        (
            json!("hello"),
            "the document is a string, not a mapping; expected a v1 Pod or a v1beta1 ContainerManifest",
        ),
        (
            json!([1, 2]),
            "the document is a list, not a mapping; expected a v1 Pod or a v1beta1 ContainerManifest",
        ),
    ];
    for (value, want) in cases {
        assert_eq!(decode_document(value).unwrap_err().to_string(), want);
    }
}

#[test]
fn type_errors_without_source_text_have_no_position() {
    let err = decode_document(json!({
        "apiVersion": "v1", "kind": "Pod",
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "eighty"}]}]}
    }))
    .unwrap_err();
    assert!(
        matches!(
            &err,
            ConversionError::Decode {
                what: "v1 Pod",
                line: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("invalid v1 Pod: invalid type: string \"eighty\""),
        "{err}"
    );
}

const MULTI: &str = r#"---
# first
apiVersion: v1
kind: Pod
metadata:
  name: one
spec:
  containers:
    - name: c
      image: busybox
---
---
# an empty document above is skipped
version: v1beta1
id: two
containers:
  - name: c
    image: busybox
...
---
apiVersion: v1
kind: Pod
metadata: {name: three}
spec: {containers: [{name: c, image: busybox}]}
"#;

#[test]
fn multi_document_yaml_skips_empty_documents() {
    let pods = decode_documents(MULTI).unwrap();
    let names: Vec<&str> = pods
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
    assert!(decode_documents("").unwrap().is_empty());
    assert!(
        decode_documents("---\n# nothing\n---\n")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    let err = decode_documents("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n").unwrap_err();
    assert!(matches!(err, ConversionError::Yaml { .. }), "{err:?}");
    assert!(err.line().is_some(), "{err:?}");
    assert!(err.column().is_some(), "{err:?}");
    assert!(
        err.to_string().starts_with("invalid YAML at line "),
        "{err}"
    );
}

#[test]
fn yaml_type_errors_carry_the_document_and_the_line() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: i}]}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\nspec:\n  containers:\n    - name: c\n      image: i\n      ports:\n        - containerPort: eighty\n";
    let err = decode_documents(text).unwrap_err();
    let ConversionError::InDocument {
        index,
        line,
        source,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*index, 2);
    assert_eq!(*line, Some(6));
    assert_eq!(err.line(), Some(15), "{err}");
    assert!(
        matches!(
            source.as_ref(),
            ConversionError::Decode { what: "v1 Pod", .. }
        ),
        "{source:?}"
    );
    assert!(
        err.to_string()
            .starts_with("document 2 at line 6: invalid v1 Pod at line 15, column "),
        "{err}"
    );
    let kind = decode_documents("apiVersion: v1\nkind: Pod\n---\nkind: Deployment\n").unwrap_err();
    assert_eq!(
        kind.to_string(),
        "document 2 at line 4: kind: Deployment is not supported; expected a v1 Pod or a v1beta1 ContainerManifest"
    );
}

#[test]
fn single_document_errors_are_not_wrapped() {
    let err = decode_documents("kind: Deployment\n").unwrap_err();
    assert_eq!(err, ConversionError::UnsupportedKind("Deployment".into()));
}

#[test]
fn json_files_decode_one_or_many_values() {
    let one = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}"#;
    assert_eq!(decode_documents(one).unwrap().len(), 1);
    let many = format!("{one}\n{one}\n");
    assert_eq!(decode_documents(&many).unwrap().len(), 2);
    let array = format!("[{one}, {one}, {one}]");
    assert_eq!(decode_documents(&array).unwrap().len(), 3);
    let legacy = r#"{"version": "v1beta1", "id": "b", "containers": [{"name": "c", "image": "i", "cpu": 250}]}"#;
    let pods = decode_documents(legacy).unwrap();
    assert_eq!(
        pods[0].spec.containers[0]
            .resources
            .as_ref()
            .unwrap()
            .limits["cpu"],
        Quantity::from_millis(250)
    );
}

#[test]
fn json_errors_carry_line_and_column() {
    let err = decode_documents("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\"\n  \"x\": 1\n}")
        .unwrap_err();
    assert_eq!(
        err,
        ConversionError::Json {
            message: "expected `,` or `}`".into(),
            line: 4,
            column: 3
        }
    );
    let text = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}\n{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"spec\": {\"containers\": [{\"name\": 5}]}\n}\n";
    let err = decode_documents(text).unwrap_err();
    assert_eq!(err.line(), Some(5), "{err}");
    assert!(
        err.to_string()
            .starts_with("document 2 at line 2: invalid v1 Pod at line 5, column "),
        "{err}"
    );
}

/// A change made to a pod in a test case.
type PodChange = dyn Fn(&mut crate::types::Pod);

#[test]
fn pods_with_fields_the_legacy_format_lacks_do_not_convert() {
    let base = manifest_to_pod(&legacy_manifest()).unwrap();
    let cases: Vec<(Box<PodChange>, &str)> = vec![
        (
            Box::new(|p| p.spec.containers[0].args = vec!["x".into()]),
            "spec.containers[0].args",
        ),
        (
            Box::new(|p| p.spec.containers[0].readiness_probe = Some(Default::default())),
            "spec.containers[0].readinessProbe",
        ),
        (
            Box::new(|p| {
                if let Some(r) = p.spec.containers[0].resources.as_mut() {
                    r.limits.insert("memory".into(), "1.5".parse().unwrap());
                }
            }),
            "spec.containers[0].resources.limits[memory]",
        ),
        (
            Box::new(|p| {
                if let Some(r) = p.spec.containers[0].resources.as_mut() {
                    r.requests.insert("cpu".into(), Quantity::from_millis(1));
                }
            }),
            "spec.containers[0].resources.requests",
        ),
        (
            Box::new(|p| {
                if let Some(probe) = p.spec.containers[0].liveness_probe.as_mut() {
                    probe.period_seconds = Some(3);
                }
            }),
            "spec.containers[0].livenessProbe.periodSeconds",
        ),
        (
            Box::new(|p| p.spec.volumes[1].empty_dir = None),
            "spec.volumes[1]",
        ),
        (
            Box::new(|p| p.spec.restart_policy = Some("Sometimes".into())),
            "spec.restartPolicy",
        ),
    ];
    for (change, field) in cases {
        let mut pod = base.clone();
        change(&mut pod);
        match pod_to_manifest(&pod) {
            Err(ConversionError::NotRepresentable { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn quantities_decode_from_yaml_numbers_and_strings() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers:\n    - name: c\n      image: i\n      resources:\n        limits: {cpu: 0.5, memory: 128Mi}\n        requests: {cpu: 2}\n";
    let pods = decode_documents(text).unwrap();
    let resources = pods[0].spec.containers[0].resources.as_ref().unwrap();
    assert_eq!(resources.limits["cpu"].to_string(), "500m");
    assert_eq!(resources.limits["memory"].to_string(), "128Mi");
    assert_eq!(resources.requests["cpu"].to_string(), "2");
}
