//! The Docker label keys that carry skiff's container identity (fixed project convention).

/// The agent node that created the container.
pub const NODE: &str = "io.skiff.node";
/// The pod's namespace.
pub const POD_NAMESPACE: &str = "io.skiff.pod.namespace";
/// The pod's name.
pub const POD_NAME: &str = "io.skiff.pod.name";
/// The pod's uid: the identity that survives renames and agent restarts.
pub const POD_UID: &str = "io.skiff.pod.uid";
/// The container's name in the pod spec, [`INFRA_CONTAINER_NAME`] for the infra container.
pub const CONTAINER_NAME: &str = "io.skiff.container.name";
/// The hash of the spec fields that matter, to tell whether a running container is current.
pub const CONTAINER_HASH: &str = "io.skiff.container.hash";
/// How often this container of the pod has been restarted.
pub const RESTART_COUNT: &str = "io.skiff.container.restart-count";
/// The value of [`CONTAINER_NAME`] for the infra container that holds the pod's network.
pub const INFRA_CONTAINER_NAME: &str = "POD";
