//! Watch events as they travel on the wire: `{"type": "ADDED", "object": {...}}`.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::status::Status;

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<T> {
    /// The object was created (or is part of the initial state).
    Added(T),
    /// The object changed.
    Modified(T),
    /// The object was deleted, or stopped matching the watch's selectors.
    Deleted(T),
    /// Progress marker: only `metadata.resourceVersion` is meaningful.
    Bookmark(T),
    /// The watch failed, e.g. 410 Expired when resuming from a compacted revision.
    Error(Box<Status>),
}

impl<T> WatchEvent<T> {
    /// The wire name of the event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        }
    }

    /// The object carried, unless this is an error.
    pub fn object(&self) -> Option<&T> {
        match self {
            WatchEvent::Added(o)
            | WatchEvent::Modified(o)
            | WatchEvent::Deleted(o)
            | WatchEvent::Bookmark(o) => Some(o),
            WatchEvent::Error(_) => None,
        }
    }
}

/// Borrowed wire form used for serialization.
#[derive(Serialize)]
struct WireRef<'a, O: Serialize> {
    #[serde(rename = "type")]
    type_: &'static str,
    object: &'a O,
}

impl<T: Serialize> Serialize for WatchEvent<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WatchEvent::Error(status) => WireRef {
                type_: self.type_name(),
                object: status.as_ref(),
            }
            .serialize(serializer),
            WatchEvent::Added(o)
            | WatchEvent::Modified(o)
            | WatchEvent::Deleted(o)
            | WatchEvent::Bookmark(o) => WireRef {
                type_: self.type_name(),
                object: o,
            }
            .serialize(serializer),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for WatchEvent<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Owned wire form used for deserialization.
        #[derive(Deserialize)]
        struct Wire {
            #[serde(rename = "type")]
            type_: String,
            object: serde_json::Value,
        }
        let wire = Wire::deserialize(deserializer)?;
        let object =
            |v: serde_json::Value| serde_json::from_value::<T>(v).map_err(D::Error::custom);
        Ok(match wire.type_.as_str() {
            "ADDED" => WatchEvent::Added(object(wire.object)?),
            "MODIFIED" => WatchEvent::Modified(object(wire.object)?),
            "DELETED" => WatchEvent::Deleted(object(wire.object)?),
            "BOOKMARK" => WatchEvent::Bookmark(object(wire.object)?),
            "ERROR" => WatchEvent::Error(Box::new(
                serde_json::from_value(wire.object).map_err(D::Error::custom)?,
            )),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown watch event type {other:?}"
                )));
            }
        })
    }
}
