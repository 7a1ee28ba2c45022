//! One capability in both lists.
#[airssys::component(requires = ["log:write"], optional = ["log:write"], name = "counter")]
struct Counter;

fn main() {}
