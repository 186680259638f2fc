//! Registry tests over the embedded store in a temporary directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_api::types::{
    Binding, Container, ObjectReference, OwnerReference, Pod, PodStatus, ReplicationController,
};

use super::*;
use crate::registry::{ContinueToken, ObjectFilter, Preconditions, bind_pod, delete_owned_pods};
use crate::storage::{StorageConfig, open};
use crate::watchcache::WatchCacheConfig;

/// A registry of `T` over a fresh embedded store; keep the tempdir alive for the test.
async fn registry<T: Strategy>() -> (Registry<T>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&StorageConfig::Embedded {
        path: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    let registry = Registry::start(
        Arc::new(storage),
        WatchCacheConfig::default(),
        CancellationToken::new(),
    );
    (registry, dir)
}

/// A valid pod named `name` in `default`.
fn pod(name: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.to_string());
    pod.spec.containers = vec![Container {
        name: "main".into(),
        image: "busybox:1.36".into(),
        ..Container::default()
    }];
    pod
}

/// The store's current revision.
async fn revision<T: Strategy>(registry: &Registry<T>) -> i64 {
    registry.storage().current_revision().await.unwrap()
}

#[tokio::test]
async fn create_sets_server_metadata_and_get_reads_it_back() {
    let (pods, _dir) = registry::<Pod>().await;
    let created = pods.create(Some("default"), pod("web")).await.unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(meta.generation, Some(1));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.uid.as_deref().map(str::len), Some(36));
    assert_eq!(meta.revision(), Some(revision(&pods).await));
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    // Defaults ran.
    assert_eq!(created.spec.restart_policy.as_deref(), Some("Always"));
    let read = pods.get(Some("default"), "web").await.unwrap();
    assert_eq!(read, created);
    let missing = pods.get(Some("default"), "nope").await.unwrap_err();
    assert_eq!(missing.code, 404);
    assert_eq!(missing.message, "pods \"nope\" not found");
}

#[tokio::test]
async fn creating_twice_is_already_exists() {
    let (pods, _dir) = registry::<Pod>().await;
    pods.create(Some("default"), pod("web")).await.unwrap();
    let err = pods.create(Some("default"), pod("web")).await.unwrap_err();
    assert_eq!(err.code, 409);
    assert!(err.is_already_exists());
    assert_eq!(err.message, "pods \"web\" already exists");
}

#[tokio::test]
async fn generate_name_makes_distinct_names() {
    let (pods, _dir) = registry::<Pod>().await;
    let mut template = pod("");
    template.metadata.name = None;
    template.metadata.generate_name = Some("web-".into());
    let a = pods.create(None, template.clone()).await.unwrap();
    let b = pods.create(None, template).await.unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("web-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn invalid_objects_get_every_cause() {
    let (pods, _dir) = registry::<Pod>().await;
    let mut bad = pod("Bad_Name");
    bad.spec.containers[0].image = String::new();
    bad.spec.containers.push(Container {
        name: "main".into(),
        image: "x".into(),
        ..Container::default()
    });
    let before = revision(&pods).await;
    let err = pods.create(Some("default"), bad).await.unwrap_err();
    assert_eq!(err.code, 422);
    let causes = err.details.unwrap().causes;
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert!(fields.contains(&"metadata.name"), "{fields:?}");
    assert!(fields.contains(&"spec.containers[0].image"), "{fields:?}");
    assert!(fields.contains(&"spec.containers[1].name"), "{fields:?}");
    assert_eq!(revision(&pods).await, before, "nothing was written");
}

#[tokio::test]
async fn stale_updates_conflict_and_write_nothing() {
    let (pods, _dir) = registry::<Pod>().await;
    let created = pods.create(Some("default"), pod("web")).await.unwrap();
    let mut first = created.clone();
    first.metadata.labels.insert("a".into(), "1".into());
    let updated = pods
        .update(Some("default"), "web", UpdateTarget::Main, first)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let before = revision(&pods).await;
    let mut stale = created.clone();
    stale.metadata.labels.insert("a".into(), "2".into());
    let err = pods
        .update(Some("default"), "web", UpdateTarget::Main, stale.clone())
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(revision(&pods).await, before);
    assert_eq!(
        pods.get(Some("default"), "web")
            .await
            .unwrap()
            .metadata
            .labels["a"],
        "1"
    );
    // Without a resourceVersion the update is unconditional.
    stale.metadata.resource_version = None;
    let forced = pods
        .update(Some("default"), "web", UpdateTarget::Main, stale)
        .await
        .unwrap();
    assert_eq!(forced.metadata.labels["a"], "2");
}

#[tokio::test]
async fn generation_counts_spec_changes_and_no_ops_write_nothing() {
    let (rcs, _dir) = registry::<ReplicationController>().await;
    let mut rc = ReplicationController::default();
    rc.metadata.name = Some("web".into());
    rc.spec.replicas = Some(1);
    rc.spec.selector = BTreeMap::from([("app".into(), "web".into())]);
    let mut template = skiff_api::types::PodTemplateSpec::default();
    template.metadata.labels = rc.spec.selector.clone();
    template.spec = pod("x").spec;
    rc.spec.template = Some(template);
    let created = rcs.create(Some("default"), rc).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let mut relabel = created.clone();
    relabel.metadata.labels.insert("extra".into(), "yes".into());
    let relabeled = rcs
        .update(Some("default"), "web", UpdateTarget::Main, relabel)
        .await
        .unwrap();
    assert_eq!(relabeled.metadata.generation, Some(1));

    let mut scale = relabeled.clone();
    scale.spec.replicas = Some(3);
    let scaled = rcs
        .update(Some("default"), "web", UpdateTarget::Main, scale)
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));

    let before = revision(&rcs).await;
    let same = rcs
        .update(Some("default"), "web", UpdateTarget::Main, scaled.clone())
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        scaled.metadata.resource_version
    );
    assert_eq!(
        revision(&rcs).await,
        before,
        "a no-op update writes nothing"
    );
}

#[tokio::test]
async fn main_updates_keep_status_and_status_updates_keep_the_rest() {
    let (pods, _dir) = registry::<Pod>().await;
    let created = pods.create(Some("default"), pod("web")).await.unwrap();

    let mut status_write = created.clone();
    status_write
        .metadata
        .labels
        .insert("ignored".into(), "yes".into());
    status_write.status = Some(PodStatus {
        phase: Some("Running".into()),
        pod_ip: Some("10.1.2.3".into()),
        ..PodStatus::default()
    });
    let after_status = pods
        .update(Some("default"), "web", UpdateTarget::Status, status_write)
        .await
        .unwrap();
    assert_eq!(
        after_status.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert!(
        after_status.metadata.labels.is_empty(),
        "labels come from storage"
    );
    assert_eq!(after_status.metadata.generation, Some(1));

    let mut main_write = after_status.clone();
    main_write
        .metadata
        .labels
        .insert("app".into(), "web".into());
    main_write.status = None;
    let after_main = pods
        .update(Some("default"), "web", UpdateTarget::Main, main_write)
        .await
        .unwrap();
    assert_eq!(after_main.metadata.labels["app"], "web");
    assert_eq!(
        after_main.status.unwrap().pod_ip.as_deref(),
        Some("10.1.2.3"),
        "status is kept on a main update"
    );
}

#[tokio::test]
async fn put_body_must_name_the_path_object() {
    let (pods, _dir) = registry::<Pod>().await;
    pods.create(Some("default"), pod("web")).await.unwrap();
    let err = pods
        .update(Some("default"), "web", UpdateTarget::Main, pod("other"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 400);
    let mut elsewhere = pod("web");
    elsewhere.metadata.namespace = Some("kube".into());
    let err = pods
        .update(Some("default"), "web", UpdateTarget::Main, elsewhere)
        .await
        .unwrap_err();
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn binding_sets_the_node_once() {
    let (pods, _dir) = registry::<Pod>().await;
    pods.create(Some("default"), pod("web")).await.unwrap();
    let binding = |node: &str| Binding {
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..ObjectReference::default()
        },
        ..Binding::default()
    };
    let bound = bind_pod(&pods, "default", "web", &binding("edge-1"))
        .await
        .unwrap();
    assert_eq!(bound.spec.node_name.as_deref(), Some("edge-1"));
    let conditions = &bound.status.as_ref().unwrap().conditions;
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
    let again = bind_pod(&pods, "default", "web", &binding("edge-1"))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        bound.metadata.resource_version
    );
    let err = bind_pod(&pods, "default", "web", &binding("edge-2"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 409);
    assert!(
        err.message.contains("already assigned to node \"edge-1\""),
        "{}",
        err.message
    );
    let err = bind_pod(&pods, "default", "web", &binding(""))
        .await
        .unwrap_err();
    assert_eq!(err.code, 422);
    let err = bind_pod(&pods, "default", "missing", &binding("edge-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn concurrent_guaranteed_updates_all_land() {
    let (pods, _dir) = registry::<Pod>().await;
    pods.create(Some("default"), pod("counter")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let pods = pods.clone();
        tasks.push(tokio::spawn(async move {
            pods.guaranteed_update(Some("default"), "counter", UpdateTarget::Main, |p| {
                let mut next = p.clone();
                let n: u32 = next
                    .metadata
                    .annotations
                    .get("n")
                    .map_or(0, |v| v.parse().unwrap());
                next.metadata
                    .annotations
                    .insert("n".into(), (n + 1).to_string());
                Ok(Some(next))
            })
            .await
            .unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let pod = pods.get(Some("default"), "counter").await.unwrap();
    assert_eq!(pod.metadata.annotations["n"], "20");
}

#[tokio::test]
async fn delete_returns_the_object_and_honours_preconditions() {
    let (pods, _dir) = registry::<Pod>().await;
    let created = pods.create(Some("default"), pod("web")).await.unwrap();
    let wrong = DeleteOptions {
        preconditions: Some(Preconditions {
            uid: Some("not-it".into()),
            resource_version: None,
        }),
        ..DeleteOptions::default()
    };
    let err = pods
        .delete(Some("default"), "web", &wrong)
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    let deleted = pods
        .delete(Some("default"), "web", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted.metadata.uid, created.metadata.uid);
    assert_eq!(deleted.metadata.revision(), Some(revision(&pods).await));
    assert_eq!(
        pods.get(Some("default"), "web").await.unwrap_err().code,
        404
    );
    let err = pods
        .delete(Some("default"), "web", &DeleteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn lists_filter_and_paginate() {
    let (pods, _dir) = registry::<Pod>().await;
    for i in 0..5 {
        let mut p = pod(&format!("p{i}"));
        p.metadata
            .labels
            .insert("parity".into(), (i % 2).to_string());
        pods.create(Some("default"), p).await.unwrap();
    }
    pods.create(Some("other"), pod("p9")).await.unwrap();

    let all = pods.list(&ListOptions::default()).await.unwrap();
    assert_eq!(all.items.len(), 6);
    assert_eq!(all.kind, "PodList");
    assert_eq!(
        all.metadata.resource_version,
        Some(revision(&pods).await.to_string())
    );
    let even = pods
        .list(&ListOptions {
            filter: ObjectFilter::parse::<Pod>(Some("default"), Some("parity=0"), None).unwrap(),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = even
        .items
        .iter()
        .map(|p| p.metadata.name_or_empty())
        .collect();
    assert_eq!(names, ["p0", "p2", "p4"]);

    let mut seen = Vec::new();
    let mut token: Option<ContinueToken> = None;
    let first_rv = revision(&pods).await.to_string();
    loop {
        let page = pods
            .list(&ListOptions {
                filter: ObjectFilter::namespace(Some("default")),
                limit: Some(2),
                continue_token: token.clone(),
            })
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version.as_deref(),
            Some(first_rv.as_str())
        );
        seen.extend(
            page.items
                .iter()
                .map(|p| p.metadata.name_or_empty().to_string()),
        );
        match page.metadata.continue_ {
            Some(t) => {
                assert!(page.metadata.remaining_item_count.unwrap() > 0);
                token = Some(ContinueToken::decode(&t).unwrap());
                // A write between pages does not disturb the paging.
                pods.create(Some("default"), pod(&format!("z{}", seen.len())))
                    .await
                    .unwrap();
            }
            None => break,
        }
    }
    assert_eq!(seen[..5], ["p0", "p1", "p2", "p3", "p4"]);

    let one = pods
        .list(&ListOptions {
            filter: ObjectFilter::parse::<Pod>(Some("default"), None, Some("metadata.name=p3"))
                .unwrap(),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let none = pods
        .list(&ListOptions {
            filter: ObjectFilter::parse::<Pod>(Some("default"), None, Some("metadata.name=zz"))
                .unwrap(),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn owned_pods_go_with_their_controller() {
    let (_dir, storage) = crate::storage::temp_embedded().await;
    let pods: Registry<Pod> = Registry::start(
        Arc::clone(&storage),
        WatchCacheConfig::default(),
        CancellationToken::new(),
    );
    let mut rc = ReplicationController::default();
    rc.metadata.name = Some("web".into());
    rc.metadata.namespace = Some("default".into());
    rc.metadata.uid = Some("rc-uid".into());
    let owned = |name: &str, uid: &str| {
        let mut p = pod(name);
        p.metadata.owner_references = vec![OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        }];
        p
    };
    pods.create(Some("default"), owned("a", "rc-uid"))
        .await
        .unwrap();
    pods.create(Some("default"), owned("b", "rc-uid"))
        .await
        .unwrap();
    pods.create(Some("default"), owned("c", "someone-else"))
        .await
        .unwrap();
    pods.create(Some("default"), pod("d")).await.unwrap();
    assert_eq!(delete_owned_pods(&pods, &rc).await.unwrap(), 2);
    let left = pods.list(&ListOptions::default()).await.unwrap();
    let names: Vec<_> = left
        .items
        .iter()
        .map(|p| p.metadata.name_or_empty())
        .collect();
    assert_eq!(names, ["c", "d"]);
}

// Serialisations of `Counted` objects on this thread (each tokio test runs on its own).
thread_local! {
    static SERIALIZED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A kind whose every serialisation is counted, to measure what a write costs in JSON
/// conversions (a write used to convert up to five times; now it encodes once, for storage).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counted {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: skiff_api::types::ObjectMeta,
    #[serde(default)]
    spec: String,
    #[serde(default)]
    status: Option<String>,
}

impl serde::Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        SERIALIZED.with(|count| count.set(count.get() + 1));
        let mut out = serializer.serialize_struct("Counted", 5)?;
        out.serialize_field("apiVersion", &self.api_version)?;
        out.serialize_field("kind", &self.kind)?;
        out.serialize_field("metadata", &self.metadata)?;
        out.serialize_field("spec", &self.spec)?;
        out.serialize_field("status", &self.status)?;
        out.end()
    }
}

impl skiff_api::types::Resource for Counted {
    const KIND: &'static str = "Counted";
    const LIST_KIND: &'static str = "CountedList";
    const PLURAL: &'static str = "counteds";
    const SINGULAR: &'static str = "counted";
    const NAMESPACED: bool = true;
    const SHORT_NAMES: &'static [&'static str] = &[];

    fn metadata(&self) -> &skiff_api::types::ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut skiff_api::types::ObjectMeta {
        &mut self.metadata
    }

    fn set_type_meta(&mut self) {
        self.api_version = "v1".into();
        self.kind = "Counted".into();
    }
}

impl skiff_api::selector::FieldSource for Counted {
    const FIELDS: &'static [&'static str] = &["metadata.name"];

    fn field(&self, path: &str) -> Option<String> {
        (path == "metadata.name").then(|| self.metadata.name_or_empty().to_string())
    }
}

impl Strategy for Counted {
    const HAS_STATUS: bool = true;

    fn copy_status_from(&mut self, source: &Self) {
        self.status.clone_from(&source.status);
    }

    fn same_spec(&self, other: &Self) -> bool {
        self.spec == other.spec
    }

    fn apply_defaults(&mut self) {}

    fn validate_create(&self) -> Vec<skiff_api::validation::FieldError> {
        Vec::new()
    }
}

#[tokio::test]
async fn a_write_converts_the_object_once_for_storage() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&StorageConfig::Embedded {
        path: dir.path().to_path_buf(),
    })
    .await
    .unwrap();
    // The watch cache encodes each event once for its watchers, on this same thread and at
    // its own pace; a stopped one leaves only the write path to count.
    let stopped = CancellationToken::new();
    stopped.cancel();
    let registry: Registry<Counted> =
        Registry::start(Arc::new(storage), WatchCacheConfig::default(), stopped);
    let mut object = Counted::default();
    object.metadata.name = Some("a".into());
    object.spec = "first".into();
    let before = SERIALIZED.with(std::cell::Cell::get);
    registry.create(Some("default"), object).await.unwrap();
    assert_eq!(SERIALIZED.with(std::cell::Cell::get) - before, 1, "create");
    for (round, target) in [
        UpdateTarget::Main,
        UpdateTarget::Status,
        UpdateTarget::Whole,
    ]
    .into_iter()
    .enumerate()
    {
        let before = SERIALIZED.with(std::cell::Cell::get);
        let updated = registry
            .guaranteed_update(Some("default"), "a", target, |current| {
                let mut next = current.clone();
                next.spec = format!("spec {round}");
                next.status = Some(format!("status {round}"));
                Ok(Some(next))
            })
            .await
            .unwrap();
        assert_eq!(
            SERIALIZED.with(std::cell::Cell::get) - before,
            1,
            "{target:?} update"
        );
        // The typed status rules still hold: a main write keeps the stored status, a status
        // write keeps the stored spec.
        match target {
            UpdateTarget::Main => assert_eq!(updated.status, None),
            UpdateTarget::Status => assert_eq!(updated.spec, "spec 0"),
            UpdateTarget::Whole => assert_eq!(updated.status.as_deref(), Some("status 2")),
        }
    }
}
