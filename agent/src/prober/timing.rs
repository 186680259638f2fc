//! A probe's schedule and thresholds as Durations and counts, with Kubernetes' defaults.

use std::time::Duration;

use skiff_api::types::Probe;

/// Seconds before the first attempt when `initialDelaySeconds` is unset.
pub const DEFAULT_INITIAL_DELAY_SECONDS: i32 = 0;
/// Seconds between attempts when `periodSeconds` is unset.
pub const DEFAULT_PERIOD_SECONDS: i32 = 10;
/// Seconds an attempt may take when `timeoutSeconds` is unset.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
/// Successes in a row to become healthy when `successThreshold` is unset.
pub const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
/// Failures in a row to become unhealthy when `failureThreshold` is unset.
pub const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

/// When and how often a worker probes, and how many results in a row flip it.
///
/// The API carries whole seconds; this carries Durations so tests (and only tests, in practice)
/// can run workers with sub-second periods through [`super::ProbeManager::ensure_with_timing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    /// Wait after the container started before the first attempt.
    pub initial_delay: Duration,
    /// Time between the starts of two attempts.
    pub period: Duration,
    /// How long one attempt may take before it counts as a failure.
    pub timeout: Duration,
    /// Successes in a row that make an unhealthy probe healthy (at least 1).
    pub success_threshold: u32,
    /// Failures in a row that make a healthy probe unhealthy (at least 1).
    pub failure_threshold: u32,
}

impl ProbeTiming {
    /// The timing of `probe`: unset fields take Kubernetes' defaults (0, 10, 1, 1, 3); values
    /// below the allowed minimum (validation rejects them) are raised to it.
    pub fn from_probe(probe: &Probe) -> Self {
        /// Seconds as a Duration, raised to `min`.
        fn seconds(value: Option<i32>, default: i32, min: i32) -> Duration {
            Duration::from_secs(u64::try_from(value.unwrap_or(default).max(min)).unwrap_or(0))
        }
        /// A threshold, at least 1.
        fn count(value: Option<i32>, default: i32) -> u32 {
            u32::try_from(value.unwrap_or(default).max(1)).unwrap_or(1)
        }
        ProbeTiming {
            initial_delay: seconds(
                probe.initial_delay_seconds,
                DEFAULT_INITIAL_DELAY_SECONDS,
                0,
            ),
            period: seconds(probe.period_seconds, DEFAULT_PERIOD_SECONDS, 1),
            timeout: seconds(probe.timeout_seconds, DEFAULT_TIMEOUT_SECONDS, 1),
            success_threshold: count(probe.success_threshold, DEFAULT_SUCCESS_THRESHOLD),
            failure_threshold: count(probe.failure_threshold, DEFAULT_FAILURE_THRESHOLD),
        }
    }

    /// This timing with zero durations raised to 1 ms and zero thresholds to 1, so a worker never
    /// spins.
    pub(crate) fn sane(self) -> Self {
        let floor = Duration::from_millis(1);
        ProbeTiming {
            initial_delay: self.initial_delay,
            period: self.period.max(floor),
            timeout: self.timeout.max(floor),
            success_threshold: self.success_threshold.max(1),
            failure_threshold: self.failure_threshold.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_take_kubernetes_defaults() {
        let t = ProbeTiming::from_probe(&Probe::default());
        assert_eq!(t.initial_delay, Duration::ZERO);
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!(t.success_threshold, 1);
        assert_eq!(t.failure_threshold, 3);
    }

    #[test]
    fn set_fields_are_used_and_invalid_ones_raised() {
        let probe = Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(0),
            timeout_seconds: Some(-2),
            success_threshold: Some(2),
            failure_threshold: Some(0),
            ..Probe::default()
        };
        let t = ProbeTiming::from_probe(&probe);
        assert_eq!(t.initial_delay, Duration::from_secs(5));
        assert_eq!(t.period, Duration::from_secs(1));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!(t.success_threshold, 2);
        assert_eq!(t.failure_threshold, 1);
    }
}
