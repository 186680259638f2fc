//! The pods with their computed status, written by the pod workers and read by the agent's
//! HTTP server and the status reporter.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use skiff_api::types::Pod;
use tokio::sync::watch;

/// The shared table behind every handle.
#[derive(Debug)]
struct Inner {
    /// Every desired pod with its status, by uid.
    pods: RwLock<BTreeMap<String, Pod>>,
    /// Bumped on every change of `pods`.
    version: watch::Sender<u64>,
}

/// A cheap, cloneable view of every desired pod with its computed `status`.
#[derive(Clone, Debug)]
pub struct PodStatusHandle {
    /// The table and its change counter.
    inner: Arc<Inner>,
}

impl Default for PodStatusHandle {
    fn default() -> Self {
        PodStatusHandle::new()
    }
}

impl PodStatusHandle {
    /// An empty table (the pod manager makes one; tests of readers may fill their own).
    pub fn new() -> Self {
        PodStatusHandle {
            inner: Arc::new(Inner {
                pods: RwLock::new(BTreeMap::new()),
                version: watch::Sender::new(0),
            }),
        }
    }

    /// Reads the table; a poisoned lock still yields the data.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Pod>> {
        self.inner
            .pods
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the table; a poisoned lock still yields the data.
    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Pod>> {
        self.inner
            .pods
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every desired pod with its status, ordered by namespace and name.
    pub fn pods(&self) -> Vec<Pod> {
        let mut pods: Vec<Pod> = self.read().values().cloned().collect();
        pods.sort_by(|a, b| {
            (a.metadata.namespace_or_empty(), a.metadata.name_or_empty())
                .cmp(&(b.metadata.namespace_or_empty(), b.metadata.name_or_empty()))
        });
        pods
    }

    /// The pod `namespace/name` with its status, if it is desired.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.read()
            .values()
            .find(|p| {
                p.metadata.namespace_or_empty() == namespace && p.metadata.name_or_empty() == name
            })
            .cloned()
    }

    /// A counter bumped on every status change (for the status reporter and watchers).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// Stores `pod` (with its status) under `uid`; bumps the counter if anything changed.
    pub fn publish(&self, uid: &str, pod: Pod) {
        let changed = {
            let mut pods = self.write();
            if pods.get(uid) == Some(&pod) {
                false
            } else {
                pods.insert(uid.to_string(), pod);
                true
            }
        };
        if changed {
            self.inner.version.send_modify(|v| *v += 1);
        }
    }

    /// Forgets the pod with `uid` (it is no longer desired); bumps the counter if it was there.
    pub fn remove(&self, uid: &str) {
        let removed = self.write().remove(uid).is_some();
        if removed {
            self.inner.version.send_modify(|v| *v += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::types::ObjectMeta;

    fn pod(ns: &str, name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn publish_get_remove_and_bump() {
        let handle = PodStatusHandle::new();
        let rx = handle.subscribe();
        handle.publish("2", pod("b", "x"));
        handle.publish("1", pod("a", "y"));
        assert_eq!(*rx.borrow(), 2);
        handle.publish("1", pod("a", "y"));
        assert_eq!(*rx.borrow(), 2, "unchanged publish does not bump");
        let names: Vec<_> = handle
            .pods()
            .iter()
            .map(|p| p.metadata.name_or_empty().to_string())
            .collect();
        assert_eq!(names, ["y", "x"]);
        assert!(handle.get("b", "x").is_some());
        assert!(handle.get("b", "y").is_none());
        handle.remove("2");
        handle.remove("2");
        assert_eq!(*rx.borrow(), 3);
        assert_eq!(handle.pods().len(), 1);
    }
}
