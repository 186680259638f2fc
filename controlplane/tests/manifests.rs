//! The ContainerManifestList view and its watch, against the real API server in-process.

// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use skiff_api::client::{Client, DeleteParams, WatchStream};
use skiff_api::types::{
    Container, ContainerManifestList, ObjectMeta, Pod, PodSpec, PodStatus, WatchEvent,
};
use skiff_controlplane::storage::StorageConfig;
use skiff_controlplane::{Controlplane, ControlplaneConfig};
use tokio_util::sync::CancellationToken;

/// A server on a loopback port over a fresh embedded store; stops when dropped.
struct Server {
    client: Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ControlplaneConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        StorageConfig::Embedded {
            path: dir.path().to_path_buf(),
        },
    );
    config.scheduler = None;
    config.controllers = None;
    let shutdown = CancellationToken::new();
    let controlplane = Controlplane::start(config, shutdown.clone()).await.unwrap();
    controlplane.ready().await.unwrap();
    Server {
        client: Client::new(&controlplane.url()).unwrap(),
        shutdown,
        _dir: dir,
    }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: "busybox:1".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn create_bound(client: &Client, name: &str, node: &str) {
    client
        .api::<Pod>(Some("default"))
        .create(&pod(name))
        .await
        .unwrap();
    client.bind("default", name, node).await.unwrap();
}

/// The next list pushed on `watch`, within a deadline.
async fn next_list(
    watch: &mut WatchStream<ContainerManifestList>,
) -> (String, ContainerManifestList) {
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a list within 10 s")
        .expect("the watch is open")
        .expect("a valid event");
    match event {
        WatchEvent::Added(list) => ("ADDED".into(), list),
        WatchEvent::Modified(list) => ("MODIFIED".into(), list),
        other => panic!("unexpected event {other:?}"),
    }
}

fn names(list: &ContainerManifestList) -> Vec<String> {
    list.items
        .iter()
        .map(|p| p.metadata.name_or_empty().to_string())
        .collect()
}

#[tokio::test]
async fn each_node_gets_its_bound_pods_and_changes_but_not_status_updates() {
    let server = start().await;
    let client = &server.client;
    create_bound(client, "a", "n1").await;
    client
        .api::<Pod>(Some("default"))
        .create(&pod("unbound"))
        .await
        .unwrap();
    create_bound(client, "other", "n2").await;

    let list = client.manifests("n1").await.unwrap();
    assert_eq!(list.kind, "ContainerManifestList");
    assert_eq!(names(&list), vec!["a"]);
    assert!(
        list.items.iter().all(|p| p.status.is_none()),
        "items carry no status"
    );

    let mut watch = client.watch_manifests("n1", None).await.unwrap();
    let (kind, first) = next_list(&mut watch).await;
    assert_eq!(
        (kind.as_str(), names(&first)),
        ("ADDED", vec!["a".to_string()])
    );

    // A status-only change of a bound pod pushes nothing: the next list seen is b's binding.
    let pods = client.api::<Pod>(Some("default"));
    let mut a = pods.get("a").await.unwrap();
    a.status = Some(PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some("10.0.0.9".into()),
        ..Default::default()
    });
    pods.update_status(&a).await.unwrap();
    create_bound(client, "b", "n1").await;
    let (kind, second) = next_list(&mut watch).await;
    assert_eq!(
        (kind.as_str(), names(&second)),
        ("MODIFIED", vec!["a".to_string(), "b".to_string()])
    );
    let rv: i64 = second
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rv > first
            .metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    );

    // Another node's pods never show up here; a delete does.
    create_bound(client, "c", "n2").await;
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    let (_, third) = next_list(&mut watch).await;
    assert_eq!(names(&third), vec!["b".to_string()]);
}

#[tokio::test]
async fn a_resume_from_the_current_revision_sends_nothing_new_and_an_old_one_gets_the_list() {
    let server = start().await;
    let client = &server.client;
    create_bound(client, "a", "n1").await;
    let current = client.manifests("n1").await.unwrap();
    let rv = current.metadata.resource_version.clone().unwrap();

    let mut resumed = client.watch_manifests("n1", Some(&rv)).await.unwrap();
    let mut stale = client.watch_manifests("n1", Some("1")).await.unwrap();
    let (_, from_stale) = next_list(&mut stale).await;
    assert_eq!(names(&from_stale), vec!["a"]);

    create_bound(client, "b", "n1").await;
    // The resumed watch's first list is the one with b: nothing was resent for the resume.
    let (kind, list) = next_list(&mut resumed).await;
    assert_eq!(
        (kind.as_str(), names(&list)),
        ("MODIFIED", vec!["a".to_string(), "b".to_string()])
    );
}

#[tokio::test]
async fn a_spec_change_of_a_bound_pod_pushes_a_new_list() {
    let server = start().await;
    let client = &server.client;
    create_bound(client, "a", "n1").await;
    let mut watch = client.watch_manifests("n1", None).await.unwrap();
    let _ = next_list(&mut watch).await;
    let pods = client.api::<Pod>(Some("default"));
    let mut a = pods.get("a").await.unwrap();
    a.spec.containers[0].image = "busybox:2".into();
    pods.update(&a).await.unwrap();
    let (_, list) = next_list(&mut watch).await;
    assert_eq!(list.items[0].spec.containers[0].image, "busybox:2");
}
