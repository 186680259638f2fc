//! Typed per-resource client over HTTP, with watches over websocket or chunked HTTP.
//!
//! `Client::new("http://127.0.0.1:6443")?.api::<Pod>(Some("default"))` gives an [`Api`] with
//! get, list, create, update, update_status, patch, delete and watch. Every error response is
//! decoded into the server's [`Status`](crate::Status), so callers branch on
//! `err.is_not_found()` or `err.is_conflict()` rather than on HTTP codes.

mod api;
mod error;
mod params;
mod watch;

pub use api::Api;
pub use error::ClientError;
pub use params::{DeleteParams, ListParams};
pub use watch::{WatchStream, watch_http, watch_websocket};

use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use crate::status::Status;
use crate::types::{Binding, ContainerManifestList, ObjectMeta, ObjectReference, Resource};

/// A connection to one controlplane, cheap to clone and share.
#[derive(Clone, Debug)]
pub struct Client {
    /// The HTTP client with its connection pool.
    http: reqwest::Client,
    /// The server's base URL, e.g. `http://127.0.0.1:6443/`.
    base: Url,
}

impl Client {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base.to_string(),
            reason,
        };
        let mut url = Url::parse(base).map_err(|e| invalid(e.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid("only http:// servers are supported".to_string()));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Client { http, base: url })
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
        watch_websocket(url).await
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
            .map_err(|source| ClientError::Http {
                method,
                url: url.to_string(),
                source,
            })?;
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
        let client = Client::new("http://127.0.0.1:6443").unwrap();
        assert_eq!(
            client.url("api/v1/pods").unwrap().as_str(),
            "http://127.0.0.1:6443/api/v1/pods"
        );
    }
}
