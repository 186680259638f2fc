//! A closed-loop load generator: a fixed number of workers run operations `0..total` until
//! all are done, the time limit passes or too many fail.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::stats::Samples;

/// How much load to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadConfig {
    /// Operations to run, numbered `0..total`.
    pub total: usize,
    /// Operations in flight at once (one worker each).
    pub concurrency: usize,
    /// No operation starts after this much time; the run is then reported as cut short.
    pub time_limit: Duration,
    /// The run stops once this many operations have failed.
    pub max_errors: usize,
}

impl LoadConfig {
    /// `total` operations, `concurrency` at a time, at most `time_limit`, stop after 20 errors.
    pub fn new(total: usize, concurrency: usize, time_limit: Duration) -> Self {
        LoadConfig {
            total,
            concurrency: concurrency.max(1),
            time_limit,
            max_errors: 20,
        }
    }
}

/// What a load run produced.
#[derive(Debug)]
pub struct LoadOutcome<T> {
    /// Each completed operation's index, latency and result.
    pub completed: Vec<Completed<T>>,
    /// How many operations failed.
    pub error_count: usize,
    /// The first few error messages, for the report.
    pub first_errors: Vec<String>,
    /// From the first start to the last finish.
    pub elapsed: Duration,
    /// True when the time limit stopped the run before `total` operations.
    pub timed_out: bool,
}

/// One successful operation.
#[derive(Debug)]
pub struct Completed<T> {
    /// Its number in `0..total`.
    pub index: usize,
    /// When it started, relative to the start of the run.
    pub started: Duration,
    /// How long it took.
    pub latency: Duration,
    /// What it returned.
    pub value: T,
}

impl<T> LoadOutcome<T> {
    /// The latencies of every completed operation.
    pub fn latencies(&self) -> Samples {
        Samples::from_values(self.completed.iter().map(|c| c.latency).collect())
    }

    /// A one-line account of errors and a cut-short run, or None when all went well.
    pub fn problems(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.timed_out {
            parts.push(format!(
                "time limit reached after {} operations",
                self.completed.len()
            ));
        }
        if self.error_count > 0 {
            parts.push(format!(
                "{} operations failed (first: {})",
                self.error_count,
                self.first_errors.first().map_or("?", String::as_str)
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// How many error messages an outcome keeps.
const KEPT_ERRORS: usize = 5;

/// Runs `op(i)` for `i` in `0..config.total` on `config.concurrency` workers.
pub async fn run<F, Fut, T, E>(config: LoadConfig, op: F) -> LoadOutcome<T>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + config.time_limit;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.min(config.total.max(1)) {
        let (op, next, errors, stop) = (op.clone(), next.clone(), errors.clone(), stop.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            let mut messages = Vec::new();
            let mut timed_out = false;
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= deadline {
                    timed_out = true;
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= config.total {
                    break;
                }
                let began = Instant::now();
                match op(index).await {
                    Ok(value) => done.push(Completed {
                        index,
                        started: began - start,
                        latency: began.elapsed(),
                        value,
                    }),
                    Err(err) => {
                        if messages.len() < KEPT_ERRORS {
                            messages.push(format!("#{index}: {err}"));
                        }
                        if errors.fetch_add(1, Ordering::Relaxed) + 1 >= config.max_errors {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            (done, messages, timed_out)
        });
    }
    let mut outcome = LoadOutcome {
        completed: Vec::with_capacity(config.total),
        error_count: 0,
        first_errors: Vec::new(),
        elapsed: Duration::ZERO,
        timed_out: false,
    };
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((done, messages, timed_out)) => {
                outcome.completed.extend(done);
                outcome.first_errors.extend(messages);
                outcome.timed_out |= timed_out;
            }
            Err(err) => outcome.first_errors.push(format!("worker failed: {err}")),
        }
    }
    outcome.elapsed = start.elapsed();
    outcome.error_count = errors.load(Ordering::Relaxed);
    outcome.first_errors.truncate(KEPT_ERRORS);
    outcome.completed.sort_by_key(|c| c.index);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_every_operation_once_with_bounded_concurrency() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (flight, top) = (in_flight.clone(), peak.clone());
        let outcome = run(LoadConfig::new(50, 4, Duration::from_secs(30)), move |i| {
            let (flight, top) = (flight.clone(), top.clone());
            async move {
                let now = flight.fetch_add(1, Ordering::SeqCst) + 1;
                top.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(i * 2)
            }
        })
        .await;
        assert_eq!(outcome.completed.len(), 50);
        assert!(outcome.completed.iter().all(|c| c.value == c.index * 2));
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert_eq!(outcome.error_count, 0);
        assert!(!outcome.timed_out);
        assert!(outcome.problems().is_none());
        assert_eq!(outcome.latencies().len(), 50);
    }

    #[tokio::test]
    async fn stops_after_too_many_errors_and_at_the_time_limit() {
        let mut config = LoadConfig::new(1000, 2, Duration::from_secs(30));
        config.max_errors = 3;
        let outcome = run(config, |_| async { Err::<(), _>("boom") }).await;
        assert!(outcome.error_count >= 3 && outcome.error_count <= 4);
        assert!(outcome.problems().unwrap().contains("boom"));

        let outcome = run(
            LoadConfig::new(1000, 1, Duration::from_millis(50)),
            |_| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, String>(())
            },
        )
        .await;
        assert!(outcome.timed_out);
        assert!(outcome.completed.len() < 10);
    }
}
