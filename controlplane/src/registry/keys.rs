//! Storage keys: `/registry/<plural>/<namespace>/<name>` or `/registry/<plural>/<name>`.

use skiff_api::types::{ObjectKey, Resource};

/// The root every object key lives under; one storage watch per kind watches a prefix of it.
pub const REGISTRY_ROOT: &str = "/registry/";

/// The storage key of object `name` of kind `T` (namespace ignored for cluster-scoped kinds):
/// the kind's prefix followed by the object's [`ObjectKey`].
pub fn object_key<T: Resource>(namespace: Option<&str>, name: &str) -> String {
    let key = ObjectKey::for_kind::<T>(namespace, name);
    format!("{REGISTRY_ROOT}{}/{key}", T::PLURAL)
}

/// The key prefix of every object of kind `T` in `namespace` (None: all namespaces).
pub fn prefix_for<T: Resource>(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if T::NAMESPACED => format!("{REGISTRY_ROOT}{}/{ns}/", T::PLURAL),
        _ => format!("{REGISTRY_ROOT}{}/", T::PLURAL),
    }
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{Node, Pod};

    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(
            object_key::<Pod>(Some("default"), "web"),
            "/registry/pods/default/web"
        );
        assert_eq!(object_key::<Node>(None, "edge-1"), "/registry/nodes/edge-1");
        assert_eq!(
            object_key::<Node>(Some("x"), "edge-1"),
            "/registry/nodes/edge-1"
        );
        assert_eq!(prefix_for::<Pod>(Some("kube")), "/registry/pods/kube/");
        assert_eq!(prefix_for::<Pod>(None), "/registry/pods/");
    }
}
