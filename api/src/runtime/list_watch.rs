//! What the watcher needs of a source: a consistent list, and a watch from a revision.

use std::future::Future;

use crate::client::{Api, ClientError, ListParams, WatchStream};
use crate::types::Resource;

/// A source that can be listed at a revision and watched from one.
///
/// [`Api<T>`] is the ordinary implementation; the agent's view of its node's
/// ContainerManifestList is another (its list has one item, the whole list).
pub trait ListWatch: Send + Sync + 'static {
    /// What the list holds and the watch events carry.
    type Item: Clone + Send + Sync + 'static;

    /// Every current item and the revision the list is consistent at.
    fn list(
        &self,
        params: &ListParams,
    ) -> impl Future<Output = Result<(Vec<Self::Item>, String), ClientError>> + Send;

    /// One watch connection from `resource_version`, with bookmarks where the source has them.
    fn watch(
        &self,
        params: &ListParams,
        resource_version: &str,
    ) -> impl Future<Output = Result<WatchStream<Self::Item>, ClientError>> + Send;

    /// The revision an item carries, which the watcher resumes from after it.
    fn resource_version(item: &Self::Item) -> Option<String>;
}

impl<T: Resource> ListWatch for Api<T> {
    type Item = T;

    async fn list(&self, params: &ListParams) -> Result<(Vec<T>, String), ClientError> {
        let list = Api::list(self, params).await?;
        let resource_version = list.metadata.resource_version.unwrap_or_default();
        Ok((list.items, resource_version))
    }

    async fn watch(
        &self,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream<T>, ClientError> {
        let params = ListParams {
            bookmarks: true,
            ..params.clone()
        };
        Api::watch(self, &params, Some(resource_version)).await
    }

    fn resource_version(item: &T) -> Option<String> {
        item.metadata().resource_version.clone()
    }
}
