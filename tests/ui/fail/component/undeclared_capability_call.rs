//! Writes to a bucket without declaring `kv:write`.
#[airssys::component(requires = ["kv:read:counter/*"], name = "counter")]
struct Counter;

impl guest::Lifecycle for Counter {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let bucket = Counter::host().storage().open("counter").expect("opens");
        let _ = bucket.get("n");
        let _ = bucket.set("n", b"1");
        Ok(())
    }
}
impl guest::Handler for Counter {}

fn main() {}
