//! Cost of component → component delivery against its floor, measured in
//! one run on the same component (`tests/fixtures/msgbench`), in rounds of
//! 1, 16 and 256 messages of 64 bytes:
//!
//! - **floor**: component `pub` publishes the round (one guest `publish`
//!   call each, guarded by the host as always) into a runtime whose broker
//!   only appends to a `Vec`; the bench then calls the `handle-message`
//!   export of an already running `sub` once per message, directly.
//! - **airssys**: the same publishes into the default [`InProcessBroker`]
//!   (subscription matching, bounded mailboxes, per-publisher share), then
//!   `Runtime::run_until_idle` (batch 64) delivers them to `sub`'s handler.
//!
//! Both include the one host → `pub` request that starts a round. The
//! `RATIO` lines print the best of 30 interleaved timings of each side and
//! their quotient; the target is ≤ 1.5×.
//!
//! Run with `cargo bench -p airssys-runtime --bench messaging`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/settings.rs"]
mod settings;
#[path = "../tests/support/mod.rs"]
mod support;

#[path = "support/ratio.rs"]
mod ratio;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airssys_runtime::broker::{Broker, BrokerConfig, BrokerError, Delivery, ReplySlot, Subscriber};
use airssys_runtime::{Instance, Policy, Runtime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmtime::component::{ComponentType, Lift, Lower};

/// Bytes per message.
const SIZE: usize = 64;
/// Messages per round.
const ROUNDS: [usize; 3] = [1, 16, 256];
/// `run_until_idle` batch.
const BATCH: usize = 64;

const POLICY: &str = r#"
[components.pub]
grants = ["msg:publish:bench.*"]
[components.sub]
grants = ["msg:subscribe:bench.*"]
subscribe = ["bench.*"]
"#;

/// The floor's broker: `publish` appends to a list, nothing else.
#[derive(Debug, Default)]
struct QueueOnly {
    queue: Mutex<Vec<(String, String, Vec<u8>)>>,
}

impl QueueOnly {
    fn drain(&self) -> Vec<(String, String, Vec<u8>)> {
        std::mem::take(&mut *self.queue.lock().unwrap())
    }
}

impl Broker for QueueOnly {
    fn register(&self, _: &str, _: Subscriber) {}
    fn unregister(&self, _: &str) -> usize {
        0
    }
    fn set_running(&self, _: &str, _: bool) {}
    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError> {
        self.queue
            .lock()
            .unwrap()
            .push((topic.to_owned(), source.to_owned(), payload));
        Ok(1)
    }
    fn request(
        &self,
        _: &str,
        target: &str,
        _: Vec<u8>,
        _: Arc<ReplySlot>,
    ) -> Result<(), BrokerError> {
        Err(BrokerError::NotFound(target.to_owned()))
    }
    fn take(&self, _: &str) -> Option<Delivery> {
        None
    }
    fn take_batch(&self, _: &str, _: usize, _: &mut VecDeque<Delivery>) -> usize {
        0
    }
    fn requeue_front(&self, _: &str, _: Delivery) {}
    fn pending(&self, _: &str) -> usize {
        0
    }
    fn config(&self) -> BrokerConfig {
        BrokerConfig::default()
    }
}

/// The WIT `message` record, for calling the export directly.
#[derive(ComponentType, Lower)]
#[component(record)]
struct Message {
    topic: String,
    source: String,
    payload: Vec<u8>,
}

/// The handler's `error` variant.
#[derive(ComponentType, Lift, Debug)]
#[allow(dead_code)] // the texts are read through `Debug` only
#[component(variant)]
enum HandlerError {
    #[component(name = "denied")]
    Denied(String),
    #[component(name = "invalid-input")]
    InvalidInput(String),
    #[component(name = "other")]
    Other(String),
}

type HandleMessage = (Result<(), HandlerError>,);

/// The msgbench component under `name`, with a manifest asking `requires`.
fn component(name: &str, requires: &str) -> Vec<u8> {
    support::fixture_as("msgbench", name, &[requires])
}

/// `pub` and `sub` running in `runtime`.
fn pair(runtime: &Runtime) -> (Instance, Instance) {
    let start = |name, requires| {
        runtime
            .load(&component(name, requires))
            .unwrap_or_else(|e| panic!("load {name}: {e}"))
            .instantiate()
            .unwrap_or_else(|e| panic!("instantiate {name}: {e}"))
    };
    (
        start("pub", "msg:publish:bench.*"),
        start("sub", "msg:subscribe:bench.*"),
    )
}

fn ask(instance: &mut Instance, command: &str) -> String {
    let reply = instance
        .request("host", command.as_bytes())
        .expect("call")
        .expect("handler");
    String::from_utf8(reply).expect("utf-8")
}

/// Messages `sub` counted so far.
fn received(sub: &mut Instance) -> u64 {
    let reply = ask(sub, "count");
    reply
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count reply")
}

fn policy() -> Policy {
    Policy::from_toml_str(POLICY).expect("policy")
}

/// Measures `floor` against `ours` (see [`ratio::measure`]) and prints the
/// result, per round and per message, as a `RATIO` line.
fn ratio(messages: usize, runs: u32, floor: impl FnMut(), ours: impl FnMut()) {
    let r = ratio::measure(runs, floor, ours);
    let per = |d: Duration| d / u32::try_from(messages).expect("small round");
    println!(
        "RATIO delivery ({messages} per round): floor {:?} ({:?}/msg), airssys {:?} ({:?}/msg), \
         ratio {:.2}x (median of {} paired rounds {:.2}x)",
        r.base,
        per(r.base),
        r.ours,
        per(r.ours),
        r.best,
        r.rounds,
        r.paired_median
    );
}

fn delivery(c: &mut Criterion) {
    // The floor: a broker that only queues, and direct export calls.
    let queue = Arc::new(QueueOnly::default());
    let floor_rt = Runtime::builder()
        .policy(policy())
        .broker(Arc::clone(&queue) as Arc<dyn Broker>)
        .build()
        .expect("floor runtime");
    let (mut floor_pub, mut floor_sub) = pair(&floor_rt);
    let export = floor_sub
        .export::<(Message,), HandleMessage>(Some("airssys:core/handler@1.0.0"), "handle-message")
        .expect("handle-message export");

    // airssys: the default broker and dispatcher.
    let rt = Runtime::builder()
        .policy(policy())
        .build()
        .expect("airssys runtime");
    let (mut air_pub, air_sub) = pair(&rt);
    let mut air_subs = vec![air_sub];

    let mut floor_sent = 0u64;
    let mut air_sent = 0u64;
    let mut group = c.benchmark_group("delivery");
    for n in ROUNDS {
        let command = format!("send:bench.x:{n}:{SIZE}");
        let mut floor_round = || {
            assert_eq!(ask(&mut floor_pub, &command), "ok");
            for (topic, source, payload) in queue.drain() {
                let message = Message {
                    topic,
                    source,
                    payload,
                };
                floor_sub
                    .invoke(&export, (message,))
                    .expect("call")
                    .0
                    .expect("handled");
            }
            floor_sent += n as u64;
        };
        let mut air_round = || {
            assert_eq!(ask(&mut air_pub, &command), "ok");
            let report = rt.run_until_idle(&mut air_subs, BATCH).expect("delivery");
            assert_eq!(report.delivered, n);
            air_sent += n as u64;
        };
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("floor", n), |b| b.iter(&mut floor_round));
        group.bench_function(BenchmarkId::new("airssys", n), |b| b.iter(&mut air_round));
        let runs = u32::try_from((2048 / n).max(4)).expect("small");
        ratio(n, runs, &mut floor_round, &mut air_round);
    }
    group.finish();
    // Every message published reached the subscriber once, on both sides.
    assert_eq!(received(&mut floor_sub), floor_sent);
    assert_eq!(received(&mut air_subs[0]), air_sent);
}

criterion_group! {
    name = benches;
    config = settings::criterion(20);
    targets = delivery
}
criterion_main!(benches);
