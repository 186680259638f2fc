//! Workers: pop a key from the queue, sync it, and requeue it with backoff when that failed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use skiff_api::cache::Fifo;
use skiff_api::wait::Backoff;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::error::ControllerError;

/// What a successful sync asks of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing more to do until the next event.
    Done,
    /// Look at the key again after this delay even without an event.
    RequeueAfter(Duration),
}

/// Per-key retry delays: doubling from 100 ms to 30 s, forgotten after a success.
#[derive(Clone, Default)]
pub(crate) struct RetryDelays {
    /// The backoff of every key whose last sync failed.
    delays: Arc<Mutex<HashMap<String, Backoff>>>,
}

impl RetryDelays {
    /// The delay before retrying `key` once more.
    pub(crate) fn next(&self, key: &str) -> Duration {
        let mut delays = self.delays.lock().unwrap_or_else(PoisonError::into_inner);
        delays
            .entry(key.to_string())
            .or_insert_with(|| {
                Backoff::new(Duration::from_millis(100), Duration::from_secs(30), 0.2)
            })
            .next_delay()
    }

    /// Forgets `key`'s failures after it synced.
    pub(crate) fn forget(&self, key: &str) {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// Runs `workers` workers that sync keys from `queue` until `shutdown`.
pub(crate) async fn run_workers<F, Fut>(
    controller: &'static str,
    queue: Fifo<()>,
    workers: usize,
    shutdown: CancellationToken,
    sync: F,
) where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, ControllerError>> + Send + 'static,
{
    let retries = RetryDelays::default();
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (queue, shutdown, sync, retries) = (
            queue.clone(),
            shutdown.clone(),
            sync.clone(),
            retries.clone(),
        );
        tasks.spawn(async move {
            loop {
                let popped = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    popped = queue.pop() => popped,
                };
                let Some((key, ())) = popped else { return };
                let delay = match sync(key.clone()).await {
                    Ok(Outcome::Done) => {
                        retries.forget(&key);
                        None
                    }
                    Ok(Outcome::RequeueAfter(delay)) => {
                        retries.forget(&key);
                        debug!(controller, key = %key, ?delay, "look again later");
                        Some(delay)
                    }
                    Err(error) => {
                        let delay = retries.next(&key);
                        if error.is_conflict() {
                            debug!(controller, key = %key, %error, ?delay, "cache was behind; retrying");
                        } else {
                            warn!(controller, key = %key, %error, ?delay, "sync failed; retrying");
                        }
                        Some(delay)
                    }
                };
                // An event that arrived during the sync is handled now, not after the delay.
                queue.done(&key);
                if let Some(delay) = delay {
                    add_after(&queue, key, delay, &shutdown);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Adds `key` to `queue` after `delay`, unless `shutdown` comes first.
pub(crate) fn add_after(
    queue: &Fifo<()>,
    key: String,
    delay: Duration,
    shutdown: &CancellationToken,
) {
    let (queue, shutdown) = (queue.clone(), shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(delay) => queue.add(&key, ()),
        }
    });
}
