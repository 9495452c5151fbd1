//! A small metrics registry rendered in the Prometheus text format (version 0.0.4).
//!
//! Every family has fixed label names (a const-generic array, so a wrong label count does not
//! compile). Label values must be bounded (method names, status codes, key ids, type ids from
//! the catalogue): never a secret, a token, or an id such as a credential or workspace id.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{Arc, Mutex, MutexGuard},
};

/// The `Content-Type` of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets for request latencies in seconds (5 ms to 10 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Locks a mutex, carrying on after a panic elsewhere: every value guarded here stays whole
/// (counters and maps are updated in single statements).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

trait Family: Send + Sync {
    fn render(&self, out: &mut String);
}

type Hook = Box<dyn Fn() + Send + Sync>;

/// The metric families of one process. Cheap to clone: clones share the families.
#[derive(Clone, Default)]
pub struct Registry {
    families: Arc<Mutex<Vec<Arc<dyn Family>>>>,
    hooks: Arc<Mutex<Vec<Hook>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &lock(&self.families).len())
            .finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn add<F: Family + 'static>(&self, family: Arc<F>) {
        lock(&self.families).push(family);
    }

    /// Registers a counter family.
    pub fn counter<const N: usize>(
        &self,
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
    ) -> Counter<N> {
        let family = Arc::new(Series::new(name, help, labels, "counter"));
        self.add(family.clone());
        Counter(family)
    }

    /// Registers a gauge family.
    pub fn gauge<const N: usize>(
        &self,
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
    ) -> Gauge<N> {
        let family = Arc::new(Series::new(name, help, labels, "gauge"));
        self.add(family.clone());
        Gauge(family)
    }

    /// Registers a histogram family with upper bucket bounds `buckets` (ascending; `+Inf` is
    /// implied).
    pub fn histogram<const N: usize>(
        &self,
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
        buckets: &'static [f64],
    ) -> Histogram<N> {
        debug_assert!(
            buckets.windows(2).all(|w| w[0] < w[1]),
            "{name}: buckets must ascend"
        );
        debug_assert!(!labels.contains(&"le"), "{name}: `le` is reserved");
        let family = Arc::new(HistogramFamily {
            desc: Desc::new(name, help, labels),
            buckets,
            series: Mutex::new(BTreeMap::new()),
        });
        self.add(family.clone());
        Histogram(family)
    }

    /// Runs `hook` before every render, e.g. to copy figures such as a pool's size into gauges.
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        lock(&self.hooks).push(Box::new(hook));
    }

    /// Every family in the Prometheus text format.
    pub fn render(&self) -> String {
        for hook in lock(&self.hooks).iter() {
            hook();
        }
        let families: Vec<Arc<dyn Family>> = lock(&self.families).clone();
        let mut out = String::new();
        for family in families {
            family.render(&mut out);
        }
        out
    }
}

struct Desc<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
}

impl<const N: usize> Desc<N> {
    fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        debug_assert!(valid_name(name), "bad metric name {name:?}");
        debug_assert!(
            labels.iter().all(|l| valid_name(l) && !l.starts_with("__")),
            "{name}: bad label name"
        );
        Self { name, help, labels }
    }

    fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }

    /// `{a="x",b="y"}` (plus `extra`, e.g. `le`), or nothing without labels.
    fn labels(&self, out: &mut String, values: &[String; N], extra: Option<(&str, &str)>) {
        if N == 0 && extra.is_none() {
            return;
        }
        out.push('{');
        let mut first = true;
        let pairs = self
            .labels
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .chain(extra);
        for (name, value) in pairs {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{name}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
}

fn key<const N: usize>(labels: [&str; N]) -> [String; N] {
    labels.map(str::to_owned)
}

/// A family of plain values: counters and gauges.
struct Series<const N: usize> {
    desc: Desc<N>,
    kind: &'static str,
    values: Mutex<BTreeMap<[String; N], f64>>,
}

impl<const N: usize> Series<N> {
    fn new(
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
        kind: &'static str,
    ) -> Self {
        Self {
            desc: Desc::new(name, help, labels),
            kind,
            values: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<const N: usize> Family for Series<N> {
    fn render(&self, out: &mut String) {
        self.desc.header(out, self.kind);
        for (labels, value) in lock(&self.values).iter() {
            out.push_str(self.desc.name);
            self.desc.labels(out, labels, None);
            let _ = writeln!(out, " {}", format_value(*value));
        }
    }
}

/// A counter family: values only go up.
#[derive(Clone)]
pub struct Counter<const N: usize>(Arc<Series<N>>);

impl<const N: usize> std::fmt::Debug for Counter<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Counter").field(&self.0.desc.name).finish()
    }
}

impl<const N: usize> Counter<N> {
    /// Adds one to the series with these label values.
    pub fn inc(&self, labels: [&str; N]) {
        self.inc_by(labels, 1.0);
    }

    /// Adds `delta` (ignored unless positive) to the series with these label values.
    pub fn inc_by(&self, labels: [&str; N], delta: f64) {
        if delta > 0.0 {
            *lock(&self.0.values).entry(key(labels)).or_insert(0.0) += delta;
        }
    }

    /// The current value of a series (0 when it was never incremented).
    pub fn get(&self, labels: [&str; N]) -> f64 {
        lock(&self.0.values)
            .get(&key(labels))
            .copied()
            .unwrap_or(0.0)
    }
}

/// A gauge family: values are set.
#[derive(Clone)]
pub struct Gauge<const N: usize>(Arc<Series<N>>);

impl<const N: usize> std::fmt::Debug for Gauge<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Gauge").field(&self.0.desc.name).finish()
    }
}

impl<const N: usize> Gauge<N> {
    /// Sets the series with these label values.
    pub fn set(&self, labels: [&str; N], value: f64) {
        lock(&self.0.values).insert(key(labels), value);
    }

    /// Replaces every series at once, so series that disappeared (a key version no longer in
    /// use) stop being reported.
    pub fn replace_all<'a>(&self, series: impl IntoIterator<Item = ([&'a str; N], f64)>) {
        let fresh: BTreeMap<[String; N], f64> = series
            .into_iter()
            .map(|(labels, value)| (key(labels), value))
            .collect();
        *lock(&self.0.values) = fresh;
    }

    /// The current value of a series, if set.
    pub fn get(&self, labels: [&str; N]) -> Option<f64> {
        lock(&self.0.values).get(&key(labels)).copied()
    }
}

struct HistogramState {
    /// Per bucket (not cumulative), plus the `+Inf` bucket last.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

struct HistogramFamily<const N: usize> {
    desc: Desc<N>,
    buckets: &'static [f64],
    series: Mutex<BTreeMap<[String; N], HistogramState>>,
}

impl<const N: usize> Family for HistogramFamily<N> {
    fn render(&self, out: &mut String) {
        self.desc.header(out, "histogram");
        let name = self.desc.name;
        for (labels, state) in lock(&self.series).iter() {
            let mut cumulative = 0;
            let bounds = self.buckets.iter().copied().chain([f64::INFINITY]);
            for (bound, count) in bounds.zip(&state.counts) {
                cumulative += count;
                out.push_str(name);
                out.push_str("_bucket");
                self.desc
                    .labels(out, labels, Some(("le", &format_value(bound))));
                let _ = writeln!(out, " {cumulative}");
            }
            out.push_str(name);
            out.push_str("_sum");
            self.desc.labels(out, labels, None);
            let _ = writeln!(out, " {}", format_value(state.sum));
            out.push_str(name);
            out.push_str("_count");
            self.desc.labels(out, labels, None);
            let _ = writeln!(out, " {}", state.count);
        }
    }
}

/// A histogram family: counts of observations per bucket, their sum and count.
#[derive(Clone)]
pub struct Histogram<const N: usize>(Arc<HistogramFamily<N>>);

impl<const N: usize> std::fmt::Debug for Histogram<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Histogram").field(&self.0.desc.name).finish()
    }
}

impl<const N: usize> Histogram<N> {
    /// Records one observation (e.g. seconds) in the series with these label values.
    pub fn observe(&self, labels: [&str; N], value: f64) {
        let buckets = self.0.buckets;
        let index = buckets
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(buckets.len());
        let mut series = lock(&self.0.series);
        let state = series.entry(key(labels)).or_insert_with(|| HistogramState {
            counts: vec![0; buckets.len() + 1],
            sum: 0.0,
            count: 0,
        });
        state.counts[index] += 1;
        state.sum += value;
        state.count += 1;
    }

    /// How many observations a series has.
    pub fn count(&self, labels: [&str; N]) -> u64 {
        lock(&self.0.series)
            .get(&key(labels))
            .map_or(0, |s| s.count)
    }
}

/// A sample value as Prometheus writes it: integers without a fraction, `+Inf`, `NaN`.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let registry = Registry::new();
        let requests = registry.counter(
            "requests_total",
            "Requests.\nSecond line \\ backslash.",
            ["method", "code"],
        );
        let pool = registry.gauge("pool_connections", "Pool.", ["state"]);
        let plain = registry.gauge("up", "Whether up.", []);
        let latency = registry.histogram("latency_seconds", "Latency.", ["method"], &[0.1, 1.0]);
        requests.inc(["Get", "OK"]);
        requests.inc(["Get", "OK"]);
        requests.inc_by(["Get", "NOT_FOUND"], 3.0);
        requests.inc_by(["Get", "OK"], -5.0);
        pool.set(["size"], 4.0);
        pool.set(["available"], 1.5);
        plain.set([], 1.0);
        latency.observe(["Get"], 0.05);
        latency.observe(["Get"], 0.5);
        latency.observe(["Get"], 7.0);

        let text = registry.render();
        let expected = "\
# HELP requests_total Requests.\\nSecond line \\\\ backslash.
# TYPE requests_total counter
requests_total{method=\"Get\",code=\"NOT_FOUND\"} 3
requests_total{method=\"Get\",code=\"OK\"} 2
# HELP pool_connections Pool.
# TYPE pool_connections gauge
pool_connections{state=\"available\"} 1.5
pool_connections{state=\"size\"} 4
# HELP up Whether up.
# TYPE up gauge
up 1
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{method=\"Get\",le=\"0.1\"} 1
latency_seconds_bucket{method=\"Get\",le=\"1\"} 2
latency_seconds_bucket{method=\"Get\",le=\"+Inf\"} 3
latency_seconds_sum{method=\"Get\"} 7.55
latency_seconds_count{method=\"Get\"} 3
";
        assert_eq!(text, expected);
        assert_eq!(requests.get(["Get", "OK"]), 2.0);
        assert_eq!(latency.count(["Get"]), 3);
    }

    #[test]
    fn label_values_are_escaped() {
        let registry = Registry::new();
        let c = registry.counter("c_total", "C.", ["v"]);
        c.inc(["a\"b\\c\nd"]);
        assert!(
            registry
                .render()
                .contains("c_total{v=\"a\\\"b\\\\c\\nd\"} 1\n")
        );
    }

    #[test]
    fn replace_all_drops_stale_series_and_hooks_run_at_scrape() {
        let registry = Registry::new();
        let g = registry.gauge("versions", "V.", ["key_id", "key_version"]);
        g.replace_all([(["default", "1"], 3.0), (["default", "2"], 1.0)]);
        g.replace_all([(["default", "2"], 4.0)]);
        assert_eq!(g.get(["default", "1"]), None);
        let hooked = g.clone();
        registry.on_scrape(move || hooked.set(["default", "3"], 9.0));
        let text = registry.render();
        assert!(!text.contains("key_version=\"1\""));
        assert!(text.contains("versions{key_id=\"default\",key_version=\"2\"} 4\n"));
        assert!(text.contains("versions{key_id=\"default\",key_version=\"3\"} 9\n"));
    }

    #[test]
    fn registered_families_render_type_lines_without_samples() {
        let registry = Registry::new();
        let _c = registry.counter("validation_outcomes_total", "V.", ["type", "outcome"]);
        assert_eq!(
            registry.render(),
            "# HELP validation_outcomes_total V.\n# TYPE validation_outcomes_total counter\n"
        );
    }

    #[test]
    fn values() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(0.005), "0.005");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(1e20), "100000000000000000000");
    }
}
