//! Operational metrics for the operator's monitoring: counters and latency histograms by label, kept in one
//! process-wide registry that any crate may add to, and rendered in the Prometheus text format (0.0.4) by
//! the binary's metrics listener (`GIG_METRICS_LISTEN`), with the gauges it reads at scrape time.
//!
//! A leaf: no dependencies, so every layer may record. Labels are the gateway's own names (profiles,
//! servers, plugins, outcomes), never data from a request, so the number of series stays bounded by the
//! configuration.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

type Labels = Vec<(&'static str, String)>;

enum Series {
    Counter(f64),
    Histogram {
        counts: [u64; LATENCY_BUCKETS.len()],
        sum: f64,
        count: u64,
    },
}

struct Family {
    help: &'static str,
    histogram: bool,
    series: BTreeMap<Labels, Series>,
}

/// The registry: metric families by name.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// The process's registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Registry {
    fn with_family<R>(
        &self,
        name: &'static str,
        help: &'static str,
        histogram: bool,
        f: impl FnOnce(&mut Family) -> R,
    ) -> R {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            histogram,
            series: BTreeMap::new(),
        });
        f(family)
    }

    /// Adds `by` to the counter `name` (which should end in `_total`) of these labels.
    pub fn add(&self, name: &'static str, help: &'static str, pairs: &[(&'static str, &str)], by: f64) {
        self.with_family(name, help, false, |family| {
            if let Series::Counter(value) = family.series.entry(labels(pairs)).or_insert(Series::Counter(0.0)) {
                *value += by;
            }
        });
    }

    /// Counts one.
    pub fn inc(&self, name: &'static str, help: &'static str, pairs: &[(&'static str, &str)]) {
        self.add(name, help, pairs, 1.0);
    }

    /// Records one duration (seconds) in the histogram `name` of these labels.
    pub fn observe(&self, name: &'static str, help: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
        self.with_family(name, help, true, |family| {
            let series = family.series.entry(labels(pairs)).or_insert(Series::Histogram {
                counts: [0; LATENCY_BUCKETS.len()],
                sum: 0.0,
                count: 0,
            });
            if let Series::Histogram { counts, sum, count } = series {
                if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
                    counts[i] += 1;
                }
                *sum += seconds;
                *count += 1;
            }
        });
    }

    /// Every family in the text format, by name.
    pub fn render(&self, out: &mut String) {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        for (name, family) in families.iter() {
            let kind = if family.histogram { "histogram" } else { "counter" };
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", family.help);
            for (labels, series) in &family.series {
                match series {
                    Series::Counter(value) => sample(out, name, labels, None, *value),
                    Series::Histogram { counts, sum, count } => {
                        let mut cumulative = 0;
                        for (bound, n) in LATENCY_BUCKETS.iter().zip(counts) {
                            cumulative += n;
                            sample(
                                out,
                                &format!("{name}_bucket"),
                                labels,
                                Some(&bound.to_string()),
                                cumulative as f64,
                            );
                        }
                        sample(out, &format!("{name}_bucket"), labels, Some("+Inf"), *count as f64);
                        sample(out, &format!("{name}_sum"), labels, None, *sum);
                        sample(out, &format!("{name}_count"), labels, None, *count as f64);
                    }
                }
            }
        }
    }
}

/// A gauge read at scrape time: its help, type and samples.
pub fn render_gauge(out: &mut String, name: &str, help: &str, samples: &[(Vec<(&'static str, String)>, f64)]) {
    render_read(out, name, help, "gauge", samples);
}

/// A counter whose value is read at scrape time (kept elsewhere, like a plugin's calls).
pub fn render_counter(out: &mut String, name: &str, help: &str, samples: &[(Vec<(&'static str, String)>, f64)]) {
    render_read(out, name, help, "counter", samples);
}

fn render_read(out: &mut String, name: &str, help: &str, kind: &str, samples: &[(Vec<(&'static str, String)>, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        sample(out, name, labels, None, *value);
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&'static str, String)], le: Option<&str>, value: f64) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (key, value) in labels
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(le.map(|le| ("le", le)))
        {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format writes it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let registry = Registry::default();
        registry.inc("gigmcp_x_total", "Xs.", &[("server", "a\"b")]);
        registry.add("gigmcp_x_total", "Xs.", &[("server", "a\"b")], 2.0);
        registry.observe("gigmcp_t_seconds", "Ts.", &[("server", "s")], 0.003);
        registry.observe("gigmcp_t_seconds", "Ts.", &[("server", "s")], 7.0);
        let mut out = String::new();
        registry.render(&mut out);
        assert!(out.contains("# TYPE gigmcp_x_total counter\n"), "{out}");
        assert!(out.contains("gigmcp_x_total{server=\"a\\\"b\"} 3\n"), "{out}");
        assert!(
            out.contains("gigmcp_t_seconds_bucket{server=\"s\",le=\"0.0025\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("gigmcp_t_seconds_bucket{server=\"s\",le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("gigmcp_t_seconds_bucket{server=\"s\",le=\"5\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("gigmcp_t_seconds_bucket{server=\"s\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("gigmcp_t_seconds_sum{server=\"s\"} 7.003\n"), "{out}");
        assert!(out.contains("gigmcp_t_seconds_count{server=\"s\"} 2\n"), "{out}");
        let mut gauges = String::new();
        render_gauge(&mut gauges, "gigmcp_g", "Gs.", &[(vec![], 4.0)]);
        assert_eq!(gauges, "# HELP gigmcp_g Gs.\n# TYPE gigmcp_g gauge\ngigmcp_g 4\n");
    }
}
