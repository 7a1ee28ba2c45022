//! `airssys run`: builds `examples/kv-counter` from its crate directory,
//! runs it under its policy and checks the printed capability decisions
//! (one allowed call, one denied call with its fix), the effect of
//! `--grant` / `--deny`, persistent `--storage`, load refusals and exit
//! codes; and, with a second component (a fixture crate from
//! `common::echo_crate`), requests addressed by name with `--request-to`.
//!
//! The example builds into `<repo>/target/new-templates`, the target
//! directory `cli/tests/new.rs` shares, so airssys and its dependencies
//! compile for `wasm32-wasip2` once.

#![allow(clippy::unwrap_used)]

mod common;

use common::{repo_root, shared_target};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

fn airssys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(repo_root())
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("runs airssys")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn policy() -> String {
    repo_root()
        .join("examples/kv-counter/policy.toml")
        .display()
        .to_string()
}

/// The demo run, from the crate directory (built once for all tests).
fn demo() -> &'static Output {
    static DEMO: OnceLock<Output> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = repo_root().join("examples/kv-counter");
        airssys(&[
            "run",
            dir.to_str().unwrap(),
            "--policy",
            &policy(),
            "--request",
            "increment",
            "--request",
            "reset",
        ])
    })
}

/// The `.wasm` the demo built.
fn wasm() -> String {
    let out = demo();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let path = shared_target().join("wasm32-wasip2/release/kv_counter.wasm");
    assert!(path.is_file(), "{} was built", path.display());
    path.display().to_string()
}

#[test]
fn the_demo_shows_an_allowed_and_a_denied_call() {
    let out = demo();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // The build's progress goes to stderr.
    assert!(
        stderr.contains("airssys: building") && stderr.contains("Finished"),
        "{stderr}"
    );
    assert!(stdout.contains("loaded `kv-counter` 0.1.0"), "{stdout}");
    assert!(
        stdout.contains("optional, not granted: kv:delete:counter/*"),
        "{stdout}"
    );
    assert!(
        stdout.contains("log info kv-counter: started 1 time(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  allow kv:write:counter/starts (bucket.set)"),
        "{stdout}"
    );
    assert!(stdout.contains("  -> reply \"2\""), "{stdout}");
    assert!(
        stdout.contains(
            "  DENY  kv:delete:counter/starts (bucket.delete): denied: no grant covers the \
             request (deny by default)"
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("  fix: add \"kv:delete:counter/*\" to `grants` of [components.kv-counter]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the component answered with an error: denied: component `kv-counter` lacks `kv:delete:counter/starts`"),
        "{stdout}"
    );
    assert!(stdout.contains("1 host call(s) denied"), "{stdout}");
    // Decisions print in call order: init, the increment, then the denial.
    let allow = stdout.find("reply \"2\"").unwrap();
    let deny = stdout.find("DENY").unwrap();
    assert!(allow < deny, "{stdout}");
}

#[test]
fn a_grant_on_the_command_line_allows_the_call() {
    let out = airssys(&[
        "run",
        &wasm(),
        "--policy",
        &policy(),
        "--grant",
        "kv:delete:counter/*",
        "--request",
        "reset",
        "--fail-on-deny",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("  allow kv:delete:counter/starts (bucket.delete)"),
        "{stdout}"
    );
    assert!(stdout.contains("  -> reply \"reset\""), "{stdout}");
    assert!(!stdout.contains("DENY"), "{stdout}");
}

#[test]
fn a_deny_rule_wins_and_fail_on_deny_exits_1() {
    let out = airssys(&[
        "run",
        &wasm(),
        "--policy",
        &policy(),
        "--grant",
        "kv:delete:counter/*",
        "--deny",
        "kv:delete:counter/*",
        "--request",
        "reset",
        "--fail-on-deny",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("DENY  kv:delete:counter/starts (bucket.delete): denied by deny rule `kv:delete:counter/*`"),
        "{stdout}"
    );
    // The fix says where the rule came from: the command line.
    assert!(
        stdout.contains(
            "  fix: it came from `--deny kv:delete:counter/*` on the command line: drop that \
             flag if this call should succeed"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("the host policy denies it with `kv:delete:counter/*`"),
        "{stdout}"
    );
}

/// One source of advice: the text the component receives says what the
/// `fix:` line says (the manifest declares the pattern, the policy does
/// not grant it), naming the same pattern.
#[test]
fn the_component_is_told_what_the_fix_line_says() {
    let stdout = text(&demo().stdout);
    assert!(
        stdout.contains(
            "  -> the component answered with an error: denied: component `kv-counter` lacks \
             `kv:delete:counter/starts`: no grant of the host policy covers it (its manifest \
             declares `kv:delete:counter/*`); grant `kv:delete:counter/*` in the host policy"
        ),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("  fix: add \"kv:delete:counter/*\" to `grants` of [components.kv-counter]"),
        "{stdout}"
    );
}

/// A core module gets the answer `inspect` gives, with or without a
/// policy that loads components without a manifest.
#[test]
fn a_core_module_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let core = core.to_str().unwrap();
    let policy = policy_file(dir.path(), "allow_unannotated = true\n");
    for args in [vec!["run", core], vec!["run", core, "--policy", &policy]] {
        let out = airssys(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "error: {core} is a core WebAssembly module, not a component; build it for \
                 `wasm32-wasip2` or wrap it with `wasm-tools component new`"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("manifest"), "{stderr}");
        let inspect = airssys(&["inspect", core]);
        assert!(text(&inspect.stderr).contains("is a core WebAssembly module"));
    }
}

/// A policy file in a temporary directory.
fn policy_file(dir: &Path, text: &str) -> String {
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A grant the manifest declares nothing to overlap is dropped at load:
/// a warning names it and where it was written (the user's file and line,
/// or the command line).
#[test]
fn a_grant_the_manifest_does_not_declare_is_warned_about_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(
        dir.path(),
        "[components.kv-counter]\n\
         grants = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"log:write\"]\n\
         \n\
         [components.other]\n\
         grants = [\"kv:read:counter/*\"]\n",
    );
    // The file's own table, one more grant on line 2 of a second version.
    let out = airssys(&[
        "run",
        &wasm(),
        "--policy",
        &policy,
        "--grant",
        "kv:read:other/*",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning: the grant `kv:read:other/*` to `kv-counter` (`--grant kv:read:other/*` on \
             the command line) has no effect: the component's manifest declares no pattern it \
             overlaps"
        ),
        "{stderr}"
    );
    // Declared grants are not listed.
    assert!(!stderr.contains("`kv:read:counter/*` to"), "{stderr}");

    let policy = policy_file(
        dir.path(),
        "[components.kv-counter]\n\
         grants = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"log:write\",\n\
         \x20 \"env:read:HOME\"]\n",
    );
    let out = airssys(&["run", &wasm(), "--policy", &policy]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: the grant `env:read:HOME` to `kv-counter` ({policy}:3) has no effect"
        )),
        "{stderr}"
    );
}

/// Load errors cite the user's own file and line, or say that a rule came
/// from the command line; never a line of a policy merged in memory.
#[test]
fn load_errors_cite_the_users_file_or_the_command_line() {
    let out = airssys(&["run", &wasm(), "--policy", &policy(), "--deny", "log:write"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("denied by the policy's deny rule `log:write`"),
        "{stderr}"
    );
    assert!(!stderr.contains("policy line"), "{stderr}");
    assert!(!stderr.contains("merged"), "{stderr}");
    assert!(
        stderr.contains("note: `log:write` is the `--deny log:write` given on the command line"),
        "{stderr}"
    );

    // No `--policy`: no line at all.
    let out = airssys(&["run", &wasm(), "--grant", "kv:read:counter/*"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("line 1"), "{stderr}");
    assert!(stderr.contains("[components.kv-counter]"), "{stderr}");

    // The file's own rules keep their line, next to a command-line rule.
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(
        dir.path(),
        "[components.kv-counter]\n\
         grants = [\"kv:read:counter/*\", \"kv:write:counter/*\", \"log:write\"]\n\
         denies = [\"log:write\"]\n",
    );
    let out = airssys(&[
        "run",
        &wasm(),
        "--policy",
        &policy,
        "--grant",
        "kv:delete:counter/*",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("deny rule `log:write` ({policy} line 3)")),
        "{stderr}"
    );
}

/// The policy file is read before the crate is built: a missing file or a
/// TOML mistake fails at once, naming the file.
#[test]
fn the_policy_file_is_checked_before_the_build() {
    let krate = repo_root().join("examples/kv-counter");
    let out = airssys(&[
        "run",
        krate.to_str().unwrap(),
        "--policy",
        "no/such/policy.toml",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no/such/policy.toml"), "{stderr}");
    assert!(!stderr.contains("airssys: building"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), "[components.kv-counter]\ngrants = [\n");
    let out = airssys(&["run", krate.to_str().unwrap(), "--policy", &policy]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{policy}:")), "{stderr}");
    assert!(!stderr.contains("airssys: building"), "{stderr}");
}

#[test]
fn storage_persists_across_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.redb");
    let wasm = wasm();
    let run = || {
        airssys(&[
            "run",
            &wasm,
            "--policy",
            &policy(),
            "--storage",
            state.to_str().unwrap(),
            "--request",
            "get",
        ])
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("-> reply \"1\""));
    let second = run();
    let stdout = text(&second.stdout);
    assert!(stdout.contains("started 2 time(s)"), "{stdout}");
    assert!(stdout.contains("-> reply \"2\""), "{stdout}");
}

#[test]
fn without_a_policy_the_load_is_refused_with_the_fix() {
    let out = airssys(&["run", &wasm(), "--grant", "kv:read:counter/*"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the host refused to load")
            && stderr.contains("`log:write`: no policy grant covers it")
            && stderr.contains("hint: or pass `--grant PATTERN`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("kv:read:counter/*`: no policy"),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn invalid_input_exits_2() {
    let bad = airssys(&["run", &wasm(), "--grant", "kv"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("error: --grant `kv` is not a capability pattern"),
        "{}",
        text(&bad.stderr)
    );

    let missing = airssys(&["run", "no/such/component.wasm"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("is neither a component file nor a crate directory"));

    let dir = tempfile::tempdir().expect("tempdir");
    let not_wasm = dir.path().join("x.wasm");
    std::fs::write(&not_wasm, b"not wasm").expect("writes");
    let out = airssys(&["run", not_wasm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let no_crate = airssys(&["run", dir.path().to_str().unwrap()]);
    assert_eq!(no_crate.status.code(), Some(2));
    assert!(text(&no_crate.stderr).contains("has no Cargo.toml"));
}

/// The name of the echo fixture run next to `kv-counter`.
const ECHO: &str = "run-echo";

/// The echo fixture's `.wasm`, built once from its crate directory by
/// `airssys run` (alone, so `--request` goes to it).
fn echo_wasm() -> String {
    static BUILT: OnceLock<Output> = OnceLock::new();
    let out = BUILT.get_or_init(|| {
        let dir = common::echo_crate(ECHO);
        airssys(&["run", dir.to_str().unwrap(), "--request", "hi"])
    });
    let stdout = common::succeeded(out);
    assert!(stdout.contains("-> reply \"run-echo got hi\""), "{stdout}");
    let path = shared_target().join("wasm32-wasip2/release/run_echo.wasm");
    assert!(path.is_file(), "{} was built", path.display());
    path.display().to_string()
}

#[test]
fn request_to_reaches_the_second_component() {
    let out = airssys(&[
        "run",
        &wasm(),
        &echo_wasm(),
        "--policy",
        &policy(),
        "--request-to",
        "run-echo=hello=world",
    ]);
    let stdout = common::succeeded(&out);
    // Split at the first `=`: the payload keeps the others.
    assert!(
        stdout.contains(
            "request \"hello=world\" to `run-echo`\n  -> reply \"run-echo got hello=world\"\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("to `kv-counter`"), "{stdout}");
}

#[test]
fn requests_are_sent_in_command_line_order() {
    let out = airssys(&[
        "run",
        &wasm(),
        &echo_wasm(),
        "--policy",
        &policy(),
        "--request",
        "get",
        "--request-to",
        "run-echo=one",
        "--request",
        "increment",
        "--request-to",
        "kv-counter=get",
        "--request-to",
        "run-echo=two",
    ]);
    let stdout = common::succeeded(&out);
    common::assert_in_order(
        &stdout,
        &[
            "init `kv-counter`",
            "init `run-echo`",
            "request \"get\" to `kv-counter`",
            "  -> reply \"1\"\n",
            "request \"one\" to `run-echo`\n  -> reply \"run-echo got one\"\n",
            "request \"increment\" to `kv-counter`",
            "  -> reply \"2\"\n",
            "request \"get\" to `kv-counter`",
            "  -> reply \"2\"\n",
            "request \"two\" to `run-echo`\n  -> reply \"run-echo got two\"\n",
            "shutdown `kv-counter`",
        ],
    );
    assert_eq!(stdout.matches("request \"").count(), 5, "{stdout}");
}

#[test]
fn request_to_an_unknown_component_exits_2_before_running() {
    let out = airssys(&[
        "run",
        &wasm(),
        &echo_wasm(),
        "--policy",
        &policy(),
        "--request",
        "get",
        "--request-to",
        "run-ehco=hi",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: --request-to `run-ehco=hi`: no component named `run-ehco` is loaded (did \
             you mean `run-echo`?); the components are `kv-counter`, `run-echo`"
        ),
        "{stderr}"
    );
    // Nothing was loaded, so nothing ran.
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));

    let no_eq = airssys(&["run", &wasm(), "--request-to", "kv-counter"]);
    assert_eq!(no_eq.status.code(), Some(2));
    assert!(
        text(&no_eq.stderr)
            .contains("error: --request-to `kv-counter` has no `=`; write NAME=PAYLOAD"),
        "{}",
        text(&no_eq.stderr)
    );
    let no_name = airssys(&["run", &wasm(), "--request-to", "=get"]);
    assert_eq!(no_name.status.code(), Some(2));
    assert!(
        text(&no_name.stderr).contains("error: --request-to `=get` names no component"),
        "{}",
        text(&no_name.stderr)
    );
}

/// `--nats` keeps storage in the server's key-value bucket: a second run
/// (another host, its own process) counts on from the first's count.
#[test]
fn storage_under_nats_is_shared_by_every_run_on_the_server() {
    let server = common::NatsServer::start();
    let wasm = wasm();
    let url = server.url();
    for n in 1..=2 {
        let out = airssys(&["run", &wasm, "--policy", &policy(), "--nats", &url]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains(&format!("log info kv-counter: started {n} time(s)")),
            "run {n}: {stdout}"
        );
    }
}
