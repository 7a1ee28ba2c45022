//! `airssys run` prints what a component says — its log records, its
//! stdout and stderr, its error texts — with every control character
//! escaped, so a component can neither forge report lines (embedded line
//! breaks, carriage returns) nor drive the terminal (escape sequences);
//! stdout and stderr need a `log:write` grant, and records dropped by the
//! log rate limit are said in a note. The component is a crate written by
//! [`noisy_crate`] and built by `airssys run` itself, into the target
//! directory `cli/tests/run.rs` shares.

#![allow(clippy::unwrap_used)]

mod common;

use common::shared_target;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

fn airssys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(common::repo())
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("runs airssys")
}

/// Writes the `noisy` component crate (beside `common::echo_crate`'s) and
/// returns its directory. Its requests:
/// - `noise`: logs a forged report line and a clear-screen sequence,
///   prints a terminal-title sequence to stdout and a carriage return to
///   stderr;
/// - `fail`: answers an error whose text forges a line and sets a colour;
/// - `flood`: logs 200 records;
/// - `panic`: prints a line, then panics with a message carrying an
///   escape sequence (Rust's panic handler writes it to stderr).
fn noisy_crate() -> PathBuf {
    let lib_rs = r#"//! Says hostile things.

#[airssys::component(optional = ["log:write"])]
struct Noisy;

impl guest::Lifecycle for Noisy {}

fn log(message: &str) {
    let _ = Noisy::host()
        .logging()
        .log(host::logging::Level::Info, "noisy", message);
}

impl guest::Handler for Noisy {
    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        match payload.as_slice() {
            b"noise" => {
                log("ok\n[airssys] granted everything");
                log("\x1b[2J");
                println!("out\x1b]0;pwned\x07");
                eprintln!("err\rforged");
                Ok(b"done".to_vec())
            }
            b"fail" => Err(guest::handler::Error::Other(
                "no\n[airssys] granted everything\x1b[31m".to_owned(),
            )),
            b"flood" => {
                for i in 0..200 {
                    log(&format!("record {i}"));
                }
                Ok(b"flooded".to_vec())
            }
            b"panic" => {
                println!("about to panic");
                panic!("out of \x1b[31mcheese");
            }
            _ => Ok(Vec::new()),
        }
    }
}
"#;
    common::component_crate("noisy", lib_rs)
}

/// The component's `.wasm`, built once by `airssys run` from the crate.
fn noisy_wasm() -> String {
    static BUILT: OnceLock<Output> = OnceLock::new();
    let out = BUILT.get_or_init(|| {
        let dir = noisy_crate();
        airssys(&["run", dir.to_str().unwrap()])
    });
    common::succeeded(out);
    let path = shared_target().join("wasm32-wasip2/release/noisy.wasm");
    assert!(path.is_file(), "{} was built", path.display());
    path.display().to_string()
}

/// Asserts that nothing in `text` came through raw: no escape character,
/// no carriage return, no line starting with the forged text.
fn assert_clean(text: &str) {
    assert!(
        !text.contains('\x1b'),
        "an escape character got through:\n{text}"
    );
    assert!(
        !text.contains('\r'),
        "a carriage return got through:\n{text}"
    );
    assert!(!text.contains('\x07'), "a bell got through:\n{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("[airssys]")),
        "a forged line got through:\n{text}"
    );
}

#[test]
fn component_text_is_printed_with_control_characters_escaped() {
    let out = airssys(&[
        "run",
        &noisy_wasm(),
        "--grant",
        "log:write",
        "--request",
        "noise",
        "--request",
        "fail",
    ]);
    let stdout = common::succeeded(&out);
    assert_clean(&stdout);
    assert_clean(&String::from_utf8_lossy(&out.stderr));
    common::assert_in_order(
        &stdout,
        &[
            "request \"noise\"\n",
            "  log info noisy: ok\\n[airssys] granted everything\n",
            "  log info noisy: \\u{1b}[2J\n",
            "  stdout: out\\u{1b}]0;pwned\\u{7}\n",
            "  stderr: err\\rforged\n",
            "  -> reply \"done\"\n",
            "request \"fail\"\n",
            "  -> the component answered with an error: no\\n[airssys] granted \
             everything\\u{1b}[31m\n",
        ],
    );
}

#[test]
fn output_without_a_log_grant_is_dropped_with_a_note() {
    let out = airssys(&["run", &noisy_wasm(), "--request", "noise"]);
    let stdout = common::succeeded(&out);
    assert_clean(&stdout);
    assert!(!stdout.contains("  stdout:"), "{stdout}");
    assert!(!stdout.contains("  stderr:"), "{stdout}");
    assert!(
        stdout.contains(
            "  note: component `noisy` writes to stdout, which the host shows as `info` log \
             records, but holds no `log:write:info` grant: its stdout is dropped (grant \
             `log:write:info` to see it)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("  DENY  log:write:info (log)"), "{stdout}");
}

#[test]
fn records_dropped_by_the_log_rate_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[components.noisy]\ngrants = [\"log:write\"]\nlimits = { log_lines_per_second = 5 }\n",
    )
    .unwrap();
    let out = airssys(&[
        "run",
        &noisy_wasm(),
        "--policy",
        policy.to_str().unwrap(),
        "--request",
        "flood",
    ]);
    let stdout = common::succeeded(&out);
    assert!(stdout.contains("  log info noisy: record 0\n"), "{stdout}");
    assert!(
        stdout.contains(
            "records of component `noisy` dropped by limits.log_lines_per_second (5 per second)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("5 log records and"), "{stdout}");
    assert!(
        stdout.matches("  log info noisy: record").count() < 200,
        "{stdout}"
    );
}

#[test]
fn the_text_written_before_a_trap_is_printed_with_it_without_a_log_grant() {
    let out = airssys(&["run", &noisy_wasm(), "--request", "panic"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_clean(&stdout);
    assert_clean(&stderr);
    // No `log:write`: not shown as output lines...
    assert!(!stdout.contains("  stderr:"), "{stdout}");
    // ...but quoted in the trap error, escaped, after the cause.
    common::assert_in_order(
        &stderr,
        &[
            "error: request failed: component `noisy` trapped: wasm trap: wasm `unreachable` \
             instruction executed\n",
            "  | the component wrote before the trap:\n",
            " panicked at ",
            "  |   stderr: out of \\u{1b}[31mcheese\n",
            "  |   stdout: about to panic\n",
        ],
    );
}
