//! The redb tables of the embedded store and how rows map to storage types.
//!
//! - `meta`: the revision counter and the compaction marker;
//! - `keys`: key → (value, create revision, mod revision), the current state;
//! - `events`: revision → event, the watch history (one write = one revision = one event).

use redb::{ReadableTable, TableDefinition};

use crate::storage::{BackendError, Event, EventType, KeyValue, StorageError};

/// Row of the `keys` table: (value, create revision, mod revision).
pub(super) type KeyRow<'a> = (&'a [u8], i64, i64);

/// Row of the `events` table: (kind, key, value, previous value, create revision).
pub(super) type EventRow<'a> = (u8, &'a str, Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// Store-wide counters, by name.
pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Current value of every key.
pub(super) const KEYS: TableDefinition<&str, KeyRow> = TableDefinition::new("keys");
/// Committed events by revision, kept back to the compaction marker.
pub(super) const EVENTS: TableDefinition<i64, EventRow> = TableDefinition::new("events");

/// `meta` entry: revision of the last write (1 for an empty store).
pub(super) const META_REVISION: &str = "revision";
/// `meta` entry: history before this revision has been discarded (0 = nothing discarded).
pub(super) const META_COMPACTED: &str = "compacted";

/// Revision of an empty store, matching etcd so `0` can mean "from now" in watches.
pub(super) const INITIAL_REVISION: i64 = 1;

/// `events.kind` for a put.
const KIND_PUT: u8 = 0;
/// `events.kind` for a delete.
const KIND_DELETE: u8 = 1;

/// Reads a `meta` counter, with a default for a fresh database.
pub(super) fn read_meta(
    table: &impl ReadableTable<&'static str, i64>,
    name: &str,
    default: i64,
) -> Result<i64, StorageError> {
    Ok(table.get(name)?.map(|v| v.value()).unwrap_or(default))
}

/// Builds a [`KeyValue`] from a `keys` row.
pub(super) fn key_value(key: &str, row: KeyRow<'_>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: row.0.to_vec(),
        create_revision: row.1,
        mod_revision: row.2,
    }
}

/// Builds an [`Event`] from an `events` row.
pub(super) fn event_from_row(revision: i64, row: EventRow<'_>) -> Event {
    Event {
        kind: if row.0 == KIND_DELETE {
            EventType::Delete
        } else {
            EventType::Put
        },
        key: row.1.to_owned(),
        value: row.2.map(<[u8]>::to_vec),
        prev_value: row.3.map(<[u8]>::to_vec),
        create_revision: row.4,
        mod_revision: revision,
    }
}

/// The `events` row for an event.
pub(super) fn event_row(event: &Event) -> EventRow<'_> {
    (
        match event.kind {
            EventType::Put => KIND_PUT,
            EventType::Delete => KIND_DELETE,
        },
        &event.key,
        event.value.as_deref(),
        event.prev_value.as_deref(),
        event.create_revision,
    )
}

/// Turns each redb error type into a [`BackendError::Redb`].
macro_rules! backend_error_from {
    ($($ty:ty),* $(,)?) => {
        $(impl From<$ty> for StorageError {
            fn from(error: $ty) -> Self {
                BackendError::Redb(std::sync::Arc::new(redb::Error::from(error))).into()
            }
        })*
    };
}

backend_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
);
