//! `airssys cap check` end to end: output lines and exit codes.

use std::process::{Command, Output};

fn cap_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["cap", "check"])
        .args(args)
        .output()
        .expect("the airssys binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn allow_prints_the_grant_and_exits_0() {
    let out = cap_check(&["--grant", "fs:read:/data/**", "fs:read:/data/app/x.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "allow\nallowed by grant `fs:read:/data/**`\n");
}

#[test]
fn deny_rule_overrides_and_exits_1() {
    let out = cap_check(&[
        "--grant",
        "fs:read:/data/**",
        "--deny",
        "fs:read:/data/secret/**",
        "fs:read:/data/secret/key",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "deny\ndenied by deny rule `fs:read:/data/secret/**`\n"
    );
}

#[test]
fn no_grant_is_deny_by_default() {
    let out = cap_check(&["--grant", "fs:read:/data/**", "fs:read:/etc/passwd"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "deny\ndenied: no grant covers `fs:read:/etc/passwd` (deny by default)\n"
    );
    let out = cap_check(&["net:connect:example.com:443"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn net_and_second_grant_are_reported() {
    let out = cap_check(&[
        "--grant",
        "kv:read:cache/*",
        "--grant",
        "net:connect:*.example.com:443",
        "net:connect:API.example.com:443",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "allow\nallowed by grant `net:connect:*.example.com:443`\n"
    );
}

#[test]
fn invalid_pattern_names_the_argument_with_a_caret() {
    let out = cap_check(&[
        "--grant",
        "fs:read:/x",
        "--grant",
        "fs:raed:/x",
        "fs:read:/x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("--grant #2 `fs:raed:/x`"), "{err}");
    assert!(
        err.contains("unknown action `raed` for domain `fs`; expected one of read, write"),
        "{err}"
    );
    assert!(err.contains("\n  fs:raed:/x\n     ^^^^"), "{err}");
}

#[test]
fn invalid_deny_and_request_exit_2() {
    let out = cap_check(&["--deny", "net:connect:example.com:0", "net:connect:a.com:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--deny #1"), "{}", stderr(&out));
    assert!(stderr(&out).contains("port 0"), "{}", stderr(&out));

    let out = cap_check(&["--grant", "fs:read:/data/**", "fs:read:/data/../etc/passwd"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("REQUEST `fs:read:/data/../etc/passwd`"),
        "{err}"
    );
    assert!(
        err.contains("\n  fs:read:/data/../etc/passwd\n                ^^"),
        "{err}"
    );

    let out = cap_check(&["--grant", "net:connect:*:80", "net:connect:127.1:80"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("canonical"), "{}", stderr(&out));
}
