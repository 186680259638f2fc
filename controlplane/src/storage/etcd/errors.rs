//! Recognizing etcd's error responses and wrapping the rest as backend errors.

use std::sync::Arc;

use crate::storage::{BackendError, StorageError};

/// Text etcd puts in the gRPC status when a revision is older than the last compaction.
const COMPACTED: &str = "required revision has been compacted";
/// Text etcd puts in the gRPC status when a revision has not been written yet.
const FUTURE: &str = "required revision is a future revision";

/// True when etcd refused because the revision was compacted away.
pub(super) fn is_compacted(error: &etcd_client::Error) -> bool {
    grpc_message(error).is_some_and(|m| m.contains(COMPACTED))
}

/// True when etcd refused because the revision is in the future.
pub(super) fn is_future_revision(error: &etcd_client::Error) -> bool {
    grpc_message(error).is_some_and(|m| m.contains(FUTURE))
}

/// The message of a gRPC status error.
fn grpc_message(error: &etcd_client::Error) -> Option<&str> {
    match error {
        etcd_client::Error::GRpcStatus(status) => Some(status.message()),
        _ => None,
    }
}

/// Wraps an etcd client error, naming the operation and key it failed on.
pub(super) fn backend(
    operation: &'static str,
    key: &str,
) -> impl FnOnce(etcd_client::Error) -> StorageError {
    move |error| {
        BackendError::Etcd {
            operation,
            key: key.to_string(),
            source: Arc::new(error),
        }
        .into()
    }
}
