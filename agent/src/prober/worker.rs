//! One probe worker: probes one container for one kind on the probe's schedule and keeps its
//! [`ProbeState`] up to date.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use skiff_api::types::Probe;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    ContainerKey, ProbeKind, ProbeOutcome, ProbeState, ProbeTarget, ProbeTiming, Prober, lock,
};
use crate::runtime::ContainerRuntime;

/// Everything one worker task needs; consumed by [`Worker::run`].
pub(crate) struct Worker<R: ContainerRuntime> {
    /// Whose container this is (log fields).
    pub key: ContainerKey,
    /// Liveness or readiness: decides the initial state.
    pub kind: ProbeKind,
    /// The probe spec (its handler).
    pub probe: Probe,
    /// Where the probe connects or execs.
    pub target: ProbeTarget,
    /// Delay, period, timeout and thresholds.
    pub timing: ProbeTiming,
    /// When the container started: the initial delay counts from here.
    pub started_at: Instant,
    /// Runs the attempts.
    pub prober: Prober<R>,
    /// The state the manager reads.
    pub state: Arc<Mutex<ProbeState>>,
    /// Bumped when `healthy` flips.
    pub changes: Arc<watch::Sender<u64>>,
    /// Stops the worker (removal, or the manager dropped).
    pub cancel: CancellationToken,
}

impl<R: ContainerRuntime> Worker<R> {
    /// Waits out the initial delay, then probes every period until cancelled.
    pub async fn run(self) {
        let cancel = self.cancel.clone();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {}
            _ = self.probe_loop() => {}
        }
        debug!(
            pod_uid = %self.key.pod_uid,
            container = %self.key.container_name,
            kind = %self.kind,
            "probe worker stopped"
        );
    }

    /// The worker's life, without cancellation (the caller races it against the token).
    async fn probe_loop(&self) {
        match self.started_at.checked_add(self.timing.initial_delay) {
            Some(first) => tokio::time::sleep_until(tokio::time::Instant::from_std(first)).await,
            None => std::future::pending().await,
        }
        let mut ticker = tokio::time::interval(self.timing.period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let outcome = self
                .prober
                .probe(&self.probe, &self.target, self.timing.timeout)
                .await;
            self.record(outcome);
        }
    }

    /// Folds one outcome into the shared state; on a flip bumps the change counter and logs.
    fn record(&self, outcome: ProbeOutcome) {
        let why = match &outcome {
            ProbeOutcome::Success => None,
            ProbeOutcome::Failure(why) => Some(why.clone()),
            ProbeOutcome::Unknown => Some("the probe has no handler, or more than one".to_string()),
        };
        let (flipped, state) = {
            let mut state = lock(&self.state);
            let flipped = state.record(outcome, &self.timing, Instant::now());
            (flipped, state.clone())
        };
        let why = why.unwrap_or_default();
        let (pod_uid, container, kind) = (&self.key.pod_uid, &self.key.container_name, self.kind);
        if flipped {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
            if state.healthy {
                info!(%pod_uid, %container, %kind, successes = state.consecutive_successes, "probe turned healthy");
            } else {
                warn!(%pod_uid, %container, %kind, %why, failures = state.consecutive_failures, "probe turned unhealthy");
            }
        } else if !why.is_empty() {
            debug!(%pod_uid, %container, %kind, %why, failures = state.consecutive_failures, "probe failed");
        }
    }
}
