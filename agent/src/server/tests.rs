//! The agent API over a real socket.

use std::sync::Arc;

use skiff_api::Status;
use skiff_api::types::{
    ContainerState, ContainerStateRunning, ContainerStatus, List, ObjectMeta, Pod, PodStatus,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::*;

/// A fixed set of pods.
struct FixedPods(Vec<Pod>);

impl PodStatusSource for FixedPods {
    fn pods(&self) -> Vec<Pod> {
        self.0.clone()
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.0
            .iter()
            .find(|pod| {
                pod.metadata.namespace_or_empty() == namespace
                    && pod.metadata.name_or_empty() == name
            })
            .cloned()
    }
}

fn running_pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some("Running".into()),
            container_statuses: vec![ContainerStatus {
                name: "web".into(),
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning::default()),
                    ..ContainerState::default()
                }),
                restart_count: 2,
                image: "busybox:1".into(),
                image_id: "docker-pullable://busybox@sha256:abc".into(),
                ..ContainerStatus::default()
            }],
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

/// A server on a free port with `pods`; stops when the returned token is cancelled.
async fn start(pods: Vec<Pod>) -> (String, CancellationToken, tokio::task::JoinHandle<()>) {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    metrics.pods.set(pods.len() as i64);
    let state = ServerState {
        pods: Arc::new(FixedPods(pods)),
        metrics,
        logs: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { run(listener, state, shutdown).await.unwrap() }
    });
    (base, shutdown, task)
}

#[tokio::test]
async fn serves_health_pods_and_metrics_and_stops_on_shutdown() {
    let (base, shutdown, task) = start(vec![running_pod("a"), running_pod("b")]).await;
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let list: List<Pod> = client
        .get(format!("{base}/pods"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.kind, "PodList");
    assert_eq!(list.api_version, "v1");
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[0].kind, "Pod");
    let status = list.items[0].status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let container = &status.container_statuses[0];
    assert_eq!(container.restart_count, 2);
    assert!(container.state.as_ref().unwrap().running.is_some());
    assert_eq!(container.image_id, "docker-pullable://busybox@sha256:abc");

    let pod: Pod = client
        .get(format!("{base}/pods/default/b"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("b"));

    let missing = client
        .get(format!("{base}/pods/default/zzz"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let status: Status = missing.json().await.unwrap();
    assert!(status.is_not_found());

    let nowhere = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(nowhere.status(), 404);
    let status: Status = nowhere.json().await.unwrap();
    assert_eq!(status.kind, "Status");

    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()["content-type"].to_str().unwrap(),
        METRICS_CONTENT_TYPE
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("skiff_agent_pods 2"), "{text}");

    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}

/// Logs that name the container and the tail they were asked for.
struct EchoLogs;

impl ContainerLogSource for EchoLogs {
    fn logs(
        &self,
        container_id: String,
        tail: Option<usize>,
    ) -> futures::future::BoxFuture<'_, Result<String, crate::runtime::RuntimeError>> {
        Box::pin(async move {
            if container_id == "gone" {
                return Err(crate::runtime::RuntimeError::NotFound {
                    operation: "read logs".into(),
                    message: "no such container".into(),
                });
            }
            Ok(format!("logs of {container_id} tail={tail:?}\n"))
        })
    }

    fn follow(
        &self,
        container_id: String,
        tail: Option<usize>,
    ) -> futures::future::BoxFuture<
        '_,
        Result<crate::runtime::LogStream, crate::runtime::RuntimeError>,
    > {
        Box::pin(async move {
            let chunks = vec![
                Ok(bytes::Bytes::from(format!(
                    "following {container_id} tail={tail:?}\n"
                ))),
                Ok(bytes::Bytes::from_static(b"more\n")),
            ];
            Ok(futures::StreamExt::boxed(futures::stream::iter(chunks)))
        })
    }
}

#[tokio::test]
async fn serves_container_logs_at_the_kubelet_path() {
    let mut pod = running_pod("web");
    pod.status.as_mut().unwrap().container_statuses[0].container_id =
        Some("docker://abc123".into());
    {
        let status = &mut pod.status.as_mut().unwrap().container_statuses[0];
        status.last_state = Some(skiff_api::types::ContainerState {
            terminated: Some(skiff_api::types::ContainerStateTerminated {
                exit_code: 1,
                container_id: Some("docker://before".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let mut gone = running_pod("old");
    gone.status.as_mut().unwrap().container_statuses[0].container_id = Some("docker://gone".into());
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let state = ServerState {
        pods: Arc::new(FixedPods(vec![pod, gone, running_pod("new")])),
        metrics,
        logs: Some(Arc::new(EchoLogs)),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(run(listener, state, shutdown.clone()));
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    let ok = get("/containerLogs/default/web/web?tailLines=5")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "logs of abc123 tail=Some(5)\n");
    let all = get("/containerLogs/default/web/web").await.unwrap();
    assert_eq!(all.text().await.unwrap(), "logs of abc123 tail=None\n");
    let previous = get("/containerLogs/default/web/web?previous=true")
        .await
        .unwrap();
    assert_eq!(previous.text().await.unwrap(), "logs of before tail=None\n");
    let no_previous: Status = get("/containerLogs/default/new/web?previous=true")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(no_previous.code, 400, "{no_previous:?}");
    let followed = get("/containerLogs/default/web/web?follow=true&tailLines=1")
        .await
        .unwrap();
    assert_eq!(
        followed.text().await.unwrap(),
        "following abc123 tail=Some(1)\nmore\n"
    );

    let no_pod: Status = get("/containerLogs/default/nope/web")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(no_pod.is_not_found(), "{no_pod:?}");
    let not_created: Status = get("/containerLogs/default/new/web")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(not_created.code, 400, "{not_created:?}");
    let removed: Status = get("/containerLogs/default/old/web")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(removed.is_not_found(), "{removed:?}");
    shutdown.cancel();
}
