//! The one way a controller follows a kind: an informer over `client.api::<T>(None)` that
//! keeps a store current and hands each change to the controller.

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
