//! Typed per-resource client over HTTP(S), with watches over websocket or chunked HTTP.
//!
//! https and wss use rustls with the aws-lc-rs provider (no OpenSSL); [`ClientConfig`] names
//! a CA bundle to trust instead of the built-in Mozilla roots, and a bearer token.
//!
//! `Client::new("http://127.0.0.1:6443")?.api::<Pod>(Some("default"))` gives an [`Api`] with
//! get, list, create, update, update_status, patch, delete and watch. Every error response is
//! decoded into the server's [`Status`](crate::Status), so callers branch on
//! `err.is_not_found()` or `err.is_conflict()` rather than on HTTP codes.

mod api;
mod config;
mod error;
mod params;
mod tls;
mod watch;

pub use api::Api;
pub use config::ClientConfig;
pub use error::ClientError;
pub use params::{DeleteParams, ListParams};
pub use watch::{WatchStream, watch_http, watch_websocket};

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use url::Url;

use crate::status::Status;
use crate::types::{Binding, ContainerManifestList, ObjectMeta, ObjectReference, Resource};

/// A connection to one controlplane, cheap to clone and share.
#[derive(Clone, Debug)]
pub struct Client {
    /// The HTTP client with its connection pool, TLS config and default headers.
    http: reqwest::Client,
    /// The server's base URL, e.g. `http://127.0.0.1:6443/`.
    base: Url,
    /// How websocket watches connect: the same TLS config and credential as `http`.
    websocket: WebsocketTransport,
}

/// What a websocket watch needs that reqwest keeps inside its own client.
#[derive(Clone)]
pub(crate) struct WebsocketTransport {
    /// The rustls config for `wss://`, shared with the HTTP client.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// The `Authorization` header value, when the client has a bearer token.
    pub(crate) authorization: Option<HeaderValue>,
}

/// Leaves the TLS internals and the credential out of debug output.
impl std::fmt::Debug for WebsocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebsocketTransport")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the server at `base` (`http://host:port` or `https://host:port`, trusting
    /// the built-in roots); [`ClientConfig`] sets a CA bundle or a bearer token.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        ClientConfig::new(base).build()
    }

    /// The client `config` describes.
    pub fn from_config(config: &ClientConfig) -> Result<Self, ClientError> {
        let base = config.url.as_str();
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base.to_string(),
            reason,
        };
        let mut url = Url::parse(base).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                "only http:// and https:// servers are supported".to_string(),
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let authorization = match &config.bearer_token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| ClientError::BearerToken)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let tls = tls::rustls_config(base, config.ca_file.as_deref())?;
        let mut headers = HeaderMap::new();
        if let Some(value) = &authorization {
            headers.insert(AUTHORIZATION, value.clone());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .default_headers(headers)
            .tls_backend_preconfigured(tls.clone())
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let websocket = WebsocketTransport {
            tls: Arc::new(tls),
            authorization,
        };
        Ok(Client {
            http,
            base: url,
            websocket,
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// A typed API for kind `T`, in `namespace` (None: all namespaces, or cluster-scoped).
    pub fn api<T: Resource>(&self, namespace: Option<&str>) -> Api<T> {
        Api::new(self.clone(), namespace.map(str::to_string))
    }

    /// Binds pod `namespace/name` to `node` through `POST pods/{name}/binding`.
    pub async fn bind(&self, namespace: &str, name: &str, node: &str) -> Result<(), ClientError> {
        let binding = Binding {
            api_version: "v1".to_string(),
            kind: "Binding".to_string(),
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                kind: Some("Node".to_string()),
                name: Some(node.to_string()),
                ..ObjectReference::default()
            },
        };
        let url = self.url(&format!(
            "api/v1/namespaces/{namespace}/pods/{name}/binding"
        ))?;
        let body = serde_json::to_vec(&binding).map_err(ClientError::Encode)?;
        let _: serde_json::Value = self
            .send(self.http.post(url.clone()).body(body), "POST", &url)
            .await?;
        Ok(())
    }

    /// The node's current ContainerManifestList.
    pub async fn manifests(&self, node: &str) -> Result<ContainerManifestList, ClientError> {
        let url = self.url(&format!("api/v1/nodes/{node}/manifests"))?;
        self.send(self.http.get(url.clone()), "GET", &url).await
    }

    /// Watches the node's ContainerManifestList over a websocket, from `resource_version`.
    pub async fn watch_manifests(
        &self,
        node: &str,
        resource_version: Option<&str>,
    ) -> Result<WatchStream<ContainerManifestList>, ClientError> {
        let mut url = self.url(&format!("api/v1/nodes/{node}/manifests"))?;
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("watch", "true");
            if let Some(rv) = resource_version {
                pairs.append_pair("resourceVersion", rv);
            }
        }
        watch_websocket(self, url).await
    }

    /// The absolute URL of `path` (relative to the base, no leading slash).
    pub(crate) fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base.join(path).map_err(|e| ClientError::InvalidUrl {
            url: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// The underlying HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// How websocket watches connect.
    pub(crate) fn websocket(&self) -> &WebsocketTransport {
        &self.websocket
    }

    /// Sends a request and decodes a success body as `R`, or an error body as a Status.
    pub(crate) async fn send<R: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        method: &'static str,
        url: &Url,
    ) -> Result<R, ClientError> {
        let response = request
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|source| ClientError::http(method, url.as_str(), source))?;
        let code = response.status();
        let bytes = response.bytes().await.map_err(|source| ClientError::Http {
            method,
            url: url.to_string(),
            source,
        })?;
        if code.is_success() {
            return serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
                url: url.to_string(),
                source,
            });
        }
        Err(ClientError::Api(Box::new(decode_status(
            code.as_u16(),
            &bytes,
        ))))
    }
}

/// Decodes an error body into a Status; a body that is not one becomes a Status with the code.
fn decode_status(code: u16, body: &[u8]) -> Status {
    match serde_json::from_slice::<Status>(body) {
        Ok(status) if status.kind == "Status" => status,
        _ => {
            let text = String::from_utf8_lossy(body);
            let reason = match code {
                404 => crate::status::reason::NOT_FOUND,
                409 => crate::status::reason::CONFLICT,
                410 => crate::status::reason::EXPIRED,
                422 => crate::status::reason::INVALID,
                400 => crate::status::reason::BAD_REQUEST,
                _ => crate::status::reason::INTERNAL_ERROR,
            };
            Status::failure(
                code,
                reason,
                format!("the server answered {code}: {}", text.trim()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_status_bodies_and_falls_back_on_others() {
        let body = serde_json::to_vec(&Status::not_found("pods", "web")).unwrap();
        assert!(decode_status(404, &body).is_not_found());
        let other = decode_status(409, b"<html>conflict</html>");
        assert!(other.is_conflict());
        assert!(other.message.contains("conflict"));
    }

    #[test]
    fn rejects_unusable_urls() {
        assert!(Client::new("not a url").is_err());
        assert!(Client::new("ftp://127.0.0.1").is_err());
        assert!(Client::new("https://127.0.0.1:6443").is_ok());
        let client = Client::new("http://127.0.0.1:6443").unwrap();
        assert_eq!(
            client.url("api/v1/pods").unwrap().as_str(),
            "http://127.0.0.1:6443/api/v1/pods"
        );
    }
}
