//! Translates an etcd watch stream into our [`EventStream`].

use std::collections::VecDeque;

use etcd_client::{EventType as EtcdEventType, WatchResponse, WatchStream};
use futures::{StreamExt, stream};

use super::strip_prefix;
use crate::storage::{BackendError, Event, EventStream, EventType, StorageError};

/// Reads responses until etcd confirms the watch exists; from then on no write is missed.
pub(super) async fn wait_until_created(
    stream: &mut WatchStream,
    after_revision: i64,
) -> Result<(), StorageError> {
    loop {
        let response = stream
            .message()
            .await
            .map_err(super::errors::backend("watch", "(start)"))?
            .ok_or(BackendError::EtcdProtocol(
                "the watch closed before it was confirmed",
            ))?;
        if let Some(error) = cancellation(&response, after_revision) {
            return Err(error);
        }
        if response.created() {
            return Ok(());
        }
    }
}

/// Reads responses until etcd reports the compaction that cancels the watch; its revision.
pub(super) async fn wait_for_compaction(stream: &mut WatchStream) -> i64 {
    while let Ok(Some(response)) = stream.message().await {
        if response.compact_revision() != 0 {
            return response.compact_revision();
        }
    }
    0
}

/// The error a cancelling response stands for, if it cancels the watch.
fn cancellation(response: &WatchResponse, after_revision: i64) -> Option<StorageError> {
    if response.compact_revision() != 0 {
        return Some(StorageError::Expired {
            requested: after_revision,
            compacted: response.compact_revision(),
        });
    }
    if response.canceled() {
        return Some(
            BackendError::WatchCanceled {
                reason: response.cancel_reason().to_string(),
            }
            .into(),
        );
    }
    None
}

/// Where a translated etcd watch stands.
struct Watch {
    /// The etcd watch; dropping it cancels the watch.
    stream: WatchStream,
    /// Events of the last response not yet handed out.
    pending: VecDeque<Event>,
    /// The storage key prefix to strip from keys.
    prefix: String,
    /// The revision the watch started after, for `Expired` errors.
    after_revision: i64,
}

/// The watch as our stream: events in order; ends with an error when etcd cancels the watch
/// (compaction → [`StorageError::Expired`]) or the connection fails.
pub(super) fn event_stream(
    stream: WatchStream,
    prefix: String,
    after_revision: i64,
) -> EventStream {
    let watch = Watch {
        stream,
        pending: VecDeque::new(),
        prefix,
        after_revision,
    };
    stream::unfold(Some(watch), |state| async move {
        let mut watch = state?;
        loop {
            if let Some(event) = watch.pending.pop_front() {
                return Some((Ok(event), Some(watch)));
            }
            let response = match watch.stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    let error = BackendError::EtcdProtocol("the watch stream closed").into();
                    return Some((Err(error), None));
                }
                Err(e) => {
                    let error = super::errors::backend("watch", &watch.prefix)(e);
                    return Some((Err(error), None));
                }
            };
            if let Some(error) = cancellation(&response, watch.after_revision) {
                return Some((Err(error), None));
            }
            for event in response.events() {
                match translate(event, &watch.prefix) {
                    Ok(event) => watch.pending.push_back(event),
                    Err(error) => return Some((Err(error), None)),
                }
            }
        }
    })
    .boxed()
}

/// Converts one etcd event.
fn translate(event: &etcd_client::Event, prefix: &str) -> Result<Event, StorageError> {
    let kv = event
        .kv()
        .ok_or(BackendError::EtcdProtocol("a watch event without a key"))?;
    let prev = event.prev_kv();
    let key = strip_prefix(prefix, kv.key())?;
    Ok(match event.event_type() {
        EtcdEventType::Put => Event {
            kind: EventType::Put,
            key,
            value: Some(kv.value().to_vec()),
            prev_value: prev.map(|p| p.value().to_vec()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        },
        EtcdEventType::Delete => Event {
            kind: EventType::Delete,
            key,
            value: None,
            prev_value: prev.map(|p| p.value().to_vec()),
            create_revision: prev.map_or(0, etcd_client::KeyValue::create_revision),
            mod_revision: kv.mod_revision(),
        },
    })
}
