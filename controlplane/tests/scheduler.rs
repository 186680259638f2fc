//! The scheduler against the real apiserver, in-process: nodes and pods go in through the
//! typed client, and the test waits (with deadlines) for what the scheduler must do.

// Test helpers outside #[test] functions may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use skiff_api::client::{Api, Client, ListParams};
use skiff_api::types::{
    Container, ContainerPort, Node, NodeCondition, NodeStatus, ObjectMeta, Pod, PodSpec, Quantity,
    ResourceRequirements,
};
use skiff_api::wait::{Poll, poll};
use skiff_controlplane::scheduler::{self, SchedulerConfig};
use skiff_controlplane::storage::StorageConfig;
use skiff_controlplane::{Controlplane, ControlplaneConfig};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any single expectation may take.
const DEADLINE: Duration = Duration::from_secs(30);
/// How often conditions are checked.
const INTERVAL: Duration = Duration::from_millis(50);

/// An apiserver over a fresh embedded store plus a scheduler, stopped on drop.
struct Cluster {
    /// Client for the apiserver.
    client: Client,
    /// Stops the apiserver and the scheduler.
    shutdown: CancellationToken,
    /// The scheduler task, checked at the end of a test.
    scheduler: Option<JoinHandle<Result<(), scheduler::SchedulerError>>>,
    /// The store's data directory.
    _data: TempDir,
}

impl Cluster {
    /// Starts an apiserver on a free loopback port and a scheduler with short backoffs.
    async fn start() -> Cluster {
        let mut cluster = Cluster::start_apiserver().await;
        cluster.start_scheduler(1);
        cluster
    }

    /// Starts only the apiserver; [`Cluster::start_scheduler`] adds the scheduler later.
    async fn start_apiserver() -> Cluster {
        let data = tempfile::tempdir().unwrap();
        let mut config = ControlplaneConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            StorageConfig::Embedded {
                path: data.path().to_path_buf(),
            },
        );
        // The scheduler under test starts on its own (see `start_scheduler`).
        config.scheduler = None;
        config.controllers = None;
        let shutdown = CancellationToken::new();
        let controlplane = Controlplane::start(config, shutdown.clone()).await.unwrap();
        Cluster {
            client: Client::new(&controlplane.url()).unwrap(),
            shutdown,
            scheduler: None,
            _data: data,
        }
    }

    /// Starts the scheduler with short backoffs and `workers` concurrent bindings.
    fn start_scheduler(&mut self, workers: usize) {
        let config = SchedulerConfig {
            workers,
            unschedulable_backoff_base: Duration::from_millis(200),
            unschedulable_backoff_cap: Duration::from_secs(2),
            ..SchedulerConfig::default()
        };
        let task = scheduler::run(self.client.clone(), config, self.shutdown.clone());
        self.scheduler = Some(tokio::spawn(task));
    }

    /// Stops everything and checks the scheduler ended cleanly.
    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.scheduler.take() {
            let result = tokio::time::timeout(DEADLINE, task)
                .await
                .expect("scheduler stops on shutdown")
                .unwrap();
            assert!(result.is_ok(), "scheduler ended with {result:?}");
        }
    }

    /// Pods in `namespace`.
    fn pods(&self, namespace: &str) -> Api<Pod> {
        self.client.api::<Pod>(Some(namespace))
    }

    /// Registers a Ready node with the given allocatable resources and labels.
    async fn add_node(&self, name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) {
        let api = self.client.api::<Node>(None);
        let allocatable: BTreeMap<String, Quantity> = [
            ("cpu".to_string(), cpu.parse().unwrap()),
            ("memory".to_string(), memory.parse().unwrap()),
            ("pods".to_string(), "110".parse().unwrap()),
        ]
        .into();
        let status = NodeStatus {
            capacity: allocatable.clone(),
            allocatable,
            conditions: vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
            status: Some(status.clone()),
            ..Default::default()
        };
        let mut created = api.create(&node).await.unwrap();
        // A create may drop the status, as Kubernetes does for some kinds: set it explicitly.
        if created.status.as_ref() != Some(&status) {
            created.status = Some(status);
            api.update_status(&created).await.unwrap();
        }
    }

    /// Waits until pod `namespace/name` is bound and returns its node.
    async fn wait_bound(&self, namespace: &str, name: &str) -> String {
        let api = self.pods(namespace);
        poll(INTERVAL, DEADLINE, || {
            let api = api.clone();
            async move {
                match api.get(name).await {
                    Ok(pod) => match pod.spec.node_name {
                        Some(node) => Poll::Ready(node),
                        None => Poll::Pending(format!("{name} unbound: {:?}", pod.status)),
                    },
                    Err(e) => Poll::Pending(format!("get {name}: {e}")),
                }
            }
        })
        .await
        .unwrap()
    }
}

/// A pod requesting `cpu` and `memory`, labelled `app=<app>`.
fn pod(namespace: &str, name: &str, app: &str, cpu: &str, memory: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: [("app".to_string(), app.to_string())].into(),
            ..Default::default()
        },
        spec: PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: "busybox:latest".into(),
                command: vec!["sleep".into(), "3600".into()],
                resources: Some(ResourceRequirements {
                    requests: [
                        ("cpu".to_string(), cpu.parse().unwrap()),
                        ("memory".to_string(), memory.parse().unwrap()),
                    ]
                    .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_pods_are_bound_and_spread_over_two_nodes() {
    // The pods exist before the scheduler starts, so it places all 20 in one burst with four
    // bindings in flight, faster than the watch reports them: only counting its own assumed
    // pods keeps the nodes even.
    let mut cluster = Cluster::start_apiserver().await;
    cluster.add_node("spread-a", "4", "8Gi", &[]).await;
    cluster.add_node("spread-b", "4", "8Gi", &[]).await;
    let api = cluster.pods("spread");
    for i in 0..20 {
        api.create(&pod("spread", &format!("web-{i}"), "web", "100m", "64Mi"))
            .await
            .unwrap();
    }
    cluster.start_scheduler(4);

    let per_node = poll(INTERVAL, DEADLINE, || {
        let api = api.clone();
        async move {
            let list = match api.list(&ListParams::default()).await {
                Ok(list) => list,
                Err(e) => return Poll::Pending(format!("list: {e}")),
            };
            let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
            let mut unbound = 0;
            for p in &list.items {
                match &p.spec.node_name {
                    Some(node) => *per_node.entry(node.clone()).or_default() += 1,
                    None => unbound += 1,
                }
            }
            if unbound == 0 && list.items.len() == 20 {
                Poll::Ready(per_node)
            } else {
                Poll::Pending(format!("{unbound} unbound, bound: {per_node:?}"))
            }
        }
    })
    .await
    .unwrap();

    eprintln!("pods per node: {per_node:?}");
    assert_eq!(per_node.len(), 2, "both nodes used: {per_node:?}");
    for (node, count) in &per_node {
        assert!(
            (7..=13).contains(count),
            "node {node} got {count} of 20 pods: {per_node:?}"
        );
    }
    // Stricter than 10±3: decisions are serialised and each counts the pods assumed before
    // it, so identical siblings alternate exactly. (Without the overlay this run ends 12/8.)
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        vec![10, 10],
        "{per_node:?}"
    );
    // Every bound pod says so.
    for p in api.list(&ListParams::default()).await.unwrap().items {
        let scheduled = p
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .any(|c| c.type_ == "PodScheduled" && c.status == "True");
        assert!(scheduled, "{:?} lacks PodScheduled=True", p.metadata.name);
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_selector_pins_the_pod_and_host_ports_do_not_collide() {
    let cluster = Cluster::start().await;
    cluster
        .add_node("select-a", "4", "8Gi", &[("disk", "hdd")])
        .await;
    cluster
        .add_node("select-b", "4", "8Gi", &[("disk", "ssd")])
        .await;
    let api = cluster.pods("select");

    let mut pinned = pod("select", "db", "db", "100m", "64Mi");
    pinned
        .spec
        .node_selector
        .insert("disk".into(), "ssd".into());
    api.create(&pinned).await.unwrap();
    assert_eq!(cluster.wait_bound("select", "db").await, "select-b");

    // Two pods wanting host port 8080 land on different nodes; a third fits nowhere.
    let with_port = |name: &str| {
        let mut p = pod("select", name, "edge", "10m", "8Mi");
        p.spec.containers[0].ports = vec![ContainerPort {
            container_port: 80,
            host_port: Some(8080),
            ..Default::default()
        }];
        p
    };
    api.create(&with_port("port-1")).await.unwrap();
    let first = cluster.wait_bound("select", "port-1").await;
    api.create(&with_port("port-2")).await.unwrap();
    let second = cluster.wait_bound("select", "port-2").await;
    assert_ne!(first, second, "host port 8080 taken twice on {first}");

    api.create(&with_port("port-3")).await.unwrap();
    let message = wait_unschedulable(&api, "port-3").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_too_big_for_every_node_waits_until_a_big_node_appears() {
    let cluster = Cluster::start().await;
    cluster.add_node("small-a", "2", "2Gi", &[]).await;
    cluster
        .add_node("small-b", "2", "2Gi", &[("zone", "edge")])
        .await;
    let api = cluster.pods("big");

    api.create(&pod("big", "huge", "huge", "500m", "16Gi"))
        .await
        .unwrap();
    let message = wait_unschedulable(&api, "huge").await;
    assert_eq!(message, "0/2 nodes are available: 2 Insufficient memory.");

    // A pod with both problems is explained per node, the Kubernetes way.
    let mut picky = pod("big", "picky", "picky", "100m", "4Gi");
    picky
        .spec
        .node_selector
        .insert("zone".into(), "edge".into());
    api.create(&picky).await.unwrap();
    let message = wait_unschedulable(&api, "picky").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node selector."
    );

    // The status is written once, not on every retry: the resourceVersion stays put
    // across several backoff rounds (base 200 ms).
    let before = api.get("huge").await.unwrap().metadata.resource_version;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = api.get("huge").await.unwrap();
    assert_eq!(before, after.metadata.resource_version, "no write storm");
    assert!(after.spec.node_name.is_none());

    cluster.add_node("big-c", "8", "32Gi", &[]).await;
    assert_eq!(cluster.wait_bound("big", "huge").await, "big-c");
    let bound = api.get("huge").await.unwrap();
    let condition = bound
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap();
    assert_eq!(condition.status, "True");
    cluster.stop().await;
}

/// Waits until pod `name` carries PodScheduled=False, reason Unschedulable; returns the message.
async fn wait_unschedulable(api: &Api<Pod>, name: &str) -> String {
    poll(INTERVAL, DEADLINE, || {
        let api = api.clone();
        async move {
            let pod = match api.get(name).await {
                Ok(pod) => pod,
                Err(e) => return Poll::Pending(format!("get {name}: {e}")),
            };
            if let Some(node) = &pod.spec.node_name {
                return Poll::Pending(format!("{name} was bound to {node}"));
            }
            let condition = pod
                .status
                .iter()
                .flat_map(|s| s.conditions.iter())
                .find(|c| c.type_ == "PodScheduled")
                .cloned();
            match condition {
                Some(c) if c.status == "False" && c.reason.as_deref() == Some("Unschedulable") => {
                    Poll::Ready(c.message.unwrap_or_default())
                }
                other => Poll::Pending(format!("{name} condition: {other:?}")),
            }
        }
    })
    .await
    .unwrap()
}
