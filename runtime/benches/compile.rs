//! The compile cost of a large component, against wasmtime's own: the
//! targets of issue #16, measured in one run on one component.
//!
//! - `precompile`: `Engine::precompile_component` of the component with
//!   the engine of an airssys `Runtime` (so exactly the `Config` the
//!   runtime uses) — what `wasmtime compile` does with the same settings
//!   (the baseline);
//! - `load_cache_miss`: what the first `airssys run` does before the
//!   component runs: a `Runtime` with an empty compile cache is built and
//!   loads the component (manifest and import checks, compile, cache
//!   write, link);
//! - `cached_first_reply`: what a later `airssys run` does up to its first
//!   reply: a `Runtime` over the warm cache is built, loads the component,
//!   instantiates it (its `init` runs) and gets the reply to one request.
//!
//! The component is the Python example `py-counter` (18 MB, componentize-py)
//! as the examples test leaves it in `target/other-languages/py-counter.wasm`
//! (build it with `cargo test -p airssys-cli --test examples -- --ignored
//! python`), or the file named by `AIRSSYS_BENCH_COMPONENT` with the
//! policy file `AIRSSYS_BENCH_POLICY` and the request payload
//! `AIRSSYS_BENCH_REQUEST` (default `get`).
//!
//! Besides criterion's figures, the `RATIO` lines compare the best of
//! [`ROUNDS`] (or `AIRSSYS_BENCH_ROUNDS`) interleaved runs of each (first
//! load / precompile, and the cached first reply in seconds), and one
//! cached run is broken down (runtime build, load, init, first reply). Compilation takes seconds, so run it
//! short: `cargo bench -p airssys-runtime --bench compile --
//! --warm-up-time 1 --measurement-time 3`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airssys_runtime::{Policy, Runtime};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

/// Interleaved rounds for the `RATIO` lines (`AIRSSYS_BENCH_ROUNDS`
/// overrides it).
const ROUNDS: usize = 3;

/// The component to measure, its request, and a policy for it.
struct Subject {
    path: PathBuf,
    bytes: Vec<u8>,
    request: String,
    policy: String,
}

fn subject() -> Subject {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (path, policy) = match std::env::var_os("AIRSSYS_BENCH_COMPONENT") {
        Some(path) => (PathBuf::from(path), None),
        None => (
            repo.join("target/other-languages/py-counter.wasm"),
            Some(repo.join("examples/py-counter/policy.toml")),
        ),
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the component to measure, {}: {e}\nbuild it with `cargo test -p \
             airssys-cli --test examples -- --ignored python` (installs componentize-py from \
             PyPI and leaves py-counter.wasm there), or name another component with \
             AIRSSYS_BENCH_COMPONENT=path.wasm (with AIRSSYS_BENCH_POLICY=policy.toml and \
             AIRSSYS_BENCH_REQUEST=payload)",
            path.display()
        )
    });
    let policy = policy
        .or_else(|| std::env::var_os("AIRSSYS_BENCH_POLICY").map(PathBuf::from))
        .expect("AIRSSYS_BENCH_POLICY=policy.toml names the policy for AIRSSYS_BENCH_COMPONENT");
    let policy = std::fs::read_to_string(&policy)
        .unwrap_or_else(|e| panic!("cannot read the policy {}: {e}", policy.display()));
    Subject {
        path,
        bytes,
        request: std::env::var("AIRSSYS_BENCH_REQUEST").unwrap_or_else(|_| "get".to_owned()),
        policy,
    }
}

/// A runtime as `airssys run` builds it (in-memory storage), caching
/// compiled code in `cache`.
fn runtime(subject: &Subject, cache: &Path) -> Runtime {
    Runtime::builder()
        .policy(Policy::from_toml_str(&subject.policy).expect("valid policy"))
        .in_memory_storage()
        .compile_cache(cache)
        .build()
        .expect("runtime")
}

fn precompile(subject: &Subject, runtime: &Runtime) {
    let code = runtime
        .engine()
        .precompile_component(&subject.bytes)
        .expect("compiles");
    std::hint::black_box(code);
}

fn load_cache_miss(subject: &Subject) {
    let cache = tempfile::tempdir().expect("cache dir");
    let runtime = runtime(subject, cache.path());
    let loaded = runtime.load(&subject.bytes).expect("loads");
    std::hint::black_box(loaded);
}

fn cached_first_reply(subject: &Subject, cache: &Path) {
    let runtime = runtime(subject, cache);
    let loaded = runtime.load(&subject.bytes).expect("loads");
    let mut instance = loaded.instantiate().expect("instantiates");
    let reply = instance
        .request("bench", subject.request.as_bytes())
        .expect("call")
        .expect("reply");
    std::hint::black_box(reply);
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn compile(c: &mut Criterion) {
    let subject = subject();
    let warm = tempfile::tempdir().expect("cache dir");
    let baseline = runtime(&subject, warm.path());
    // Fills the warm cache.
    cached_first_reply(&subject, warm.path());

    // Interleaved rounds: both sides see the same machine load.
    // 0 rounds: the breakdown below only.
    let rounds = std::env::var("AIRSSYS_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUNDS);
    let mut best = [Duration::MAX; 3];
    for round in 0..rounds {
        let times = if round % 2 == 0 {
            let p = timed(|| precompile(&subject, &baseline));
            let m = timed(|| load_cache_miss(&subject));
            [p, m, timed(|| cached_first_reply(&subject, warm.path()))]
        } else {
            let m = timed(|| load_cache_miss(&subject));
            let p = timed(|| precompile(&subject, &baseline));
            [p, m, timed(|| cached_first_reply(&subject, warm.path()))]
        };
        for (b, t) in best.iter_mut().zip(times) {
            *b = (*b).min(t);
        }
    }
    let [p, m, r] = best;
    // Where the cached run's time goes, once.
    let start = Instant::now();
    let runtime = runtime(&subject, warm.path());
    let built = start.elapsed();
    let loaded = runtime.load(&subject.bytes).expect("loads");
    let load = start.elapsed() - built;
    let mut instance = loaded.instantiate().expect("instantiates");
    let init = start.elapsed() - built - load;
    instance
        .request("bench", subject.request.as_bytes())
        .expect("call")
        .expect("reply");
    let reply = start.elapsed() - built - load - init;
    // Part of the load: the import check decodes the component's WIT.
    let start = Instant::now();
    let decoded = wit_component::decode(&subject.bytes).expect("decodes");
    let decode = start.elapsed();
    std::hint::black_box(decoded);
    println!(
        "cached run, once: runtime built {built:.2?}, loaded {load:.2?} \
         (wit_component::decode of the component alone, which the import check does: \
         {decode:.2?}), instantiated (init) {init:.2?}, first reply {reply:.2?}"
    );
    println!(
        "component: {} ({} bytes)",
        subject.path.display(),
        subject.bytes.len()
    );
    if rounds > 0 {
        println!(
            "RATIO first load (cache miss) / precompile_component: {:.2} ({:.2?} / {:.2?}, best of \
             {rounds}; target <= 1.5)",
            m.as_secs_f64() / p.as_secs_f64(),
            m,
            p
        );
        println!(
            "RATIO cached run to the first reply: {:.3} s (best of {rounds}; target <= 0.5 s)",
            r.as_secs_f64()
        );
    }

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("precompile", |b| {
        b.iter(|| precompile(&subject, &baseline));
    });
    group.bench_function("load_cache_miss", |b| {
        b.iter_batched(
            || (),
            |()| load_cache_miss(&subject),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("cached_first_reply", |b| {
        b.iter(|| cached_first_reply(&subject, warm.path()));
    });
    group.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
