//! The scheduling cycle of one pod: decide, assume, bind — or mark it Unschedulable and retry.

use skiff_api::client::ClientError;
use skiff_api::types::{Pod, Resource, Time};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};

use super::state::{Fingerprint, SharedState, needs_scheduling};
use super::unschedulable::{FitError, already_marked, mark_unschedulable};

/// How many times a conflicting status write is retried with a fresh read.
const STATUS_WRITE_ATTEMPTS: usize = 5;

/// Pops pod keys and schedules them until `shutdown` fires or the queue closes.
pub async fn worker(state: SharedState, shutdown: CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = state.wait_synced() => {}
    }
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => None,
            next = state.queue.pop() => next,
        };
        let Some(key) = next else { break };
        schedule_one(&state, &key).await;
    }
}

/// One attempt for the pod under `key`; always hands the key back to the queue.
#[instrument(skip_all, fields(scheduler = %state.config.name, pod = %key))]
pub async fn schedule_one(state: &SharedState, key: &str) {
    let Some(pod) = state.pods.get(key) else {
        // Deleted since it was queued.
        state.stop_waiting(key);
        state.queue.done(key);
        return;
    };
    if !needs_scheduling(&pod) {
        state.stop_waiting(key);
        state.queue.done(key);
        return;
    }
    if state.assumed().contains(key) {
        // Bound (or being bound) by us; the watch event will confirm it.
        state.queue.done(key);
        return;
    }
    let started = std::time::Instant::now();
    let result = match state.decide_and_assume(&pod) {
        Ok(node) => bind(state, &pod, key, &node).await,
        Err(fit) => {
            unschedulable(state, &pod, key, &fit).await;
            "unschedulable"
        }
    };
    if let Some(metrics) = &state.config.metrics {
        metrics.record_scheduling_attempt(result, started.elapsed(), state.queue.len());
    }
}

/// Binds `pod` to `node`; on failure drops the assumption and retries later. Returns the
/// attempt's result as the metrics name it: `scheduled` or `error`.
async fn bind(state: &SharedState, pod: &Pod, key: &str, node: &str) -> &'static str {
    let namespace = pod.metadata.namespace_or_empty();
    let name = pod.metadata.name_or_empty();
    match state.client.bind(namespace, name, node).await {
        Ok(()) => {
            info!(node = %node, "bound pod");
            state.stop_waiting(key);
            state.queue.done(key);
            "scheduled"
        }
        Err(e) => {
            state.assumed().forget(key);
            if e.is_not_found() {
                debug!(node = %node, "pod vanished before it was bound");
                state.stop_waiting(key);
                state.queue.done(key);
                return "error";
            }
            let delay = state.next_retry(key, None);
            if is_conflict(&e) {
                // Already bound or changed meanwhile: the pod's next event tells the truth.
                debug!(node = %node, error = %e, retry_in = ?delay, "binding conflicted");
            } else {
                warn!(node = %node, error = %e, retry_in = ?delay, "binding failed");
            }
            state.queue.requeue_after(key, delay);
            "error"
        }
    }
}

/// True for a 409 from the server, whatever its reason.
fn is_conflict(e: &ClientError) -> bool {
    e.status().is_some_and(|s| s.code == 409)
}

/// Records that `pod` fits nowhere and queues a retry after its backoff.
async fn unschedulable(state: &SharedState, pod: &Pod, key: &str, fit: &FitError) {
    let message = fit.to_string();
    let delay = state.next_retry(key, Some(Fingerprint::of(pod)));
    match record_unschedulable(state, pod, &message).await {
        Ok(true) => info!(reason = %message, retry_in = ?delay, "pod is unschedulable"),
        Ok(false) => debug!(reason = %message, retry_in = ?delay, "pod is still unschedulable"),
        Err(e) => warn!(
            reason = %message,
            error = %e,
            "could not record PodScheduled=False on the pod"
        ),
    }
    state.queue.requeue_after(key, delay);
}

/// Writes `PodScheduled=False, Unschedulable, message` through the status subresource, only
/// when it changed; a conflict re-reads the pod and tries again. Ok(true) when written.
pub async fn record_unschedulable(
    state: &SharedState,
    pod: &Pod,
    message: &str,
) -> Result<bool, ClientError> {
    if already_marked(pod, message) {
        return Ok(false);
    }
    let api = state
        .client
        .api::<Pod>(Some(pod.metadata.namespace_or_empty()));
    let mut current = pod.clone();
    for _ in 0..STATUS_WRITE_ATTEMPTS {
        if current.spec.node_name.is_some() || current.metadata.uid != pod.metadata.uid {
            return Ok(false);
        }
        let mut updated = current.clone();
        if !mark_unschedulable(&mut updated, message, Time::now()) {
            return Ok(false);
        }
        match api.update_status(&updated).await {
            Ok(_) => return Ok(true),
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) if e.is_conflict() => match api.get_opt(pod.metadata.name_or_empty()).await? {
                Some(fresh) => current = fresh,
                None => return Ok(false),
            },
            Err(e) => return Err(e),
        }
    }
    debug!(pod = %pod.key(), "gave up writing the condition after repeated conflicts");
    Ok(false)
}
