//! Why a controller, or one sync of one key, failed.

use skiff_api::client::ClientError;
use skiff_api::runtime::ReconcileError;

/// Errors of the controllers.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A controller task stopped unexpectedly (it panicked).
    #[error("a controller stopped unexpectedly: {source}")]
    Task {
        /// The join error of the task.
        #[source]
        source: tokio::task::JoinError,
    },
    /// An API call made while syncing one object failed; the key is retried with backoff.
    #[error("could not {action} {kind} {key}: {source}")]
    Api {
        /// What was attempted: `create`, `delete`, `update status of` …
        action: &'static str,
        /// The kind acted on.
        kind: &'static str,
        /// `namespace/name` (or `name`) of the object.
        key: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
}

impl ControllerError {
    /// An [`ControllerError::Api`] error.
    pub(crate) fn api(
        action: &'static str,
        kind: &'static str,
        key: impl Into<String>,
        source: ClientError,
    ) -> Self {
        ControllerError::Api {
            action,
            kind,
            key: key.into(),
            source,
        }
    }

    /// True when the write lost a race with another writer (409 Conflict): the cache was
    /// behind, and the retry after the next event will see the newer object.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, ControllerError::Api { source, .. } if source.is_conflict())
    }
}

impl ReconcileError for ControllerError {
    fn is_transient(&self) -> bool {
        self.is_conflict()
    }
}
