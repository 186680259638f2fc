//! The controller loop: N workers take keys from a [`WorkQueue`] and reconcile them.
//!
//! A reconcile brings one key to its desired state and answers with an [`Action`]: look again
//! after a delay, or wait for the next change. An error requeues the key after a per-key
//! jittered exponential backoff, forgotten at the key's next success. One key is reconciled
//! by one worker at a time (the queue's guarantee); a change during a reconcile queues the key
//! again as soon as that reconcile is done.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::backoff::JitteredBackoff;
use super::queue::WorkQueue;

/// What a successful reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Look at the key again after this long even without a change; None: only on a change.
    requeue_after: Option<Duration>,
}

impl Action {
    /// Look at the key again after `after`, changed or not (e.g. a deadline to check).
    pub fn requeue(after: Duration) -> Self {
        Action {
            requeue_after: Some(after),
        }
    }

    /// Nothing more to do until the key's objects change.
    pub fn await_change() -> Self {
        Action {
            requeue_after: None,
        }
    }

    /// The delay after which the key is looked at again, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// An error a reconcile can fail with.
pub trait ReconcileError: Display + Send + 'static {
    /// True for an expected, self-healing failure (a write conflict because the cache was
    /// behind): logged at debug rather than as a warning.
    fn is_transient(&self) -> bool {
        false
    }
}

/// Tunables of one controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// The controller's name, for logs.
    pub name: &'static str,
    /// Keys reconciled in parallel.
    pub workers: usize,
    /// First retry delay of a failed key.
    pub error_backoff_base: Duration,
    /// Largest retry delay of a failed key.
    pub error_backoff_cap: Duration,
    /// Largest random share by which a retry delay is shortened.
    pub error_backoff_jitter: f64,
}

impl ControllerConfig {
    /// Settings for controller `name` with `workers` workers and the default error backoff
    /// (100 ms doubling to 30 s).
    pub fn new(name: &'static str, workers: usize) -> Self {
        ControllerConfig {
            name,
            workers,
            error_backoff_base: Duration::from_millis(100),
            error_backoff_cap: Duration::from_secs(30),
            error_backoff_jitter: 0.2,
        }
    }
}

/// The retry backoff of every key whose last reconcile failed.
struct Retries {
    /// How new backoffs are made.
    config: ControllerConfig,
    /// Backoffs by key.
    keys: Mutex<HashMap<String, JitteredBackoff>>,
}

impl Retries {
    /// The delay before retrying `key` once more.
    fn next(&self, key: &str) -> Duration {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.entry(key.to_string())
            .or_insert_with(|| {
                JitteredBackoff::new(
                    self.config.error_backoff_base,
                    self.config.error_backoff_cap,
                    self.config.error_backoff_jitter,
                )
            })
            .next_delay()
    }

    /// Forgets `key`'s failures after it reconciled.
    fn forget(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// Runs `config.workers` workers reconciling keys from `queue` until `shutdown` (or until the
/// queue closes), then closes the queue.
pub async fn run<R, Fut, E>(
    queue: WorkQueue,
    config: ControllerConfig,
    shutdown: CancellationToken,
    reconcile: R,
) where
    R: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: ReconcileError,
{
    let retries = Arc::new(Retries {
        config: config.clone(),
        keys: Mutex::new(HashMap::new()),
    });
    let mut tasks = JoinSet::new();
    for _ in 0..config.workers.max(1) {
        let (queue, shutdown, reconcile, retries) = (
            queue.clone(),
            shutdown.clone(),
            reconcile.clone(),
            Arc::clone(&retries),
        );
        let name = config.name;
        tasks.spawn(async move {
            loop {
                let popped = tokio::select! {
                    () = shutdown.cancelled() => return,
                    popped = queue.pop() => popped,
                };
                let Some(key) = popped else { return };
                let delay = match reconcile(key.clone()).await {
                    Ok(action) => {
                        retries.forget(&key);
                        if let Some(delay) = action.requeue_after() {
                            debug!(controller = name, key = %key, ?delay, "look again later");
                        }
                        action.requeue_after()
                    }
                    Err(error) => {
                        let delay = retries.next(&key);
                        if error.is_transient() {
                            debug!(controller = name, key = %key, %error, ?delay, "reconcile failed transiently; retrying");
                        } else {
                            warn!(controller = name, key = %key, %error, ?delay, "reconcile failed; retrying");
                        }
                        Some(delay)
                    }
                };
                // A change that arrived during the reconcile is handled now, not after the delay.
                queue.done(&key);
                if let Some(delay) = delay {
                    queue.add_after(&key, delay);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    queue.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// A failure for tests.
    #[derive(Debug)]
    struct Failed;

    impl Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failed")
        }
    }

    impl ReconcileError for Failed {}

    /// When each reconcile ran, by key, relative to `start`.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<(String, u64)>>>);

    impl Log {
        fn push(&self, key: &str, start: Instant) {
            let ms = start.elapsed().as_millis() as u64;
            self.0.lock().unwrap().push((key.to_string(), ms));
        }
        fn of(&self, key: &str) -> Vec<u64> {
            let log = self.0.lock().unwrap();
            log.iter()
                .filter(|(k, _)| k == key)
                .map(|(_, t)| *t)
                .collect()
        }
    }

    fn config() -> ControllerConfig {
        ControllerConfig {
            error_backoff_base: Duration::from_millis(100),
            error_backoff_cap: Duration::from_millis(400),
            error_backoff_jitter: 0.0,
            ..ControllerConfig::new("test", 2)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_requeue_comes_back_after_its_delay_and_await_change_does_not() {
        let (queue, shutdown, log) = (WorkQueue::new(), CancellationToken::new(), Log::default());
        let start = Instant::now();
        let task = {
            let log = log.clone();
            tokio::spawn(run(queue.clone(), config(), shutdown.clone(), move |key| {
                let log = log.clone();
                async move {
                    log.push(&key, start);
                    Ok::<_, Failed>(if key == "ticking" && log.of(&key).len() < 3 {
                        Action::requeue(Duration::from_secs(2))
                    } else {
                        Action::await_change()
                    })
                }
            }))
        };
        queue.add("ticking");
        queue.add("quiet");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(log.of("ticking"), vec![0, 2000, 4000]);
        assert_eq!(log.of("quiet"), vec![0]);
        queue.add("quiet");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(log.of("quiet"), vec![0, 60_000]);
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(
            queue.pop().await,
            None,
            "the queue closes with the controller"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn errors_back_off_per_key_and_a_success_forgets_the_failures() {
        let (queue, shutdown, log) = (WorkQueue::new(), CancellationToken::new(), Log::default());
        let start = Instant::now();
        let task = {
            let log = log.clone();
            tokio::spawn(run(queue.clone(), config(), shutdown.clone(), move |key| {
                let log = log.clone();
                async move {
                    log.push(&key, start);
                    let attempts = log.of(&key).len();
                    // "flaky" fails 5 times, succeeds, then (after a change) fails once more.
                    if key == "flaky" && (attempts <= 5 || attempts == 7) {
                        Err(Failed)
                    } else {
                        Ok(Action::await_change())
                    }
                }
            }))
        };
        queue.add("flaky");
        queue.add("fine");
        tokio::time::sleep(Duration::from_secs(10)).await;
        // 100, 200, 400, then capped at 400.
        assert_eq!(log.of("flaky"), vec![0, 100, 300, 700, 1100, 1500]);
        assert_eq!(
            log.of("fine"),
            vec![0],
            "one key's failures do not touch another"
        );
        queue.add("flaky");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            log.of("flaky"),
            vec![0, 100, 300, 700, 1100, 1500, 10_000, 10_100],
            "after a success the next failure starts from the base delay"
        );
        shutdown.cancel();
        task.await.unwrap();
    }
}
