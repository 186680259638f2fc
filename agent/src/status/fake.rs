//! An in-memory controlplane for the reporters' tests: pods and nodes with resourceVersions,
//! 404/409 like the real one, scripted failures and concurrent writers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use skiff_api::Status;
use skiff_api::client::ClientError;
use skiff_api::types::{Node, Pod, PodStatus};

use super::api::{NodeApi, PodApi};

/// The fake's state; clones share it.
#[derive(Clone, Default)]
pub(crate) struct FakeControlplane {
    /// Everything behind one lock.
    inner: Arc<Mutex<State>>,
}

/// What the fake holds.
#[derive(Default)]
pub(crate) struct State {
    /// Pods by `namespace/name`.
    pub pods: BTreeMap<String, Pod>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// The store revision.
    pub revision: u64,
    /// Every call, e.g. `PUT pods/default/web/status`.
    pub calls: Vec<String>,
    /// Errors the next calls fail with, in order.
    pub failures: VecDeque<ClientError>,
    /// Fail every call (the controlplane is down).
    pub down: bool,
    /// The next N status updates find that someone else wrote the object first.
    pub races: u32,
}

/// A 503, as a controlplane that is going away answers.
pub(crate) fn unavailable() -> ClientError {
    ClientError::Api(Box::new(Status::failure(
        503,
        "ServiceUnavailable",
        "controlplane down",
    )))
}

impl FakeControlplane {
    /// Locks the state.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap()
    }

    /// The pod `namespace/name`.
    pub(crate) fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.state()
            .pods
            .get(&format!("{namespace}/{name}"))
            .cloned()
    }

    /// The node `name`.
    pub(crate) fn node(&self, name: &str) -> Option<Node> {
        self.state().nodes.get(name).cloned()
    }

    /// Stores `pod` as if a user created it (uid, resourceVersion, Pending status).
    pub(crate) fn insert_pod(&self, mut pod: Pod) -> Pod {
        let mut state = self.state();
        let rv = state.bump();
        if pod.metadata.uid.is_none() {
            pod.metadata.uid = Some(format!("server-uid-{rv}"));
        }
        pod.metadata.resource_version = Some(rv.to_string());
        pod.status.get_or_insert_with(|| PodStatus {
            phase: Some("Pending".into()),
            ..PodStatus::default()
        });
        let key = format!(
            "{}/{}",
            pod.metadata.namespace_or_empty(),
            pod.metadata.name_or_empty()
        );
        state.pods.insert(key, pod.clone());
        pod
    }

    /// Removes a pod as if a user deleted it.
    pub(crate) fn remove_pod(&self, namespace: &str, name: &str) {
        self.state().pods.remove(&format!("{namespace}/{name}"));
    }

    /// Every call made so far.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// Calls starting with `prefix`.
    pub(crate) fn calls_like(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// Records a call and fails it if a failure is scripted or the fake is down.
    fn enter(&self, call: String) -> Result<MutexGuard<'_, State>, ClientError> {
        let mut state = self.state();
        state.calls.push(call);
        if state.down {
            return Err(unavailable());
        }
        match state.failures.pop_front() {
            Some(error) => Err(error),
            None => Ok(state),
        }
    }
}

impl State {
    /// The next revision.
    fn bump(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// Takes one scripted race: someone else updated the object first.
    fn race(&mut self) -> bool {
        if self.races > 0 {
            self.races -= 1;
            true
        } else {
            false
        }
    }
}

/// 404 for `kind` `name`.
fn not_found(kind: &str, name: &str) -> ClientError {
    Status::not_found(kind, name).into()
}

/// 409 Conflict for `kind` `name`.
fn conflict(kind: &str, name: &str) -> ClientError {
    Status::conflict(kind, name, "the object has been modified").into()
}

/// `namespace/name` of a pod.
fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace_or_empty(),
        pod.metadata.name_or_empty()
    )
}

impl PodApi for FakeControlplane {
    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, ClientError> {
        let state = self.enter(format!("GET pods/{namespace}/{name}"))?;
        Ok(state.pods.get(&format!("{namespace}/{name}")).cloned())
    }

    async fn update_pod_status(&self, pod: &Pod) -> Result<Pod, ClientError> {
        let key = key(pod);
        let mut state = self.enter(format!("PUT pods/{key}/status"))?;
        if state.race()
            && let Some(stored) = state.pods.get(&key).cloned()
        {
            let rv = state.bump();
            let mut stored = stored;
            stored.metadata.resource_version = Some(rv.to_string());
            state.pods.insert(key.clone(), stored);
        }
        let rv = state.bump();
        let Some(stored) = state.pods.get_mut(&key) else {
            return Err(not_found("pods", &key));
        };
        if stored.metadata.resource_version != pod.metadata.resource_version {
            return Err(conflict("pods", &key));
        }
        stored.status = pod.status.clone();
        stored.metadata.resource_version = Some(rv.to_string());
        Ok(stored.clone())
    }

    async fn create_pod(&self, pod: &Pod) -> Result<Pod, ClientError> {
        let key = key(pod);
        {
            let state = self.enter(format!("POST pods/{key}"))?;
            if state.pods.contains_key(&key) {
                return Err(Status::already_exists("pods", &key).into());
            }
        }
        let mut pod = pod.clone();
        pod.metadata.uid = None;
        pod.status = None;
        Ok(self.insert_pod(pod))
    }

    async fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<(), ClientError> {
        let key = format!("{namespace}/{name}");
        let mut state = self.enter(format!("DELETE pods/{key}"))?;
        let Some(stored) = state.pods.get(&key) else {
            return Err(not_found("pods", &key));
        };
        if resource_version.is_some()
            && stored.metadata.resource_version.as_deref() != resource_version
        {
            return Err(conflict("pods", &key));
        }
        state.pods.remove(&key);
        state.bump();
        Ok(())
    }

    async fn pods_on_node(&self, node: &str) -> Result<Vec<Pod>, ClientError> {
        let state = self.enter(format!("LIST pods spec.nodeName={node}"))?;
        Ok(state
            .pods
            .values()
            .filter(|p| p.spec.node_name.as_deref() == Some(node))
            .cloned()
            .collect())
    }
}

impl NodeApi for FakeControlplane {
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ClientError> {
        let state = self.enter(format!("GET nodes/{name}"))?;
        Ok(state.nodes.get(name).cloned())
    }

    async fn create_node(&self, node: &Node) -> Result<Node, ClientError> {
        let name = node.metadata.name_or_empty().to_string();
        let mut state = self.enter(format!("POST nodes/{name}"))?;
        if state.nodes.contains_key(&name) {
            return Err(Status::already_exists("nodes", &name).into());
        }
        let rv = state.bump();
        let mut node = node.clone();
        node.metadata.resource_version = Some(rv.to_string());
        node.metadata.uid = Some(format!("node-uid-{rv}"));
        state.nodes.insert(name, node.clone());
        Ok(node)
    }

    async fn update_node(&self, node: &Node) -> Result<Node, ClientError> {
        let name = node.metadata.name_or_empty().to_string();
        let mut state = self.enter(format!("PUT nodes/{name}"))?;
        let rv = state.bump();
        let Some(stored) = state.nodes.get_mut(&name) else {
            return Err(not_found("nodes", &name));
        };
        if stored.metadata.resource_version != node.metadata.resource_version {
            return Err(conflict("nodes", &name));
        }
        stored.metadata = node.metadata.clone();
        stored.spec = node.spec.clone();
        stored.metadata.resource_version = Some(rv.to_string());
        Ok(stored.clone())
    }

    async fn update_node_status(&self, node: &Node) -> Result<Node, ClientError> {
        let name = node.metadata.name_or_empty().to_string();
        let mut state = self.enter(format!("PUT nodes/{name}/status"))?;
        if state.race()
            && let Some(mut stored) = state.nodes.get(&name).cloned()
        {
            let rv = state.bump();
            stored.metadata.resource_version = Some(rv.to_string());
            state.nodes.insert(name.clone(), stored);
        }
        let rv = state.bump();
        let Some(stored) = state.nodes.get_mut(&name) else {
            return Err(not_found("nodes", &name));
        };
        if stored.metadata.resource_version != node.metadata.resource_version {
            return Err(conflict("nodes", &name));
        }
        stored.status = node.status.clone();
        stored.metadata.resource_version = Some(rv.to_string());
        Ok(stored.clone())
    }
}
