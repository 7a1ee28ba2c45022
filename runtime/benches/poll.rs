//! Per-call cost of waiting through `airssys:core/poll`, measured in one
//! run on one component (`tests/fixtures/pollprobe`) and one pending
//! resource that is already ready (the `pending-exit` of a child that has
//! ended, whose `get` does not consume its answer):
//!
//! - `get`: a guest loop of `pending-exit.get` — the plain check a
//!   component would busy-call without pollables (the baseline);
//! - `subscribe_poll`: a guest loop of `subscribe` + `poll([p], 0)` + drop
//!   of the pollable — what a component pays to wait through a pollable;
//! - `poll`: a guest loop of `poll([p], 0)` on one pollable kept across
//!   iterations.
//!
//! - `reply_round_trip`: a guest loop of `request` to the `echo`
//!   component + `subscribe` + `poll([p], none)` + `get`, while another
//!   thread serves `echo` (`deliver_pending` in a loop, yielding when its
//!   mailbox is empty): the latency from a reply being stored to the
//!   waiting `poll` returning is part of every iteration.
//!
//! Each request runs [`CALLS`] iterations; the fixed cost of the request
//! itself (the same request with 0 iterations) is subtracted before the
//! per-iteration figures and their ratios are printed (`RATIO` lines).
//! Run with `cargo bench -p airssys-runtime --bench poll`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/settings.rs"]
mod settings;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use airssys_runtime::{Instance, Policy, Runtime};
use criterion::{Criterion, criterion_group, criterion_main};

/// Guest iterations per request.
const CALLS: u32 = 1000;

const POLICY: &str = r#"
[components.pollprobe]
grants = ["proc:spawn:/bin/sleep"]
"#;

fn setup() -> (Runtime, Instance) {
    let runtime = Runtime::builder()
        .policy(Policy::from_toml_str(POLICY).expect("valid policy"))
        .in_memory_storage()
        .max_instances(4)
        .build()
        .expect("runtime");
    let mut probe = support::instance(&runtime, "pollprobe");
    assert_eq!(support::ask(&mut probe, "exit:0"), "slot 0 ready=false");
    assert_eq!(support::ask(&mut probe, "wait:0"), "code 0");
    (runtime, probe)
}

/// One request running `verb` `n` times in the guest; checks every
/// iteration saw the pending ready.
fn run(probe: &mut Instance, verb: &str, n: u32) {
    let reply = probe
        .request("bench", format!("{verb}:{n}").as_bytes())
        .expect("call")
        .expect("handler");
    assert_eq!(reply, n.to_string().as_bytes(), "{verb}");
}

/// Best (least disturbed) per-request time of each verb, interleaved.
fn best_times(probe: &mut Instance, verbs: &[&str], n: u32) -> Vec<Duration> {
    let mut best = vec![Duration::MAX; verbs.len()];
    for _ in 0..40 {
        for (i, verb) in verbs.iter().enumerate() {
            let start = Instant::now();
            run(probe, verb, n);
            best[i] = best[i].min(start.elapsed());
        }
    }
    best
}

fn per_call(c: &mut Criterion) {
    let (_runtime, mut probe) = setup();
    let verbs = ["bench-get", "bench-subscribe-poll", "bench-poll"];
    // The same ratios, interleaved and printed, net of the request cost.
    let empty = best_times(&mut probe, &verbs, 0);
    let full = best_times(&mut probe, &verbs, CALLS);
    let per: Vec<f64> = full
        .iter()
        .zip(&empty)
        .map(|(f, e)| f.saturating_sub(*e).as_nanos() as f64 / f64::from(CALLS))
        .collect();
    println!(
        "RATIO poll per iteration: get {:.0} ns, subscribe+poll+drop {:.0} ns ({:.2}x get), \
         poll {:.0} ns ({:.2}x get)",
        per[0],
        per[1],
        per[1] / per[0],
        per[2],
        per[2] / per[0]
    );
    let mut group = c.benchmark_group("poll_per_call");
    for verb in verbs {
        group.bench_function(format!("{verb}_x{CALLS}"), |b| {
            b.iter(|| run(&mut probe, verb, CALLS))
        });
    }
    group.bench_function("request_overhead_x0", |b| {
        b.iter(|| run(&mut probe, "bench-get", 0))
    });
    group.finish();
}

/// Round trips per request in `reply_round_trip`.
const ROUND_TRIPS: u32 = 200;

const REPLY_POLICY: &str = r#"
[components.pollprobe]
grants = ["msg:request:echo"]
"#;

fn reply_round_trip(c: &mut Criterion) {
    let runtime = Runtime::builder()
        .policy(Policy::from_toml_str(REPLY_POLICY).expect("valid policy"))
        .in_memory_storage()
        .max_instances(4)
        .build()
        .expect("runtime");
    let mut probe = support::instance(&runtime, "pollprobe");
    let mut echo = runtime
        .load(&support::fixture_as("messenger", "echo", &[]))
        .expect("echo loads")
        .instantiate()
        .expect("echo instantiates");
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Stops the responder even when the measurement panics.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let report = echo.deliver_pending(16).expect("echo answers");
                if report.answered == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let best = best_times(&mut probe, &["bench-request"], ROUND_TRIPS)[0];
        println!(
            "RATIO reply round trip through poll: {:.1} us (best of 40 runs of {ROUND_TRIPS})",
            best.as_nanos() as f64 / f64::from(ROUND_TRIPS) / 1000.0
        );
        let mut group = c.benchmark_group("poll_reply");
        group.bench_function(format!("reply_round_trip_x{ROUND_TRIPS}"), |b| {
            b.iter(|| run(&mut probe, "bench-request", ROUND_TRIPS))
        });
        group.finish();
    });
}

criterion_group! {
    name = benches;
    config = settings::criterion(20);
    targets = per_call, reply_round_trip
}
criterion_main!(benches);
