//! Server-side printing: `meta.k8s.io/v1` Tables with the columns kubectl shows, for clients
//! that ask with `Accept: application/json;as=Table;…`.

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use skiff_api::types::{
    Endpoints, ListMeta, Node, ObjectMeta, Pod, ReplicationController, Resource, Service,
};

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header text (kubectl upper-cases it).
    pub name: &'static str,
    /// `string`, `integer`, …
    pub type_: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: u8,
}

/// A column shown by default.
const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
const fn wide(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_: "string",
        description,
        priority: 1,
    }
}

/// The Name column every kind starts with.
const NAME: Column = col("Name", "string", "Name must be unique within a namespace.");
/// The Age column.
const AGE: Column = col("Age", "string", "Time since the object was created.");

/// How a kind prints as table rows.
pub trait TableRow: Resource {
    /// The columns, Name first.
    fn columns() -> Vec<Column>;
    /// The cells of one row, one per column.
    fn cells(&self, now: DateTime<Utc>) -> Vec<Value>;
}

/// True when the client asked for a Table (kubectl get does).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next()
        .is_some_and(|first| {
            first
                .split(';')
                .any(|param| param.trim().eq_ignore_ascii_case("as=Table"))
        })
}

/// A Table of `items` with list metadata `meta`.
pub fn table<'a, T: TableRow + 'a>(
    items: impl IntoIterator<Item = &'a T>,
    meta: &ListMeta,
) -> Value {
    let now = Utc::now();
    let columns: Vec<Value> = T::columns()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .into_iter()
        .map(|item| {
            json!({
                "cells": item.cells(now),
                "object": partial_metadata(item.metadata()),
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// The row object kubectl expects by default: the object's metadata only.
fn partial_metadata(meta: &ObjectMeta) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
    })
}

/// Age as kubectl prints it: `45s`, `3m20s`, `5h`, `2d3h`, `400d`, `3y`.
pub fn human_age(created: Option<&skiff_api::types::Time>, now: DateTime<Utc>) -> String {
    let Some(created) = created else {
        return "<unknown>".to_string();
    };
    let seconds = (now - created.0).num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    let seconds = seconds.max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 192 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 730 {
        format!("{days}d")
    } else if days < 2920 {
        match days % 365 {
            0 => format!("{}y", days / 365),
            d => format!("{}y{d}d", days / 365),
        }
    } else {
        format!("{}y", days / 365)
    }
}

/// `value`, or `<none>` when empty.
fn or_none(value: String) -> Value {
    if value.is_empty() {
        json!("<none>")
    } else {
        json!(value)
    }
}

impl TableRow for Pod {
    fn columns() -> Vec<Column> {
        vec![
            NAME,
            col(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted.",
            ),
            AGE,
            wide("IP", "IP address allocated to the pod."),
            wide("Node", "Name of the node the pod is assigned to."),
        ]
    }

    fn cells(&self, now: DateTime<Utc>) -> Vec<Value> {
        let status = self.status.clone().unwrap_or_default();
        let total = self.spec.containers.len();
        let ready = status.container_statuses.iter().filter(|c| c.ready).count();
        let restarts: i32 = status
            .container_statuses
            .iter()
            .map(|c| c.restart_count)
            .sum();
        let mut shown = status
            .reason
            .clone()
            .or(status.phase.clone())
            .unwrap_or_else(|| "Pending".to_string());
        for container in &status.container_statuses {
            let state = container.state.as_ref();
            if let Some(reason) = state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty())
            {
                shown = reason;
            } else if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()) {
                shown = terminated
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("ExitCode:{}", terminated.exit_code));
            }
        }
        if shown == "Pending"
            && self.spec.node_name.is_some()
            && status.container_statuses.is_empty()
        {
            shown = "ContainerCreating".to_string();
        }
        vec![
            json!(self.metadata.name_or_empty()),
            json!(format!("{ready}/{total}")),
            json!(shown),
            json!(restarts.to_string()),
            json!(human_age(self.metadata.creation_timestamp.as_ref(), now)),
            or_none(status.pod_ip.unwrap_or_default()),
            or_none(self.spec.node_name.clone().unwrap_or_default()),
        ]
    }
}

impl TableRow for Node {
    fn columns() -> Vec<Column> {
        vec![
            NAME,
            col("Status", "string", "The status of the node."),
            col("Roles", "string", "The roles of the node."),
            AGE,
            col("Version", "string", "Kubelet Version reported by the node."),
            wide("Internal-IP", "The node's internal IP address."),
            wide("OS-Image", "OS image reported by the node."),
            wide("Kernel-Version", "Kernel version reported by the node."),
            wide(
                "Container-Runtime",
                "Container runtime reported by the node.",
            ),
        ]
    }

    fn cells(&self, now: DateTime<Utc>) -> Vec<Value> {
        let status = self.status.clone().unwrap_or_default();
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        let mut shown = match ready.map(|c| c.status.as_str()) {
            Some("True") => "Ready".to_string(),
            Some("False") => "NotReady".to_string(),
            _ => "Unknown".to_string(),
        };
        if self.spec.unschedulable == Some(true) {
            shown.push_str(",SchedulingDisabled");
        }
        let info = status.node_info.clone().unwrap_or_default();
        let internal = status
            .addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address.clone())
            .unwrap_or_default();
        vec![
            json!(self.metadata.name_or_empty()),
            json!(shown),
            json!("<none>"),
            json!(human_age(self.metadata.creation_timestamp.as_ref(), now)),
            json!(info.kubelet_version),
            or_none(internal),
            or_none(info.os_image),
            or_none(info.kernel_version),
            or_none(info.container_runtime_version),
        ]
    }
}

impl TableRow for ReplicationController {
    fn columns() -> Vec<Column> {
        vec![
            NAME,
            col("Desired", "integer", "Number of desired pods."),
            col("Current", "integer", "Number of actually running pods."),
            col("Ready", "integer", "Number of pods ready."),
            AGE,
            wide("Containers", "Names of each container in the template."),
            wide(
                "Images",
                "Images referenced by each container in the template.",
            ),
            wide("Selector", "Label selector for pods."),
        ]
    }

    fn cells(&self, now: DateTime<Utc>) -> Vec<Value> {
        let status = self.status.clone().unwrap_or_default();
        let containers = self
            .spec
            .template
            .as_ref()
            .map(|t| t.spec.containers.clone())
            .unwrap_or_default();
        let selector: Vec<String> = self
            .spec
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        vec![
            json!(self.metadata.name_or_empty()),
            json!(self.spec.replicas.unwrap_or(1)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            json!(human_age(self.metadata.creation_timestamp.as_ref(), now)),
            or_none(
                containers
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            or_none(
                containers
                    .iter()
                    .map(|c| c.image.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            or_none(selector.join(",")),
        ]
    }
}

impl TableRow for Service {
    fn columns() -> Vec<Column> {
        vec![
            NAME,
            col("Type", "string", "The type of the service."),
            col("Cluster-IP", "string", "The cluster IP of the service."),
            col("External-IP", "string", "The external IP of the service."),
            col("Port(s)", "string", "The ports of the service."),
            AGE,
            wide("Selector", "The label selector of the service."),
        ]
    }

    fn cells(&self, now: DateTime<Utc>) -> Vec<Value> {
        let ports: Vec<String> = self
            .spec
            .ports
            .iter()
            .map(|p| {
                let protocol = p.protocol.as_deref().unwrap_or("TCP");
                match p.node_port {
                    Some(node_port) => format!("{}:{node_port}/{protocol}", p.port),
                    None => format!("{}/{protocol}", p.port),
                }
            })
            .collect();
        let selector: Vec<String> = self
            .spec
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        vec![
            json!(self.metadata.name_or_empty()),
            json!(
                self.spec
                    .type_
                    .clone()
                    .unwrap_or_else(|| "ClusterIP".to_string())
            ),
            or_none(self.spec.cluster_ip.clone().unwrap_or_default()),
            json!("<none>"),
            or_none(ports.join(",")),
            json!(human_age(self.metadata.creation_timestamp.as_ref(), now)),
            or_none(selector.join(",")),
        ]
    }
}

impl TableRow for Endpoints {
    fn columns() -> Vec<Column> {
        vec![
            NAME,
            col("Endpoints", "string", "Endpoints of the service."),
            AGE,
        ]
    }

    fn cells(&self, now: DateTime<Utc>) -> Vec<Value> {
        let mut endpoints = Vec::new();
        for subset in &self.subsets {
            for address in &subset.addresses {
                if subset.ports.is_empty() {
                    endpoints.push(address.ip.clone());
                }
                for port in &subset.ports {
                    endpoints.push(format!("{}:{}", address.ip, port.port));
                }
            }
        }
        let shown = if endpoints.len() > 3 {
            format!(
                "{} + {} more...",
                endpoints[..3].join(","),
                endpoints.len() - 3
            )
        } else {
            endpoints.join(",")
        };
        vec![
            json!(self.metadata.name_or_empty()),
            or_none(shown),
            json!(human_age(self.metadata.creation_timestamp.as_ref(), now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use skiff_api::types::{ContainerStatus, PodStatus, Time};

    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let now = Utc::now();
        let ago = |s: i64| Time(now - Duration::seconds(s));
        assert_eq!(human_age(Some(&ago(5)), now), "5s");
        assert_eq!(human_age(Some(&ago(200)), now), "3m20s");
        assert_eq!(human_age(Some(&ago(3600)), now), "60m");
        assert_eq!(human_age(Some(&ago(5 * 3600)), now), "5h");
        assert_eq!(human_age(Some(&ago(51 * 3600)), now), "2d3h");
        assert_eq!(human_age(None, now), "<unknown>");
    }

    #[test]
    fn pod_rows_have_the_usual_columns() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.spec.containers = vec![Default::default(), Default::default()];
        pod.status = Some(PodStatus {
            phase: Some("Running".into()),
            container_statuses: vec![
                ContainerStatus {
                    ready: true,
                    restart_count: 2,
                    ..Default::default()
                },
                ContainerStatus::default(),
            ],
            ..Default::default()
        });
        let table = table([&pod], &ListMeta::default());
        let names: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["priority"] == 0)
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Ready", "Status", "Restarts", "Age"]);
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "2");
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn only_a_table_first_accept_gets_a_table() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert!(wants_table(&headers));
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!wants_table(&headers));
    }
}
