//! The cache's state: every current object, the window of recent events and the indexes.
//! Plain data under one lock; the runner feeds it storage events, watches read from it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use skiff_api::Status;
use tracing::warn;

use super::event::{CachedEvent, CachedObject, EventType, WatchItem};
use crate::registry::{ObjectFilter, Strategy, decode};
use crate::storage::{Event, EventType as StorageEventType, KeyValue};

/// Computes the index value of an object (e.g. a pod's `spec.nodeName`), None: not indexed.
pub type IndexFn<T> = fn(&T) -> Option<String>;

/// The current objects and recent history of one kind.
pub(crate) struct State<T> {
    /// Every current object by storage key.
    objects: BTreeMap<String, Arc<CachedObject<T>>>,
    /// The most recent events, oldest first.
    window: VecDeque<Arc<CachedEvent<T>>>,
    /// Most events the window keeps.
    capacity: usize,
    /// Every event with a revision above this is in the window: the oldest revision a watch
    /// can resume from.
    oldest: i64,
    /// The revision the state is consistent at.
    revision: i64,
    /// True once the first list has been loaded.
    ready: bool,
    /// Named index functions.
    indexers: Vec<(&'static str, IndexFn<T>)>,
    /// Index name → index value → keys of the objects with that value.
    indexes: HashMap<&'static str, HashMap<String, BTreeSet<String>>>,
}

/// Where a new watch starts: what it is sent first and the revision it has then seen.
pub(crate) struct Start<T> {
    /// Synthetic ADDED events or replayed window events, already filtered.
    pub initial: Vec<WatchItem<T>>,
    /// Everything up to this revision is covered by `initial` (or, for a revision newer
    /// than the state, by the client's own list): live events up to it are skipped.
    pub revision: i64,
}

impl<T: Strategy> State<T> {
    /// An empty, not yet ready state keeping `capacity` events.
    pub fn new(capacity: usize, indexers: Vec<(&'static str, IndexFn<T>)>) -> Self {
        State {
            objects: BTreeMap::new(),
            window: VecDeque::new(),
            capacity: capacity.max(1),
            oldest: 0,
            revision: 0,
            ready: false,
            indexes: indexers.iter().map(|(n, _)| (*n, HashMap::new())).collect(),
            indexers,
        }
    }

    /// True once a list has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The revision the state is consistent at.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The oldest revision a watch can resume from.
    pub fn oldest(&self) -> i64 {
        self.oldest
    }

    /// Loads a full list read at `revision`, dropping the history: watches started before
    /// cannot continue across it. Returns how many stored objects could not be decoded.
    pub fn replace(&mut self, items: &[KeyValue], revision: i64) -> usize {
        self.objects.clear();
        self.window.clear();
        for index in self.indexes.values_mut() {
            index.clear();
        }
        let mut broken = 0;
        for kv in items {
            match decode::<T>(&kv.key, &kv.value, kv.mod_revision)
                .and_then(|o| cached(kv.key.clone(), o))
            {
                Ok(object) => self.insert(Arc::new(object)),
                Err(status) => {
                    broken += 1;
                    warn!(key = %kv.key, error = %status, "skipping an undecodable stored object");
                }
            }
        }
        self.oldest = revision;
        self.revision = revision;
        self.ready = true;
        broken
    }

    /// Applies one storage event; returns the decoded event to fan out, or None when it
    /// could not be decoded (the revision still advances).
    pub fn apply(&mut self, event: &Event) -> Option<Arc<CachedEvent<T>>> {
        let revision = event.mod_revision;
        let decoded = match event.kind {
            StorageEventType::Put => self.apply_put(event),
            StorageEventType::Delete => self.apply_delete(event),
        };
        self.revision = self.revision.max(revision);
        let decoded = match decoded {
            Ok(decoded) => Arc::new(decoded),
            Err(status) => {
                warn!(key = %event.key, revision, error = %status, "skipping an undecodable event");
                return None;
            }
        };
        self.window.push_back(Arc::clone(&decoded));
        while self.window.len() > self.capacity {
            if let Some(evicted) = self.window.pop_front() {
                self.oldest = evicted.revision;
            }
        }
        Some(decoded)
    }

    /// A put: the new object replaces the cached one.
    fn apply_put(&mut self, event: &Event) -> Result<CachedEvent<T>, Status> {
        let value = event.value.as_deref().unwrap_or_default();
        let object = decode::<T>(&event.key, value, event.mod_revision)?;
        let object = Arc::new(cached(event.key.clone(), object)?);
        let previous = self.remove(&event.key);
        self.insert(Arc::clone(&object));
        Ok(CachedEvent {
            kind: if previous.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            revision: event.mod_revision,
            object,
            previous,
        })
    }

    /// A delete: the cached object leaves, stamped with the delete's revision.
    fn apply_delete(&mut self, event: &Event) -> Result<CachedEvent<T>, Status> {
        let previous = match self.remove(&event.key) {
            Some(previous) => previous,
            None => {
                let value = event.prev_value.as_deref().unwrap_or_default();
                let object = decode::<T>(&event.key, value, event.mod_revision)?;
                Arc::new(cached(event.key.clone(), object)?)
            }
        };
        let mut gone = previous.object.clone();
        gone.metadata_mut().resource_version = Some(event.mod_revision.to_string());
        let object = Arc::new(cached(event.key.clone(), gone)?);
        Ok(CachedEvent {
            kind: EventType::Deleted,
            revision: event.mod_revision,
            object,
            previous: Some(previous),
        })
    }

    /// Adds an object to the map and indexes.
    fn insert(&mut self, object: Arc<CachedObject<T>>) {
        for (name, index_fn) in &self.indexers {
            if let (Some(value), Some(index)) =
                (index_fn(&object.object), self.indexes.get_mut(name))
            {
                index.entry(value).or_default().insert(object.key.clone());
            }
        }
        self.objects.insert(object.key.clone(), object);
    }

    /// Removes an object from the map and indexes.
    fn remove(&mut self, key: &str) -> Option<Arc<CachedObject<T>>> {
        let object = self.objects.remove(key)?;
        for (name, index_fn) in &self.indexers {
            if let (Some(value), Some(index)) =
                (index_fn(&object.object), self.indexes.get_mut(name))
                && let Some(keys) = index.get_mut(&value)
            {
                keys.remove(key);
                if keys.is_empty() {
                    index.remove(&value);
                }
            }
        }
        Some(object)
    }

    /// Where a watch from `from` starts (None or 0: the current state as ADDED events).
    ///
    /// A revision inside the window replays the events after it; one newer than the state
    /// (the caller checked it is not newer than storage) starts at the end, and the stream
    /// skips events up to it. Older than the window: 410 Expired.
    pub fn start(&self, from: Option<i64>, filter: &ObjectFilter) -> Result<Start<T>, Status> {
        match from.filter(|rv| *rv > 0) {
            None => Ok(Start {
                initial: self
                    .objects
                    .values()
                    .filter(|o| filter.matches(&o.object))
                    .map(|o| WatchItem::Event {
                        kind: EventType::Added,
                        object: Arc::clone(o),
                    })
                    .collect(),
                revision: self.revision,
            }),
            Some(rv) if rv < self.oldest => Err(Status::expired(format!(
                "too old resource version: {rv} ({})",
                self.oldest
            ))),
            Some(rv) => Ok(Start {
                initial: self
                    .window
                    .iter()
                    .filter(|e| e.revision > rv)
                    .filter_map(|e| filter_event(e, filter))
                    .collect(),
                revision: rv.max(self.revision),
            }),
        }
    }

    /// The current objects `filter` selects, with the revision they are consistent at.
    pub fn snapshot(&self, filter: &ObjectFilter) -> (Vec<Arc<CachedObject<T>>>, i64) {
        let items = self
            .objects
            .values()
            .filter(|o| filter.matches(&o.object))
            .cloned()
            .collect();
        (items, self.revision)
    }

    /// The current object with storage key `key`.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject<T>>> {
        self.objects.get(key).cloned()
    }

    /// The current objects whose index `name` has `value`, sorted by key, and the revision.
    pub fn by_index(&self, name: &str, value: &str) -> (Vec<Arc<CachedObject<T>>>, i64) {
        let items = self
            .indexes
            .get(name)
            .and_then(|index| index.get(value))
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| self.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default();
        (items, self.revision)
    }
}

/// What a client with `filter` sees of `event`: MODIFIED that stops matching becomes
/// DELETED, one that starts matching becomes ADDED; None when it never matched.
pub(crate) fn filter_event<T: Strategy>(
    event: &CachedEvent<T>,
    filter: &ObjectFilter,
) -> Option<WatchItem<T>> {
    let now = filter.matches(&event.object.object);
    let before = event
        .previous
        .as_ref()
        .is_some_and(|p| filter.matches(&p.object));
    let kind = match (event.kind, before, now) {
        (EventType::Deleted, _, true) => EventType::Deleted,
        (EventType::Deleted, _, false) => return None,
        (_, true, true) => EventType::Modified,
        (_, false, true) => EventType::Added,
        (_, true, false) => EventType::Deleted,
        (_, false, false) => return None,
    };
    Some(WatchItem::Event {
        kind,
        object: Arc::clone(&event.object),
    })
}

/// Wraps a decoded object, mapping a serialization failure to a 500.
fn cached<T: Strategy>(key: String, object: T) -> Result<CachedObject<T>, Status> {
    CachedObject::new(key.clone(), object)
        .map_err(|e| Status::internal(format!("could not encode the cached object {key}: {e}")))
}
