//! The one error type every storage backend reports.

/// Why a storage operation failed; the registry maps these onto API `Status` errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist (get, update, delete).
    #[error("key {key} not found")]
    NotFound {
        /// The key that was asked for.
        key: String,
    },
    /// `create` found the key already present.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key that was being created.
        key: String,
    },
    /// The key's mod revision is not the one the caller expected (optimistic concurrency).
    #[error("conflict on key {key}: expected mod revision {expected}, found {actual}")]
    Conflict {
        /// The key that was being written.
        key: String,
        /// The mod revision the caller based its write on.
        expected: i64,
        /// The key's current mod revision.
        actual: i64,
    },
    /// The history needed to watch after `requested` has been compacted away; relist.
    #[error("revision {requested} is too old: history is compacted up to revision {compacted}")]
    Expired {
        /// The `after_revision` the caller asked to watch from.
        requested: i64,
        /// The oldest revision still kept in the history (0 when the backend cannot tell).
        compacted: i64,
    },
    /// A revision newer than the store's current revision was asked for (e.g. compact).
    #[error("revision {requested} is in the future: the current revision is {current}")]
    FutureRevision {
        /// The revision the caller asked for.
        requested: i64,
        /// The store's current revision (0 when the backend cannot tell).
        current: i64,
    },
    /// A watcher fell too far behind the writers and lost events; re-watch from the last
    /// revision it saw.
    #[error("watch fell behind and missed {skipped} events; re-watch from the last revision seen")]
    WatchLagged {
        /// How many events were dropped for this watcher.
        skipped: u64,
    },
    /// The backend itself failed (I/O, database, network); the message names the operation.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

impl StorageError {
    /// True for [`StorageError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// True for [`StorageError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// True for [`StorageError::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. })
    }

    /// True for [`StorageError::Expired`].
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired { .. })
    }
}
