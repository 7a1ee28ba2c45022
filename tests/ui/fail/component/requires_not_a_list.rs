//! `requires` takes a list.
#[airssys::component(requires = "log:write")]
struct Counter;

fn main() {}
