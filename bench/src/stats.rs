//! Latency samples and the figures drawn from them: count, rate, p50, p99, max.

use std::time::Duration;

/// The latencies of one measured series, in the order they were taken.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// One entry per completed operation.
    values: Vec<Duration>,
}

impl Samples {
    /// An empty series with room for `capacity` samples.
    pub fn with_capacity(capacity: usize) -> Self {
        Samples {
            values: Vec::with_capacity(capacity),
        }
    }

    /// A series holding `values`.
    pub fn from_values(values: Vec<Duration>) -> Self {
        Samples { values }
    }

    /// Records one latency.
    pub fn push(&mut self, value: Duration) {
        self.values.push(value);
    }

    /// How many samples were taken.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The `q`-quantile (0.0 ..= 1.0) by the nearest-rank method; zero for an empty series.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        nearest_rank(&sorted, q)
    }

    /// The summary figures of the series, with `elapsed` the wall time it took.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        let seconds = elapsed.as_secs_f64();
        Summary {
            count: sorted.len(),
            elapsed,
            per_second: if seconds > 0.0 {
                sorted.len() as f64 / seconds
            } else {
                0.0
            },
            p50: nearest_rank(&sorted, 0.50),
            p99: nearest_rank(&sorted, 0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// The nearest-rank `q`-quantile of an already sorted slice.
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let q = q.clamp(0.0, 1.0);
    // Nearest rank: the smallest value with at least q of the samples at or below it.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures printed for one series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// Completed operations.
    pub count: usize,
    /// Wall time of the whole series.
    pub elapsed: Duration,
    /// Completed operations per second of wall time.
    pub per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Slowest operation.
    pub max: Duration,
}

/// A duration in milliseconds with three decimals, for tables.
pub fn millis(value: Duration) -> f64 {
    value.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_quantiles() {
        let samples = Samples::from_values((1..=100).rev().map(ms).collect());
        assert_eq!(samples.quantile(0.5), ms(50));
        assert_eq!(samples.quantile(0.99), ms(99));
        assert_eq!(samples.quantile(1.0), ms(100));
        assert_eq!(samples.quantile(0.0), ms(1));
        let one = Samples::from_values(vec![ms(7)]);
        assert_eq!(one.quantile(0.5), ms(7));
        assert_eq!(one.quantile(0.99), ms(7));
    }

    #[test]
    fn summary_rates_and_empty_series() {
        let mut samples = Samples::with_capacity(4);
        for n in [4, 1, 3, 2] {
            samples.push(ms(n));
        }
        let summary = samples.summary(Duration::from_secs(2));
        assert_eq!(summary.count, 4);
        assert!((summary.per_second - 2.0).abs() < 1e-9);
        assert_eq!(summary.p50, ms(2));
        assert_eq!(summary.p99, ms(4));
        assert_eq!(summary.max, ms(4));

        let empty = Samples::default().summary(Duration::ZERO);
        assert_eq!(empty.count, 0);
        assert_eq!(empty.per_second, 0.0);
        assert_eq!(empty.p99, Duration::ZERO);
    }
}
