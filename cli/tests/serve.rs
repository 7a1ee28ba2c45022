//! `airssys serve`, end to end: the real binary, real HTTP over TCP,
//! real signals (`kill -TERM/-HUP/-INT`).
//!
//! Components: the `kv-counter` example (its `reset` needs
//! `kv:delete:counter/*`, which its policy withholds: a denial), a probe
//! written here (`serve-probe`: `trap` traps, `sleep:MS` sleeps, anything
//! else is echoed) and the common echo crate. The crates build into
//! `<repo>/target/new-templates`, shared with the other CLI tests; compiled
//! components are cached in `serve-cache` there.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Answer, Client};

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    std::fs::canonicalize(common::repo()).unwrap()
}

fn shared_target() -> PathBuf {
    repo_root().join("target").join("new-templates")
}

fn kv_counter() -> PathBuf {
    repo_root().join("examples").join("kv-counter")
}

/// The kv-counter example's policy, as shipped.
fn kv_policy() -> String {
    std::fs::read_to_string(kv_counter().join("policy.toml")).unwrap()
}

/// The kv-counter policy, also granting `kv:delete:counter/*`.
fn widened_kv_policy() -> String {
    let policy = kv_policy();
    let narrow = "grants = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"log:write\"]";
    assert!(policy.contains(narrow), "{policy}");
    policy.replace(
        narrow,
        "grants = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"log:write\", \
         \"kv:delete:counter/*\"]",
    )
}

/// A component crate answering `trap` with a trap, `sleep:MS` after
/// sleeping MS milliseconds (`slept MS`), anything else with
/// `probe got <payload>`; it logs every message it receives. It requires
/// no capability (`msg:subscribe:probe.>` and `log:write` are optional).
fn probe_crate() -> PathBuf {
    let dir = shared_target().join("fixtures").join("serve-probe");
    let cargo_toml = format!(
        "[package]\nname = \"serve-probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
         airssys = {{ path = {:?} }}\n\n[workspace]\n",
        repo_root().display().to_string()
    );
    let lib_rs = r#"//! Traps, sleeps or echoes, as asked.

#[airssys::component(optional = ["msg:subscribe:probe.>", "log:write"])]
struct Probe;

impl guest::Lifecycle for Probe {}

impl guest::Handler for Probe {
    fn handle_message(message: guest::handler::Message) -> Result<(), guest::handler::Error> {
        let text = format!(
            "message on `{}` from `{}`: {}",
            message.topic,
            message.source,
            String::from_utf8_lossy(&message.payload)
        );
        let _ = Probe::host()
            .logging()
            .log(host::logging::Level::Info, "serve-probe", &text);
        Ok(())
    }

    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let text = String::from_utf8_lossy(&payload).into_owned();
        if text == "trap" {
            panic!("asked to trap");
        }
        if let Some(ms) = text.strip_prefix("sleep:") {
            let ms: u64 = ms
                .parse()
                .map_err(|_| guest::handler::Error::InvalidInput(format!("`{ms}` is no number")))?;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return Ok(format!("slept {ms}").into_bytes());
        }
        Ok(format!("probe got {text}").into_bytes())
    }
}
"#;
    for (path, text) in [
        (dir.join("Cargo.toml"), cargo_toml.as_str()),
        (dir.join("src").join("lib.rs"), lib_rs),
    ] {
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    dir
}

/// A running `airssys serve`, its output collected as it comes.
struct Served {
    child: Child,
    address: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// `airssys serve` with `args`, environment `env`, on a free loopback
/// port (unless `args` names `--listen`).
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, Arc<Mutex<String>>, Arc<Mutex<String>>) {
    spawn_in(&repo_root(), args, env)
}

/// [`spawn`] in the directory `cwd`.
fn spawn_in(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, Arc<Mutex<String>>, Arc<Mutex<String>>) {
    common::spawn_serve(cwd, &shared_target(), args, env)
}

impl Served {
    /// Starts `airssys serve` and waits until it listens and is ready.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        Served::start_in(&repo_root(), args, env)
    }

    /// [`Served::start`] in the directory `cwd`.
    fn start_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let (mut child, stdout, stderr) = spawn_in(cwd, args, env);
        let address = common::wait_listening(&mut child, &stdout, &stderr);
        let served = Served {
            child,
            address,
            stdout,
            stderr,
        };
        served.wait_ready();
        served.wait_for("\nready: every component serves", 1);
        served
    }

    fn token_header(token: &str) -> String {
        format!("Bearer {token}")
    }

    /// Waits until `GET /v1/health` answers 200.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self.call_as(None, "GET", "/v1/health", b"");
            if answer.status == 200 || answer.status == 401 {
                return;
            }
            assert!(Instant::now() < deadline, "never ready: {answer:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        self.call_as(None, method, path, body)
    }

    fn call_as(&self, token: Option<&str>, method: &str, path: &str, body: &[u8]) -> Answer {
        let header = token.map(Self::token_header);
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| ("Authorization", h))
            .into_iter()
            .collect();
        Client::connect(self.address).call(method, path, &headers, body)
    }

    fn request(&self, component: &str, payload: &str) -> Answer {
        self.call(
            "POST",
            &format!("/v1/components/{component}/request"),
            payload.as_bytes(),
        )
    }

    /// `GET /v1/components`, the entry of `component`.
    fn status_of(&self, component: &str) -> serde_json::Value {
        let answer = self.call("GET", "/v1/components", b"");
        assert_eq!(answer.status, 200, "{answer:?}");
        let all: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == component)
            .unwrap_or_else(|| panic!("no `{component}` in {all}"))
            .clone()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout or stderr holds `needle` `times` times.
    fn wait_for(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = format!("{}{}", self.stdout(), self.stderr());
            if seen.matches(needle).count() >= times {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` not printed {times} time(s):\n{seen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A temporary directory holding `policy.toml` with `text`.
fn policy_dir(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

#[test]
fn requests_are_answered_and_refusals_keep_their_status_and_reason() {
    let (_dir, policy) = policy_dir(&kv_policy());
    let kv = kv_counter();
    let probe = probe_crate();
    let served = Served::start(
        &[
            kv.to_str().unwrap(),
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    // What it loaded and granted, then where it listens.
    common::assert_in_order(
        &served.stdout(),
        &[
            "loaded `kv-counter` 0.1.0 from ",
            "  granted: kv:read:counter/*, kv:write:counter/*, log:write",
            "  optional, not granted: kv:delete:counter/*",
            "  served by 1 instance(s) (`instances` in the policy), 64 request(s) queued at most",
            "loaded `serve-probe` 0.1.0 from ",
            "  granted: (nothing)",
            "  optional, not granted: msg:subscribe:probe.>, log:write",
            "listening on http://127.0.0.1:",
        ],
    );

    let answer = served.request("serve-probe", "hello");
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "probe got hello")
    );
    let first = served.request("kv-counter", "increment");
    assert_eq!(first.status, 200, "{first:?}");
    let second = served.request("kv-counter", "increment");
    assert_eq!(
        second.body.parse::<u64>().unwrap(),
        first.body.parse::<u64>().unwrap() + 1
    );

    // A denied host call: 403, the capability named.
    let denied = served.request("kv-counter", "reset");
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(json(&denied)["error"], "Forbidden");
    // docs/serve.md shows this answer, up to its `...`.
    let page = std::fs::read_to_string(repo_root().join("docs/serve.md")).unwrap();
    let sample = page
        .lines()
        .find(|l| l.starts_with("{\"error\":\"Forbidden\""))
        .expect("docs/serve.md shows a 403 body");
    let shown = sample.split(" ...").next().unwrap();
    assert!(
        denied.body.starts_with(shown),
        "docs/serve.md shows\n{shown}\nbut the answer is\n{}",
        denied.body
    );
    assert!(
        denied.body.contains("kv:delete:counter/"),
        "the capability is named: {denied:?}"
    );
    // The components' log records are printed (kv-counter logs its start).
    served.wait_for("  log info kv-counter: started 1 time(s)", 1);
    // As docs/serve.md shows it.
    served.wait_for("DENY `kv-counter` kv:delete:counter/starts (", 1);
    served.wait_for(
        "#[method]bucket.delete): denied: no grant covers the request (deny by default)",
        1,
    );

    // The component's own refusal of its input: 400.
    let invalid = served.request("kv-counter", "explode");
    assert_eq!(invalid.status, 400, "{invalid:?}");
    assert!(invalid.body.contains("send `get`"), "{invalid:?}");

    let unknown = served.request("nobody", "x");
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.body.contains("nobody"), "{unknown:?}");

    assert_eq!(served.call("GET", "/v1/nothing", b"").status, 404);
    assert_eq!(
        served
            .call("GET", "/v1/components/kv-counter/request", b"")
            .status,
        405
    );
    assert_eq!(served.call("POST", "/v1/health", b"").status, 405);

    let health = served.call("GET", "/v1/health", b"");
    assert_eq!(health.status, 200, "{health:?}");
    let status = served.status_of("kv-counter");
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(served.status_of("serve-probe")["state"], "ready");
    let metrics = served.call("GET", "/metrics", b"");
    assert_eq!(metrics.status, 200);

    let published = served.call("POST", "/v1/topics/orders.new", b"42");
    assert_eq!(published.status, 202, "{published:?}");
    let wildcard = served.call("POST", "/v1/topics/orders.*", b"42");
    assert_eq!(wildcard.status, 400, "{wildcard:?}");

    // Beyond the body bound: 413, and the component never sees it.
    let big = vec![b'x'; 1024 * 1024 + 1];
    let answer = served.call("POST", "/v1/components/serve-probe/request", &big);
    assert_eq!(answer.status, 413, "{answer:?}");
}

#[test]
fn a_message_published_over_http_is_delivered_to_its_subscriber() {
    let (_dir, policy) = policy_dir(
        "[components.serve-probe]\ngrants = [\"msg:subscribe:probe.>\", \"log:write\"]\n\
         subscribe = [\"probe.in\"]\n",
    );
    let probe = probe_crate();
    let served = Served::start(
        &[
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    let published = served.call("POST", "/v1/topics/probe.in", b"42");
    assert_eq!(published.status, 202, "{published:?}");
    assert_eq!(json(&published)["published"], "probe.in");
    served.wait_for(
        "log info serve-probe: message on `probe.in` from `host`: 42",
        1,
    );
    // Nobody subscribes to this one: accepted, delivered to no one.
    assert_eq!(
        served.call("POST", "/v1/topics/probe.other", b"x").status,
        202
    );
}

#[test]
fn storage_in_a_file_outlives_a_graceful_shutdown() {
    let (dir, policy) = policy_dir(&kv_policy());
    let storage = dir.path().join("state.redb");
    let kv = kv_counter();
    // kv-counter's `init` adds one to its count: 1, then 2 once restarted.
    for starts in ["1", "2"] {
        let mut served = Served::start(
            &[
                kv.to_str().unwrap(),
                "--policy",
                policy.to_str().unwrap(),
                "--storage",
                storage.to_str().unwrap(),
            ],
            &[],
        );
        let count = served.request("kv-counter", "get");
        assert_eq!((count.status, count.body.as_str()), (200, starts));
        served.signal("TERM");
        assert_eq!(served.wait_exit().code(), Some(0), "{}", served.stderr());
    }
}

#[test]
fn a_trap_is_answered_500_and_a_fresh_instance_answers_the_next_request() {
    let (_dir, policy) = policy_dir("");
    let probe = probe_crate();
    let served = Served::start(
        &[
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(served.request("serve-probe", "before").status, 200);
    let trapped = served.request("serve-probe", "trap");
    assert_eq!(trapped.status, 500, "{trapped:?}");
    assert!(trapped.body.contains("trap"), "{trapped:?}");
    // The instance is replaced (after a short backoff); the next request
    // is answered by the new one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let answer = served.request("serve-probe", "after");
        if answer.status != 503 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (after.status, after.body.as_str()),
        (200, "probe got after")
    );
    let status = served.status_of("serve-probe");
    assert_eq!(status["restarts"], 1, "{status}");
    assert_eq!(status["state"], "ready", "{status}");
}

#[test]
fn sigterm_lets_the_call_in_flight_finish_then_exits_0() {
    let (_dir, policy) = policy_dir("");
    let probe = probe_crate();
    let mut served = Served::start(
        &[
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    let address = served.address;
    let slow = std::thread::spawn(move || {
        Client::connect(address).call(
            "POST",
            "/v1/components/serve-probe/request",
            &[],
            b"sleep:3000",
        )
    });
    // Signal once the call is in the component.
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.status_of("serve-probe")["busy"] != 1 {
        assert!(Instant::now() < deadline, "the slow call never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    served.signal("TERM");
    let answer = slow.join().unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "slept 3000"));
    let status = served.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "{}\n{}",
        served.stdout(),
        served.stderr()
    );
    common::assert_in_order(
        &served.stdout(),
        &[
            "SIGTERM: no longer accepting",
            "shutdown: 1 call(s) completed, 0 abandoned",
        ],
    );
}

#[test]
fn a_second_signal_during_the_drain_exits_at_once() {
    let (_dir, policy) = policy_dir("");
    let probe = probe_crate();
    let mut served = Served::start(
        &[
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    let address = served.address;
    let slow = std::thread::spawn(move || {
        let mut client = Client::connect(address);
        let _ = client.writer.write_all(
            b"POST /v1/components/serve-probe/request HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nsleep:9500",
        );
        let mut rest = String::new();
        let _ = client.reader.read_to_string(&mut rest);
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.status_of("serve-probe")["busy"] != 1 {
        assert!(Instant::now() < deadline, "the slow call never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    served.signal("INT");
    served.wait_for("SIGINT: no longer accepting", 1);
    let asked = Instant::now();
    served.signal("INT");
    let status = served.wait_exit();
    assert_eq!(status.code(), Some(130), "{}", served.stderr());
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "it waited for the 9.5 s call"
    );
    assert!(served.stderr().contains("SIGINT again: exiting at once"));
    slow.join().unwrap();
}

#[test]
fn sighup_widens_then_narrows_grants_without_a_restart() {
    let (_dir, policy) = policy_dir(&kv_policy());
    let kv = kv_counter();
    let mut served = Served::start(
        &[kv.to_str().unwrap(), "--policy", policy.to_str().unwrap()],
        &[],
    );
    assert_eq!(served.request("kv-counter", "reset").status, 403);

    std::fs::write(&policy, widened_kv_policy()).unwrap();
    served.signal("HUP");
    served.wait_for("SIGHUP: policy reloaded", 1);
    served.wait_for("kv-counter: +kv:delete:counter/*", 1);
    // And what the operator changed, as `airssys policy diff` prints it.
    served.wait_for("policy diff:", 1);
    served.wait_for("[components.kv-counter]", 1);
    served.wait_for("added: kv:delete:counter/*", 1);
    let reset = served.request("kv-counter", "reset");
    assert_eq!(
        (reset.status, reset.body.as_str()),
        (200, "reset"),
        "{}",
        served.stderr()
    );

    std::fs::write(&policy, kv_policy()).unwrap();
    served.signal("HUP");
    served.wait_for("SIGHUP: policy reloaded", 2);
    served.wait_for("kv-counter: -kv:delete:counter/*", 1);
    served.wait_for("removed: kv:delete:counter/*", 1);
    let denied = served.request("kv-counter", "reset");
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(denied.body.contains("kv:delete:counter/"), "{denied:?}");
    // The same process served throughout.
    assert!(served.is_running());
    assert_eq!(served.request("kv-counter", "get").status, 200);
}

#[test]
fn a_bad_policy_on_reload_is_refused_and_the_old_one_keeps_serving() {
    let (dir, policy) = policy_dir(&widened_kv_policy());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let kv = kv_counter();
    let served = Served::start(
        &[
            kv.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
    );
    let token = Some("s3cret");
    let reset = |served: &Served| {
        served.call_as(token, "POST", "/v1/components/kv-counter/request", b"reset")
    };
    assert_eq!(reset(&served).status, 200);

    // Not TOML: refused by the admin call (400, the line named) and by
    // SIGHUP; the widened grant stays.
    std::fs::write(&policy, "[components.kv-counter\ngrants = [").unwrap();
    let refused = served.call_as(token, "POST", "/v1/admin/reload", b"");
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body.contains("policy.toml:1:"), "{refused:?}");
    assert!(
        refused.body.contains("old policy keeps serving"),
        "{refused:?}"
    );
    served.signal("HUP");
    served.wait_for(
        "SIGHUP: policy reload refused: policy refused, nothing changed: ",
        1,
    );
    served.wait_for("; the old policy keeps serving", 2);
    assert_eq!(reset(&served).status, 200);

    // A policy key that does not exist: refused the same way.
    std::fs::write(
        &policy,
        widened_kv_policy().replace("limits = ", "limitz = "),
    )
    .unwrap();
    let refused = served.call_as(token, "POST", "/v1/admin/reload", b"");
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.body.contains("limitz"), "{refused:?}");
    assert_eq!(reset(&served).status, 200);

    // A good one narrows; the admin call answers the report.
    std::fs::write(&policy, kv_policy()).unwrap();
    let reloaded = served.call_as(token, "POST", "/v1/admin/reload", b"");
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    assert!(
        reloaded.body.contains("kv:delete:counter/*"),
        "the report names what was lost: {reloaded:?}"
    );
    assert_eq!(reset(&served).status, 403);
}

#[test]
fn a_reload_that_takes_a_required_capability_stops_the_component_naming_it() {
    let (dir, policy) = policy_dir(&kv_policy());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret").unwrap();
    let kv = kv_counter();
    let probe = probe_crate();
    let served = Served::start(
        &[
            kv.to_str().unwrap(),
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
    );
    let token = Some("s3cret");
    std::fs::write(&policy, kv_policy().replace("\"kv:write:counter/*\", ", "")).unwrap();
    let reloaded = served.call_as(token, "POST", "/v1/admin/reload", b"");
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    let report = json(&reloaded);
    let kv_report = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kv-counter")
        .unwrap()
        .clone();
    assert!(
        kv_report["stopped"]
            .as_str()
            .is_some_and(|why| why.contains("kv:write:counter/*")),
        "{report}"
    );
    served.wait_for("POST /v1/admin/reload: policy reloaded", 1);
    served.wait_for("  kv-counter: stopped: ", 1);
    let answer = served.call_as(token, "POST", "/v1/components/kv-counter/request", b"get");
    assert_eq!(answer.status, 503, "{answer:?}");
    let status = served.call_as(token, "GET", "/v1/components", b"");
    assert!(status.body.contains("\"stopped\""), "{status:?}");
    // The neighbour serves on; health says not every component serves.
    let answer = served.call_as(token, "POST", "/v1/components/serve-probe/request", b"x");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(served.call_as(token, "GET", "/v1/health", b"").status, 503);
}

#[test]
fn with_a_token_requests_without_it_get_401_and_never_reach_a_component() {
    let (_dir, policy) = policy_dir("");
    let probe = probe_crate();
    let served = Served::start(
        &[
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[("AIRSSYS_SERVE_TOKEN", "from-env")],
    );
    assert!(
        served
            .stdout()
            .contains("every request needs `Authorization: Bearer <token>`"),
        "{}",
        served.stdout()
    );
    for token in [None, Some("wrong"), Some("from-en")] {
        for (method, path) in [
            ("POST", "/v1/components/serve-probe/request"),
            ("GET", "/v1/components"),
            ("GET", "/metrics"),
            ("POST", "/v1/admin/reload"),
        ] {
            let answer = served.call_as(token, method, path, b"x");
            assert_eq!(answer.status, 401, "{token:?} {method} {path}: {answer:?}");
        }
    }
    let answer = served.call_as(
        Some("from-env"),
        "POST",
        "/v1/components/serve-probe/request",
        b"x",
    );
    assert_eq!((answer.status, answer.body.as_str()), (200, "probe got x"));
    let status = served.call_as(Some("from-env"), "GET", "/v1/components", b"");
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(
        status[0]["calls"], 1,
        "only the call with the token: {status}"
    );
}

#[test]
fn a_non_loopback_address_needs_allow_remote_and_a_token() {
    let (dir, policy) = policy_dir("");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t").unwrap();
    let policy = policy.to_str().unwrap();
    let token_file = token_file.to_str().unwrap();
    // Refused before anything is built: the component does not exist.
    for (args, env, missing) in [
        (vec![], vec![], "pass --allow-remote and a token"),
        (
            vec!["--allow-remote"],
            vec![],
            "give a token with --token-file FILE",
        ),
        (
            vec!["--token-file", token_file],
            vec![],
            "pass --allow-remote",
        ),
        (
            vec![],
            vec![("AIRSSYS_SERVE_TOKEN", "t")],
            "pass --allow-remote",
        ),
    ] {
        let mut all = vec!["no-such.wasm", "--policy", policy, "--listen", "0.0.0.0:0"];
        all.extend(args.iter().copied());
        let (mut child, stdout, stderr) = spawn(&all, &env);
        let status = child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let stderr = stderr.lock().unwrap().clone();
        assert_eq!(status.code(), Some(2), "{all:?}: {stderr}");
        assert!(
            stderr.contains("refusing to listen on 0.0.0.0:0: it is not a loopback address"),
            "{all:?}: {stderr}"
        );
        assert!(stderr.contains(missing), "{all:?}: {stderr}");
        assert!(!stdout.lock().unwrap().contains("listening"));
    }
    // A token file that is empty is refused too.
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let empty = dir.path().join("empty");
    let (mut child, _, stderr) = spawn(
        &[
            "no-such.wasm",
            "--policy",
            policy,
            "--token-file",
            empty.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(child.wait().unwrap().code(), Some(2));
    std::thread::sleep(Duration::from_millis(100));
    assert!(stderr.lock().unwrap().contains("is empty"));
}

#[test]
fn serve_help_lists_every_flag_with_an_example() {
    let out = common::airssys(&["serve", "--help"]);
    let help = common::succeeded(&out);
    for flag in [
        "--policy <FILE>",
        "--listen <ADDR>",
        "[default: 127.0.0.1:7878]",
        "--storage <PATH>",
        "--allow-remote",
        "--token-file <FILE>",
        "AIRSSYS_SERVE_TOKEN",
        "--drain-timeout <SECS>",
        "--queue <N>",
        "--cache-dir <DIR>",
        "--no-cache",
        "Examples:",
        "airssys serve examples/kv-counter --policy examples/kv-counter/policy.toml",
        "curl -X POST",
    ] {
        assert!(help.contains(flag), "`{flag}` missing from:\n{help}");
    }
}

/// 8 clients, each on its own keep-alive connection, send `per_client`
/// requests each (a tenth first, as warm-up), alternating between two
/// components; every answer must be the one its request asked for.
/// Returns the server's resident memory after the warm-up and at the end
/// (KiB, from `/proc`).
fn load(per_client: usize) -> (u64, u64) {
    let (_dir, policy) = policy_dir("");
    let probe = probe_crate();
    let echo = common::echo_crate("serve-echo");
    let served = Served::start(
        &[
            probe.to_str().unwrap(),
            echo.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--queue",
            "16",
        ],
        &[],
    );
    let address = served.address;
    let round = |from: usize, to: usize| {
        let clients: Vec<_> = (0..8)
            .map(|client| {
                std::thread::spawn(move || {
                    let mut connection = Client::connect(address);
                    let mut wrong = Vec::new();
                    for i in from..to {
                        let payload = format!("{client}-{i}");
                        let (component, expected) = if i % 2 == 0 {
                            ("serve-probe", format!("probe got {payload}"))
                        } else {
                            ("serve-echo", format!("serve-echo got {payload}"))
                        };
                        let answer = connection.call(
                            "POST",
                            &format!("/v1/components/{component}/request"),
                            &[],
                            payload.as_bytes(),
                        );
                        if answer.status != 200 || answer.body != expected {
                            wrong.push(format!("{payload}: {answer:?}"));
                        }
                    }
                    wrong
                })
            })
            .collect();
        let wrong: Vec<String> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} requests lost or mis-answered, e.g. {:?}",
            wrong.len(),
            8 * (to - from),
            &wrong[..wrong.len().min(5)]
        );
    };
    let warm_up = per_client / 10;
    round(0, warm_up);
    let warm = resident_kib(served.child.id());
    round(warm_up, per_client);
    let end = resident_kib(served.child.id());
    let calls: u64 = ["serve-probe", "serve-echo"]
        .iter()
        .map(|c| served.status_of(c)["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(calls, 8 * per_client as u64);
    (warm, end)
}

/// The resident memory of process `pid`, in KiB (`VmRSS`).
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn eight_clients_get_every_answer_right() {
    load(250);
}

/// By hand: `cargo test -p airssys-cli --test serve -- --ignored
/// --nocapture` (8 × 10,000 requests): every answer right, and resident
/// memory after 8,000 requests within 16 MiB of what it is after 80,000.
#[test]
#[ignore = "long: 80,000 requests; run by hand"]
fn eight_clients_times_ten_thousand() {
    let (warm, end) = load(10_000);
    println!("resident memory: {warm} KiB after warm-up, {end} KiB at the end");
    assert!(
        end <= warm + 16 * 1024,
        "resident memory grew from {warm} KiB to {end} KiB"
    );
}

#[test]
fn a_component_the_policy_does_not_cover_is_refused_with_the_fix() {
    let (_dir, policy) = policy_dir("");
    let kv = kv_counter();
    let (mut child, stdout, stderr) = spawn(
        &[kv.to_str().unwrap(), "--policy", policy.to_str().unwrap()],
        &[],
    );
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stderr = stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the host refused to load")
            && stderr.contains("`kv:read:counter/*`: no policy grant covers it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("grants = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"log:write\"]"),
        "the fix names the grant: {stderr}"
    );
    // `serve` has no `--grant`: no hint to use one.
    assert!(!stderr.contains("--grant"), "{stderr}");
    assert!(!stdout.lock().unwrap().contains("listening"));
}

#[test]
fn a_component_whose_init_keeps_failing_is_reported_and_health_is_503() {
    // One byte of storage: kv-counter's `init` cannot store its count.
    let (_dir, policy) =
        policy_dir(&kv_policy().replace("storage_bytes = 1048576", "storage_bytes = 1"));
    let kv = kv_counter();
    let probe = probe_crate();
    let (mut child, stdout, stderr) = spawn(
        &[
            kv.to_str().unwrap(),
            probe.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stderr
        .lock()
        .unwrap()
        .contains("not serving: `kv-counter` failed to start")
    {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "{}\n{}",
            stdout.lock().unwrap(),
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        stderr.lock().unwrap().contains("storage_bytes"),
        "the limit is named: {}",
        stderr.lock().unwrap()
    );
    let text = stdout.lock().unwrap().clone();
    let address: SocketAddr = text
        .split("listening on http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut client = Client::connect(address);
    assert_eq!(client.call("GET", "/v1/health", &[], b"").status, 503);
    let answer = client.call("POST", "/v1/components/kv-counter/request", &[], b"get");
    assert_eq!(answer.status, 503, "{answer:?}");
    let answer = client.call("POST", "/v1/components/serve-probe/request", &[], b"x");
    assert_eq!(answer.status, 200, "the neighbour serves: {answer:?}");
    assert!(!text.contains("\nready: "), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_policy_file_is_read_before_anything_is_built() {
    let (dir, _) = policy_dir("");
    let missing = dir.path().join("missing.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["serve", "no-such.wasm", "--policy"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("missing.toml"),
        "{}",
        common::stderr(&out)
    );
}

/// The words of a shell line: single and double quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unclosed quote in `{line}`");
    out.extend(word);
    out
}

/// Runs one `curl` line of docs/serve.md with this test's client: `-s`,
/// `-X METHOD`, `--data TEXT` (POST unless `-X` says otherwise),
/// `-H "NAME: VALUE"` and the URL, with `127.0.0.1:7878` standing for the
/// address the server really listens on. Returns the body; the status must
/// be 2xx.
fn curl(words: &[String], address: SocketAddr, line: &str) -> String {
    let mut method = None;
    let mut data: Option<String> = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut url = None;
    let mut rest = words[1..].iter();
    while let Some(word) = rest.next() {
        match word.as_str() {
            "-s" => {}
            "-X" => method = rest.next().cloned(),
            "--data" => data = rest.next().cloned(),
            "-H" => {
                let header = rest.next().unwrap();
                let (name, value) = header.split_once(':').unwrap();
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            other if other.starts_with("http://") => url = Some(other.to_owned()),
            other => panic!("`{line}`: this test's curl knows no `{other}`"),
        }
    }
    let url = url.unwrap_or_else(|| panic!("`{line}` names no URL"));
    let path = url
        .strip_prefix("http://127.0.0.1:7878")
        .unwrap_or_else(|| panic!("`{line}`: the page's URLs start with http://127.0.0.1:7878"));
    let method = method.unwrap_or_else(|| if data.is_some() { "POST" } else { "GET" }.to_owned());
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let answer =
        Client::connect(address).call(&method, path, &headers, data.unwrap_or_default().as_bytes());
    assert!((200..300).contains(&answer.status), "`{line}`: {answer:?}");
    answer.body
}

/// docs/serve.md, followed to the letter in a fresh directory outside the
/// repository: every line of its ```` ```sh ```` blocks runs in order
/// (`cd` carries over), and the ```` ```text ```` block right after a
/// block lists what its commands print, in order (`…` stands for any
/// text).
///
/// - `airssys new ...` runs the binary this test was built with.
/// - `[NAME=VALUE ...] airssys serve ...` starts it in the background
///   (the page says "in another terminal"), with `--listen 127.0.0.1:0`
///   added so that the test needs no fixed port; `127.0.0.1:7878` in the
///   page stands for the address it prints. Its output is what it printed
///   once ready. A server still running when the next `airssys serve`
///   starts, or at the end, is stopped with SIGINT (the page's Ctrl-C),
///   and must print its shutdown report and exit 0.
/// - `curl ...` is sent with this test's HTTP client ([`curl`]).
#[test]
fn docs_serve_md_runs_as_written() {
    let page = std::fs::read_to_string(repo_root().join("docs/serve.md")).unwrap();
    let lines: Vec<&str> = page.lines().collect();
    // (info, body) of every fence.
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(info) = lines[i].strip_prefix("```") {
            let mut body = Vec::new();
            i += 1;
            while !lines[i].starts_with("```") {
                body.push(lines[i].to_owned());
                i += 1;
            }
            blocks.push((info.trim().to_owned(), body));
        }
        i += 1;
    }

    let tmp = tempfile::tempdir().unwrap();
    let mut cwd = std::fs::canonicalize(tmp.path()).unwrap();
    let mut server: Option<Served> = None;
    let stop = |served: &mut Served| {
        served.signal("INT");
        let status = served.wait_exit();
        assert_eq!(status.code(), Some(0), "{}", served.stderr());
        assert!(
            served.stdout().contains("\nshutdown: "),
            "{}",
            served.stdout()
        );
    };
    let mut ran = 0;
    for (n, (info, body)) in blocks.iter().enumerate() {
        assert_ne!(info, "sh,no-run", "docs/serve.md runs every command");
        if info != "sh" {
            continue;
        }
        let mut printed = String::new();
        for line in body.iter().filter(|l| !l.trim().is_empty()) {
            let words = words(line);
            let env: Vec<(&str, &str)> = words
                .iter()
                .map_while(|w| {
                    w.split_once('=')
                        .filter(|(k, _)| k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                })
                .collect();
            let command = &words[env.len()..];
            ran += 1;
            match command.first().map(String::as_str) {
                Some("cd") => cwd = cwd.join(&command[1]),
                Some("curl") => {
                    let address = server.as_ref().expect("a server runs").address;
                    printed.push_str(&curl(command, address, line));
                    printed.push('\n');
                }
                Some("airssys") if command.get(1).is_some_and(|c| c == "serve") => {
                    if let Some(mut running) = server.take() {
                        stop(&mut running);
                    }
                    let args: Vec<&str> = command[2..].iter().map(String::as_str).collect();
                    let served = Served::start_in(&cwd, &args, &env);
                    printed.push_str(
                        &served
                            .stdout()
                            .replace(&served.address.to_string(), "127.0.0.1:7878"),
                    );
                    server = Some(served);
                }
                Some("airssys") => {
                    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
                        .args(&command[1..])
                        .current_dir(&cwd)
                        .env_remove("AIRSSYS_PATH")
                        .output()
                        .unwrap();
                    let stdout = common::succeeded(&out);
                    printed.push_str(&stdout);
                }
                _ => {
                    panic!("docs/serve.md: this test runs `airssys`, `curl` and `cd` only: {line}")
                }
            }
        }
        if let Some((next, expected)) = blocks.get(n + 1)
            && next == "text"
        {
            // `…` in the page stands for any text.
            let needles: Vec<&str> = expected
                .iter()
                .flat_map(|line| line.split('…'))
                .filter(|part| !part.is_empty())
                .collect();
            common::assert_in_order(&printed, &needles);
        }
    }
    assert!(ran >= 8, "docs/serve.md runs only {ran} commands");
    stop(server.as_mut().expect("docs/serve.md serves something"));
}

/// Two hosts on one NATS server: this `airssys serve --nats` and a
/// `NatsBroker` of the test process standing for another host. A request
/// from the other host reaches the served component and is answered; a
/// message published over HTTP on the served host reaches a subscriber on
/// the other one, with the host as its source.
#[test]
fn served_components_answer_and_publish_across_hosts_over_nats() {
    use airssys_runtime::Broker;
    use airssys_runtime::broker::Subscriber;
    use airssys_runtime::broker::{Delivery, NatsBroker, ReplyOutcome, ReplyPoll, ReplySlot};
    use airssys_runtime::contract::capability::{Capability, GrantSet};

    let nats = common::NatsServer::start();
    let echo = common::echo_crate("serve-nats-echo");
    let (_dir, policy) = policy_dir("");
    let url = nats.url();
    let served = Served::start(
        &[
            echo.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--nats",
            &url,
        ],
        &[],
    );
    served.wait_for("messages and requests over NATS", 1);

    let other = NatsBroker::builder(url.as_str())
        .connect()
        .expect("connects");
    let slot = Arc::new(ReplySlot::new(Duration::from_secs(20), Arc::default()));
    other
        .request(
            "tester",
            "serve-nats-echo",
            b"hi".to_vec(),
            Arc::clone(&slot),
        )
        .expect("the served component takes requests over NATS");
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        match slot.poll() {
            ReplyPoll::Pending => {
                assert!(Instant::now() < deadline, "no answer");
                std::thread::sleep(Duration::from_millis(10));
            }
            ReplyPoll::Ready(ReplyOutcome::Reply(bytes)) => break bytes,
            other => panic!("{other:?}\n{}", served.stderr()),
        }
    };
    assert_eq!(reply, b"serve-nats-echo got hi");

    let pattern = Capability::parse("msg:subscribe:orders.*").unwrap();
    let grants = GrantSet::builder().allow(pattern.clone()).build();
    other.register("watcher", Subscriber::new(vec![pattern], grants));
    assert!(other.flush(), "subscribed");
    let published = served.call("POST", "/v1/topics/orders.created", b"hello");
    assert_eq!(published.status, 202, "{published:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while other.pending("watcher") == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing arrived on the other host"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    match other.take("watcher") {
        Some(Delivery::Message { envelope, .. }) => {
            assert_eq!(&*envelope.topic, "orders.created");
            assert_eq!(&*envelope.source, "host");
            assert_eq!(&*envelope.payload, b"hello");
        }
        other => panic!("{other:?}"),
    }
}

/// `airssys serve --observe NAME --audit FILE`: the component is granted
/// what its manifest declares while served (kv-counter's optional
/// `kv:delete:counter/*`, which its policy withholds, so `reset` works),
/// stderr says it is observing, and `airssys policy propose` reads the
/// audit file into a policy granting what was used.
#[test]
fn serve_observes_a_component_for_policy_propose() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, kv_policy()).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let kv = kv_counter();
    let served = Served::start(
        &[
            kv.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--observe",
            "kv-counter",
            "--audit",
            audit.to_str().unwrap(),
        ],
        &[],
    );
    served.wait_for("airssys: OBSERVING `kv-counter`", 1);
    let reset = served.request("kv-counter", "reset");
    assert_eq!(
        (reset.status, reset.body.as_str()),
        (200, "reset"),
        "{reset:?}"
    );
    drop(served);

    let proposed = common::airssys(&[
        "policy",
        "propose",
        "--audit",
        audit.to_str().unwrap(),
        "--component",
        "kv-counter",
    ]);
    let text = common::succeeded(&proposed);
    assert!(text.contains("[components.kv-counter]"), "{text}");
    assert!(text.contains("\"kv:delete:counter/"), "{text}");
}
