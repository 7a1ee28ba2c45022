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
//!   same 1 KiB payloads between two connections (target ≤ 1.3×). Host
//!   B is a [`Server`], as `airssys serve --nats` runs it (`sub` on a
//!   worker thread of its own, delivering as messages arrive). A second
//!   series pumps host B from the publishing thread once the publish call
//!   returned (`run_until_idle`, the shape of the earlier figures: no
//!   overlap of the two hosts' wasm calls). The airssys side does two wasm
//!   calls per message that the raw side does not: `pub`'s guest
//!   `publish` (one host call each, inside one request) and `sub`'s
//!   `handle-message`. Each is also timed alone (`SPLIT` lines: the
//!   publish calls into a broker that drops them, the `handle-message`
//!   export called directly in a loop); what the pumped series adds to
//!   them is the broker's own path.
//!
//! `RATIO` lines print the best round of each side, their quotient and
//! messages (or operations) per second; `SPLIT` lines one part of the
//! airssys path per message, against the raw round of the same run;
//! `CPU` lines the CPU time per message of each thread of this process
//! (by name) and of `nats-server`, with how often each was scheduled in
//! (on 2 cores the wall time is at least the total CPU time / 2).
//! `AIRSSYS_DELIVERY_PROFILE=raw|served|pumped[:ROUNDS]` runs only that
//! delivery series, for a profiler (`perf record`), and its `CPU` line.
//!
//! Run with `cargo bench -p airssys-runtime --features nats --bench nats`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/settings.rs"]
mod settings;
#[path = "../tests/support/mod.rs"]
mod support;

#[path = "support/ratio.rs"]
mod ratio;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use airssys_runtime::broker::Notifier;
use airssys_runtime::broker::{
    Broker, BrokerConfig, BrokerError, Delivery, NatsBroker, NatsDelivery, ReplySlot, Subscriber,
};
use airssys_runtime::storage::{NatsKvStorage, StorageBackend};
use airssys_runtime::wasmtime::component::{ComponentType, Lift, Lower};
use airssys_runtime::{
    ComponentSource, Instance, LoadedComponent, Policy, Runtime, Server, ServerConfig,
};
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
    if std::env::var_os("AIRSSYS_DELIVERY_PROFILE").is_some() {
        return;
    }
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

fn policy() -> Policy {
    Policy::from_toml_str(POLICY).expect("policy")
}

/// A host's broker: core NATS, subjects under `prefix`.
fn broker(url: &str, prefix: &str) -> Arc<NatsBroker> {
    Arc::new(
        NatsBroker::builder(url)
            .prefix(prefix)
            .delivery(NatsDelivery::Core)
            .connect()
            .expect("broker"),
    )
}

fn host(url: &str, prefix: &str, delivered: Option<Arc<AtomicUsize>>) -> Runtime {
    let mut builder = Runtime::builder()
        .policy(policy())
        .broker(broker(url, prefix));
    if let Some(count) = delivered {
        builder = builder.on_delivery(move |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
    }
    builder.build().expect("runtime")
}

fn load(runtime: &Runtime, name: &str, requires: &str) -> LoadedComponent {
    runtime
        .load(&support::fixture_as("msgbench", name, &[requires]))
        .expect("load")
}

fn start(runtime: &Runtime, name: &str, requires: &str) -> Instance {
    load(runtime, name, requires)
        .instantiate()
        .expect("instantiate")
}

/// What host B's server handled, and a signal once it handled the
/// messages a round waits for.
#[derive(Debug, Default)]
struct Handled {
    count: AtomicUsize,
    target: AtomicUsize,
    reached: Notifier,
}

impl Handled {
    fn one(&self) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if count >= self.target.load(Ordering::Relaxed) {
            self.reached.notify();
        }
    }

    /// Waits until `target` messages were handled in all.
    fn wait_for(&self, target: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.reached.generation();
            if self.count.load(Ordering::Relaxed) >= target {
                return;
            }
            assert!(Instant::now() < deadline, "messages lost");
            self.reached
                .wait(seen, Instant::now() + Duration::from_millis(10));
        }
    }
}

/// Host B as a `Server` over core NATS under `prefix`, counting what
/// `sub` handled in `handled`; returns once its instance is up.
fn served(url: &str, prefix: &str, handled: &Arc<Handled>) -> Server {
    let handled = Arc::clone(handled);
    let runtime = Runtime::builder()
        .policy(policy())
        .broker(broker(url, prefix))
        .on_delivery(move |_| handled.one());
    let sub = ComponentSource {
        origin: "sub.wasm".into(),
        bytes: support::fixture_as("msgbench", "sub", &["msg:subscribe:bench.*"]),
    };
    let server = Server::start(runtime, vec![sub], ServerConfig::default()).expect("server");
    let up = Instant::now() + Duration::from_secs(30);
    while !server.ready() {
        assert!(Instant::now() < up, "host B's server did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    server
}

/// Host A's broker for the what-if series: publishes wait here during the
/// guest call and go to the NATS broker together after it (`release`),
/// as a broker handing a call's publishes to the link at once would.
#[derive(Debug)]
struct Deferred {
    nats: Arc<NatsBroker>,
    held: std::sync::Mutex<Vec<(String, String, Vec<u8>)>>,
}

impl Deferred {
    fn release(&self) {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        for (source, topic, payload) in held {
            self.nats
                .publish(&source, &topic, payload)
                .expect("publish");
        }
    }
}

impl Broker for Deferred {
    fn register(&self, component: &str, subscriber: Subscriber) {
        self.nats.register(component, subscriber);
    }
    fn unregister(&self, component: &str) -> usize {
        self.nats.unregister(component)
    }
    fn set_running(&self, component: &str, running: bool) {
        self.nats.set_running(component, running);
    }
    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError> {
        self.held
            .lock()
            .unwrap()
            .push((source.to_owned(), topic.to_owned(), payload));
        Ok(1)
    }
    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        reply: Arc<ReplySlot>,
    ) -> Result<(), BrokerError> {
        self.nats.request(source, target, payload, reply)
    }
    fn take(&self, component: &str) -> Option<Delivery> {
        self.nats.take(component)
    }
    fn take_batch(&self, component: &str, max: usize, into: &mut VecDeque<Delivery>) -> usize {
        self.nats.take_batch(component, max, into)
    }
    fn requeue_front(&self, component: &str, delivery: Delivery) {
        self.nats.requeue_front(component, delivery);
    }
    fn pending(&self, component: &str) -> usize {
        self.nats.pending(component)
    }
    fn config(&self) -> BrokerConfig {
        self.nats.config()
    }
}

/// The wasm floor's broker: `publish` drops the message and says it was
/// taken; nothing is ever queued.
#[derive(Debug, Default)]
struct Discard;

impl Broker for Discard {
    fn register(&self, _: &str, _: Subscriber) {}
    fn unregister(&self, _: &str) -> usize {
        0
    }
    fn set_running(&self, _: &str, _: bool) {}
    fn publish(&self, _: &str, _: &str, _: Vec<u8>) -> Result<usize, BrokerError> {
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

/// The WIT `message` record with shared parts, as the dispatcher lowers
/// it.
#[derive(ComponentType, Lower)]
#[component(record)]
struct WireMessage {
    topic: Arc<str>,
    source: Arc<str>,
    payload: Arc<[u8]>,
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

/// Prints one part of the airssys path timed against the raw round (same
/// run), per message.
fn print_part(what: &str, r: ratio::Ratio) {
    let per = |d: Duration| d.as_secs_f64() * 1e6 / ROUND as f64;
    println!(
        "SPLIT {what}: {:.3} µs/msg ({:.0}/s; raw async-nats {:.3} µs/msg in the same run), \
         {:.2}x raw (median of {} paired rounds {:.2}x)",
        per(r.ours),
        ROUND as f64 / r.ours.as_secs_f64(),
        per(r.base),
        r.best,
        r.rounds,
        r.paired_median
    );
}

/// CPU time of threads, read from `/proc/<pid>/task/*/schedstat` (time
/// run, in ns, and how many times each was scheduled in), grouped by
/// thread name (tokio's `airssys-nats` workers, the server's
/// `airssys-sub-0`, ...; names longer than 15 bytes are cut by Linux).
#[derive(Debug, Default, Clone)]
struct Cpu {
    /// Name → (ns run, times scheduled in).
    threads: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Cpu {
    /// The threads of process `pid` now (`None`: this process).
    fn of(pid: Option<u32>) -> Cpu {
        let dir = match pid {
            Some(pid) => format!("/proc/{pid}/task"),
            None => "/proc/self/task".to_owned(),
        };
        let mut cpu = Cpu::default();
        let Ok(tasks) = std::fs::read_dir(&dir) else {
            return cpu;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
            let mut fields = stat
                .split_whitespace()
                .map(|f| f.parse::<u64>().unwrap_or(0));
            let (run, slices) = (fields.next().unwrap_or(0), fields.nth(1).unwrap_or(0));
            // Tokio and the server number their threads; one group each.
            let name = name
                .trim()
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            let entry = cpu.threads.entry(name.to_owned()).or_default();
            entry.0 += run;
            entry.1 += slices;
        }
        cpu
    }

    /// What ran between `before` and `self` (threads that ended are
    /// left out).
    fn since(&self, before: &Cpu) -> Cpu {
        let threads = self
            .threads
            .iter()
            .map(|(name, &(run, slices))| {
                let (run0, slices0) = before.threads.get(name).copied().unwrap_or_default();
                (
                    name.clone(),
                    (run.saturating_sub(run0), slices.saturating_sub(slices0)),
                )
            })
            .filter(|(_, (run, _))| *run > 0)
            .collect();
        Cpu { threads }
    }

    fn total(&self) -> u64 {
        self.threads.values().map(|t| t.0).sum()
    }
}

/// The pid of the `nats-server` listening on `port` (its command line
/// names the port), for its CPU time.
fn server_pid(port: u16) -> Option<u32> {
    let port = port.to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let line = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = line.split(|&b| b == 0).collect();
            let is_server = args.first()?.ends_with(b"nats-server");
            (is_server && args.contains(&port.as_bytes())).then_some(pid)
        })
}

/// Runs `round` `rounds` times and prints the CPU time per message of
/// this process's threads (by name) and of `nats-server` (`server`), and
/// how often each was scheduled in per message, with the wall time per
/// message: on 2 cores the wall time is at least the total CPU / 2.
fn print_cpu(what: &str, server: Option<u32>, rounds: usize, round: &mut dyn FnMut()) {
    round();
    let (ours, theirs, start) = (Cpu::of(None), Cpu::of(server), Instant::now());
    for _ in 0..rounds {
        round();
    }
    let wall = start.elapsed();
    let (ours, theirs) = (Cpu::of(None).since(&ours), Cpu::of(server).since(&theirs));
    let messages = (rounds * ROUND) as f64;
    let per = |ns: u64| ns as f64 / 1e3 / messages;
    let threads = |cpu: &Cpu| {
        cpu.threads
            .iter()
            .filter(|(_, (run, _))| per(*run) >= 0.005)
            .map(|(name, &(run, slices))| {
                format!(
                    "{name} {:.3} µs ({:.2} runs)",
                    per(run),
                    slices as f64 / messages
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "CPU {what}: wall {:.3} µs/msg; CPU {:.3} µs/msg = bench process {:.3} [{}] + \
         nats-server {:.3} [{}]",
        wall.as_secs_f64() * 1e6 / messages,
        per(ours.total() + theirs.total()),
        per(ours.total()),
        threads(&ours),
        per(theirs.total()),
        threads(&theirs),
    );
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
    // Raw again, on airssys's wire format: the source stamped in the
    // subject (`<prefix>.msg.<source>.<topic>`, no headers), the
    // subscriber on `<prefix>.msg.*.<pattern>` in a queue group (what
    // replicas share).
    let mut stamped = tokio.block_on(async {
        let b = async_nats::connect(url.as_str()).await.expect("b");
        let subscription = b
            .queue_subscribe("stamped.msg.*.bench.x", "sub".to_owned())
            .await
            .expect("subscribe");
        b.flush().await.expect("flush");
        subscription
    });
    // And on the older wire format (until the source moved into the
    // subject): the source header on every message, a queue group.
    let mut headed = tokio.block_on(async {
        let b = async_nats::connect(url.as_str()).await.expect("b");
        let subscription = b
            .queue_subscribe("headed.topic.bench.x", "sub".to_owned())
            .await
            .expect("subscribe");
        b.flush().await.expect("flush");
        subscription
    });
    // The queue group alone (no header).
    let mut queue_only = tokio.block_on(async {
        let b = async_nats::connect(url.as_str()).await.expect("b");
        let queue_only = b
            .queue_subscribe("queue.bench.x", "sub".to_owned())
            .await
            .expect("subscribe");
        b.flush().await.expect("flush");
        queue_only
    });
    let mut queue_round = || {
        tokio.block_on(async {
            for _ in 0..ROUND {
                sender
                    .publish("queue.bench.x", payload.clone())
                    .await
                    .expect("publish");
            }
            for _ in 0..ROUND {
                let message = queue_only.next().await.expect("message");
                assert_eq!(message.payload.len(), SIZE);
            }
        });
    };
    let mut stamped_round = || {
        tokio.block_on(async {
            for _ in 0..ROUND {
                sender
                    .publish("stamped.msg.pub.bench.x", payload.clone())
                    .await
                    .expect("publish");
            }
            for _ in 0..ROUND {
                let message = stamped.next().await.expect("message");
                assert_eq!(message.payload.len(), SIZE);
            }
        });
    };
    let mut headed_round = || {
        tokio.block_on(async {
            for _ in 0..ROUND {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(airssys_runtime::broker::SOURCE_HEADER, "pub");
                sender
                    .publish_with_headers("headed.topic.bench.x", headers, payload.clone())
                    .await
                    .expect("publish");
            }
            for _ in 0..ROUND {
                let message = headed.next().await.expect("message");
                assert_eq!(message.payload.len(), SIZE);
            }
        });
    };
    // airssys: `pub` on host A, `sub` on host B (core NATS). Host B is a
    // `Server`, as `airssys serve --nats` runs it: `sub`'s instance lives
    // on a worker thread of its own, which sleeps on the mailbox notifier
    // and delivers as messages arrive, while host A's thread publishes.
    let command = format!("send:bench.x:{ROUND}:{SIZE}");
    let handled = Arc::new(Handled::default());
    let host_a = host(&url, "airssys", None);
    let mut publisher = start(&host_a, "pub", "msg:publish:bench.*");
    let server_b = served(&url, "airssys", &handled);
    let mut our_round = || {
        let target = handled.count.load(Ordering::Relaxed) + ROUND;
        handled.target.store(target, Ordering::Relaxed);
        let reply = publisher
            .request("host", command.as_bytes())
            .expect("call")
            .expect("handler");
        assert_eq!(reply, b"ok");
        handled.wait_for(target);
    };
    // The same, host B pumped by the bench's own thread once the publish
    // call returned (`run_until_idle`, sleeping on the mailbox notifier
    // while nothing is queued): no overlap of the two hosts' wasm calls.
    // Subjects under another prefix, so the two pairs do not mix.
    let delivered = Arc::new(AtomicUsize::new(0));
    let pumped_a = host(&url, "pumped", None);
    let pumped_b = host(&url, "pumped", Some(Arc::clone(&delivered)));
    let mut pumped_publisher = start(&pumped_a, "pub", "msg:publish:bench.*");
    let sub_loaded = load(&pumped_b, "sub", "msg:subscribe:bench.*");
    let mail = Arc::clone(sub_loaded.mailbox_notifier());
    let mut subs = vec![sub_loaded.instantiate().expect("instantiate")];
    let mut pumped_round = || {
        let target = delivered.load(Ordering::Relaxed) + ROUND;
        let reply = pumped_publisher
            .request("host", command.as_bytes())
            .expect("call")
            .expect("handler");
        assert_eq!(reply, b"ok");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = mail.generation();
            pumped_b.run_until_idle(&mut subs, 64).expect("delivery");
            if delivered.load(Ordering::Relaxed) >= target {
                break;
            }
            assert!(Instant::now() < deadline, "messages lost");
            mail.wait(seen, Instant::now() + Duration::from_millis(10));
        }
    };
    // What if: host A's publishes handed to NATS together after the call
    // (not what the broker does; see docs/decisions/nats-delivery.md).
    let deferred = Arc::new(Deferred {
        nats: broker(&url, "deferred"),
        held: std::sync::Mutex::default(),
    });
    let deferred_a = Runtime::builder()
        .policy(policy())
        .broker(Arc::clone(&deferred) as Arc<dyn Broker>)
        .build()
        .expect("runtime");
    let mut deferred_publisher = start(&deferred_a, "pub", "msg:publish:bench.*");
    let deferred_handled = Arc::new(Handled::default());
    let deferred_b = served(&url, "deferred", &deferred_handled);
    let mut deferred_round = || {
        let target = deferred_handled.count.load(Ordering::Relaxed) + ROUND;
        deferred_handled.target.store(target, Ordering::Relaxed);
        let reply = deferred_publisher
            .request("host", command.as_bytes())
            .expect("call")
            .expect("handler");
        assert_eq!(reply, b"ok");
        deferred.release();
        deferred_handled.wait_for(target);
    };
    raw_round();
    stamped_round();
    headed_round();
    queue_round();
    our_round();
    pumped_round();
    deferred_round();
    let nats_server = server_pid(server.port());
    // `AIRSSYS_DELIVERY_PROFILE=raw|served|pumped[:ROUNDS]`: only that
    // series, `ROUNDS` rounds (default 2,000), for a profiler
    // (`perf record -g`), then the CPU line and nothing else.
    if let Ok(spec) = std::env::var("AIRSSYS_DELIVERY_PROFILE") {
        let (mode, rounds) = spec.split_once(':').unwrap_or((&spec, "2000"));
        let rounds = rounds
            .parse()
            .expect("AIRSSYS_DELIVERY_PROFILE: rounds as a number");
        let round: &mut dyn FnMut() = match mode {
            "raw" => &mut raw_round,
            "served" => &mut our_round,
            "pumped" => &mut pumped_round,
            other => panic!("AIRSSYS_DELIVERY_PROFILE: `{other}` is not raw, served or pumped"),
        };
        print_cpu(mode, nats_server, rounds, round);
        server_b.shutdown(Duration::from_secs(5));
        deferred_b.shutdown(Duration::from_secs(5));
        return;
    }
    // CPU time per message of each side, by thread (see `print_cpu`).
    for _ in 0..2 {
        print_cpu("raw async-nats", nats_server, 400, &mut raw_round);
        print_cpu("airssys, host B served", nats_server, 400, &mut our_round);
        print_cpu(
            "airssys, host B pumped",
            nats_server,
            400,
            &mut pumped_round,
        );
    }
    print(
        &format!(
            "raw async-nats on airssys's wire format (source in the subject, queue group) \
             ({ROUND} × 1 KiB per round)"
        ),
        ROUND,
        ratio::measure(2, &mut raw_round, &mut stamped_round),
    );
    print(
        &format!(
            "raw async-nats on the older wire format (source header, queue group) ({ROUND} × 1 \
             KiB per round)"
        ),
        ROUND,
        ratio::measure(2, &mut raw_round, &mut headed_round),
    );
    print(
        &format!("raw async-nats to a queue group only ({ROUND} × 1 KiB per round)"),
        ROUND,
        ratio::measure(2, &mut raw_round, &mut queue_round),
    );
    let whole = ratio::measure(2, &mut raw_round, &mut our_round);
    let pumped = ratio::measure(2, &mut raw_round, &mut pumped_round);
    print(
        &format!("host-to-host delivery ({ROUND} × 1 KiB per round)"),
        ROUND,
        whole,
    );
    print(
        &format!(
            "host-to-host delivery, host B pumped by the publishing thread ({ROUND} × 1 KiB \
             per round)"
        ),
        ROUND,
        pumped,
    );
    print(
        &format!(
            "what if: host-to-host delivery, host A's publishes handed to NATS together after \
             the call ({ROUND} × 1 KiB per round)"
        ),
        ROUND,
        ratio::measure(2, &mut raw_round, &mut deferred_round),
    );

    // The wasm parts of the airssys path, each alone, against the same raw
    // round: what is left of the airssys time is the broker's own path.
    // `pub`'s guest publish calls (host function, grant check, topic
    // check) into a broker that drops them:
    let floor = Runtime::builder()
        .policy(policy())
        .broker(Arc::new(Discard))
        .build()
        .expect("floor runtime");
    let mut floor_pub = start(&floor, "pub", "msg:publish:bench.*");
    let mut publish_only = || {
        let reply = floor_pub
            .request("host", command.as_bytes())
            .expect("call")
            .expect("handler");
        assert_eq!(reply, b"ok");
    };
    let publish = ratio::measure(2, &mut raw_round, &mut publish_only);
    print_part(
        "wasm publish calls alone (guest loop, host function, no broker)",
        publish,
    );
    // `sub`'s `handle-message`, called directly as the dispatcher calls it
    // (parts shared, one call per message):
    let mut floor_sub = start(&floor, "sub", "msg:subscribe:bench.*");
    let export = floor_sub
        .export::<(WireMessage,), (Result<(), HandlerError>,)>(
            Some("airssys:core/handler@1.0.0"),
            "handle-message",
        )
        .expect("handle-message export");
    let (topic, source, body): (Arc<str>, Arc<str>, Arc<[u8]>) = (
        Arc::from("bench.x"),
        Arc::from("pub"),
        Arc::from(vec![0x5a_u8; SIZE]),
    );
    let mut handle_only = || {
        for _ in 0..ROUND {
            let message = WireMessage {
                topic: Arc::clone(&topic),
                source: Arc::clone(&source),
                payload: Arc::clone(&body),
            };
            floor_sub
                .invoke(&export, (message,))
                .expect("call")
                .0
                .expect("handled");
        }
    };
    let handle = ratio::measure(2, &mut raw_round, &mut handle_only);
    print_part(
        "wasm handle-message calls alone (direct, no broker)",
        handle,
    );
    print_cpu(
        "wasm publish calls alone",
        nats_server,
        400,
        &mut publish_only,
    );
    print_cpu(
        "wasm handle-message calls alone",
        nats_server,
        400,
        &mut handle_only,
    );
    // Best rounds. The pumped path does everything on one thread, one
    // step after the other: less its two wasm parts, it is what the
    // broker, NATS and the hand-offs between threads add. With host B
    // served, its `handle-message` calls overlap host A's publishing.
    let per = |d: Duration| d.as_secs_f64() * 1e6 / ROUND as f64;
    let rest = per(pumped.ours) - per(publish.ours) - per(handle.ours);
    println!(
        "SPLIT broker path (pumped airssys less both wasm parts): {rest:.3} µs/msg; pumped \
         airssys {:.3} µs/msg = publish {:.3} + handle-message {:.3} + the rest; served \
         airssys {:.3} µs/msg; raw async-nats {:.3} µs/msg",
        per(pumped.ours),
        per(publish.ours),
        per(handle.ours),
        per(whole.ours),
        per(whole.base),
    );

    let mut group = c.benchmark_group("delivery");
    group.throughput(criterion::Throughput::Elements(ROUND as u64));
    group.bench_function("raw", |b| b.iter(&mut raw_round));
    group.bench_function("airssys", |b| b.iter(&mut our_round));
    group.bench_function("airssys-pumped", |b| b.iter(&mut pumped_round));
    group.bench_function("wasm-publish-only", |b| b.iter(&mut publish_only));
    group.bench_function("wasm-handle-only", |b| b.iter(&mut handle_only));
    group.finish();
    server_b.shutdown(Duration::from_secs(5));
    deferred_b.shutdown(Duration::from_secs(5));
}

criterion_group! {
    name = benches;
    config = settings::criterion(10);
    targets = kv, delivery
}
criterion_main!(benches);
