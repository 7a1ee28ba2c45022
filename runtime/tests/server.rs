//! `airssys_runtime::Server` end to end with real components: instance
//! pools on worker threads, bounded queues, continuous delivery,
//! supervision, reload, shutdown and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use airssys_runtime::broker::BrokerError;
use airssys_runtime::{
    AuditLog, ComponentSource, ComponentState, LimitExceeded, Policy, Runtime, ServeError, Server,
    ServerConfig,
};
use support::{Sink, fixture, fixture_as};

/// How long any "eventually" below may take before the test fails.
const LIVENESS: Duration = Duration::from_secs(30);

const PROBE_GRANTS: &str =
    r#"grants = ["kv:read:data/*", "kv:write:data/*", "log:write:info", "kv:write:lifecycle/*"]"#;

fn source(name: &str, bytes: &[u8]) -> ComponentSource {
    ComponentSource {
        origin: PathBuf::from(format!("{name}.wasm")),
        bytes: bytes.to_vec(),
    }
}

fn probe() -> ComponentSource {
    source("probe", fixture("probe"))
}

fn limitprobe() -> ComponentSource {
    source("limitprobe", fixture("limitprobe"))
}

fn start(policy: &str, components: Vec<ComponentSource>, config: ServerConfig) -> Server {
    let policy = Policy::from_toml_str(policy).expect("valid policy");
    Server::start(Runtime::builder().policy(policy), components, config).expect("server starts")
}

/// Waits until `check` holds, failing the test after [`LIVENESS`].
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + LIVENESS;
    while !check() {
        assert!(Instant::now() < until, "not within {LIVENESS:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ready(server: &Server) {
    let until = Instant::now() + LIVENESS;
    while !server.ready() {
        assert!(
            Instant::now() < until,
            "not within {LIVENESS:?}: every component ready; {:#?}",
            server.status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(server: &Server, component: &str, payload: &str) -> Result<String, ServeError> {
    server
        .request(component, "host", payload.as_bytes().to_vec())
        .map(|reply| String::from_utf8(reply).expect("utf-8 reply"))
}

fn ask(server: &Server, component: &str, payload: &str) -> String {
    text(server, component, payload).unwrap_or_else(|e| panic!("{component} `{payload}`: {e}"))
}

fn status(server: &Server, component: &str) -> airssys_runtime::ComponentStatus {
    server
        .status()
        .into_iter()
        .find(|s| s.name == component)
        .expect("component in status")
}

/// Sends a request on another thread.
fn in_background(
    server: &Server,
    component: &'static str,
    payload: &'static str,
) -> JoinHandle<Result<String, ServeError>> {
    let server = server.clone();
    std::thread::spawn(move || text(&server, component, payload))
}

#[test]
fn requests_are_answered_and_counted() {
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![probe()],
        ServerConfig::default(),
    );
    ready(&server);
    assert_eq!(ask(&server, "probe", "echo:hello"), "hello");
    assert_eq!(ask(&server, "probe", "set:data/k=v"), "ok");
    assert_eq!(ask(&server, "probe", "get:data/k"), "value: v");
    // A host call the policy refuses: the component's text names it, and
    // the refusal is counted.
    let refused = ask(&server, "probe", "delete:data/k");
    assert!(
        refused.starts_with("denied:") && refused.contains("kv:delete"),
        "{refused}"
    );
    let err = text(&server, "nobody", "echo:x").expect_err("no such component");
    assert!(matches!(err, ServeError::NotFound { .. }), "{err}");
    assert_eq!(err.http_status(), 404);

    let probe = status(&server, "probe");
    assert_eq!(probe.state, ComponentState::Ready);
    assert_eq!(probe.instances, 1);
    assert_eq!(probe.calls, 4);
    assert_eq!(probe.denials, 1);
    let metrics = server.metrics_text();
    for line in [
        r#"airssys_calls_total{component="probe",kind="request",outcome="ok"} 4"#,
        r#"airssys_denials_total{component="probe",capability="kv:delete"} 1"#,
        r#"airssys_call_duration_seconds_count{component="probe",kind="request"} 4"#,
        r#"airssys_queue_depth{component="probe"} 0"#,
        r#"airssys_restarts_total{component="probe"} 0"#,
        r#"airssys_instances{component="probe"} 1"#,
        "# TYPE airssys_call_duration_seconds histogram",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in:\n{metrics}"
        );
    }
}

#[test]
fn the_handler_s_errors_keep_their_kind() {
    let server = start("", vec![limitprobe()], ServerConfig::default());
    ready(&server);
    let err = text(&server, "limitprobe", "fail:nope").expect_err("handler error");
    assert!(
        matches!(&err, ServeError::Handler { message, .. } if message == "nope"),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 500);
    let err = server
        .request("limitprobe", "host", vec![0xff, 0xfe])
        .expect_err("not UTF-8");
    assert!(matches!(err, ServeError::InvalidInput { .. }), "{err:?}");
    assert_eq!(err.http_status(), 400);
}

#[test]
fn a_slow_call_does_not_hold_up_another_component() {
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![limitprobe(), probe()],
        ServerConfig::default(),
    );
    ready(&server);
    let slow = in_background(&server, "limitprobe", "sleep:3000");
    eventually("the slow call runs", || {
        status(&server, "limitprobe").busy == 1
    });
    assert_eq!(ask(&server, "probe", "echo:meanwhile"), "meanwhile");
    // The slow call was still running when the neighbour answered.
    assert_eq!(status(&server, "limitprobe").busy, 1);
    assert_eq!(slow.join().unwrap().unwrap(), "slept");
}

#[test]
fn requests_beyond_the_queue_bound_are_refused_as_busy() {
    let server = start(
        "",
        vec![limitprobe()],
        ServerConfig::default().queue_bound(1),
    );
    ready(&server);
    let first = in_background(&server, "limitprobe", "sleep:2000");
    eventually("the first call runs", || {
        status(&server, "limitprobe").busy == 1
    });
    let second = in_background(&server, "limitprobe", "echo:queued");
    eventually("the second call waits", || {
        status(&server, "limitprobe").queue_depth == 1
    });
    let err = text(&server, "limitprobe", "echo:third").expect_err("queue full");
    assert!(
        matches!(
            err,
            ServeError::Busy {
                queued: 1,
                bound: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 429);
    assert!(err.to_string().contains("queue bound 1"), "{err}");
    assert_eq!(first.join().unwrap().unwrap(), "slept");
    assert_eq!(second.join().unwrap().unwrap(), "queued");
}

#[test]
fn a_trap_answers_its_caller_and_a_fresh_instance_takes_over() {
    let server = start(
        "",
        vec![limitprobe()],
        ServerConfig::default().restart_backoff(Duration::from_millis(10)),
    );
    ready(&server);
    let err = text(&server, "limitprobe", "panic:boom").expect_err("trap");
    assert!(
        matches!(&err, ServeError::Trap { message, .. } if message.contains("boom")),
        "{err:?}"
    );
    // wasmtime's error stays the source: an embedder finds the trap code.
    assert!(
        matches!(
            &err,
            ServeError::Trap { source: Some(e), .. } if e.downcast_ref::<wasmtime::Trap>().is_some()
        ),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert_eq!(err.http_status(), 500);
    // The next request is answered by a fresh instance.
    assert_eq!(ask(&server, "limitprobe", "echo:again"), "again");
    let limitprobe = status(&server, "limitprobe");
    assert_eq!(limitprobe.restarts, 1);
    assert_eq!(limitprobe.state, ComponentState::Ready);
    assert!(
        limitprobe
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("boom"),
        "{limitprobe:?}"
    );
    let metrics = server.metrics_text();
    for line in [
        r#"airssys_restarts_total{component="limitprobe"} 1"#,
        r#"airssys_calls_total{component="limitprobe",kind="request",outcome="trap"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in:\n{metrics}"
        );
    }
}

#[test]
fn a_limit_answers_its_caller_and_a_fresh_instance_takes_over() {
    let server = start(
        "[components.limitprobe]\nlimits = { cpu_time_ms = 200 }\n",
        vec![limitprobe()],
        ServerConfig::default().restart_backoff(Duration::from_millis(10)),
    );
    ready(&server);
    let err = text(&server, "limitprobe", "spin:").expect_err("time limit");
    assert!(
        matches!(&err, ServeError::Limit { message, .. } if message.contains("cpu_time_ms")),
        "{err:?}"
    );
    // The limit, as data and as the error's source.
    assert!(
        matches!(
            &err,
            ServeError::Limit { limit: LimitExceeded::CpuTime { component, .. }, .. }
                if component == "limitprobe"
        ),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert_eq!(err.http_status(), 503);
    assert_eq!(ask(&server, "limitprobe", "echo:again"), "again");
    assert_eq!(status(&server, "limitprobe").restarts, 1);
}

#[test]
fn a_component_failing_at_init_is_failed_after_n_tries_without_a_hot_loop() {
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\nconfig = {{ fail = true }}\n"),
        vec![probe()],
        ServerConfig::default()
            .restart_backoff(Duration::from_millis(10))
            .init_failures_before_failed(3),
    );
    eventually("probe failed", || {
        status(&server, "probe").state == ComponentState::Failed
    });
    let failed = status(&server, "probe");
    assert_eq!(failed.restarts, 3);
    assert_eq!(failed.instances, 0);
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("`fail` is set"),
        "{failed:?}"
    );
    assert!(!server.ready());
    let err = text(&server, "probe", "echo:x").expect_err("failed");
    assert!(matches!(err, ServeError::Unavailable { .. }), "{err:?}");
    assert_eq!(err.http_status(), 503);
    // Not retried: the count stays where it is.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&server, "probe").restarts, 3);
    // A policy that fixes it starts it again.
    server
        .reload(Policy::from_toml_str(&format!("[components.probe]\n{PROBE_GRANTS}\n")).unwrap())
        .expect("reload");
    ready(&server);
    assert_eq!(ask(&server, "probe", "echo:back"), "back");
}

const MESSENGERS: &str = r#"
[components.alice]
grants = ["msg:publish:orders.*", "msg:request:bob"]

[components.bob]
grants = ["msg:subscribe:orders.*"]
subscribe = ["orders.*"]
"#;

fn messengers() -> Vec<ComponentSource> {
    vec![
        source(
            "alice",
            &fixture_as(
                "messenger",
                "alice",
                &["msg:publish:orders.*", "msg:request:bob"],
            ),
        ),
        source(
            "bob",
            &fixture_as("messenger", "bob", &["msg:subscribe:orders.*"]),
        ),
    ]
}

#[test]
fn published_messages_are_delivered_without_pumping() {
    let server = start(MESSENGERS, messengers(), ServerConfig::default());
    ready(&server);
    server
        .publish("orders.created", b"from-host".to_vec())
        .expect("publish");
    assert_eq!(
        ask(&server, "alice", "publish:orders.paid:from-alice"),
        "ok"
    );
    eventually("bob got both messages", || {
        let log = ask(&server, "bob", "log");
        log.contains("orders.created|host|from-host")
            && log.contains("orders.paid|alice|from-alice")
    });
    let metrics = server.metrics_text();
    let line = r#"airssys_calls_total{component="bob",kind="message",outcome="delivered"} 2"#;
    assert!(
        metrics.lines().any(|l| l == line),
        "missing `{line}` in:\n{metrics}"
    );
    let err = server.publish("orders.*", Vec::new()).expect_err("pattern");
    assert!(matches!(err, ServeError::InvalidTopic { .. }), "{err:?}");
    let err = server
        .publish("airssys.dead-letter.bob", Vec::new())
        .expect_err("reserved");
    assert!(err.to_string().contains("reserved"), "{err}");
    // The broker's refusal stays the error's source.
    let err = server
        .publish("orders.created", vec![0; 1024 * 1024 + 1])
        .expect_err("over the broker's payload bound");
    assert!(
        matches!(
            &err,
            ServeError::Publish { retry: false, source: BrokerError::InvalidInput(reason), .. }
                if reason.contains("max_payload_bytes")
        ),
        "{err:?}"
    );
}

#[test]
fn a_request_between_components_is_answered_while_served() {
    let server = start(MESSENGERS, messengers(), ServerConfig::default());
    ready(&server);
    assert_eq!(ask(&server, "alice", "request:bob:10000:hi"), "ok");
    let mut reply = String::new();
    eventually("alice got bob's answer", || {
        reply = ask(&server, "alice", "reply");
        reply != "pending"
    });
    assert_eq!(reply, "reply: bob got `hi` from alice");
}

/// The probe's policy with `extra` grants added.
fn probe_policy(extra: &[&str]) -> Policy {
    let mut grants = vec![
        "kv:read:data/*",
        "kv:write:data/*",
        "log:write:info",
        "kv:write:lifecycle/*",
    ];
    grants.extend_from_slice(extra);
    let list: Vec<String> = grants.iter().map(|g| format!("\"{g}\"")).collect();
    Policy::from_toml_str(&format!(
        "[components.probe]\ngrants = [{}]\n",
        list.join(", ")
    ))
    .unwrap()
}

#[test]
fn reload_widens_and_narrows_the_grant() {
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![probe()],
        ServerConfig::default(),
    );
    ready(&server);
    let before = ask(&server, "probe", "delete:data/x");
    assert!(before.starts_with("denied:"), "{before}");

    let report = server
        .reload(probe_policy(&["kv:delete:data/*"]))
        .expect("reload");
    assert_eq!(report.components.len(), 1);
    assert_eq!(report.components[0].gained, vec!["kv:delete:data/*"]);
    assert!(report.components[0].lost.is_empty());
    assert_eq!(report.to_string(), "probe: +kv:delete:data/*\n");
    assert_eq!(ask(&server, "probe", "delete:data/x"), "deleted: false");

    let report = server.reload(probe_policy(&[])).expect("reload");
    assert_eq!(report.components[0].lost, vec!["kv:delete:data/*"]);
    assert_eq!(report.to_string(), "probe: -kv:delete:data/*\n");
    let after = ask(&server, "probe", "delete:data/x");
    assert!(after.starts_with("denied:"), "{after}");

    let report = server.reload(probe_policy(&[])).expect("reload");
    assert_eq!(report.to_string(), "probe: unchanged\n");
}

#[test]
fn a_policy_that_a_component_cannot_run_under_changes_nothing() {
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![probe()],
        ServerConfig::default(),
    );
    ready(&server);
    // A pin to another file, and a wider grant beside it.
    let bad = Policy::from_toml_str(&format!(
        "[components.probe]\nsha256 = \"{}\"\n{}\n",
        "0".repeat(64),
        r#"grants = ["kv:read:data/*", "kv:write:data/*", "kv:delete:data/*"]"#
    ))
    .unwrap();
    let err = server.reload(bad).expect_err("pin mismatch");
    assert!(matches!(err, ServeError::Policy { .. }), "{err:?}");
    // The load error that refused it, as data.
    assert!(
        matches!(
            &err,
            ServeError::Policy { source: Some(load), .. }
                if matches!(**load, airssys_runtime::LoadError::DigestMismatch { .. })
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("probe") && message.contains("nothing changed"),
        "{message}"
    );
    // Still the old grant.
    let still = ask(&server, "probe", "delete:data/x");
    assert!(still.starts_with("denied:"), "{still}");
    assert_eq!(status(&server, "probe").state, ComponentState::Ready);

    // Too many instances for its limits: refused as well.
    let bad = Policy::from_toml_str(&format!(
        "[components.probe]\n{PROBE_GRANTS}\ninstances = 4\nlimits = {{ max_instances = 2 }}\n"
    ))
    .unwrap();
    let err = server
        .reload(bad)
        .expect_err("instances over max_instances");
    let message = err.to_string();
    assert!(
        message.contains("instances = 4") && message.contains("limits.max_instances"),
        "{message}"
    );
    assert_eq!(status(&server, "probe").instances, 1);
}

#[test]
fn a_required_capability_taken_away_stops_the_component_naming_it() {
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![probe()],
        ServerConfig::default(),
    );
    ready(&server);
    let narrowed = Policy::from_toml_str(
        "[components.probe]\ngrants = [\"kv:write:data/*\", \"log:write:info\"]\n",
    )
    .unwrap();
    let report = server.reload(narrowed).expect("reload");
    let stopped = report.components[0].stopped.as_deref().expect("stopped");
    assert!(stopped.contains("kv:read:data/*"), "{stopped}");
    assert!(
        report
            .to_string()
            .starts_with("probe: stopped: missing kv:read:data/*"),
        "{report}"
    );
    eventually("probe stopped", || status(&server, "probe").instances == 0);
    let probe = status(&server, "probe");
    assert_eq!(probe.state, ComponentState::Stopped);
    assert!(
        probe
            .last_error
            .unwrap_or_default()
            .contains("kv:read:data/*")
    );
    assert!(!server.ready());
    let err = text(&server, "probe", "echo:x").expect_err("stopped");
    assert!(
        matches!(&err, ServeError::Unavailable { reason, .. } if reason.contains("kv:read:data/*")),
        "{err:?}"
    );
    // Granted again: served again.
    server.reload(probe_policy(&[])).expect("reload");
    ready(&server);
    assert_eq!(ask(&server, "probe", "echo:back"), "back");
}

#[test]
fn shutdown_drains_the_call_in_flight_and_calls_shutdown() {
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![limitprobe(), probe()],
        ServerConfig::default(),
    );
    ready(&server);
    let storage = Arc::clone(server.runtime().storage());
    let slow = in_background(&server, "limitprobe", "sleep:1500");
    eventually("the slow call runs", || {
        status(&server, "limitprobe").busy == 1
    });
    let report = server.shutdown(Duration::from_secs(20));
    assert_eq!(report.completed, 1, "{report:?}");
    assert_eq!(report.abandoned, 0, "{report:?}");
    assert!(report.shutdown_errors.is_empty(), "{report:?}");
    assert_eq!(slow.join().unwrap().unwrap(), "slept");
    // probe's `shutdown` export ran (it writes this key).
    assert_eq!(
        storage
            .get("probe", "lifecycle", "shutdown")
            .unwrap()
            .as_deref(),
        Some(&b"called"[..])
    );
    let err = text(&server, "probe", "echo:x").expect_err("shutting down");
    assert!(matches!(err, ServeError::ShuttingDown), "{err:?}");
    assert_eq!(err.http_status(), 503);
    assert!(!server.ready());
    // Idempotent.
    let again = server.shutdown(Duration::ZERO);
    assert_eq!((again.completed, again.abandoned), (1, 0));
}

#[test]
fn shutdown_abandons_a_call_past_its_deadline() {
    let server = start("", vec![limitprobe()], ServerConfig::default());
    ready(&server);
    let slow = in_background(&server, "limitprobe", "sleep:2000");
    eventually("the slow call runs", || {
        status(&server, "limitprobe").busy == 1
    });
    let report = server.shutdown(Duration::from_millis(100));
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert_eq!(report.completed, 0, "{report:?}");
    // Its caller still gets the answer.
    assert_eq!(slow.join().unwrap().unwrap(), "slept");
}

#[test]
fn two_instances_serve_two_slow_calls_in_parallel() {
    let server = start(
        "[components.limitprobe]\ninstances = 2\n",
        vec![limitprobe()],
        ServerConfig::default(),
    );
    ready(&server);
    eventually("two instances", || {
        status(&server, "limitprobe").instances == 2
    });
    let a = in_background(&server, "limitprobe", "sleep:1500");
    let b = in_background(&server, "limitprobe", "sleep:1500");
    eventually("both calls run at once", || {
        status(&server, "limitprobe").busy == 2
    });
    assert_eq!(a.join().unwrap().unwrap(), "slept");
    assert_eq!(b.join().unwrap().unwrap(), "slept");
    let metrics = server.metrics_text();
    let line = r#"airssys_instances{component="limitprobe"} 2"#;
    assert!(
        metrics.lines().any(|l| l == line),
        "missing `{line}` in:\n{metrics}"
    );
}

#[test]
fn start_refuses_a_component_given_twice() {
    let policy = Policy::from_toml_str("").unwrap();
    let err = Server::start(
        Runtime::builder().policy(policy),
        vec![limitprobe(), limitprobe()],
        ServerConfig::default(),
    )
    .expect_err("twice");
    assert!(err.to_string().contains("given twice"), "{err}");
}

#[test]
fn a_reload_is_recorded_in_the_audit_trail_per_component() {
    let sink = Sink::default();
    let server = Server::start(
        Runtime::builder()
            .policy(probe_policy(&[]))
            .audit(AuditLog::to_writer(sink.clone())),
        vec![probe()],
        ServerConfig::default(),
    )
    .expect("server starts");
    ready(&server);
    server
        .reload(probe_policy(&["kv:delete:data/*"]))
        .expect("reload");
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("policy-reload"))
        .unwrap_or_else(|| panic!("no reload record in:\n{text}"));
    let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    assert_eq!(record["component"], "probe");
    assert_eq!(record["gained"], serde_json::json!(["kv:delete:data/*"]));
    assert_eq!(record["lost"], serde_json::json!([]));
    assert!(record["stopped"].is_null(), "{record}");
}

#[test]
fn a_reload_resizes_the_pool() {
    let server = start("", vec![limitprobe()], ServerConfig::default());
    ready(&server);
    assert_eq!(status(&server, "limitprobe").instances, 1);
    let two = Policy::from_toml_str("[components.limitprobe]\ninstances = 2\n").unwrap();
    let report = server.reload(two).expect("reload");
    assert_eq!(report.to_string(), "limitprobe: unchanged\n");
    eventually("two instances", || {
        status(&server, "limitprobe").instances == 2
    });
    let one = Policy::from_toml_str("[defaults]\ninstances = 1\n").unwrap();
    server.reload(one).expect("reload");
    eventually("one instance", || {
        status(&server, "limitprobe").instances == 1
    });
    assert_eq!(ask(&server, "limitprobe", "echo:still"), "still");
}

#[test]
fn a_worker_that_panics_leaves_no_caller_waiting() {
    // An embedder's delivery hook that panics on the worker's thread.
    let runtime = Runtime::builder()
        .policy(Policy::from_toml_str(MESSENGERS).unwrap())
        .on_delivery(|record| {
            if record.payload == b"boom" {
                panic!("the embedder's hook panicked");
            }
        });
    let server = Server::start(runtime, messengers(), ServerConfig::default()).expect("starts");
    ready(&server);
    server
        .publish("orders.created", b"boom".to_vec())
        .expect("publish");
    eventually("bob failed", || {
        status(&server, "bob").state == ComponentState::Failed
    });
    let err = text(&server, "bob", "log").expect_err("failed");
    assert!(
        matches!(&err, ServeError::Unavailable { reason, .. } if reason.contains("panicked")),
        "{err:?}"
    );
    // The neighbour keeps serving.
    assert_eq!(ask(&server, "alice", "name"), "alice");
}

#[test]
fn a_message_that_traps_replaces_the_instance_until_it_is_dead_lettered() {
    let server = start(
        MESSENGERS,
        messengers(),
        ServerConfig::default().restart_backoff(Duration::from_millis(10)),
    );
    ready(&server);
    server
        .publish("orders.created", b"trap".to_vec())
        .expect("publish");
    // Three attempts (BrokerConfig::max_attempts), each trapping and
    // replacing the instance; then the message is dead-lettered.
    let dead = r#"airssys_calls_total{component="bob",kind="message",outcome="dead-lettered"} 1"#;
    eventually("the message dead-lettered", || {
        server.metrics_text().lines().any(|l| l == dead)
    });
    eventually("bob ready again", || {
        status(&server, "bob").state == ComponentState::Ready
    });
    assert_eq!(status(&server, "bob").restarts, 3);
    server
        .publish("orders.created", b"fine".to_vec())
        .expect("publish");
    eventually("bob got the next message", || {
        ask(&server, "bob", "log").contains("orders.created|host|fine")
    });
}

#[test]
fn a_component_that_traps_and_spins_under_load_does_not_starve_its_neighbour() {
    let server = start(
        &format!(
            "[components.limitprobe]\nlimits = {{ cpu_time_ms = 100 }}\n[components.probe]\n{PROBE_GRANTS}\n"
        ),
        vec![limitprobe(), probe()],
        ServerConfig::default()
            .restart_backoff(Duration::from_millis(5))
            .max_restart_backoff(Duration::from_millis(20))
            .queue_bound(4),
    );
    ready(&server);
    let attackers: Vec<_> = (0..4)
        .map(|i| {
            let server = server.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|n| {
                        let attack = if (i + n) % 2 == 0 { "panic:x" } else { "spin:" };
                        text(&server, "limitprobe", attack).expect_err("the attack fails")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    while !attackers.iter().all(JoinHandle::is_finished) {
        let started = Instant::now();
        assert_eq!(ask(&server, "probe", "echo:here"), "here");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the neighbour took {:?}",
            started.elapsed()
        );
    }
    for attacker in attackers {
        for err in attacker.join().unwrap() {
            match &err {
                ServeError::Trap { message, .. } => assert!(message.contains('x'), "{err}"),
                ServeError::Limit { message, .. } => {
                    assert!(message.contains("cpu_time_ms"), "{err}");
                }
                ServeError::Busy { bound: 4, .. } => {}
                other => panic!("unexpected: {other:?}"),
            }
        }
    }
    assert!(status(&server, "limitprobe").restarts > 0);
    assert_eq!(status(&server, "probe").restarts, 0);
    eventually("limitprobe serves again", || {
        text(&server, "limitprobe", "echo:ok").is_ok_and(|r| r == "ok")
    });
}

/// A reload that starts asking for signatures is checked against the
/// components already running, from the signature read when they loaded:
/// an unsigned one refuses the policy (nothing changes), a signed one by a
/// trusted key takes it.
#[test]
fn a_reload_that_requires_a_signature_checks_the_running_components() {
    use airssys_contract::signature::{SecretKey, sign};
    let key = SecretKey::from_seed([7; 32]);
    let other = SecretKey::from_seed([8; 32]);
    let signed = sign(fixture("probe"), &key).unwrap();
    let server = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![source("probe", &signed)],
        ServerConfig::default(),
    );
    ready(&server);
    let requiring = |k: &SecretKey| {
        Policy::from_toml_str(&format!(
            "[components.probe]\n{PROBE_GRANTS}\nsigned_by = [\"{}\"]\n",
            k.public_key()
        ))
        .unwrap()
    };
    let err = server
        .reload(requiring(&other))
        .expect_err("signed by another key");
    let message = err.to_string();
    assert!(
        message.contains("not one of the trusted keys") && message.contains("nothing changed"),
        "{message}"
    );
    assert_eq!(status(&server, "probe").state, ComponentState::Ready);
    let report = server
        .reload(requiring(&key))
        .expect("signed by the trusted key");
    assert_eq!(report.components[0].stopped, None, "{report}");
    // Served under the new policy by a fresh instance.
    ready(&server);
    assert_eq!(ask(&server, "probe", "echo:signed"), "signed");

    // The same for a component loaded unsigned.
    let unsigned = start(
        &format!("[components.probe]\n{PROBE_GRANTS}\n"),
        vec![probe()],
        ServerConfig::default(),
    );
    ready(&unsigned);
    let err = unsigned.reload(requiring(&key)).expect_err("unsigned");
    assert!(err.to_string().contains("not signed"), "{err}");
}
