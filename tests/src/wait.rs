//! Waiting for a condition with a deadline instead of sleeping and hoping.
//!
//! ```no_run
//! # async fn demo() -> Result<(), skiff_e2e::wait::TimedOut> {
//! use std::time::Duration;
//! // Option: None means "not yet".
//! let n = skiff_e2e::wait::until(Duration::from_secs(5), Duration::from_millis(100), || async {
//!     Some(42)
//! })
//! .await?;
//! // Result: Err(state) means "not yet", and the last state is in the timeout message.
//! let phase = skiff_e2e::wait::until(Duration::from_secs(5), Duration::from_millis(100), || async {
//!     let phase = "Pending"; // e.g. read from the API
//!     if phase == "Running" { Ok(phase) } else { Err(format!("phase {phase}")) }
//! })
//! .await;
//! # let _ = (n, phase); Ok(()) }
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// The least time the final attempt gets, even when the deadline has (almost) passed.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(100);

/// The condition did not hold before the deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "condition not met within {waited:?} ({attempts} attempts); last observed: {}",
    last_observed.as_deref().unwrap_or("nothing (every check said \"not yet\")")
)]
pub struct TimedOut {
    /// How long was waited in total.
    pub waited: Duration,
    /// How many times the condition was checked.
    pub attempts: u32,
    /// The `Debug` rendering of the last `Err` a check returned, if any.
    pub last_observed: Option<String>,
}

/// What a check returns: done with a value, or not yet (optionally with what it saw).
pub trait Check {
    /// The value [`until`] returns once the condition holds.
    type Output;
    /// `Ok(value)` when done; `Err(observed state)` when not yet.
    fn into_outcome(self) -> Result<Self::Output, Option<String>>;
}

impl<T> Check for Option<T> {
    type Output = T;
    fn into_outcome(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Debug> Check for Result<T, E> {
    type Output = T;
    fn into_outcome(self) -> Result<T, Option<String>> {
        self.map_err(|observed| Some(format!("{observed:?}")))
    }
}

impl Check for bool {
    type Output = ();
    fn into_outcome(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

/// Run `check` every `interval` until it reports done (`Some`, `Ok`, `true`) and return its
/// value, or fail with [`TimedOut`] after `timeout`, carrying the last state an `Err` reported.
/// A check that hangs is cut off at the deadline.
pub async fn until<F, Fut, C>(
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<C::Output, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
    C: Check,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut attempts = 0;
    let mut last_observed = None;
    loop {
        attempts += 1;
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_ATTEMPT_TIME);
        match tokio::time::timeout(budget, check()).await {
            Ok(outcome) => match outcome.into_outcome() {
                Ok(value) => return Ok(value),
                Err(Some(observed)) => last_observed = Some(observed),
                Err(None) => {}
            },
            Err(_) => {
                last_observed = Some(format!("the check itself did not finish within {budget:?}"))
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut {
                waited: now - start,
                attempts,
                last_observed,
            });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

/// [`until`] for code without an async runtime: blocks the thread between checks.
pub fn until_blocking<F, C>(
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<C::Output, TimedOut>
where
    F: FnMut() -> C,
    C: Check,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut attempts = 0;
    let mut last_observed = None;
    loop {
        attempts += 1;
        match check().into_outcome() {
            Ok(value) => return Ok(value),
            Err(Some(observed)) => last_observed = Some(observed),
            Err(None) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut {
                waited: now - start,
                attempts,
                last_observed,
            });
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let value = until(Duration::from_secs(5), MS, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n >= 3).then_some(n * 10)
        })
        .await
        .unwrap();
        assert_eq!(value, 30);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn timeout_carries_the_last_observed_state() {
        let calls = AtomicU32::new(0);
        let err = until(Duration::from_millis(50), MS, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(format!("phase Pending #{n}"))
        })
        .await
        .unwrap_err();
        let last = calls.load(Ordering::SeqCst) - 1;
        assert_eq!(
            err.last_observed.as_deref(),
            Some(format!("\"phase Pending #{last}\"").as_str())
        );
        assert_eq!(err.attempts, last + 1);
        assert!(err.waited >= Duration::from_millis(50));
        assert!(err.to_string().contains("phase Pending"), "{err}");
    }

    #[tokio::test]
    async fn bool_and_option_checks_time_out_without_state() {
        let err = until(Duration::from_millis(20), MS, || async { false })
            .await
            .unwrap_err();
        assert_eq!(err.last_observed, None);
        assert!(err.attempts >= 2);
        let err = until(Duration::from_millis(20), MS, || async { None::<u8> })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not yet"), "{err}");
    }

    #[tokio::test]
    async fn a_hanging_check_is_cut_off_at_the_deadline() {
        let started = Instant::now();
        let err = until(Duration::from_millis(100), MS, || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            true
        })
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.last_observed.unwrap().contains("did not finish"));
    }

    #[test]
    fn blocking_variant_waits_and_times_out() {
        let mut n = 0;
        assert_eq!(
            until_blocking(Duration::from_secs(5), MS, || {
                n += 1;
                (n == 2).then_some(n)
            }),
            Ok(2)
        );
        let err = until_blocking(Duration::from_millis(20), MS, || Err::<(), _>(7)).unwrap_err();
        assert_eq!(err.last_observed.as_deref(), Some("7"));
    }
}
