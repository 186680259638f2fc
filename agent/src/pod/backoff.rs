//! The one retry backoff of the pod workers, used for image pulls and crash loops alike.
//!
//! Modelled on the kubelet's per-item backoff: each failure (a failed pull, a restart of an
//! exited container) [`RetryBackoff::step`]s the delay — `base`, `2·base`, … up to `cap` — and the
//! delay runs from an anchor ([`RetryBackoff::anchor`]: when the pull failed, when the container
//! exited). While [`RetryBackoff::remaining`] is `Some` the next attempt waits.

use std::time::Duration;

use skiff_api::wait::Backoff;
use tokio::time::Instant;

/// A growing delay between attempts, with the point in time it runs from.
#[derive(Clone, Debug)]
pub struct RetryBackoff {
    /// The exact doubling sequence (no jitter: users see the delay in status messages).
    sequence: Backoff,
    /// The delay currently imposed; `None` until the first step and after a reset.
    delay: Option<Duration>,
    /// When the current delay started to run.
    since: Option<Instant>,
}

impl RetryBackoff {
    /// A backoff stepping `base`, `2·base`, … capped at `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        RetryBackoff {
            sequence: Backoff::new(base, cap.max(base), 0.0),
            delay: None,
            since: None,
        }
    }

    /// Makes the next delay longer (the first step gives `base`) and returns it.
    pub fn step(&mut self) -> Duration {
        let delay = self.sequence.next_delay();
        self.delay = Some(delay);
        delay
    }

    /// Lets the current delay run from `at` (a failure or an exit).
    pub fn anchor(&mut self, at: Instant) {
        self.since = Some(at);
    }

    /// Records a failure at `at`: steps the delay and lets it run from `at`; returns the delay.
    pub fn fail_at(&mut self, at: Instant) -> Duration {
        self.anchor(at);
        self.step()
    }

    /// How long the next attempt must still wait at `now`; `None` when it may go ahead.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        let until = self.until()?;
        let left = until.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    /// When the current delay ends, if one is imposed.
    pub fn until(&self) -> Option<Instant> {
        Some(self.since? + self.delay?)
    }

    /// The delay currently imposed (what a `back-off 20s …` message reports).
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// How many steps were taken since the last reset.
    pub fn steps(&self) -> u32 {
        self.sequence.attempts()
    }

    /// Starts over: no delay, the next step gives `base` again (after a success or clean running).
    pub fn reset(&mut self) {
        self.sequence.reset();
        self.delay = None;
        self.since = None;
    }
}

/// Formats a duration the way Go (and so the kubelet) prints one: `500ms`, `10s`, `1.5s`, `5m0s`.
pub fn go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let total_secs = duration.as_secs();
    let frac_millis = duration.subsec_millis();
    let seconds = |secs: u64| {
        if frac_millis == 0 {
            format!("{secs}s")
        } else {
            let frac = format!("{frac_millis:03}");
            format!("{secs}.{}s", frac.trim_end_matches('0'))
        }
    };
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    let secs = total_secs % 60;
    if hours > 0 {
        format!("{hours}h{minutes}m{}", seconds(secs))
    } else if minutes > 0 {
        format!("{minutes}m{}", seconds(secs))
    } else {
        seconds(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn grows_doubling_to_the_cap() {
        let mut b = RetryBackoff::new(secs(10), secs(300));
        let seen: Vec<u64> = (0..8).map(|_| b.step().as_secs()).collect();
        assert_eq!(seen, vec![10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(b.steps(), 8);
        assert_eq!(b.delay(), Some(secs(300)));
    }

    #[test]
    fn remaining_runs_from_the_anchor_and_reset_starts_over() {
        let t0 = Instant::now();
        let mut b = RetryBackoff::new(secs(10), secs(300));
        assert_eq!(b.remaining(t0), None, "no delay before the first failure");
        assert_eq!(b.fail_at(t0), secs(10));
        assert_eq!(b.remaining(t0 + secs(4)), Some(secs(6)));
        assert_eq!(b.remaining(t0 + secs(10)), None);
        assert_eq!(b.fail_at(t0 + secs(10)), secs(20));
        assert_eq!(b.remaining(t0 + secs(15)), Some(secs(15)));
        // A later anchor (a new exit) moves the window without growing the delay.
        b.anchor(t0 + secs(100));
        assert_eq!(b.remaining(t0 + secs(110)), Some(secs(10)));
        b.reset();
        assert_eq!(b.remaining(t0 + secs(110)), None);
        assert_eq!(b.delay(), None);
        assert_eq!(b.step(), secs(10));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(secs(300)), "5m0s");
        assert_eq!(go_duration(secs(160)), "2m40s");
        assert_eq!(go_duration(secs(3600)), "1h0m0s");
    }
}
