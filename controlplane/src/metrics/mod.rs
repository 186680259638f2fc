//! Prometheus metrics of the controlplane, served on `/metrics`: API requests by verb,
//! resource and code with their latency, open watches, storage operation latency, scheduling
//! attempts and controller queue depth.
//!
//! One [`ControlplaneMetrics`] is made at start and shared (it is cheap to clone: every metric
//! is a handle). The API server records requests through [`http::track`], the storage
//! (`AnyStorage::instrumented`) through [`ControlplaneMetrics::record_storage`], the scheduler
//! through [`ControlplaneMetrics::record_scheduling_attempt`].

pub mod http;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of one API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, or the HTTP method.
    pub verb: String,
    /// The resource (`pods`, `pods/status`, `nodes/manifests`, …) or `other`.
    pub resource: String,
    /// The HTTP status code.
    pub code: u16,
}

/// Labels of a request's latency (the code is left out to keep the series few).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbResource {
    /// Kubernetes verb.
    pub verb: String,
    /// The resource.
    pub resource: String,
}

/// Labels naming a resource.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    /// The resource (`pods`, …).
    pub resource: String,
}

/// Labels naming a storage operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// get, list, create, update, delete, watch, current_revision, compact.
    pub operation: &'static str,
    /// ok, or the error kind.
    pub result: &'static str,
}

/// Labels of one scheduling attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// scheduled, unschedulable or error.
    pub result: &'static str,
}

/// Labels naming a controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// The controller (`replication`, `endpoints`, `node-lifecycle`, `scheduler`).
    pub controller: &'static str,
}

/// Every metric the controlplane exports.
#[derive(Clone, Debug)]
pub struct ControlplaneMetrics {
    /// The registry `/metrics` encodes.
    registry: Arc<Registry>,
    /// API requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// API request latency in seconds (until the response head; watches until they open).
    pub request_duration: Family<VerbResource, Histogram>,
    /// Watches open now.
    pub watchers: Family<ResourceLabel, Gauge>,
    /// Storage operation latency in seconds.
    pub storage_duration: Family<OperationLabels, Histogram>,
    /// Scheduling attempts by result.
    pub scheduler_attempts: Family<AttemptLabels, Counter>,
    /// Latency of one scheduling attempt (filter, score, bind) in seconds.
    pub scheduler_attempt_duration: Histogram,
    /// Keys waiting in a controller's queue.
    pub queue_depth: Family<ControllerLabel, Gauge>,
}

impl ControlplaneMetrics {
    /// Creates and registers every metric under the `skiff` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("skiff");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "apiserver_requests",
            "API requests answered, by verb, resource and code",
            requests.clone(),
        );
        let request_duration = Family::<VerbResource, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency until the response head, by verb and resource",
            request_duration.clone(),
        );
        let watchers = Family::<ResourceLabel, Gauge>::default();
        registry.register(
            "apiserver_watchers",
            "Watches open now, by resource",
            watchers.clone(),
        );
        let storage_duration = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "storage_operation_duration_seconds",
            "Storage operation latency, by operation and result",
            storage_duration.clone(),
        );
        let scheduler_attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "scheduler_attempts",
            "Scheduling attempts, by result",
            scheduler_attempts.clone(),
        );
        let scheduler_attempt_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "scheduler_attempt_duration_seconds",
            "Latency of one scheduling attempt",
            scheduler_attempt_duration.clone(),
        );
        let queue_depth = Family::<ControllerLabel, Gauge>::default();
        registry.register(
            "controller_queue_depth",
            "Keys waiting in a controller's work queue",
            queue_depth.clone(),
        );
        ControlplaneMetrics {
            registry: Arc::new(registry),
            requests,
            request_duration,
            watchers,
            storage_duration,
            scheduler_attempts,
            scheduler_attempt_duration,
            queue_depth,
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Records one scheduling attempt (`scheduled`, `unschedulable` or `error`), how long
    /// it took, and how many pods still wait in the scheduler's queue.
    pub fn record_scheduling_attempt(
        &self,
        result: &'static str,
        took: std::time::Duration,
        queued: usize,
    ) {
        self.scheduler_attempts
            .get_or_create(&AttemptLabels { result })
            .inc();
        self.scheduler_attempt_duration.observe(took.as_secs_f64());
        self.queue_depth
            .get_or_create(&ControllerLabel {
                controller: "scheduler",
            })
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    /// Records one storage operation: its latency and whether it succeeded (or how not).
    pub fn record_storage<T>(
        &self,
        operation: &'static str,
        took: std::time::Duration,
        result: &Result<T, crate::storage::StorageError>,
    ) {
        use crate::storage::StorageError;
        let result = match result {
            Ok(_) => "ok",
            Err(StorageError::NotFound { .. }) => "not_found",
            Err(StorageError::AlreadyExists { .. }) => "already_exists",
            Err(StorageError::Conflict { .. }) => "conflict",
            Err(StorageError::Expired { .. }) => "expired",
            Err(_) => "error",
        };
        self.storage_duration
            .get_or_create(&OperationLabels { operation, result })
            .observe(took.as_secs_f64());
    }

    /// The gauge of open watches on `resource`, to hold for as long as a watch is open.
    pub fn watcher(&self, resource: &str) -> WatcherGuard {
        let gauge = self
            .watchers
            .get_or_create(&ResourceLabel {
                resource: resource.to_string(),
            })
            .clone();
        gauge.inc();
        WatcherGuard { gauge }
    }
}

impl Default for ControlplaneMetrics {
    fn default() -> Self {
        ControlplaneMetrics::new()
    }
}

/// Counts one open watch while it lives.
#[derive(Debug)]
pub struct WatcherGuard {
    /// The gauge decremented on drop.
    gauge: Gauge,
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_appears_once_recorded() {
        let metrics = ControlplaneMetrics::new();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                verb: "list".into(),
                resource: "pods".into(),
                code: 200,
            })
            .inc();
        metrics
            .scheduler_attempts
            .get_or_create(&AttemptLabels {
                result: "scheduled",
            })
            .inc();
        let guard = metrics.watcher("pods");
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"skiff_apiserver_requests_total{verb="list",resource="pods",code="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"skiff_scheduler_attempts_total{result="scheduled"} 1"#));
        assert!(text.contains(r#"skiff_apiserver_watchers{resource="pods"} 1"#));
        drop(guard);
        let text = metrics.encode().unwrap();
        assert!(text.contains(r#"skiff_apiserver_watchers{resource="pods"} 0"#));
        metrics
            .queue_depth
            .get_or_create(&ControllerLabel {
                controller: "replication",
            })
            .set(3);
        metrics
            .storage_duration
            .get_or_create(&OperationLabels {
                operation: "get",
                result: "ok",
            })
            .observe(0.001);
        let text = metrics.encode().unwrap();
        assert!(text.contains(r#"skiff_controller_queue_depth{controller="replication"} 3"#));
        assert!(text.contains(
            r#"skiff_storage_operation_duration_seconds_count{operation="get",result="ok"} 1"#
        ));
    }
}
