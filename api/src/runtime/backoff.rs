//! Jittered exponential backoff, and the stream wrapper that applies it after every error.
//!
//! Delays double from `base` to `cap`; each one is then shortened by a random share of up to
//! `jitter` (never below `base`), so every delay lies in `[base, cap]` and a fleet of clients
//! failing together spreads out even once all of them are at the cap. [`ResettingBackoff`]
//! starts over from `base` once the source has behaved for `reset_after` since the last wait.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;

/// Exponential backoff whose delays are jittered downwards and stay within `[base, cap]`.
#[derive(Clone, Debug)]
pub struct JitteredBackoff {
    /// The first (and smallest) delay.
    base: Duration,
    /// The largest delay.
    cap: Duration,
    /// Largest share (0 to 1) by which one delay is shortened at random.
    jitter: f64,
    /// Delays handed out since the last reset.
    attempts: u32,
}

impl JitteredBackoff {
    /// Delays from `base` doubling to `cap`, each shortened by up to `jitter` (clamped to 0..=1).
    pub fn new(base: Duration, cap: Duration, jitter: f64) -> Self {
        JitteredBackoff {
            base,
            cap: cap.max(base),
            jitter: jitter.clamp(0.0, 1.0),
            attempts: 0,
        }
    }

    /// The un-jittered delay the next call to [`JitteredBackoff::next_delay`] starts from.
    pub fn peek(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempts.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay: `peek()` shortened by a random share of up to `jitter`, at least `base`.
    pub fn next_delay(&mut self) -> Duration {
        let exact = self.peek();
        self.attempts = self.attempts.saturating_add(1);
        let cut = exact.mul_f64(self.jitter * rand::random::<f64>());
        exact.saturating_sub(cut).max(self.base)
    }

    /// Starts over from `base`.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// A [`JitteredBackoff`] that starts over once `reset_after` has passed without a failure.
#[derive(Clone, Debug)]
pub struct ResettingBackoff {
    /// The underlying delays.
    backoff: JitteredBackoff,
    /// How long things must go well before the delays start over.
    reset_after: Duration,
    /// When the last wait ended (or the backoff was created): the start of the healthy period.
    healthy_since: Instant,
}

impl ResettingBackoff {
    /// `backoff`, reset after `reset_after` of success.
    pub fn new(backoff: JitteredBackoff, reset_after: Duration) -> Self {
        ResettingBackoff {
            backoff,
            reset_after,
            healthy_since: Instant::now(),
        }
    }

    /// The delay after a failure now; starts over first when the last one is long past.
    pub fn next_delay(&mut self) -> Duration {
        if self.healthy_since.elapsed() >= self.reset_after {
            self.backoff.reset();
        }
        self.backoff.next_delay()
    }

    /// Marks the end of a wait: the healthy period starts now.
    pub fn waited(&mut self) {
        self.healthy_since = Instant::now();
    }

    /// The un-jittered next delay if a failure happened now.
    pub fn peek(&self) -> Duration {
        if self.healthy_since.elapsed() >= self.reset_after {
            self.backoff.base
        } else {
            self.backoff.peek()
        }
    }
}

/// Passes `inner`'s items on; after each error, waits the backoff's next delay before
/// polling `inner` again (the error itself is handed on at once).
pub fn with_backoff<S, T, E>(
    inner: S,
    backoff: ResettingBackoff,
) -> impl Stream<Item = Result<T, E>> + Send
where
    S: Stream<Item = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let inner = inner.boxed();
    futures::stream::unfold(
        (inner, backoff, None::<Duration>),
        |(mut inner, mut backoff, pending)| async move {
            if let Some(delay) = pending {
                tokio::time::sleep(delay).await;
                backoff.waited();
            }
            let item = inner.next().await?;
            let pending = item.is_err().then(|| backoff.next_delay());
            Some((item, (inner, backoff, pending)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_base_and_cap_and_jitter_stays_within_its_share() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_millis(1600);
        for _ in 0..50 {
            let mut b = JitteredBackoff::new(base, cap, 0.5);
            for _ in 0..10 {
                let exact = b.peek();
                let d = b.next_delay();
                assert!(d >= base && d <= cap, "{d:?} outside [{base:?}, {cap:?}]");
                assert!(d <= exact, "{d:?} above its exact delay {exact:?}");
                assert!(
                    d >= exact.mul_f64(0.5).max(base),
                    "{d:?} shortened by more than half of {exact:?}"
                );
            }
        }
        let mut exact = JitteredBackoff::new(base, cap, 0.0);
        let seen: Vec<u64> = (0..7)
            .map(|_| exact.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(seen, vec![100, 200, 400, 800, 1600, 1600, 1600]);
        exact.reset();
        assert_eq!(exact.next_delay(), base);
    }

    #[test]
    fn at_the_cap_delays_still_spread_out() {
        let mut b = JitteredBackoff::new(Duration::from_millis(10), Duration::from_secs(1), 0.5);
        for _ in 0..10 {
            b.next_delay();
        }
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| b.next_delay()).collect();
        assert!(
            delays.len() > 1,
            "every capped delay was the same: {delays:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_backoff_starts_over_after_a_period_of_success() {
        let base = Duration::from_millis(100);
        let mut b = ResettingBackoff::new(
            JitteredBackoff::new(base, Duration::from_secs(10), 0.0),
            Duration::from_secs(5),
        );
        assert_eq!(b.next_delay(), base);
        b.waited();
        assert_eq!(b.next_delay(), base * 2, "a quick second failure doubles");
        b.waited();
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(b.next_delay(), base * 4, "4 s of success is not enough");
        b.waited();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(b.peek(), base);
        assert_eq!(b.next_delay(), base, "after 6 s of success it starts over");
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_waits_after_each_error_only() {
        let items: Vec<Result<u32, &str>> = vec![Ok(1), Err("a"), Err("b"), Ok(2), Ok(3)];
        let backoff = ResettingBackoff::new(
            JitteredBackoff::new(Duration::from_secs(1), Duration::from_secs(60), 0.0),
            Duration::from_secs(600),
        );
        let start = Instant::now();
        let mut stream = Box::pin(with_backoff(futures::stream::iter(items), backoff));
        let mut seen = Vec::new();
        while let Some(item) = stream.next().await {
            seen.push((item, start.elapsed().as_secs()));
        }
        assert_eq!(
            seen,
            vec![
                (Ok(1), 0),
                (Err("a"), 0),
                (Err("b"), 1),
                (Ok(2), 3),
                (Ok(3), 3)
            ]
        );
    }
}
