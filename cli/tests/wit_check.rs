//! `airssys wit check` end to end.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

mod common;
use common::{airssys, stderr, stdout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract/tests/fixtures")
}

#[test]
fn embedded_contract_is_clean() {
    let out = airssys(&["wit", "check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("ok: 2 packages, "), "{text}");
    assert!(text.contains(" host functions ("), "{text}");
}

#[test]
fn the_repository_wit_directory_is_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let out = airssys(&["wit", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // the directory and the embedded copy agree
    assert_eq!(stdout(&out), stdout(&airssys(&["wit", "check"])));
}

#[test]
fn problems_print_file_and_line_and_exit_1() {
    let dir = fixtures().join("lint/unknown-action");
    let out = airssys(&["wit", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let expected = format!(
        "{}:22: function `get` in `fixture:case/api@1.0.0`: unknown action `raed` for domain `fs`; \
         expected one of read, write, create, delete, list, stat\n",
        dir.join("api.wit").display()
    );
    assert_eq!(text, expected);
    assert!(stderr(&out).contains("1 problem"), "{}", stderr(&out));
}

#[test]
fn parse_error_exits_2_with_file_and_line() {
    let dir = fixtures().join("parse-error");
    let out = airssys(&["wit", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let at = format!("{}:6:1", dir.join("api.wit").display());
    assert!(err.contains(&at), "{err}");
    assert!(err.contains("expected ';', found '}'"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn missing_directory_exits_2() {
    let out = airssys(&["wit", "check", "/no/such/airssys/wit"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/airssys/wit: not a directory"));
}
