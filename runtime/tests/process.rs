//! The process service end to end, with the `procprobe` component: granted
//! programs by absolute path, resolved before deny rules and run by the
//! resolved path; argument lists and passed variables checked against the
//! policy's program rules (never `env:read`); loader variables refused;
//! signals only to the component's own children under `proc:signal`;
//! output buffered within `limits.held_bytes`; children killed with their
//! whole process group when the handle or the instance goes away; the
//! policy's rlimits on the child.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use airssys_runtime::policy::ProcessNotice;
use airssys_runtime::{Instance, Policy, Runtime};
use support::{alive, ask, gone};

const POLICY: &str = r#"
[components.procprobe]
grants = [
    "proc:spawn:/bin/echo", "proc:spawn:/bin/sh", "proc:spawn:/bin/sleep",
    "proc:spawn:/no/such/program",
    "proc:signal:/bin/sleep",
    "env:read:X", "env:read:LD_PRELOAD", "env:read:APP_*", "env:read:SECRET",
]
env = { X = "from-policy" }

[components.procprobe.programs."/bin/sh"]
env = ["X"]
"#;

fn runtime() -> Runtime {
    runtime_with(POLICY)
}

fn runtime_with(policy: &str) -> Runtime {
    Runtime::builder()
        .policy(Policy::from_toml_str(policy).expect("valid policy"))
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
fn the_environment_is_exactly_what_was_given_and_passed_by_the_program_rule() {
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
    // Reading a variable (`env:read:SECRET` is granted) does not let the
    // component set it in a child: the refusal names the key to add.
    let reply = ask(&mut p, "run:/bin/sh|-c|echo $SECRET#SECRET=1");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(reply.contains("may not set \"SECRET\""), "{reply}");
    assert!(
        reply.contains(
            "add \"SECRET\" to `env` of [components.procprobe.programs.\"/bin/sh\"] (policy line \
             11)"
        ),
        "{reply}"
    );
    // `X` is passed to `/bin/sh` only: `/bin/echo` has no rule.
    let reply = ask(&mut p, "run:/bin/echo|hi#X=1");
    assert!(reply.starts_with("denied: "), "{reply}");
    assert!(
        reply.contains("to `env` of [components.procprobe.programs.\"/bin/echo\"]"),
        "{reply}"
    );
}

#[test]
fn arguments_must_fit_an_argument_list_of_the_rule() {
    let rt = runtime_with(
        r#"
[components.procprobe]
grants = ["proc:spawn:/bin/echo", "proc:spawn:/usr/bin/echo"]

[components.procprobe.programs."/bin/echo"]
args = [["hello", "{}"], ["-n", "{...}"], ["{{}}"]]
"#,
    );
    let mut p = procprobe(&rt);
    assert_eq!(
        ask(&mut p, "run:/bin/echo|hello|world"),
        "code 0; out: hello world\n; err: "
    );
    assert_eq!(
        ask(&mut p, "run:/bin/echo|-n|x|--y"),
        "code 0; out: x --y; err: "
    );
    assert_eq!(ask(&mut p, "run:/bin/echo|{}"), "code 0; out: {}\n; err: ");
    // An option where `{}` stands, a word no list has, one too many.
    for (line, why) in [
        ("/bin/echo|hello|-e", "argument 2 is \"-e\", expected `{}`"),
        ("/bin/echo|bye", "argument 1 is \"bye\", expected `hello`"),
        ("/bin/echo|hello|a|b", "argument 3 (\"b\") is one too many"),
        // The same file by its other name: the rule still applies.
        ("/usr/bin/echo|bye", "argument 1 is \"bye\""),
    ] {
        let reply = ask(&mut p, &format!("run:{line}"));
        assert!(reply.starts_with("denied: "), "{line}: {reply}");
        assert!(reply.contains(why), "{line}: {reply}");
        assert!(
            reply.contains(
                "`args` of [components.procprobe.programs.\"/bin/echo\"] (policy line 5)"
            ),
            "{line}: {reply}"
        );
    }
    // Loading reports what runs with any arguments.
    let loaded = rt.load(support::fixture("procprobe")).expect("loads");
    assert_eq!(loaded.process_notices(), []);
    let loaded = runtime()
        .load(support::fixture("procprobe"))
        .expect("loads");
    let notices: Vec<String> = loaded
        .process_notices()
        .iter()
        .map(ToString::to_string)
        .collect();
    for program in ["/bin/echo", "/bin/sh", "/bin/sleep"] {
        assert!(
            loaded
                .process_notices()
                .contains(&ProcessNotice::AnyArguments {
                    component: "procprobe".into(),
                    program: program.into(),
                }),
            "{program}: {notices:?}"
        );
    }
    assert!(
        notices[0].contains("full code execution as the host user"),
        "{notices:?}"
    );
}

#[test]
fn the_program_is_resolved_before_deny_rules_and_run_by_that_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("innocent");
    std::os::unix::fs::symlink("/bin/sh", &link).expect("symlink");
    let rt = runtime_with(
        r#"
[components.procprobe]
grants = ["proc:spawn"]
denies = ["proc:spawn:/bin/sh"]
"#,
    );
    let mut p = procprobe(&rt);
    let dash = std::fs::canonicalize("/bin/sh").expect("/bin/sh resolves");
    let dash = dash.to_str().expect("UTF-8 path");
    for program in ["/usr/bin/sh", dash, link.to_str().expect("UTF-8 path")] {
        let reply = ask(&mut p, &format!("run:{program}|-c|echo escaped"));
        assert!(reply.starts_with("denied: "), "{program}: {reply}");
        assert!(
            reply.contains(&format!(
                "it resolves to `{dash}`, which the host policy denies with `proc:spawn:/bin/sh`"
            )),
            "{program}: {reply}"
        );
    }
    for program in [
        "/proc/self/exe",
        "/proc/self/root/bin/sh",
        "/proc/1/root/bin/echo",
    ] {
        let reply = ask(&mut p, &format!("run:{program}|hi"));
        assert!(reply.starts_with("denied: "), "{program}: {reply}");
        assert!(reply.contains("under `/proc/`"), "{program}: {reply}");
    }
    for program in ["bin/echo", "/bin/../bin/sh", "/bin/./echo"] {
        let reply = ask(&mut p, &format!("run:{program}|hi"));
        assert!(reply.starts_with("denied: "), "{program}: {reply}");
    }
    // A granted program runs by its resolved path, under the name asked.
    let reply = ask(
        &mut p,
        "run:/bin/bash|-c|echo $0; echo $(readlink /proc/$$/exe)",
    );
    let bash = std::fs::canonicalize("/bin/bash").expect("/bin/bash resolves");
    assert_eq!(
        reply,
        format!("code 0; out: /bin/bash\n{}\n; err: ", bash.display())
    );
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

/// The pid after `started N: ` in a `start-line` reply.
fn started_pid(reply: &str) -> u32 {
    reply
        .split_once(": ")
        .and_then(|(_, pid)| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {reply:?}"))
}

#[test]
#[cfg(target_os = "linux")]
fn grandchildren_die_with_the_handle_the_instance_and_the_child() {
    let rt = runtime();
    let mut p = procprobe(&rt);
    // The handle goes.
    let pid = started_pid(&ask(
        &mut p,
        "start-line:/bin/sh|-c|sleep 4243.25 & echo $!; wait",
    ));
    assert!(alive(pid));
    assert_eq!(ask(&mut p, "drop"), "dropped");
    assert!(gone(pid), "the grandchild {pid} outlived its handle");
    // The instance goes.
    let pid = started_pid(&ask(
        &mut p,
        "start-line:/bin/sh|-c|sleep 4243.5 & echo $!; wait",
    ));
    assert!(alive(pid));
    drop(p);
    assert!(gone(pid), "the grandchild {pid} outlived the instance");
    // The child ends first: what it left in its group goes with it.
    let mut p = procprobe(&rt);
    let pid = started_pid(&ask(
        &mut p,
        "start-line:/bin/sh|-c|sleep 4243.75 & echo $!",
    ));
    assert!(gone(pid), "the grandchild {pid} outlived its parent");
}

#[test]
#[cfg(target_os = "linux")]
fn the_policy_rlimits_apply_to_the_child() {
    let rt = runtime_with(
        r#"
[components.procprobe]
grants = ["proc:spawn:/bin/sh"]

[components.procprobe.programs."/bin/sh"]
rlimits = { processes = 99, cpu_seconds = 7, address_space_bytes = 4294967296 }
"#,
    );
    let mut p = procprobe(&rt);
    let reply = ask(&mut p, "run:/bin/sh|-c|exec cat /proc/self/limits");
    let row = |name: &str| {
        reply
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {name} in {reply}"))
    };
    assert_eq!(row("Max cpu time"), "Max cpu time 7 8 seconds");
    assert_eq!(row("Max processes"), "Max processes 99 99 processes");
    assert_eq!(
        row("Max address space"),
        "Max address space 4294967296 4294967296 bytes"
    );
}

#[test]
fn output_the_component_leaves_unread_is_charged_to_held_bytes() {
    let policy = format!("{POLICY}\n[components.procprobe.limits]\nheld_bytes = 65536\n");
    let rt = runtime_with(&policy);
    let mut p = procprobe(&rt);
    let reply = ask(&mut p, "starve:/bin/sh|-c|head -c 100000000 /dev/zero");
    assert!(
        reply.contains(
            ": quota-exceeded: the standard output of `/bin/echo` is not read any further"
        ),
        "{reply}"
    );
    assert!(reply.contains("`limits.held_bytes`"), "{reply}");
    // Collecting output makes room again.
    assert_eq!(ask(&mut p, "drop"), "dropped");
    assert_eq!(ask(&mut p, "run:/bin/echo|hi"), "code 0; out: hi\n; err: ");
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
