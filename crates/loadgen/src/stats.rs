//! Recorded latencies and errors, exact percentiles, and the report (table or JSON).
//!
//! Every measured latency is kept and sorted at the end: exact percentiles cost a few bytes per
//! request, which is nothing next to what a run can send, and leave no bucketing error to explain.

use crate::mix::Op;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Which pages of a list walk a latency belongs to (pages counted from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DepthBand {
    /// The first page.
    First,
    /// Pages 2 to 10.
    To10,
    /// Pages 11 to 100.
    To100,
    /// Page 101 and beyond.
    Beyond100,
}

impl DepthBand {
    /// The band of the page at `depth` (0 for the first page).
    pub fn of(depth: u32) -> Self {
        match depth {
            0 => Self::First,
            1..=9 => Self::To10,
            10..=99 => Self::To100,
            _ => Self::Beyond100,
        }
    }

    /// How the band is named in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::First => "page 1",
            Self::To10 => "pages 2-10",
            Self::To100 => "pages 11-100",
            Self::Beyond100 => "pages 101+",
        }
    }
}

/// What a measured request is counted under: its operation and, for list walks, its depth band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// The operation.
    pub op: Op,
    /// The depth band, for list requests of a run that walks pages.
    pub band: Option<DepthBand>,
}

/// Latencies and errors of one label.
#[derive(Debug, Default, Clone)]
pub struct Bucket {
    /// Latencies of the successful requests, in nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Failed requests by gRPC status code name.
    pub errors: BTreeMap<&'static str, u64>,
}

/// What one worker measured; merged into one at the end.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Everything measured, by label.
    pub buckets: BTreeMap<Label, Bucket>,
    /// When the last measured request finished.
    pub last_done: Option<Instant>,
}

impl Recorder {
    /// Records a successful request.
    pub fn ok(&mut self, label: Label, latency: Duration, done: Instant) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.buckets.entry(label).or_default().latencies_ns.push(ns);
        self.finished(done);
    }

    /// Records a failed request.
    pub fn error(&mut self, label: Label, code: &'static str, done: Instant) {
        *self
            .buckets
            .entry(label)
            .or_default()
            .errors
            .entry(code)
            .or_default() += 1;
        self.finished(done);
    }

    fn finished(&mut self, done: Instant) {
        self.last_done = Some(self.last_done.map_or(done, |last| last.max(done)));
    }

    /// Adds another worker's measurements to these.
    pub fn merge(&mut self, other: Recorder) {
        for (label, bucket) in other.buckets {
            let mine = self.buckets.entry(label).or_default();
            mine.latencies_ns.extend(bucket.latencies_ns);
            for (code, n) in bucket.errors {
                *mine.errors.entry(code).or_default() += n;
            }
        }
        if let Some(done) = other.last_done {
            self.finished(done);
        }
    }
}

/// The exact percentile of sorted values by the nearest-rank method: the smallest value with at
/// least `per_mille`/1000 of the values at or below it (500 is the median, 999 is p99.9).
/// Integer arithmetic, so that p99.9 of 1000 values is the 999th and not the 1000th.
pub fn percentile(sorted: &[u64], per_mille: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (per_mille * n).div_ceil(1000).clamp(1, n);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// A latency distribution, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// How many values.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Arithmetic mean, rounded down.
    pub mean: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// Sorts `values` and summarizes them; `None` when empty.
pub fn summarize(values: &mut [u64]) -> Option<Latency> {
    values.sort_unstable();
    let count = values.len() as u64;
    let sum: u128 = values.iter().map(|v| u128::from(*v)).sum();
    Some(Latency {
        count,
        min: *values.first()?,
        mean: u64::try_from(sum / u128::from(count.max(1))).unwrap_or(u64::MAX),
        p50: percentile(values, 500)?,
        p90: percentile(values, 900)?,
        p99: percentile(values, 990)?,
        p999: percentile(values, 999)?,
        max: *values.last()?,
    })
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `access`, `list pages 2-10`, `total`, ...
    pub name: String,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests by status code.
    pub errors: BTreeMap<String, u64>,
    /// Successful requests per second of the measured window.
    pub throughput: f64,
    /// Latencies of the successful requests.
    pub latency: Option<Latency>,
}

impl Row {
    fn build(name: String, buckets: &[&Bucket], window: Duration) -> Self {
        let mut latencies: Vec<u64> = buckets
            .iter()
            .flat_map(|b| b.latencies_ns.iter().copied())
            .collect();
        let mut errors = BTreeMap::new();
        for bucket in buckets {
            for (code, n) in &bucket.errors {
                *errors.entry((*code).to_owned()).or_default() += n;
            }
        }
        let ok = latencies.len() as u64;
        let secs = window.as_secs_f64();
        Self {
            name,
            ok,
            errors,
            throughput: if secs > 0.0 { ok as f64 / secs } else { 0.0 },
            latency: summarize(&mut latencies),
        }
    }

    /// Failed requests of any code.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// How the run was set up, for the report's header.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Free text from `--label`.
    pub label: Option<String>,
    /// The target URL.
    pub target: String,
    /// The mix, e.g. `access=90,create=10`.
    pub mix: String,
    /// Workers.
    pub concurrency: u32,
    /// HTTP/2 connections the workers share.
    pub connections: u32,
    /// The warm-up, excluded from every figure.
    pub warmup: Duration,
    /// Deepest page a list walk follows (0: first page only).
    pub list_depth: u32,
    /// Page size of list requests.
    pub page_size: u32,
}

/// A finished run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The setup.
    pub info: RunInfo,
    /// From the end of the warm-up to the last measured request's end.
    pub window: Duration,
    /// One row per operation, then one per list depth band (when walking), then the total.
    pub rows: Vec<Row>,
    /// CPU seconds the load generator itself used during the window, when known.
    pub client_cpu_s: Option<f64>,
}

impl Report {
    /// Builds the report from everything the workers measured over `window`.
    pub fn new(
        info: RunInfo,
        recorder: &Recorder,
        window: Duration,
        client_cpu_s: Option<f64>,
    ) -> Self {
        let mut rows = Vec::new();
        for op in Op::ALL {
            let of_op: Vec<&Bucket> = recorder
                .buckets
                .iter()
                .filter(|(label, _)| label.op == op)
                .map(|(_, b)| b)
                .collect();
            if !of_op.is_empty() {
                rows.push(Row::build(op.name().to_owned(), &of_op, window));
            }
        }
        let ops = rows.len();
        for (label, bucket) in &recorder.buckets {
            if let Some(band) = label.band {
                rows.push(Row::build(
                    format!("{} {}", label.op, band.name()),
                    &[bucket],
                    window,
                ));
            }
        }
        if ops != 1 {
            let all: Vec<&Bucket> = recorder.buckets.values().collect();
            rows.push(Row::build("total".to_owned(), &all, window));
        }
        Self {
            info,
            window,
            rows,
            client_cpu_s,
        }
    }

    /// The row of every request together.
    pub fn total(&self) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.name == "total")
            .or_else(|| self.rows.first())
    }

    /// Failed requests over all measured requests (0 when none were measured).
    pub fn error_rate(&self) -> f64 {
        self.total().map_or(0.0, |t| {
            let errors = t.error_count();
            let all = t.ok + errors;
            if all == 0 {
                0.0
            } else {
                errors as f64 / all as f64
            }
        })
    }

    /// The report as JSON: durations in seconds, latencies in milliseconds.
    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self.rows.iter().map(row_json).collect();
        let total = self.total().map(row_json);
        serde_json::json!({
            "label": self.info.label,
            "target": self.info.target,
            "mix": self.info.mix,
            "concurrency": self.info.concurrency,
            "connections": self.info.connections,
            "warmup_s": self.info.warmup.as_secs_f64(),
            "window_s": round(self.window.as_secs_f64(), 6),
            "list_depth": self.info.list_depth,
            "page_size": self.info.page_size,
            "client_cpu_s": self.client_cpu_s.map(|s| round(s, 3)),
            "total": total,
            "ops": rows,
        })
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let i = &self.info;
        let mut out = String::new();
        if let Some(label) = &i.label {
            let _ = writeln!(out, "{label}");
        }
        let _ = writeln!(
            out,
            "{} against {}: {} clients over {} connection{}, {:.2} s measured after {:.2} s warm-up{}",
            i.mix,
            i.target,
            i.concurrency,
            i.connections,
            if i.connections == 1 { "" } else { "s" },
            self.window.as_secs_f64(),
            i.warmup.as_secs_f64(),
            if i.list_depth > 0 {
                format!(", list walks up to {} pages deep", i.list_depth + 1)
            } else {
                String::new()
            },
        );
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "op", "ok", "ok/s", "p50", "p90", "p99", "p99.9", "max", "errors"
        );
        for row in &self.rows {
            let l = row.latency;
            let cell = |f: fn(&Latency) -> u64| l.as_ref().map_or("-".to_owned(), |l| ms(f(l)));
            let _ = writeln!(
                out,
                "{:<20} {:>10} {:>11.1} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
                row.name,
                row.ok,
                row.throughput,
                cell(|l| l.p50),
                cell(|l| l.p90),
                cell(|l| l.p99),
                cell(|l| l.p999),
                cell(|l| l.max),
                row.error_count(),
            );
        }
        if let Some(total) = self.total()
            && !total.errors.is_empty()
        {
            let codes: Vec<String> = total
                .errors
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect();
            let _ = writeln!(out, "errors by status: {}", codes.join(", "));
        }
        if let Some(cpu) = self.client_cpu_s {
            let _ = writeln!(
                out,
                "loadgen itself used {cpu:.2} CPU-seconds in the window ({:.0}% of one core)",
                100.0 * cpu / self.window.as_secs_f64().max(f64::MIN_POSITIVE)
            );
        }
        out
    }
}

fn row_json(row: &Row) -> serde_json::Value {
    let latency = row.latency.map(|l| {
        serde_json::json!({
            "count": l.count,
            "min": ns_to_ms(l.min),
            "mean": ns_to_ms(l.mean),
            "p50": ns_to_ms(l.p50),
            "p90": ns_to_ms(l.p90),
            "p99": ns_to_ms(l.p99),
            "p999": ns_to_ms(l.p999),
            "max": ns_to_ms(l.max),
        })
    });
    serde_json::json!({
        "op": row.name,
        "ok": row.ok,
        "errors": row.errors,
        "error_count": row.error_count(),
        "throughput_rps": round(row.throughput, 1),
        "latency_ms": latency,
    })
}

fn ns_to_ms(ns: u64) -> f64 {
    round(ns as f64 / 1e6, 6)
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Milliseconds with three significant decimals, for the table.
fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.3}ms")
    } else if ms < 100.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_on_known_inputs() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 500), Some(500));
        assert_eq!(percentile(&v, 900), Some(900));
        assert_eq!(percentile(&v, 990), Some(990));
        assert_eq!(percentile(&v, 999), Some(999));
        assert_eq!(percentile(&v, 1000), Some(1000));
        assert_eq!(percentile(&v, 0), Some(1));

        let ten: Vec<u64> = (1..=10).map(|x| x * 10).collect();
        assert_eq!(percentile(&ten, 500), Some(50));
        assert_eq!(percentile(&ten, 900), Some(90));
        assert_eq!(percentile(&ten, 990), Some(100));
        assert_eq!(percentile(&ten, 999), Some(100));
        assert_eq!(percentile(&ten, 910), Some(100));

        assert_eq!(percentile(&[7], 500), Some(7));
        assert_eq!(percentile(&[7], 999), Some(7));
        assert_eq!(percentile(&[], 500), None);
    }

    #[test]
    fn summary_sorts_and_is_exact() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = summarize(&mut v).unwrap();
        assert_eq!(
            s,
            Latency {
                count: 1000,
                min: 1,
                mean: 500,
                p50: 500,
                p90: 900,
                p99: 990,
                p999: 999,
                max: 1000,
            }
        );
        assert_eq!(summarize(&mut []), None);
        let s = summarize(&mut [3, 1, 2]).unwrap();
        assert_eq!((s.min, s.p50, s.p99, s.max, s.mean), (1, 2, 3, 3, 2));
    }

    fn info() -> RunInfo {
        RunInfo {
            label: None,
            target: "http://127.0.0.1:50051".into(),
            mix: "access=90,create=10".into(),
            concurrency: 8,
            connections: 8,
            warmup: Duration::from_secs(2),
            list_depth: 0,
            page_size: 100,
        }
    }

    #[test]
    fn report_rows_totals_errors_and_json() {
        let t0 = Instant::now();
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        let access = Label {
            op: Op::Access,
            band: None,
        };
        let create = Label {
            op: Op::Create,
            band: None,
        };
        // access: 1..=900 microseconds, split over two workers; create: 100 x 5 ms.
        for us in 1..=450u64 {
            a.ok(access, Duration::from_micros(us), t0);
        }
        for us in 451..=900u64 {
            b.ok(access, Duration::from_micros(us), t0);
        }
        for _ in 0..100 {
            b.ok(create, Duration::from_millis(5), t0);
        }
        b.error(create, "UNAVAILABLE", t0 + Duration::from_secs(10));
        b.error(access, "DEADLINE_EXCEEDED", t0);
        a.merge(b);
        assert_eq!(a.last_done, Some(t0 + Duration::from_secs(10)));

        let report = Report::new(info(), &a, Duration::from_secs(10), Some(1.5));
        let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["access", "create", "total"]);

        let acc = &report.rows[0];
        assert_eq!(acc.ok, 900);
        assert!((acc.throughput - 90.0).abs() < 1e-9);
        let l = acc.latency.unwrap();
        assert_eq!(
            (l.p50, l.p90, l.p99, l.p999),
            (450_000, 810_000, 891_000, 900_000)
        );
        assert_eq!((l.min, l.max), (1_000, 900_000));

        let total = report.total().unwrap();
        assert_eq!(total.ok, 1000);
        assert_eq!(total.error_count(), 2);
        assert_eq!(total.latency.unwrap().p90, 900_000);
        assert_eq!(total.latency.unwrap().p99, 5_000_000);
        assert!((report.error_rate() - 2.0 / 1002.0).abs() < 1e-12);

        let json = report.to_json();
        assert_eq!(json["total"]["ok"], 1000);
        assert_eq!(json["total"]["throughput_rps"], 100.0);
        assert_eq!(json["total"]["errors"]["UNAVAILABLE"], 1);
        assert_eq!(json["total"]["errors"]["DEADLINE_EXCEEDED"], 1);
        assert_eq!(json["ops"][0]["op"], "access");
        assert_eq!(json["ops"][0]["latency_ms"]["p99"], 0.891);
        assert_eq!(json["ops"][0]["latency_ms"]["p999"], 0.9);
        assert_eq!(json["ops"][1]["latency_ms"]["p50"], 5.0);
        assert_eq!(json["window_s"], 10.0);
        assert_eq!(json["client_cpu_s"], 1.5);

        let table = report.to_table();
        assert!(
            table.contains("access=90,create=10 against http://127.0.0.1:50051: 8 clients over 8 connections, 10.00 s measured after 2.00 s warm-up"),
            "{table}"
        );
        let access_line = table.lines().find(|l| l.starts_with("access ")).unwrap();
        let cells: Vec<&str> = access_line.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "access", "900", "90.0", "0.450ms", "0.810ms", "0.891ms", "0.900ms", "0.900ms", "1"
            ]
        );
        assert!(table.contains("errors by status: DEADLINE_EXCEEDED 1, UNAVAILABLE 1"));
        assert!(table.contains("1.50 CPU-seconds"));
    }

    #[test]
    fn list_walks_report_depth_bands_and_single_op_has_no_total_row() {
        let t0 = Instant::now();
        let mut r = Recorder::default();
        for (depth, ms) in [(0, 1), (0, 1), (3, 2), (50, 3), (500, 4)] {
            let label = Label {
                op: Op::List,
                band: Some(DepthBand::of(depth)),
            };
            r.ok(label, Duration::from_millis(ms), t0);
        }
        let mut i = info();
        i.mix = "list=1".into();
        i.list_depth = 999;
        let report = Report::new(i, &r, Duration::from_secs(1), None);
        let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "list",
                "list page 1",
                "list pages 2-10",
                "list pages 11-100",
                "list pages 101+"
            ]
        );
        assert_eq!(report.total().unwrap().name, "list");
        assert_eq!(report.rows[0].ok, 5);
        assert_eq!(report.rows[0].latency.unwrap().p50, 2_000_000);
        assert_eq!(report.rows[4].latency.unwrap().max, 4_000_000);
        assert_eq!(report.to_json()["total"]["op"], "list");
        assert!(
            report
                .to_table()
                .contains("list walks up to 1000 pages deep")
        );
    }
}
