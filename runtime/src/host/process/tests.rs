//! The child, its group and its I/O thread, without a component.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::check::Launch;
use super::*;
use crate::host::budget::Budget;
use crate::policy::{ChildLimits, Limits, ResolvedLimits};

/// Held by each test: they count this process's child threads, and no
/// other test of this crate spawns children.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    crate::sync::lock(&ONE_AT_A_TIME)
}

/// Threads of this process started for children (`airssys-child-*`; the
/// kernel keeps 15 bytes of a thread's name).
fn child_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with("airssys-child"))
        .count()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    // Generous: a liveness bound on a loaded machine, not a speed check.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn budget(held_bytes: u64) -> Budget {
    Budget::new(
        "probe",
        &ResolvedLimits::default().with(Limits::new().held_bytes(held_bytes)),
    )
}

fn launch(script: &str, rlimits: ChildLimits) -> Launch {
    Launch {
        program: "/bin/sh".into(),
        resolved: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script.into()],
        env: Vec::new(),
        rlimits,
    }
}

fn sh(script: &str, budget: &Budget) -> Child {
    spawn_child(
        &launch(script, ChildLimits::default()),
        budget,
        &Arc::default(),
    )
    .expect("spawn")
}

/// Everything `stream` of `child` gives until its end.
fn read_all(child: &Child, stream: Stream) -> Vec<u8> {
    let mut out = Vec::new();
    wait_for("the stream never ended", || {
        match child.output.take(stream, PIPE_BUFFER) {
            Taken::Bytes(bytes) => {
                out.extend(bytes);
                false
            }
            Taken::End => true,
            // Refused room for now: the next take tries again.
            Taken::Nothing | Taken::Starved(_) => false,
        }
    });
    out
}

/// Whether process `pid` is still alive (a zombie no longer counts).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(!matches!(state, 'Z' | 'X'))
        })
        .unwrap_or(false)
}

/// The first line the child prints: a process id.
fn first_pid(child: &Child) -> u32 {
    let mut line = Vec::new();
    wait_for("no pid printed", || {
        if let Taken::Bytes(bytes) = child.output.take(Stream::Stdout, PIPE_BUFFER) {
            line.extend(bytes);
        }
        line.contains(&b'\n')
    });
    String::from_utf8_lossy(&line)
        .trim()
        .parse()
        .expect("a pid")
}

#[test]
fn the_child_its_group_and_its_thread_end_together() {
    let _serial = serial();
    let budget = budget(1 << 20);

    // Exits on its own while the handle is kept: the status is read
    // without reaping, and the output arrives in full.
    let child = sh("echo out; echo err >&2; exit 3", &budget);
    assert_eq!(read_all(&child, Stream::Stdout), b"out\n");
    assert_eq!(read_all(&child, Stream::Stderr), b"err\n");
    let mut status = Ok(None);
    wait_for("the child never ended", || {
        status = lock(&child.process).poll();
        !matches!(status, Ok(None))
    });
    assert_eq!(status.unwrap(), Some(Ended::Code(3)));
    // Ended, its handle still held: reaped (no zombie), and once its
    // thread is done the handle holds no descriptor.
    let pid = lock(&child.process).pid().as_raw_nonzero().get();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "an ended child stays a zombie"
    );
    wait_for("the I/O thread outlived the child", || {
        !child.output.thread_running()
    });
    wait_for("the I/O thread never ended", || child_threads() == 0);
    drop(child);
    wait_for("a thread outlived its child", || child_threads() == 0);

    // Its own session and group: no controlling terminal, no way to the
    // operator's.
    let child = sh("sleep 30", &budget);
    let pid = lock(&child.process).pid();
    let sid = rustix::process::getsid(Some(pid)).unwrap();
    assert_eq!(sid, pid, "the child leads a session of its own");
    drop(child);

    // A background grandchild dies with the handle.
    let child = sh("sleep 4242.125 & echo $!; wait", &budget);
    let grandchild = first_pid(&child);
    assert!(alive(grandchild));
    drop(child);
    wait_for("the grandchild outlived the handle", || !alive(grandchild));

    // ... and with the child, when the child ends first.
    let child = sh("sleep 4242.25 & echo $!", &budget);
    let grandchild = first_pid(&child);
    wait_for("the grandchild outlived its parent", || !alive(grandchild));
    drop(child);

    // A grandchild that left the group (its own session) escapes the
    // group kill, but not the thread's end: holding the pipes open does
    // not keep the I/O thread alive past the handle.
    let child = sh("setsid sleep 4242.375 & echo $!; wait", &budget);
    let escaped = first_pid(&child);
    assert_eq!(child_threads(), 1);
    drop(child);
    wait_for("the I/O thread outlived the handle", || {
        child_threads() == 0
    });
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(escaped as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
}

#[test]
fn rlimits_are_set_before_the_program_starts() {
    let _serial = serial();
    let limits = ChildLimits::new()
        .processes(77)
        .cpu_seconds(55)
        .address_space_bytes(3 << 30);
    // `exec` so the limits read are the program's own, as it started.
    let child = spawn_child(
        &launch("exec cat /proc/self/limits", limits),
        &budget(1 << 20),
        &Arc::default(),
    )
    .expect("spawn");
    let text = String::from_utf8(read_all(&child, Stream::Stdout)).unwrap();
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(row("Max processes").contains(&"77"), "{text}");
    let cpu = row("Max cpu time");
    assert!(cpu.contains(&"55") && cpu.contains(&"56"), "{text}");
    assert!(
        row("Max address space").contains(&(3u64 << 30).to_string().as_str()),
        "{text}"
    );

    // Never above the host's own hard limit (where it has one).
    if let Some(host) = rustix::process::getrlimit(rustix::process::Resource::Nproc).maximum {
        let child = spawn_child(
            &launch(
                "exec cat /proc/self/limits",
                ChildLimits::new().processes(u64::MAX / 2),
            ),
            &budget(1 << 20),
            &Arc::default(),
        )
        .expect("spawn");
        let text = String::from_utf8(read_all(&child, Stream::Stdout)).unwrap();
        let row = text
            .lines()
            .find(|l| l.starts_with("Max processes"))
            .unwrap_or_default();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            [
                "Max",
                "processes",
                &host.to_string(),
                &host.to_string(),
                "processes"
            ],
            "{text}"
        );
    }

    // Enforced: a busy loop past one CPU second ends by `SIGXCPU`.
    let child = spawn_child(
        &launch("while :; do :; done", ChildLimits::new().cpu_seconds(1)),
        &budget(1 << 20),
        &Arc::default(),
    )
    .expect("spawn");
    let mut status = Ok(None);
    wait_for("the CPU limit never ended the child", || {
        status = lock(&child.process).poll();
        !matches!(status, Ok(None))
    });
    assert_eq!(status.unwrap(), Some(Ended::Signaled(24)), "SIGXCPU");
}

#[test]
fn buffered_output_is_charged_to_the_budget() {
    let _serial = serial();
    let budget = budget(10_000);
    // Far more than the budget: the child blocks once it is spent.
    let child = sh("head -c 1000000 /dev/zero", &budget);
    wait_for("the budget never filled", || budget.held_bytes() == 10_000);
    let Taken::Bytes(bytes) = child.output.take(Stream::Stdout, 4000) else {
        panic!("bytes were buffered");
    };
    assert_eq!(bytes.len(), 4000);
    // Taking gives room back, and the thread fills it again.
    wait_for("the budget never refilled", || {
        budget.held_bytes() == 10_000
    });
    // Another stream finds no room: the read answers the limit.
    let other = sh("echo hello", &budget);
    wait_for("the other stream never heard of the limit", || {
        other.output.is_ready(Stream::Stdout)
    });
    match other.output.take(Stream::Stdout, 100) {
        Taken::Starved(LimitExceeded::HeldBytes { limit, .. }) => assert_eq!(limit, 10_000),
        taken => panic!("expected the held-bytes limit, got {taken:?}"),
    }
    // Once the first child is gone, its bytes are given back and the
    // other child's output comes through.
    drop(child);
    assert_eq!(read_all(&other, Stream::Stdout), b"hello\n");
    drop(other);
    assert_eq!(budget.held_bytes(), 0);
}
