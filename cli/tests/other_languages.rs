//! docs/other-languages.md, run as written: for each language, the
//! commands of its `sh` block, one by one, in a new directory holding the
//! example's files, with the built `airssys` first on `PATH`. The
//! toolchain is installed by those commands (PyPI, npm), so the test
//! never skips: a missing network or registry fails it.
//!
//! Ignored by default (it installs componentize-py and compiles an 18 MB
//! component: a minute or two); `.ci/run` runs it with `--ignored`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The lines of the first ```sh block after `heading` in the page.
fn commands(heading: &str) -> Vec<String> {
    let page = std::fs::read_to_string(repo().join("docs/other-languages.md")).unwrap();
    let from = page
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} on the page"));
    let block = &page[from..];
    let start = block.find("```sh\n").expect("an sh block") + "```sh\n".len();
    let end = block[start..].find("```").expect("its end");
    block[start..start + end]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs `line` with bash in `dir`; returns stdout + stderr, asserting
/// exit 0.
fn run(dir: &Path, line: &str) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_airssys")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        // Shared between runs of this test, so only the first compiles.
        .env(
            "AIRSSYS_CACHE_DIR",
            repo().join("target/other-languages/cache"),
        )
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "`{line}` failed:\n{text}");
    text
}

#[test]
#[ignore = "installs componentize-py from PyPI and builds an 18 MB component; run by .ci/run"]
fn python_walk_through_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["app.py", "Component.toml", "policy.toml"] {
        std::fs::copy(
            repo().join("examples/py-counter").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    let lines = commands("## Python (componentize-py)");
    assert_eq!(lines.len(), 7, "{lines:?}");
    let mut outputs = Vec::new();
    for line in &lines {
        outputs.push(run(dir.path(), line));
    }
    let attach = &outputs[4];
    assert!(
        attach.contains("attached manifest `py-counter` 0.1.0 (3 required, 1 optional)"),
        "{attach}"
    );
    assert!(
        attach.contains(
            "note: the component imports every function of `airssys:core/component@1.0.0`"
        ),
        "{attach}"
    );
    let inspect = &outputs[5];
    assert!(inspect.contains("manifest: py-counter 0.1.0"), "{inspect}");
    assert!(
        inspect.contains("verdict: compatible with this host"),
        "{inspect}"
    );
    let ran = &outputs[6];
    for expected in [
        "  allow kv:write:counter/starts (bucket.set)\n  stdout: started 1 time(s)\n  -> ok",
        "request \"increment\"",
        "-> reply \"2\"",
        "  DENY  kv:delete:counter/starts (bucket.delete): denied: no grant covers the request",
        "-> the component answered with an error: denied: component `py-counter` lacks \
         `kv:delete:counter/starts`",
    ] {
        assert!(ran.contains(expected), "`{expected}` not in:\n{ran}");
    }
}

#[test]
#[ignore = "installs componentize-js from npm and builds a 12 MB component; run by .ci/run"]
fn javascript_walk_through_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "app.js",
        "Component.toml",
        "policy.toml",
        "package.json",
        "package-lock.json",
    ] {
        std::fs::copy(
            repo().join("examples/js-greeter").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    let lines = commands("## JavaScript (componentize-js)");
    assert_eq!(lines.len(), 6, "{lines:?}");
    let mut outputs = Vec::new();
    for line in &lines {
        outputs.push(run(dir.path(), line));
    }
    let inspect = &outputs[4];
    assert!(inspect.contains("manifest: js-greeter 0.1.0"), "{inspect}");
    assert!(
        inspect.contains("verdict: compatible with this host"),
        "{inspect}"
    );
    let ran = &outputs[5];
    for expected in [
        "  stdout: js-greeter ready\n",
        "  allow log:write:info (log)\n  log info greeter: hello, Ada!\n  -> reply \"hello, Ada!\"",
        "  DENY  kv:write:names/Ada (bucket.set): denied: no grant covers the request",
        "-> the component answered with an error: denied: component `js-greeter` lacks \
         `kv:write:names/Ada`",
    ] {
        assert!(ran.contains(expected), "`{expected}` not in:\n{ran}");
    }

    // The same source built without `--disable`: it imports wasi:http,
    // which inspect reports and run refuses before compiling.
    run(
        dir.path(),
        "npx componentize-js app.js --wit wit --world-name airssys:core/component -o http.wasm",
    );
    run(
        dir.path(),
        "airssys manifest attach http.wasm --manifest Component.toml -o http.wasm",
    );
    let bin = env!("CARGO_BIN_EXE_airssys");
    let http = dir.path().join("http.wasm");
    let out = Command::new(bin)
        .args(["inspect", http.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the host does not provide package `wasi:http`"),
        "{text}"
    );
    let out = Command::new(bin)
        .args(["run", http.to_str().unwrap(), "--no-cache"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wasi:http/"), "{err}");
    assert!(err.contains("(this host does not provide it)"), "{err}");
}
