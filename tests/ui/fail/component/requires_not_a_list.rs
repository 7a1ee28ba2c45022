//! `requires` takes a list.
#[airssys::component(requires = "log:write", name = "counter")]
struct Counter;

fn main() {}
