//! Field paths as Kubernetes prints them: `spec.containers[1].ports[0].containerPort`.

/// `parent.name`, or `name` at the root.
pub(crate) fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `parent[key]`, for map entries such as `resources.limits[cpu]`.
pub(crate) fn key(parent: &str, key: &str) -> String {
    format!("{parent}[{key}]")
}
