//! `airssys serve` whose stdout and stderr nobody reads (a stalled log
//! shipper, a `| less` left open): a component logging a lot must not
//! hold the host. The output goes through a bounded queue to one writer
//! thread (cli/src/output.rs); what does not fit is dropped and counted.
//!
//! Components written here: `chatty` logs as many 512-byte records as
//! its request asks, then makes a storage write its policy refuses (a
//! `DENY` line); `quiet` logs one record per request and answers.

#![allow(clippy::unwrap_used)]

mod common;

use common::Client;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Records `chatty` logs in one call: far more than a pipe (64 KiB) and
/// the output queue (8,192 lines, 6,144 for logs) hold.
const RECORDS: usize = 20_000;

fn chatty_crate() -> std::path::PathBuf {
    common::component_crate(
        "chatty",
        r#"//! Logs as many 512-byte records as asked, then writes to storage.

#[airssys::component(optional = ["log:write", "kv:write:chatty/*"])]
struct Chatty;

impl guest::Lifecycle for Chatty {}

impl guest::Handler for Chatty {
    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let count: usize = String::from_utf8_lossy(&payload).parse().unwrap_or(0);
        let padding = "x".repeat(500);
        let mut refused = 0;
        for i in 0..count {
            let text = format!("record {i:08} {padding}");
            if Chatty::host()
                .logging()
                .log(host::logging::Level::Info, "chatty", &text)
                .is_err()
            {
                refused += 1;
            }
        }
        // Not granted by the policy: a refusal, audited.
        let denied = Chatty::host()
            .storage()
            .open("chatty")
            .and_then(|bucket| bucket.set("after", b"flood"))
            .is_err();
        Ok(format!("logged {count}, {refused} refused, write denied: {denied}").into_bytes())
    }
}
"#,
    )
}

const POLICY: &str = r#"
[components.chatty]
grants = ["log:write"]
limits = { log_lines_per_second = 1000000, log_bytes_per_second = 1073741824 }

[components.quiet]
grants = ["log:write"]
"#;

fn get(address: SocketAddr, path: &str) -> common::Answer {
    Client::connect(address).call("GET", path, &[], b"")
}

#[test]
fn a_blocked_output_holds_no_component_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let (chatty, quiet) = (chatty_crate(), common::quiet_crate());
    let target = common::shared_target();
    let cache = target.join("serve-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let args = [
        chatty.to_str().unwrap(),
        quiet.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    // Build both crates first, output read, so the build's own output
    // cannot fill the pipes below.
    let built = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .arg("run")
        .args(args)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    common::succeeded(&built);

    // stdout and stderr are pipes that nobody reads (yet).
    let port = common::free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .arg("serve")
        .args(args)
        .args(["--listen", &address.to_string()])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("AIRSSYS_SERVE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let mut served = common::Killed(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = std::net::TcpStream::connect(address).is_ok()
            && get(address, "/v1/health").status == 200;
        if up {
            break;
        }
        assert!(
            served.0.try_wait().unwrap().is_none(),
            "airssys serve exited"
        );
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The pipe fills within the first records; the rest of the call must
    // not wait for it.
    let chatty_answer = common::request_on_thread(address, "chatty", &RECORDS.to_string());
    std::thread::sleep(Duration::from_secs(1));
    // The neighbour, which logs too, answers within a few seconds.
    for i in 0..3 {
        let answer = common::request_on_thread(address, "quiet", &format!("q{i}"))
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| {
                panic!("the neighbour did not answer within 5 s while the output was blocked")
            });
        assert_eq!(answer, (200, format!("quiet got q{i}")));
    }
    // The logging component's call ends: every record was taken (queued
    // or dropped), none refused to the component.
    let answer = chatty_answer
        .recv_timeout(Duration::from_secs(30))
        .expect("the logging component's call did not end while the output was blocked");
    assert_eq!(
        answer,
        (
            200,
            format!("logged {RECORDS}, 0 refused, write denied: true")
        )
    );

    // The neighbour logs once more, the queue's log part now full of the
    // flooder's records.
    let answer = common::request_on_thread(address, "quiet", "after")
        .recv_timeout(Duration::from_secs(5))
        .expect("the neighbour did not answer within 5 s while the output was blocked");
    assert_eq!(answer, (200, "quiet got after".to_owned()));

    // The drops are counted, by kind.
    let metrics = get(address, "/metrics").body;
    let dropped = common::metric(&metrics, "airssys_output_dropped_total{kind=\"log\"}");
    assert!(dropped > 0, "{metrics}");
    assert_eq!(
        common::metric(&metrics, "airssys_output_dropped_total{kind=\"audit\"}"),
        0
    );

    // The output flows again: what was queued comes out in order, and one
    // line says how many records were dropped.
    let stdout = common::collect(stdout);
    let stderr = common::collect(stderr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stderr.lock().unwrap().contains("dropped") {
        assert!(
            Instant::now() < deadline,
            "no line about the drops:\n{}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &served.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = served.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(code.code(), Some(0));
    let (stdout, stderr) = (
        stdout.lock().unwrap().clone(),
        stderr.lock().unwrap().clone(),
    );
    // The refusal made while log records were being dropped was kept:
    // audit records have a share of the queue logs cannot take.
    assert!(
        stderr.contains("DENY `chatty` kv:write:chatty/after"),
        "{stderr}"
    );
    // Flushed at exit: the last line is there.
    assert!(
        stdout
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("shutdown: "),
        "{stdout}"
    );
    // The neighbour's record was kept though the flooder had filled the
    // log part: a line of a component that does not fit pushes out the
    // oldest lines of the component holding the most.
    assert!(
        stdout.contains("  log info quiet: answering after\n"),
        "the neighbour's record was dropped ({} lines printed)",
        stdout.lines().count()
    );
    // Nothing dropped silently: printed + dropped = logged.
    let printed = stdout.matches("  log info chatty: record ").count()
        + stdout.matches("  log info quiet: answering").count();
    let said: u64 = stderr
        .lines()
        .filter_map(|l| l.split("not read fast enough): ").nth(1))
        .filter_map(|l| l.split(" dropped;").next())
        .flat_map(|l| l.split(", "))
        .filter_map(|part| part.strip_suffix(" component log record(s)"))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(said, dropped, "{stderr}");
    // The line docs/serve.md shows, but for the count.
    let page = std::fs::read_to_string(common::repo_root().join("docs/serve.md")).unwrap();
    let shown = page
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("airssys: the output was blocked"))
        .expect("docs/serve.md shows the line about the drops");
    let note = stderr
        .lines()
        .find(|l| l.starts_with("airssys: the output was blocked"))
        .unwrap();
    let count = |line: &str| {
        let rest = line.split("not read fast enough): ").nth(1).unwrap();
        rest[..rest.find(' ').unwrap()].to_owned()
    };
    assert_eq!(
        note.replacen(&count(note), &count(shown), 1),
        shown,
        "docs/serve.md shows another line about the drops than serve prints"
    );
    assert_eq!(printed as u64 + dropped, RECORDS as u64 + 4, "{stderr}");
    // The printed records are in the order they were logged.
    let numbers: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  log info chatty: record "))
        .map(|l| l[..8].parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order");
}
