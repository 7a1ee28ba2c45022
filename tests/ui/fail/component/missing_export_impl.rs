//! The handler export is not implemented.
#[airssys::component(requires = ["log:write"], name = "counter")]
struct Counter;

impl guest::Lifecycle for Counter {}

fn main() {}
