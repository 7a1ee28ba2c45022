//! Logs without declaring `log:write`.
#[airssys::component(requires = ["kv:read:counter/*"], name = "counter")]
struct Counter;

impl guest::Lifecycle for Counter {
    fn shutdown() {
        let _ = Counter::host().logging().log(host::logging::Level::Info, "", "bye");
    }
}
impl guest::Handler for Counter {}

fn main() {}
