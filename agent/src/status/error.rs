//! Why reporting to the controlplane failed.

use skiff_api::client::ClientError;

/// Why a node or pod report did not reach the controlplane.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// A call to the controlplane failed.
    #[error("could not {action} {object}: {source}")]
    Api {
        /// What was being done (`update the status of`, `create`, …).
        action: &'static str,
        /// The object, e.g. `pod default/web` or `node edge-1`.
        object: String,
        /// What the client said.
        #[source]
        source: ClientError,
    },
    /// The object is not in the controlplane.
    #[error("{object} does not exist in the controlplane")]
    NotFound {
        /// The object.
        object: String,
    },
    /// Every attempt hit a concurrent write (409 Conflict).
    #[error("gave up updating {object} after {attempts} conflicting writes")]
    Conflicts {
        /// The object.
        object: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl StatusError {
    /// Wraps a client error with what was being done to which object.
    pub fn api(action: &'static str, object: &str, source: ClientError) -> Self {
        StatusError::Api {
            action,
            object: object.to_string(),
            source,
        }
    }
}
