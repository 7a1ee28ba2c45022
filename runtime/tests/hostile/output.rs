//! Hostile probes: output. What a component can make the host write is
//! bounded per component and second: log records and WASI stdout/stderr
//! lines together (`limits.log_lines_per_second`,
//! `limits.log_bytes_per_second`), and audit records of its refusals
//! (`limits.audit_denials_per_second`, long resources cut). Every drop is
//! said in a summary record naming the key; the neighbour keeps serving.
//! stdout and stderr are shown only under a `log:write` grant.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use airssys_runtime::{AuditLog, Policy, Runtime};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{ask, instance, runtime_with};

/// One `tracing` event: target, level and fields (the message as
/// `message`).
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    level: tracing::Level,
    fields: BTreeMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// Records every event of the runtime's targets on this thread.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Seen>>>,
}

thread_local! {
    /// The capture of the test running on this thread, if any.
    static ACTIVE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// The one global subscriber of this test binary: hands each event of the
/// runtime's targets to the capture of the thread it happens on. Global
/// and installed once, so that no per-test dispatcher comes and goes:
/// with thread-scoped dispatchers (`with_default`) in parallel tests,
/// tracing's global interest and maximum level, rebuilt as dispatchers
/// come and go, could be left at "off" by another thread's rebuild and
/// hide this thread's events (seen as a flaky "0 records").
struct Router {
    next_span: AtomicU64,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Router {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("airssys")
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        ACTIVE.with(|active| {
            let Some(capture) = active.borrow().clone() else {
                return;
            };
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            capture.events.lock().expect("lock").push(Seen {
                target: event.metadata().target().to_owned(),
                level: *event.metadata().level(),
                fields,
            });
        });
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

impl Capture {
    /// Runs `f` recording the events of the current thread.
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let router = Router {
                next_span: AtomicU64::new(0),
            };
            tracing::subscriber::set_global_default(router)
                .expect("no other global subscriber in this test binary");
        });
        ACTIVE.with(|active| *active.borrow_mut() = Some(self.clone()));
        let result = f();
        ACTIVE.with(|active| *active.borrow_mut() = None);
        result
    }

    fn events(&self) -> Vec<Seen> {
        self.events.lock().expect("lock").clone()
    }

    /// The component's records of `stream` (`log`, `stdout`, `stderr`).
    fn records(&self, stream: &str) -> Vec<Seen> {
        self.events()
            .into_iter()
            .filter(|e| e.target == "airssys::component" && e.field("stream") == stream)
            .collect()
    }

    /// The host's notes about the component's output.
    fn notes(&self) -> Vec<Seen> {
        self.events()
            .into_iter()
            .filter(|e| e.target == "airssys::output")
            .collect()
    }

    /// Records dropped by `limit`, as the summaries say.
    fn dropped_by(&self, target: &str, limit: &str) -> u64 {
        self.events()
            .iter()
            .filter(|e| e.target == target && e.field("limit") == limit)
            .map(|e| e.field("dropped").parse::<u64>().expect("a count"))
            .sum()
    }
}

/// The most a quota of `per_second` admits over `elapsed` (every window
/// begun, the first included).
fn at_most(per_second: u64, elapsed: Duration) -> u64 {
    per_second * (elapsed.as_secs() + 2)
}

/// `count` from a reply such as `ok 12, quota-exceeded 4988, other 0`.
fn count(reply: &str, label: &str) -> u64 {
    reply
        .split(", ")
        .find_map(|part| part.strip_prefix(label)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` in {reply:?}"))
}

/// 5,000 log records in one call under 50 per second: at most a window's
/// worth pass, the rest answer `quota-exceeded`, and a summary says how
/// many were dropped.
#[test]
fn a_log_flood_is_bounded_and_summarised() {
    let runtime = runtime_with(&format!(
        "[components.limitprobe]\ngrants = [\"log:write\"]\nlimits = {{ log_lines_per_second = \
         50 }}\n{NEIGHBOUR_POLICY}"
    ));
    let capture = Capture::default();
    let started = Instant::now();
    let reply = while_serving(&runtime, || {
        capture.during(|| {
            let mut hostile = instance(&runtime, "limitprobe");
            ask(&mut hostile, "log-flood:5000")
        })
    });
    let elapsed = started.elapsed();
    let (ok, refused) = (count(&reply, "ok"), count(&reply, "quota-exceeded"));
    assert_eq!(ok + refused, 5000, "{reply}");
    assert!(
        ok <= at_most(50, elapsed),
        "{ok} records passed in {elapsed:?}"
    );
    assert_eq!(capture.records("log").len() as u64, ok);
    // Every dropped record is accounted for by the summaries.
    assert_eq!(
        capture.dropped_by("airssys::output", "limits.log_lines_per_second"),
        refused
    );
    let summary = &capture.notes()[0];
    assert_eq!(summary.level, tracing::Level::WARN);
    assert!(
        summary
            .field("message")
            .contains("dropped by limits.log_lines_per_second (50 per second)"),
        "{summary:?}"
    );
}

/// The `quota-exceeded` text names both keys.
#[test]
fn a_dropped_log_record_answers_quota_exceeded_naming_the_key() {
    let runtime = runtime_with(
        "[components.limitprobe]\ngrants = [\"log:write\"]\nlimits = { log_lines_per_second = \
         1 }\n",
    );
    let mut hostile = instance(&runtime, "limitprobe");
    assert_eq!(ask(&mut hostile, "log:info:one"), "ok");
    let reply = ask(&mut hostile, "log:info:two");
    assert!(
        reply.contains("QuotaExceeded(\"log rate limit reached"),
        "{reply}"
    );
    assert!(reply.contains("limits.log_lines_per_second"), "{reply}");
}

/// A stdout flood is bounded by the same quota, per line, and bytes by
/// `log_bytes_per_second`.
#[test]
fn a_stdout_flood_is_bounded_and_summarised() {
    let runtime = runtime_with(&format!(
        "[components.limitprobe]\ngrants = [\"log:write\"]\nlimits = {{ log_lines_per_second = \
         50 }}\n{NEIGHBOUR_POLICY}"
    ));
    let capture = Capture::default();
    let started = Instant::now();
    while_serving(&runtime, || {
        capture.during(|| {
            let mut hostile = instance(&runtime, "limitprobe");
            assert_eq!(ask(&mut hostile, "print-flood:20000"), "printed");
        })
    });
    let elapsed = started.elapsed();
    let shown = capture.records("stdout");
    assert!(
        !shown.is_empty() && shown.len() as u64 <= at_most(50, elapsed),
        "{} lines shown in {elapsed:?}",
        shown.len()
    );
    assert_eq!(shown[0].field("message"), "stdout line 0");
    assert_eq!(shown[0].level, tracing::Level::INFO);
    assert_eq!(shown[0].field("component"), "limitprobe");
    assert_eq!(
        capture.dropped_by("airssys::output", "limits.log_lines_per_second"),
        20000 - shown.len() as u64
    );

    // Bytes: lines of ~14 bytes under 100 bytes per second.
    let runtime = runtime_with(
        "[components.limitprobe]\ngrants = [\"log:write\"]\nlimits = { log_bytes_per_second = \
         100 }\n",
    );
    let capture = Capture::default();
    capture.during(|| {
        let mut hostile = instance(&runtime, "limitprobe");
        assert_eq!(ask(&mut hostile, "print-flood:1000"), "printed");
    });
    let shown = capture.records("stdout").len() as u64;
    assert!((1..=14).contains(&shown), "{shown} lines shown");
    assert_eq!(
        capture.dropped_by("airssys::output", "limits.log_bytes_per_second"),
        1000 - shown
    );
}

/// stdout needs `log:write:info` and stderr `log:write:warn`: without them
/// the output is dropped, and the host says so once per instance and
/// stream.
#[test]
fn output_without_a_log_grant_is_dropped_with_one_note() {
    let runtime = runtime_with("[components.limitprobe]\ngrants = [\"log:write:warn\"]\n");
    let capture = Capture::default();
    capture.during(|| {
        let mut hostile = instance(&runtime, "limitprobe");
        for _ in 0..3 {
            assert_eq!(ask(&mut hostile, "print:to stdout"), "ok");
            assert_eq!(ask(&mut hostile, "eprint:to stderr"), "ok");
        }
    });
    assert!(capture.records("stdout").is_empty());
    let stderr = capture.records("stderr");
    assert_eq!(stderr.len(), 3);
    assert_eq!(stderr[0].level, tracing::Level::WARN);
    assert_eq!(stderr[0].field("message"), "to stderr");
    let notes = capture.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .field("message")
            .contains("holds no `log:write:info` grant: its stdout is dropped"),
        "{notes:?}"
    );
}

/// A sink the test can read: the JSON lines of the audit log.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn records(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().expect("lock").clone();
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("a JSON line"))
            .collect()
    }
}

/// 3,000 refused reads with 10 KB keys under 20 audit records per second:
/// the reads are all refused, few are recorded, every record's resource
/// is cut to a few hundred bytes, and summaries account for the rest.
#[test]
fn an_audit_flood_of_refusals_is_bounded_and_summarised() {
    let lines = Lines::default();
    let runtime = Runtime::builder()
        .policy(
            Policy::from_toml_str(&format!(
                "[components.limitprobe]\nlimits = {{ audit_denials_per_second = 20 }}\n\
                 {NEIGHBOUR_POLICY}"
            ))
            .expect("valid policy"),
        )
        .audit(AuditLog::to_writer(lines.clone()))
        .max_instances(16)
        .build()
        .expect("runtime");
    let started = Instant::now();
    let reply = while_serving(&runtime, || {
        let mut hostile = instance(&runtime, "limitprobe");
        ask(&mut hostile, "deny-flood:3000:10000")
    });
    let elapsed = started.elapsed();
    assert_eq!(reply, "denied 3000");
    let records = lines.records();
    let ours = |r: &&serde_json::Value| r["component"] == "limitprobe";
    let denials: Vec<_> = records
        .iter()
        .filter(ours)
        .filter(|r| r["verdict"] == "deny")
        .collect();
    assert!(
        !denials.is_empty() && denials.len() as u64 <= at_most(20, elapsed),
        "{} denials recorded in {elapsed:?}",
        denials.len()
    );
    for denial in &denials {
        let resource = denial["resource"].as_str().expect("a resource");
        assert!(resource.len() < 300, "{} bytes", resource.len());
        assert!(resource.ends_with("…(10007 bytes)"), "{resource}");
    }
    let dropped: u64 = records
        .iter()
        .filter(ours)
        .filter(|r| r["limit"] == "limits.audit_denials_per_second")
        .map(|r| r["dropped"].as_u64().expect("a count"))
        .sum();
    assert_eq!(dropped + denials.len() as u64, 3000);
}
