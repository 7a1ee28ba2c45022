//! The server's counters and their Prometheus text exposition (format
//! version 0.0.4): calls by kind and outcome, capability refusals, call
//! durations, and per component its queue depth, restarts and instances.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::audit::AuditRecord;
use crate::runtime::{DeliveryKind, DeliveryOutcome, DeliveryRecord};
use crate::sync::lock;

/// Upper bounds of the call-duration histogram's buckets, in seconds
/// (Prometheus' default buckets).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The kind label of a call from [`Server::request`](super::Server::request).
pub(super) const KIND_REQUEST: &str = "request";
/// The kind label of a published message delivered to a handler.
const KIND_MESSAGE: &str = "message";
/// The kind label of a request from another component (`msg:request`).
const KIND_COMPONENT_REQUEST: &str = "component-request";

/// One histogram series.
#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations per bucket (not cumulative; summed when written).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Counters {
    /// component → (kind, outcome) → calls. Keyed by component first so
    /// that counting a call looks its component up by `&str`, without
    /// allocating a key (one count per delivered message).
    calls: BTreeMap<String, BTreeMap<(&'static str, &'static str), u64>>,
    /// (component, capability) → refusals.
    denials: BTreeMap<(String, String), u64>,
    /// component → kind → durations.
    durations: BTreeMap<String, BTreeMap<&'static str, Histogram>>,
}

/// The counters every hook and worker of one server adds to.
#[derive(Debug, Default)]
pub(super) struct Metrics {
    counters: std::sync::Mutex<Counters>,
}

thread_local! {
    /// When the delivering thread's last handler call began: set by the
    /// worker before a delivery pass, moved on by each delivery record
    /// (the hooks run on the delivering thread, after each handler).
    static DELIVERY_MARK: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Marks the start of a delivery pass on this thread.
pub(super) fn mark_delivery_start() {
    DELIVERY_MARK.with(|m| m.set(Some(Instant::now())));
}

/// Forgets the mark after the pass.
pub(super) fn clear_delivery_mark() {
    DELIVERY_MARK.with(|m| m.set(None));
}

/// Applies `change` to the entry of `component` in `map`, made when
/// missing: the lookup borrows the name, so only a component's first count
/// allocates.
fn update<V: Default>(map: &mut BTreeMap<String, V>, component: &str, change: impl FnOnce(&mut V)) {
    match map.get_mut(component) {
        Some(entry) => change(entry),
        None => change(map.entry(component.to_owned()).or_default()),
    }
}

/// The server's state of one component, for the gauges.
pub(super) struct Gauges<'a> {
    pub(super) component: &'a str,
    pub(super) queue_depth: usize,
    pub(super) restarts: u64,
    pub(super) instances: usize,
}

impl Metrics {
    /// Counts one call of `kind` to `component` with `outcome`, and its
    /// duration when known.
    pub(super) fn call(
        &self,
        component: &str,
        kind: &'static str,
        outcome: &'static str,
        took: Option<Duration>,
    ) {
        let mut counters = lock(&self.counters);
        update(&mut counters.calls, component, |calls| {
            *calls.entry((kind, outcome)).or_default() += 1;
        });
        if let Some(took) = took {
            update(&mut counters.durations, component, |durations| {
                durations
                    .entry(kind)
                    .or_default()
                    .observe(took.as_secs_f64());
            });
        }
    }

    /// The audit hook: counts refusals by component and capability.
    pub(super) fn audit(&self, record: &AuditRecord<'_>) {
        if let AuditRecord::Decision(decision) = record
            && !decision.is_allowed()
        {
            let capability = format!("{}:{}", decision.domain, decision.action);
            *lock(&self.counters)
                .denials
                .entry((decision.component.to_owned(), capability))
                .or_default() += 1;
        }
    }

    /// The delivery hook: counts each delivered entry by kind and
    /// outcome, and times it from the previous mark of this thread.
    pub(super) fn delivery(&self, record: &DeliveryRecord<'_>) {
        let kind = match record.kind {
            DeliveryKind::Message { .. } => KIND_MESSAGE,
            DeliveryKind::Request => KIND_COMPONENT_REQUEST,
        };
        let outcome = match record.outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retried(_) => "retried",
            DeliveryOutcome::DeadLettered(_) => "dead-lettered",
            DeliveryOutcome::Answered(_) => "ok",
            DeliveryOutcome::Refused(_) => "refused",
            DeliveryOutcome::Failed(_) => "failed",
            DeliveryOutcome::Expired => "expired",
        };
        let now = Instant::now();
        let took = DELIVERY_MARK.with(|m| {
            let took = m.get().map(|start| now.saturating_duration_since(start));
            if took.is_some() {
                m.set(Some(now));
            }
            took
        });
        // An expired request was not handed to the handler: no duration.
        let took = took.filter(|_| !matches!(record.outcome, DeliveryOutcome::Expired));
        self.call(record.component, kind, outcome, took);
    }

    /// Calls of `component` counted so far (every kind and outcome).
    pub(super) fn calls_of(&self, component: &str) -> u64 {
        lock(&self.counters)
            .calls
            .get(component)
            .map_or(0, |calls| calls.values().sum())
    }

    /// Refusals of `component`'s host calls counted so far.
    pub(super) fn denials_of(&self, component: &str) -> u64 {
        lock(&self.counters)
            .denials
            .iter()
            .filter(|((c, _), _)| c == component)
            .map(|(_, n)| n)
            .sum()
    }

    /// The exposition text: the counters, then the gauges of `gauges`.
    pub(super) fn text(&self, gauges: &[Gauges<'_>]) -> String {
        let counters = lock(&self.counters);
        let mut out = String::new();
        header(
            &mut out,
            "airssys_calls_total",
            "counter",
            "Calls into components, by kind (request, message, component-request) and outcome.",
        );
        let calls = counters.calls.iter().flat_map(|(component, calls)| {
            calls
                .iter()
                .map(move |((kind, outcome), n)| (component, kind, outcome, n))
        });
        for (component, kind, outcome, n) in calls {
            let labels = labels(&[
                ("component", component),
                ("kind", kind),
                ("outcome", outcome),
            ]);
            let _ = writeln!(out, "airssys_calls_total{labels} {n}");
        }
        header(
            &mut out,
            "airssys_denials_total",
            "counter",
            "Host calls refused by the capability guard, by component and capability.",
        );
        for ((component, capability), n) in &counters.denials {
            let labels = labels(&[("component", component), ("capability", capability)]);
            let _ = writeln!(out, "airssys_denials_total{labels} {n}");
        }
        header(
            &mut out,
            "airssys_call_duration_seconds",
            "histogram",
            "Duration of calls into components, by kind.",
        );
        let durations = counters.durations.iter().flat_map(|(component, kinds)| {
            kinds
                .iter()
                .map(move |(kind, histogram)| (component, kind, histogram))
        });
        for (component, kind, histogram) in durations {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += n;
                let le = bound.to_string();
                let labels = labels(&[("component", component), ("kind", kind), ("le", &le)]);
                let _ = writeln!(
                    out,
                    "airssys_call_duration_seconds_bucket{labels} {cumulative}"
                );
            }
            let labels_inf = labels(&[("component", component), ("kind", kind), ("le", "+Inf")]);
            let _ = writeln!(
                out,
                "airssys_call_duration_seconds_bucket{labels_inf} {}",
                histogram.count
            );
            let labels = labels(&[("component", component), ("kind", kind)]);
            let _ = writeln!(
                out,
                "airssys_call_duration_seconds_sum{labels} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "airssys_call_duration_seconds_count{labels} {}",
                histogram.count
            );
        }
        drop(counters);
        let gauge = |out: &mut String,
                     name: &str,
                     kind: &str,
                     help: &str,
                     value: &dyn Fn(&Gauges<'_>) -> String| {
            header(out, name, kind, help);
            for g in gauges {
                let labels = labels(&[("component", g.component)]);
                let _ = writeln!(out, "{name}{labels} {}", value(g));
            }
        };
        gauge(
            &mut out,
            "airssys_queue_depth",
            "gauge",
            "Requests waiting for an instance.",
            &|g| g.queue_depth.to_string(),
        );
        gauge(
            &mut out,
            "airssys_restarts_total",
            "counter",
            "Instances replaced after a trap, a limit or a failed start.",
            &|g| g.restarts.to_string(),
        );
        gauge(
            &mut out,
            "airssys_instances",
            "gauge",
            "Instances running.",
            &|g| g.instances.to_string(),
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `{a="x",b="y"}` with each value escaped as the format requires.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&escape(value));
        out.push('"');
    }
    out.push('}');
    out
}

/// A label value escaped for the text format: backslash, double quote
/// and line feed.
pub(super) fn escape(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_per_component_kind_and_outcome_and_written_in_order() {
        let metrics = Metrics::default();
        let ms = Some(Duration::from_millis(1));
        metrics.call("b", KIND_MESSAGE, "delivered", ms);
        metrics.call("a", KIND_REQUEST, "ok", None);
        metrics.call("b", KIND_MESSAGE, "delivered", ms);
        metrics.call("b", KIND_MESSAGE, "dead-lettered", None);
        metrics.call("b", KIND_REQUEST, "ok", ms);
        assert_eq!(metrics.calls_of("b"), 4);
        assert_eq!(metrics.calls_of("a"), 1);
        assert_eq!(metrics.calls_of("c"), 0);
        let text = metrics.text(&[]);
        let lines = |prefix: &str| -> Vec<&str> {
            text.lines().filter(|l| l.starts_with(prefix)).collect()
        };
        assert_eq!(
            lines("airssys_calls_total{"),
            [
                r#"airssys_calls_total{component="a",kind="request",outcome="ok"} 1"#,
                r#"airssys_calls_total{component="b",kind="message",outcome="dead-lettered"} 1"#,
                r#"airssys_calls_total{component="b",kind="message",outcome="delivered"} 2"#,
                r#"airssys_calls_total{component="b",kind="request",outcome="ok"} 1"#,
            ]
        );
        assert_eq!(
            lines("airssys_call_duration_seconds_count{"),
            [
                r#"airssys_call_duration_seconds_count{component="b",kind="message"} 2"#,
                r#"airssys_call_duration_seconds_count{component="b",kind="request"} 1"#,
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
        let metrics = Metrics::default();
        metrics.call(
            "we\"ird\n",
            KIND_REQUEST,
            "ok",
            Some(Duration::from_millis(30)),
        );
        let text = metrics.text(&[]);
        assert!(
            text.contains(
                r#"airssys_calls_total{component="we\"ird\n",kind="request",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"airssys_call_duration_seconds_bucket{component="we\"ird\n",kind="request",le="0.025"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"airssys_call_duration_seconds_bucket{component="we\"ird\n",kind="request",le="0.05"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"airssys_call_duration_seconds_count{component="we\"ird\n",kind="request"} 1"#
            ),
            "{text}"
        );
    }
}
