//! `require` is a typo of `requires`: that is the only error; the host
//! calls that rely on the capability are not reported as undeclared too.
#[airssys::component(require = ["kv:read:counter/*", "kv:write:counter/*"], name = "counter")]
struct Counter;

impl guest::Lifecycle for Counter {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let other = |e: host::storage::Error| guest::lifecycle::Error::Other(format!("{e:?}"));
        let bucket = Counter::host().storage().open("counter").map_err(other)?;
        let _ = bucket.get("n").map_err(other)?;
        bucket.set("n", b"1").map_err(other)?;
        Ok(())
    }
}

impl guest::Handler for Counter {}

fn main() {}
