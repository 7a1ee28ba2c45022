//! Costs of the airssys host against plain wasmtime, each as a ratio
//! measured in one run on the same component (`tests/fixtures/bench`):
//!
//! 1. `host_call`: 100 guarded `environment.get-var` calls from the guest,
//!    with 1, 100 and 1,000 grants, against the same calls served by a
//!    plain wasmtime `bindgen!` host without any check; and at 1,000
//!    grants the same over 128 names in turn, more than the decision cache
//!    holds (the guard's full check on most calls).
//! 2. `instantiate`: instantiate + first call, airssys `LoadedComponent`
//!    against a bare wasmtime `InstancePre`.
//! 3. `storage`: 100 `bucket.set` / `bucket.get` calls through the host
//!    (redb, non-durable commits) against the same operations on redb
//!    directly (a transaction per operation; for reads also one read
//!    transaction reused), and `storage_backend`: the same operations on
//!    the backend alone, without wasm or guard.
//!
//! The host-call ratio is printed against plain wasmtime with and without
//! epoch interruption (airssys needs it for the CPU limit).
//!
//! Run with `cargo bench -p airssys-runtime --bench host`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/settings.rs"]
mod settings;
#[path = "../tests/support/mod.rs"]
mod support;

#[path = "support/ratio.rs"]
mod ratio;

use std::collections::BTreeMap;

use airssys_runtime::{Policy, Runtime};
use criterion::{Criterion, criterion_group};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Host calls per measured iteration.
const CALLS: u32 = 100;

mod plain {
    wasmtime::component::bindgen!({ world: "bench", path: "tests/fixtures/bench/wit" });
}

use plain::airssys::core::{environment, storage};

/// A plain wasmtime host: the same environment lookup, no guard.
struct PlainState {
    env: BTreeMap<String, String>,
    table: ResourceTable,
    wasi: WasiCtx,
}

impl PlainState {
    fn new() -> PlainState {
        PlainState {
            env: BTreeMap::from([("APP_MODE".to_owned(), "bench".to_owned())]),
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
        }
    }
}

impl WasiView for PlainState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl plain::airssys::core::types::Host for PlainState {}

impl environment::Host for PlainState {
    fn get_var(&mut self, name: String) -> Result<Option<String>, environment::Error> {
        Ok(self.env.get(&name).cloned())
    }

    fn list_vars(&mut self) -> Result<Vec<environment::KeyValue>, environment::Error> {
        Ok(Vec::new())
    }
}

impl storage::HostBucket for PlainState {
    fn get(
        &mut self,
        _: wasmtime::component::Resource<storage::Bucket>,
        _: String,
    ) -> Result<Option<Vec<u8>>, storage::Error> {
        Err(storage::Error::Other("unused".into()))
    }
    fn set(
        &mut self,
        _: wasmtime::component::Resource<storage::Bucket>,
        _: String,
        _: Vec<u8>,
    ) -> Result<(), storage::Error> {
        Err(storage::Error::Other("unused".into()))
    }
    fn delete(
        &mut self,
        _: wasmtime::component::Resource<storage::Bucket>,
        _: String,
    ) -> Result<bool, storage::Error> {
        Err(storage::Error::Other("unused".into()))
    }
    fn exists(
        &mut self,
        _: wasmtime::component::Resource<storage::Bucket>,
        _: String,
    ) -> Result<bool, storage::Error> {
        Err(storage::Error::Other("unused".into()))
    }
    fn list_keys(
        &mut self,
        _: wasmtime::component::Resource<storage::Bucket>,
        _: Option<String>,
    ) -> Result<storage::KeyPage, storage::Error> {
        Err(storage::Error::Other("unused".into()))
    }
    fn drop(&mut self, _: wasmtime::component::Resource<storage::Bucket>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl storage::Host for PlainState {
    fn open(
        &mut self,
        _: String,
    ) -> Result<wasmtime::component::Resource<storage::Bucket>, storage::Error> {
        Err(storage::Error::Other("unused".into()))
    }
}

fn plain_pre(epoch: bool) -> plain::BenchPre<PlainState> {
    plain_pre_with(epoch, true)
}

/// As [`plain_pre`], with the pooling allocator or without (valgrind
/// cannot reserve the pool's address space).
fn plain_pre_with(epoch: bool, pooling: bool) -> plain::BenchPre<PlainState> {
    let mut config = Config::new();
    config.concurrency_support(false);
    config.epoch_interruption(epoch);
    if pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            PoolingAllocationConfig::default(),
        ));
    }
    let engine = Engine::new(&config).expect("engine");
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    plain::Bench::add_to_linker::<PlainState, HasSelf<PlainState>>(&mut linker, |s| s)
        .expect("link");
    let component =
        wasmtime::component::Component::new(&engine, support::fixture("bench")).expect("compile");
    plain::BenchPre::new(linker.instantiate_pre(&component).expect("pre")).expect("pre")
}

/// A runtime whose policy holds `grants` `env:read` grants (one of them
/// covering `APP_MODE`) plus the storage grants.
fn airssys_runtime(grants: usize, storage: Option<&std::path::Path>) -> Runtime {
    airssys_runtime_with(grants, storage, true)
}

/// As [`airssys_runtime`], with the pooling allocator or without.
fn airssys_runtime_with(
    grants: usize,
    storage: Option<&std::path::Path>,
    pooling: bool,
) -> Runtime {
    let mut policy = Policy::builder()
        .grant("bench", "kv:read:data/*".parse().unwrap())
        .grant("bench", "kv:write:data/*".parse().unwrap())
        .grant("bench", "env:read:APP_MODE".parse().unwrap())
        .env("bench", "APP_MODE", "bench");
    for i in 1..grants {
        policy = policy.grant("bench", format!("env:read:VAR_{i}").parse().unwrap());
    }
    let builder = Runtime::builder()
        .policy(policy.build())
        .max_instances(64)
        .pooling(pooling);
    let builder = match storage {
        Some(path) => builder.storage_path(path).durable_storage(false),
        None => builder,
    };
    builder.build().expect("runtime")
}

/// Measures `base` against `ours` (see [`ratio::measure`]) and prints
/// the result as a `RATIO` line.
fn ratio(label: &str, batch: u32, base: impl FnMut(), ours: impl FnMut()) {
    let r = ratio::measure(batch, base, ours);
    println!(
        "RATIO {label}: base {:?}, airssys {:?}, ratio {:.2}x (median of {} paired rounds {:.2}x)",
        r.base, r.ours, r.best, r.rounds, r.paired_median
    );
}

fn host_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("host_call");
    // Two baselines: plain wasmtime as configured by default (no epoch
    // interruption), and with epoch interruption on, as airssys needs it
    // for the CPU limit (the like-for-like engine configuration).
    let base_pre = plain_pre(false);
    let mut base_store = Store::new(base_pre.engine(), PlainState::new());
    let base = base_pre.instantiate(&mut base_store).expect("instantiate");
    let epoch_pre = plain_pre(true);
    let mut epoch_store = Store::new(epoch_pre.engine(), PlainState::new());
    epoch_store.set_epoch_deadline(u64::MAX / 2);
    let epoch_base = epoch_pre
        .instantiate(&mut epoch_store)
        .expect("instantiate");
    for epoch in [false, true] {
        let pre = plain_pre(epoch);
        let mut store = Store::new(pre.engine(), PlainState::new());
        store.set_epoch_deadline(u64::MAX / 2);
        let bench = pre.instantiate(&mut store).expect("instantiate");
        assert_eq!(bench.call_env_loop(&mut store, CALLS).expect("call"), CALLS);
        let name = if epoch {
            "plain_wasmtime_with_epoch"
        } else {
            "plain_wasmtime"
        };
        group.bench_function(name, |b| {
            b.iter(|| bench.call_env_loop(&mut store, CALLS).expect("call"))
        });
    }
    for grants in [1, 100, 1000] {
        let runtime = airssys_runtime(grants, None);
        let loaded = runtime.load(support::fixture("bench")).expect("load");
        assert_eq!(
            loaded.grants().allows().len(),
            grants + 2,
            "env grants plus the two kv grants"
        );
        let mut instance = loaded.instantiate().expect("instantiate");
        let export = instance
            .export::<(u32,), (u32,)>(None, "env-loop")
            .expect("export");
        assert_eq!(instance.invoke(&export, (CALLS,)).expect("call").0, CALLS);
        group.bench_function(format!("airssys_{grants}_grants"), |b| {
            b.iter(|| instance.invoke(&export, (CALLS,)).expect("call"))
        });
        ratio(
            &format!("host_call ({CALLS} calls, {grants} grants) vs plain wasmtime"),
            10,
            || {
                base.call_env_loop(&mut base_store, CALLS).expect("call");
            },
            || {
                instance.invoke(&export, (CALLS,)).expect("call");
            },
        );
        ratio(
            &format!("host_call ({CALLS} calls, {grants} grants) vs plain wasmtime with epoch"),
            10,
            || {
                epoch_base
                    .call_env_loop(&mut epoch_store, CALLS)
                    .expect("call");
            },
            || {
                instance.invoke(&export, (CALLS,)).expect("call");
            },
        );
        if grants == 1000 {
            // The worst case for the decision cache: 128 names in turn
            // (all granted, `VAR_1`..`VAR_128`), more than its 64 slots.
            let names = instance
                .export::<(u32, u32), (u32,)>(None, "env-loop-names")
                .expect("export");
            assert_eq!(
                instance.invoke(&names, (CALLS, 128)).expect("call").0,
                CALLS,
                "every name is granted"
            );
            ratio(
                &format!(
                    "host_call ({CALLS} calls over 128 names, {grants} grants, mostly uncached) \
                     vs plain wasmtime with epoch"
                ),
                10,
                || {
                    epoch_base
                        .call_env_loop_names(&mut epoch_store, CALLS, 128)
                        .expect("call");
                },
                || {
                    instance.invoke(&names, (CALLS, 128)).expect("call");
                },
            );
        }
    }
    group.finish();
}

/// The guard alone (no wasm): what `#[airssys::host_fn]` adds per call.
fn guard_only(c: &mut Criterion) {
    use airssys_runtime::contract::capability::{Action, Domain, GrantSet};
    use airssys_runtime::contract::guard::{DecisionCache, GuardContext, HostFnGuard};

    /// The grants, and a decision cache as the runtime's host state has.
    struct Ctx(GrantSet, Option<DecisionCache>);
    impl GuardContext for Ctx {
        fn component(&self) -> &str {
            "bench"
        }
        fn grants(&self) -> &GrantSet {
            &self.0
        }
        fn decisions(&self) -> Option<&DecisionCache> {
            self.1.as_ref()
        }
    }
    static GUARD: HostFnGuard =
        HostFnGuard::new("bench#get-var", "env:read", Domain::Env, Action::Read);
    let mut group = c.benchmark_group("guard_only");
    for grants in [1, 100, 1000] {
        let mut builder = GrantSet::builder().allow("env:read:APP_MODE".parse().unwrap());
        for i in 1..grants {
            builder = builder.allow(format!("env:read:VAR_{i}").parse().unwrap());
        }
        let grants_set = builder.build();
        let ctx = Ctx(grants_set.clone(), None);
        assert!(GUARD.authorize(&ctx, &["APP_MODE"]).is_ok());
        group.bench_function(format!("{grants}_grants"), |b| {
            b.iter(|| GUARD.authorize(&ctx, &[std::hint::black_box("APP_MODE")]))
        });
        let cached = Ctx(grants_set, Some(DecisionCache::new()));
        assert!(GUARD.authorize(&cached, &["APP_MODE"]).is_ok());
        group.bench_function(format!("{grants}_grants_cached"), |b| {
            b.iter(|| GUARD.authorize(&cached, &[std::hint::black_box("APP_MODE")]))
        });
    }
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate_and_first_call");
    let pre = plain_pre(false);
    group.bench_function("plain_wasmtime", |b| {
        b.iter(|| {
            let mut store = Store::new(pre.engine(), PlainState::new());
            let bench = pre.instantiate(&mut store).expect("instantiate");
            bench.call_env_loop(&mut store, 1).expect("call")
        })
    });
    let runtime = airssys_runtime(1, None);
    let loaded = runtime.load(support::fixture("bench")).expect("load");
    let plain_first = || {
        let mut store = Store::new(pre.engine(), PlainState::new());
        let bench = pre.instantiate(&mut store).expect("instantiate");
        bench.call_env_loop(&mut store, 1).expect("call")
    };
    let airssys_first = || {
        let mut instance = loaded.instantiate().expect("instantiate");
        instance
            .call::<(u32,), (u32,)>(None, "env-loop", (1,))
            .expect("call")
    };
    group.bench_function("airssys", |b| b.iter(airssys_first));
    group.finish();
    ratio(
        "instantiate + first call",
        50,
        || {
            plain_first();
        },
        || {
            airssys_first();
        },
    );
}

fn storage(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage");
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = airssys_runtime(1, Some(&dir.path().join("host.redb")));
    let loaded = runtime.load(support::fixture("bench")).expect("load");
    let mut instance = loaded.instantiate().expect("instantiate");
    let kv = instance
        .export::<(u32, bool), (u32,)>(None, "kv-loop")
        .expect("export");
    assert_eq!(instance.invoke(&kv, (CALLS, true)).expect("set").0, CALLS);

    const TABLE: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("kv");
    let db = redb::Database::create(dir.path().join("direct.redb")).expect("redb");
    let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    let value = [7u8; 64];
    let set_direct = |n: u32| {
        for i in 0..n {
            let mut txn = db.begin_write().expect("txn");
            txn.set_durability(redb::Durability::None)
                .expect("durability");
            txn.open_table(TABLE)
                .expect("table")
                .insert(keys[(i % 16) as usize].as_str(), &value[..])
                .expect("insert");
            txn.commit().expect("commit");
        }
    };
    set_direct(16);
    group.bench_function("set_redb_direct", |b| b.iter(|| set_direct(CALLS)));
    group.bench_function("set_airssys", |b| {
        b.iter(|| instance.invoke(&kv, (CALLS, true)).expect("set"))
    });
    let get_direct = |n: u32| {
        use redb::ReadableDatabase;
        let mut found = 0;
        for i in 0..n {
            let txn = db.begin_read().expect("txn");
            let table = txn.open_table(TABLE).expect("table");
            let value = table.get(keys[(i % 16) as usize].as_str()).expect("get");
            found += u32::from(value.map(|v| v.value().to_vec()).is_some());
        }
        found
    };
    // redb with one read transaction reused for every read, as the airssys
    // backend shares one snapshot between writes.
    let get_direct_reused = |n: u32| {
        use redb::ReadableDatabase;
        let txn = db.begin_read().expect("txn");
        let table = txn.open_table(TABLE).expect("table");
        let mut found = 0;
        for i in 0..n {
            let value = table.get(keys[(i % 16) as usize].as_str()).expect("get");
            found += u32::from(value.map(|v| v.value().to_vec()).is_some());
        }
        found
    };
    group.bench_function("get_redb_direct", |b| b.iter(|| get_direct(CALLS)));
    group.bench_function("get_redb_direct_reused_txn", |b| {
        b.iter(|| get_direct_reused(CALLS))
    });
    group.bench_function("get_airssys", |b| {
        b.iter(|| instance.invoke(&kv, (CALLS, false)).expect("get"))
    });
    group.finish();
    ratio(
        &format!("storage set ({CALLS} non-durable commits)"),
        3,
        || set_direct(CALLS),
        || {
            instance.invoke(&kv, (CALLS, true)).expect("set");
        },
    );
    ratio(
        &format!("storage get ({CALLS} reads)"),
        10,
        || {
            get_direct(CALLS);
        },
        || {
            instance.invoke(&kv, (CALLS, false)).expect("get");
        },
    );
    ratio(
        &format!("storage get ({CALLS} reads) vs redb with one reused read transaction"),
        10,
        || {
            get_direct_reused(CALLS);
        },
        || {
            instance.invoke(&kv, (CALLS, false)).expect("get");
        },
    );
}

/// The storage backend alone (no wasm, no guard): where a `get`/`set`
/// through the host spends its time beyond redb itself.
fn storage_backend(c: &mut Criterion) {
    use airssys_runtime::storage::{RedbStorage, StorageBackend};

    let mut group = c.benchmark_group("storage_backend");
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = RedbStorage::open(&dir.path().join("backend.redb"))
        .expect("open")
        .durable(false);
    const TABLE: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("kv");
    let db = redb::Database::create(dir.path().join("direct.redb")).expect("redb");
    let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    let value = [7u8; 64];
    let set_direct = |n: u32| {
        for i in 0..n {
            let mut txn = db.begin_write().expect("txn");
            txn.set_durability(redb::Durability::None)
                .expect("durability");
            txn.open_table(TABLE)
                .expect("table")
                .insert(keys[(i % 16) as usize].as_str(), &value[..])
                .expect("insert");
            txn.commit().expect("commit");
        }
    };
    let set_backend = |n: u32| {
        for i in 0..n {
            backend
                .set(
                    "bench",
                    "data",
                    &keys[(i % 16) as usize],
                    &value,
                    Some(1 << 30),
                )
                .expect("set");
        }
    };
    set_direct(16);
    set_backend(16);
    let get_direct = |n: u32| {
        use redb::ReadableDatabase;
        let mut found = 0;
        for i in 0..n {
            let txn = db.begin_read().expect("txn");
            let table = txn.open_table(TABLE).expect("table");
            let value = table.get(keys[(i % 16) as usize].as_str()).expect("get");
            found += u32::from(value.map(|v| v.value().to_vec()).is_some());
        }
        found
    };
    let get_backend = |n: u32| {
        let mut found = 0;
        for i in 0..n {
            let value = backend
                .get("bench", "data", &keys[(i % 16) as usize])
                .expect("get");
            found += u32::from(value.is_some());
        }
        found
    };
    assert_eq!(get_backend(CALLS), CALLS);
    group.bench_function("set_redb_direct", |b| b.iter(|| set_direct(CALLS)));
    group.bench_function("set_backend", |b| b.iter(|| set_backend(CALLS)));
    group.bench_function("get_redb_direct", |b| b.iter(|| get_direct(CALLS)));
    group.bench_function("get_backend", |b| b.iter(|| get_backend(CALLS)));
    group.finish();
    ratio(
        &format!("backend set ({CALLS} non-durable commits)"),
        3,
        || set_direct(CALLS),
        || set_backend(CALLS),
    );
    ratio(
        &format!("backend get ({CALLS} reads)"),
        10,
        || {
            get_direct(CALLS);
        },
        || {
            get_backend(CALLS);
        },
    );
}

criterion_group! {
    name = benches;
    config = settings::criterion(20);
    targets = guard_only, host_call, instantiate, storage, storage_backend
}

/// `AIRSSYS_HOST_PROFILE=plain|airssys` (optionally `:NAMES:ROUNDS`,
/// default `:128:1000`): instead of the benches, run `ROUNDS` times the
/// loop of 100 `get-var` calls over `NAMES` names (1: one name, the
/// decision cache's path; 128: mostly misses), on plain wasmtime with epoch
/// interruption or on airssys with 1,000 grants, inside [`profiled`] only
/// (both without the pooling allocator: the same code per call).
/// For counting instructions per host call with callgrind:
///
/// ```sh
/// AIRSSYS_HOST_PROFILE=airssys:128:1000 valgrind --tool=callgrind \
///     --toggle-collect='*profiled*' target/release/deps/host-<hash>
/// ```
fn profile(spec: &str) {
    let mut parts = spec.split(':');
    let mode = parts.next().unwrap_or_default();
    let mut number = |default: u32| {
        parts
            .next()
            .map_or(default, |n| n.parse().expect("a number"))
    };
    let (names, rounds) = (number(128), number(1000));
    match mode {
        "plain" => {
            let pre = plain_pre_with(true, false);
            let mut store = Store::new(pre.engine(), PlainState::new());
            store.set_epoch_deadline(u64::MAX / 2);
            let bench = pre.instantiate(&mut store).expect("instantiate");
            let mut run = || {
                bench
                    .call_env_loop_names(&mut store, CALLS, names)
                    .expect("call");
            };
            run();
            profiled(rounds, run);
        }
        "airssys" => {
            let runtime = airssys_runtime_with(1000, None, false);
            let loaded = runtime.load(support::fixture("bench")).expect("load");
            let mut instance = loaded.instantiate().expect("instantiate");
            let export = instance
                .export::<(u32, u32), (u32,)>(None, "env-loop-names")
                .expect("export");
            let mut run = || {
                instance.invoke(&export, (CALLS, names)).expect("call");
            };
            run();
            profiled(rounds, run);
        }
        other => panic!("AIRSSYS_HOST_PROFILE: `{other}` is neither `plain` nor `airssys`"),
    }
    println!("{mode}: {rounds} rounds of {CALLS} calls over {names} names");
}

/// The profiled part of [`profile`]: `rounds` runs of `run`.
#[inline(never)]
fn profiled(rounds: u32, mut run: impl FnMut()) {
    for _ in 0..rounds {
        run();
    }
}

fn main() {
    if let Ok(spec) = std::env::var("AIRSSYS_HOST_PROFILE") {
        profile(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
