//! `raed` is not an action of `kv`.
#[airssys::component(requires = ["kv:raed:counter/*"], name = "counter")]
struct Counter;

fn main() {}
