//! Errors of the typed client: the server's `Status`, or why no Status arrived.

use crate::status::Status;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a Status (404, 409, 422, …).
    #[error("{0}")]
    Api(Box<Status>),
    /// The request did not complete (connection refused, reset, timed out).
    #[error("request {method} {url} failed: {source}")]
    Http {
        /// HTTP method of the request.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The response body was not what the API promises.
    #[error("could not decode the response of {url}: {source}")]
    Decode {
        /// The URL requested.
        url: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The websocket of a watch failed.
    #[error("watch websocket {url} failed: {source}")]
    WebSocket {
        /// The URL watched.
        url: String,
        /// The websocket error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The server URL given to the client is not usable.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS handshake failed: the server's certificate is not vouched for by the trusted
    /// CAs, names another host, or the server refused the handshake.
    #[error("TLS with {url} failed: {reason} (is the server's CA in the client's CA bundle?)")]
    Tls {
        /// The URL requested.
        url: String,
        /// What rustls reported.
        reason: String,
    },
    /// The CA bundle given for https could not be used.
    #[error("could not use the CA bundle {}: {reason}", path.display())]
    CaBundle {
        /// The file given.
        path: std::path::PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// The bearer token cannot be sent in an HTTP header (it has control characters).
    #[error("the bearer token is not a valid HTTP header value")]
    BearerToken,
    /// A request could not be encoded.
    #[error("could not encode the request: {0}")]
    Encode(#[source] serde_json::Error),
}

impl ClientError {
    /// A failed request as [`ClientError::Tls`] when TLS is what failed, else as
    /// [`ClientError::Http`].
    pub(crate) fn http(method: &'static str, url: &str, source: reqwest::Error) -> Self {
        match super::tls::tls_cause(&source) {
            Some(reason) => ClientError::Tls {
                url: url.to_string(),
                reason,
            },
            None => ClientError::Http {
                method,
                url: url.to_string(),
                source,
            },
        }
    }

    /// The server's Status, when the server answered with one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            ClientError::Api(status) => Some(status),
            _ => None,
        }
    }

    /// True when the server said 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.status().is_some_and(Status::is_not_found)
    }

    /// True when the server said 409 Conflict (stale resourceVersion).
    pub fn is_conflict(&self) -> bool {
        self.status().is_some_and(Status::is_conflict)
    }

    /// True when the server said 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.status().is_some_and(Status::is_already_exists)
    }

    /// True when the server said 410: the resourceVersion is too old, relist.
    pub fn is_expired(&self) -> bool {
        self.status().is_some_and(Status::is_expired)
    }

    /// True when the server could not be reached, the connection broke or the TLS handshake
    /// failed: worth retrying (a server's certificate can be replaced).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            ClientError::Http { .. } | ClientError::WebSocket { .. } | ClientError::Tls { .. }
        )
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        ClientError::Api(Box::new(status))
    }
}
