//! A capability without an action.
#[airssys::component(requires = ["kv"], name = "counter")]
struct Counter;

fn main() {}
