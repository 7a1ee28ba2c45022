//! The examples `ping-pong`, `http-fetch` and `file-indexer`, each built
//! from its crate directory and run with the `airssys` binary exactly as
//! its README says, checking the allowed and denied calls it prints and
//! the results; plus the checks of `--message` and `--mount` arguments.
//!
//! The crates build into `<repo>/target/new-templates`, the target
//! directory `cli/tests/new.rs` and `cli/tests/run.rs` share, so airssys and
//! its dependencies compile for `wasm32-wasip2` once.
//!
//! The examples in other languages (`py-counter`, `js-greeter`,
//! `c-greeter`) are run by the walk-throughs of docs/other-languages.md
//! at the end of this file: the commands of each language's `sh` block,
//! as written. They install their toolchains (PyPI, npm, crates.io; the C
//! one also needs Debian's clang, see its test), so they are ignored by
//! default; `.ci/run` runs them with `cargo test -p airssys-cli --test
//! examples -- --ignored`.

#![allow(clippy::unwrap_used)]

mod common;

use common::repo_root;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn example(path: &str) -> String {
    repo_root()
        .join("examples")
        .join(path)
        .display()
        .to_string()
}

fn airssys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(repo_root())
        .env(
            "CARGO_TARGET_DIR",
            repo_root().join("target").join("new-templates"),
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("runs airssys")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ping_pong_passes_the_ball_and_the_optional_announcement_is_denied() {
    let policy = example("ping-pong/policy.toml");
    let out = airssys(&[
        "run",
        &example("ping-pong/ping"),
        &example("ping-pong/pong"),
        "--policy",
        &policy,
        "--message",
        "game.serve=3",
        "--message",
        "nobody.listens=hello",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("airssys: built"), "{stderr}");
    common::assert_in_order(
        &stdout,
        &[
            "loaded `ping` 0.1.0",
            "  subscribed: game.serve, ball.to-ping",
            "loaded `pong` 0.1.0",
            "  optional, not granted: msg:publish:game.over",
            "  subscribed: ball.to-pong",
            "init `ping`",
            "init `pong`",
            "publish game.serve \"3\" from `cli` -> 1 subscriber",
            "publish nobody.listens \"hello\" from `cli`: no component subscribes to \
             `nobody.listens`",
            "message game.serve \"3\" from `cli` to `ping`",
            "  log info ping: ping (3 left) from `cli`",
            "  allow msg:publish:ball.to-pong (publish)",
            "  -> handled",
            "message ball.to-pong \"2\" from `ping` to `pong`",
            "  log info pong: pong (2 left) from `ping`",
            "  allow msg:publish:ball.to-ping (publish)",
            "message ball.to-ping \"1\" from `pong` to `ping`",
            "message ball.to-pong \"0\" from `ping` to `pong`",
            "  DENY  msg:publish:game.over (publish): denied: no grant covers the request \
             (deny by default)",
            &format!(
                "  fix: add \"msg:publish:game.over\" to `grants` of [components.pong] in \
                 {policy}, or pass `--grant msg:publish:game.over` for this run"
            ),
            "  log warn pong: cannot announce the end: component `pong` lacks \
             `msg:publish:game.over`",
            "  -> handled",
            "shutdown `ping`",
            "shutdown `pong`",
            "1 host call(s) denied",
        ],
    );
    // The ball stops at zero: four deliveries in all.
    assert_eq!(stdout.matches("\nmessage ").count(), 4, "{stdout}");

    // The README's fix: grant the announcement. Nobody subscribes to it.
    let out = airssys(&[
        "run",
        &example("ping-pong/ping"),
        &example("ping-pong/pong"),
        "--policy",
        &policy,
        "--grant",
        "msg:publish:game.over",
        "--message",
        "game.serve=1",
        "--fail-on-deny",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("  allow msg:publish:game.over (publish)"),
        "{stdout}"
    );
    assert!(!stdout.contains("DENY"), "{stdout}");
}

/// A message the handler refuses is retried, then dead-lettered with the
/// handler's error.
#[test]
fn a_failing_handler_is_retried_then_dead_lettered() {
    let out = airssys(&[
        "run",
        &example("ping-pong/ping"),
        "--policy",
        &example("ping-pong/policy.toml"),
        "--message",
        "game.serve=many",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    common::assert_in_order(
        &stdout,
        &[
            "message game.serve \"many\" from `cli` to `ping`\n",
            "  -> the handler failed; the message will be delivered again",
            "message game.serve \"many\" from `cli` to `ping` (attempt 2 of 3)",
            "  -> the handler failed; the message will be delivered again",
            "message game.serve \"many\" from `cli` to `ping` (attempt 3 of 3)",
            "  note: message dead-lettered after its last delivery attempt: handler error: \
             invalid input: expected a number of hits, got \"many\"",
            "  -> the handler failed on the last attempt; the message is dead-lettered",
            "shutdown",
        ],
    );
    assert_eq!(stdout.matches("\nmessage ").count(), 3, "{stdout}");
}

/// Serves `GET` requests on 127.0.0.1 with a fixed body, recording each
/// request line, until the test ends.
fn start_server(body: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds a loopback port");
    let port = listener.local_addr().expect("has an address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            serve(stream, body, &record);
        }
    });
    (port, seen)
}

fn serve(stream: TcpStream, body: &str, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    seen.lock().unwrap().push(line.trim_end().to_owned());
    // Skip the headers.
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = reader.get_mut().write_all(response.as_bytes());
}

#[test]
fn http_fetch_reaches_the_granted_loopback_port_only() {
    let (port, seen) = start_server("hello from the test server\nsecond line\n");
    // A second server that the policy does not grant: it must never be
    // contacted.
    let (other, other_seen) = start_server("must not be read\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[components.http-fetch]\ngrants = [\"net:http:127.0.0.1:{port}\", \"log:write\"]\n"
        ),
    )
    .expect("writes the policy");
    let policy = policy.display().to_string();
    let allowed = format!("127.0.0.1:{port}/hello?x=1");
    let denied = format!("http://127.0.0.1:{other}/");
    let out = airssys(&[
        "run",
        &example("http-fetch"),
        "--policy",
        &policy,
        "--request",
        &allowed,
        "--request",
        &denied,
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let body_len = "hello from the test server\nsecond line\n".len();
    common::assert_in_order(
        &stdout,
        &[
            "loaded `http-fetch` 0.1.0",
            &format!("  granted: log:write, net:http:127.0.0.1:{port}"),
            &format!("request \"{allowed}\""),
            &format!("  allow net:http:127.0.0.1:{port} (send-http)"),
            &format!(
                "  log info http-fetch: GET 127.0.0.1:{port}/hello?x=1 -> 200 {body_len} bytes: \
                 hello from the test server"
            ),
            &format!("  -> reply \"200 {body_len} bytes: hello from the test server\""),
            &format!("request \"{denied}\""),
            &format!(
                "  DENY  net:http:127.0.0.1:{other} (send-http): denied: no grant covers the \
                 request (deny by default)"
            ),
            &format!(
                "  fix: add \"net:http:127.0.0.1:*\" to `grants` of [components.http-fetch] in \
                 {policy}"
            ),
            &format!(
                "  -> the component answered with an error: denied: component `http-fetch` lacks \
                 `net:http:127.0.0.1:{other}`"
            ),
            "1 host call(s) denied",
        ],
    );
    // The optional capability is granted in part, so it is not listed as
    // missing.
    assert!(!stdout.contains("optional, not granted"), "{stdout}");
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["GET /hello?x=1 HTTP/1.1".to_owned()]
    );
    assert!(other_seen.lock().unwrap().is_empty());
}

#[test]
fn file_indexer_indexes_a_mounted_tree_except_what_a_deny_rule_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    let out_dir = dir.path().join("out");
    let files = [
        ("a.txt", "one\ntwo\n"),
        ("private/secret.txt", "do not index\n"),
        ("sub/deeper/b.md", "# title\n\nbody\n"),
        ("z.bin", "\u{1}\u{2}"),
    ];
    for (path, content) in files {
        let path = tree.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    std::fs::create_dir_all(&out_dir).unwrap();
    // The example's policy with the tree and the output mounted.
    let example_policy =
        std::fs::read_to_string(repo_root().join("examples/file-indexer/policy.toml")).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "{example_policy}mounts = {{ \"/data\" = {:?}, \"/out\" = {:?} }}\n",
            tree.display().to_string(),
            out_dir.display().to_string()
        ),
    )
    .unwrap();

    let out = airssys(&[
        "run",
        &example("file-indexer"),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    common::assert_in_order(
        &stdout,
        &[
            "loaded `file-indexer` 0.1.0",
            "  denied: fs:read:/data/private/**",
            "init",
            "  allow fs:list:/data (list-dir)",
            "  allow fs:read:/data/a.txt (open-read)",
            "  allow fs:read:/data/sub/deeper/b.md (open-read)",
            "  allow fs:read:/data/z.bin (open-read)",
            "  allow fs:create:/out/index.txt (create)",
            "  log info file-indexer: indexed 3 file(s) under /data, 0 not readable; wrote \
             /out/index.txt",
            "  -> ok",
        ],
    );
    // The private file's name is covered by the deny rule: the listing
    // leaves it out, so it is never tried (nor named).
    assert!(!stdout.contains("secret.txt"), "{stdout}");
    assert!(!stdout.contains("denied;"), "{stdout}");
    let index = std::fs::read_to_string(out_dir.join("index.txt")).expect("the index exists");
    let lines: Vec<&str> = index.lines().collect();
    let readable: Vec<_> = files
        .iter()
        .filter(|(path, _)| !path.starts_with("private/"))
        .collect();
    assert_eq!(lines.len(), readable.len(), "{index}");
    // In name order, depth first.
    for (line, (path, content)) in lines.iter().zip(readable) {
        let newlines = content.matches('\n').count();
        assert_eq!(
            *line,
            format!("/data/{path}\t{} bytes\t{newlines} lines", content.len())
        );
    }
    // Nothing but the index was written.
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 1);
}

/// The README's command: the repository's sample tree and policy, with
/// `--mount`; run twice, the second run replaces the index.
#[test]
fn file_indexer_runs_on_the_sample_with_mount_flags() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out_mount = format!("/out={}", out_dir.path().display());
    let run = || {
        airssys(&[
            "run",
            "examples/file-indexer",
            "--policy",
            "examples/file-indexer/policy.toml",
            "--mount",
            "/data=examples/file-indexer/sample",
            "--mount",
            &out_mount,
        ])
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let index = out_dir.path().join("index.txt");
    let before = std::fs::read_to_string(&index).expect("the index exists");
    assert!(
        before.contains("/data/notes/todo.txt\t") && !before.contains("private"),
        "{before}"
    );
    let second = run();
    let stdout = text(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("  allow fs:write:/out/index.txt (open-write)"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&index).unwrap(), before);
}

#[test]
fn bad_message_and_mount_arguments_exit_2_before_building() {
    let ping = example("ping-pong/ping");
    for (arg, expected) in [
        (
            "game.serve",
            "error: --message `game.serve` has no `=`; write TOPIC=PAYLOAD",
        ),
        (
            "game.*=3",
            "error: --message `game.*=3`: `game.*` is not a topic to publish on: a request topic \
             is concrete; `*` is a wildcard (at byte 5); a message goes to one concrete topic",
        ),
        (
            "game.>=3",
            "error: --message `game.>=3`: `game.>` is not a topic to publish on",
        ),
        (
            "game..serve=3",
            "error: --message `game..serve=3`: `game..serve` is not a topic to publish on",
        ),
        (
            "=3",
            "error: --message `=3`: `` is not a topic to publish on: a `msg:publish` request \
             needs a resource",
        ),
    ] {
        let out = airssys(&["run", &ping, "--message", arg]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {stderr}");
        assert!(stderr.contains(expected), "{arg}: {stderr}");
        // Checked before the crate is built.
        assert!(!stderr.contains("airssys: building"), "{stderr}");
        assert!(out.stdout.is_empty());
    }

    let out = airssys(&["run", &ping, "--mount", "/data"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error: --mount `/data` has no `=`; write VIRTUAL=DIR"),
        "{}",
        text(&out.stderr)
    );
    let out = airssys(&["run", &ping, "--mount", "/data=no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`no/such/dir` is not a directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn two_components_with_one_name_are_refused() {
    let ping = example("ping-pong/ping");
    let out = airssys(&["run", &ping, &ping]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("are both named `ping`; components run together need different names"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

// The examples in other languages: docs/other-languages.md, run as
// written. For each language, the commands of its `sh` block, one by one,
// in a new directory holding the example's files, with the built `airssys`
// first on `PATH`. The toolchain is installed by those commands, so the
// tests never skip: a missing network or registry fails them.

/// The lines of the first ```sh block after `heading` in
/// docs/other-languages.md.
fn walk_through(heading: &str) -> Vec<String> {
    let page = std::fs::read_to_string(repo_root().join("docs/other-languages.md")).unwrap();
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

/// Where the walk-throughs keep what may outlive one run: the compile
/// cache, the C tools' build, and the built components (for
/// `runtime/benches/compile.rs`).
fn other_languages_dir() -> PathBuf {
    repo_root().join("target/other-languages")
}

/// A new directory holding `files` of `examples/<example>`.
fn example_copy(example: &str, files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        std::fs::copy(
            repo_root().join("examples").join(example).join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    dir
}

/// `line` run by bash in `dir` (the built `airssys` first on `PATH`): its
/// exit code and what it printed (stdout, then stderr).
fn bash(dir: &Path, line: &str) -> (Option<i32>, String) {
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
        // Shared between runs of these tests, so only the first compiles.
        .env("AIRSSYS_CACHE_DIR", other_languages_dir().join("cache"))
        // The C walk-through's `cargo install`s build here, so a second
        // run reuses the first one's build.
        .env(
            "CARGO_TARGET_DIR",
            other_languages_dir().join("c-tools-build"),
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    (
        out.status.code(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// Runs `line` with bash in `dir`; returns stdout + stderr, asserting
/// exit 0.
fn run_line(dir: &Path, line: &str) -> String {
    let (code, text) = bash(dir, line);
    assert_eq!(code, Some(0), "`{line}` failed:\n{text}");
    text
}

/// Runs every line of the walk-through in `dir`, returning each output.
fn run_walk_through(dir: &Path, lines: &[String]) -> Vec<String> {
    lines.iter().map(|line| run_line(dir, line)).collect()
}

/// Keeps the built component for `runtime/benches/compile.rs`.
fn keep(dir: &Path, wasm: &str) {
    std::fs::create_dir_all(other_languages_dir()).unwrap();
    std::fs::copy(dir.join(wasm), other_languages_dir().join(wasm)).unwrap();
}

fn assert_all_in(output: &str, expected: &[&str]) {
    for expected in expected {
        assert!(output.contains(expected), "`{expected}` not in:\n{output}");
    }
}

#[test]
#[ignore = "installs componentize-py from PyPI and builds an 18 MB component; run by .ci/run"]
fn python_walk_through_runs_as_written() {
    let dir = example_copy("py-counter", &["app.py", "Component.toml", "policy.toml"]);
    let lines = walk_through("## Python (componentize-py)");
    assert_eq!(lines.len(), 7, "{lines:?}");
    let outputs = run_walk_through(dir.path(), &lines);
    keep(dir.path(), "py-counter.wasm");
    let attach = &outputs[4];
    assert_all_in(
        attach,
        &[
            "attached manifest `py-counter` 0.1.0 (3 required, 1 optional)",
            "note: the component imports every function of `airssys:core/component@1.0.0`",
        ],
    );
    assert_all_in(
        &outputs[5],
        &[
            "manifest: py-counter 0.1.0",
            "verdict: compatible with this host",
        ],
    );
    assert_all_in(
        &outputs[6],
        &[
            "  allow kv:write:counter/starts (bucket.set)\n  stdout: started 1 time(s)\n  -> ok",
            "request \"increment\"",
            "-> reply \"2\"",
            "  DENY  kv:delete:counter/starts (bucket.delete): denied: no grant covers the request",
            "-> the component answered with an error: denied: component `py-counter` lacks \
             `kv:delete:counter/starts`",
        ],
    );
}

#[test]
#[ignore = "installs componentize-js from npm and builds a 12 MB component; run by .ci/run"]
fn javascript_walk_through_runs_as_written() {
    let dir = example_copy(
        "js-greeter",
        &[
            "app.js",
            "Component.toml",
            "policy.toml",
            "package.json",
            "package-lock.json",
        ],
    );
    let lines = walk_through("## JavaScript (componentize-js)");
    assert_eq!(lines.len(), 6, "{lines:?}");
    let outputs = run_walk_through(dir.path(), &lines);
    assert_all_in(
        &outputs[4],
        &[
            "manifest: js-greeter 0.1.0",
            "verdict: compatible with this host",
        ],
    );
    assert_all_in(
        &outputs[5],
        &[
            "  stdout: js-greeter ready\n",
            "  allow log:write:info (log)\n  log info js-greeter (greeter): hello, Ada!\n  -> reply \"hello, \
             Ada!\"",
            "  DENY  kv:write:names/Ada (bucket.set): denied: no grant covers the request",
            "-> the component answered with an error: denied: component `js-greeter` lacks \
             `kv:write:names/Ada`",
        ],
    );

    // The same source built without `--disable`: it imports wasi:http,
    // which inspect reports and run refuses before compiling.
    run_line(
        dir.path(),
        "npx componentize-js app.js --wit wit --world-name airssys:core/component -o http.wasm",
    );
    run_line(
        dir.path(),
        "airssys manifest attach http.wasm --manifest Component.toml -o http.wasm",
    );
    let http = dir.path().join("http.wasm");
    let out = airssys(&["inspect", http.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_all_in(
        &text(&out.stdout),
        &["the host does not provide package `wasi:http`"],
    );
    let out = airssys(&["run", http.to_str().unwrap(), "--no-cache"]);
    assert_ne!(out.status.code(), Some(0));
    assert_all_in(
        &text(&out.stderr),
        &["wasi:http/", "(this host does not provide it)"],
    );
}

/// The Debian packages the C walk-through needs (not installed by the
/// test: they need root; `.ci/run` installs them).
const C_PACKAGES: &str = "apt-get install -y clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32";

#[test]
#[ignore = "installs wit-bindgen-cli and wasm-tools from crates.io (a few minutes of build) and \
            needs Debian's clang 14 and wasi-libc; run by .ci/run"]
fn c_walk_through_runs_as_written() {
    let clang = Command::new("clang-14").arg("--version").output();
    assert!(
        clang.is_ok_and(|o| o.status.success())
            && Path::new("/usr/lib/wasm32-wasi/libc.a").exists(),
        "the C example needs Debian 12's clang 14 and wasi-libc: `{C_PACKAGES}` (as root)"
    );
    let dir = example_copy("c-greeter", &["app.c", "Component.toml", "policy.toml"]);
    let lines = walk_through("## C (wit-bindgen, clang, WASI preview 1)");
    assert_eq!(lines.len(), 11, "{lines:?}");
    let outputs = run_walk_through(dir.path(), &lines);
    keep(dir.path(), "c-greeter.wasm");
    // Only what the code calls is imported: no note about a whole world.
    let attach = &outputs[8];
    assert_all_in(
        attach,
        &["attached manifest `c-greeter` 0.1.0 (1 required, 1 optional)"],
    );
    assert!(!attach.contains("note:"), "{attach}");
    assert_all_in(
        &outputs[9],
        &[
            "manifest: c-greeter 0.1.0",
            "least privilege: every declared capability is usable by an imported function, \
             and every imported function by a declared capability",
            "imports (16):",
            "verdict: compatible with this host",
        ],
    );
    assert_all_in(
        &outputs[10],
        &[
            "init\n  stdout: c-greeter ready\n  -> ok",
            "  allow log:write:info (log)\n  log info c-greeter (greeter): hello, Ada!\n  -> reply \"hello, \
             Ada!\"",
            "  DENY  kv:write:names/Ada (bucket.set): denied: no grant covers the request",
            "-> the component answered with an error: denied: component `c-greeter` lacks \
             `kv:write:names/Ada`",
        ],
    );

    // What goes wrong, as examples/c-greeter/README.md shows it: the
    // denied call above, line for line; the module made a component
    // without `--adapt`; a manifest with `msg:publish:news` added to
    // `requires` attached to the component built without a manifest.
    assert_readme_sample(&outputs[10], "request \"remember Ada\"");
    let (code, printed) = bash(
        dir.path(),
        "tools/bin/wasm-tools component new core.wasm -o x.wasm",
    );
    assert_ne!(code, Some(0), "{printed}");
    assert_readme_sample(&printed, "error: failed to encode a component from module");
    let component = std::fs::read_to_string(dir.path().join("Component.toml")).unwrap();
    let over = component.replace(
        "requires = [\"log:write\"]",
        "requires = [\"log:write\", \"msg:publish:news\"]",
    );
    assert_ne!(over, component, "Component.toml requires log:write");
    std::fs::write(dir.path().join("Over.toml"), over).unwrap();
    run_line(
        dir.path(),
        "tools/bin/wasm-tools component new core.wasm --adapt \
         wasi_snapshot_preview1=wasi_snapshot_preview1.reactor.wasm -o bare.wasm",
    );
    let (code, printed) = bash(
        dir.path(),
        "airssys manifest attach bare.wasm --manifest Over.toml -o over.wasm",
    );
    assert_ne!(code, Some(0), "{printed}");
    assert_readme_sample(&printed, "error: Over.toml:8:26:");
}

/// Each line of the ` ```text ` block of examples/c-greeter/README.md that
/// starts with `starts` is a line of `printed`, in order.
fn assert_readme_sample(printed: &str, starts: &str) {
    let readme = std::fs::read_to_string(repo_root().join("examples/c-greeter/README.md")).unwrap();
    let shown = readme
        .split("```text\n")
        .find(|b| b.starts_with(starts))
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("examples/c-greeter/README.md shows `{starts}..`"));
    let mut lines = printed.lines();
    for line in shown.lines() {
        assert!(
            lines.any(|l| l == line),
            "examples/c-greeter/README.md: `{line}` is not printed (in this order):\n{printed}"
        );
    }
}
