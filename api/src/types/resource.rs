//! What every top-level kind has in common, so storage, clients and caches can be generic.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::key::ObjectKey;
use super::meta::ObjectMeta;
use super::{Binding, Endpoints, Node, Pod, ReplicationController, Service};

/// A top-level API kind served under `/api/v1`.
pub trait Resource:
    Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// `Pod`, `Node`, …
    const KIND: &'static str;
    /// `PodList`, `NodeList`, …
    const LIST_KIND: &'static str;
    /// Path segment: `pods`, `nodes`, …
    const PLURAL: &'static str;
    /// Singular name for discovery: `pod`, `node`, …
    const SINGULAR: &'static str;
    /// True when objects live in a namespace.
    const NAMESPACED: bool;
    /// Short names kubectl accepts (`po`, `no`, …).
    const SHORT_NAMES: &'static [&'static str];

    /// The object's metadata.
    fn metadata(&self) -> &ObjectMeta;
    /// The object's metadata, for changing it.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// Sets `apiVersion: v1` and `kind`, which decoding may have left empty.
    fn set_type_meta(&mut self);

    /// The object's identity within its kind (see [`ObjectKey`]).
    fn object_key(&self) -> ObjectKey {
        ObjectKey::of(self)
    }

    /// `namespace/name` for namespaced kinds, `name` otherwise: the key caches index by.
    fn key(&self) -> String {
        self.object_key().to_string()
    }
}

/// Implements [`Resource`] for a struct with `api_version`, `kind` and `metadata` fields.
macro_rules! resource {
    ($ty:ty, $kind:literal, $plural:literal, $singular:literal, $namespaced:literal, [$($short:literal),*]) => {
        impl Resource for $ty {
            const KIND: &'static str = $kind;
            const LIST_KIND: &'static str = concat!($kind, "List");
            const PLURAL: &'static str = $plural;
            const SINGULAR: &'static str = $singular;
            const NAMESPACED: bool = $namespaced;
            const SHORT_NAMES: &'static [&'static str] = &[$($short),*];

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
            fn set_type_meta(&mut self) {
                self.api_version = "v1".to_string();
                self.kind = $kind.to_string();
            }
        }
    };
}

resource!(Pod, "Pod", "pods", "pod", true, ["po"]);
resource!(Node, "Node", "nodes", "node", false, ["no"]);
resource!(
    ReplicationController,
    "ReplicationController",
    "replicationcontrollers",
    "replicationcontroller",
    true,
    ["rc"]
);
resource!(Service, "Service", "services", "service", true, ["svc"]);
resource!(
    Endpoints,
    "Endpoints",
    "endpoints",
    "endpoints",
    true,
    ["ep"]
);
resource!(Binding, "Binding", "bindings", "binding", true, []);
