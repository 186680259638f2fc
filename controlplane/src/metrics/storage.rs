//! A Storage that times every operation of the one it wraps.

use std::time::Instant;

use super::{ControlplaneMetrics, OperationLabels};
use crate::storage::{EventStream, KeyValue, ListResult, Storage, StorageError};

/// Wraps a backend and records each operation's latency and result.
#[derive(Clone, Debug)]
pub struct InstrumentedStorage<S> {
    /// The backend doing the work.
    inner: S,
    /// Where latencies go.
    metrics: ControlplaneMetrics,
}

impl<S> InstrumentedStorage<S> {
    /// `inner`, timed into `metrics`.
    pub fn new(inner: S, metrics: ControlplaneMetrics) -> Self {
        InstrumentedStorage { inner, metrics }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Records one finished operation.
    fn record<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, StorageError>,
    ) {
        let result = match result {
            Ok(_) => "ok",
            Err(StorageError::NotFound { .. }) => "not_found",
            Err(StorageError::AlreadyExists { .. }) => "already_exists",
            Err(StorageError::Conflict { .. }) => "conflict",
            Err(StorageError::Expired { .. }) => "expired",
            Err(_) => "error",
        };
        self.metrics
            .storage_duration
            .get_or_create(&OperationLabels { operation, result })
            .observe(started.elapsed().as_secs_f64());
    }
}

impl<S: Storage> Storage for InstrumentedStorage<S> {
    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        let started = Instant::now();
        let result = self.inner.get(key).await;
        self.record("get", started, &result);
        result
    }

    async fn list(&self, prefix: &str) -> Result<ListResult, StorageError> {
        let started = Instant::now();
        let result = self.inner.list(prefix).await;
        self.record("list", started, &result);
        result
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let started = Instant::now();
        let result = self.inner.create(key, value).await;
        self.record("create", started, &result);
        result
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<i64, StorageError> {
        let started = Instant::now();
        let result = self.inner.update(key, value, expected_mod_revision).await;
        self.record("update", started, &result);
        result
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        let started = Instant::now();
        let result = self.inner.delete(key, expected_mod_revision).await;
        self.record("delete", started, &result);
        result
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<EventStream, StorageError> {
        let started = Instant::now();
        let result = self.inner.watch(prefix, after_revision).await;
        self.record("watch", started, &result);
        result
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        let started = Instant::now();
        let result = self.inner.current_revision().await;
        self.record("current_revision", started, &result);
        result
    }

    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.inner.compact(revision).await;
        self.record("compact", started, &result);
        result
    }
}
