//! What the cache holds and hands out: decoded objects with their JSON, events and the
//! per-client items of a watch.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use skiff_api::Status;
use skiff_api::types::Resource;

/// One object as the cache keeps it: typed, and serialized once for every client.
#[derive(Debug)]
pub struct CachedObject<T> {
    /// Its storage key.
    pub key: String,
    /// The decoded, decorated object (resourceVersion set).
    pub object: T,
    /// `object` as JSON, shared by every watch that sends it.
    pub json: Bytes,
}

impl<T: Resource> CachedObject<T> {
    /// Wraps `object`, serializing it once.
    pub fn new(key: String, object: T) -> Result<Self, serde_json::Error> {
        let json = Bytes::from(serde_json::to_vec(&object)?);
        Ok(CachedObject { key, object, json })
    }

    /// The object's resourceVersion as a revision (0 when missing).
    pub fn revision(&self) -> i64 {
        self.object.metadata().revision().unwrap_or(0)
    }
}

/// What happened to an object, as the cache saw it in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object appeared.
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted.
    Deleted,
}

impl EventType {
    /// The wire name of the event type.
    pub fn wire_name(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change in storage, decoded once and shared by every watch.
#[derive(Debug)]
pub struct CachedEvent<T> {
    /// What happened.
    pub kind: EventType,
    /// The store revision of the change.
    pub revision: i64,
    /// The object after the change; for a delete, the object as it was, with the delete's
    /// revision as its resourceVersion.
    pub object: Arc<CachedObject<T>>,
    /// The object before the change (None for an add), so selectors can see what stopped
    /// matching.
    pub previous: Option<Arc<CachedObject<T>>>,
}

/// One item of one client's watch, after its selectors were applied.
#[derive(Debug, Clone)]
pub enum WatchItem<T> {
    /// An object event, possibly re-typed by the selectors (MODIFIED that stops matching
    /// becomes DELETED, one that starts matching becomes ADDED).
    Event {
        /// The event type this client sees.
        kind: EventType,
        /// The object.
        object: Arc<CachedObject<T>>,
    },
    /// Progress: the client has seen everything up to this revision.
    Bookmark(i64),
    /// The watch cannot continue (e.g. 410 Expired); the last item of its stream.
    Error(Box<Status>),
}

impl<T: Resource> WatchItem<T> {
    /// The wire type: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchItem::Event { kind, .. } => kind.wire_name(),
            WatchItem::Bookmark(_) => "BOOKMARK",
            WatchItem::Error(_) => "ERROR",
        }
    }

    /// The event as one line of JSON, `{"type":"ADDED","object":{…}}` plus a newline.
    pub fn to_json_line(&self) -> Bytes {
        let object = match self {
            WatchItem::Event { object, .. } => object.json.clone(),
            WatchItem::Bookmark(revision) => bookmark_object::<T>(*revision),
            WatchItem::Error(status) => {
                Bytes::from(serde_json::to_vec(status.as_ref()).unwrap_or_else(|_| b"{}".to_vec()))
            }
        };
        let mut line = BytesMut::with_capacity(object.len() + 32);
        line.put_slice(b"{\"type\":\"");
        line.put_slice(self.type_name().as_bytes());
        line.put_slice(b"\",\"object\":");
        line.put_slice(&object);
        line.put_slice(b"}\n");
        line.freeze()
    }
}

/// The object of a BOOKMARK: only kind, apiVersion and the resourceVersion.
fn bookmark_object<T: Resource>(revision: i64) -> Bytes {
    Bytes::from(format!(
        "{{\"kind\":\"{}\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{revision}\"}}}}",
        T::KIND
    ))
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{Pod, WatchEvent};

    use super::*;

    #[test]
    fn lines_decode_as_watch_events() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.resource_version = Some("5".into());
        let object = Arc::new(CachedObject::new("k".into(), pod.clone()).unwrap());
        let item = WatchItem::Event {
            kind: EventType::Deleted,
            object,
        };
        let line = item.to_json_line();
        assert!(line.ends_with(b"\n"));
        let decoded: WatchEvent<Pod> = serde_json::from_slice(&line).unwrap();
        assert_eq!(decoded, WatchEvent::Deleted(pod));

        let bookmark: WatchEvent<Pod> =
            serde_json::from_slice(&WatchItem::<Pod>::Bookmark(9).to_json_line()).unwrap();
        match bookmark {
            WatchEvent::Bookmark(p) => {
                assert_eq!(p.metadata.resource_version.as_deref(), Some("9"))
            }
            other => panic!("{other:?}"),
        }
        let error = WatchItem::<Pod>::Error(Box::new(Status::expired("too old")));
        let decoded: WatchEvent<Pod> = serde_json::from_slice(&error.to_json_line()).unwrap();
        assert!(matches!(decoded, WatchEvent::Error(s) if s.code == 410));
    }
}
