//! The background task of a watch cache: list, then one storage watch, forever.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tracing::{debug, info, warn};

use super::Shared;
use super::stream::Broadcast;
use crate::registry::Strategy;
use crate::storage::{Storage, StorageError};

/// Pause before retrying after a storage failure.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Why the watch loop handed control back to the list loop.
enum Next {
    /// The history is gone: list again.
    Relist,
    /// The server is shutting down.
    Stop,
}

/// Lists and watches the kind's prefix until shutdown.
pub(crate) async fn run<T: Strategy>(shared: Arc<Shared<T>>) {
    loop {
        let listed = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            listed = shared.storage.list(&shared.prefix) => listed,
        };
        let listed = match listed {
            Ok(listed) => listed,
            Err(error) => {
                warn!(prefix = %shared.prefix, %error, "watch cache could not list; retrying");
                if pause(&shared).await {
                    return;
                }
                continue;
            }
        };
        {
            let mut state = shared.lock();
            let relisting = state.is_ready();
            let broken = state.replace(&listed.items, listed.revision);
            if relisting {
                // Open watches cannot continue across the lost history.
                let _ = shared.fanout.send(Broadcast::Reset);
            }
            shared.progress.send_replace(Some(listed.revision));
            info!(
                prefix = %shared.prefix,
                objects = listed.items.len() - broken,
                revision = listed.revision,
                relisting,
                "watch cache listed"
            );
        }
        match watch_from(&shared, listed.revision).await {
            Next::Relist => continue,
            Next::Stop => return,
        }
    }
}

/// Keeps one storage watch open from `revision`, re-watching after lag or failure.
async fn watch_from<T: Strategy>(shared: &Shared<T>, mut revision: i64) -> Next {
    loop {
        let opened = tokio::select! {
            () = shared.shutdown.cancelled() => return Next::Stop,
            opened = shared.storage.watch(&shared.prefix, revision) => opened,
        };
        let mut events = match opened {
            Ok(events) => events,
            Err(StorageError::Expired { .. }) => return Next::Relist,
            Err(error) => {
                warn!(prefix = %shared.prefix, revision, %error, "watch cache could not watch; retrying");
                if pause(shared).await {
                    return Next::Stop;
                }
                continue;
            }
        };
        loop {
            let item = tokio::select! {
                () = shared.shutdown.cancelled() => return Next::Stop,
                item = events.next() => item,
            };
            match item {
                Some(Ok(event)) => {
                    let mut state = shared.lock();
                    if event.mod_revision <= state.revision() {
                        continue;
                    }
                    revision = event.mod_revision;
                    if let Some(decoded) = state.apply(&event) {
                        let _ = shared.fanout.send(Broadcast::Event(decoded));
                    }
                    shared.progress.send_replace(Some(revision));
                }
                Some(Err(StorageError::Expired { .. })) => return Next::Relist,
                Some(Err(StorageError::WatchLagged { skipped })) => {
                    debug!(prefix = %shared.prefix, skipped, revision, "storage watch lagged; re-watching");
                    break;
                }
                Some(Err(error)) => {
                    warn!(prefix = %shared.prefix, revision, %error, "storage watch failed; re-watching");
                    if pause(shared).await {
                        return Next::Stop;
                    }
                    break;
                }
                None => {
                    debug!(prefix = %shared.prefix, revision, "storage watch ended; re-watching");
                    break;
                }
            }
        }
    }
}

/// Waits before a retry; true when shutdown came first.
async fn pause<T>(shared: &Shared<T>) -> bool {
    tokio::select! {
        () = shared.shutdown.cancelled() => true,
        () = tokio::time::sleep(RETRY_DELAY) => false,
    }
}
