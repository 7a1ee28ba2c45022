//! End-to-end tests with real components built for wasm32-wasip2 from
//! `tests/fixtures/`: loading, refusals, grants, denials, storage, limits
//! and lifecycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use airssys_runtime::{
    AuditLog, Instance, LimitExceeded, LoadError, Policy, Runtime, RuntimeError,
};
use support::backends::Backend;
use support::{Sink, ask, fixture};

// The storage tests run on each storage backend (`support::backends`).
on_every_backend!(
    storage_round_trip,
    storage_denials_name_the_capability_and_how_to_grant,
    storage_quota_is_enforced,
);

const PROBE_POLICY: &str = r#"
[components.probe]
grants = [
    "kv:read:data/*", "kv:write:data/*", "kv:delete:data/*", "kv:list:data",
    "kv:write:lifecycle/*", "log:write:info", "env:read:APP_*",
]
denies = ["kv:read:data/secret"]
config = { greeting = "hello", answer = 42 }
env = { APP_MODE = "test", HOME_DIR = "/root" }
"#;

fn runtime(policy: &str) -> Runtime {
    support::runtime_with(policy)
}

fn probe(runtime: &Runtime) -> Instance {
    support::instance(runtime, "probe")
}

fn storage_round_trip(backend: &dyn Backend) {
    let rt = backend.runtime(PROBE_POLICY);
    let mut p = probe(&rt);
    assert_eq!(ask(&mut p, "get:data/a"), "none");
    assert_eq!(ask(&mut p, "set:data/a=1"), "ok");
    assert_eq!(ask(&mut p, "set:data/b=2"), "ok");
    assert_eq!(ask(&mut p, "get:data/a"), "value: 1");
    assert_eq!(ask(&mut p, "list:data"), "keys: a,b");
    assert_eq!(ask(&mut p, "delete:data/a"), "deleted: true");
    assert_eq!(ask(&mut p, "get:data/a"), "none");
    // Namespaced per component: the backend holds the key under `probe`.
    assert_eq!(
        rt.storage().get("probe", "data", "b").expect("backend get"),
        Some(b"2".to_vec())
    );
}

#[test]
fn storage_persists_across_runtime_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let build = || {
        Runtime::builder()
            .policy(Policy::from_toml_str(PROBE_POLICY).expect("policy"))
            .storage_path(&path)
            .max_instances(4)
            .build()
            .expect("runtime")
    };
    {
        let rt = build();
        let mut p = probe(&rt);
        assert_eq!(ask(&mut p, "set:data/kept=yes"), "ok");
    }
    let rt = build();
    let mut p = probe(&rt);
    assert_eq!(ask(&mut p, "get:data/kept"), "value: yes");
}

fn storage_denials_name_the_capability_and_how_to_grant(backend: &dyn Backend) {
    let rt = backend.runtime(PROBE_POLICY);
    let mut p = probe(&rt);
    let reply = ask(&mut p, "set:other/x=1");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("`kv:write:other/x`"), "{reply}");
    // The manifest (`kv:write:data/*`) does not cover it: the advice is to
    // declare it, not to grant it in the policy, which could not help.
    assert!(
        reply.contains("its manifest declares no `kv:write` pattern covering it"),
        "{reply}"
    );
    assert!(reply.contains("in `requires` or `optional`"), "{reply}");
    assert!(!reply.contains("host policy, e.g."), "{reply}");

    let reply = ask(&mut p, "get:data/secret");
    assert!(
        reply.contains("denies it with `kv:read:data/secret`"),
        "{reply}"
    );

    // Optional capability the policy does not grant.
    let reply = ask(&mut p, "list:other");
    assert!(reply.starts_with("denied: "), "{reply}");
}

#[test]
fn logging_is_limited_by_the_level_floor() {
    let rt = runtime(PROBE_POLICY);
    let mut p = probe(&rt);
    assert_eq!(ask(&mut p, "log:warn:careful"), "ok");
    let reply = ask(&mut p, "log:debug:chatty");
    assert!(reply.contains("`log:write:debug`"), "{reply}");
}

#[test]
fn environment_is_filtered_by_env_read() {
    let rt = runtime(PROBE_POLICY);
    let mut p = probe(&rt);
    assert_eq!(ask(&mut p, "env:APP_MODE"), "value: test");
    assert_eq!(ask(&mut p, "env:APP_MISSING"), "none");
    let reply = ask(&mut p, "env:HOME_DIR");
    assert!(
        reply.starts_with("denied: ") && reply.contains("env:read:HOME_DIR"),
        "{reply}"
    );
    assert_eq!(ask(&mut p, "env-list"), "APP_MODE=test");
}

#[test]
fn capabilities_lists_and_checks_the_effective_grant() {
    let rt = runtime(PROBE_POLICY);
    let mut p = probe(&rt);
    let granted = ask(&mut p, "granted");
    let mut granted: Vec<&str> = granted.split(',').collect();
    granted.sort_unstable();
    assert_eq!(
        granted,
        [
            "env:read:APP_*",
            "kv:delete:data/*",
            "kv:list:data",
            "kv:read:data/*",
            "kv:write:data/*",
            "kv:write:lifecycle/*",
            "log:write:info",
        ]
    );
    assert_eq!(ask(&mut p, "check:kv:read:data/x"), "true");
    assert_eq!(ask(&mut p, "check:kv:read:data/secret"), "false");
    assert_eq!(
        ask(&mut p, "check:net:connect:api.example.com:443"),
        "false"
    );
    let reply = ask(&mut p, "check:kv:raed:x");
    assert!(
        reply.contains("InvalidInput") && reply.contains("unknown action `raed`"),
        "{reply}"
    );
}

#[test]
fn publish_is_guarded_by_msg_publish() {
    let rt = runtime(&format!(
        "{PROBE_POLICY}\n[defaults]\ngrants = [\"msg:publish:events.>\"]\n"
    ));
    let mut p = probe(&rt);
    assert_eq!(ask(&mut p, "publish:events.created"), "ok");
    let reply = ask(&mut p, "publish:private.x");
    assert!(
        reply.starts_with("denied: ") && reply.contains("msg:publish:private.x"),
        "{reply}"
    );
    assert_eq!(ask(&mut p, "self-name"), "probe");
}

#[test]
fn wasi_is_deny_all() {
    let rt = runtime(PROBE_POLICY);
    let mut p = probe(&rt);
    assert_eq!(ask(&mut p, "env-wasi"), "");
    assert!(ask(&mut p, "read-file:/etc/passwd").starts_with("io error"));
    assert_eq!(ask(&mut p, "print:to the log"), "ok");
}

#[test]
fn audit_sink_records_each_decision() {
    let sink = Sink::default();
    let rt = Runtime::builder()
        .policy(Policy::from_toml_str(PROBE_POLICY).expect("policy"))
        .audit(AuditLog::to_writer(sink.clone()))
        .max_instances(4)
        .build()
        .expect("runtime");
    let mut p = probe(&rt);
    ask(&mut p, "set:data/a=1");
    ask(&mut p, "set:other/a=1");
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).expect("UTF-8");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    assert_eq!(records[0]["component"], "probe");
    assert_eq!(records[0]["capability"], "kv:write");
    assert_eq!(records[0]["resource"], "data/a");
    assert_eq!(records[0]["verdict"], "allow");
    assert_eq!(records[0]["rule"], "allowed by grant `kv:write:data/*`");
    assert_eq!(records[1]["verdict"], "deny");
    assert_eq!(records[1]["resource"], "other/a");
}

#[test]
fn lifecycle_init_gets_policy_config_and_shutdown_runs_on_unload() {
    let rt = runtime(PROBE_POLICY);
    let mut p = probe(&rt);
    assert_eq!(ask(&mut p, "config"), "answer=42,greeting=hello");
    p.shutdown().expect("shutdown");
    assert_eq!(
        rt.storage()
            .get("probe", "lifecycle", "shutdown")
            .expect("get"),
        Some(b"called".to_vec())
    );
}

#[test]
fn init_error_stops_the_component() {
    let rt = runtime(&PROBE_POLICY.replace("answer = 42", "fail = 1"));
    let err = rt
        .load(fixture("probe"))
        .expect("loads")
        .instantiate()
        .expect_err("init fails");
    assert!(matches!(err, RuntimeError::Init { .. }), "{err}");
    assert!(err.to_string().contains("`fail` is set"), "{err}");
}

#[test]
fn missing_required_capabilities_refuse_the_load() {
    let rt = runtime("[components.probe]\ngrants = [\"kv:read:data/*\"]\n");
    let err = rt.load(fixture("probe")).expect_err("refused");
    let LoadError::MissingCapabilities { missing, .. } = &err else {
        panic!("expected MissingCapabilities, got {err}");
    };
    let listed: Vec<String> = missing.iter().map(|m| m.capability.to_string()).collect();
    assert_eq!(listed, ["kv:write:data/*", "log:write:info"]);
    assert!(
        missing
            .iter()
            .all(|m| m.reason == airssys_runtime::MissingReason::NotCovered)
    );
    let message = err.to_string();
    assert!(
        message.contains("`kv:write:data/*`: no policy grant covers it"),
        "{message}"
    );
    assert!(
        message.contains("`log:write:info`: no policy grant covers it"),
        "{message}"
    );
    assert!(!message.contains("`kv:read:data/*`"), "{message}");
    assert!(
        message.contains(
            "add \"kv:write:data/*\", \"log:write:info\" to `grants` of [components.probe]"
        ),
        "{message}"
    );
}

#[test]
fn component_without_manifest_is_refused_unless_allowed() {
    let rt = runtime("");
    let err = rt.load(fixture("bare")).expect_err("refused");
    assert!(matches!(err, LoadError::NoManifest), "{err}");
    assert!(err.to_string().contains("#[airssys::component"), "{err}");

    let rt = runtime("allow_unannotated = true\n[defaults]\ngrants = [\"log:write\"]\n");
    let loaded = rt.load(fixture("bare")).expect("allowed");
    assert!(
        loaded.grants().is_empty(),
        "unannotated components get nothing"
    );
    let mut instance = loaded.instantiate().expect("instantiates");
    let reply: (String,) = instance.call(None, "run", ()).expect("run");
    assert!(reply.0.starts_with("denied: "), "{}", reply.0);
}

fn incompatible(name: &str) -> String {
    let rt = runtime("[defaults]\ngrants = [\"log:write\"]\n");
    match rt.load(fixture(name)) {
        Err(LoadError::Incompatible {
            message,
            mismatches,
            ..
        }) => {
            assert!(!mismatches.is_empty());
            assert!(!message.contains("implementation is missing"), "{message}");
            eprintln!("{name}: {message}");
            message
        }
        Err(other) => panic!("{name}: expected Incompatible, got {other}"),
        Ok(_) => panic!("{name}: expected a refusal"),
    }
}

#[test]
fn wrong_major_version_is_refused() {
    let message = incompatible("major");
    assert!(message.contains("airssys:core/logging@2.0.0"), "{message}");
    assert!(message.contains("1.0.0"), "{message}");
}

#[test]
fn missing_function_is_refused() {
    let message = incompatible("extra-fn");
    assert!(message.contains("flush"), "{message}");
}

#[test]
fn changed_type_is_refused() {
    let message = incompatible("changed-type");
    assert!(message.contains("log"), "{message}");
    assert!(message.contains("list<u8>"), "{message}");
}

#[test]
fn infinite_loop_is_interrupted_and_others_keep_running() {
    let rt = runtime(&format!("{PROBE_POLICY}limits = {{ cpu_time_ms = 200 }}\n"));
    let loaded = rt.load(fixture("probe")).expect("loads");
    let mut looping = loaded.instantiate().expect("instantiates");
    let mut other = loaded.instantiate().expect("instantiates");
    let started = std::time::Instant::now();
    let err = looping.request("test", b"loop").expect_err("interrupted");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        matches!(&err, RuntimeError::Limit(LimitExceeded::CpuTime { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("time limit exceeded"), "{err}");
    assert_eq!(ask(&mut other, "echo:still here"), "still here");
    assert!(
        looping.request("test", b"echo:x").is_err(),
        "a trapped instance stays stopped"
    );
}

#[test]
fn memory_cap_is_enforced() {
    let rt = runtime(&format!(
        "{PROBE_POLICY}limits = {{ memory_bytes = 16777216 }}\n"
    ));
    let mut p = probe(&rt);
    assert!(ask(&mut p, "alloc:1").starts_with("allocated"));
    let err = p.request("test", b"alloc:64").expect_err("over the cap");
    assert!(
        matches!(
            &err,
            RuntimeError::Limit(LimitExceeded::Memory {
                limit: 16777216,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("memory limit exceeded"), "{err}");
}

fn storage_quota_is_enforced(backend: &dyn Backend) {
    // Each entry `probe`/`data`/`kN` with 20 bytes costs 5 + 4 + 2 + 20 +
    // 64 (the per-entry overhead) = 95 bytes: four fit in 400.
    let rt = backend.runtime(&format!(
        "{PROBE_POLICY}limits = {{ storage_bytes = 400 }}\n"
    ));
    let mut p = probe(&rt);
    let reply = ask(&mut p, "fill:data/10x20");
    assert!(
        reply.starts_with("after 4: quota-exceeded: storage quota exceeded"),
        "{reply}"
    );
    assert!(reply.contains("the limit is 400 bytes"), "{reply}");
}
