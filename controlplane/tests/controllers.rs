//! The controllers against the real apiserver, in-process: objects go in through the typed
//! client, and each test waits (with deadlines) for what the controllers must do. No agent
//! runs, so tests write pod and node status themselves where an agent would.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use skiff_api::client::{Api, Client, DeleteParams, ListParams};
use skiff_api::types::{
    Container, ContainerPort, Endpoints, IntOrString, Node, NodeCondition, NodeStatus, ObjectMeta,
    Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec, ReplicationController,
    ReplicationControllerSpec, Service, ServicePort, ServiceSpec, Time,
};
use skiff_api::wait::{Poll, poll};
use skiff_controlplane::controllers::ControllersConfig;
use skiff_controlplane::storage::StorageConfig;
use skiff_controlplane::{Controlplane, ControlplaneConfig};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// How long any single expectation may take.
const DEADLINE: Duration = Duration::from_secs(30);
/// How often conditions are checked.
const INTERVAL: Duration = Duration::from_millis(50);

/// An apiserver over a fresh embedded store plus the controllers; stopped on drop.
struct Cluster {
    /// Client for the apiserver.
    client: Client,
    /// Stops the apiserver and the controllers.
    shutdown: CancellationToken,
    /// The controlplane running the controllers, checked at the end of a test.
    controllers: Option<Controlplane>,
    /// The store's data directory.
    _data: TempDir,
}

impl Cluster {
    /// Starts an apiserver on a free loopback port and the controllers with `config`.
    async fn start(config: ControllersConfig) -> Cluster {
        // Logs only when RUST_LOG asks for them.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let data = tempfile::tempdir().unwrap();
        let mut cp_config = ControlplaneConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            StorageConfig::Embedded {
                path: data.path().to_path_buf(),
            },
        );
        cp_config.scheduler = None;
        cp_config.controllers = Some(config);
        let shutdown = CancellationToken::new();
        let controllers = Controlplane::start(cp_config, shutdown.clone())
            .await
            .unwrap();
        let client = Client::new(&controllers.url()).unwrap();
        Cluster {
            client,
            shutdown,
            controllers: Some(controllers),
            _data: data,
        }
    }

    /// Stops everything and checks the controllers ended cleanly.
    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.controllers.take() {
            let result = tokio::time::timeout(DEADLINE, task.wait())
                .await
                .expect("controllers stop on shutdown");
            assert!(result.is_ok(), "controllers ended with {result:?}");
        }
    }

    /// Pods in `namespace`.
    fn pods(&self, namespace: &str) -> Api<Pod> {
        self.client.api(Some(namespace))
    }

    /// Replication controllers in `namespace`.
    fn rcs(&self, namespace: &str) -> Api<ReplicationController> {
        self.client.api(Some(namespace))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Labels from pairs.
fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A container listening on a port named `http`.
fn web_container(port: i32) -> Container {
    Container {
        name: "web".into(),
        image: "busybox:latest".into(),
        command: vec!["httpd".into(), "-f".into()],
        ports: vec![ContainerPort {
            name: Some("http".into()),
            container_port: port,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A replication controller `name` of `replicas` pods labelled `app=<name>`.
fn rc(namespace: &str, name: &str, replicas: i32) -> ReplicationController {
    ReplicationController {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        spec: ReplicationControllerSpec {
            replicas: Some(replicas),
            selector: labels(&[("app", name)]),
            template: Some(PodTemplateSpec {
                metadata: ObjectMeta {
                    labels: labels(&[("app", name), ("tier", "front")]),
                    ..Default::default()
                },
                spec: PodSpec {
                    containers: vec![web_container(8080)],
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A pod `name` labelled `labels`, with a container port `http` = `port`, bound to `node`.
fn pod(namespace: &str, name: &str, labels: &[(&str, &str)], port: i32, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: self::labels(labels),
            ..Default::default()
        },
        spec: PodSpec {
            containers: vec![web_container(port)],
            node_name: Some(node.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Writes pod status as an agent would: Running with `ip` and the Ready condition.
async fn set_pod_status(api: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let mut pod = api.get(name).await.unwrap();
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some(ip.into()),
        conditions: vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(Time::now()),
            ..Default::default()
        }],
        ..Default::default()
    });
    api.update_status(&pod).await.unwrap();
}

/// The pods of `api` whose labels include `app=<app>`, by name.
async fn pods_of(api: &Api<Pod>, app: &str) -> Result<Vec<Pod>, String> {
    let list = api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map_err(|e| format!("list pods: {e}"))?;
    Ok(list.items)
}

/// Waits until exactly `count` pods carry `app=<app>`, and returns them.
async fn wait_for_replicas(api: &Api<Pod>, app: &str, count: usize) -> Vec<Pod> {
    poll(INTERVAL, DEADLINE, || async move {
        match pods_of(api, app).await {
            Ok(pods) if pods.len() == count => Poll::Ready(pods),
            Ok(pods) => Poll::Pending(format!("{} pods, want {count}", pods.len())),
            Err(e) => Poll::Pending(e),
        }
    })
    .await
    .unwrap()
}

/// Waits until the RC's status reports `replicas` for its current generation.
async fn wait_for_status(api: &Api<ReplicationController>, name: &str, replicas: i32) {
    poll(INTERVAL, DEADLINE, || async move {
        match api.get(name).await {
            Ok(rc) => {
                let status = rc.status.clone().unwrap_or_default();
                if status.replicas == replicas
                    && status.observed_generation == rc.metadata.generation
                {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!(
                        "status {status:?} at generation {:?}",
                        rc.metadata.generation
                    ))
                }
            }
            Err(e) => Poll::Pending(format!("get rc: {e}")),
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controllers_create_and_delete_pods_to_match_replicas() {
    let cluster = Cluster::start(ControllersConfig::default()).await;
    let (pods, rcs) = (cluster.pods("scale"), cluster.rcs("scale"));
    let created = rcs.create(&rc("scale", "web", 3)).await.unwrap();

    let three = wait_for_replicas(&pods, "web", 3).await;
    for p in &three {
        assert!(
            p.metadata.name.as_deref().unwrap().starts_with("web-"),
            "generated name: {:?}",
            p.metadata.name
        );
        assert_eq!(
            p.metadata.labels.get("tier").map(String::as_str),
            Some("front")
        );
        let owner = &p.metadata.owner_references[..];
        assert_eq!(owner.len(), 1, "{owner:?}");
        assert_eq!(owner[0].kind, "ReplicationController");
        assert_eq!(owner[0].name, "web");
        assert_eq!(Some(&owner[0].uid), created.metadata.uid.as_ref());
        assert_eq!(owner[0].controller, Some(true));
        assert_eq!(owner[0].block_owner_deletion, Some(true));
    }
    wait_for_status(&rcs, "web", 3).await;

    rcs.patch("web", &serde_json::json!({"spec": {"replicas": 5}}))
        .await
        .unwrap();
    let five = wait_for_replicas(&pods, "web", 5).await;
    wait_for_status(&rcs, "web", 5).await;
    // The original three were kept: scaling up only adds.
    for p in &three {
        assert!(five.iter().any(|q| q.metadata.uid == p.metadata.uid));
    }

    rcs.patch("web", &serde_json::json!({"spec": {"replicas": 2}}))
        .await
        .unwrap();
    wait_for_replicas(&pods, "web", 2).await;
    wait_for_status(&rcs, "web", 2).await;
    // Settled: the pod count the status reports is the count that exists.
    assert_eq!(pods_of(&pods, "web").await.unwrap().len(), 2);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelled_and_deleted_pods_are_replaced() {
    let cluster = Cluster::start(ControllersConfig::default()).await;
    let (pods, rcs) = (cluster.pods("heal"), cluster.rcs("heal"));
    rcs.create(&rc("heal", "api", 2)).await.unwrap();
    let before = wait_for_replicas(&pods, "api", 2).await;

    // Relabel one pod: it stops counting, a replacement is made, and it keeps running.
    let moved = before[0].metadata.name.clone().unwrap();
    pods.patch(
        &moved,
        &serde_json::json!({"metadata": {"labels": {"app": "debug"}}}),
    )
    .await
    .unwrap();
    let after = wait_for_replicas(&pods, "api", 2).await;
    assert!(
        after
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some(moved.as_str()))
    );
    wait_for_status(&rcs, "api", 2).await;
    let released = poll(INTERVAL, DEADLINE, || {
        let (pods, moved) = (pods.clone(), moved.clone());
        async move {
            match pods.get(&moved).await {
                Ok(p) if p.metadata.owner_references.is_empty() => Poll::Ready(p),
                Ok(p) => Poll::Pending(format!("still owned: {:?}", p.metadata.owner_references)),
                Err(e) => Poll::Pending(format!("relabelled pod: {e}")),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        released.metadata.labels.get("app").map(String::as_str),
        Some("debug")
    );

    // Delete one pod: it is replaced by a new one.
    let victim = after[0].metadata.name.clone().unwrap();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    let healed = poll(INTERVAL, DEADLINE, || {
        let (pods, victim) = (pods.clone(), victim.clone());
        async move {
            match pods_of(&pods, "api").await {
                Ok(list)
                    if list.len() == 2
                        && list
                            .iter()
                            .all(|p| p.metadata.name.as_deref() != Some(&victim)) =>
                {
                    Poll::Ready(list)
                }
                Ok(list) => Poll::Pending(format!(
                    "pods {:?}",
                    list.iter()
                        .map(|p| p.metadata.name.clone())
                        .collect::<Vec<_>>()
                )),
                Err(e) => Poll::Pending(e),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(healed.len(), 2);
    // The relabelled pod was never deleted.
    assert!(pods.get(&moved).await.is_ok());
    cluster.stop().await;
}

/// The (ready IPs, not-ready IPs, ports) of an Endpoints object, sorted.
fn summary(endpoints: &Endpoints) -> (Vec<String>, Vec<String>, Vec<i32>) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut ports = Vec::new();
    for subset in &endpoints.subsets {
        ready.extend(subset.addresses.iter().map(|a| a.ip.clone()));
        not_ready.extend(subset.not_ready_addresses.iter().map(|a| a.ip.clone()));
        ports.extend(subset.ports.iter().map(|p| p.port));
    }
    ready.sort();
    not_ready.sort();
    ports.sort();
    ports.dedup();
    (ready, not_ready, ports)
}

/// Waits until the Endpoints `name` summarise as `want`.
async fn wait_for_endpoints(
    api: &Api<Endpoints>,
    name: &str,
    want: (Vec<&str>, Vec<&str>, Vec<i32>),
) -> Endpoints {
    let want = (
        want.0.into_iter().map(str::to_string).collect::<Vec<_>>(),
        want.1.into_iter().map(str::to_string).collect::<Vec<_>>(),
        want.2,
    );
    poll(INTERVAL, DEADLINE, || {
        let want = want.clone();
        async move {
            match api.get(name).await {
                Ok(e) if summary(&e) == want => Poll::Ready(e),
                Ok(e) => Poll::Pending(format!("endpoints {:?}", summary(&e))),
                Err(e) => Poll::Pending(format!("get endpoints: {e}")),
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_list_ready_pods_and_follow_readiness() {
    let cluster = Cluster::start(ControllersConfig::default()).await;
    let pods = cluster.pods("svc");
    let endpoints: Api<Endpoints> = cluster.client.api(Some("svc"));
    let services: Api<Service> = cluster.client.api(Some("svc"));
    for (name, port) in [("web-a", 8080), ("web-b", 8080), ("web-c", 9090)] {
        pods.create(&pod("svc", name, &[("app", "web")], port, "edge-1"))
            .await
            .unwrap();
    }
    pods.create(&pod("svc", "db", &[("app", "db")], 8080, "edge-1"))
        .await
        .unwrap();
    set_pod_status(&pods, "web-a", "10.9.0.1", true).await;
    set_pod_status(&pods, "web-b", "10.9.0.2", true).await;
    set_pod_status(&pods, "web-c", "10.9.0.3", true).await;
    set_pod_status(&pods, "db", "10.9.0.4", true).await;

    services
        .create(&Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("svc".into()),
                ..Default::default()
            },
            spec: ServiceSpec {
                ports: vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }],
                selector: labels(&[("app", "web")]),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();

    let written = wait_for_endpoints(
        &endpoints,
        "web",
        (
            vec!["10.9.0.1", "10.9.0.2", "10.9.0.3"],
            vec![],
            vec![8080, 9090],
        ),
    )
    .await;
    // The named port resolved per pod: web-c is in its own subset with 9090.
    assert_eq!(written.subsets.len(), 2, "{:?}", written.subsets);
    let of_c = written
        .subsets
        .iter()
        .find(|s| s.addresses.iter().any(|a| a.ip == "10.9.0.3"))
        .unwrap();
    assert_eq!(of_c.ports[0].port, 9090);
    assert_eq!(of_c.ports[0].name.as_deref(), Some("http"));
    let address = &of_c.addresses[0];
    assert_eq!(address.node_name.as_deref(), Some("edge-1"));
    let target = address.target_ref.as_ref().unwrap();
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.name.as_deref(), Some("web-c"));
    assert_eq!(target.namespace.as_deref(), Some("svc"));
    assert!(target.uid.is_some());

    // A pod turning not ready moves to notReadyAddresses.
    set_pod_status(&pods, "web-b", "10.9.0.2", false).await;
    wait_for_endpoints(
        &endpoints,
        "web",
        (
            vec!["10.9.0.1", "10.9.0.3"],
            vec!["10.9.0.2"],
            vec![8080, 9090],
        ),
    )
    .await;

    // A deleted pod leaves; a relabelled one joins.
    pods.delete("web-a", &DeleteParams::default())
        .await
        .unwrap();
    pods.patch(
        "db",
        &serde_json::json!({"metadata": {"labels": {"app": "web"}}}),
    )
    .await
    .unwrap();
    wait_for_endpoints(
        &endpoints,
        "web",
        (
            vec!["10.9.0.3", "10.9.0.4"],
            vec!["10.9.0.2"],
            vec![8080, 9090],
        ),
    )
    .await;

    // The service goes, and its endpoints with it.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    poll(INTERVAL, DEADLINE, || async {
        match endpoints.get_opt("web").await {
            Ok(None) => Poll::Ready(()),
            Ok(Some(e)) => Poll::Pending(format!("still there: {:?}", summary(&e))),
            Err(e) => Poll::Pending(format!("get endpoints: {e}")),
        }
    })
    .await
    .unwrap();
    cluster.stop().await;
}

/// A node status with a Ready=True condition heartbeating at `heartbeat`.
fn ready_status(heartbeat: Time) -> NodeStatus {
    NodeStatus {
        conditions: vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_heartbeat_time: Some(heartbeat),
            last_transition_time: Some(heartbeat),
            reason: Some("KubeletReady".into()),
            message: Some("kubelet is posting ready status".into()),
        }],
        ..Default::default()
    }
}

/// Registers node `name` as Ready with a fresh heartbeat.
async fn register_node(api: &Api<Node>, name: &str) {
    let status = ready_status(Time::now());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
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

/// The status of node `name`'s Ready condition and its reason.
async fn node_ready(api: &Api<Node>, name: &str) -> Result<(String, Option<String>), String> {
    let node = api.get(name).await.map_err(|e| format!("get node: {e}"))?;
    node.status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status, c.reason))
        .ok_or_else(|| "no Ready condition".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_marked_unknown_and_its_pods_evicted() {
    let config = ControllersConfig {
        node_monitor_grace_period: Duration::from_secs(2),
        node_monitor_period: Duration::from_millis(200),
        pod_eviction_timeout: Duration::from_secs(3),
        ..ControllersConfig::default()
    };
    let cluster = Cluster::start(config).await;
    let nodes: Api<Node> = cluster.client.api(None);
    let pods = cluster.pods("edge");
    register_node(&nodes, "dead").await;
    register_node(&nodes, "alive").await;

    // The live node's "agent": posts a new heartbeat until the test ends.
    let beating = CancellationToken::new();
    let heartbeat = {
        let (nodes, beating) = (nodes.clone(), beating.clone());
        tokio::spawn(async move {
            while !beating.is_cancelled() {
                if let Ok(mut node) = nodes.get("alive").await {
                    node.status = Some(ready_status(Time::now()));
                    // A conflict with the controller is retried on the next beat.
                    let _ = nodes.update_status(&node).await;
                }
                tokio::select! {
                    _ = beating.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        })
    };

    for (name, node, ip) in [
        ("on-dead-1", "dead", "10.8.0.1"),
        ("on-dead-2", "dead", "10.8.0.2"),
        ("on-alive", "alive", "10.8.0.3"),
    ] {
        pods.create(&pod("edge", name, &[("app", "edge")], 8080, node))
            .await
            .unwrap();
        set_pod_status(&pods, name, ip, true).await;
    }
    // The mirror of a static pod on the dead node: it cannot run elsewhere, so it stays.
    let mut mirror = pod("edge", "a-static-dead", &[("app", "static")], 8080, "dead");
    mirror
        .metadata
        .annotations
        .insert("kubernetes.io/config.mirror".into(), "hash".into());
    pods.create(&mirror).await.unwrap();

    // The dead node's heartbeat ages past the grace period: Ready=Unknown.
    poll(INTERVAL, DEADLINE, || async {
        match node_ready(&nodes, "dead").await {
            Ok((status, reason)) if status == "Unknown" => {
                assert_eq!(reason.as_deref(), Some("NodeStatusUnknown"));
                Poll::Ready(())
            }
            Ok(other) => Poll::Pending(format!("dead node Ready: {other:?}")),
            Err(e) => Poll::Pending(e),
        }
    })
    .await
    .unwrap();
    let dead = nodes.get("dead").await.unwrap();
    let ready = dead
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready");
    assert_eq!(
        ready.unwrap().message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    // Its pods become not ready (before the eviction timeout deletes them).
    poll(INTERVAL, DEADLINE, || async {
        let mut states = Vec::new();
        for name in ["on-dead-1", "on-dead-2"] {
            match pods.get(name).await {
                Ok(p) => {
                    let ready = p
                        .status
                        .unwrap_or_default()
                        .conditions
                        .into_iter()
                        .find(|c| c.type_ == "Ready");
                    states.push(ready.map(|c| (c.status, c.reason)));
                }
                Err(e) => return Poll::Pending(format!("get {name}: {e}")),
            }
        }
        let not_ready = Some(("False".to_string(), Some("NodeNotReady".to_string())));
        if states.iter().all(|s| *s == not_ready) {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("pod Ready conditions {states:?}"))
        }
    })
    .await
    .unwrap();

    // After the eviction timeout the dead node's pods are deleted.
    poll(INTERVAL, DEADLINE, || async {
        let mut left = Vec::new();
        for name in ["on-dead-1", "on-dead-2"] {
            match pods.get_opt(name).await {
                Ok(None) => {}
                Ok(Some(_)) => left.push(name),
                Err(e) => return Poll::Pending(format!("get {name}: {e}")),
            }
        }
        if left.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("not evicted yet: {left:?}"))
        }
    })
    .await
    .unwrap();

    // Pods are evicted one at a time in name order, so an evicted mirror pod (named to sort
    // first) would have been gone before the others.
    assert!(
        pods.get("a-static-dead").await.is_ok(),
        "mirror pods are not evicted"
    );

    // The live node and its pod were left alone all along.
    assert_eq!(node_ready(&nodes, "alive").await.unwrap().0, "True");
    let survivor = pods.get("on-alive").await.unwrap();
    let ready = survivor
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready");
    assert_eq!(ready.unwrap().status, "True");

    beating.cancel();
    heartbeat.await.unwrap();
    cluster.stop().await;
}
