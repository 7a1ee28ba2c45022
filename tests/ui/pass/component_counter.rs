//! A counter: declared capabilities, gated host calls, export traits.
#![deny(warnings)]

use airssys::Component as _;

#[airssys::component(
    name = "counter",
    requires = ["kv:read:counter/*", "kv:write:counter/*", "log:write"],
    optional = ["env:read:COUNTER_*"],
)]
pub struct Counter;

impl guest::Lifecycle for Counter {
    fn init(config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let host = Counter::host();
        let _ = host.logging().log(
            host::logging::Level::Info,
            "counter",
            &format!("{} entries", config.len()),
        );
        let bucket = host
            .storage()
            .open("counter")
            .map_err(|e| guest::lifecycle::Error::Other(e.to_string()))?;
        let n = bucket
            .get("n")
            .map_err(|e| guest::lifecycle::Error::Other(e.to_string()))?
            .unwrap_or_default();
        bucket
            .set("n", &n)
            .map_err(|e| guest::lifecycle::Error::Other(e.to_string()))
    }
}

impl guest::Handler for Counter {}

fn main() {
    assert_eq!(
        Counter::REQUIRES,
        ["kv:read:counter/*", "kv:write:counter/*", "log:write"]
    );
    assert_eq!(Counter::OPTIONAL, ["env:read:COUNTER_*"]);
    let manifest = Counter::manifest();
    assert_eq!(manifest.requires.len(), 3);
}
