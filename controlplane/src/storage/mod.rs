//! The Storage trait and its embedded (redb) and etcd backends.
//!
//! Storage is byte-level: keys are strings like `/registry/pods/default/web`, values are
//! opaque bytes. Every write gets a new store-wide revision; a key's `mod_revision` is the
//! object's resourceVersion. Both backends pass the same conformance suite
//! (`controlplane/tests/storage_conformance.rs`).
//!
//! Revision semantics shared by both backends:
//! - an empty store is at revision 1; the first write gets a revision > 1;
//! - `watch(prefix, r)` delivers every event with `mod_revision > r`, in order, once;
//!   `r == 0` means "from now" (events committed after the watch was set up);
//! - `compact(c)` discards the history before `c`: afterwards a watch needs
//!   `after_revision >= c - 1`, else it fails with [`StorageError::Expired`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

pub mod embedded;
mod error;
pub mod etcd;
mod types;

use crate::metrics::ControlplaneMetrics;
use crate::metrics::storage::InstrumentedStorage;
pub use embedded::{EmbeddedOptions, EmbeddedStorage};
pub use error::{BackendError, StorageError};
pub use etcd::EtcdStorage;
pub use types::{Event, EventStream, EventType, KeyValue, ListResult};

/// A revisioned key-value store with compare-and-swap writes and watches from a revision.
pub trait Storage: Send + Sync + 'static {
    /// Reads one key; [`StorageError::NotFound`] if it does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<KeyValue, StorageError>> + Send;

    /// Lists every key starting with `prefix` (plain string prefix, sorted by key), with the
    /// revision the list was read at.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<ListResult, StorageError>> + Send;

    /// Creates a key that must not exist yet ([`StorageError::AlreadyExists`] otherwise);
    /// returns the new revision.
    fn create(
        &self,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<i64, StorageError>> + Send;

    /// Replaces a key's value if its mod revision is still `expected_mod_revision`
    /// ([`StorageError::Conflict`] otherwise, [`StorageError::NotFound`] if it is gone);
    /// returns the new revision.
    fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> impl Future<Output = Result<i64, StorageError>> + Send;

    /// Deletes a key, optionally only if its mod revision is `expected_mod_revision`;
    /// returns the deleted key-value and the revision of the delete.
    fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> impl Future<Output = Result<(KeyValue, i64), StorageError>> + Send;

    /// Watches keys starting with `prefix` for events with `mod_revision > after_revision`
    /// (0 = from now). Once this returns, no later write is missed. Fails with
    /// [`StorageError::Expired`] (from this call or as the stream's first item) when that
    /// history was compacted.
    fn watch(
        &self,
        prefix: &str,
        after_revision: i64,
    ) -> impl Future<Output = Result<EventStream, StorageError>> + Send;

    /// The store's current revision (the revision of the last write).
    fn current_revision(&self) -> impl Future<Output = Result<i64, StorageError>> + Send;

    /// Discards watch history before `revision` (idempotent; compacting an already compacted
    /// revision is a no-op). [`StorageError::FutureRevision`] if `revision` is not yet written.
    fn compact(&self, revision: i64) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Which backend to open, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// The default single-node store: one redb file inside a data directory.
    Embedded {
        /// Data directory; created if missing. The database file is `<path>/store.redb`.
        path: PathBuf,
    },
    /// An etcd v3 cluster, for controlplanes that share state.
    Etcd {
        /// Client URLs, e.g. `http://127.0.0.1:2379`.
        endpoints: Vec<String>,
        /// Prepended to every key (e.g. `/skiff`), so several installs or test runs can share
        /// one etcd; stripped from keys on the way out. Keys start with `/`, so prefixes
        /// `/skiff` and `/skiff2` do not see each other's `/registry/...` keys.
        prefix: String,
    },
}

/// Either backend behind one concrete type, so the controlplane can hold `Arc<AnyStorage>`
/// without being generic over the backend.
#[derive(Debug, Clone)]
pub enum AnyStorage {
    /// The embedded redb store.
    Embedded(EmbeddedStorage),
    /// The etcd-backed store.
    Etcd(EtcdStorage),
    /// The embedded store, each operation timed into the controlplane's metrics.
    TimedEmbedded(InstrumentedStorage<EmbeddedStorage>),
    /// The etcd-backed store, each operation timed into the controlplane's metrics.
    TimedEtcd(InstrumentedStorage<EtcdStorage>),
}

impl AnyStorage {
    /// The same backend with every operation's latency and result recorded in `metrics`.
    pub fn instrumented(self, metrics: ControlplaneMetrics) -> AnyStorage {
        match self {
            AnyStorage::Embedded(s) => {
                AnyStorage::TimedEmbedded(InstrumentedStorage::new(s, metrics))
            }
            AnyStorage::Etcd(s) => AnyStorage::TimedEtcd(InstrumentedStorage::new(s, metrics)),
            timed => timed,
        }
    }
}

/// Opens the backend `config` describes.
pub async fn open(config: &StorageConfig) -> Result<AnyStorage, StorageError> {
    match config {
        StorageConfig::Embedded { path } => {
            let path = path.clone();
            let storage = tokio::task::spawn_blocking(move || EmbeddedStorage::open(&path))
                .await
                .map_err(|e| BackendError::Task {
                    operation: "open",
                    source: Arc::new(e),
                })??;
            Ok(AnyStorage::Embedded(storage))
        }
        StorageConfig::Etcd { endpoints, prefix } => Ok(AnyStorage::Etcd(
            EtcdStorage::connect(endpoints, prefix).await?,
        )),
    }
}

/// Forwards one trait call to whichever backend is inside.
macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStorage::Embedded($s) => $call.await,
            AnyStorage::Etcd($s) => $call.await,
            AnyStorage::TimedEmbedded($s) => $call.await,
            AnyStorage::TimedEtcd($s) => $call.await,
        }
    };
}

impl Storage for AnyStorage {
    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        delegate!(self, s => s.get(key))
    }

    async fn list(&self, prefix: &str) -> Result<ListResult, StorageError> {
        delegate!(self, s => s.list(prefix))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        delegate!(self, s => s.create(key, value))
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<i64, StorageError> {
        delegate!(self, s => s.update(key, value, expected_mod_revision))
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        delegate!(self, s => s.delete(key, expected_mod_revision))
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<EventStream, StorageError> {
        delegate!(self, s => s.watch(prefix, after_revision))
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        delegate!(self, s => s.current_revision())
    }

    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        delegate!(self, s => s.compact(revision))
    }
}
