//! `reed` is a typo of `read`: the capability error suggests it and is the
//! only error; `bucket.get` is not reported as undeclared too.
#[airssys::component(requires = ["kv:reed:counter/*"], name = "counter")]
struct Counter;

impl guest::Lifecycle for Counter {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let other = |e: host::storage::Error| guest::lifecycle::Error::Other(format!("{e:?}"));
        let bucket = Counter::host().storage().open("counter").map_err(other)?;
        let _ = bucket.get("n").map_err(other)?;
        Ok(())
    }
}

impl guest::Handler for Counter {}

fn main() {}
