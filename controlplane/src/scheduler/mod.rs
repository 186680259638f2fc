//! Assigns unscheduled pods to nodes through the binding subresource.
//!
//! The scheduler is an ordinary API client on [`skiff_api::runtime`]: reflectors keep every
//! pod (indexed by node), node and replication controller in local stores, unscheduled pods
//! go through a keyed work queue (retries wait in its timer, not in tasks), and each is placed by filters (node ready, resources fit, host ports free,
//! nodeSelector) and scores (least requested, spreading), then bound with
//! `POST pods/{name}/binding`. A pod that fits nowhere gets `PodScheduled=False,
//! Unschedulable` and is retried with exponential backoff, or at once when a node changes.

mod algorithm;
mod assumed;
mod cycle;
mod events;
mod filters;
mod node_info;
mod resources;
mod scores;
mod state;
mod unschedulable;

use crate::metrics::ControlplaneMetrics;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use skiff_api::client::{Client, ClientError};
use skiff_api::duration::parse_duration;
use skiff_api::runtime::{WatcherConfig, Writer, reflector, watcher};
use skiff_api::types::{Node, Pod, ReplicationController};
use skiff_api::wait::jittered_interval;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use algorithm::{Candidate, candidates, schedule};
pub use assumed::AssumedPods;
pub use filters::{FilterFailure, run_filters};
pub use node_info::NodeInfo;
pub use resources::Resources;
pub use scores::SpreadGroup;
pub use unschedulable::{FitError, REASON_UNSCHEDULABLE};

/// Tunables of the scheduler.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Name the scheduler logs under.
    pub name: String,
    /// First retry delay of a pod that fit nowhere (or whose binding failed).
    pub unschedulable_backoff_base: Duration,
    /// Largest retry delay of such a pod.
    pub unschedulable_backoff_cap: Duration,
    /// How many pods are bound concurrently (decisions themselves are serialised).
    pub workers: usize,
    /// How long a pod placed by this scheduler counts on its node without the watch
    /// showing the binding.
    pub assume_ttl: Duration,
    /// Where attempts, their latency and the queue depth are recorded, when in a controlplane.
    pub metrics: Option<ControlplaneMetrics>,
}

/// Binding workers by default: decisions are serialised under one lock (with the assume
/// overlay), so parallel workers only overlap the binding round trips. Measured with
/// `scripts/bench scheduling -- --parts throughput` (1,000 pods, 100 nodes): 658 pods/s with
/// one worker, 914 pods/s with four, the same even spread.
pub const DEFAULT_WORKERS: usize = 4;

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            name: "skiff-scheduler".to_string(),
            unschedulable_backoff_base: Duration::from_secs(1),
            unschedulable_backoff_cap: Duration::from_secs(60),
            workers: DEFAULT_WORKERS,
            assume_ttl: Duration::from_secs(30),
            metrics: None,
        }
    }
}

/// Why the scheduler stopped.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The apiserver URL cannot be used.
    #[error("scheduler cannot use the apiserver URL: {0}")]
    Client(#[source] ClientError),
    /// A watch stream ended, which watchers never do by themselves.
    #[error("the scheduler's {0} watch ended unexpectedly")]
    WatchEnded(&'static str),
    /// A worker task panicked.
    #[error("a scheduler worker failed: {0}")]
    Worker(#[source] tokio::task::JoinError),
}

/// Command-line flags of a stand-alone scheduler (`skiff-controlplane scheduler`).
#[derive(clap::Args, Clone, Debug)]
pub struct SchedulerArgs {
    /// YAML file of settings, one key per long flag; flags and the environment override it.
    #[arg(long, env = "SKIFF_CONTROLPLANE_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// URL of the apiserver to schedule for.
    #[arg(
        long,
        env = "SKIFF_CONTROLPLANE_SERVER",
        default_value = "http://127.0.0.1:6443"
    )]
    pub server: String,
    /// The scheduler's tunables.
    #[command(flatten)]
    pub options: SchedulerOptions,
}

/// The scheduler's tunables as flags; flatten these into a command that runs the
/// scheduler in-process (they carry no `--server`).
#[derive(clap::Args, Clone, Debug)]
pub struct SchedulerOptions {
    /// Name the scheduler logs under.
    #[arg(
        long = "scheduler-name",
        env = "SKIFF_CONTROLPLANE_SCHEDULER_NAME",
        default_value = "skiff-scheduler"
    )]
    pub name: String,
    /// First retry delay of an unschedulable pod (e.g. 500ms, 1s, 2m).
    #[arg(
        long = "scheduler-backoff-base",
        env = "SKIFF_CONTROLPLANE_SCHEDULER_BACKOFF_BASE",
        default_value = "1s",
        value_parser = parse_duration
    )]
    pub backoff_base: Duration,
    /// Largest retry delay of an unschedulable pod.
    #[arg(
        long = "scheduler-backoff-cap",
        env = "SKIFF_CONTROLPLANE_SCHEDULER_BACKOFF_CAP",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub backoff_cap: Duration,
    /// How many pods are bound concurrently.
    #[arg(
        long = "scheduler-workers",
        env = "SKIFF_CONTROLPLANE_SCHEDULER_WORKERS",
        default_value_t = DEFAULT_WORKERS
    )]
    pub workers: usize,
}

impl SchedulerOptions {
    /// The configuration these flags describe.
    pub fn config(&self) -> SchedulerConfig {
        SchedulerConfig {
            name: self.name.clone(),
            unschedulable_backoff_base: self.backoff_base,
            unschedulable_backoff_cap: self.backoff_cap,
            workers: self.workers.max(1),
            ..SchedulerConfig::default()
        }
    }
}

impl SchedulerArgs {
    /// A client for `--server`.
    pub fn client(&self) -> Result<Client, SchedulerError> {
        Client::new(&self.server).map_err(SchedulerError::Client)
    }

    /// The configuration these flags describe.
    pub fn config(&self) -> SchedulerConfig {
        self.options.config()
    }
}

/// Runs the stand-alone scheduler described by `args` until `shutdown` fires.
pub async fn run_with_args(
    args: &SchedulerArgs,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    run(args.client()?, args.config(), shutdown).await
}

/// Runs the scheduler against the apiserver behind `client` until `shutdown` fires.
///
/// Only returns early when a watch ends (never in practice: watchers retry forever) or a
/// worker panics.
pub async fn run(
    client: Client,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    let (mut pod_writer, pods) = Writer::<Pod>::new();
    pod_writer.add_indexer(node_info::NODE_INDEX, node_info::index_by_node());
    let (node_writer, nodes) = Writer::<Node>::new();
    let (rc_writer, rcs) = Writer::<ReplicationController>::new();

    let mut pod_events = pin!(reflector(
        pod_writer,
        watcher(client.api::<Pod>(None), WatcherConfig::default())
    ));
    let mut node_events = pin!(reflector(
        node_writer,
        watcher(client.api::<Node>(None), WatcherConfig::default())
    ));
    let mut rc_events = pin!(reflector(
        rc_writer,
        watcher(
            client.api::<ReplicationController>(None),
            WatcherConfig::default()
        )
    ));

    let workers = config.workers.max(1);
    let name = config.name.clone();
    let state = Arc::new(state::SchedulerState::new(client, config, pods, nodes, rcs));
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(cycle::worker(Arc::clone(&state), shutdown.clone()));
    }
    let mut handler = events::EventHandler::new(Arc::clone(&state));
    let mut expiry = jittered_interval(Duration::from_secs(1), 0.1);
    info!(scheduler = %name, workers, "scheduler started");

    let result = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            item = pod_events.next() => match item {
                Some(item) => handler.pod_item(item),
                None => break Err(SchedulerError::WatchEnded("pod")),
            },
            item = node_events.next() => match item {
                Some(item) => handler.node_item(item),
                None => break Err(SchedulerError::WatchEnded("node")),
            },
            item = rc_events.next() => match item {
                Some(item) => handler.rc_item(item),
                None => break Err(SchedulerError::WatchEnded("replication controller")),
            },
            _ = expiry.tick() => handler.expire_assumed(),
            Some(joined) = tasks.join_next() => {
                if let Err(e) = joined {
                    break Err(SchedulerError::Worker(e));
                }
            }
        }
    };
    state.queue.close();
    shutdown.cancel();
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(SchedulerError::Worker)?;
    }
    info!(scheduler = %name, "scheduler stopped");
    result
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SchedulerArgs,
    }

    #[test]
    fn flags_default_to_the_documented_config() {
        let cli = Cli::try_parse_from(["scheduler"]).unwrap();
        let config = cli.args.config();
        assert_eq!(cli.args.server, "http://127.0.0.1:6443");
        assert_eq!(config.name, "skiff-scheduler");
        assert_eq!(config.unschedulable_backoff_base, Duration::from_secs(1));
        assert_eq!(config.unschedulable_backoff_cap, Duration::from_secs(60));
        assert_eq!(config.workers, DEFAULT_WORKERS);

        let cli = Cli::try_parse_from([
            "scheduler",
            "--server",
            "http://127.0.0.1:7000",
            "--scheduler-backoff-base",
            "200ms",
            "--scheduler-workers",
            "2",
        ])
        .unwrap();
        assert_eq!(
            cli.args.config().unschedulable_backoff_base,
            Duration::from_millis(200)
        );
        assert_eq!(cli.args.config().workers, 2);
        assert!(cli.args.client().is_ok());
    }
}
