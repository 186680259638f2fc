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
/// without being generic over the backend; with metrics, every operation is timed.
#[derive(Debug, Clone)]
pub struct AnyStorage {
    /// The backend doing the work.
    backend: Backend,
    /// Where each operation's latency and result go, once [`AnyStorage::instrumented`].
    metrics: Option<ControlplaneMetrics>,
}

/// The two backends.
#[derive(Debug, Clone)]
enum Backend {
    /// The embedded redb store.
    Embedded(EmbeddedStorage),
    /// The etcd-backed store.
    Etcd(EtcdStorage),
}

impl AnyStorage {
    /// The same backend with every operation's latency and result recorded in `metrics`.
    pub fn instrumented(mut self, metrics: ControlplaneMetrics) -> AnyStorage {
        self.metrics = Some(metrics);
        self
    }

    /// Wraps a backend, without metrics.
    fn of(backend: Backend) -> AnyStorage {
        AnyStorage {
            backend,
            metrics: None,
        }
    }
}

/// Test support: an embedded store in a fresh temporary directory (kept alive by the
/// returned guard).
#[cfg(test)]
pub(crate) async fn temp_embedded() -> (tempfile::TempDir, Arc<AnyStorage>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
    let storage = open(&StorageConfig::Embedded {
        path: dir.path().to_path_buf(),
    })
    .await
    .unwrap_or_else(|e| panic!("embedded store: {e}"));
    (dir, Arc::new(storage))
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
            Ok(AnyStorage::of(Backend::Embedded(storage)))
        }
        StorageConfig::Etcd { endpoints, prefix } => Ok(AnyStorage::of(Backend::Etcd(
            EtcdStorage::connect(endpoints, prefix).await?,
        ))),
    }
}

/// Forwards one trait call to whichever backend is inside, timing it when metrics are set.
macro_rules! delegate {
    ($self:ident, $operation:literal, $s:ident => $call:expr) => {{
        let started = std::time::Instant::now();
        let result = match &$self.backend {
            Backend::Embedded($s) => $call.await,
            Backend::Etcd($s) => $call.await,
        };
        if let Some(metrics) = &$self.metrics {
            metrics.record_storage($operation, started.elapsed(), &result);
        }
        result
    }};
}

impl Storage for AnyStorage {
    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        delegate!(self, "get", s => s.get(key))
    }

    async fn list(&self, prefix: &str) -> Result<ListResult, StorageError> {
        delegate!(self, "list", s => s.list(prefix))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        delegate!(self, "create", s => s.create(key, value))
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<i64, StorageError> {
        delegate!(self, "update", s => s.update(key, value, expected_mod_revision))
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        delegate!(self, "delete", s => s.delete(key, expected_mod_revision))
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<EventStream, StorageError> {
        delegate!(self, "watch", s => s.watch(prefix, after_revision))
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        delegate!(self, "current_revision", s => s.current_revision())
    }

    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        delegate!(self, "compact", s => s.compact(revision))
    }
}
