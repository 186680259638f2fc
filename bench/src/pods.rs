//! The objects the benchmarks create: pods for the API (JSON), static pod manifests for
//! the agent (YAML) and Ready nodes with capacity for the scheduler.

use serde_json::{Value, json};

/// Label every benchmark pod carries, so they can be told apart.
pub const POD_LABEL: (&str, &str) = ("skiff.io/bench", "true");

/// A pod named `name` in `namespace` with one container running `sleep 3600` from `image`,
/// small resource requests, and `spec.nodeName` when `node` is given (pre-bound).
pub fn api_pod(name: &str, namespace: &str, image: &str, node: Option<&str>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { POD_LABEL.0: POD_LABEL.1, "app": "bench" },
        },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "restartPolicy": "Always",
            "containers": [{
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } },
            }],
        },
    });
    if let (Some(node), Some(spec)) = (node, pod.get_mut("spec").and_then(Value::as_object_mut)) {
        spec.insert("nodeName".to_string(), Value::String(node.to_string()));
    }
    pod
}

/// The JSON bytes of [`api_pod`], exactly what is sent (and what the etcd baseline stores).
pub fn api_pod_bytes(name: &str, namespace: &str, image: &str, node: Option<&str>) -> Vec<u8> {
    // Serializing a `Value` built from literals cannot fail; fall back to empty just in case.
    serde_json::to_vec(&api_pod(name, namespace, image, node)).unwrap_or_default()
}

/// A static pod manifest (YAML) for the agent's manifest directory: one container running
/// `sleep 3600` from `image`, never pulled.
pub fn static_pod_yaml(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\n\
         kind: Pod\n\
         metadata:\n  name: {name}\n  labels:\n    {key}: \"{value}\"\n\
         spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: IfNotPresent\n    command: [sleep, \"3600\"]\n",
        key = POD_LABEL.0,
        value = POD_LABEL.1,
    )
}

/// A Ready node named `name` with room for `pods` pods (4 CPUs, 8 GiB), as a node agent
/// would register it; `heartbeat` is the RFC 3339 time of its Ready condition.
pub fn ready_node(name: &str, pods: u32, heartbeat: &str) -> Value {
    let capacity = json!({ "cpu": "4", "memory": "8Gi", "pods": pods.to_string() });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "labels": { POD_LABEL.0: POD_LABEL.1 } },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "skiff-bench node without an agent",
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": heartbeat,
            }],
            "addresses": [{ "type": "InternalIP", "address": "127.0.0.1" }],
        },
    })
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{Node, Pod};

    use super::*;

    #[test]
    fn objects_decode_as_skiff_types() {
        let pod: Pod = serde_json::from_slice(&api_pod_bytes("p", "ns", "img", None)).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
        assert_eq!(pod.spec.node_name, None);
        let bound: Pod = serde_json::from_value(api_pod("p", "ns", "img", Some("n1"))).unwrap();
        assert_eq!(bound.spec.node_name.as_deref(), Some("n1"));

        let from_yaml = skiff_api::conversion::decode_documents(&static_pod_yaml("web", "img"))
            .unwrap()
            .remove(0);
        assert_eq!(from_yaml.metadata.name.as_deref(), Some("web"));
        assert_eq!(from_yaml.spec.containers[0].command, vec!["sleep", "3600"]);

        let node: Node =
            serde_json::from_value(ready_node("n1", 110, "2025-01-01T00:00:00Z")).unwrap();
        let status = node.status.unwrap();
        assert_eq!(status.conditions[0].type_, "Ready");
        assert!(status.capacity.contains_key("pods"));
    }
}
