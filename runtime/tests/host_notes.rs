//! What the runtime tells its host (the trusted operator) about a
//! component, whatever the component's grants: the text it wrote to
//! stderr and stdout before a trap or a limit, quoted in the trap or limit
//! error (the last 4 KiB per stream, escaped); and the policy grants its manifest declares
//! nothing to overlap, which the load drops (a `tracing` warning of target
//! `airssys::policy` and [`LoadedComponent::undeclared_grants`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use airssys_runtime::{LimitExceeded, LoadedComponent, Policy, Runtime, RuntimeError};
use support::{ask, fixture, instance, runtime_with};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[test]
fn a_trap_error_quotes_what_the_component_wrote_without_a_log_grant() {
    // No `log:write`: the component's stdout and stderr reach no log.
    let runtime = runtime_with("");
    let mut probe = instance(&runtime, "limitprobe");
    // Written in an earlier call that did not trap: not quoted.
    assert_eq!(ask(&mut probe, "eprint:from an earlier call"), "ok");
    let error = probe
        .request("test", "panic:the disk\x1b[2J is \u{202e}full".as_bytes())
        .expect_err("the panic traps");
    let RuntimeError::Trap { message, .. } = &error else {
        panic!("a trap, not {error:?}");
    };
    let quoted = message
        .split_once("the component wrote before the trap:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("the output is quoted:\n{message}"));
    assert!(
        quoted.starts_with("  stderr: thread '<unnamed>'") && quoted.contains(" panicked at "),
        "{message}"
    );
    assert!(
        quoted.contains("\n  stderr: the disk\\u{1b}[2J is \\u{202e}full\n"),
        "the panic message, escaped:\n{message}"
    );
    assert!(quoted.contains("\n  stdout: about to panic\n"), "{message}");
    assert!(!message.contains("earlier call"), "{message}");
    assert!(!message.contains('\x1b'), "{message}");
    // The cause still comes first, the backtrace after the output.
    assert!(
        message.starts_with("wasm trap: wasm `unreachable` instruction executed\n"),
        "{message}"
    );
}

/// What the call wrote before a limit ended it, as
/// [`RuntimeError::LimitAfterOutput`] quotes it.
fn written_before_limit(error: &RuntimeError) -> &str {
    let RuntimeError::LimitAfterOutput { written, .. } = error else {
        panic!("a limit quoting the output, not {error:?}");
    };
    written
        .strip_prefix("the component wrote before the limit ended the call:\n")
        .unwrap_or_else(|| panic!("the output is quoted:\n{written}"))
}

#[test]
fn a_time_limit_error_quotes_what_the_call_wrote() {
    let runtime = runtime_with("[components.limitprobe]\nlimits = { cpu_time_ms = 300 }\n");
    let mut probe = instance(&runtime, "limitprobe");
    assert_eq!(ask(&mut probe, "print:from an earlier call"), "ok");
    let error = probe
        .request("test", "print-spin:working \x1b[2J on it".as_bytes())
        .expect_err("the spin is interrupted");
    assert!(
        matches!(error.limit(), Some(LimitExceeded::CpuTime { .. })),
        "{error:?}"
    );
    let quoted = written_before_limit(&error);
    assert_eq!(
        quoted,
        "  stderr: spinning\n  stdout: working \\u{1b}[2J on it"
    );
    // The limit comes first, naming its policy key.
    let text = error.to_string();
    assert!(text.starts_with("time limit exceeded: "), "{text}");
    assert!(text.contains("`limits.cpu_time_ms`"), "{text}");
    assert!(!text.contains("earlier call"), "{text}");
}

#[test]
fn a_memory_limit_error_quotes_what_the_call_wrote() {
    let runtime = runtime_with("[components.limitprobe]\nlimits = { memory_bytes = 16777216 }\n");
    let mut probe = instance(&runtime, "limitprobe");
    let error = probe
        .request("test", b"print-grow:growing")
        .expect_err("the growth is refused");
    assert!(
        matches!(error.limit(), Some(LimitExceeded::Memory { .. })),
        "{error:?}"
    );
    assert_eq!(written_before_limit(&error), "  stdout: growing");
    assert!(
        error.to_string().contains("`limits.memory_bytes`"),
        "{error}"
    );
}

#[test]
fn a_limit_after_a_silent_call_is_the_bare_limit() {
    let runtime = runtime_with("[components.limitprobe]\nlimits = { cpu_time_ms = 300 }\n");
    let mut probe = instance(&runtime, "limitprobe");
    assert_eq!(ask(&mut probe, "print:from an earlier call"), "ok");
    let error = probe.request("test", b"spin:").expect_err("interrupted");
    assert!(
        matches!(error, RuntimeError::Limit(LimitExceeded::CpuTime { .. })),
        "{error:?}"
    );
}

/// The fields of one `tracing` event, as (name, value).
type Fields = Vec<(String, String)>;

/// The `warn` events of target `airssys::policy`.
#[derive(Clone, Default)]
struct Capture {
    warnings: Arc<Mutex<Vec<Fields>>>,
    next_span: Arc<AtomicU64>,
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "airssys::policy" && *metadata.level() == tracing::Level::WARN
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Visitor(&mut fields));
        self.warnings.lock().unwrap().push(fields);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Loads limitprobe (it declares `log:write` and `kv:read:secret/**`)
/// under `policy`, capturing the load's `airssys::policy` warnings.
fn load(policy: Policy) -> (LoadedComponent, Vec<Fields>) {
    let runtime = Runtime::builder()
        .policy(policy)
        .in_memory_storage()
        .build()
        .unwrap();
    let capture = Capture::default();
    let loaded = tracing::subscriber::with_default(capture.clone(), || {
        runtime.load(fixture("limitprobe")).unwrap()
    });
    let warnings = capture.warnings.lock().unwrap().clone();
    (loaded, warnings)
}

/// Line 2 grants to every component (not declared by limitprobe: normal,
/// no warning); line 5 grants limitprobe one declared and one undeclared
/// capability.
const POLICY: &str = "[defaults]
grants = [\"kv:write:shared/*\"]

[components.limitprobe]
grants = [\"log:write\", \"kv:read:other/*\"]
";

#[test]
fn an_undeclared_grant_is_listed_and_logged_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, POLICY).unwrap();
    let (loaded, warnings) = load(Policy::from_toml_file(&path).unwrap());

    let undeclared = loaded.undeclared_grants();
    assert_eq!(undeclared.len(), 1, "{undeclared:?}");
    assert_eq!(undeclared[0].grant.to_string(), "kv:read:other/*");
    let origin = undeclared[0].origin.as_ref().expect("written in the file");
    assert_eq!(origin.line, 5);
    assert_eq!(origin.file.as_deref(), Some(path.as_path()));

    assert_eq!(warnings.len(), 1, "one warning: {warnings:?}");
    let field = |name: &str| {
        warnings[0]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("component"), "limitprobe");
    assert_eq!(field("grant"), "kv:read:other/*");
    let message = field("message");
    assert!(
        message.contains(&format!(
            "the grant `kv:read:other/*` to `limitprobe` ({} line 5) has no effect",
            path.display()
        )),
        "{message}"
    );
    assert!(
        message.contains("declare it in `requires` or `optional`"),
        "{message}"
    );
}

#[test]
fn defaults_and_declared_grants_are_not_listed() {
    let policy = "[defaults]\ngrants = [\"kv:write:shared/*\", \"net:connect:*:443\"]\n\n\
                  [components.limitprobe]\ngrants = [\"log:write:warn\", \"kv:read:**\"]\n";
    let (loaded, warnings) = load(Policy::from_toml_str(policy).unwrap());
    assert!(loaded.undeclared_grants().is_empty());
    assert!(warnings.is_empty(), "{warnings:?}");
}
