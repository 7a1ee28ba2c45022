//! NATS benches as same-run ratios on one `nats-server -js` the bench
//! starts in a temporary directory (Debian package `nats-server`):
//!
//! - **kv**: [`NatsKvStorage`] `set` (an overwrite of a 1 KiB value, quota
//!   on) and `get` against the raw async-nats KV client's `put` and `get`
//!   of the same key and value on a bucket of the same configuration
//!   (target ≤ 1.3×);
//! - **delivery**: host to host through airssys (two runtimes, each with a
//!   [`NatsBroker`] in core NATS mode; `pub` on host A publishes, `sub` on
//!   host B handles) against raw async-nats publish → subscribe of the
//!   same 1 KiB payloads between two connections (target ≤ 1.3×).
//!
//! `RATIO` lines print the best round of each side, their quotient and
//! messages (or operations) per second.
//!
//! Run with `cargo bench -p airssys-runtime --features nats --bench nats`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/settings.rs"]
mod settings;
#[path = "../tests/support/mod.rs"]
mod support;

#[path = "support/ratio.rs"]
mod ratio;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use airssys_runtime::broker::NatsBroker;
use airssys_runtime::storage::{NatsKvStorage, StorageBackend};
use airssys_runtime::{Instance, Policy, Runtime};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;

/// Bytes per value and per message.
const SIZE: usize = 1024;
/// Messages per delivery round.
const ROUND: usize = 256;

use support::jetstream::JetStreamServer;

fn print(what: &str, per_run: usize, r: ratio::Ratio) {
    let rate = |d: Duration| per_run as f64 / d.as_secs_f64();
    println!(
        "RATIO {what}: raw async-nats {:?} ({:.0}/s), airssys {:?} ({:.0}/s), ratio {:.2}x \
         (median of {} paired rounds {:.2}x)",
        r.base,
        rate(r.base),
        r.ours,
        rate(r.ours),
        r.best,
        r.rounds,
        r.paired_median
    );
}

fn kv(c: &mut Criterion) {
    let server = JetStreamServer::start();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    // Both buckets made the way the backend makes its own.
    let ours = NatsKvStorage::connect(server.url()).open().expect("ours");
    drop(
        NatsKvStorage::connect(server.url())
            .bucket("raw")
            .open()
            .expect("raw bucket"),
    );
    let raw = tokio.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connect");
        async_nats::jetstream::new(client)
            .get_key_value("raw")
            .await
            .expect("raw store")
    });
    let value = vec![7u8; SIZE];
    let quota = Some(1 << 30);
    ours.set("bench", "b", "k", &value, quota).expect("set");
    let mut raw_set = || {
        tokio
            .block_on(raw.put("k", Bytes::copy_from_slice(&value)))
            .expect("put");
    };
    let mut our_set = || ours.set("bench", "b", "k", &value, quota).expect("set");
    raw_set();
    print(
        "kv set (1 KiB overwrite)",
        1,
        ratio::measure(20, &mut raw_set, &mut our_set),
    );
    let mut raw_get = || {
        let got = tokio.block_on(raw.get("k")).expect("get");
        assert_eq!(got.map(|v| v.len()), Some(SIZE));
    };
    let mut our_get = || {
        let got = ours.get("bench", "b", "k").expect("get");
        assert_eq!(got.map(|v| v.len()), Some(SIZE));
    };
    print(
        "kv get (1 KiB)",
        1,
        ratio::measure(20, &mut raw_get, &mut our_get),
    );
    let mut group = c.benchmark_group("kv");
    group.bench_function("set/raw", |b| b.iter(&mut raw_set));
    group.bench_function("set/airssys", |b| b.iter(&mut our_set));
    group.bench_function("get/raw", |b| b.iter(&mut raw_get));
    group.bench_function("get/airssys", |b| b.iter(&mut our_get));
    group.finish();
}

const POLICY: &str = r#"
[components.pub]
grants = ["msg:publish:bench.*"]
[components.sub]
grants = ["msg:subscribe:bench.*"]
subscribe = ["bench.*"]
"#;

fn host(url: &str, delivered: Option<Arc<AtomicUsize>>) -> Runtime {
    let broker = NatsBroker::builder(url).connect().expect("broker");
    let mut builder = Runtime::builder()
        .policy(Policy::from_toml_str(POLICY).expect("policy"))
        .broker(Arc::new(broker));
    if let Some(count) = delivered {
        builder = builder.on_delivery(move |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
    }
    builder.build().expect("runtime")
}

fn start(runtime: &Runtime, name: &str, requires: &str) -> Instance {
    runtime
        .load(&support::fixture_as("msgbench", name, &[requires]))
        .expect("load")
        .instantiate()
        .expect("instantiate")
}

fn delivery(c: &mut Criterion) {
    let server = JetStreamServer::start();
    let url = server.url();
    // Raw: two connections, publish → subscribe.
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let (sender, mut subscription) = tokio.block_on(async {
        let a = async_nats::connect(url.as_str()).await.expect("a");
        let b = async_nats::connect(url.as_str()).await.expect("b");
        let subscription = b.subscribe("raw.bench.x").await.expect("subscribe");
        b.flush().await.expect("flush");
        (a, subscription)
    });
    let payload = Bytes::from(vec![0x5a_u8; SIZE]);
    let mut raw_round = || {
        tokio.block_on(async {
            for _ in 0..ROUND {
                sender
                    .publish("raw.bench.x", payload.clone())
                    .await
                    .expect("publish");
            }
            for _ in 0..ROUND {
                let message = subscription.next().await.expect("message");
                assert_eq!(message.payload.len(), SIZE);
            }
        });
    };
    // airssys: `pub` on host A, `sub` on host B.
    let delivered = Arc::new(AtomicUsize::new(0));
    let host_a = host(&url, None);
    let host_b = host(&url, Some(Arc::clone(&delivered)));
    let mut publisher = start(&host_a, "pub", "msg:publish:bench.*");
    let mut subs = vec![start(&host_b, "sub", "msg:subscribe:bench.*")];
    let command = format!("send:bench.x:{ROUND}:{SIZE}");
    let mut our_round = || {
        let target = delivered.load(Ordering::Relaxed) + ROUND;
        let reply = publisher
            .request("host", command.as_bytes())
            .expect("call")
            .expect("handler");
        assert_eq!(reply, b"ok");
        let deadline = Instant::now() + Duration::from_secs(30);
        while delivered.load(Ordering::Relaxed) < target {
            host_b.run_until_idle(&mut subs, 64).expect("delivery");
            if delivered.load(Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "messages lost");
                std::thread::yield_now();
            }
        }
    };
    raw_round();
    our_round();
    print(
        &format!("host-to-host delivery ({ROUND} × 1 KiB per round)"),
        ROUND,
        ratio::measure(2, &mut raw_round, &mut our_round),
    );
    let mut group = c.benchmark_group("delivery");
    group.throughput(criterion::Throughput::Elements(ROUND as u64));
    group.bench_function("raw", |b| b.iter(&mut raw_round));
    group.bench_function("airssys", |b| b.iter(&mut our_round));
    group.finish();
}

criterion_group! {
    name = benches;
    config = settings::criterion(10);
    targets = kv, delivery
}
criterion_main!(benches);
