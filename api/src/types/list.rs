//! Collections of one kind, as returned by list calls.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::meta::ListMeta;
use super::resource::Resource;

/// A list of objects of one kind with the revision it was read at (`PodList`, `NodeList`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: DeserializeOwned"))]
pub struct List<T> {
    /// Always `v1`.
    #[serde(default)]
    pub api_version: String,
    /// `<Kind>List`.
    #[serde(default)]
    pub kind: String,
    /// Revision and continuation.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The objects.
    #[serde(default)]
    pub items: Vec<T>,
}

impl<T: Resource> List<T> {
    /// A list of `items` read at `resource_version`.
    pub fn new(items: Vec<T>, resource_version: String) -> Self {
        List {
            api_version: "v1".to_string(),
            kind: T::LIST_KIND.to_string(),
            metadata: ListMeta {
                resource_version: Some(resource_version),
                ..ListMeta::default()
            },
            items,
        }
    }
}
