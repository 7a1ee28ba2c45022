//! A capability without an action.
#[airssys::component(requires = ["kv"])]
struct Counter;

fn main() {}
