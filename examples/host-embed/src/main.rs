//! Embeds the airssys runtime with a host service of its own: the
//! `example:greeter/greet` interface (`wit/greeter.wit`), implemented in
//! `src/service.rs` with `#[airssys::host_impl]` / `#[airssys::host_fn]` and
//! added with `Runtime::builder().extension(..)`. It loads the
//! `greeter-guest` component (`component/`), grants it the English
//! phrasebook entry but not the French one, asks it for both greetings,
//! once through the function `greet` and once through a `phrasebook`
//! handle (whose method's capability names the handle, `{self}`), and
//! prints the audit trail the runtime wrote for every guarded host call.
//!
//! Usage: `cargo run -p host-embed -- <greeter_guest.wasm>` (see README.md
//! for building the component).

mod service;

use std::io::Write;
use std::sync::{Arc, Mutex};

use airssys_runtime::{AuditLog, Policy, Runtime};

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
        return Err("usage: host-embed <greeter_guest.wasm>".into());
    };

    // The component declares `kv:read:phrasebook/fr` as optional; the
    // policy leaves it out, so the French greeting is refused at call time,
    // by the function and by the method of a French phrasebook handle.
    let policy = Policy::builder()
        .grant("greeter-guest", "log:write".parse()?)
        .grant("greeter-guest", "kv:read:phrasebook/en".parse()?)
        .build();

    let trail = Trail::default();
    let runtime = Runtime::builder()
        .policy(policy)
        .audit(AuditLog::to_writer(trail.clone()))
        .extension(service::extension()?)
        .build()?;

    // Load-time checks: manifest, the imports of `airssys:core` against the
    // contract and of `example:greeter` against the extension's WIT,
    // required grants.
    let guest = runtime.load_file(component.as_ref())?;
    let granted: Vec<String> = guest
        .grants()
        .allows()
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("loaded `{}`, granted: {}", guest.name(), granted.join(", "));

    let mut instance = guest.instantiate()?;
    // `<language> <name>` calls the function `greet`; `book <language>
    // <name>` opens a `phrasebook` handle and calls its method `greet`.
    for request in ["en Ada", "fr Ada", "book en Ada", "book fr Ada"] {
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
        let field = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
        println!(
            "  {:5} {}:{}  {}  (in {})",
            field("verdict"),
            field("capability"),
            field("resource"),
            field("rule"),
            field("function"),
        );
    }
    Ok(())
}
