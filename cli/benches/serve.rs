//! A request's round trip through `airssys serve` against
//! `Instance::request` on the same component, as a ratio measured in one
//! run.
//!
//! - base: `Instance::request` on an instance of the echo component in
//!   this process (no queue, no thread hop, no HTTP).
//! - ours: `POST /v1/components/serve-echo/request` to the `airssys`
//!   binary serving the same `.wasm`, over one keep-alive HTTP/1.1
//!   connection on loopback: the client, TCP, hyper, a blocking thread,
//!   the server's queue, the instance's worker thread, and back.
//!
//! Run with `cargo bench -p airssys-cli --bench serve` (on this shared
//! machine, `--profile dev`: both sides then run unoptimised).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../runtime/benches/support/settings.rs"]
mod settings;

#[path = "../../runtime/benches/support/ratio.rs"]
mod ratio;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use airssys_runtime::{Policy, Runtime};
use criterion::{Criterion, criterion_group, criterion_main};

const PAYLOAD: &[u8] = b"ping";
const REPLY: &str = "serve-echo got ping";

/// Builds the echo crate and returns its `.wasm`.
fn echo_wasm() -> PathBuf {
    let dir = common::echo_crate("serve-echo");
    let target = common::repo().join("target").join("new-templates");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("runs cargo");
    assert!(status.success(), "the echo crate builds");
    target
        .join("wasm32-wasip2")
        .join("release")
        .join("serve_echo.wasm")
}

/// `airssys serve WASM` on a free port; the child and its address.
fn serve(wasm: &PathBuf, policy: &PathBuf) -> (Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .arg("serve")
        .arg(wasm)
        .arg("--policy")
        .arg(policy)
        .args(["--listen", "127.0.0.1:0", "--no-cache"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs airssys serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("airssys serve prints where it listens")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep reading, so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

fn round_trip(c: &mut Criterion) {
    let wasm = echo_wasm();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "").unwrap();

    let runtime = Runtime::builder()
        .policy(Policy::from_toml_str("").unwrap())
        .in_memory_storage()
        .build()
        .unwrap();
    let mut instance = runtime
        .load(&std::fs::read(&wasm).unwrap())
        .unwrap()
        .instantiate()
        .unwrap();
    let mut direct = move || {
        let reply = instance.request("bench", PAYLOAD).unwrap().unwrap();
        assert_eq!(reply, REPLY.as_bytes());
    };

    let (mut child, address) = serve(&wasm, &policy);
    let mut client = common::Client::connect(address);
    let path = "/v1/components/serve-echo/request";
    let mut ready = false;
    for _ in 0..600 {
        if client.call("GET", "/v1/health", &[], b"").status == 200 {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "airssys serve never got ready");
    let mut http = move || {
        let answer = client.call("POST", path, &[], PAYLOAD);
        assert_eq!((answer.status, answer.body.as_str()), (200, REPLY));
    };

    let r = ratio::measure(20, &mut direct, &mut http);
    println!(
        "RATIO serve round trip: Instance::request {:?}, through the ingress {:?}, ratio {:.2}x \
         (median of {} paired rounds {:.2}x)",
        r.base, r.ours, r.best, r.rounds, r.paired_median
    );

    let mut group = c.benchmark_group("serve_round_trip");
    group.bench_function("instance_request", |b| b.iter(&mut direct));
    group.bench_function("http_ingress", |b| b.iter(&mut http));
    group.finish();
    let _ = child.kill();
    let _ = child.wait();
}

criterion_group! {
    name = benches;
    config = settings::criterion(20);
    targets = round_trip
}
criterion_main!(benches);
