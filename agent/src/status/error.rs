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

/// `error`'s message followed by its innermost cause when that adds something (a transport
/// error's "Connection refused" is three sources deep), for log lines.
pub fn with_root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let message = error.to_string();
    let Some(mut root) = error.source() else {
        return message;
    };
    while let Some(source) = root.source() {
        root = source;
    }
    let cause = root.to_string();
    if message.contains(&cause) {
        message
    } else {
        format!("{message}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn the_root_cause_is_appended_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = Outer(Middle(refused));
        assert_eq!(with_root_cause(&error), "outer: refused");
        let plain = std::io::Error::other("alone");
        assert_eq!(with_root_cause(&plain), "alone");
        let api = StatusError::NotFound {
            object: "node x".into(),
        };
        assert_eq!(
            with_root_cause(&api),
            "node x does not exist in the controlplane"
        );
    }
}
