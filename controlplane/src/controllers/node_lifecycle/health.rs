//! Node health as this controller sees it, and what to do about it — no I/O, and the clock is
//! passed in.
//!
//! A heartbeat's age is measured on this process's monotonic clock: from the moment the
//! controller saw `lastHeartbeatTime` change, not by comparing the agent's wall clock with
//! ours (machines at the edge rarely agree on the time). The eviction clock likewise starts
//! when the controller first sees the node not Ready.

use std::time::Duration;

use skiff_api::types::{Node, NodeCondition, Time};
use tokio::time::Instant;

/// The node condition type the controller watches.
pub(crate) const READY: &str = "Ready";
/// Reason set on a Ready condition the agent stopped updating.
pub(crate) const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// Message set on conditions the agent stopped updating.
pub(crate) const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// Reason set on a Ready condition the agent never posted.
pub(crate) const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
/// Message set on a Ready condition the agent never posted.
pub(crate) const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";

/// The node's Ready condition, when it has one.
pub(crate) fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
}

/// The status (`True`, `False`, `Unknown`) of the node's Ready condition.
fn ready_status(node: &Node) -> Option<&str> {
    ready_condition(node).map(|c| c.status.as_str())
}

/// What the controller remembers about one node between looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observed {
    /// The Ready condition's `lastHeartbeatTime` when last looked at.
    heartbeat: Option<Time>,
    /// When (on our clock) the heartbeat was last seen to change.
    probed_at: Instant,
    /// When (on our clock) the node was first seen not Ready; None while it is Ready.
    not_ready_since: Option<Instant>,
}

impl Observed {
    /// Updates (or starts) the record of `node` at `now`: a changed heartbeat restarts the
    /// heartbeat age, Ready stops the eviction clock, anything else starts it.
    pub(crate) fn observe(previous: Option<Observed>, node: &Node, now: Instant) -> Observed {
        let heartbeat = ready_condition(node).and_then(|c| c.last_heartbeat_time);
        let ready = ready_status(node) == Some("True");
        match previous {
            None => Observed {
                heartbeat,
                probed_at: now,
                not_ready_since: (!ready).then_some(now),
            },
            Some(previous) => Observed {
                probed_at: if heartbeat == previous.heartbeat {
                    previous.probed_at
                } else {
                    now
                },
                heartbeat,
                not_ready_since: if ready {
                    None
                } else {
                    previous.not_ready_since.or(Some(now))
                },
            },
        }
    }

    /// Records that the controller itself marked the node not Ready at `now`.
    pub(crate) fn marked_not_ready(&mut self, now: Instant) {
        self.not_ready_since.get_or_insert(now);
    }
}

/// The two durations the decisions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Heartbeat age after which the node's Ready condition becomes Unknown.
    pub(crate) grace_period: Duration,
    /// Time not Ready after which the node's pods are deleted.
    pub(crate) eviction_timeout: Duration,
}

/// What to do about one node now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Set the node's conditions to Unknown: its agent stopped posting.
    pub(crate) mark_unknown: bool,
    /// Set the Ready condition of the node's pods to False.
    pub(crate) mark_pods_not_ready: bool,
    /// Delete the node's pods so their controllers replace them elsewhere.
    pub(crate) evict_pods: bool,
}

/// Decides what `node`, observed as `observed`, needs at `now`.
pub(crate) fn decide(observed: &Observed, node: &Node, now: Instant, timing: Timing) -> Plan {
    let status = ready_status(node);
    let stale = now.saturating_duration_since(observed.probed_at) >= timing.grace_period;
    let mark_unknown = stale && status != Some("Unknown");
    // Only when the agent is silent: a live agent reporting NotReady reports its pods itself.
    let mark_pods_not_ready = mark_unknown || status == Some("Unknown");
    let evict_pods = observed
        .not_ready_since
        .is_some_and(|since| now.saturating_duration_since(since) >= timing.eviction_timeout);
    Plan {
        mark_unknown,
        mark_pods_not_ready,
        evict_pods,
    }
}

/// `node` with every condition set to Unknown, as the controller writes it when the agent
/// stopped posting; a missing Ready condition is added. Heartbeats are left as they were.
pub(crate) fn with_unknown_conditions(node: &Node, now: Time) -> Node {
    let mut node = node.clone();
    let status = node.status.get_or_insert_with(Default::default);
    if !status.conditions.iter().any(|c| c.type_ == READY) {
        status.conditions.push(NodeCondition {
            type_: READY.to_string(),
            status: "Unknown".to_string(),
            last_heartbeat_time: None,
            last_transition_time: Some(now),
            reason: Some(REASON_NEVER_UPDATED.to_string()),
            message: Some(MESSAGE_NEVER_UPDATED.to_string()),
        });
    }
    for condition in &mut status.conditions {
        if condition.status != "Unknown" {
            condition.status = "Unknown".to_string();
            condition.last_transition_time = Some(now);
            condition.reason = Some(REASON_UNKNOWN.to_string());
            condition.message = Some(MESSAGE_UNKNOWN.to_string());
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use skiff_api::types::{NodeStatus, ObjectMeta};

    use super::*;

    const TIMING: Timing = Timing {
        grace_period: Duration::from_secs(40),
        eviction_timeout: Duration::from_secs(300),
    };

    fn node(ready: Option<(&str, i64)>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("edge-1".into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                conditions: ready
                    .map(|(status, heartbeat)| {
                        vec![NodeCondition {
                            type_: READY.into(),
                            status: status.into(),
                            last_heartbeat_time: Time::from_unix(heartbeat),
                            ..Default::default()
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_fresh_heartbeat_keeps_the_node_alone() {
        let t0 = Instant::now();
        let mut seen = Observed::observe(None, &node(Some(("True", 100))), t0);
        // The agent's clock may be far off ours: only change counts, not the value.
        for (i, at) in [30u64, 60, 90].into_iter().enumerate() {
            let n = node(Some(("True", 100 + 10 * i64::try_from(i).unwrap() + 10)));
            seen = Observed::observe(Some(seen), &n, t0 + secs(at));
            assert_eq!(
                decide(&seen, &n, t0 + secs(at + 39), TIMING),
                Plan::default()
            );
        }
    }

    #[test]
    fn a_heartbeat_that_stops_changing_marks_the_node_unknown_after_the_grace_period() {
        let t0 = Instant::now();
        let n = node(Some(("True", 100)));
        let seen = Observed::observe(None, &n, t0);
        // The same heartbeat seen again does not refresh it.
        let seen = Observed::observe(Some(seen), &n, t0 + secs(20));
        assert_eq!(decide(&seen, &n, t0 + secs(39), TIMING), Plan::default());
        assert_eq!(
            decide(&seen, &n, t0 + secs(40), TIMING),
            Plan {
                mark_unknown: true,
                mark_pods_not_ready: true,
                evict_pods: false
            }
        );
    }

    #[test]
    fn pods_are_evicted_after_the_node_was_not_ready_for_the_eviction_timeout() {
        let t0 = Instant::now();
        let mut seen = Observed::observe(None, &node(Some(("True", 100))), t0);
        seen.marked_not_ready(t0 + secs(40));
        let unknown = with_unknown_conditions(&node(Some(("True", 100))), Time::now());
        let seen = Observed::observe(Some(seen), &unknown, t0 + secs(41));
        let plan = decide(&seen, &unknown, t0 + secs(339), TIMING);
        assert_eq!(
            plan,
            Plan {
                mark_unknown: false,
                mark_pods_not_ready: true,
                evict_pods: false
            }
        );
        assert!(decide(&seen, &unknown, t0 + secs(340), TIMING).evict_pods);
    }

    #[test]
    fn a_node_that_comes_back_stops_the_eviction_clock() {
        let t0 = Instant::now();
        let down = node(Some(("Unknown", 100)));
        let seen = Observed::observe(None, &down, t0);
        assert!(decide(&seen, &down, t0 + secs(300), TIMING).evict_pods);
        let back = node(Some(("True", 500)));
        let seen = Observed::observe(Some(seen), &back, t0 + secs(301));
        assert_eq!(
            decide(&seen, &back, t0 + secs(302), TIMING),
            Plan::default()
        );
    }

    #[test]
    fn an_agent_reporting_not_ready_is_evicted_but_its_pods_are_left_to_it() {
        let t0 = Instant::now();
        let sick = node(Some(("False", 100)));
        let seen = Observed::observe(None, &sick, t0);
        assert_eq!(decide(&seen, &sick, t0 + secs(20), TIMING), Plan::default());
        // The agent keeps posting (a new heartbeat) while still not Ready.
        let sick_later = node(Some(("False", 400)));
        let seen = Observed::observe(Some(seen), &sick_later, t0 + secs(290));
        assert_eq!(
            decide(&seen, &sick_later, t0 + secs(300), TIMING),
            Plan {
                mark_unknown: false,
                mark_pods_not_ready: false,
                evict_pods: true
            }
        );
    }

    #[test]
    fn a_node_that_never_posted_status_gets_an_unknown_ready_condition() {
        let t0 = Instant::now();
        let silent = node(None);
        let seen = Observed::observe(None, &silent, t0);
        assert!(decide(&seen, &silent, t0 + secs(40), TIMING).mark_unknown);
        let marked = with_unknown_conditions(&silent, Time::now());
        let ready = ready_condition(&marked).unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some(REASON_NEVER_UPDATED));
    }

    #[test]
    fn marking_unknown_keeps_heartbeats_and_sets_reason_and_message() {
        let now = Time::from_unix(5_000).unwrap();
        let marked = with_unknown_conditions(&node(Some(("True", 100))), now);
        let ready = ready_condition(&marked).unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some(REASON_UNKNOWN));
        assert_eq!(ready.message.as_deref(), Some(MESSAGE_UNKNOWN));
        assert_eq!(ready.last_heartbeat_time, Time::from_unix(100));
        assert_eq!(ready.last_transition_time, Some(now));
    }
}
