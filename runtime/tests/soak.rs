//! The soak test (issue #12): ten components in one runtime for a bounded
//! time — four well-behaved, six hostile (sleeping past the time limit,
//! flooding the log, starting reads they never collect, holding network
//! slots against a server that never answers, flooding a child's output,
//! flooding a topic) — while the host's resident memory and thread count
//! are sampled. Every well-behaved call must succeed within the liveness
//! bound, and the peaks must stay bounded.
//!
//! Ignored in `cargo test`: run it with `scripts/soak.sh [SECONDS]`
//! (default 300), which prints the peaks.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airssys_runtime::{BrokerConfig, Instance, LoadedComponent, Policy, Runtime};
use support::{fixture, fixture_as};

/// How long a well-behaved call may take while the hostile ones attack.
const SERVING: Duration = Duration::from_secs(5);
/// Resident memory the host may reach: ten instances of at most 64 MiB
/// linear memory and 16 MiB held results each, plus the engine and the
/// compiled code, with room to spare. A leak or an unbounded buffer
/// passes it within minutes.
const RSS_CEILING: u64 = 2 << 30;
/// Threads the host may run: the worker threads of this test, the epoch
/// ticker, the network runtime, one I/O thread per live child.
const THREAD_CEILING: u64 = 200;

fn policy(silent_port: u16) -> String {
    format!(
        r#"
[components.probe]
grants = ["kv:read:data/*", "kv:write:data/*", "log:write:info"]

[components.good-b]
grants = ["kv:write:*/*"]

[components.good-c]
grants = ["msg:publish:feed.*"]

[components.good-d]
grants = ["msg:subscribe:feed.*"]
subscribe = ["feed.*"]

[components.limitprobe]
grants = ["log:write"]
limits = {{ cpu_time_ms = 200 }}

[components.fsprobe]
grants = ["fs:read:/data/**"]
mounts = {{ "/data" = "{data}" }}

[components.netprobe]
grants = ["net:http:127.0.0.1:{silent_port}"]
limits = {{ net_timeout_ms = 2000 }}

[components.procprobe]
grants = ["proc:spawn:/usr/bin/head", "proc:spawn:/bin/echo"]

[components.flooder]
grants = ["msg:publish:feed.*"]

[components.sink]
grants = ["msg:subscribe:feed.*"]
subscribe = ["feed.*"]
"#,
        data = data_dir().display()
    )
}

/// A directory with one 1 MiB file, kept for the whole test binary.
fn data_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("big.bin"), vec![7u8; 1 << 20]).expect("write");
        dir
    })
    .path()
}

fn ask(instance: &mut Instance, command: &str) -> Result<String, String> {
    match instance.request("host", command.as_bytes()) {
        Ok(Ok(reply)) => Ok(String::from_utf8_lossy(&reply).into_owned()),
        Ok(Err(e)) => Err(format!("handler: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

/// `/proc/self/status` field `key` (`VmRSS` in kB → bytes, `Threads`).
fn status(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .map_or(0, |n: u64| if key == "VmRSS" { n * 1024 } else { n })
}

struct Totals {
    good_calls: AtomicU64,
    slowest_good_ms: AtomicU64,
    hostile_calls: AtomicU64,
    hostile_refusals: AtomicU64,
}

/// Runs `round` on `instance` until `stop`, re-instantiating `component`
/// whenever a call leaves the instance unusable (a limit or trap).
fn hostile(
    component: &LoadedComponent,
    stop: &AtomicBool,
    totals: &Totals,
    mut round: impl FnMut(&mut Instance) -> Result<String, String>,
) {
    let mut instance = component.instantiate().expect("hostile instance");
    while !stop.load(Ordering::Acquire) {
        totals.hostile_calls.fetch_add(1, Ordering::Relaxed);
        match round(&mut instance) {
            Ok(reply) if reply.contains("refused") || reply.contains("error") => {
                totals.hostile_refusals.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                totals.hostile_refusals.fetch_add(1, Ordering::Relaxed);
                instance = component.instantiate().expect("a fresh hostile instance");
            }
        }
    }
}

/// Runs `call` on `instance` until `stop`; every call must succeed within
/// [`SERVING`].
fn good(
    name: &str,
    instance: &mut Instance,
    stop: &AtomicBool,
    totals: &Totals,
    mut call: impl FnMut(&mut Instance, u64) -> Result<String, String>,
) {
    let mut round = 0;
    while !stop.load(Ordering::Acquire) {
        round += 1;
        let started = Instant::now();
        let reply = call(instance, round);
        let took = started.elapsed();
        assert!(reply.is_ok(), "{name} failed in round {round}: {reply:?}");
        assert!(
            took < SERVING,
            "{name} took {took:?} in round {round}: the host is held"
        );
        totals.good_calls.fetch_add(1, Ordering::Relaxed);
        totals
            .slowest_good_ms
            .fetch_max(took.as_millis() as u64, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "minutes long: run with scripts/soak.sh"]
fn ten_components_for_a_bounded_time() {
    let seconds: u64 = std::env::var("AIRSSYS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    // Accepts connections into its backlog and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let runtime = Runtime::builder()
        .policy(Policy::from_toml_str(&policy(silent_port)).expect("policy"))
        .in_memory_storage()
        .max_instances(64)
        .broker_config(BrokerConfig::default())
        .build()
        .expect("runtime");
    let load = |bytes: &[u8]| runtime.load(bytes).expect("loads");
    let probe = load(fixture("probe"));
    let good_b = load(&fixture_as("messenger", "good-b", &["kv:write:*/*"]));
    let good_c = load(&fixture_as("messenger", "good-c", &["msg:publish:feed.*"]));
    let good_d = load(&fixture_as(
        "messenger",
        "good-d",
        &["msg:subscribe:feed.*"],
    ));
    let limitprobe = load(fixture("limitprobe"));
    let fsprobe = load(fixture("fsprobe"));
    let netprobe = load(fixture("netprobe"));
    let procprobe = load(fixture("procprobe"));
    let flooder = load(&fixture_as("messenger", "flooder", &["msg:publish:feed.*"]));
    let sink = load(&fixture_as("messenger", "sink", &["msg:subscribe:feed.*"]));

    let stop = AtomicBool::new(false);
    let totals = Totals {
        good_calls: AtomicU64::new(0),
        slowest_good_ms: AtomicU64::new(0),
        hostile_calls: AtomicU64::new(0),
        hostile_refusals: AtomicU64::new(0),
    };
    let (mut peak_rss, mut peak_threads) = (0u64, 0u64);
    let mut settled_rss = 0u64;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let (stop, totals) = (&stop, &totals);
        // The well-behaved four.
        let mut p = probe.instantiate().expect("probe");
        scope.spawn(move || {
            good("probe", &mut p, stop, totals, |i, n| {
                ask(i, &format!("set:data/n={n}"))?;
                ask(i, "get:data/n")
            })
        });
        let mut b = good_b.instantiate().expect("good-b");
        scope.spawn(move || {
            good("good-b", &mut b, stop, totals, |i, n| {
                // Rewrites the same few keys: bounded storage.
                ask(i, &format!("kv-fill:b{}:4:32", n % 4))
            })
        });
        let mut c = good_c.instantiate().expect("good-c");
        let mut d = good_d.instantiate().expect("good-d");
        scope.spawn(move || {
            good("good-c/good-d", &mut c, stop, totals, |i, n| {
                let sent = ask(i, &format!("flood:feed.good:{n}:1"))?;
                d.deliver_pending(64).map_err(|e| e.to_string())?;
                Ok(sent)
            })
        });
        // The hostile six.
        scope.spawn(|| {
            hostile(&limitprobe, stop, totals, |i| ask(i, "sleep:30000"));
        });
        scope.spawn(|| {
            hostile(&limitprobe, stop, totals, |i| ask(i, "log-flood:100000"));
        });
        scope.spawn(|| {
            hostile(&fsprobe, stop, totals, |i| {
                let reply = ask(i, "read-flood:/data/big.bin:3000");
                ask(i, "release:")?;
                reply
            });
        });
        scope.spawn(|| {
            hostile(&netprobe, stop, totals, |i| {
                let reply = ask(i, &format!("http-hold 127.0.0.1:{silent_port} /x 100"));
                ask(i, "release")?;
                reply
            });
        });
        scope.spawn(|| {
            hostile(&procprobe, stop, totals, |i| {
                let reply = ask(i, "starve:/usr/bin/head|-c|123456789|/dev/zero");
                ask(i, "drop")?;
                reply
            });
        });
        scope.spawn(|| {
            let mut s = sink.instantiate().expect("sink");
            hostile(&flooder, stop, totals, |i| {
                let reply = ask(i, "flood:feed.flood:0:2000:4096");
                // The sink takes some, never all: its mailbox stays full.
                s.deliver_pending(16).map_err(|e| e.to_string())?;
                reply
            });
        });
        // Sample until the time is up.
        while started.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(Duration::from_millis(500));
            let rss = status("VmRSS");
            peak_rss = peak_rss.max(rss);
            peak_threads = peak_threads.max(status("Threads"));
            if started.elapsed() < Duration::from_secs(seconds / 5) {
                settled_rss = rss;
            }
        }
        stop.store(true, Ordering::Release);
    });
    let end_rss = status("VmRSS");
    println!(
        "soak: {seconds} s, 10 components; peak resident memory {} MiB (after warm-up {} MiB, at \
         the end {} MiB); peak threads {peak_threads}; well-behaved calls {} (slowest {} ms); \
         hostile calls {} ({} refused or stopped)",
        peak_rss >> 20,
        settled_rss >> 20,
        end_rss >> 20,
        totals.good_calls.load(Ordering::Relaxed),
        totals.slowest_good_ms.load(Ordering::Relaxed),
        totals.hostile_calls.load(Ordering::Relaxed),
        totals.hostile_refusals.load(Ordering::Relaxed),
    );
    assert!(totals.good_calls.load(Ordering::Relaxed) > 0);
    assert!(
        peak_rss < RSS_CEILING,
        "the host reached {} MiB resident",
        peak_rss >> 20
    );
    assert!(
        peak_threads < THREAD_CEILING,
        "the host ran {peak_threads} threads"
    );
    drop(silent);
}
