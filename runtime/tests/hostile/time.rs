//! Hostile probes: time. A call into a component ends at its time limit
//! (`limits.cpu_time_ms`) whether it spins or waits in WASI (a 30 s
//! `std::thread::sleep`, `wasi:io/poll.poll`, `pollable.block`), and so
//! does the `shutdown` that dropping an instance runs; the neighbour keeps
//! serving meanwhile.

use std::time::{Duration, Instant};

use airssys_runtime::{Instance, LimitExceeded, RuntimeError};

use crate::neighbour::{NEIGHBOUR_POLICY, SERVING, while_serving};
use crate::support::{ask, instance, runtime_with};

/// A 200 ms time limit for the hostile component.
const LIMITED: &str = "[components.limitprobe]\nlimits = { cpu_time_ms = 200 }\n";

/// How long a hostile call may hold its caller: far below the 30 s the
/// component asks for, far above the 200 ms limit (a liveness bound, not a
/// speed test).
const HELD: Duration = Duration::from_secs(5);

/// Sends `command`, which must fail; returns the error and how long the
/// call took.
fn failing(hostile: &mut Instance, command: &str) -> (RuntimeError, Duration) {
    let started = Instant::now();
    let error = hostile
        .request("test", command.as_bytes())
        .expect_err("the call is stopped");
    (error, started.elapsed())
}

/// The error is the time limit of 200 ms, and its text names the key.
fn assert_time_limit(error: &RuntimeError) {
    assert!(
        matches!(
            error,
            RuntimeError::Limit(LimitExceeded::CpuTime { limit, .. })
                if *limit == Duration::from_millis(200)
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("limits.cpu_time_ms"), "{text}");
    assert!(text.contains("waiting counts"), "{text}");
}

/// The call measured on main: `std::thread::sleep(30 s)` under a 200 ms
/// limit held the caller for 30.8 s.
#[test]
fn a_thirty_second_sleep_ends_at_the_time_limit() {
    let runtime = runtime_with(&format!("{LIMITED}{NEIGHBOUR_POLICY}"));
    let (error, took) = while_serving(&runtime, || {
        let mut hostile = instance(&runtime, "limitprobe");
        failing(&mut hostile, "sleep:30000")
    });
    assert_time_limit(&error);
    assert!(took < HELD, "the sleep held the caller for {took:?}");
}

/// `wasi:io/poll.poll` and `pollable.block` on a `subscribe-instant`
/// pollable are bounded the same way.
#[test]
fn wasi_poll_and_block_end_at_the_time_limit() {
    let runtime = runtime_with(&format!("{LIMITED}{NEIGHBOUR_POLICY}"));
    let commands = ["poll-duration:30000", "block-instant:30000"];
    // Asserted after `while_serving`, which must not see a panic.
    let outcomes = while_serving(&runtime, || {
        commands.map(|command| failing(&mut instance(&runtime, "limitprobe"), command))
    });
    for (command, (error, took)) in commands.iter().zip(outcomes) {
        assert_time_limit(&error);
        assert!(took < HELD, "`{command}` held the caller for {took:?}");
    }
}

/// A spinning guest is interrupted by the epoch deadline.
#[test]
fn a_spin_loop_ends_at_the_time_limit() {
    let runtime = runtime_with(&format!("{LIMITED}{NEIGHBOUR_POLICY}"));
    let (error, took) = while_serving(&runtime, || {
        let mut hostile = instance(&runtime, "limitprobe");
        failing(&mut hostile, "spin")
    });
    assert_time_limit(&error);
    assert!(took < HELD, "the spin held the caller for {took:?}");
}

/// Waits within the limit keep working: a short sleep, a `poll` and a
/// `block` that end in time answer normally, and reading the (closed)
/// stdin answers at once.
#[test]
fn waits_within_the_limit_answer() {
    let runtime = runtime_with(LIMITED);
    let mut probe = instance(&runtime, "limitprobe");
    assert_eq!(ask(&mut probe, "sleep:20"), "slept");
    assert_eq!(ask(&mut probe, "poll-duration:20"), "ready [0]");
    assert_eq!(ask(&mut probe, "block-instant:20"), "blocked");
    assert_eq!(ask(&mut probe, "stdin"), "read 0");
    // Every call gets the whole limit again.
    for _ in 0..3 {
        assert_eq!(ask(&mut probe, "sleep:120"), "slept");
    }
}

/// Dropping an instance runs its `shutdown` under the same limit: a
/// shutdown that sleeps 30 s or spins does not hold the dropping thread.
#[test]
fn a_hostile_shutdown_does_not_hold_the_dropping_thread() {
    let runtime = runtime_with(&format!("{LIMITED}{NEIGHBOUR_POLICY}"));
    let commands = ["shutdown-sleeps:30000", "shutdown-spins"];
    let outcomes = while_serving(&runtime, || {
        commands.map(|command| {
            let mut hostile = instance(&runtime, "limitprobe");
            let armed = ask(&mut hostile, command);
            let started = Instant::now();
            drop(hostile);
            (armed, started.elapsed())
        })
    });
    for (command, (armed, took)) in commands.iter().zip(outcomes) {
        assert_eq!(armed, "armed");
        assert!(took < HELD, "`{command}`: the drop took {took:?}");
    }
    // An explicit shutdown reports the limit.
    let mut hostile = instance(&runtime, "limitprobe");
    assert_eq!(ask(&mut hostile, "shutdown-sleeps:30000"), "armed");
    let error = hostile.shutdown().expect_err("the shutdown is stopped");
    assert_time_limit(&error);
    // The runtime still serves afterwards.
    let mut neighbour = instance(&runtime, "probe");
    let started = Instant::now();
    assert_eq!(ask(&mut neighbour, "echo:still here"), "still here");
    assert!(started.elapsed() < SERVING);
}
