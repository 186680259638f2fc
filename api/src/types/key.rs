//! [`ObjectKey`]: which object of a kind, the one `namespace/name` identity every part uses.

use std::fmt;

use super::resource::Resource;

/// The identity of one object within its kind: its namespace (none for cluster-scoped kinds)
/// and its name. Displays as `namespace/name`, or `name` without a namespace; caches, the
/// controlplane's storage keys and each node's manifest view all key objects by it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// The key of object `name` of kind `T` in `namespace`; the namespace is dropped for
    /// cluster-scoped kinds.
    pub fn for_kind<T: Resource>(namespace: Option<&str>, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.filter(|_| T::NAMESPACED).map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The key of `object`, from its metadata.
    pub fn of<T: Resource>(object: &T) -> Self {
        let meta = object.metadata();
        Self::for_kind::<T>(meta.namespace.as_deref(), meta.name_or_empty())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{namespace}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Node, Pod};

    #[test]
    fn namespaced_keys_carry_the_namespace_and_cluster_scoped_ones_do_not() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.namespace = Some("default".into());
        assert_eq!(ObjectKey::of(&pod).to_string(), "default/web");
        assert_eq!(pod.key(), "default/web");
        let mut node = Node::default();
        node.metadata.name = Some("edge-1".into());
        node.metadata.namespace = Some("ignored".into());
        assert_eq!(ObjectKey::of(&node).to_string(), "edge-1");
        assert_eq!(
            ObjectKey::for_kind::<Pod>(Some("kube"), "dns"),
            ObjectKey {
                namespace: Some("kube".into()),
                name: "dns".into()
            }
        );
        assert_eq!(ObjectKey::for_kind::<Node>(Some("x"), "n").namespace, None);
    }
}
