//! Embeds the airssys runtime: builds a policy in code, loads the
//! `kv-counter` component, calls it, and prints the audit trail the runtime
//! wrote for every guarded host call.
//!
//! Usage: `cargo run -- <kv_counter.wasm>` (build the component first:
//! `airssys run ../kv-counter --policy ../kv-counter/policy.toml`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use airssys::runtime::{AuditLog, Policy, Runtime};

/// Collects the audit trail (one JSON object per line) in memory.
#[derive(Clone, Default)]
struct Trail(Arc<Mutex<Vec<u8>>>);

impl Write for Trail {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Some(component) = std::env::args().nth(1) else {
        return Err("usage: host-embed <kv_counter.wasm>".into());
    };

    // The host's side of the deal, in code: what `kv-counter` may do. Its
    // manifest also asks for `kv:delete:counter/*` (optional): not granted
    // here, so `reset` is refused at call time.
    let policy = Policy::builder()
        .grant("kv-counter", "kv:read:counter/*".parse()?)
        .grant("kv-counter", "kv:write:counter/*".parse()?)
        .grant("kv-counter", "log:write".parse()?)
        .build();

    let trail = Trail::default();
    let runtime = Runtime::builder()
        .policy(policy)
        .in_memory_storage()
        .audit(AuditLog::to_writer(trail.clone()))
        .build()?;

    // Load-time checks: manifest, contract compatibility, required grants.
    let counter = runtime.load_file(component.as_ref())?;
    let granted: Vec<String> = counter
        .grants()
        .allows()
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("loaded `{}`, granted: {}", counter.name(), granted.join(", "));

    // `instantiate` calls the component's `init`.
    let mut instance = counter.instantiate()?;
    for request in ["increment", "reset"] {
        match instance.request("host-embed", request.as_bytes())? {
            Ok(reply) => println!("{request}: {}", String::from_utf8_lossy(&reply)),
            Err(error) => println!("{request}: refused: {error}"),
        }
    }
    instance.shutdown()?;

    println!("audit trail:");
    let lines = trail.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for line in String::from_utf8_lossy(&lines).lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        println!(
            "  {:5} {}:{}  {}",
            record["verdict"].as_str().unwrap_or_default(),
            record["capability"].as_str().unwrap_or_default(),
            record["resource"].as_str().unwrap_or_default(),
            record["rule"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}
