//! Helpers shared by the CLI's end-to-end tests: run the built `airssys`
//! binary and read what it printed.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `airssys` with `args` and waits for it.
pub(crate) fn airssys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .output()
        .unwrap()
}

/// What the command printed on stdout.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// What the command printed on stderr.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
