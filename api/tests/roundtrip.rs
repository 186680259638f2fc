//! Every wire type survives value → JSON → value, value → YAML → value, and JSON text →
//! value → JSON text unchanged, for generated values.

use std::collections::BTreeMap;
use std::fmt::Debug;

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use skiff_api::Status;
use skiff_api::conversion::v1beta1::{
    ContainerManifest, EmptyDir, HostDir, ManifestContainer, ManifestHttpGet, ManifestProbe,
    ManifestTcpSocket, ManifestVolume, ManifestVolumeMount, ManifestVolumeSource, PullPolicy,
    RestartPolicy,
};
use skiff_api::conversion::{manifest_to_pod, pod_to_manifest};
use skiff_api::status::{StatusCause, StatusDetails};
use skiff_api::types::{
    Binding, Container, ContainerManifestList, ContainerPort, ContainerState,
    ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    EmptyDirVolumeSource, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, EnvVar,
    ExecAction, HostPathVolumeSource, HttpGetAction, HttpHeader, IntOrString, Lifecycle,
    LifecycleHandler, List, ListMeta, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus,
    NodeSystemInfo, ObjectMeta, ObjectReference, OwnerReference, Pod, PodCondition, PodSpec,
    PodStatus, PodTemplateSpec, Probe, Quantity, ReplicationController, ReplicationControllerSpec,
    ReplicationControllerStatus, ResourceRequirements, Service, ServicePort, ServiceSpec,
    TcpSocketAction, Time, Volume, VolumeMount, WatchEvent,
};

/// Cases per property: enough to reach the corners, few enough to keep the suite fast.
const CASES: u32 = 64;

// ---------------------------------------------------------------------------------------
// The three identities.

/// value → JSON → value, value → YAML → value, and JSON text → value → JSON text.
fn assert_round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let json_text = serde_json::to_string(value).map_err(fail)?;
    let from_json: T = serde_json::from_str(&json_text).map_err(fail)?;
    prop_assert_eq!(&from_json, value, "JSON: {}", json_text);

    let again = serde_json::to_string(&from_json).map_err(fail)?;
    prop_assert_eq!(&again, &json_text, "JSON text");

    let yaml_text = serde_saphyr::to_string(value).map_err(fail)?;
    let from_yaml: T = serde_saphyr::from_str(&yaml_text)
        .map_err(|e| TestCaseError::fail(format!("{e}\nYAML:\n{yaml_text}")))?;
    prop_assert_eq!(&from_yaml, value, "YAML:\n{}", yaml_text);
    Ok(())
}

/// Any error as a test failure.
fn fail(error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

// ---------------------------------------------------------------------------------------
// Scalars.

/// Strings that stress quoting in YAML and escaping in JSON.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[a-zA-Z0-9 ._/:-]{0,12}",
        1 => "\\PC{0,8}",
        1 => prop::sample::select(vec![
            "", "null", "~", "true", "false", "yes", "no", "on", "off", "123", "-1", "0x1F",
            "1e3", "1.5", ".inf", "a: b", "- x", "#c", "x #y", "'q'", "\"d\"", "{a}", "[b]",
            "&anchor", "*alias", "!tag", "%p", "@at", "`tick", "|", ">", " lead", "trail ",
            "line\nbreak", "tab\there", "2026-01-02", "2026-01-02T03:04:05Z", "<<",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

/// DNS-label-like names.
fn name() -> BoxedStrategy<String> {
    "[a-z][a-z0-9-]{0,10}".boxed()
}

/// Optional values, half the time absent.
fn opt<S: Strategy>(strategy: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::of(strategy)
}

/// Short lists.
fn few<S: Strategy>(strategy: S) -> impl Strategy<Value = Vec<S::Value>> {
    prop::collection::vec(strategy, 0..3)
}

/// Small string maps with arbitrary keys and values.
fn string_map() -> BoxedStrategy<BTreeMap<String, String>> {
    prop::collection::btree_map(text(), text(), 0..3).boxed()
}

/// A time at second precision, as stored.
fn time() -> BoxedStrategy<Time> {
    (0i64..4_102_444_800)
        .prop_map(|secs| Time::from_unix(secs).expect("in range"))
        .boxed()
}

/// Quantities written in their canonical form, so printing gives back the same text.
fn quantity() -> BoxedStrategy<Quantity> {
    let binary = (
        1i64..100_000,
        prop::sample::select(vec!["Ki", "Mi", "Gi", "Ti"]),
    )
        .prop_filter("not a larger binary unit", |(n, _)| n % 1024 != 0)
        .prop_map(|(n, suffix)| format!("{n}{suffix}"));
    let decimal = (
        1i64..100_000,
        prop::sample::select(vec!["", "k", "M", "G", "T", "m", "u", "n"]),
    )
        .prop_filter("not a larger decimal unit", |(n, _)| n % 1000 != 0)
        .prop_map(|(n, suffix)| format!("{n}{suffix}"));
    let exponent = (1i64..1000, prop::sample::select(vec![3, 6, 9, -3, -6]))
        .prop_map(|(n, exp)| format!("{n}e{exp}"));
    (
        any::<bool>(),
        prop_oneof![binary, decimal, exponent, Just("0".to_string())],
    )
        .prop_map(|(negative, text)| {
            let text = if negative && text != "0" {
                format!("-{text}")
            } else {
                text
            };
            text.parse().expect("canonical quantity")
        })
        .boxed()
}

/// Resource maps such as limits and capacity.
fn resource_map() -> BoxedStrategy<BTreeMap<String, Quantity>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["cpu", "memory", "pods", "ephemeral-storage"])
            .prop_map(str::to_string),
        quantity(),
        0..3,
    )
    .boxed()
}

/// A port number or a port name.
fn int_or_string() -> BoxedStrategy<IntOrString> {
    prop_oneof![
        any::<i32>().prop_map(IntOrString::Int),
        text().prop_map(IntOrString::String),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Metadata.

fn owner_reference() -> BoxedStrategy<OwnerReference> {
    (
        text(),
        text(),
        text(),
        text(),
        opt(any::<bool>()),
        opt(any::<bool>()),
    )
        .prop_map(
            |(api_version, kind, name, uid, controller, block_owner_deletion)| OwnerReference {
                api_version,
                kind,
                name,
                uid,
                controller,
                block_owner_deletion,
            },
        )
        .boxed()
}

fn object_meta() -> BoxedStrategy<ObjectMeta> {
    (
        (opt(text()), opt(text()), opt(name()), opt(text())),
        (opt(text()), opt(any::<i64>()), opt(time()), opt(time())),
        (opt(any::<i64>()), string_map(), string_map()),
        (few(owner_reference()), few(text())),
    )
        .prop_map(
            |(
                (name, generate_name, namespace, uid),
                (resource_version, generation, creation_timestamp, deletion_timestamp),
                (deletion_grace_period_seconds, labels, annotations),
                (owner_references, finalizers),
            )| ObjectMeta {
                name,
                generate_name,
                namespace,
                uid,
                resource_version,
                generation,
                creation_timestamp,
                deletion_timestamp,
                deletion_grace_period_seconds,
                labels,
                annotations,
                owner_references,
                finalizers,
            },
        )
        .boxed()
}

fn list_meta() -> BoxedStrategy<ListMeta> {
    (opt(text()), opt(text()), opt(any::<i64>()))
        .prop_map(
            |(resource_version, continue_, remaining_item_count)| ListMeta {
                resource_version,
                continue_,
                remaining_item_count,
            },
        )
        .boxed()
}

fn object_reference() -> BoxedStrategy<ObjectReference> {
    (
        opt(text()),
        opt(text()),
        opt(text()),
        opt(text()),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(kind, namespace, name, uid, api_version, resource_version)| ObjectReference {
                kind,
                namespace,
                name,
                uid,
                api_version,
                resource_version,
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Pods.

fn container_port() -> BoxedStrategy<ContainerPort> {
    (
        opt(text()),
        opt(any::<i32>()),
        any::<i32>(),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(name, host_port, container_port, protocol, host_ip)| ContainerPort {
                name,
                host_port,
                container_port,
                protocol,
                host_ip,
            },
        )
        .boxed()
}

fn env_var() -> BoxedStrategy<EnvVar> {
    (text(), opt(text()))
        .prop_map(|(name, value)| EnvVar { name, value })
        .boxed()
}

fn exec_action() -> BoxedStrategy<ExecAction> {
    few(text())
        .prop_map(|command| ExecAction { command })
        .boxed()
}

fn http_get() -> BoxedStrategy<HttpGetAction> {
    (
        opt(text()),
        int_or_string(),
        opt(text()),
        opt(text()),
        few((text(), text()).prop_map(|(name, value)| HttpHeader { name, value })),
    )
        .prop_map(|(path, port, host, scheme, http_headers)| HttpGetAction {
            path,
            port,
            host,
            scheme,
            http_headers,
        })
        .boxed()
}

fn tcp_socket() -> BoxedStrategy<TcpSocketAction> {
    (int_or_string(), opt(text()))
        .prop_map(|(port, host)| TcpSocketAction { port, host })
        .boxed()
}

fn probe() -> BoxedStrategy<Probe> {
    (
        (opt(exec_action()), opt(http_get()), opt(tcp_socket())),
        (
            opt(any::<i32>()),
            opt(any::<i32>()),
            opt(any::<i32>()),
            opt(any::<i32>()),
            opt(any::<i32>()),
        ),
    )
        .prop_map(
            |(
                (exec, http_get, tcp_socket),
                (
                    initial_delay_seconds,
                    timeout_seconds,
                    period_seconds,
                    success_threshold,
                    failure_threshold,
                ),
            )| Probe {
                exec,
                http_get,
                tcp_socket,
                initial_delay_seconds,
                timeout_seconds,
                period_seconds,
                success_threshold,
                failure_threshold,
            },
        )
        .boxed()
}

fn lifecycle_handler() -> BoxedStrategy<LifecycleHandler> {
    (opt(exec_action()), opt(http_get()), opt(tcp_socket()))
        .prop_map(|(exec, http_get, tcp_socket)| LifecycleHandler {
            exec,
            http_get,
            tcp_socket,
        })
        .boxed()
}

fn container() -> BoxedStrategy<Container> {
    (
        (text(), text(), few(text()), few(text()), opt(text())),
        (few(container_port()), few(env_var())),
        opt((resource_map(), resource_map())
            .prop_map(|(limits, requests)| ResourceRequirements { limits, requests })),
        few(
            (text(), text(), opt(any::<bool>())).prop_map(|(name, mount_path, read_only)| {
                VolumeMount {
                    name,
                    mount_path,
                    read_only,
                }
            }),
        ),
        (opt(probe()), opt(probe())),
        opt(
            (opt(lifecycle_handler()), opt(lifecycle_handler())).prop_map(
                |(pre_stop, post_start)| Lifecycle {
                    pre_stop,
                    post_start,
                },
            ),
        ),
        opt(text()),
    )
        .prop_map(
            |(
                (name, image, command, args, working_dir),
                (ports, env),
                resources,
                volume_mounts,
                (liveness_probe, readiness_probe),
                lifecycle,
                image_pull_policy,
            )| Container {
                name,
                image,
                command,
                args,
                working_dir,
                ports,
                env,
                resources,
                volume_mounts,
                liveness_probe,
                readiness_probe,
                lifecycle,
                image_pull_policy,
            },
        )
        .boxed()
}

fn volume() -> BoxedStrategy<Volume> {
    (
        text(),
        opt((text(), opt(text())).prop_map(|(path, type_)| HostPathVolumeSource { path, type_ })),
        opt((opt(text()), opt(quantity()))
            .prop_map(|(medium, size_limit)| EmptyDirVolumeSource { medium, size_limit })),
    )
        .prop_map(|(name, host_path, empty_dir)| Volume {
            name,
            host_path,
            empty_dir,
        })
        .boxed()
}

fn pod_spec() -> BoxedStrategy<PodSpec> {
    (
        (few(volume()), few(container())),
        (opt(text()), opt(any::<i64>()), string_map()),
        (opt(text()), opt(any::<bool>()), opt(text())),
    )
        .prop_map(
            |(
                (volumes, containers),
                (restart_policy, termination_grace_period_seconds, node_selector),
                (node_name, host_network, hostname),
            )| PodSpec {
                volumes,
                containers,
                restart_policy,
                termination_grace_period_seconds,
                node_selector,
                node_name,
                host_network,
                hostname,
            },
        )
        .boxed()
}

fn pod_condition() -> BoxedStrategy<PodCondition> {
    (
        text(),
        text(),
        opt(time()),
        opt(time()),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(type_, status, last_probe_time, last_transition_time, reason, message)| {
                PodCondition {
                    type_,
                    status,
                    last_probe_time,
                    last_transition_time,
                    reason,
                    message,
                }
            },
        )
        .boxed()
}

fn container_state() -> BoxedStrategy<ContainerState> {
    (
        opt((opt(text()), opt(text()))
            .prop_map(|(reason, message)| ContainerStateWaiting { reason, message })),
        opt(opt(time()).prop_map(|started_at| ContainerStateRunning { started_at })),
        opt((
            any::<i32>(),
            opt(any::<i32>()),
            opt(text()),
            opt(text()),
            opt(time()),
            opt(time()),
            opt(text()),
        )
            .prop_map(
                |(exit_code, signal, reason, message, started_at, finished_at, container_id)| {
                    ContainerStateTerminated {
                        exit_code,
                        signal,
                        reason,
                        message,
                        started_at,
                        finished_at,
                        container_id,
                    }
                },
            )),
    )
        .prop_map(|(waiting, running, terminated)| ContainerState {
            waiting,
            running,
            terminated,
        })
        .boxed()
}

fn container_status() -> BoxedStrategy<ContainerStatus> {
    (
        (text(), opt(container_state()), opt(container_state())),
        (any::<bool>(), any::<i32>(), text(), text()),
        (opt(text()), opt(any::<bool>())),
    )
        .prop_map(
            |(
                (name, state, last_state),
                (ready, restart_count, image, image_id),
                (container_id, started),
            )| ContainerStatus {
                name,
                state,
                last_state,
                ready,
                restart_count,
                image,
                image_id,
                container_id,
                started,
            },
        )
        .boxed()
}

fn pod_status() -> BoxedStrategy<PodStatus> {
    (
        (opt(text()), few(pod_condition()), opt(text()), opt(text())),
        (
            opt(text()),
            opt(text()),
            opt(time()),
            few(container_status()),
        ),
    )
        .prop_map(
            |(
                (phase, conditions, message, reason),
                (host_ip, pod_ip, start_time, container_statuses),
            )| PodStatus {
                phase,
                conditions,
                message,
                reason,
                host_ip,
                pod_ip,
                start_time,
                container_statuses,
            },
        )
        .boxed()
}

/// `apiVersion` and `kind` as a client might send them: usually right, sometimes empty.
fn type_meta(kind: &'static str) -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        3 => Just(("v1".to_string(), kind.to_string())),
        1 => (text(), text()),
    ]
}

fn pod() -> BoxedStrategy<Pod> {
    (
        type_meta("Pod"),
        object_meta(),
        pod_spec(),
        opt(pod_status()),
    )
        .prop_map(|((api_version, kind), metadata, spec, status)| Pod {
            api_version,
            kind,
            metadata,
            spec,
            status,
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Nodes, controllers, services, endpoints, bindings, lists.

fn node() -> BoxedStrategy<Node> {
    let spec = (opt(any::<bool>()), opt(text())).prop_map(|(unschedulable, pod_cidr)| NodeSpec {
        unschedulable,
        pod_cidr,
    });
    let condition = (
        text(),
        text(),
        opt(time()),
        opt(time()),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(type_, status, last_heartbeat_time, last_transition_time, reason, message)| {
                NodeCondition {
                    type_,
                    status,
                    last_heartbeat_time,
                    last_transition_time,
                    reason,
                    message,
                }
            },
        );
    let address = (text(), text()).prop_map(|(type_, address)| NodeAddress { type_, address });
    let info = (text(), text(), text(), text(), text(), text(), text()).prop_map(
        |(
            machine_id,
            kernel_version,
            os_image,
            container_runtime_version,
            kubelet_version,
            operating_system,
            architecture,
        )| NodeSystemInfo {
            machine_id,
            kernel_version,
            os_image,
            container_runtime_version,
            kubelet_version,
            operating_system,
            architecture,
        },
    );
    let status = (
        resource_map(),
        resource_map(),
        few(condition),
        few(address),
        opt(info),
    )
        .prop_map(
            |(capacity, allocatable, conditions, addresses, node_info)| NodeStatus {
                capacity,
                allocatable,
                conditions,
                addresses,
                node_info,
            },
        );
    (type_meta("Node"), object_meta(), spec, opt(status))
        .prop_map(|((api_version, kind), metadata, spec, status)| Node {
            api_version,
            kind,
            metadata,
            spec,
            status,
        })
        .boxed()
}

fn replication_controller() -> BoxedStrategy<ReplicationController> {
    let template =
        (object_meta(), pod_spec()).prop_map(|(metadata, spec)| PodTemplateSpec { metadata, spec });
    let spec = (
        opt(any::<i32>()),
        string_map(),
        opt(template),
        opt(any::<i32>()),
    )
        .prop_map(|(replicas, selector, template, min_ready_seconds)| {
            ReplicationControllerSpec {
                replicas,
                selector,
                template,
                min_ready_seconds,
            }
        });
    let status = (
        any::<i32>(),
        opt(any::<i32>()),
        opt(any::<i32>()),
        opt(any::<i32>()),
        opt(any::<i64>()),
    )
        .prop_map(
            |(
                replicas,
                ready_replicas,
                available_replicas,
                fully_labeled_replicas,
                observed_generation,
            )| ReplicationControllerStatus {
                replicas,
                ready_replicas,
                available_replicas,
                fully_labeled_replicas,
                observed_generation,
            },
        );
    (
        type_meta("ReplicationController"),
        object_meta(),
        spec,
        opt(status),
    )
        .prop_map(
            |((api_version, kind), metadata, spec, status)| ReplicationController {
                api_version,
                kind,
                metadata,
                spec,
                status,
            },
        )
        .boxed()
}

fn service() -> BoxedStrategy<Service> {
    let port = (
        opt(text()),
        opt(text()),
        any::<i32>(),
        opt(int_or_string()),
        opt(any::<i32>()),
    )
        .prop_map(
            |(name, protocol, port, target_port, node_port)| ServicePort {
                name,
                protocol,
                port,
                target_port,
                node_port,
            },
        );
    let spec = (
        few(port),
        string_map(),
        opt(text()),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(ports, selector, cluster_ip, type_, session_affinity)| ServiceSpec {
                ports,
                selector,
                cluster_ip,
                type_,
                session_affinity,
            },
        );
    let status = prop_oneof![
        Just(json!({})),
        Just(json!({"loadBalancer": {}})),
        text().prop_map(|ip| json!({"loadBalancer": {"ingress": [{"ip": ip}]}})),
    ];
    (type_meta("Service"), object_meta(), spec, opt(status))
        .prop_map(|((api_version, kind), metadata, spec, status)| Service {
            api_version,
            kind,
            metadata,
            spec,
            status,
        })
        .boxed()
}

fn endpoint_address() -> BoxedStrategy<EndpointAddress> {
    (text(), opt(text()), opt(text()), opt(object_reference()))
        .prop_map(|(ip, hostname, node_name, target_ref)| EndpointAddress {
            ip,
            hostname,
            node_name,
            target_ref,
        })
        .boxed()
}

fn endpoints() -> BoxedStrategy<Endpoints> {
    let port =
        (opt(text()), any::<i32>(), opt(text())).prop_map(|(name, port, protocol)| EndpointPort {
            name,
            port,
            protocol,
        });
    let subset = (few(endpoint_address()), few(endpoint_address()), few(port)).prop_map(
        |(addresses, not_ready_addresses, ports)| EndpointSubset {
            addresses,
            not_ready_addresses,
            ports,
        },
    );
    (type_meta("Endpoints"), object_meta(), few(subset))
        .prop_map(|((api_version, kind), metadata, subsets)| Endpoints {
            api_version,
            kind,
            metadata,
            subsets,
        })
        .boxed()
}

fn binding() -> BoxedStrategy<Binding> {
    (type_meta("Binding"), object_meta(), object_reference())
        .prop_map(|((api_version, kind), metadata, target)| Binding {
            api_version,
            kind,
            metadata,
            target,
        })
        .boxed()
}

fn pod_list() -> BoxedStrategy<List<Pod>> {
    (type_meta("PodList"), list_meta(), few(pod()))
        .prop_map(|((api_version, kind), metadata, items)| List {
            api_version,
            kind,
            metadata,
            items,
        })
        .boxed()
}

fn container_manifest_list() -> BoxedStrategy<ContainerManifestList> {
    (
        type_meta("ContainerManifestList"),
        list_meta(),
        opt(text()),
        few(pod()),
    )
        .prop_map(
            |((api_version, kind), metadata, node_name, items)| ContainerManifestList {
                api_version,
                kind,
                metadata,
                node_name,
                items,
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Status and watch events.

fn status() -> BoxedStrategy<Status> {
    let cause = (text(), text(), text()).prop_map(|(reason, message, field)| StatusCause {
        reason,
        message,
        field,
    });
    let details = (
        text(),
        text(),
        text(),
        text(),
        few(cause),
        opt(any::<i32>()),
    )
        .prop_map(
            |(name, group, kind, uid, causes, retry_after_seconds)| StatusDetails {
                name,
                group,
                kind,
                uid,
                causes,
                retry_after_seconds,
            },
        );
    let metadata = prop_oneof![
        Just(serde_json::Map::new()),
        text().prop_map(|rv| {
            let mut map = serde_json::Map::new();
            map.insert("resourceVersion".to_string(), json!(rv));
            map
        }),
    ];
    (
        type_meta("Status"),
        metadata,
        opt(text()),
        text(),
        text(),
        opt(details),
        any::<u16>(),
    )
        .prop_map(
            |((api_version, kind), metadata, status, message, reason, details, code)| Status {
                kind,
                api_version,
                metadata,
                status,
                message,
                reason,
                details,
                code,
            },
        )
        .boxed()
}

fn watch_event() -> BoxedStrategy<WatchEvent<Pod>> {
    prop_oneof![
        pod().prop_map(WatchEvent::Added),
        pod().prop_map(WatchEvent::Modified),
        pod().prop_map(WatchEvent::Deleted),
        pod().prop_map(WatchEvent::Bookmark),
        status().prop_map(|s| WatchEvent::Error(Box::new(s))),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// The legacy v1beta1 manifest.

/// Canonical legacy manifests: every volume names exactly one source, so converting to a
/// Pod and back gives the same manifest.
fn container_manifest() -> BoxedStrategy<ContainerManifest> {
    let probe = (
        opt((opt(text()), int_or_string(), opt(text()))
            .prop_map(|(path, port, host)| ManifestHttpGet { path, port, host })),
        opt(int_or_string().prop_map(|port| ManifestTcpSocket { port })),
        opt(exec_action()),
        opt(any::<i32>()),
        opt(any::<i32>()),
    )
        .prop_map(
            |(http_get, tcp_socket, exec, initial_delay_seconds, timeout_seconds)| ManifestProbe {
                http_get,
                tcp_socket,
                exec,
                initial_delay_seconds,
                timeout_seconds,
            },
        );
    let mount = (text(), opt(any::<bool>()), text()).prop_map(|(name, read_only, mount_path)| {
        ManifestVolumeMount {
            name,
            read_only,
            mount_path,
        }
    });
    let pull = prop::sample::select(vec![
        PullPolicy::PullAlways,
        PullPolicy::PullNever,
        PullPolicy::PullIfNotPresent,
    ]);
    let container = (
        (text(), text(), few(text()), opt(text())),
        (few(container_port()), few(env_var())),
        (opt(0i64..1 << 40), opt(0i64..1_000_000)),
        (few(mount), opt(probe), opt(pull)),
    )
        .prop_map(
            |(
                (name, image, command, working_dir),
                (ports, env),
                (memory, cpu),
                (volume_mounts, liveness_probe, image_pull_policy),
            )| ManifestContainer {
                name,
                image,
                command,
                working_dir,
                ports,
                env,
                memory,
                cpu,
                volume_mounts,
                liveness_probe,
                image_pull_policy,
            },
        );
    let source = prop_oneof![
        text().prop_map(|path| ManifestVolumeSource {
            host_dir: Some(HostDir { path }),
            empty_dir: None,
        }),
        Just(ManifestVolumeSource {
            host_dir: None,
            empty_dir: Some(EmptyDir {}),
        }),
    ];
    let volume = (text(), source).prop_map(|(name, source)| ManifestVolume {
        name,
        source: Some(source),
    });
    let restart = prop::sample::select(vec![
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ]);
    (
        text(),
        opt(text()),
        few(container),
        few(volume),
        opt(restart),
        opt(any::<bool>()),
    )
        .prop_map(
            |(id, uuid, containers, volumes, restart_policy, host_network)| ContainerManifest {
                version: "v1beta1".to_string(),
                id,
                uuid,
                containers,
                volumes,
                restart_policy,
                host_network,
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------
// The properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn quantities_round_trip(q in quantity()) {
        assert_round_trips(&q)?;
        prop_assert_eq!(q.to_string().parse::<Quantity>().map_err(fail)?, q);
    }

    #[test]
    fn times_round_trip(t in time()) {
        assert_round_trips(&t)?;
    }

    #[test]
    fn int_or_strings_round_trip(v in int_or_string()) {
        assert_round_trips(&v)?;
    }

    #[test]
    fn object_meta_round_trips(meta in object_meta()) {
        assert_round_trips(&meta)?;
    }

    #[test]
    fn containers_round_trip(c in container()) {
        assert_round_trips(&c)?;
    }

    #[test]
    fn pods_round_trip(p in pod()) {
        assert_round_trips(&p)?;
    }

    #[test]
    fn nodes_round_trip(n in node()) {
        assert_round_trips(&n)?;
    }

    #[test]
    fn replication_controllers_round_trip(rc in replication_controller()) {
        assert_round_trips(&rc)?;
    }

    #[test]
    fn services_round_trip(s in service()) {
        assert_round_trips(&s)?;
    }

    #[test]
    fn endpoints_round_trip(e in endpoints()) {
        assert_round_trips(&e)?;
    }

    #[test]
    fn bindings_round_trip(b in binding()) {
        assert_round_trips(&b)?;
    }

    #[test]
    fn pod_lists_round_trip(l in pod_list()) {
        assert_round_trips(&l)?;
    }

    #[test]
    fn container_manifest_lists_round_trip(l in container_manifest_list()) {
        assert_round_trips(&l)?;
    }

    #[test]
    fn statuses_round_trip(s in status()) {
        assert_round_trips(&s)?;
    }

    #[test]
    fn watch_events_round_trip(e in watch_event()) {
        assert_round_trips(&e)?;
    }

    #[test]
    fn legacy_manifests_round_trip(m in container_manifest()) {
        assert_round_trips(&m)?;
    }

    #[test]
    fn legacy_manifests_convert_without_losing_a_field(m in container_manifest()) {
        let pod = manifest_to_pod(&m).map_err(fail)?;
        prop_assert_eq!(pod_to_manifest(&pod).map_err(fail)?, m);
    }
}
