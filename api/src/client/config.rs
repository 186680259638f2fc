//! How to reach a controlplane: its URL, whom to trust over https, and the credential sent.

use std::fmt;
use std::path::PathBuf;

use super::{Client, ClientError};

/// Everything a [`Client`] needs to reach one controlplane; `build` turns it into one.
///
/// `ClientConfig::new("https://cp:6443").with_ca_file("ca.pem").build()?` trusts only the
/// CAs in `ca.pem`; without a CA file an https server must present a certificate that chains
/// to the built-in Mozilla roots.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The server's base URL, `http://host:port` or `https://host:port`.
    pub url: String,
    /// A PEM bundle of CA certificates that replaces the built-in roots for https (and wss).
    pub ca_file: Option<PathBuf>,
    /// A token sent as `Authorization: Bearer <token>` with every request and watch.
    pub bearer_token: Option<String>,
}

impl ClientConfig {
    /// A config for the server at `url`, trusting the built-in roots, with no credential.
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            ca_file: None,
            bearer_token: None,
        }
    }

    /// Trusts exactly the CA certificates of the PEM file at `path` for https.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Sends `token` as a bearer token with every request.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// The client: fails on an unusable URL, an unreadable CA file or a malformed token.
    pub fn build(&self) -> Result<Client, ClientError> {
        Client::from_config(self)
    }
}

/// Shows everything but the token, so configs can be logged.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("ca_file", &self.ca_file)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let config = ClientConfig::new("https://127.0.0.1:6443")
            .with_ca_file("/etc/skiff/ca.pem")
            .with_bearer_token("s3cret-token");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("/etc/skiff/ca.pem"), "{shown}");
    }

    #[test]
    fn a_token_that_is_not_a_header_value_is_refused() {
        let err = ClientConfig::new("http://127.0.0.1:6443")
            .with_bearer_token("line\nbreak")
            .build()
            .unwrap_err();
        assert!(matches!(err, ClientError::BearerToken), "{err}");
    }

    #[test]
    fn a_missing_ca_file_is_named_in_the_error() {
        let err = ClientConfig::new("https://127.0.0.1:6443")
            .with_ca_file("/nonexistent/skiff-ca.pem")
            .build()
            .unwrap_err();
        assert!(matches!(err, ClientError::CaBundle { .. }), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/skiff-ca.pem"),
            "{err}"
        );
    }
}
