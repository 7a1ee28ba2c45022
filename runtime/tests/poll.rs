//! `airssys:core/poll` end to end with the `pollprobe` component: every
//! kind of pending resource gives a pollable whose readiness follows the
//! operation (a child's exit, a TCP read, a reply, file reads and writes);
//! `poll` returns the ready subset, honours its timeout, survives a
//! pollable whose parent was dropped, and never outlasts the component's
//! time limit.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use airssys_runtime::{Instance, LimitExceeded, Policy, Runtime, RuntimeError};
use support::ask;

/// The policy: `/bin/sleep`, TCP to `127.0.0.1:{port}`, requests to
/// `echo`, files under `/data` (mounted at `dir`), and a time limit.
fn policy(port: u16, dir: &Path, cpu_time_ms: u64) -> String {
    format!(
        r#"
[components.pollprobe]
grants = [
    "proc:spawn:/bin/sleep", "net:connect:127.0.0.1:{port}", "msg:request:echo",
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
    let Setup { mut probe, .. } = setup();
    let reply = ask(&mut probe, "poll:none:");
    assert!(reply.starts_with("error: "), "{reply}");
    assert!(reply.contains("InvalidInput"), "{reply}");
    assert!(reply.contains("at least one pollable"), "{reply}");
}

#[test]
fn a_tcp_read_turns_ready_when_the_peer_writes() {
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
