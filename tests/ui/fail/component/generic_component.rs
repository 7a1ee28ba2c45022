//! A component type cannot be generic.
#[airssys::component(requires = ["log:write"])]
struct Counter<T>(T);

fn main() {}
