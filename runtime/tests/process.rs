//! The process service end to end, with the `procprobe` component: granted
//! programs by absolute path, a clean environment checked against
//! `env:read`, loader variables refused, signals only to the component's
//! own children under `proc:signal`, bounded output buffers, and children
//! killed when the instance goes away.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use airssys_runtime::{Instance, Policy, Runtime};
use support::ask;

const POLICY: &str = r#"
[components.procprobe]
grants = [
    "proc:spawn:/bin/echo", "proc:spawn:/bin/sh", "proc:spawn:/bin/sleep",
    "proc:spawn:/no/such/program",
    "proc:signal:/bin/sleep",
    "env:read:X", "env:read:LD_PRELOAD", "env:read:APP_*",
]
env = { X = "from-policy" }
"#;

fn runtime() -> Runtime {
    Runtime::builder()
        .policy(Policy::from_toml_str(POLICY).expect("valid policy"))
        .in_memory_storage()
        .max_instances(8)
        .build()
        .expect("runtime")
}

fn procprobe(runtime: &Runtime) -> Instance {
    support::instance(runtime, "procprobe")
}

#[test]
fn granted_program_runs_with_the_arguments_given() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    assert_eq!(
        ask(&mut p, "run:/bin/echo|hello|two words|$HOME"),
        "code 0; out: hello two words $HOME\n; err: "
    );
    assert_eq!(
        ask(&mut p, "run:/bin/sh|-c|echo oops >&2; exit 3"),
        "code 3; out: ; err: oops\n"
    );
}

#[test]
fn the_environment_is_exactly_what_was_given_and_granted() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    assert_eq!(
        ask(&mut p, "run:/bin/sh|-c|echo \"[$X]\"#X=42"),
        "code 0; out: [42]\n; err: "
    );
    // Nothing of the host's environment is inherited (not even `X`,
    // which the policy offers: only what the component passes).
    let reply = ask(&mut p, "run:/bin/sh|-c|export -p");
    assert!(reply.starts_with("code 0; out: "), "{reply}");
    let host: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    assert!(!host.is_empty(), "the test process has an environment");
    for name in host.iter().map(String::as_str).chain(["X"]) {
        // A shell sets PWD (and sometimes PATH, OLDPWD) by itself.
        if matches!(name, "PWD" | "OLDPWD" | "PATH" | "SHLVL" | "_") {
            continue;
        }
        assert!(
            !reply.contains(&format!("export {name}=")),
            "{name} leaked: {reply}"
        );
    }
    // A variable the component may not read cannot be passed on.
    let reply = ask(&mut p, "run:/bin/sh|-c|echo $SECRET#SECRET=1");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("`env:read:SECRET`"), "{reply}");
}

#[test]
fn loader_variables_are_refused_even_when_granted() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    for entry in [
        "LD_PRELOAD=/tmp/evil.so",
        "LD_LIBRARY_PATH=/tmp",
        "DYLD_INSERT_LIBRARIES=x",
    ] {
        let reply = ask(&mut p, &format!("run:/bin/echo|hi#{entry}"));
        assert!(reply.starts_with("invalid-input: "), "{entry}: {reply}");
        assert!(reply.contains("loader variables"), "{entry}: {reply}");
    }
}

#[test]
fn ungranted_programs_are_denied_naming_the_capability() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    let reply = ask(&mut p, "run:/bin/cat|/etc/passwd");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("`proc:spawn:/bin/cat`"), "{reply}");
    // A relative path is never a granted program.
    let reply = ask(&mut p, "run:echo|hi");
    assert!(reply.starts_with("denied: "), "{reply}");
    // Granted but absent.
    let reply = ask(&mut p, "run:/no/such/program");
    assert!(reply.starts_with("not-found: "), "{reply}");
}

#[test]
fn own_children_can_be_signalled_under_proc_signal() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    assert_eq!(ask(&mut p, "start:/bin/sleep|30"), "started 1");
    let started = Instant::now();
    assert_eq!(ask(&mut p, "signal:kill"), "signaled 9");
    assert_eq!(ask(&mut p, "start:/bin/sleep|30"), "started 2");
    assert_eq!(ask(&mut p, "signal:term"), "signaled 15");
    assert!(started.elapsed() < Duration::from_secs(10));
    // No `proc:signal:/bin/sh` grant.
    assert_eq!(ask(&mut p, "start:/bin/sh|-c|sleep 30"), "started 3");
    let reply = ask(&mut p, "signal:term");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("`proc:signal:/bin/sh`"), "{reply}");
    assert_eq!(ask(&mut p, "drop"), "dropped");
}

#[test]
fn output_is_read_through_a_bounded_buffer() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    // Far more than the host buffers: the child waits for the reader.
    assert_eq!(
        ask(&mut p, "count:/bin/sh|-c|head -c 1000000 /dev/zero"),
        "code 0; out bytes: 1000000"
    );
}

/// Processes whose command line is exactly `args`.
fn processes_with(args: &[&str]) -> usize {
    let wanted: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| *cmdline == wanted)
        .count()
}

/// Waits (up to 5 s) until a process with command line `args` is visible:
/// `/proc/<pid>/cmdline` is briefly empty while the child finishes `exec`.
fn appears(args: &[&str]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if processes_with(args) == 1 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
#[cfg(target_os = "linux")]
fn children_are_killed_when_dropped_or_on_unload() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    // Unusual durations so no other process matches.
    let a = ["/bin/sleep", "4242.25"];
    let b = ["/bin/sleep", "4242.5"];
    assert_eq!(ask(&mut p, &format!("start:{}", a.join("|"))), "started 1");
    assert!(appears(&a));
    assert_eq!(ask(&mut p, "drop"), "dropped");
    assert_eq!(processes_with(&a), 0, "dropping the handle kills and reaps");
    assert_eq!(ask(&mut p, &format!("start:{}", b.join("|"))), "started 1");
    assert!(appears(&b));
    drop(p);
    assert_eq!(
        processes_with(&b),
        0,
        "dropping the instance kills and reaps"
    );
}

#[test]
fn running_children_are_capped_by_max_children() {
    let policy = POLICY.replace(
        "env = { X = \"from-policy\" }",
        "env = { X = \"from-policy\" }\nlimits = { max_children = 2 }",
    );
    let rt = Runtime::builder()
        .policy(Policy::from_toml_str(&policy).expect("valid policy"))
        .in_memory_storage()
        .max_instances(8)
        .build()
        .expect("runtime");
    let loaded = rt
        .load(support::fixture("procprobe"))
        .expect("procprobe loads");
    let mut p = loaded.instantiate().expect("instance");
    let mut other = loaded.instantiate().expect("instance");
    assert_eq!(ask(&mut p, "start:/bin/sleep|30"), "started 1");
    // The limit counts the component's children across its instances.
    assert_eq!(ask(&mut other, "start:/bin/sleep|30"), "started 1");
    let reply = ask(&mut p, "start:/bin/sleep|30");
    assert!(reply.starts_with("quota-exceeded: "), "{reply}");
    assert!(reply.contains("`limits.max_children` = 2"), "{reply}");
    assert!(reply.contains("[components.procprobe.limits]"), "{reply}");
    // A dropped child (killed) and a child that has ended no longer count.
    assert_eq!(ask(&mut other, "drop"), "dropped");
    assert_eq!(ask(&mut p, "run:/bin/echo|hi"), "code 0; out: hi\n; err: ");
    assert_eq!(ask(&mut p, "start:/bin/sleep|30"), "started 2");
    let reply = ask(&mut p, "start:/bin/sleep|30");
    assert!(reply.starts_with("quota-exceeded: "), "{reply}");
}
