//! The calls the status reporters make to the controlplane, as traits so the reporters are
//! tested against an in-memory fake; [`Client`] is the real implementation.

use std::future::Future;

use skiff_api::client::{Client, ClientError, DeleteParams, ListParams};
use skiff_api::types::{Node, Pod};

/// Pod calls: read, report status, create and delete mirror pods, list this node's pods.
pub trait PodApi: Send + Sync + 'static {
    /// The pod `namespace/name`, or None when it does not exist.
    fn get_pod(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Pod>, ClientError>> + Send;

    /// `PUT pods/{name}/status` with the pod's resourceVersion (409 when it is stale).
    fn update_pod_status(&self, pod: &Pod)
    -> impl Future<Output = Result<Pod, ClientError>> + Send;

    /// Creates a pod (409 AlreadyExists when the name is taken).
    fn create_pod(&self, pod: &Pod) -> impl Future<Output = Result<Pod, ClientError>> + Send;

    /// Deletes the pod `namespace/name`, only if it still has `resource_version` when given.
    fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;

    /// Every pod bound to `node`, in all namespaces.
    fn pods_on_node(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<Vec<Pod>, ClientError>> + Send;
}

/// Node calls: register and heartbeat.
pub trait NodeApi: Send + Sync + 'static {
    /// The node `name`, or None when it is not registered.
    fn get_node(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Node>, ClientError>> + Send;

    /// Registers a node (409 AlreadyExists when another agent was faster).
    fn create_node(&self, node: &Node) -> impl Future<Output = Result<Node, ClientError>> + Send;

    /// Replaces the node's metadata and spec (its labels), keeping the stored status.
    fn update_node(&self, node: &Node) -> impl Future<Output = Result<Node, ClientError>> + Send;

    /// `PUT nodes/{name}/status` with the node's resourceVersion (409 when it is stale).
    fn update_node_status(
        &self,
        node: &Node,
    ) -> impl Future<Output = Result<Node, ClientError>> + Send;
}

impl PodApi for Client {
    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, ClientError> {
        self.api::<Pod>(Some(namespace)).get_opt(name).await
    }

    async fn update_pod_status(&self, pod: &Pod) -> Result<Pod, ClientError> {
        self.api::<Pod>(pod.metadata.namespace.as_deref())
            .update_status(pod)
            .await
    }

    async fn create_pod(&self, pod: &Pod) -> Result<Pod, ClientError> {
        self.api::<Pod>(pod.metadata.namespace.as_deref())
            .create(pod)
            .await
    }

    async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<(), ClientError> {
        let params = DeleteParams {
            resource_version: resource_version.map(str::to_string),
            ..DeleteParams::default()
        };
        self.api::<Pod>(Some(namespace)).delete(name, &params).await
    }

    async fn pods_on_node(&self, node: &str) -> Result<Vec<Pod>, ClientError> {
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        Ok(self.api::<Pod>(None).list(&params).await?.items)
    }
}

impl NodeApi for Client {
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ClientError> {
        self.api::<Node>(None).get_opt(name).await
    }

    async fn create_node(&self, node: &Node) -> Result<Node, ClientError> {
        self.api::<Node>(None).create(node).await
    }

    async fn update_node(&self, node: &Node) -> Result<Node, ClientError> {
        self.api::<Node>(None).update(node).await
    }

    async fn update_node_status(&self, node: &Node) -> Result<Node, ClientError> {
        self.api::<Node>(None).update_status(node).await
    }
}
