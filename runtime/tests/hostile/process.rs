//! Hostile probes: child processes. A component granted a program tries
//! to turn it into arbitrary code execution (its arguments, its child's
//! environment, another path to a denied program), to leave processes
//! behind, and to make the host hold its child's output. Each attempt
//! ends in a refusal or limit naming the rule, while the neighbour keeps
//! serving.

#![cfg(target_os = "linux")]

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{alive, ask, gone, instance, runtime_with};

fn procprobe(policy: &str) -> airssys_runtime::Runtime {
    runtime_with(&format!("{policy}\n{NEIGHBOUR_POLICY}"))
}

/// Rule: `args` of a program rule. `git -c alias.x='!sh ...'` is the
/// classic way from "may run git" to "may run anything"; under an
/// argument rule it is refused before anything runs.
#[test]
fn argv_injection_is_refused_by_the_argument_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let git = dir.path().join("git");
    // A stand-in for git that shows what it was given.
    std::fs::write(&git, "#!/bin/sh\necho \"$@\"\n").expect("write");
    let mut permissions = std::fs::metadata(&git).expect("metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&git, permissions).expect("chmod");
    let git = git.to_str().expect("UTF-8 path");
    let runtime = procprobe(&format!(
        r#"
[components.procprobe]
grants = ["proc:spawn:{git}"]

[components.procprobe.programs."{git}"]
args = [["status", "--porcelain"], ["log", "--oneline", "-n", "{{[0-9]*}}"]]
"#
    ));
    let mut p = instance(&runtime, "procprobe");
    let replies = while_serving(&runtime, || {
        [
            format!("run:{git}|-c|alias.x=!sh -c 'touch /tmp/pwned'|x"),
            format!("run:{git}|log|--oneline|-n|--output=/tmp/pwned"),
            format!("run:{git}|status|--porcelain|--exec=sh"),
            format!("run:{git}|log|--oneline|-n|3"),
        ]
        .map(|line| ask(&mut p, &line))
    });
    for reply in &replies[..3] {
        assert!(reply.starts_with("denied: "), "{reply}");
        assert!(
            reply.contains(&format!("may not run `{git}` with arguments [")),
            "{reply}"
        );
        assert!(
            reply.contains(&format!(
                "fit none of the argument lists in `args` of \
                 [components.procprobe.programs.\"{git}\"] (policy line 5)"
            )),
            "{reply}"
        );
    }
    assert_eq!(replies[3], "code 0; out: log --oneline -n 3\n; err: ");
}

/// Rule: `env` of a program rule. Reading every variable (`env:read`)
/// does not let the component set `GIT_SSH_COMMAND`, `BASH_ENV`, `ENV` or
/// `PATH` in its child.
#[test]
fn setting_a_child_variable_needs_the_pass_right() {
    let runtime = procprobe(
        r#"
[components.procprobe]
grants = ["proc:spawn:/bin/bash", "env:read"]

[components.procprobe.programs."/bin/bash"]
env = ["LANG"]
"#,
    );
    let mut p = instance(&runtime, "procprobe");
    let replies = while_serving(&runtime, || {
        [
            "GIT_SSH_COMMAND=sh -c id",
            "BASH_ENV=/tmp/evil",
            "ENV=/tmp/evil",
            "PATH=/tmp",
        ]
        .map(|entry| ask(&mut p, &format!("run:/bin/bash|-c|true#{entry}")))
    });
    for (reply, name) in replies
        .iter()
        .zip(["GIT_SSH_COMMAND", "BASH_ENV", "ENV", "PATH"])
    {
        assert!(reply.starts_with("denied: "), "{reply}");
        assert!(
            reply.contains(&format!(
                "may not set \"{name}\" in the environment of `/bin/bash`"
            )),
            "{reply}"
        );
        assert!(
            reply.contains(&format!(
                "add \"{name}\" to `env` of [components.procprobe.programs.\"/bin/bash\"] \
                 (policy line 5)"
            )),
            "{reply}"
        );
    }
    assert_eq!(
        ask(&mut p, "run:/bin/bash|-c|echo $LANG#LANG=C"),
        "code 0; out: C\n; err: "
    );
}

/// Rule: `proc:spawn` deny rules match the resolved program. A symlink,
/// the `/usr/bin` alias of `/bin`, a path through `/proc/self/root`, a
/// relative or `..` path: none reaches the denied shell.
#[test]
fn path_tricks_do_not_reach_a_denied_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("innocent");
    std::os::unix::fs::symlink("/bin/sh", &link).expect("symlink");
    let link = link.to_str().expect("UTF-8 path").to_owned();
    let runtime = procprobe(
        r#"
[components.procprobe]
grants = ["proc:spawn"]
denies = ["proc:spawn:/bin/sh"]
"#,
    );
    let mut p = instance(&runtime, "procprobe");
    let attempts = [
        link.as_str(),
        "/usr/bin/sh",
        "/proc/self/root/bin/sh",
        "/proc/self/root/usr/bin/sh",
        "/proc/self/exe",
        "sh",
        "/bin/../bin/sh",
        "/usr/./bin/sh",
    ];
    let replies = while_serving(&runtime, || {
        attempts.map(|program| ask(&mut p, &format!("run:{program}|-c|echo escaped")))
    });
    let dash = std::fs::canonicalize("/bin/sh").expect("resolves");
    for (program, reply) in attempts.iter().zip(&replies) {
        assert!(reply.starts_with("denied: "), "{program}: {reply}");
        let named = if program.starts_with("/proc/") {
            "under `/proc/`".to_owned()
        } else if program.starts_with('/') && !program.contains("/.") {
            format!(
                "resolves to `{}`, which the host policy denies with `proc:spawn:/bin/sh`",
                dash.display()
            )
        } else {
            // Not an absolute, normalized path: the guard refuses it.
            "proc:spawn".to_owned()
        };
        assert!(reply.contains(&named), "{program}: {reply}");
    }
}

/// Rule: a child's process group dies with its handle and its instance.
/// A grandchild started in the background is checked by its pid.
#[test]
fn no_grandchild_outlives_the_handle_or_the_instance() {
    let runtime = procprobe(
        r#"
[components.procprobe]
grants = ["proc:spawn:/bin/sh"]
"#,
    );
    let mut p = instance(&runtime, "procprobe");
    let pid = |reply: String| -> u32 {
        reply
            .split_once(": ")
            .and_then(|(_, pid)| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {reply:?}"))
    };
    // Asserted after `while_serving`: a panic inside would keep its
    // neighbour check running.
    let (grandchild, was_alive, dropped, was_gone) = while_serving(&runtime, || {
        let grandchild = pid(ask(
            &mut p,
            "start-line:/bin/sh|-c|sleep 4244.25 & echo $!; wait",
        ));
        let was_alive = alive(grandchild);
        let dropped = ask(&mut p, "drop");
        (grandchild, was_alive, dropped, gone(grandchild))
    });
    assert!(was_alive);
    assert_eq!(dropped, "dropped");
    assert!(was_gone, "{grandchild} outlived the handle");
    let grandchild = pid(ask(
        &mut p,
        "start-line:/bin/sh|-c|sleep 4244.5 & echo $!; wait",
    ));
    assert!(alive(grandchild));
    let was_gone = while_serving(&runtime, || {
        drop(p);
        gone(grandchild)
    });
    assert!(was_gone, "{grandchild} outlived the instance");
}

/// Rule: `limits.held_bytes` counts a child's unread output. A child that
/// floods its output while the component reads nothing fills the budget,
/// then blocks; another child's output is refused with the limit.
#[test]
fn an_output_flood_is_bounded_by_held_bytes() {
    let runtime = procprobe(
        r#"
[components.procprobe]
grants = ["proc:spawn:/usr/bin/head", "proc:spawn:/bin/echo"]
limits = { held_bytes = 65536 }
"#,
    );
    let mut p = instance(&runtime, "procprobe");
    let flood = ["/usr/bin/head", "-c", "123456789", "/dev/zero"];
    let reply = while_serving(&runtime, || {
        ask(&mut p, &format!("starve:{}", flood.join("|")))
    });
    assert!(reply.starts_with("refused after "), "{reply}");
    assert!(reply.contains("quota-exceeded: "), "{reply}");
    assert!(
        reply.contains("the limit is 65536 bytes per instance"),
        "{reply}"
    );
    assert!(reply.contains("`limits.held_bytes`"), "{reply}");
    // The flooding child is blocked: it wrote what the host holds plus
    // what its pipe holds, not its 123 MB.
    let cmdline: Vec<u8> = flood
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let written: Vec<u64> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (std::fs::read(path.join("cmdline")).ok()? == cmdline).then_some(path)
        })
        .filter_map(|path| {
            let io = std::fs::read_to_string(path.join("io")).ok()?;
            io.lines()
                .find_map(|l| l.strip_prefix("wchar: "))
                .and_then(|n| n.trim().parse().ok())
        })
        .collect();
    assert_eq!(written.len(), 1, "one flooding child: {written:?}");
    assert!(
        written[0] <= 65536 + (1 << 20),
        "it wrote {written:?} bytes"
    );
    assert_eq!(ask(&mut p, "drop"), "dropped");
}
