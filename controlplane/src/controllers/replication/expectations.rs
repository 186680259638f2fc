//! Expectations: after issuing creates and deletes, wait to observe them before acting again.
//!
//! The cache lags behind the API calls a sync makes. Without expectations, a burst of pod
//! events arriving right after a sync created three pods would find the cache still short
//! of three and create three more. So a sync records how many creations and which deletions
//! it issued, pod events tick them off, and the controller is left alone until they are all
//! seen — or until a timeout says an event must have been lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// What one replication controller is waiting to observe.
#[derive(Debug)]
struct Pending {
    /// Creations issued and not yet seen.
    creations: i64,
    /// Keys of pods whose deletion was issued and not yet seen.
    deletions: HashSet<String>,
    /// When the expectations were set, for the timeout.
    since: Instant,
}

/// Whether a controller may act now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Everything issued was observed (or the expectations timed out): act.
    Satisfied,
    /// Still waiting; look again after this long even if no event comes.
    Waiting(Duration),
}

/// Expectations of every replication controller, by key.
#[derive(Debug)]
pub(crate) struct Expectations {
    /// How long to wait before giving up on observing what was issued.
    timeout: Duration,
    /// Pending expectations by controller key.
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// No expectations, with `timeout` before unobserved ones are dropped.
    pub(crate) fn new(timeout: Duration) -> Self {
        Expectations {
            timeout,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Takes the lock, recovering from poisoning (the map is consistent after every call).
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `count` pods are about to be created for `key`.
    pub(crate) fn expect_creations(&self, key: &str, count: usize, now: Instant) {
        self.lock().insert(
            key.to_string(),
            Pending {
                creations: i64::try_from(count).unwrap_or(i64::MAX),
                deletions: HashSet::new(),
                since: now,
            },
        );
    }

    /// Records that the pods `pod_keys` are about to be deleted for `key`.
    pub(crate) fn expect_deletions(&self, key: &str, pod_keys: &[String], now: Instant) {
        self.lock().insert(
            key.to_string(),
            Pending {
                creations: 0,
                deletions: pod_keys.iter().cloned().collect(),
                since: now,
            },
        );
    }

    /// A pod created for `key` was seen (or a create failed, so none will be).
    pub(crate) fn creation_observed(&self, key: &str) {
        if let Some(pending) = self.lock().get_mut(key) {
            pending.creations -= 1;
        }
    }

    /// The deletion of `pod_key` was seen (or failed, so it will not be).
    pub(crate) fn deletion_observed(&self, key: &str, pod_key: &str) {
        if let Some(pending) = self.lock().get_mut(key) {
            pending.deletions.remove(pod_key);
        }
    }

    /// Whether `key` may act at `now`.
    pub(crate) fn readiness(&self, key: &str, now: Instant) -> Readiness {
        let pending = self.lock();
        let Some(p) = pending.get(key) else {
            return Readiness::Satisfied;
        };
        if p.creations <= 0 && p.deletions.is_empty() {
            return Readiness::Satisfied;
        }
        let waited = now.saturating_duration_since(p.since);
        if waited >= self.timeout {
            return Readiness::Satisfied;
        }
        Readiness::Waiting(self.timeout - waited)
    }

    /// Drops everything known about `key`, when its controller is deleted.
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_must_all_be_observed_before_acting_again() {
        let e = Expectations::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(e.readiness("ns/rc", t0), Readiness::Satisfied);
        e.expect_creations("ns/rc", 3, t0);
        e.creation_observed("ns/rc");
        e.creation_observed("ns/rc");
        assert_eq!(
            e.readiness("ns/rc", t0 + Duration::from_secs(10)),
            Readiness::Waiting(Duration::from_secs(50))
        );
        e.creation_observed("ns/rc");
        assert_eq!(e.readiness("ns/rc", t0), Readiness::Satisfied);
        // More observations than expected (pods made by someone else) keep it satisfied.
        e.creation_observed("ns/rc");
        assert_eq!(e.readiness("ns/rc", t0), Readiness::Satisfied);
    }

    #[test]
    fn deletions_are_tracked_per_pod_so_repeats_do_not_count_twice() {
        let e = Expectations::new(Duration::from_secs(60));
        let t0 = Instant::now();
        e.expect_deletions("ns/rc", &["ns/a".to_string(), "ns/b".to_string()], t0);
        e.deletion_observed("ns/rc", "ns/a");
        e.deletion_observed("ns/rc", "ns/a");
        assert!(matches!(e.readiness("ns/rc", t0), Readiness::Waiting(_)));
        e.deletion_observed("ns/rc", "ns/b");
        assert_eq!(e.readiness("ns/rc", t0), Readiness::Satisfied);
    }

    #[test]
    fn unobserved_expectations_expire_and_can_be_forgotten() {
        let e = Expectations::new(Duration::from_secs(60));
        let t0 = Instant::now();
        e.expect_creations("ns/rc", 2, t0);
        assert!(matches!(
            e.readiness("ns/rc", t0 + Duration::from_secs(59)),
            Readiness::Waiting(_)
        ));
        assert_eq!(
            e.readiness("ns/rc", t0 + Duration::from_secs(60)),
            Readiness::Satisfied
        );
        e.forget("ns/rc");
        assert_eq!(e.readiness("ns/rc", t0), Readiness::Satisfied);
        // Observations for unknown keys are ignored.
        e.creation_observed("ns/other");
        e.deletion_observed("ns/other", "ns/x");
        assert_eq!(e.readiness("ns/other", t0), Readiness::Satisfied);
    }
}
