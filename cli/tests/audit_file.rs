//! `--audit FILE` where FILE cannot take the records as fast as they come
//! (a FIFO nobody reads, a full pipe, a stalled disk): a component that
//! makes many audited calls must not hold its own call, nor the calls of
//! its neighbours. The audit file is written through a bounded queue by a
//! thread of its own (cli/src/output.rs); what does not fit is dropped,
//! counted and said.
//!
//! `airssys serve` and `airssys run` are checked alike.
//!
//! Components written here: `denier` makes as many storage writes its
//! policy refuses as its request asks (one audited refusal each);
//! `quiet` (as in serve_output.rs) logs one record per request, an
//! allowed call, audited too.

#![allow(clippy::unwrap_used)]

mod common;

use common::Client;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refusals `denier` makes in one call: far more than a pipe (64 KiB)
/// and the audit queue (8,192 lines) hold.
const REFUSALS: usize = 20_000;

fn denier_crate() -> std::path::PathBuf {
    common::component_crate(
        "denier",
        r#"//! Makes as many refused storage writes as asked.

#[airssys::component(optional = ["kv:write:denier/*"])]
struct Denier;

impl guest::Lifecycle for Denier {}

impl guest::Handler for Denier {
    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let count: usize = String::from_utf8_lossy(&payload).parse().unwrap_or(0);
        let mut refused = 0;
        for i in 0..count {
            // Not granted by the policy: a refusal, audited.
            let denied = Denier::host()
                .storage()
                .open("denier")
                .and_then(|bucket| bucket.set(&format!("k{i}"), b"x"))
                .is_err();
            if denied {
                refused += 1;
            }
        }
        Ok(format!("refused {refused} of {count}").into_bytes())
    }
}
"#,
    )
}

/// `denier`'s refusals are all recorded (no per-component rate limit in
/// the way): only the audit file's queue may drop them.
const POLICY: &str = r#"
[components.denier]
grants = []
limits = { audit_denials_per_second = 100000000 }

[components.quiet]
grants = ["log:write"]
"#;

/// A FIFO at `path`, held open for reading and writing by the test, so
/// the host's open of it for writing succeeds, and nobody reads it until
/// [`Fifo::read`].
struct Fifo(File);

impl Fifo {
    fn make(path: &Path) -> Fifo {
        let made = Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run `mkfifo` (coreutils; `apt-get install coreutils`): {e}")
            });
        assert!(made.success(), "mkfifo {}", path.display());
        // O_RDWR on a FIFO never waits for the other end (Linux).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        Fifo(file)
    }

    /// Starts reading the FIFO: what came so far, line by line, as it
    /// comes.
    fn read(&self) -> Arc<Mutex<String>> {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        let mut reader = BufReader::new(self.0.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        text
    }
}

/// Waits (at most 60 s) until `text` holds `needle`.
fn wait_for(text: &Mutex<String>, needle: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text.lock().unwrap().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{what}: no `{needle}` in:\n{}",
            text.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// In the audit file's text: `denier`'s refusals written, and the
/// refusals its `not_written` records say were dropped. Every line must
/// be a JSON record.
fn refusals_in(written: &str) -> (u64, u64) {
    let mut refusals_written = 0;
    let mut said_dropped = 0;
    for line in written.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if record["component"] == "denier" && record["verdict"] == "deny" {
            refusals_written += 1;
        }
        if let Some(n) = record["not_written"]["refused"].as_u64() {
            said_dropped += n;
        }
    }
    (refusals_written, said_dropped)
}

/// `airssys serve` of `component` and `quiet` under `policy`, its
/// `--audit` file a FIFO nobody reads yet: the temporary directory, the
/// FIFO, the host, its address and its stderr as printed so far.
fn serve_with_blocked_audit_file(
    component: &std::path::Path,
    policy: &str,
) -> (
    tempfile::TempDir,
    Fifo,
    common::Killed,
    std::net::SocketAddr,
    Arc<Mutex<String>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let fifo_path = dir.path().join("audit.fifo");
    let fifo = Fifo::make(&fifo_path);
    let quiet = common::quiet_crate();
    let (child, stdout, stderr) = common::spawn_serve(
        dir.path(),
        &common::shared_target(),
        &[
            component.to_str().unwrap(),
            quiet.to_str().unwrap(),
            "--policy",
            policy_path.to_str().unwrap(),
            "--audit",
            fifo_path.to_str().unwrap(),
        ],
        &[],
    );
    let mut served = common::Killed(child);
    let address = common::wait_listening(&mut served.0, &stdout, &stderr);
    (dir, fifo, served, address, stderr)
}

#[test]
fn a_blocked_audit_file_holds_no_component_and_counts_what_it_drops() {
    let (_dir, fifo, mut served, address, stderr) =
        serve_with_blocked_audit_file(&denier_crate(), POLICY);

    // The FIFO fills within the first records; the rest of the call must
    // not wait for it.
    let denier_answer = common::request_on_thread(address, "denier", &REFUSALS.to_string());
    std::thread::sleep(Duration::from_secs(1));
    // The neighbour, whose allowed call is audited too, answers within a
    // few seconds.
    for i in 0..3 {
        let answer = common::request_on_thread(address, "quiet", &format!("q{i}"))
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| {
                panic!("the neighbour did not answer within 5 s while the audit file was blocked")
            });
        assert_eq!(answer, (200, format!("quiet got q{i}")));
    }
    let answer = denier_answer
        .recv_timeout(Duration::from_secs(60))
        .expect("the refused component's call did not end while the audit file was blocked");
    assert_eq!(answer, (200, format!("refused {REFUSALS} of {REFUSALS}")));

    // The drops are counted, by what they record.
    let metrics = Client::connect(address)
        .call("GET", "/metrics", &[], b"")
        .body;
    let dropped = common::metric(
        &metrics,
        "airssys_audit_file_dropped_total{record=\"refused\"}",
    );
    assert!(dropped > 0, "{metrics}");

    // The FIFO is read again: what was queued comes out, then one record
    // says how many were not written; the host says so on stderr too.
    let written = fifo.read();
    wait_for(&written, "\"not_written\"", "the audit file");
    wait_for(&stderr, "audit file", "stderr");
    let status = Command::new("kill")
        .args(["-TERM", &served.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(served.0.wait().unwrap().code(), Some(0));
    std::thread::sleep(Duration::from_millis(300));
    let written = written.lock().unwrap().clone();
    let stderr = stderr.lock().unwrap().clone();

    // Every line is a JSON record; nothing dropped silently: the refusals
    // written plus those said dropped are all the refusals.
    let (refusals_written, said_dropped) = refusals_in(&written);
    eprintln!("{refusals_written} refusals written, {dropped} dropped");
    assert_eq!(said_dropped, dropped, "{stderr}");
    assert_eq!(refusals_written + dropped, REFUSALS as u64, "{stderr}");
    assert!(
        stderr.contains(&format!("{dropped} refused call(s)")),
        "{stderr}"
    );
}

fn chatty_crate() -> std::path::PathBuf {
    common::component_crate(
        "chatty",
        r#"//! Logs as many records as asked (allowed calls, each audited).

#[airssys::component(optional = ["log:write"])]
struct Chatty;

impl guest::Lifecycle for Chatty {}

impl guest::Handler for Chatty {
    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let count: usize = String::from_utf8_lossy(&payload).parse().unwrap_or(0);
        for i in 0..count {
            let _ = Chatty::host()
                .logging()
                .log(host::logging::Level::Debug, "chatty", &format!("record {i}"));
        }
        Ok(format!("logged {count}").into_bytes())
    }
}
"#,
    )
}

/// A component whose allowed calls flood the blocked audit file loses its
/// own oldest records to its neighbour's, never the neighbour's: the
/// queue knows whose each record is.
#[test]
fn a_component_flooding_the_audit_file_loses_its_own_records_not_its_neighbours() {
    let (_dir, fifo, _served, address, stderr) = serve_with_blocked_audit_file(
        &chatty_crate(),
        "[components.chatty]\ngrants = [\"log:write\"]\n\n[components.quiet]\ngrants = [\"log:write\"]\n",
    );
    // Far more allowed calls than the queue's share for them (6,144).
    let answer = common::request_on_thread(address, "chatty", &REFUSALS.to_string())
        .recv_timeout(Duration::from_secs(60))
        .expect("the chatty component's call did not end while the audit file was blocked");
    assert_eq!(answer, (200, format!("logged {REFUSALS}")));
    // The neighbour's allowed calls come once the queue is full.
    for i in 0..3 {
        let answer = common::request_on_thread(address, "quiet", &format!("q{i}"))
            .recv_timeout(Duration::from_secs(5))
            .expect("the neighbour did not answer within 5 s");
        assert_eq!(answer, (200, format!("quiet got q{i}")));
    }
    let written = fifo.read();
    wait_for(&written, "\"not_written\"", "the audit file");
    let quiet_records = || {
        written
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(r#""component":"quiet""#))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while quiet_records() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        quiet_records(),
        3,
        "the neighbour's audit records were dropped for the flooder's:\n{}",
        stderr.lock().unwrap()
    );
}

/// `run`'s policy: `denier` only, its refusals all recorded.
const RUN_POLICY: &str = r#"
[components.denier]
grants = []
limits = { audit_denials_per_second = 100000000 }
"#;

#[test]
fn run_with_a_blocked_audit_file_ends_its_call_and_says_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, RUN_POLICY).unwrap();
    let fifo_path = dir.path().join("audit.fifo");
    let fifo = Fifo::make(&fifo_path);
    let denier = denier_crate();
    let args = [
        "run",
        denier.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ];
    // Built first (its output read), so the bound below is the call's.
    common::succeeded(&common::airssys_building(&args));

    let mut child = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .args(["--audit", fifo_path.to_str().unwrap()])
        .args(["--request", &REFUSALS.to_string()])
        .current_dir(common::repo())
        .env("CARGO_TARGET_DIR", common::shared_target())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = common::collect(child.stdout.take().unwrap());
    let stderr = common::collect(child.stderr.take().unwrap());
    let mut ran = common::Killed(child);
    // The call ends while the FIFO is still not read.
    let answer = format!("refused {REFUSALS} of {REFUSALS}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stdout.lock().unwrap().contains(&answer) {
        assert!(
            Instant::now() < deadline,
            "the call did not end within 60 s while the audit file was blocked:\n{}\n{}",
            stdout.lock().unwrap(),
            stderr.lock().unwrap()
        );
        assert!(
            ran.0.try_wait().unwrap().is_none(),
            "airssys run exited:\n{}\n{}",
            stdout.lock().unwrap(),
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Read now: the queued records, then the note, and `run` exits.
    let written = fifo.read();
    wait_for(&written, "\"not_written\"", "the audit file");
    assert_eq!(ran.0.wait().unwrap().code(), Some(0));
    std::thread::sleep(Duration::from_millis(300));
    let (written, stderr) = (
        written.lock().unwrap().clone(),
        stderr.lock().unwrap().clone(),
    );
    let (refusals_written, said_dropped) = refusals_in(&written);
    assert!(said_dropped > 0, "{written}");
    assert_eq!(refusals_written + said_dropped, REFUSALS as u64, "{stderr}");
    assert!(
        stderr.contains(&format!("{said_dropped} refused call(s)")),
        "{stderr}"
    );
}

/// `policy propose` reads an audit file holding a record of what was not
/// written, and warns that the observation is incomplete.
#[test]
fn propose_reads_a_not_written_record_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(
        &audit,
        concat!(
            r#"{"observe":{"component":"c","version":"0.1.0","requires":[],"optional":["kv:read:counter/*"]}}"#,
            "\n",
            r#"{"time_ms":1,"component":"c","function":"get","capability":"kv:read","resource":"counter/x","verdict":"deny","rule":"denied: no grant covers the request (deny by default)"}"#,
            "\n",
            r#"{"time_ms":2,"not_written":{"allowed":3,"refused":4,"other":0},"reason":"the audit file did not take records fast enough"}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = common::airssys(&["policy", "propose", "--audit", audit.to_str().unwrap()]);
    let stdout = common::succeeded(&out);
    assert!(stdout.contains("kv:read:counter/x"), "{stdout}");
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("warning: 7 decision(s) were not written to"),
        "{stderr}"
    );
}
