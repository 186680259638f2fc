//! The reflector's Store: one writer, many cheap readers, with secondary indexes.
//!
//! Every write hands back what it replaced, so a consumer learns an object's previous state
//! from the write itself rather than by reading the store before it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::watch;

use super::Change;
use crate::types::Resource;

/// Computes the index values of an object (e.g. its `spec.nodeName`).
pub type IndexFn<T> = Box<dyn Fn(&T) -> Vec<String> + Send + Sync>;

/// The shared state behind a Store and its Writer.
struct Inner<T> {
    /// Objects by key (`namespace/name` or `name`).
    objects: BTreeMap<String, Arc<T>>,
    /// index name → index value → keys.
    indices: HashMap<String, HashMap<String, BTreeSet<String>>>,
    /// The revision of the last applied event or list.
    resource_version: String,
}

/// A read handle on the cache: cheap to clone, never blocks the writer for long.
pub struct Store<T> {
    /// The shared state.
    inner: Arc<RwLock<Inner<T>>>,
    /// Flips to true after the first complete list.
    synced: watch::Receiver<bool>,
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Store {
            inner: Arc::clone(&self.inner),
            synced: self.synced.clone(),
        }
    }
}

/// The single writer of a Store, owned by the reflector.
pub struct Writer<T> {
    /// The shared state.
    inner: Arc<RwLock<Inner<T>>>,
    /// Index functions by index name.
    indexers: HashMap<String, IndexFn<T>>,
    /// Signals readers that the first list has been applied.
    synced: watch::Sender<bool>,
}

impl<T: Resource> Writer<T> {
    /// A new empty store: the writer and a first read handle.
    pub fn new() -> (Writer<T>, Store<T>) {
        let inner = Arc::new(RwLock::new(Inner {
            objects: BTreeMap::new(),
            indices: HashMap::new(),
            resource_version: String::new(),
        }));
        let (tx, rx) = watch::channel(false);
        (
            Writer {
                inner: Arc::clone(&inner),
                indexers: HashMap::new(),
                synced: tx,
            },
            Store { inner, synced: rx },
        )
    }

    /// Adds a secondary index; call before the first event.
    pub fn add_indexer(&mut self, name: &str, index: IndexFn<T>) {
        self.indexers.insert(name.to_string(), index);
        write(&self.inner)
            .indices
            .insert(name.to_string(), HashMap::new());
    }

    /// Inserts or replaces an object; returns the state it replaced, if any.
    pub fn apply(&self, object: T) -> Option<Arc<T>> {
        self.apply_arc(Arc::new(object))
    }

    /// [`Writer::apply`] for an object already behind an `Arc`.
    pub fn apply_arc(&self, object: Arc<T>) -> Option<Arc<T>> {
        let key = object.key();
        let rv = object.metadata().resource_version.clone();
        let mut inner = write(&self.inner);
        let old = inner.objects.remove(&key);
        if let Some(old) = &old {
            self.unindex(&mut inner, &key, old);
        }
        self.index(&mut inner, &key, &object);
        inner.objects.insert(key, object);
        if let Some(rv) = rv {
            inner.resource_version = rv;
        }
        old
    }

    /// Removes an object; returns the state the store held, if any.
    pub fn delete(&self, object: &T) -> Option<Arc<T>> {
        let key = object.key();
        let mut inner = write(&self.inner);
        let old = inner.objects.remove(&key);
        if let Some(old) = &old {
            self.unindex(&mut inner, &key, old);
        }
        if let Some(rv) = object.metadata().resource_version.clone() {
            inner.resource_version = rv;
        }
        old
    }

    /// Replaces the whole content with a fresh list read at `resource_version`; returns what
    /// that changed: every listed object as added or updated (with its previous state), and
    /// every object that vanished as deleted (with its last known state).
    pub fn replace(&self, objects: Vec<T>, resource_version: String) -> Vec<Change<T>> {
        let mut inner = write(&self.inner);
        let mut previous = std::mem::take(&mut inner.objects);
        for index in inner.indices.values_mut() {
            index.clear();
        }
        let mut changes = Vec::with_capacity(objects.len());
        for object in objects {
            let key = object.key();
            let new = Arc::new(object);
            self.index(&mut inner, &key, &new);
            inner.objects.insert(key.clone(), Arc::clone(&new));
            changes.push(match previous.remove(&key) {
                Some(old) => Change::Updated { old, new },
                None => Change::Added(new),
            });
        }
        changes.extend(previous.into_values().map(Change::Deleted));
        inner.resource_version = resource_version;
        drop(inner);
        self.synced.send_replace(true);
        changes
    }

    /// Records progress (a bookmark) without changing objects.
    pub fn set_resource_version(&self, resource_version: String) {
        write(&self.inner).resource_version = resource_version;
    }

    /// Adds `object` under `key` to every index.
    fn index(&self, inner: &mut Inner<T>, key: &str, object: &T) {
        for (name, index) in &self.indexers {
            let values = index(object);
            let map = inner.indices.entry(name.clone()).or_default();
            for value in values {
                map.entry(value).or_default().insert(key.to_string());
            }
        }
    }

    /// Removes `object` under `key` from every index.
    fn unindex(&self, inner: &mut Inner<T>, key: &str, object: &T) {
        for (name, index) in &self.indexers {
            if let Some(map) = inner.indices.get_mut(name) {
                for value in index(object) {
                    if let Some(keys) = map.get_mut(&value) {
                        keys.remove(key);
                        if keys.is_empty() {
                            map.remove(&value);
                        }
                    }
                }
            }
        }
    }
}

impl<T: Resource> Store<T> {
    /// The object under `key` (`namespace/name`, or `name` when cluster-scoped).
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        read(&self.inner).objects.get(key).cloned()
    }

    /// Every object, ordered by key.
    pub fn list(&self) -> Vec<Arc<T>> {
        read(&self.inner).objects.values().cloned().collect()
    }

    /// The objects whose index `name` has `value`.
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<T>> {
        let inner = read(&self.inner);
        let Some(keys) = inner.indices.get(name).and_then(|m| m.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| inner.objects.get(k).cloned())
            .collect()
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        read(&self.inner).objects.len()
    }

    /// True when the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The revision of the last applied change.
    pub fn resource_version(&self) -> String {
        read(&self.inner).resource_version.clone()
    }

    /// True once the first complete list has been applied.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first complete list has been applied.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.clone();
        // An error means the writer is gone; there is nothing more to wait for.
        let _ = rx.wait_for(|synced| *synced).await;
    }
}

/// Takes the read lock; a poisoned lock still holds consistent data (writers never panic mid-update).
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes the write lock, recovering from poisoning as [`read`] does.
fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ObjectMeta, Pod};

    fn pod(name: &str, node: Option<&str>, rv: &str) -> Pod {
        let mut p = Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        p.spec.node_name = node.map(str::to_string);
        p
    }

    fn by_node() -> IndexFn<Pod> {
        Box::new(|p: &Pod| p.spec.node_name.iter().cloned().collect())
    }

    #[test]
    fn readers_see_writes_and_indexes_follow_updates() {
        let (mut writer, store) = Writer::<Pod>::new();
        writer.add_indexer("node", by_node());
        let reader = store.clone();
        writer.apply(pod("a", Some("n1"), "1"));
        writer.apply(pod("b", Some("n1"), "2"));
        assert_eq!(reader.by_index("node", "n1").len(), 2);
        writer.apply(pod("a", Some("n2"), "3"));
        assert_eq!(reader.by_index("node", "n1").len(), 1);
        assert_eq!(
            reader.by_index("node", "n2")[0].metadata.name.as_deref(),
            Some("a")
        );
        writer.delete(&pod("b", Some("n1"), "4"));
        assert!(reader.by_index("node", "n1").is_empty());
        assert_eq!(reader.resource_version(), "4");
        assert!(reader.get("default/a").is_some());
        assert!(reader.get("default/b").is_none());
    }

    #[test]
    fn writes_hand_back_the_previous_state() {
        let (writer, _store) = Writer::<Pod>::new();
        assert!(writer.apply(pod("a", None, "1")).is_none());
        let old = writer.apply(pod("a", Some("n1"), "2")).unwrap();
        assert_eq!(old.metadata.resource_version.as_deref(), Some("1"));
        let last = writer.delete(&pod("a", None, "3")).unwrap();
        assert_eq!(last.spec.node_name.as_deref(), Some("n1"));
        assert!(writer.delete(&pod("a", None, "4")).is_none());
    }

    #[test]
    fn replace_reports_adds_updates_and_what_vanished() {
        let (writer, store) = Writer::<Pod>::new();
        writer.apply(pod("a", None, "1"));
        writer.apply(pod("gone", None, "2"));
        let mut seen: Vec<String> = writer
            .replace(vec![pod("a", None, "5"), pod("new", None, "6")], "6".into())
            .into_iter()
            .map(|c| crate::runtime::test_support::describe(&c))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                "added default/new",
                "deleted default/gone",
                "updated default/a 1->5"
            ]
        );
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn replace_resets_content_and_marks_synced() {
        let (mut writer, store) = Writer::<Pod>::new();
        writer.add_indexer("node", by_node());
        writer.apply(pod("stale", Some("n1"), "1"));
        assert!(!store.is_synced());
        writer.replace(vec![pod("fresh", Some("n3"), "9")], "10".into());
        store.wait_synced().await;
        assert_eq!(store.len(), 1);
        assert!(store.by_index("node", "n1").is_empty());
        assert_eq!(store.by_index("node", "n3").len(), 1);
        assert_eq!(store.resource_version(), "10");
    }
}
