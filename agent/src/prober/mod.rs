//! HTTP, TCP and exec probes; liveness and readiness workers.
//!
//! The pod worker calls [`ProbeManager::ensure`] for every probe of every running container and
//! reads [`ProbeManager::result`] (or waits on its own pod's [`ProbeManager::changes`]) to
//! decide restarts (liveness) and readiness. One task per (container, kind) probes on the
//! probe's own schedule; it stops on [`ProbeManager::remove_container`],
//! [`ProbeManager::remove_pod`] or when the last clone of the manager is dropped.
//!
//! The single probers ([`http`], [`tcp`], [`exec`]) and the [`Prober`] dispatcher are public too,
//! for callers that need one probe now (lifecycle hooks, tests).

mod dispatch;
pub mod exec;
pub mod http;
mod manager;
mod target;
pub mod tcp;
mod timing;
mod worker;

#[cfg(test)]
mod test_server;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use skiff_api::types::ContainerPort;

pub use dispatch::Prober;
pub use manager::ProbeManager;
pub use target::TargetError;
pub use timing::ProbeTiming;

/// Which question a probe answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// Is the container alive? Unhealthy means: restart it.
    Liveness,
    /// Is the container ready for traffic? Unready means: leave it out of service endpoints.
    Readiness,
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
        })
    }
}

/// Identifies the container a probe worker belongs to, for removal and for log fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerKey {
    /// The pod's uid, so [`ProbeManager::remove_pod`] finds every worker of a pod.
    pub pod_uid: String,
    /// The container's name in the pod spec, for logs.
    pub container_name: String,
    /// The runtime's container id: workers are keyed by it, a restarted container gets new ones.
    pub container_id: String,
}

/// Where a probe reaches its container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The container whose runtime `exec` runs exec probes.
    pub container_id: String,
    /// The pod's IP (the infra container's address on the Docker bridge, reachable from the
    /// host); the default host of HTTP and TCP probes.
    pub pod_ip: Option<IpAddr>,
    /// The container's declared ports, to resolve port names.
    pub ports: Vec<ContainerPort>,
    /// containerPort → published hostPort: used (on 127.0.0.1) when the pod IP is unknown.
    pub host_ports: HashMap<i32, u16>,
}

/// The result of one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The check passed.
    Success,
    /// The check failed, with the reason (for logs and events).
    Failure(String),
    /// Not probed yet, or the probe has no (or more than one) handler: never healthy.
    Unknown,
}

impl ProbeOutcome {
    /// True only for [`ProbeOutcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeOutcome::Success)
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Success => f.write_str("success"),
            ProbeOutcome::Failure(why) => write!(f, "failure: {why}"),
            ProbeOutcome::Unknown => f.write_str("unknown"),
        }
    }
}

/// What one probe worker currently concludes about its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    /// Liveness: false only after failureThreshold consecutive failures (true at start).
    /// Readiness: true only after successThreshold consecutive successes (false at start), false
    /// again after failureThreshold consecutive failures. An [`ProbeOutcome::Unknown`] makes
    /// either kind unhealthy at once.
    pub healthy: bool,
    /// The last attempt's outcome ([`ProbeOutcome::Unknown`] before the first attempt).
    pub last: ProbeOutcome,
    /// Failures in a row up to now (0 after a success).
    pub consecutive_failures: u32,
    /// Successes in a row up to now (0 after a failure).
    pub consecutive_successes: u32,
    /// When `healthy` last changed, or when the worker started if it never changed.
    pub since: Instant,
}

impl ProbeState {
    /// The state before the first attempt: liveness assumes alive, readiness assumes not ready.
    pub fn initial(kind: ProbeKind, now: Instant) -> Self {
        ProbeState {
            healthy: kind == ProbeKind::Liveness,
            last: ProbeOutcome::Unknown,
            consecutive_failures: 0,
            consecutive_successes: 0,
            since: now,
        }
    }

    /// Folds one attempt's outcome into the state under `timing`'s thresholds; returns whether
    /// `healthy` flipped.
    pub fn record(&mut self, outcome: ProbeOutcome, timing: &ProbeTiming, now: Instant) -> bool {
        let healthy = match &outcome {
            ProbeOutcome::Success => {
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
                self.consecutive_failures = 0;
                self.healthy || self.consecutive_successes >= timing.success_threshold
            }
            ProbeOutcome::Failure(_) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.consecutive_successes = 0;
                self.healthy && self.consecutive_failures < timing.failure_threshold
            }
            ProbeOutcome::Unknown => {
                self.consecutive_failures = 0;
                self.consecutive_successes = 0;
                false
            }
        };
        self.last = outcome;
        let flipped = healthy != self.healthy;
        if flipped {
            self.healthy = healthy;
            self.since = now;
        }
        flipped
    }
}

/// Locks `mutex`; a poisoned lock (a panicked holder) still yields the data, which is always
/// left consistent here.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Renders a timeout the way probe messages show it: `1s`, `1.5s`, `250ms`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// The first `max` bytes of `text` (cut at a char boundary, trimmed), for failure messages.
pub(crate) fn snippet(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim()
}

/// An error and all its sources, `: `-joined (reqwest's own message omits the cause).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(success: u32, failure: u32) -> ProbeTiming {
        ProbeTiming {
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(10),
            timeout: Duration::from_millis(10),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    fn fail() -> ProbeOutcome {
        ProbeOutcome::Failure("no".into())
    }

    #[test]
    fn liveness_turns_unhealthy_only_after_failure_threshold_in_a_row() {
        let t = timing(1, 3);
        let now = Instant::now();
        let mut s = ProbeState::initial(ProbeKind::Liveness, now);
        assert!(s.healthy);
        assert!(!s.record(fail(), &t, now));
        assert!(!s.record(fail(), &t, now));
        assert!(
            !s.record(ProbeOutcome::Success, &t, now),
            "a success resets the count"
        );
        assert_eq!(s.consecutive_failures, 0);
        assert!(!s.record(fail(), &t, now));
        assert!(!s.record(fail(), &t, now));
        assert!(s.healthy);
        let later = now + Duration::from_secs(1);
        assert!(s.record(fail(), &t, later));
        assert!(!s.healthy);
        assert_eq!(s.consecutive_failures, 3);
        assert_eq!(s.since, later);
        assert!(
            s.record(ProbeOutcome::Success, &t, later),
            "one success heals"
        );
        assert!(s.healthy);
    }

    #[test]
    fn readiness_needs_success_threshold_successes_and_failure_threshold_failures() {
        let t = timing(2, 2);
        let now = Instant::now();
        let mut s = ProbeState::initial(ProbeKind::Readiness, now);
        assert!(!s.healthy);
        assert_eq!(s.last, ProbeOutcome::Unknown);
        assert!(!s.record(ProbeOutcome::Success, &t, now));
        assert!(!s.record(fail(), &t, now));
        assert!(!s.record(ProbeOutcome::Success, &t, now));
        assert!(s.record(ProbeOutcome::Success, &t, now));
        assert!(s.healthy);
        assert!(!s.record(ProbeOutcome::Success, &t, now));
        assert!(!s.record(fail(), &t, now));
        assert!(s.healthy, "one failure is below the threshold");
        assert!(s.record(fail(), &t, now));
        assert!(!s.healthy);
        assert_eq!(s.last, fail());
    }

    #[test]
    fn unknown_is_never_healthy() {
        let t = timing(1, 3);
        let now = Instant::now();
        let mut live = ProbeState::initial(ProbeKind::Liveness, now);
        assert!(live.record(ProbeOutcome::Unknown, &t, now));
        assert!(!live.healthy);
        let mut ready = ProbeState::initial(ProbeKind::Readiness, now);
        assert!(!ready.record(ProbeOutcome::Unknown, &t, now));
        assert!(!ready.healthy);
    }

    #[test]
    fn durations_render_compactly() {
        assert_eq!(fmt_duration(Duration::from_secs(1)), "1s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn snippets_cut_at_char_boundaries() {
        assert_eq!(snippet("héllo", 2), "h");
        assert_eq!(snippet(" ok \n", 100), "ok");
    }
}
