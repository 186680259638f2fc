//! Turns a replay of the event log plus the live broadcast into one gap-free watch stream.

use std::sync::Arc;

use futures::{StreamExt, stream};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::storage::{Event, EventStream, StorageError};

/// Where the live half of a watch stands.
struct Live {
    /// Committed events, subscribed to before the replay was read.
    receiver: broadcast::Receiver<Arc<Event>>,
    /// Only keys starting with this are delivered.
    prefix: String,
    /// Highest revision already delivered or covered by the replay; older live events are
    /// duplicates and are dropped.
    delivered_up_to: i64,
}

/// The watch stream: first `replayed` (already filtered, in order), then live events newer
/// than `replayed_up_to`. Ends with [`StorageError::WatchLagged`] if the receiver overflowed,
/// and quietly when the store is dropped.
pub(super) fn event_stream(
    replayed: Vec<Event>,
    receiver: broadcast::Receiver<Arc<Event>>,
    prefix: String,
    replayed_up_to: i64,
) -> EventStream {
    let live = Live {
        receiver,
        prefix,
        delivered_up_to: replayed_up_to,
    };
    let live = stream::unfold(Some(live), |state| async move {
        let mut live = state?;
        loop {
            match live.receiver.recv().await {
                Ok(event) => {
                    if event.mod_revision <= live.delivered_up_to
                        || !event.key.starts_with(&live.prefix)
                    {
                        continue;
                    }
                    live.delivered_up_to = event.mod_revision;
                    return Some((Ok(Event::clone(&event)), Some(live)));
                }
                Err(RecvError::Lagged(skipped)) => {
                    return Some((Err(StorageError::WatchLagged { skipped }), None));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    stream::iter(replayed.into_iter().map(Ok))
        .chain(live)
        .boxed()
}
