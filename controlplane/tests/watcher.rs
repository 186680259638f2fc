//! The client-side watcher against the real API server: it lists, watches, resumes after the
//! server ends a watch (no event lost or repeated), and relists when its revision is too old.

// Test helpers outside #[test] fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use skiff_api::client::{Client, ListParams};
use skiff_api::runtime::{Event, WatcherConfig, Writer, reflector, watcher};
use skiff_api::types::{Container, ObjectMeta, Pod, PodSpec};
use skiff_controlplane::storage::StorageConfig;
use skiff_controlplane::{Controlplane, ControlplaneConfig, ControlplaneError};
use tokio_util::sync::CancellationToken;

/// A server over the embedded store in `dir`, on `address` (port 0: any).
struct Server {
    address: SocketAddr,
    shutdown: CancellationToken,
    controlplane: Controlplane,
}

impl Server {
    async fn start(dir: &Path, address: SocketAddr) -> Server {
        // The previous server on this directory may still be letting go of the store file
        // and the port.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut config = ControlplaneConfig::new(
            address,
            StorageConfig::Embedded {
                path: dir.to_path_buf(),
            },
        );
        config.scheduler = None;
        config.controllers = None;
        let shutdown = CancellationToken::new();
        let controlplane = loop {
            match Controlplane::start(config.clone(), shutdown.clone()).await {
                Ok(controlplane) => break controlplane,
                Err(ControlplaneError::Storage { .. } | ControlplaneError::Listen { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("could not restart the controlplane: {e}"),
            }
        };
        controlplane.ready().await.unwrap();
        Server {
            address: controlplane.address(),
            shutdown,
            controlplane,
        }
    }

    /// Stops the server and waits until it has let go of its port and store.
    async fn stop(self) {
        self.shutdown.cancel();
        self.controlplane.wait().await.unwrap();
    }

    fn client(&self) -> Client {
        Client::new(&format!("http://{}", self.address)).unwrap()
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

fn quick_config(params: ListParams) -> WatcherConfig {
    WatcherConfig {
        params,
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(300),
        ..WatcherConfig::default()
    }
}

/// Collects watcher events until `done` says so, within a deadline.
async fn collect_until<S>(
    stream: &mut S,
    mut done: impl FnMut(&[Event<Pod>]) -> bool,
) -> Vec<Event<Pod>>
where
    S: futures::Stream<Item = Result<Event<Pod>, skiff_api::runtime::WatcherError>> + Unpin,
{
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&events) {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; events so far: {events:?}"))
            .expect("the watcher never ends");
        if let Ok(event) = item {
            events.push(event);
        }
    }
    events
}

fn applied_names(events: &[Event<Pod>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Applied(p) => Some(p.metadata.name_or_empty().to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn resumes_after_the_server_ends_a_watch_without_losing_or_repeating_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let client = server.client();
    let pods = client.api::<Pod>(Some("default"));
    pods.create(&pod("before")).await.unwrap();
    // The server ends each watch after a second; the watcher must resume from its revision.
    let params = ListParams {
        timeout_seconds: Some(1),
        ..ListParams::default()
    };
    let mut stream = Box::pin(watcher(client.api::<Pod>(None), quick_config(params)));
    let first = collect_until(&mut stream, |e| !e.is_empty()).await;
    assert!(matches!(&first[0], Event::Restarted(items, _) if items.len() == 1));

    let writer = tokio::spawn(async move {
        for i in 0..30 {
            pods.create(&pod(&format!("p{i}"))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let events = collect_until(&mut stream, |e| applied_names(e).len() >= 30).await;
    writer.await.unwrap();
    let names = applied_names(&events);
    let expected: Vec<String> = (0..30).map(|i| format!("p{i}")).collect();
    assert_eq!(
        names, expected,
        "every create exactly once, in order, across several watch connections"
    );
    assert!(
        events.iter().all(|e| !matches!(e, Event::Restarted(..))),
        "a resume within the window must not relist"
    );
    server.stop().await;
}

#[tokio::test]
async fn relists_when_its_revision_is_too_old_and_the_reflector_converges() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let address = server.address;
    let client = server.client();
    client
        .api::<Pod>(Some("default"))
        .create(&pod("a"))
        .await
        .unwrap();
    let (writer, store) = Writer::<Pod>::new();
    let mut stream = Box::pin(reflector(
        writer,
        watcher(client.api::<Pod>(None), quick_config(ListParams::default())),
    ));
    let _ = collect_until(&mut stream, |e| !e.is_empty()).await;
    assert_eq!(store.len(), 1);

    // While the watcher's server is down, the store moves on through another server; the
    // restarted server's watch window starts after the watcher's revision: 410, relist.
    server.stop().await;
    let other = Server::start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let pods = other.client().api::<Pod>(Some("default"));
    pods.create(&pod("b")).await.unwrap();
    pods.delete("a", &Default::default()).await.unwrap();
    other.stop().await;
    let restarted = Server::start(dir.path(), address).await;

    let events = collect_until(&mut stream, |e| {
        e.iter().any(|e| matches!(e, Event::Restarted(..)))
    })
    .await;
    let Some(Event::Restarted(items, _)) = events.last() else {
        panic!("expected a relist: {events:?}")
    };
    let names: Vec<&str> = items.iter().map(|p| p.metadata.name_or_empty()).collect();
    assert_eq!(names, vec!["b"]);
    let cached: Vec<String> = store
        .list()
        .iter()
        .map(|p| p.metadata.name_or_empty().to_string())
        .collect();
    assert_eq!(
        cached,
        vec!["b".to_string()],
        "the store dropped the pod deleted while away"
    );
    restarted.stop().await;
}
