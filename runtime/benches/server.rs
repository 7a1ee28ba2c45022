//! `Server` costs and gains, each as a ratio measured in one run on the
//! same component (`tests/fixtures/probe`):
//!
//! 1. `pool`: throughput of 4 concurrent clients sending CPU-bound
//!    requests (`alloc:4`: allocate and fill 4 MiB) to a component served
//!    by 2 instances against the same with 1 instance (the issue's target
//!    on a 2-core machine: ≥ 1.7×).
//! 2. `round_trip`: one `Server::request` (queue, worker thread, answer
//!    channel) against `Instance::request` on the same component.
//!
//! Run with `cargo bench -p airssys-runtime --bench server`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/settings.rs"]
mod settings;
#[path = "../tests/support/mod.rs"]
mod support;

#[path = "support/ratio.rs"]
mod ratio;

use std::path::PathBuf;
use std::time::Duration;

use airssys_runtime::{ComponentSource, Policy, Runtime, Server, ServerConfig};
use criterion::{Criterion, criterion_group, criterion_main};

/// Concurrent clients in the pool benchmark.
const CLIENTS: usize = 4;
/// Requests per client per round.
const PER_CLIENT: usize = 8;
/// The CPU-bound request.
const WORK: &[u8] = b"alloc:4";

const GRANTS: &str = r#"grants = ["kv:read:data/*", "kv:write:data/*", "log:write:info"]"#;

fn server(instances: u32) -> Server {
    let policy = Policy::from_toml_str(&format!(
        "[components.probe]\n{GRANTS}\ninstances = {instances}\n"
    ))
    .expect("policy");
    let server = Server::start(
        Runtime::builder().policy(policy),
        vec![ComponentSource {
            origin: PathBuf::from("probe.wasm"),
            bytes: support::fixture("probe").to_vec(),
        }],
        ServerConfig::default(),
    )
    .expect("server starts");
    while server.status()[0].instances < instances as usize {
        std::thread::sleep(Duration::from_millis(5));
    }
    server
}

/// One round: every client sends its requests, concurrently.
fn round(server: &Server) {
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                for _ in 0..PER_CLIENT {
                    let reply = server
                        .request("probe", "bench", WORK.to_vec())
                        .expect("answered");
                    assert_eq!(reply, b"allocated 4194304");
                }
            });
        }
    });
}

fn pool(c: &mut Criterion) {
    let one = server(1);
    let two = server(2);
    let mut group = c.benchmark_group("pool");
    group.bench_function("1 instance", |b| b.iter(|| round(&one)));
    group.bench_function("2 instances", |b| b.iter(|| round(&two)));
    group.finish();
    let r = ratio::measure(2, || round(&one), || round(&two));
    let requests = u32::try_from(CLIENTS * PER_CLIENT).expect("small");
    println!(
        "RATIO pool ({requests} requests per round from {CLIENTS} clients): 1 instance {:?} \
         ({:?}/request), 2 instances {:?} ({:?}/request), throughput 2 vs 1: {:.2}x (median of \
         {} paired rounds {:.2}x)",
        r.base,
        r.base / requests,
        r.ours,
        r.ours / requests,
        1.0 / r.best,
        r.rounds,
        1.0 / r.paired_median
    );
    one.shutdown(Duration::from_secs(5));
    two.shutdown(Duration::from_secs(5));
}

fn round_trip(c: &mut Criterion) {
    let policy = Policy::from_toml_str(&format!("[components.probe]\n{GRANTS}\n")).expect("policy");
    let runtime = Runtime::builder().policy(policy).build().expect("runtime");
    let mut instance = runtime
        .load(support::fixture("probe"))
        .expect("load")
        .instantiate()
        .expect("instantiate");
    let served = server(1);
    let mut direct = || {
        let reply = instance
            .request("bench", b"echo:x")
            .expect("call")
            .expect("ok");
        assert_eq!(reply, b"x");
    };
    let mut through_server = || {
        let reply = served
            .request("probe", "bench", b"echo:x".to_vec())
            .expect("answered");
        assert_eq!(reply, b"x");
    };
    let mut group = c.benchmark_group("round_trip");
    group.bench_function("Instance::request", |b| b.iter(&mut direct));
    group.bench_function("Server::request", |b| b.iter(&mut through_server));
    group.finish();
    let r = ratio::measure(64, &mut direct, &mut through_server);
    println!(
        "RATIO round trip: Instance::request {:?}, Server::request {:?}, ratio {:.2}x (median \
         of {} paired rounds {:.2}x)",
        r.base, r.ours, r.best, r.rounds, r.paired_median
    );
    served.shutdown(Duration::from_secs(5));
}

criterion_group! {
    name = benches;
    config = settings::criterion(20);
    targets = pool, round_trip
}
criterion_main!(benches);
