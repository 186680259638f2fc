//! The values that cross the Storage trait: stored key-values, lists and watch events.

use futures::stream::BoxStream;

use super::StorageError;

/// One stored key with its opaque value and the revisions the store assigned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/pods/default/web`.
    pub key: String,
    /// The opaque value bytes (the registry stores JSON here).
    pub value: Vec<u8>,
    /// Revision at which the key was created; stays the same across updates.
    pub create_revision: i64,
    /// Revision of the last write to the key; the object's resourceVersion.
    pub mod_revision: i64,
}

/// The result of listing a key prefix: the items and the revision they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// Every key under the prefix, sorted by key.
    pub items: Vec<KeyValue>,
    /// Store revision the list is consistent at; a watch from here misses nothing.
    pub revision: i64,
}

/// What happened to a key in a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One committed change to one key, as delivered by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Whether the key was written or deleted.
    pub kind: EventType,
    /// The key that changed.
    pub key: String,
    /// The new value; `None` on delete.
    pub value: Option<Vec<u8>>,
    /// The value before this change; `None` when the key was just created.
    pub prev_value: Option<Vec<u8>>,
    /// Create revision of the key (for a delete: of the key that was deleted).
    pub create_revision: i64,
    /// Revision of this event; strictly increasing along one watch.
    pub mod_revision: i64,
}

/// A watch: events in revision order, ending with an error when it cannot continue
/// (e.g. [`StorageError::WatchLagged`] or [`StorageError::Expired`]).
pub type EventStream = BoxStream<'static, Result<Event, StorageError>>;
