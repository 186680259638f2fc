//! Validation that accumulates every error with its field path.
//!
//! Each `validate_*` function checks a whole object and returns every problem it finds,
//! never stopping at the first, so a user fixes a manifest in one round. The apiserver
//! defaults, then validates, then answers a non-empty list with [`to_status`] (422 Invalid
//! with one cause per error). Validators also accept undefaulted objects without panicking:
//! an unset optional field is not an error.

mod field_error;
mod meta;
pub mod names;
mod node;
mod path;
mod pod;
mod replication;
mod service;

pub use field_error::{FieldError, FieldErrorKind, FieldValue};
pub use meta::{
    ANNOTATIONS_MAX_TOTAL_BYTES, NameCheck, validate_annotations, validate_labels,
    validate_object_meta, validate_object_meta_with,
};
pub use node::{CONDITION_STATUSES, NODE_ADDRESS_TYPES, validate_node};
pub use pod::{
    EMPTY_DIR_MEDIA, HOST_PATH_TYPES, HTTP_SCHEMES, POD_UPDATE_FORBIDDEN_MSG, PROTOCOLS,
    PULL_POLICIES, RESTART_POLICIES, validate_pod, validate_pod_spec, validate_pod_update,
};
pub use replication::validate_replication_controller;
pub use service::{SERVICE_TYPES, SESSION_AFFINITIES, validate_endpoints, validate_service};

use crate::status::Status;

/// The 422 Invalid Status for `errors` on the object `kind`/`name`, one cause per error.
pub fn to_status(kind: &str, name: &str, errors: &[FieldError]) -> Status {
    Status::invalid(
        kind,
        name,
        errors.iter().map(FieldError::to_cause).collect(),
    )
}

#[cfg(test)]
mod pod_tests;
#[cfg(test)]
mod service_tests;
