//! The one error type every storage backend reports, and what a backend itself can fail with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    /// The backend itself failed (I/O, database, network).
    #[error("storage backend failed: {0}")]
    Backend(#[from] BackendError),
}

/// How a backend itself failed. Foreign errors are shared (`Arc`) so a failure can be
/// cloned to every watcher that sees it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// etcd could not be reached when connecting.
    #[error("could not connect to etcd at {endpoints:?}: {source}")]
    EtcdConnect {
        /// The client URLs tried.
        endpoints: Vec<String>,
        /// What the client reported.
        #[source]
        source: Arc<etcd_client::Error>,
    },
    /// etcd did not answer the first request in time.
    #[error("etcd at {endpoints:?} did not answer within {timeout:?}")]
    EtcdTimeout {
        /// The client URLs tried.
        endpoints: Vec<String>,
        /// How long it was given.
        timeout: Duration,
    },
    /// An etcd call failed.
    #[error("etcd {operation} {key}: {source}")]
    Etcd {
        /// The call: `get`, `list`, `watch`, …
        operation: &'static str,
        /// The key or prefix it was about.
        key: String,
        /// What the client reported.
        #[source]
        source: Arc<etcd_client::Error>,
    },
    /// etcd answered something this client cannot use.
    #[error("etcd answered unexpectedly: {0}")]
    EtcdProtocol(&'static str),
    /// etcd returned a key outside this installation's prefix.
    #[error("etcd returned key {key} outside the prefix {prefix}")]
    KeyOutsidePrefix {
        /// The key as etcd returned it (lossily decoded).
        key: String,
        /// The prefix every key should start with.
        prefix: String,
    },
    /// etcd returned a key that is not UTF-8.
    #[error("etcd key {key} is not UTF-8: {source}")]
    KeyNotUtf8 {
        /// The key as etcd returned it (lossily decoded).
        key: String,
        /// Where the bytes stop being UTF-8.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// etcd ended a watch for a reason other than compaction.
    #[error("etcd canceled the watch: {reason}")]
    WatchCanceled {
        /// etcd's cancel reason.
        reason: String,
    },
    /// A delete did not report the value it removed.
    #[error("the delete of {key} did not return the deleted value")]
    DeletedValueMissing {
        /// The key deleted.
        key: String,
    },
    /// The embedded store's data directory could not be created.
    #[error("could not create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The embedded store's database file could not be opened.
    #[error("could not open database {path}: {source}")]
    OpenDatabase {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: Arc<redb::DatabaseError>,
    },
    /// A redb operation of the embedded store failed.
    #[error("embedded store: {0}")]
    Redb(#[source] Arc<redb::Error>),
    /// A blocking task of the embedded store did not finish (it panicked or was cancelled).
    #[error("embedded store {operation} failed: {source}")]
    Task {
        /// The operation that ran in the task.
        operation: &'static str,
        /// The join error.
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
}

/// Backend failures compare by what they report (the foreign errors inside have no
/// equality of their own), so tests can compare whole [`StorageError`]s.
impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for BackendError {}

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
