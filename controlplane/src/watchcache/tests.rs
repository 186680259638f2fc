//! Watch cache tests over the embedded store in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use skiff_api::types::{Container, Node, Pod};

use super::*;
use crate::registry::{Registry, UpdateTarget};

/// Most time any single expected event may take.
const STEP: Duration = Duration::from_secs(5);

/// A pod registry and a pod watch cache over one fresh embedded store.
struct Fixture {
    /// Writes pods.
    pods: Registry<Pod>,
    /// Writes nodes (another prefix, to move the store revision without pod events).
    nodes: Registry<Node>,
    /// The cache under test: the pod registry's.
    cache: WatchCache<Pod>,
    /// Stops the cache.
    shutdown: CancellationToken,
    /// Keeps the store's directory alive.
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A fixture with the given cache tuning.
    async fn new(config: WatchCacheConfig) -> Self {
        let (dir, storage) = crate::storage::temp_embedded().await;
        let shutdown = CancellationToken::new();
        let pods: Registry<Pod> =
            Registry::start(Arc::clone(&storage), config.clone(), shutdown.clone());
        let cache = pods.cache().clone();
        cache.ready().await.unwrap();
        Fixture {
            pods,
            nodes: Registry::start(storage, config, shutdown.clone()),
            cache,
            shutdown,
            _dir: dir,
        }
    }

    /// Creates pod `name` in `default` with `labels`, returning its resourceVersion.
    async fn create(&self, name: &str, labels: &[(&str, &str)]) -> i64 {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.to_string());
        pod.metadata.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pod.spec.containers = vec![Container {
            name: "c".into(),
            image: "busybox".into(),
            ..Container::default()
        }];
        let created = self.pods.create(Some("default"), pod).await.unwrap();
        created.metadata.revision().unwrap()
    }

    /// Sets (or with None removes) label `key` of pod `name`.
    async fn label(&self, name: &str, key: &str, value: Option<&str>) -> i64 {
        let updated = self
            .pods
            .guaranteed_update(Some("default"), name, UpdateTarget::Main, |p| {
                let mut next = p.clone();
                match value {
                    Some(v) => next.metadata.labels.insert(key.into(), v.into()),
                    None => next.metadata.labels.remove(key),
                };
                Ok(Some(next))
            })
            .await
            .unwrap();
        updated.metadata.revision().unwrap()
    }
}

/// The next item, failing the test if none arrives in time.
async fn next(stream: &mut WatchStream<Pod>) -> WatchItem<Pod> {
    tokio::time::timeout(STEP, stream.next())
        .await
        .expect("no watch item in time")
        .expect("the watch ended")
}

/// The next item as (type, pod name, revision).
async fn next_event(stream: &mut WatchStream<Pod>) -> (&'static str, String, i64) {
    match next(stream).await {
        WatchItem::Event { kind, object } => (
            kind.wire_name(),
            object.object.metadata.name_or_empty().to_string(),
            object.revision(),
        ),
        other => panic!("expected an object event, got {other:?}"),
    }
}

/// A request from `resource_version` with optional label selector.
fn request(resource_version: Option<i64>, labels: Option<&str>) -> WatchRequest {
    WatchRequest {
        resource_version,
        filter: ObjectFilter::parse::<Pod>(None, labels, None).unwrap(),
        ..WatchRequest::default()
    }
}

#[tokio::test]
async fn a_watch_without_revision_starts_with_the_current_state() {
    let f = Fixture::new(WatchCacheConfig::default()).await;
    f.create("a", &[]).await;
    let rv_b = f.create("b", &[]).await;
    assert!(f.cache.wait_for_revision(rv_b, STEP).await);
    let mut watch = f.cache.watch(request(None, None)).await.unwrap();
    assert_eq!(next_event(&mut watch).await.0, "ADDED");
    assert_eq!(next_event(&mut watch).await, ("ADDED", "b".into(), rv_b));
    let rv_c = f.create("c", &[]).await;
    assert_eq!(next_event(&mut watch).await, ("ADDED", "c".into(), rv_c));
    let rv_mod = f.label("a", "x", Some("1")).await;
    assert_eq!(
        next_event(&mut watch).await,
        ("MODIFIED", "a".into(), rv_mod)
    );
    let deleted = f
        .pods
        .delete(Some("default"), "b", &Default::default())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        ("DELETED", "b".into(), deleted.metadata.revision().unwrap())
    );
}

#[tokio::test]
async fn a_watch_from_a_revision_starts_exactly_after_it() {
    let f = Fixture::new(WatchCacheConfig::default()).await;
    let mut revisions = Vec::new();
    for i in 0..5 {
        revisions.push(f.create(&format!("p{i}"), &[]).await);
    }
    let mut watch = f
        .cache
        .watch(request(Some(revisions[1]), None))
        .await
        .unwrap();
    for (i, rv) in revisions.iter().enumerate().skip(2) {
        assert_eq!(
            next_event(&mut watch).await,
            ("ADDED", format!("p{i}"), *rv)
        );
    }
    let rv = f.create("p5", &[]).await;
    assert_eq!(next_event(&mut watch).await, ("ADDED", "p5".into(), rv));
}

#[tokio::test]
async fn revisions_older_than_the_window_are_expired() {
    let f = Fixture::new(WatchCacheConfig {
        window: 3,
        ..WatchCacheConfig::default()
    })
    .await;
    let first = f.create("p0", &[]).await;
    let mut last = first;
    for i in 1..6 {
        last = f.create(&format!("p{i}"), &[]).await;
    }
    assert!(f.cache.wait_for_revision(last, STEP).await);
    let Err(err) = f.cache.watch(request(Some(first), None)).await else {
        panic!("a watch from an expired revision started");
    };
    assert_eq!(err.code, 410);
    assert_eq!(
        err.message,
        format!(
            "too old resource version: {first} ({})",
            f.cache.oldest_revision()
        )
    );
    // On the wire the failure is the stream's one ERROR event.
    let mut stream = f.cache.watch_or_error(request(Some(first), None)).await;
    assert!(matches!(next(&mut stream).await, WatchItem::Error(s) if s.code == 410));
    assert!(stream.next().await.is_none());
    // The oldest revision still works.
    let oldest = f.cache.oldest_revision();
    let mut watch = f.cache.watch(request(Some(oldest), None)).await.unwrap();
    assert_eq!(next_event(&mut watch).await.0, "ADDED");
}

#[tokio::test]
async fn selectors_turn_changes_into_adds_and_deletes() {
    let f = Fixture::new(WatchCacheConfig::default()).await;
    f.create("web", &[("app", "web")]).await;
    f.create("db", &[("app", "db")]).await;
    let mut watch = f.cache.watch(request(None, Some("app=web"))).await.unwrap();
    assert_eq!(next_event(&mut watch).await.1, "web");
    // Stops matching: DELETED. Starts matching: ADDED. Never matched: nothing.
    let rv = f.label("web", "app", Some("other")).await;
    assert_eq!(next_event(&mut watch).await, ("DELETED", "web".into(), rv));
    f.label("db", "tier", Some("x")).await;
    let rv = f.label("db", "app", Some("web")).await;
    assert_eq!(next_event(&mut watch).await, ("ADDED", "db".into(), rv));
    let rv = f.label("db", "tier", Some("y")).await;
    assert_eq!(next_event(&mut watch).await, ("MODIFIED", "db".into(), rv));
}

#[tokio::test]
async fn bookmarks_carry_the_latest_revision_and_timeouts_end_the_watch() {
    let f = Fixture::new(WatchCacheConfig {
        bookmark_interval: Duration::from_millis(50),
        ..WatchCacheConfig::default()
    })
    .await;
    let mut watch = f
        .cache
        .watch(WatchRequest {
            bookmarks: true,
            timeout: Some(Duration::from_millis(600)),
            ..request(None, Some("app=web"))
        })
        .await
        .unwrap();
    // A pod the selector filters out still moves the bookmark.
    let rv = f.create("other", &[("app", "db")]).await;
    let seen = loop {
        match next(&mut watch).await {
            WatchItem::Bookmark(seen) if seen >= rv => break seen,
            WatchItem::Bookmark(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(seen, rv);
    let ended = tokio::time::timeout(STEP, async { while watch.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the timeout ended the watch");
}

#[tokio::test]
async fn a_slow_client_is_closed_without_holding_up_others() {
    let f = Fixture::new(WatchCacheConfig {
        client_buffer: 4,
        ..WatchCacheConfig::default()
    })
    .await;
    let mut slow = f.cache.watch(request(None, None)).await.unwrap();
    let mut fast = f.cache.watch(request(None, None)).await.unwrap();
    let mut last = 0;
    for i in 0..20 {
        last = f.create(&format!("p{i}"), &[]).await;
        assert_eq!(next_event(&mut fast).await.2, last);
    }
    // The slow client gets what was still buffered, then its watch ends.
    let drained = tokio::time::timeout(STEP, async {
        let mut n = 0;
        while slow.next().await.is_some() {
            n += 1;
        }
        n
    })
    .await
    .unwrap();
    assert!(
        drained < 20,
        "the slow watch was closed early ({drained} events)"
    );
    let rv = f.create("after", &[]).await;
    assert!(rv > last);
    assert_eq!(next_event(&mut fast).await.2, rv);
}

#[tokio::test]
async fn pods_are_indexed_by_node() {
    let f = Fixture::new(WatchCacheConfig::default()).await;
    f.create("a", &[]).await;
    f.create("b", &[]).await;
    let bound = f
        .pods
        .guaranteed_update(Some("default"), "b", UpdateTarget::Whole, |p| {
            let mut next = p.clone();
            next.spec.node_name = Some("edge-1".into());
            Ok(Some(next))
        })
        .await
        .unwrap();
    let rv = bound.metadata.revision().unwrap();
    assert!(f.cache.wait_for_revision(rv, STEP).await);
    let (on_node, at) = f.cache.by_index(POD_NODE_INDEX, "edge-1");
    assert_eq!(at, rv);
    let names: Vec<_> = on_node
        .iter()
        .map(|o| o.object.metadata.name_or_empty().to_string())
        .collect();
    assert_eq!(names, ["b"]);
    let deleted = f
        .pods
        .delete(Some("default"), "b", &Default::default())
        .await
        .unwrap();
    assert!(
        f.cache
            .wait_for_revision(deleted.metadata.revision().unwrap(), STEP)
            .await
    );
    assert!(f.cache.by_index(POD_NODE_INDEX, "edge-1").0.is_empty());
}

#[tokio::test]
async fn a_revision_from_another_kind_is_not_too_new() {
    let f = Fixture::new(WatchCacheConfig::default()).await;
    f.create("a", &[]).await;
    let mut node = Node::default();
    node.metadata.name = Some("edge-1".into());
    let node_rv = f
        .nodes
        .create(None, node)
        .await
        .unwrap()
        .metadata
        .revision()
        .unwrap();
    let mut watch = f.cache.watch(request(Some(node_rv), None)).await.unwrap();
    let rv = f.create("b", &[]).await;
    assert_eq!(next_event(&mut watch).await, ("ADDED", "b".into(), rv));
    let Err(err) = f.cache.watch(request(Some(node_rv + 1000), None)).await else {
        panic!("a watch from a future revision started");
    };
    assert_eq!(err.code, 504);
}

#[tokio::test]
async fn shutdown_ends_every_watch() {
    let f = Fixture::new(WatchCacheConfig::default()).await;
    let mut watch = f.cache.watch(request(None, None)).await.unwrap();
    f.shutdown.cancel();
    let ended = tokio::time::timeout(STEP, watch.next()).await.unwrap();
    assert!(ended.is_none());
}
