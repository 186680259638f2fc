//! Prometheus metrics of the agent, registered once and shared by every part that records.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set naming an image, for pull metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct ImageLabels {
    /// The image reference as written in the spec.
    pub image: String,
}

/// Every metric the agent exports on `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Pods the agent currently runs.
    pub pods: Gauge,
    /// Containers (without infra containers) the agent currently runs.
    pub containers: Gauge,
    /// Duration of one pod sync, in seconds.
    pub sync_duration: Histogram,
    /// Duration of image pulls, in seconds, per image.
    pub pull_duration: Family<ImageLabels, Histogram>,
    /// Container restarts made by the agent.
    pub container_restarts: Counter,
}

impl Metrics {
    /// Creates and registers every metric under the `skiff_agent` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("skiff_agent");
        let pods = Gauge::default();
        registry.register("pods", "Pods the agent runs", pods.clone());
        let containers = Gauge::default();
        registry.register(
            "containers",
            "Containers the agent runs, infra excluded",
            containers.clone(),
        );
        let sync_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "pod_sync_duration_seconds",
            "Duration of one pod sync",
            sync_duration.clone(),
        );
        let pull_duration = Family::<ImageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 14))
        });
        registry.register(
            "image_pull_duration_seconds",
            "Duration of image pulls",
            pull_duration.clone(),
        );
        let container_restarts = Counter::default();
        registry.register(
            "container_restarts",
            "Container restarts made by the agent",
            container_restarts.clone(),
        );
        Metrics {
            registry,
            pods,
            containers,
            sync_duration,
            pull_duration,
            container_restarts,
        }
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
