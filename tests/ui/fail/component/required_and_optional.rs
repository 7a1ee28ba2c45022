//! One capability in both lists.
#[airssys::component(requires = ["log:write"], optional = ["log:write"])]
struct Counter;

fn main() {}
