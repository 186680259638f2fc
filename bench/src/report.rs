//! The printed result of one benchmark: parameters, measured series, plain figures, the
//! ratios against the baseline of the same run, notes and failures.

use std::fmt::Write as _;

use crate::stats::{Summary, millis};

/// Everything one benchmark binary prints at the end, collected while it runs.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// What was measured, e.g. `apiserver: create-then-get through the HTTP API`.
    title: String,
    /// The knobs of this run (pod counts, concurrency, image …), in insertion order.
    params: Vec<(String, String)>,
    /// Latency series with count, rate and percentiles.
    series: Vec<(String, Summary)>,
    /// Figures that are a single value (RSS, a time to all-running …).
    figures: Vec<(String, String)>,
    /// Ratios against the baseline, with how to read each.
    ratios: Vec<RatioRow>,
    /// Remarks that help reading the numbers (time limits hit, skipped parts …).
    notes: Vec<String>,
    /// Parts that failed, with the reason; any entry makes the run fail.
    failures: Vec<String>,
}

/// One ratio line.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioRow {
    /// What is divided by what, e.g. `embedded ops/s ÷ raw etcd ops/s`.
    pub name: String,
    /// The quotient; None when the baseline was zero or missing.
    pub value: Option<f64>,
    /// How to read it, e.g. `below 1: slower than raw etcd`.
    pub reading: String,
}

impl Report {
    /// An empty report titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Report {
            title: title.into(),
            ..Report::default()
        }
    }

    /// Records a parameter of the run.
    pub fn param(&mut self, name: impl Into<String>, value: impl ToString) {
        self.params.push((name.into(), value.to_string()));
    }

    /// Records a measured latency series.
    pub fn series(&mut self, name: impl Into<String>, summary: Summary) {
        self.series.push((name.into(), summary));
    }

    /// Records a single-valued figure, already formatted with its unit.
    pub fn figure(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.figures.push((name.into(), value.into()));
    }

    /// Records `ours / baseline` under `name`, with a hint on how to read it.
    pub fn ratio(
        &mut self,
        name: impl Into<String>,
        ours: f64,
        baseline: f64,
        reading: impl Into<String>,
    ) {
        let value = (baseline > 0.0 && ours.is_finite()).then(|| ours / baseline);
        self.ratios.push(RatioRow {
            name: name.into(),
            value,
            reading: reading.into(),
        });
    }

    /// Records a remark printed under the figures.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Records that part `what` failed because of `error`; the run then exits non-zero.
    pub fn failure(&mut self, what: impl Into<String>, error: impl std::fmt::Display) {
        self.failures.push(format!("{}: {error}", what.into()));
    }

    /// True when no part failed.
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty()
    }

    /// The ratios recorded so far.
    pub fn ratios(&self) -> &[RatioRow] {
        &self.ratios
    }

    /// The report as aligned text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} ==", self.title);
        for (name, value) in &self.params {
            let _ = writeln!(out, "  {name}: {value}");
        }
        if !self.series.is_empty() {
            let width = column_width(self.series.iter().map(|(n, _)| n.as_str()));
            let _ = writeln!(
                out,
                "\n  {:<width$}  {:>7}  {:>9}  {:>10}  {:>9}  {:>9}  {:>9}",
                "series", "count", "elapsed", "per sec", "p50 ms", "p99 ms", "max ms"
            );
            for (name, s) in &self.series {
                let _ = writeln!(
                    out,
                    "  {:<width$}  {:>7}  {:>8.2}s  {:>10.1}  {:>9.2}  {:>9.2}  {:>9.2}",
                    name,
                    s.count,
                    s.elapsed.as_secs_f64(),
                    s.per_second,
                    millis(s.p50),
                    millis(s.p99),
                    millis(s.max)
                );
            }
        }
        if !self.figures.is_empty() {
            let width = column_width(self.figures.iter().map(|(n, _)| n.as_str()));
            let _ = writeln!(out);
            for (name, value) in &self.figures {
                let _ = writeln!(out, "  {name:<width$}  {value}");
            }
        }
        if !self.ratios.is_empty() {
            let width = column_width(self.ratios.iter().map(|r| r.name.as_str()));
            let _ = writeln!(out, "\n  ratios (same run):");
            for row in &self.ratios {
                let value = row
                    .value
                    .map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}"));
                let _ = writeln!(
                    out,
                    "  {:<width$}  {:>8}   {}",
                    row.name, value, row.reading
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for note in &self.notes {
                let _ = writeln!(out, "  note: {note}");
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out);
            for failure in &self.failures {
                let _ = writeln!(out, "  FAILED {failure}");
            }
        }
        out
    }
}

/// The width of the widest name, for left-aligned columns.
fn column_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn renders_every_part_and_tracks_failures() {
        let mut report = Report::new("demo");
        report.param("pods", 10);
        report.series(
            "raw",
            Summary {
                count: 10,
                elapsed: Duration::from_secs(1),
                per_second: 10.0,
                p50: Duration::from_millis(3),
                p99: Duration::from_millis(9),
                max: Duration::from_millis(9),
            },
        );
        report.figure("rss idle", "12.0 MiB");
        report.ratio("ours / raw", 3.0, 2.0, "above 1: slower");
        report.ratio("ours / nothing", 3.0, 0.0, "no baseline");
        report.note("quick run");
        assert!(report.succeeded());
        let text = report.render();
        for needle in [
            "== demo ==",
            "pods: 10",
            "raw",
            "3.00",
            "9.00",
            "rss idle",
            "12.0 MiB",
            "1.50",
            "n/a",
            "note: quick run",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert_eq!(report.ratios()[0].value, Some(1.5));
        report.failure("etcd", "did not start");
        assert!(!report.succeeded());
        assert!(report.render().contains("FAILED etcd: did not start"));
    }
}
