//! One conformance suite for every Storage backend: the same test functions run against the
//! embedded (redb) store and against a private etcd started by this test binary.

// Shared test bodies are plain functions, outside the `#[test]` items clippy exempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use skiff_controlplane::storage::{
    self, AnyStorage, Event, EventStream, EventType, Storage, StorageConfig, StorageError,
};
use tempfile::TempDir;
use tokio::sync::Barrier;

use common::etcd::EtcdServer;

/// Upper bound for waiting on any single watch event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A storage under test plus whatever must live as long as it.
struct Backend {
    /// The storage the test talks to.
    storage: AnyStorage,
    /// Embedded: the data directory. Etcd: unused.
    _dir: Option<TempDir>,
    /// A private etcd, when the test needs one.
    _etcd: Option<EtcdServer>,
}

impl Backend {
    /// A fresh embedded store in a temporary directory.
    async fn embedded() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let config = StorageConfig::Embedded {
            path: dir.path().join("data"),
        };
        Backend {
            storage: storage::open(&config).await.unwrap(),
            _dir: Some(dir),
            _etcd: None,
        }
    }

    /// The shared etcd of this binary, under a key prefix no other test uses.
    async fn etcd(test: &str) -> Backend {
        let endpoint = EtcdServer::shared().endpoint.clone();
        Backend {
            storage: etcd_storage(&endpoint, test).await,
            _dir: None,
            _etcd: None,
        }
    }

    /// A private etcd, for tests that compact (compaction is cluster-wide in etcd).
    async fn private_etcd(test: &str) -> Backend {
        let server = tokio::task::spawn_blocking(EtcdServer::start)
            .await
            .unwrap();
        Backend {
            storage: etcd_storage(&server.endpoint, test).await,
            _dir: None,
            _etcd: Some(server),
        }
    }
}

/// Connects to etcd at `endpoint` under a unique prefix for `test`.
async fn etcd_storage(endpoint: &str, test: &str) -> AnyStorage {
    let config = StorageConfig::Etcd {
        endpoints: vec![endpoint.to_owned()],
        prefix: format!("/conformance/{test}-{}", uuid::Uuid::new_v4().simple()),
    };
    storage::open(&config).await.unwrap()
}

/// Instantiates each listed test function once per backend.
macro_rules! conformance {
    ($($name:ident: $etcd:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = super::Backend::embedded().await;
                    super::$name(&backend.storage).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = super::Backend::$etcd(stringify!($name)).await;
                    super::$name(&backend.storage).await;
                }
            )*
        }
    };
}

conformance! {
    create_twice_is_already_exists: etcd,
    get_missing_is_not_found: etcd,
    stale_update_is_conflict_and_changes_nothing: etcd,
    concurrent_compare_and_swap_has_one_winner_per_round: etcd,
    delete_missing_is_not_found_and_guarded_delete_checks_revision: etcd,
    watch_from_revision_delivers_exactly_the_later_events: etcd,
    watch_from_now_skips_earlier_writes: etcd,
    watch_from_compacted_revision_is_expired: private_etcd,
    list_prefix_is_exact_sorted_and_revisioned: etcd,
}

/// The next event of a watch, failing the test after [`EVENT_TIMEOUT`].
async fn next_event(stream: &mut EventStream) -> Result<Event, StorageError> {
    tokio::time::timeout(EVENT_TIMEOUT, stream.next())
        .await
        .expect("timed out waiting for a watch event")
        .expect("watch stream ended unexpectedly")
}

async fn create_twice_is_already_exists(s: &AnyStorage) {
    let key = "/registry/pods/default/web";
    let revision = s.create(key, b"v1".to_vec()).await.unwrap();
    assert!(
        revision > 1,
        "first write gets a revision after the initial one"
    );

    let kv = s.get(key).await.unwrap();
    assert_eq!(kv.key, key);
    assert_eq!(kv.value, b"v1");
    assert_eq!(kv.create_revision, revision);
    assert_eq!(kv.mod_revision, revision);

    let error = s.create(key, b"v2".to_vec()).await.unwrap_err();
    assert_eq!(
        error,
        StorageError::AlreadyExists {
            key: key.to_owned()
        }
    );
    assert_eq!(
        s.get(key).await.unwrap(),
        kv,
        "failed create changed nothing"
    );
}

async fn get_missing_is_not_found(s: &AnyStorage) {
    let error = s.get("/registry/pods/default/missing").await.unwrap_err();
    assert_eq!(
        error,
        StorageError::NotFound {
            key: "/registry/pods/default/missing".to_owned()
        }
    );
}

async fn stale_update_is_conflict_and_changes_nothing(s: &AnyStorage) {
    let key = "/registry/pods/default/web";
    let created = s.create(key, b"v1".to_vec()).await.unwrap();
    let updated = s.update(key, b"v2".to_vec(), created).await.unwrap();
    assert!(updated > created);

    let error = s.update(key, b"v3".to_vec(), created).await.unwrap_err();
    assert_eq!(
        error,
        StorageError::Conflict {
            key: key.to_owned(),
            expected: created,
            actual: updated
        }
    );
    let kv = s.get(key).await.unwrap();
    assert_eq!(kv.value, b"v2", "stale update wrote nothing");
    assert_eq!(kv.mod_revision, updated);
    assert_eq!(
        kv.create_revision, created,
        "updates keep the create revision"
    );

    let error = s
        .update("/registry/pods/default/missing", b"x".to_vec(), updated)
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

async fn concurrent_compare_and_swap_has_one_winner_per_round(s: &AnyStorage) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 5;
    let key = "/registry/counters/cas";
    s.create(key, b"start".to_vec()).await.unwrap();
    for round in 0..ROUNDS {
        let expected = s.get(key).await.unwrap().mod_revision;
        let barrier = Arc::new(Barrier::new(WRITERS));
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let s = s.clone();
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                let value = format!("round {round} writer {writer}").into_bytes();
                barrier.wait().await;
                (value.clone(), s.update(key, value, expected).await)
            }));
        }
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (value, Ok(revision)) => winners.push((value, revision)),
                (_, Err(error)) => losers.push(error),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one CAS wins");
        let (value, revision) = winners.pop().unwrap();
        for error in losers {
            assert_eq!(
                error,
                StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    actual: revision
                },
                "round {round}: losers see the winner's revision"
            );
        }
        let kv = s.get(key).await.unwrap();
        assert_eq!(
            kv.value, value,
            "round {round}: the winner's value is stored"
        );
        assert_eq!(kv.mod_revision, revision);
    }
}

async fn delete_missing_is_not_found_and_guarded_delete_checks_revision(s: &AnyStorage) {
    let key = "/registry/pods/default/web";
    let error = s.delete(key, None).await.unwrap_err();
    assert_eq!(
        error,
        StorageError::NotFound {
            key: key.to_owned()
        }
    );
    let error = s.delete(key, Some(5)).await.unwrap_err();
    assert!(error.is_not_found(), "{error}");

    let created = s.create(key, b"v1".to_vec()).await.unwrap();
    let updated = s.update(key, b"v2".to_vec(), created).await.unwrap();
    let error = s.delete(key, Some(created)).await.unwrap_err();
    assert_eq!(
        error,
        StorageError::Conflict {
            key: key.to_owned(),
            expected: created,
            actual: updated
        }
    );
    assert_eq!(
        s.get(key).await.unwrap().value,
        b"v2",
        "stale delete kept the key"
    );

    let (deleted, revision) = s.delete(key, Some(updated)).await.unwrap();
    assert_eq!(deleted.key, key);
    assert_eq!(deleted.value, b"v2");
    assert_eq!(deleted.create_revision, created);
    assert_eq!(deleted.mod_revision, updated);
    assert!(revision > updated);
    assert!(s.get(key).await.unwrap_err().is_not_found());

    let recreated = s.create(key, b"v3".to_vec()).await.unwrap();
    assert!(recreated > revision);
    assert_eq!(s.get(key).await.unwrap().create_revision, recreated);
    let (deleted, _) = s.delete(key, None).await.unwrap();
    assert_eq!(deleted.value, b"v3");
}

/// Writes `count` mixed creates/updates/deletes under `/w/` (plus decoys outside it) and
/// returns every event under `/w/` it caused; reports the revision after `mark_after` writes.
async fn mixed_writes(
    s: AnyStorage,
    count: usize,
    mark_after: usize,
    mark: tokio::sync::oneshot::Sender<i64>,
) -> Vec<Event> {
    let mut mark = Some(mark);
    let mut current: BTreeMap<String, (Vec<u8>, i64, i64)> = BTreeMap::new();
    let mut events = Vec::new();
    let mut decoy_revision = None;
    for i in 0..count {
        let key = format!("/w/k{}", i % 10);
        let value = format!("value {i}").into_bytes();
        let event = match current.get(&key).cloned() {
            None => {
                let revision = s.create(&key, value.clone()).await.unwrap();
                current.insert(key.clone(), (value.clone(), revision, revision));
                Event {
                    kind: EventType::Put,
                    key,
                    value: Some(value),
                    prev_value: None,
                    create_revision: revision,
                    mod_revision: revision,
                }
            }
            Some((old, created, modified)) if i % 7 == 0 => {
                let (deleted, revision) = s.delete(&key, Some(modified)).await.unwrap();
                assert_eq!(deleted.value, old);
                current.remove(&key);
                Event {
                    kind: EventType::Delete,
                    key,
                    value: None,
                    prev_value: Some(old),
                    create_revision: created,
                    mod_revision: revision,
                }
            }
            Some((old, created, modified)) => {
                let revision = s.update(&key, value.clone(), modified).await.unwrap();
                current.insert(key.clone(), (value.clone(), created, revision));
                Event {
                    kind: EventType::Put,
                    key,
                    value: Some(value),
                    prev_value: Some(old),
                    create_revision: created,
                    mod_revision: revision,
                }
            }
        };
        let revision = event.mod_revision;
        events.push(event);
        if i % 10 == 3 {
            // Keys that share a string prefix with "/w" but are outside "/w/".
            decoy_revision = Some(match decoy_revision {
                None => s.create("/w0/decoy", b"d".to_vec()).await.unwrap(),
                Some(r) => s.update("/w0/decoy", b"d".to_vec(), r).await.unwrap(),
            });
        }
        if i + 1 == mark_after {
            mark.take().unwrap().send(revision).unwrap();
        }
    }
    events
}

async fn watch_from_revision_delivers_exactly_the_later_events(s: &AnyStorage) {
    let (mark_tx, mark_rx) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(mixed_writes(s.clone(), 300, 100, mark_tx));
    let from = mark_rx.await.unwrap();
    // The writer keeps going while the watch is set up: the watch must replay history and
    // switch to live events with no gap and no duplicate.
    let mut stream = s.watch("/w/", from).await.unwrap();
    let written = writer.await.unwrap();
    let sentinel = s.create("/w/zz-sentinel", b"end".to_vec()).await.unwrap();

    let expected: Vec<Event> = written
        .into_iter()
        .filter(|e| e.mod_revision > from)
        .collect();
    assert_eq!(expected.len(), 200);
    let mut received = Vec::new();
    loop {
        let event = next_event(&mut stream).await.unwrap();
        if event.mod_revision == sentinel {
            assert_eq!(event.key, "/w/zz-sentinel");
            break;
        }
        received.push(event);
    }
    assert_eq!(
        received.len(),
        expected.len(),
        "no missing or duplicate events"
    );
    for (got, want) in received.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

async fn watch_from_now_skips_earlier_writes(s: &AnyStorage) {
    s.create("/n/before", b"1".to_vec()).await.unwrap();
    let mut stream = s.watch("/n/", 0).await.unwrap();
    let after = s.create("/n/after", b"2".to_vec()).await.unwrap();
    let event = next_event(&mut stream).await.unwrap();
    assert_eq!(event.key, "/n/after");
    assert_eq!(event.mod_revision, after);
    assert_eq!(event.kind, EventType::Put);
    assert_eq!(event.prev_value, None);
}

/// The error a watch from `after` fails with, whether the call or its first item reports it.
async fn watch_error(s: &AnyStorage, prefix: &str, after: i64) -> StorageError {
    match s.watch(prefix, after).await {
        Err(error) => error,
        Ok(mut stream) => next_event(&mut stream)
            .await
            .expect_err("watch from a compacted revision must fail"),
    }
}

async fn watch_from_compacted_revision_is_expired(s: &AnyStorage) {
    let key = "/c/key";
    let mut revisions = vec![s.create(key, b"0".to_vec()).await.unwrap()];
    for i in 1..6 {
        let last = *revisions.last().unwrap();
        revisions.push(
            s.update(key, format!("{i}").into_bytes(), last)
                .await
                .unwrap(),
        );
    }
    let compact_at = revisions[3];
    s.compact(compact_at).await.unwrap();

    // History before `compact_at` is gone: a watch needing it fails.
    let error = watch_error(s, "/c/", compact_at - 2).await;
    assert_eq!(
        error,
        StorageError::Expired {
            requested: compact_at - 2,
            compacted: compact_at
        }
    );
    let error = watch_error(s, "/c/", revisions[0]).await;
    assert!(error.is_expired(), "{error}");

    // History from `compact_at` on is kept.
    let mut stream = s.watch("/c/", compact_at - 1).await.unwrap();
    for &revision in &revisions[3..] {
        let event = next_event(&mut stream).await.unwrap();
        assert_eq!(event.mod_revision, revision);
    }

    // Compacting again at or below the mark is a no-op; the future is refused.
    s.compact(revisions[1]).await.unwrap();
    s.compact(compact_at).await.unwrap();
    let current = s.current_revision().await.unwrap();
    let error = s.compact(current + 1000).await.unwrap_err();
    assert!(
        matches!(error, StorageError::FutureRevision { requested, .. } if requested == current + 1000),
        "{error}"
    );
    // Current state is untouched by compaction.
    assert_eq!(s.get(key).await.unwrap().mod_revision, revisions[5]);
}

async fn list_prefix_is_exact_sorted_and_revisioned(s: &AnyStorage) {
    for key in [
        "/registry/pods/ns1/b",
        "/registry/pods/ns10/c",
        "/registry/pods/ns1/a",
        "/registry/pods/ns2/d",
        "/registry/pods/ns1",
    ] {
        s.create(key, key.as_bytes().to_vec()).await.unwrap();
    }
    let list = s.list("/registry/pods/ns1/").await.unwrap();
    let keys: Vec<&str> = list.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/pods/ns1/a", "/registry/pods/ns1/b"]);
    for kv in &list.items {
        assert_eq!(kv.value, kv.key.as_bytes());
        assert!(
            list.revision >= kv.mod_revision,
            "list revision covers every item"
        );
    }
    assert!(list.revision <= s.current_revision().await.unwrap());

    let list = s.list("/registry/pods/ns10/").await.unwrap();
    let keys: Vec<&str> = list.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/pods/ns10/c"]);

    let all = s.list("/registry/pods/").await.unwrap();
    let keys: Vec<&str> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/registry/pods/ns1",
            "/registry/pods/ns1/a",
            "/registry/pods/ns1/b",
            "/registry/pods/ns10/c",
            "/registry/pods/ns2/d",
        ]
    );
    let max_mod = all.items.iter().map(|kv| kv.mod_revision).max().unwrap();
    assert!(all.revision >= max_mod);

    let empty = s.list("/registry/services/").await.unwrap();
    assert!(empty.items.is_empty());
    assert!(empty.revision >= max_mod);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_reopen_keeps_objects_and_revision_counter() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::Embedded {
        path: dir.path().join("data"),
    };
    let (a_created, a_updated, last) = {
        let s = storage::open(&config).await.unwrap();
        let a_created = s.create("/r/a", b"a1".to_vec()).await.unwrap();
        let a_updated = s.update("/r/a", b"a2".to_vec(), a_created).await.unwrap();
        s.create("/r/b", b"b1".to_vec()).await.unwrap();
        let (_, last) = s.delete("/r/b", None).await.unwrap();
        (a_created, a_updated, last)
    };

    let s = storage::open(&config).await.unwrap();
    let kv = s.get("/r/a").await.unwrap();
    assert_eq!(kv.value, b"a2");
    assert_eq!(kv.create_revision, a_created);
    assert_eq!(kv.mod_revision, a_updated);
    assert!(s.get("/r/b").await.unwrap_err().is_not_found());
    assert_eq!(s.current_revision().await.unwrap(), last);
    assert_eq!(s.list("/r/").await.unwrap().revision, last);

    // The watch history survives too.
    let mut stream = s.watch("/r/", a_created).await.unwrap();
    let event = next_event(&mut stream).await.unwrap();
    assert_eq!(
        (event.key.as_str(), event.mod_revision),
        ("/r/a", a_updated)
    );

    let next = s.create("/r/c", b"c1".to_vec()).await.unwrap();
    assert!(
        next > last,
        "the revision counter keeps increasing after reopen"
    );
}
