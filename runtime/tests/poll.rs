//! `airssys:core/poll` end to end with the `pollprobe` component: every
//! kind of pending resource gives a pollable whose readiness follows the
//! operation (a child's exit, a TCP read, a reply, file reads and writes);
//! `poll` returns the ready subset, honours its timeout, survives a
//! pollable whose parent was dropped, and never outlasts the component's
//! time limit. A reply and a child's exit wake a waiting `poll` at once,
//! not through its backoff timer (seen through `poll`'s `trace` events).

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::time::{Duration, Instant};

use airssys_runtime::{Instance, LimitExceeded, Policy, Runtime, RuntimeError};
use support::ask;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};

/// `wake` is process-wide: a child or socket of another test could wake a
/// `poll` by chance. The tests that tell a wake from a timer therefore
/// run alone ([`alone`]); every other test holds [`shared`].
static TURN: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    TURN.read().unwrap_or_else(|p| p.into_inner())
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    TURN.write().unwrap_or_else(|p| p.into_inner())
}

/// The policy: `/bin/sleep`, TCP to `127.0.0.1:{port}`, requests to
/// `echo`, files under `/data` (mounted at `dir`), and a time limit.
fn policy(port: u16, dir: &Path, cpu_time_ms: u64) -> String {
    format!(
        r#"
[components.pollprobe]
grants = [
    "proc:spawn:/bin/sleep", "proc:spawn:/bin/sh", "net:connect:127.0.0.1:{port}", "msg:request:echo",
    "fs:read:/data/**", "fs:write:/data/**", "fs:create:/data/**",
]
mounts = {{ "/data" = "{}" }}
limits = {{ cpu_time_ms = {cpu_time_ms} }}
"#,
        dir.display()
    )
}

struct Setup {
    rt: Runtime,
    probe: Instance,
    dir: tempfile::TempDir,
}

fn setup_with(port: u16, cpu_time_ms: u64) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "content").expect("write a.txt");
    let rt = Runtime::builder()
        .policy(
            Policy::from_toml_str(&policy(port, dir.path(), cpu_time_ms)).expect("valid policy"),
        )
        .in_memory_storage()
        .max_instances(8)
        .build()
        .expect("runtime");
    let probe = support::instance(&rt, "pollprobe");
    Setup { rt, probe, dir }
}

fn setup() -> Setup {
    setup_with(1, 10_000)
}

/// The `messenger` fixture as component `echo`: it answers requests from
/// other components with "echo got `<payload>` from <source>".
fn echo(rt: &Runtime) -> Instance {
    rt.load(&support::fixture_as("messenger", "echo", &[]))
        .expect("echo loads")
        .instantiate()
        .expect("echo instantiates")
}

#[test]
fn a_child_exit_is_polled_until_it_happens() {
    let _turn = shared();
    let Setup { mut probe, .. } = setup();
    assert_eq!(ask(&mut probe, "exit:0.3"), "slot 0 ready=false");
    assert_eq!(ask(&mut probe, "get:0"), "none");
    // `wait` polls without a timeout, then gets.
    assert_eq!(ask(&mut probe, "wait:0"), "code 0");
    assert_eq!(ask(&mut probe, "ready"), "true");
    assert_eq!(ask(&mut probe, "poll:none:0"), "[0]");
}

#[test]
fn a_timeout_with_nothing_ready_returns_an_empty_list() {
    let _turn = shared();
    let Setup { mut probe, .. } = setup();
    assert_eq!(ask(&mut probe, "exit:30"), "slot 0 ready=false");
    assert_eq!(ask(&mut probe, "poll:0:0"), "[]");
    let start = Instant::now();
    assert_eq!(ask(&mut probe, "poll:60:0"), "[]");
    assert!(
        start.elapsed() >= Duration::from_millis(60),
        "returned before its timeout: {:?}",
        start.elapsed()
    );
    assert_eq!(ask(&mut probe, "get:0"), "none");
}

#[test]
fn poll_returns_the_ready_subset_with_duplicates() {
    let _turn = shared();
    let Setup { mut probe, .. } = setup();
    assert_eq!(ask(&mut probe, "exit:30"), "slot 0 ready=false");
    assert!(ask(&mut probe, "exit:0").starts_with("slot 1 ready="));
    // Slot 1 appears twice; both of its positions are reported.
    assert_eq!(ask(&mut probe, "poll:10000:0,1,1"), "[1,2]");
    assert_eq!(ask(&mut probe, "ready"), "false,true");
    assert_eq!(ask(&mut probe, "get:1"), "code 0");
}

#[test]
fn poll_refuses_an_empty_list() {
    let _turn = shared();
    let Setup { mut probe, .. } = setup();
    let reply = ask(&mut probe, "poll:none:");
    assert!(reply.starts_with("error: "), "{reply}");
    assert!(reply.contains("InvalidInput"), "{reply}");
    assert!(reply.contains("at least one pollable"), "{reply}");
}

#[test]
fn a_tcp_read_turns_ready_when_the_peer_writes() {
    let _turn = shared();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let Setup { mut probe, .. } = setup_with(port, 10_000);
    assert_eq!(
        ask(&mut probe, &format!("tcp:127.0.0.1:{port}")),
        "slot 0 ready=false"
    );
    let (mut peer, _) = listener.accept().expect("accept");
    assert_eq!(ask(&mut probe, "poll:0:0"), "[]");
    assert_eq!(ask(&mut probe, "get:0"), "none");
    peer.write_all(b"hello").expect("write");
    assert_eq!(ask(&mut probe, "poll:10000:0"), "[0]");
    assert_eq!(ask(&mut probe, "get:0"), "bytes: hello");
    // Taken: still ready, and `get` reports that.
    assert_eq!(ask(&mut probe, "ready"), "true");
    let reply = ask(&mut probe, "get:0");
    assert!(reply.contains("already taken"), "{reply}");
}

#[test]
fn a_reply_turns_ready_when_the_target_answers() {
    let _turn = shared();
    let Setup { rt, mut probe, .. } = setup();
    let mut target = [echo(&rt)];
    assert_eq!(ask(&mut probe, "request:echo"), "slot 0 ready=false");
    assert_eq!(ask(&mut probe, "poll:0:0"), "[]");
    let report = rt.run_until_idle(&mut target, 4).expect("delivery");
    assert_eq!(report.answered, 1);
    assert_eq!(ask(&mut probe, "ready"), "true");
    assert_eq!(ask(&mut probe, "poll:none:0"), "[0]");
    assert_eq!(
        ask(&mut probe, "get:0"),
        "reply: echo got `ping` from pollprobe"
    );
}

#[test]
fn file_reads_and_writes_are_ready_at_once() {
    let _turn = shared();
    let Setup { mut probe, dir, .. } = setup();
    assert_eq!(ask(&mut probe, "fsread:/data/a.txt"), "slot 0 ready=true");
    assert_eq!(ask(&mut probe, "fswrite:/data/b.txt"), "slot 1 ready=true");
    assert_eq!(ask(&mut probe, "poll:none:1,0"), "[0,1]");
    assert_eq!(ask(&mut probe, "get:0"), "bytes: content");
    assert_eq!(ask(&mut probe, "get:1"), "wrote 7");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b.txt")).expect("b.txt"),
        "written"
    );
}

#[test]
fn a_pollable_outliving_its_parent_is_ready_and_harmless() {
    let _turn = shared();
    let Setup { rt, mut probe, .. } = setup();
    let _target = echo(&rt);
    // The pending resource itself dropped: the pollable reports ready so
    // a waiting component is released, and nothing traps.
    assert_eq!(ask(&mut probe, "exit:30"), "slot 0 ready=false");
    assert_eq!(ask(&mut probe, "drop-parent:0"), "dropped");
    assert_eq!(ask(&mut probe, "ready"), "true");
    assert_eq!(ask(&mut probe, "poll:none:0"), "[0]");
    assert_eq!(ask(&mut probe, "request:echo"), "slot 1 ready=false");
    assert_eq!(ask(&mut probe, "drop-parent:1"), "dropped");
    assert_eq!(ask(&mut probe, "poll:none:1"), "[0]");
    // The child behind a pending exit dropped: it is killed, the pollable
    // turns ready and `get` reports how the child ended.
    assert_eq!(ask(&mut probe, "exit:30"), "slot 2 ready=false");
    assert_eq!(ask(&mut probe, "drop-source:2"), "dropped");
    assert_eq!(ask(&mut probe, "poll:10000:2"), "[0]");
    assert_eq!(ask(&mut probe, "get:2"), "signaled 9");
    // New pending resources (which may reuse the dropped handles'
    // numbers) are not confused with the old pollables.
    assert_eq!(ask(&mut probe, "exit:30"), "slot 3 ready=false");
    assert_eq!(ask(&mut probe, "ready"), "true,true,true,false");
}

#[test]
fn poll_without_timeout_is_stopped_by_the_time_limit() {
    let _turn = shared();
    let Setup { mut probe, .. } = setup_with(1, 300);
    assert_eq!(ask(&mut probe, "exit:30"), "slot 0 ready=false");
    let error = probe
        .request("test", b"poll:none:0")
        .expect_err("the call must be stopped");
    match error {
        RuntimeError::Limit(LimitExceeded::CpuTime { component, limit }) => {
            assert_eq!(component, "pollprobe");
            assert_eq!(limit, Duration::from_millis(300));
        }
        other => panic!("expected the time limit, got {other:?}"),
    }
}

/// Follows `poll`'s `trace` events on the thread it is installed on: each
/// sleep is sent to `sleeping`; how each wait ended (`woken_by` of the
/// `ready` event: `wake`, `timer` or `start`) is collected in `ends`.
struct PollEvents {
    sleeping: mpsc::Sender<()>,
    ends: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
struct Fields {
    phase: Option<String>,
    woken_by: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "phase" => self.phase = Some(value.to_owned()),
            "woken_by" => self.woken_by = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

impl tracing::Subscriber for PollEvents {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "airssys_runtime::host::poll"
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        match fields.phase.as_deref() {
            Some("sleep") => {
                // The receiver is gone once it acted on the first sleep.
                let _ = self.sleeping.send(());
            }
            Some("ready") => self
                .ends
                .lock()
                .unwrap()
                .push(fields.woken_by.unwrap_or_default()),
            _ => {}
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Runs `wait` (a request that makes the component wait in `poll`) on
/// this thread and, on another, `complete` once that `poll` sleeps; returns
/// `wait`'s result and how each of its waits ended.
fn wait_while_completing(
    wait: impl FnOnce() -> String,
    complete: impl FnOnce() + Send,
) -> (String, Vec<String>) {
    let (sleeping, asleep) = mpsc::channel();
    let ends = Arc::new(Mutex::new(Vec::new()));
    let events = PollEvents {
        sleeping,
        ends: Arc::clone(&ends),
    };
    let answer = std::thread::scope(|scope| {
        scope.spawn(move || {
            if asleep.recv().is_ok() {
                complete();
            }
        });
        tracing::subscriber::with_default(events, wait)
    });
    let ends = ends.lock().unwrap().clone();
    (answer, ends)
}

/// Trials of a completion while `poll` sleeps. With the wake, a trial
/// ends by `timer` only if the backoff timer fires between the completion
/// and its wake (a scheduling accident); without it, every trial does.
/// Each test stops at its first trial ended by the wake; 32 trials keep
/// a loaded CI machine's scheduling accidents (8 in a row seen once, for
/// a child's exit, whose signal and reaping take longest) from failing a
/// test whose wake works.
const TRIALS: usize = 32;

#[test]
fn a_reply_wakes_a_waiting_poll_without_its_timer() {
    let _turn = alone();
    let Setup { rt, mut probe, .. } = setup();
    let mut target = [echo(&rt)];
    let mut ends = Vec::new();
    for _ in 0..TRIALS {
        assert_eq!(ask(&mut probe, "clear"), "cleared");
        assert_eq!(ask(&mut probe, "request:echo"), "slot 0 ready=false");
        let (answer, how) = wait_while_completing(
            || ask(&mut probe, "wait:0"),
            || {
                let report = rt.run_until_idle(&mut target, 4).expect("delivery");
                assert_eq!(report.answered, 1);
            },
        );
        assert_eq!(answer, "reply: echo got `ping` from pollprobe");
        assert_eq!(how.len(), 1, "one poll per trial: {how:?}");
        ends.extend(how);
        if ends.last().is_some_and(|e| e == "wake") {
            break;
        }
    }
    assert!(
        ends.iter().any(|e| e == "wake"),
        "no wait for a reply was ended by the reply's wake: {ends:?}"
    );
}

/// Reads the id the child wrote to `path` (a whole line).
fn child_id(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.strip_suffix('\n') {
            return line.parse().expect("a process id");
        }
        assert!(Instant::now() < deadline, "the child never wrote its id");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_child_exit_wakes_a_waiting_poll_without_its_timer() {
    use rustix::process::{Pid, Signal, kill_process};
    let _turn = alone();
    let Setup { mut probe, dir, .. } = setup();
    let id_file = dir.path().join("child.pid");
    // The child leaves its output pipes first, so the end of its output
    // (which wakes `poll` too) comes long before its exit; then it sleeps
    // until the test ends it.
    let script = format!(
        "exec >/dev/null 2>&1; echo $$ > '{}'; exec /bin/sleep 30",
        id_file.display()
    );
    let mut ends = Vec::new();
    for _ in 0..TRIALS {
        let _ = std::fs::remove_file(&id_file);
        assert_eq!(ask(&mut probe, "clear"), "cleared");
        assert_eq!(
            ask(&mut probe, &format!("exitsh:{script}")),
            "slot 0 ready=false"
        );
        let pid = Pid::from_raw(child_id(&id_file)).expect("a positive id");
        let (answer, how) = wait_while_completing(
            || ask(&mut probe, "wait:0"),
            // Not reaped until `poll` sees the exit: the id is the child's.
            || kill_process(pid, Signal::TERM).expect("signal the child"),
        );
        assert_eq!(answer, "signaled 15");
        assert_eq!(how.len(), 1, "one poll per trial: {how:?}");
        ends.extend(how);
        if ends.last().is_some_and(|e| e == "wake") {
            break;
        }
    }
    assert!(
        ends.iter().any(|e| e == "wake"),
        "no wait for a child's exit was ended by the exit's wake: {ends:?}"
    );
}
