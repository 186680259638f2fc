//! `Api<T>`: the verbs on one kind, in one namespace or across all of them.

use std::marker::PhantomData;

use url::Url;

use super::Client;
use super::error::ClientError;
use super::params::{DeleteParams, ListParams};
use super::watch::{WatchStream, watch_http, watch_websocket};
use crate::types::{List, Resource};

/// The verbs on kind `T`, scoped to a namespace (or all namespaces / cluster scope).
#[derive(Clone, Debug)]
pub struct Api<T> {
    /// The connection.
    client: Client,
    /// The namespace calls are scoped to; None for all namespaces or cluster-scoped kinds.
    namespace: Option<String>,
    /// The kind.
    kind: PhantomData<fn() -> T>,
}

impl<T: Resource> Api<T> {
    /// An API for `T` in `namespace`.
    pub(crate) fn new(client: Client, namespace: Option<String>) -> Self {
        Api {
            client,
            namespace,
            kind: PhantomData,
        }
    }

    /// The collection path, e.g. `api/v1/namespaces/default/pods`.
    fn collection_path(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| T::NAMESPACED) {
            Some(ns) => format!("api/v1/namespaces/{ns}/{}", T::PLURAL),
            None => format!("api/v1/{}", T::PLURAL),
        }
    }

    /// The URL of the collection in this API's namespace.
    fn collection_url(&self) -> Result<Url, ClientError> {
        self.client
            .url(&self.collection_path(self.namespace.as_deref()))
    }

    /// The URL of one object, optionally a subresource of it.
    fn object_url(
        &self,
        namespace: Option<&str>,
        name: &str,
        sub: Option<&str>,
    ) -> Result<Url, ClientError> {
        let mut path = format!(
            "{}/{name}",
            self.collection_path(namespace.or(self.namespace.as_deref()))
        );
        if let Some(sub) = sub {
            path.push('/');
            path.push_str(sub);
        }
        self.client.url(&path)
    }

    /// Reads one object.
    pub async fn get(&self, name: &str) -> Result<T, ClientError> {
        let url = self.object_url(None, name, None)?;
        self.client
            .send(self.client.http().get(url.clone()), "GET", &url)
            .await
    }

    /// Reads one object, or None when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<T>, ClientError> {
        match self.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists objects; the list's `metadata.resourceVersion` is where a watch resumes.
    pub async fn list(&self, params: &ListParams) -> Result<List<T>, ClientError> {
        let url = self.collection_url()?;
        let request = self
            .client
            .http()
            .get(url.clone())
            .query(&params.list_query());
        self.client.send(request, "GET", &url).await
    }

    /// Creates an object; the namespace comes from the object or this API.
    pub async fn create(&self, object: &T) -> Result<T, ClientError> {
        let namespace = object
            .metadata()
            .namespace
            .clone()
            .or_else(|| self.namespace.clone());
        let url = self
            .client
            .url(&self.collection_path(namespace.as_deref()))?;
        let body = serde_json::to_vec(object).map_err(ClientError::Encode)?;
        let request = self
            .client
            .http()
            .post(url.clone())
            .header("Content-Type", "application/json")
            .body(body);
        self.client.send(request, "POST", &url).await
    }

    /// Replaces an object; a stale `metadata.resourceVersion` fails with 409 Conflict.
    pub async fn update(&self, object: &T) -> Result<T, ClientError> {
        self.put(object, None).await
    }

    /// Replaces an object's status only (`PUT …/status`).
    pub async fn update_status(&self, object: &T) -> Result<T, ClientError> {
        self.put(object, Some("status")).await
    }

    /// PUTs the object to itself or a subresource.
    async fn put(&self, object: &T, sub: Option<&str>) -> Result<T, ClientError> {
        let meta = object.metadata();
        let url = self.object_url(meta.namespace.as_deref(), meta.name_or_empty(), sub)?;
        let body = serde_json::to_vec(object).map_err(ClientError::Encode)?;
        let request = self
            .client
            .http()
            .put(url.clone())
            .header("Content-Type", "application/json")
            .body(body);
        self.client.send(request, "PUT", &url).await
    }

    /// Applies a JSON merge patch to an object.
    pub async fn patch(&self, name: &str, patch: &serde_json::Value) -> Result<T, ClientError> {
        self.patch_at(name, None, patch).await
    }

    /// Applies a JSON merge patch to an object's status.
    pub async fn patch_status(
        &self,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<T, ClientError> {
        self.patch_at(name, Some("status"), patch).await
    }

    /// PATCHes the object or a subresource with a merge patch.
    async fn patch_at(
        &self,
        name: &str,
        sub: Option<&str>,
        patch: &serde_json::Value,
    ) -> Result<T, ClientError> {
        let url = self.object_url(None, name, sub)?;
        let body = serde_json::to_vec(patch).map_err(ClientError::Encode)?;
        let request = self
            .client
            .http()
            .patch(url.clone())
            .header("Content-Type", "application/merge-patch+json")
            .body(body);
        self.client.send(request, "PATCH", &url).await
    }

    /// Deletes an object.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<(), ClientError> {
        let url = self.object_url(None, name, None)?;
        let body = serde_json::to_vec(&params.body()).map_err(ClientError::Encode)?;
        let request = self
            .client
            .http()
            .delete(url.clone())
            .header("Content-Type", "application/json")
            .body(body);
        let _: serde_json::Value = self.client.send(request, "DELETE", &url).await?;
        Ok(())
    }

    /// Watches over a websocket from `resource_version` (None: current objects first as ADDED).
    pub async fn watch(
        &self,
        params: &ListParams,
        resource_version: Option<&str>,
    ) -> Result<WatchStream<T>, ClientError> {
        let mut url = self.collection_url()?;
        url.query_pairs_mut()
            .extend_pairs(params.watch_query(resource_version));
        watch_websocket(&self.client, url).await
    }

    /// Watches over a chunked HTTP response, as kubectl and client-go do.
    pub async fn watch_http(
        &self,
        params: &ListParams,
        resource_version: Option<&str>,
    ) -> Result<WatchStream<T>, ClientError> {
        let mut url = self.collection_url()?;
        url.query_pairs_mut()
            .extend_pairs(params.watch_query(resource_version));
        watch_http(self.client.http(), url).await
    }
}
