//! What differs per kind: defaults, validation and what a create may set.

use skiff_api::defaults::{
    default_node, default_pod, default_replication_controller, default_service,
};
use skiff_api::selector::FieldSource;
use skiff_api::types::{
    Endpoints, Node, Pod, PodStatus, ReplicationController, ReplicationControllerStatus, Resource,
    Service, values,
};
use skiff_api::validation::{
    FieldError, validate_endpoints, validate_node, validate_pod, validate_pod_update,
    validate_replication_controller, validate_service,
};

use crate::watchcache::{IndexFn, POD_NODE_INDEX};

/// The per-kind rules the generic [`Registry`](super::Registry) applies.
///
/// Status handling is generic over typed access (see [`super::UpdateTarget`]): a PUT to the
/// object keeps the stored `status` ([`Strategy::copy_status_from`] the stored object), a
/// PUT to `/status` changes only `status` (the stored object with the status of the body).
/// Field selectors use the kind's [`FieldSource`].
pub trait Strategy: Resource + FieldSource {
    /// True when the kind has a `status` written only through the `/status` subresource.
    const HAS_STATUS: bool;

    /// Replaces this object's status with `source`'s (removed when `source` has none);
    /// nothing for kinds without status.
    fn copy_status_from(&mut self, source: &Self);

    /// True when `self` and `other` want the same thing: equal in everything but metadata,
    /// status and type meta. A write that changes this bumps `metadata.generation`.
    fn same_spec(&self, other: &Self) -> bool;

    /// The named indexes the kind's watch cache keeps (e.g. pods by node).
    fn indexers() -> Vec<(&'static str, IndexFn<Self>)> {
        Vec::new()
    }

    /// Fills unset fields; runs on create and on every update, before validation.
    fn apply_defaults(&mut self);

    /// Every problem with a new object.
    fn validate_create(&self) -> Vec<FieldError>;

    /// Every problem with an update from `old` to `self`.
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let _ = old;
        self.validate_create()
    }

    /// Clears what a client may not set on create (e.g. a pod's status).
    fn prepare_for_create(&mut self) {}

    /// Runs on every object read from storage, after the resourceVersion is set.
    fn decorate(&mut self) {}
}

/// `copy_status_from` and `same_spec` of a kind with `spec` and `status` fields.
macro_rules! spec_and_status {
    () => {
        fn copy_status_from(&mut self, source: &Self) {
            self.status.clone_from(&source.status);
        }

        fn same_spec(&self, other: &Self) -> bool {
            self.spec == other.spec
        }
    };
}

impl Strategy for Pod {
    const HAS_STATUS: bool = true;

    spec_and_status!();

    /// Pods by `spec.nodeName`, from which each node's ContainerManifestList is derived.
    fn indexers() -> Vec<(&'static str, IndexFn<Self>)> {
        vec![(POD_NODE_INDEX, |pod| {
            pod.spec.node_name.clone().filter(|n| !n.is_empty())
        })]
    }

    fn apply_defaults(&mut self) {
        default_pod(self);
    }

    fn validate_create(&self) -> Vec<FieldError> {
        validate_pod(self)
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        validate_pod_update(self, old)
    }

    /// A new pod is Pending whatever status the client sent.
    fn prepare_for_create(&mut self) {
        self.status = Some(PodStatus {
            phase: Some(values::PHASE_PENDING.to_string()),
            ..PodStatus::default()
        });
    }
}

impl Strategy for Node {
    const HAS_STATUS: bool = true;

    spec_and_status!();

    fn apply_defaults(&mut self) {
        default_node(self);
    }

    fn validate_create(&self) -> Vec<FieldError> {
        validate_node(self)
    }
}

impl Strategy for ReplicationController {
    const HAS_STATUS: bool = true;

    spec_and_status!();

    fn apply_defaults(&mut self) {
        default_replication_controller(self);
    }

    fn validate_create(&self) -> Vec<FieldError> {
        validate_replication_controller(self)
    }

    /// The replication manager reports status; a client's is ignored.
    fn prepare_for_create(&mut self) {
        self.status = Some(ReplicationControllerStatus::default());
    }
}

impl Strategy for Service {
    const HAS_STATUS: bool = true;

    spec_and_status!();

    fn apply_defaults(&mut self) {
        default_service(self);
    }

    fn validate_create(&self) -> Vec<FieldError> {
        validate_service(self)
    }

    /// Load balancer status is not something skiff provides; a client's is ignored.
    fn prepare_for_create(&mut self) {
        self.status = None;
    }
}

impl Strategy for Endpoints {
    const HAS_STATUS: bool = false;

    fn copy_status_from(&mut self, _: &Self) {}

    fn same_spec(&self, other: &Self) -> bool {
        self.subsets == other.subsets
    }

    fn apply_defaults(&mut self) {
        if self.api_version.is_empty() || self.kind.is_empty() {
            self.set_type_meta();
        }
    }

    fn validate_create(&self) -> Vec<FieldError> {
        validate_endpoints(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_pods_are_pending_whatever_the_client_sent() {
        let mut pod = Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some("10.0.0.1".into()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        pod.prepare_for_create();
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(status.pod_ip, None);
    }
}
