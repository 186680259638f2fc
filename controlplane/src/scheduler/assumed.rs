//! The "assumed" overlay: pods this scheduler placed whose binding the watch has not shown yet.
//!
//! Without it, every decision made before the watch event of the previous binding arrives
//! sees the same free node, and a burst of pods piles onto it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_api::types::{Pod, Resource};

/// One pod placed on a node by this scheduler, not yet seen bound in the store.
#[derive(Clone, Debug)]
struct AssumedPod {
    /// The pod with `spec.nodeName` set to the chosen node.
    pod: Arc<Pod>,
    /// When to give up waiting for the store to show the binding.
    expires: Instant,
}

/// Pods assumed onto nodes, by `namespace/name`.
#[derive(Debug)]
pub struct AssumedPods {
    /// The assumed pods by key.
    entries: HashMap<String, AssumedPod>,
    /// How long an entry lives without confirmation.
    ttl: Duration,
}

impl AssumedPods {
    /// An empty overlay whose entries expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        AssumedPods {
            entries: HashMap::new(),
            ttl,
        }
    }

    /// Records that `pod` is being bound to `node`, from `now` on.
    pub fn assume(&mut self, pod: &Pod, node: &str, now: Instant) {
        let mut placed = pod.clone();
        placed.spec.node_name = Some(node.to_string());
        self.entries.insert(
            pod.key(),
            AssumedPod {
                pod: Arc::new(placed),
                expires: now + self.ttl,
            },
        );
    }

    /// Drops the entry of `key` (binding failed, pod deleted, or the store caught up).
    pub fn forget(&mut self, key: &str) -> bool {
        self.entries.remove(key).is_some()
    }

    /// True when `key` is assumed on some node.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The node `key` is assumed on.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.entries
            .get(key)
            .and_then(|e| e.pod.spec.node_name.as_deref())
    }

    /// The pods assumed on `node`.
    pub fn on_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Arc<Pod>> + 'a {
        self.entries
            .values()
            .filter(move |e| e.pod.spec.node_name.as_deref() == Some(node))
            .map(|e| &e.pod)
    }

    /// Applies what the store now says about a pod: once it shows the pod bound (to any
    /// node), the store counts it and the entry goes.
    pub fn observe(&mut self, pod: &Pod) {
        if pod.spec.node_name.is_some() {
            self.entries.remove(&pod.key());
        }
    }

    /// Keeps only entries whose pod `lookup` still shows unbound (after a relist).
    pub fn reconcile(&mut self, lookup: impl Fn(&str) -> Option<Arc<Pod>>) {
        self.entries
            .retain(|key, _| lookup(key).is_some_and(|p| p.spec.node_name.is_none()));
    }

    /// Removes the entries older than their ttl at `now`; returns their keys.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.entries.remove(key);
        }
        expired
    }

    /// How many pods are assumed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is assumed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use skiff_api::types::ObjectMeta;

    use super::*;

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn assumed_pods_count_on_their_node_until_the_store_shows_them_bound() {
        let now = Instant::now();
        let mut assumed = AssumedPods::new(Duration::from_secs(30));
        assumed.assume(&pod("a"), "n1", now);
        assumed.assume(&pod("b"), "n1", now);
        assumed.assume(&pod("c"), "n2", now);
        assert_eq!(assumed.on_node("n1").count(), 2);
        assert_eq!(assumed.node_of("ns/c"), Some("n2"));
        assert!(
            assumed
                .on_node("n1")
                .all(|p| p.spec.node_name.as_deref() == Some("n1"))
        );

        // An event for the unbound pod (e.g. a status write) changes nothing.
        assumed.observe(&pod("a"));
        assert!(assumed.contains("ns/a"));
        // The bound pod arrives through the watch: the store counts it now.
        let mut bound = pod("a");
        bound.spec.node_name = Some("n1".into());
        assumed.observe(&bound);
        assert!(!assumed.contains("ns/a"));
        assert_eq!(assumed.on_node("n1").count(), 1);

        assert!(assumed.forget("ns/b"));
        assert!(!assumed.forget("ns/b"));
        assert_eq!(assumed.len(), 1);
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let now = Instant::now();
        let mut assumed = AssumedPods::new(Duration::from_secs(30));
        assumed.assume(&pod("old"), "n1", now);
        assumed.assume(&pod("new"), "n1", now + Duration::from_secs(20));
        assert!(assumed.expire(now + Duration::from_secs(29)).is_empty());
        assert_eq!(
            assumed.expire(now + Duration::from_secs(30)),
            vec!["ns/old".to_string()]
        );
        assert_eq!(assumed.len(), 1);
    }

    #[test]
    fn reconcile_drops_bound_and_vanished_pods() {
        let now = Instant::now();
        let mut assumed = AssumedPods::new(Duration::from_secs(30));
        for name in ["pending", "bound", "gone"] {
            assumed.assume(&pod(name), "n1", now);
        }
        assumed.reconcile(|key| match key {
            "ns/pending" => Some(Arc::new(pod("pending"))),
            "ns/bound" => {
                let mut p = pod("bound");
                p.spec.node_name = Some("n2".into());
                Some(Arc::new(p))
            }
            _ => None,
        });
        assert!(assumed.contains("ns/pending"));
        assert!(!assumed.contains("ns/bound"));
        assert!(!assumed.contains("ns/gone"));
        assert!(!assumed.is_empty());
    }
}
