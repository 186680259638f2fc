//! The one way a controller follows a kind: an informer over `client.api::<T>(None)` that
//! keeps a store current and hands each change to the controller; and how its queue depth is
//! reported.

use std::sync::Arc;

use skiff_api::client::Client;
use skiff_api::runtime::{Change, WatcherConfig, Writer, inform};
use skiff_api::types::Resource;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Spawns into `tasks` an informer of every `T` in the cluster that writes into `writer` and
/// calls `handle(controller, change)` for each change, until `shutdown`.
pub(crate) fn follow<T, C, F>(
    tasks: &mut JoinSet<()>,
    client: &Client,
    writer: Writer<T>,
    controller: &Arc<C>,
    shutdown: &CancellationToken,
    handle: F,
) where
    T: Resource,
    C: Send + Sync + 'static,
    F: Fn(&C, Change<T>) + Send + 'static,
{
    let controller = Arc::clone(controller);
    tasks.spawn(inform(
        client.api::<T>(None),
        WatcherConfig::default(),
        writer,
        shutdown.clone(),
        move |change| handle(&controller, change),
    ));
}

/// How often a controller's queue depth is sampled into its gauge.
const QUEUE_DEPTH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Spawns into `tasks`, when there is a `gauge`, a sampler that keeps it at `queue`'s length
/// until `shutdown`.
pub(crate) fn report_queue_depth(
    tasks: &mut JoinSet<()>,
    queue: &skiff_api::runtime::WorkQueue,
    gauge: Option<prometheus_client::metrics::gauge::Gauge>,
    shutdown: &CancellationToken,
) {
    let Some(gauge) = gauge else { return };
    let (queue, shutdown) = (queue.clone(), shutdown.clone());
    tasks.spawn(async move {
        let mut ticks = skiff_api::wait::jittered_interval(QUEUE_DEPTH_EVERY, 0.1);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {
                    gauge.set(i64::try_from(queue.len()).unwrap_or(i64::MAX));
                }
            }
        }
    });
}
