//! `name` must be a string.
#[airssys::component(name = counter, requires = ["log:write"])]
struct Counter;

fn main() {}
