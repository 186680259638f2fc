//! Polling with deadlines, jitter and exponential backoff.
//!
//! Everything that waits for a condition goes through here, so no caller sleeps and hopes:
//! [`poll`] retries a condition until it holds or a deadline passes, [`jitter`] spreads
//! retries of many clients apart, and [`Backoff`] grows the delay between reconnects so a
//! thousand agents do not reconnect to a restarted controlplane in the same second.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Why a wait ended without the condition holding.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed; `last` describes the last observation, for the error message.
    #[error("timed out after {timeout:?} waiting for the condition; last seen: {last}")]
    TimedOut {
        /// How long the caller waited.
        timeout: Duration,
        /// The last observation the condition reported.
        last: String,
    },
}

/// What a polled condition reports: done with a value, or not yet with a note on why.
#[derive(Debug)]
pub enum Poll<T> {
    /// The condition holds.
    Ready(T),
    /// Not yet; the note is kept for the timeout message.
    Pending(String),
}

/// Calls `condition` every `interval` until it is ready or `timeout` has passed.
///
/// The first check happens immediately. The interval is jittered by up to 10 % so that
/// many pollers started together drift apart.
pub async fn poll<T, F, Fut>(
    interval: Duration,
    timeout: Duration,
    mut condition: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match condition().await {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(note) => note,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError::TimedOut { timeout, last });
        }
        let pause = jitter(interval, 0.1).min(deadline - now);
        tokio::time::sleep(pause).await;
    }
}

/// Like [`poll`] for a condition that is a plain `bool`.
pub async fn poll_until<F, Fut>(
    interval: Duration,
    timeout: Duration,
    mut condition: F,
) -> Result<(), WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(interval, timeout, || {
        let fut = condition();
        async move {
            if fut.await {
                Poll::Ready(())
            } else {
                Poll::Pending("condition false".to_string())
            }
        }
    })
    .await
}

/// `duration` stretched by a random factor in `[1, 1 + max_factor)`.
pub fn jitter(duration: Duration, max_factor: f64) -> Duration {
    if max_factor <= 0.0 || duration.is_zero() {
        return duration;
    }
    let factor = 1.0 + rand::random::<f64>() * max_factor;
    duration.mul_f64(factor)
}

/// A periodic timer whose every period is stretched by a random factor in `[1, 1 + factor)`,
/// so loops started together (a fleet restarted at once) drift apart instead of staying in
/// step. The first tick is immediate; each next one is a jittered period after the previous
/// tick returned (a late tick delays the following ones rather than bunching them).
#[derive(Debug)]
pub struct JitteredInterval {
    /// The nominal period.
    period: Duration,
    /// The largest random stretch of one period.
    factor: f64,
    /// When the next tick is due.
    next: Instant,
}

/// A [`JitteredInterval`] of `period` stretched by up to `factor` (0.1: up to 10 % longer).
pub fn jittered_interval(period: Duration, factor: f64) -> JitteredInterval {
    JitteredInterval {
        period,
        factor,
        next: Instant::now(),
    }
}

impl JitteredInterval {
    /// Waits for the next tick and returns when it was due.
    pub async fn tick(&mut self) -> Instant {
        let due = self.next;
        tokio::time::sleep_until(due).await;
        self.next = Instant::now() + jitter(self.period, self.factor);
        due
    }

    /// Makes the next tick due a full (jittered) period from now.
    pub fn reset(&mut self) {
        self.next = Instant::now() + jitter(self.period, self.factor);
    }
}

/// Exponential backoff with jitter: `base`, `2·base`, `4·base`, … capped at `cap`.
///
/// Used for reconnects (with jitter, so clients spread out) and by the agent for image pull
/// and crash-loop delays (where the exact sequence is reported to users, without jitter).
#[derive(Clone, Debug)]
pub struct Backoff {
    /// The first delay.
    base: Duration,
    /// The largest delay.
    cap: Duration,
    /// Random stretch factor applied to each delay; 0 for an exact sequence.
    jitter: f64,
    /// How many delays have been handed out since the last reset.
    attempts: u32,
}

impl Backoff {
    /// A backoff from `base` doubling to `cap`, each delay stretched by up to `jitter`.
    pub fn new(base: Duration, cap: Duration, jitter: f64) -> Self {
        Backoff {
            base,
            cap,
            jitter,
            attempts: 0,
        }
    }

    /// The delay for the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let exact = self.peek();
        self.attempts = self.attempts.saturating_add(1);
        jitter(exact, self.jitter)
    }

    /// The exact (un-jittered) delay the next call to [`Backoff::next_delay`] is based on.
    pub fn peek(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempts.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over from `base`, after a success.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300), 0.0);
        let seen: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seen, vec![10, 20, 40, 80, 160, 300, 300, 300]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_its_factor() {
        let base = Duration::from_millis(1000);
        for _ in 0..200 {
            let d = jitter(base, 0.5);
            assert!(d >= base && d < Duration::from_millis(1500), "{d:?}");
        }
        assert_eq!(jitter(base, 0.0), base);
    }

    #[tokio::test(start_paused = true)]
    async fn a_jittered_interval_ticks_at_once_then_within_its_stretch() {
        let period = Duration::from_secs(10);
        let mut ticks = jittered_interval(period, 0.2);
        let start = Instant::now();
        ticks.tick().await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first tick is immediate"
        );
        let mut gaps = std::collections::BTreeSet::new();
        let mut last = Instant::now();
        for _ in 0..30 {
            ticks.tick().await;
            let gap = last.elapsed();
            last = Instant::now();
            assert!(gap >= period && gap < Duration::from_secs(12), "{gap:?}");
            gaps.insert(gap);
        }
        assert!(gaps.len() > 1, "periods were not jittered: {gaps:?}");
    }

    #[tokio::test]
    async fn poll_returns_the_value_once_ready() {
        let mut calls = 0;
        let value = poll(Duration::from_millis(5), Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move {
                if n >= 3 {
                    Poll::Ready(n)
                } else {
                    Poll::Pending(format!("n={n}"))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn poll_times_out_with_the_last_observation() {
        let err = poll::<(), _, _>(
            Duration::from_millis(5),
            Duration::from_millis(30),
            || async { Poll::Pending("still 2 of 3".to_string()) },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("still 2 of 3"), "{err}");
    }
}
